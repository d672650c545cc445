//! Shared harness for the integration tests: one throwaway source and one target cluster per
//! test binary (`localpg::shared_pair`), and per test its own databases, slot and publication.
//! Tests read as scenarios: write on the source, wait for an LSN, assert on the target.
#![allow(dead_code)]

pub mod binary;
pub mod engines;
pub mod langchain;
pub mod logs;

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use pgvshift::config::Config;
use pgvshift::observe::stats::ApplyStats;
use pgvshift::observe::stats::RunStats;
use pgvshift::run::run;
use pgvshift::testkit::localpg::{shared_pair, unique_name, ClusterOptions, LocalCluster};
use pgvshift::Lsn;
use tokio::sync::watch;
use tokio_postgres::Client;

/// One test's private world: databases `name` on the source and target clusters, slot and
/// publication `name`, and a config file.
pub struct TestEnv {
    pub name: String,
    pub source: &'static LocalCluster,
    pub target: &'static LocalCluster,
    pub dir: PathBuf,
}

impl TestEnv {
    /// Create the databases (with pgvector on both) and run `source_sql` on the source.
    pub fn new(prefix: &str, source_sql: &str) -> TestEnv {
        let (source, target) = shared_pair();
        Self::on_clusters(prefix, source_sql, source, target)
    }

    /// Like [`TestEnv::new`], on a source and target cluster of this test's own (for tests that
    /// restart or reconfigure a server, which would disturb other tests on the shared pair).
    /// The clusters live until the process exits (their watchdogs remove them).
    pub fn new_private(prefix: &str, source_sql: &str, source: ClusterOptions, target: ClusterOptions) -> TestEnv {
        let (source, target) = std::thread::scope(|s| {
            let a = s.spawn(|| LocalCluster::start(source).expect("start private source cluster"));
            let b = s.spawn(|| LocalCluster::start(target).expect("start private target cluster"));
            (a.join().unwrap(), b.join().unwrap())
        });
        Self::on_clusters(
            prefix,
            source_sql,
            Box::leak(Box::new(source)),
            Box::leak(Box::new(target)),
        )
    }

    /// Like [`TestEnv::new`], on clusters that already run (e.g. a private pair that several
    /// tests of one file share, made once with [`TestEnv::new_private`]).
    pub fn on(prefix: &str, source_sql: &str, source: &'static LocalCluster, target: &'static LocalCluster) -> TestEnv {
        Self::on_clusters(prefix, source_sql, source, target)
    }

    fn on_clusters(
        prefix: &str,
        source_sql: &str,
        source: &'static LocalCluster,
        target: &'static LocalCluster,
    ) -> TestEnv {
        let name = unique_name(prefix);
        source.create_database(&name).expect("create source db");
        target.create_database(&name).expect("create target db");
        source
            .psql(&name, "CREATE EXTENSION vector")
            .expect("pgvector on source");
        target
            .psql(&name, "CREATE EXTENSION vector")
            .expect("pgvector on target");
        if !source_sql.is_empty() {
            source.psql(&name, source_sql).expect("source setup SQL");
        }
        let dir = std::env::temp_dir().join(format!("pgvshift-test-{name}"));
        std::fs::create_dir_all(&dir).unwrap();
        TestEnv {
            name,
            source,
            target,
            dir,
        }
    }

    pub fn source_url(&self) -> String {
        self.source.url(&self.name)
    }

    pub fn target_url(&self) -> String {
        self.target.url(&self.name)
    }

    /// Write the config file for `tables` (source names as written in TOML, optional target
    /// name) and return its path. `extra` is appended verbatim (more sections/keys).
    pub fn write_config(&self, tables: &[(&str, Option<&str>)], extra: &str) -> PathBuf {
        let mut toml = format!(
            "[source]\nurl = \"{}\"\n[target]\nurl = \"{}\"\n[replication]\nslot = \"{}\"\npublication = \"{}\"\nstatus_interval_secs = 1\n{extra}\n",
            self.source_url(),
            self.target_url(),
            self.name,
            self.name
        );
        for (source, target) in tables {
            toml.push_str(&format!("[[tables]]\nsource = {}\n", toml_string(source)));
            if let Some(t) = target {
                toml.push_str(&format!("target = {}\n", toml_string(t)));
            }
        }
        let path = self.dir.join("pgvshift.toml");
        std::fs::write(&path, toml).unwrap();
        path
    }

    /// A config file `file` (in this test's directory) for `tables` with these connection URLs
    /// instead of the clusters' plain ones (e.g. with `sslmode`, a password, another port).
    pub fn write_config_with_urls(&self, file: &str, source_url: &str, target_url: &str, tables: &[&str]) -> PathBuf {
        let mut toml = format!(
            "[source]\nurl = {}\n[target]\nurl = {}\n[replication]\nslot = \"{}\"\npublication = \"{}\"\nstatus_interval_secs = 1\n",
            toml_string(source_url),
            toml_string(target_url),
            self.name,
            self.name
        );
        for t in tables {
            toml.push_str(&format!("[[tables]]\nsource = {}\n", toml_string(t)));
        }
        let path = self.dir.join(file);
        std::fs::write(&path, toml).unwrap();
        path
    }

    /// Like [`TestEnv::write_config`], with extra keys per table (e.g. `profile = "lantern"`).
    pub fn write_config_with(&self, tables: &[(&str, &str)], extra: &str) -> PathBuf {
        let path = self.write_config(&[], extra);
        let mut toml = std::fs::read_to_string(&path).unwrap();
        for (source, keys) in tables {
            toml.push_str(&format!("[[tables]]\nsource = {}\n{keys}\n", toml_string(source)));
        }
        std::fs::write(&path, toml).unwrap();
        path
    }

    pub fn config(&self, tables: &[(&str, Option<&str>)]) -> Config {
        let path = self.write_config(tables, "");
        Config::load_with_env(&path, &|_| None).expect("valid test config")
    }

    pub async fn source_client(&self) -> Client {
        pgvshift::source::connect_url(&self.source_url())
            .await
            .expect("connect source")
    }

    pub async fn target_client(&self) -> Client {
        pgvshift::source::connect_url(&self.target_url())
            .await
            .expect("connect target")
    }

    /// Wait until everything committed on the source so far is applied on the target.
    pub async fn wait_caught_up(&self) {
        let source = self.source_client().await;
        let target = self.target_client().await;
        let mark = pgvshift::source::slot::insert_lsn(&source).await.unwrap();
        pgvshift::cli::demo::wait_applied(&target, &self.name, mark, Duration::from_secs(120))
            .await
            .unwrap_or_else(|e| panic!("{e}"));
    }

    /// Wait until the snapshot has completed (phase = streaming).
    pub async fn wait_streaming(&self) {
        let target = self.target_client().await;
        pgvshift::cli::demo::wait_applied(&target, &self.name, Lsn::ZERO, Duration::from_secs(120))
            .await
            .unwrap_or_else(|e| panic!("{e}"));
    }

    /// Assert that `table` (SQL text, e.g. `public.items`) has identical content on both sides.
    pub async fn assert_same(&self, table: &str, order_by: &str) {
        let s = pgvshift::cli::demo::fingerprint(&self.source_client().await, table, order_by)
            .await
            .unwrap();
        let t = pgvshift::cli::demo::fingerprint(&self.target_client().await, table, order_by)
            .await
            .unwrap();
        assert_eq!(s, t, "{table}: (row count, md5) differ between source and target");
    }

    /// Run the pipeline in this process (a tokio task) until [`InProcess::stop`].
    pub fn spawn_run(&self, config: Config) -> InProcess {
        let (tx, rx) = watch::channel(false);
        let stats = Arc::new(RunStats::default());
        let s = stats.clone();
        let handle = tokio::spawn(async move { run(&config, rx, s).await });
        InProcess {
            stop: tx,
            handle,
            stats,
        }
    }

    /// Run the `pgvshift` binary as a child process (for kill -9 and signal tests).
    pub fn spawn_binary(&self, args: &[&str]) -> Child {
        Command::new(env!("CARGO_BIN_EXE_pgvshift"))
            .args(args)
            .env("PGVSHIFT_LOG", "info")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn pgvshift")
    }

    /// Run the binary to completion; returns (exit code, stdout, stderr).
    pub fn run_binary(&self, args: &[&str]) -> (i32, String, String) {
        let out = Command::new(env!("CARGO_BIN_EXE_pgvshift"))
            .args(args)
            .output()
            .expect("run pgvshift");
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    /// Query one text value on the source / target (psql, sync).
    pub fn source_value(&self, sql: &str) -> String {
        self.source.psql(&self.name, sql).unwrap().trim().to_string()
    }

    pub fn target_value(&self, sql: &str) -> String {
        self.target.psql(&self.name, sql).unwrap().trim().to_string()
    }

    /// pgvshift's footprint: (slot exists, publication exists, pgvshift schema exists on the
    /// target).
    pub fn footprint(&self) -> (bool, bool, bool) {
        let yes = |v: String| v == "t";
        (
            yes(self.source_value(&format!(
                "SELECT EXISTS (SELECT 1 FROM pg_replication_slots WHERE slot_name = '{}')",
                self.name
            ))),
            yes(self.source_value(&format!(
                "SELECT EXISTS (SELECT 1 FROM pg_publication WHERE pubname = '{}')",
                self.name
            ))),
            yes(self.target_value("SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = 'pgvshift')")),
        )
    }

    /// Wait until the slot is no longer held by any session.
    pub fn wait_slot_inactive(&self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            let active = self.source_value(&format!(
                "SELECT coalesce(bool_or(active), false) FROM pg_replication_slots WHERE slot_name = '{}'",
                self.name
            ));
            if active == "f" {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("slot {} stayed active", self.name);
    }
}

/// A pipeline running inside the test process.
pub struct InProcess {
    stop: watch::Sender<bool>,
    pub handle: tokio::task::JoinHandle<pgvshift::error::Result<Lsn>>,
    pub stats: Arc<RunStats>,
}

impl InProcess {
    pub fn apply_stats(&self) -> &ApplyStats {
        &self.stats.apply
    }

    /// Wait (up to 60 s) for it to fail on its own; returns the error's message.
    pub async fn failure(self) -> String {
        match tokio::time::timeout(Duration::from_secs(60), self.handle).await {
            Ok(Ok(Err(e))) => e.to_string(),
            Ok(Ok(Ok(lsn))) => panic!("run succeeded (applied {lsn}) where it should have failed"),
            Ok(Err(e)) => panic!("run panicked: {e}"),
            Err(_) => panic!("run did not fail within 60 s"),
        }
    }

    /// Ask it to stop and wait; returns the final applied LSN.
    pub async fn stop(self) -> Lsn {
        self.stop.send(true).ok();
        match tokio::time::timeout(Duration::from_secs(60), self.handle).await {
            Ok(Ok(Ok(lsn))) => lsn,
            Ok(Ok(Err(e))) => panic!("run failed: {e}"),
            Ok(Err(e)) => panic!("run panicked: {e}"),
            Err(_) => panic!("run did not stop within 60 s"),
        }
    }
}

/// `pgvshift cutover --config <path> --json [extra]` in a blocking task: (code, report, stderr).
pub async fn cutover(path: &std::path::Path, extra: &[&str]) -> (i32, serde_json::Value, String) {
    let mut args: Vec<String> = vec![
        "cutover".into(),
        "--config".into(),
        path.to_str().unwrap().into(),
        "--json".into(),
    ];
    args.extend(extra.iter().map(|s| s.to_string()));
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new(env!("CARGO_BIN_EXE_pgvshift"))
            .args(&args)
            .env("PGVSHIFT_LOG", "info")
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let report = serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{e}: not JSON:\n{stdout}\n{stderr}"));
    (out.status.code().unwrap_or(-1), report, stderr)
}

/// A TOML basic string.
pub fn toml_string(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}
