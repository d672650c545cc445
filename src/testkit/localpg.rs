//! Throwaway local PostgreSQL clusters for `pgvshift demo` and the integration tests.
//!
//! A [`LocalCluster`] is a complete, private PostgreSQL server: its own temporary directory
//! (`$TMPDIR/pgvshift-<name>-<pid>-<random>/`, holding `data/` and `server.log`), its own TCP
//! port on 127.0.0.1, and its own unix socket directory (the temporary directory, never the
//! shared `/var/run/postgresql`). It is configured for logical replication
//! (`wal_level=logical`, 40 slots / WAL senders, trust authentication for `postgres` over
//! 127.0.0.1 including replication connections). Optionally ([`ClusterOptions::tls`]) it
//! serves TLS with a fresh self-signed certificate for `localhost` / 127.0.0.1, and
//! ([`ClusterOptions::pg_hba`]) uses a given `pg_hba.conf` (TLS-only, password auth, ...).
//!
//! # Design
//!
//! * **Binaries.** The server binaries are found via `PGVSHIFT_PG_BINDIR`, else
//!   `pg_config --bindir`, else the highest-numbered `/usr/lib/postgresql/*/bin` that contains
//!   `initdb`. All spawned tools get an environment without `PG*` variables so a stray
//!   `PGHOST`/`PGPORT`/`PGDATA` of the caller cannot redirect them.
//! * **runuser.** `initdb`, `postgres` and `pg_ctl` refuse to run as root. The test machines run
//!   everything as root, so when our effective uid is 0 the server-side tools are run as the
//!   `postgres` OS user through `runuser -u postgres --`, and the temporary directory is
//!   `chown`ed to that user first (the server must be able to write its data directory, its log
//!   and its socket). Client tools (`psql`, `pg_isready`) run as ourselves: they connect over TCP
//!   with trust authentication as database superuser `postgres`.
//! * **Ports.** A port is chosen by test-binding 127.0.0.1, preferring a random port *below* the
//!   kernel's ephemeral range (`/proc/sys/net/ipv4/ip_local_port_range`) and falling back to
//!   binding port 0. Ports inside the ephemeral range can be taken at any moment by the source
//!   side of an ordinary outgoing connection (the tests open many), which would make a later
//!   [`LocalCluster::restart`] on the same port fail. The test-bind is released before the
//!   server starts, so another process can still race us: if the server log says the address is
//!   in use, the start is retried with a fresh port (a restart retries the same port for a while).
//! * **Watchdog.** Clusters kept in statics (`OnceLock`) are never dropped, and the demo may be
//!   killed with SIGKILL, so a plain `Drop` is not enough to avoid orphaned servers and
//!   directories. Each cluster therefore spawns a tiny detached `sh` watchdog whose stdin is a
//!   pipe held only by this process. When our process goes away — however it dies — the kernel
//!   closes the pipe, the watchdog's `read` sees end-of-file, and it runs
//!   `pg_ctl stop -m immediate` (as the right user) and `rm -rf` of the temporary directory.
//!   A pipe is used rather than polling `kill -0 <pid>` because it cannot be fooled by pid reuse
//!   and needs no permission to signal us. The watchdog lives in its own process group and
//!   ignores SIGINT/SIGHUP so a Ctrl-C at the terminal does not kill it before the cleanup.
//!   A normal [`LocalCluster::stop`] (or `Drop`) stops the server itself (fast shutdown,
//!   escalating to immediate and SIGKILL), removes the directory and then writes `disarm` into
//!   the pipe, upon which the watchdog exits without doing anything.
//! * **Template.** `initdb --no-sync` takes 0.6–1 s (more when the machine is busy: 8
//!   parallel starts on 2 CPUs took ~5.9 s each) and dominates [`LocalCluster::start`], whereas
//!   `cp -a` of its 39 MB result takes ~0.1 s. So the first cluster on a machine runs `initdb`
//!   and publishes a pristine copy of the result as
//!   `$TMPDIR/pgvshift-template-<pg major>-<uid of the server user>`; later clusters (in any
//!   process) copy it. Publishing is race-free without locks: the copy is made in a staging
//!   directory inside the cluster's own temp dir (so the watchdog removes it if we die) and
//!   `rename`d into place atomically; a loser of the race just discards its copy. A template is
//!   used only if it is owned by the server user, not group/world-writable, carries the
//!   completion marker and still has the recorded number of files (tmp cleaners); and if a
//!   cluster copied from it fails to start, the template is discarded and the cluster falls
//!   back to a fresh `initdb`. The template (~39 MB) stays in `$TMPDIR` on purpose (until the
//!   next reboot or tmp cleaning). Set `PGVSHIFT_LOCALPG_TEMPLATE=0` to always run `initdb`.
//!   Measured start() (initdb path → template path): ~0.85 s → ~0.3 s on an idle machine,
//!   ~1.5–1.9 s → ~1.0–1.5 s under load. [`shared_pair`] starts its two clusters in parallel.
//!
//! Everything here is blocking (`std::process`); call it directly in tests or via
//! `tokio::task::spawn_blocking` from async code. For SQL from async code there are
//! [`LocalCluster::psql_async`] and [`LocalCluster::create_database_async`].

use std::collections::HashSet;
use std::ffi::OsStr;
use std::fs;
use std::io::{Read, Seek, SeekFrom, Write};
use std::net::{Ipv4Addr, SocketAddrV4, TcpListener, TcpStream};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Output, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use rand::Rng;

/// How long to wait for a server to start and accept connections.
const READY_TIMEOUT: Duration = Duration::from_secs(60);
/// How many different ports [`LocalCluster::start`] tries when the chosen one is taken.
const PORT_ATTEMPTS: usize = 5;
/// How long [`LocalCluster::restart`] keeps retrying when its port is (briefly) taken.
const RESTART_PORT_WAIT: Duration = Duration::from_secs(30);
/// Lines of server log included in error messages.
const LOG_TAIL_LINES: usize = 40;

/// Options for [`LocalCluster::start`].
#[derive(Debug, Clone, Default)]
pub struct ClusterOptions {
    /// Used in log messages and the temporary directory name, e.g. `"source"`.
    pub name: String,
    /// Extra `postgresql.conf` settings, applied after (and so overriding) the defaults.
    /// Values are written quoted (`name = 'value'`); an already single-quoted value is kept
    /// as is. Example: `("fsync".into(), "on".into())`.
    pub extra_settings: Vec<(String, String)>,
    /// Serve TLS (`ssl = on`) with a self-signed certificate made by the `openssl` CLI for
    /// `localhost` and 127.0.0.1; [`LocalCluster::tls_root_cert`] is its path, for use as
    /// `sslrootcert`. Default off.
    pub tls: bool,
    /// The whole `pg_hba.conf`, replacing the default (trust for everything local). Keep a
    /// line that lets `postgres` in over 127.0.0.1 without a password (`host` or `hostssl`):
    /// the harness's `psql` and `pg_isready` connect that way.
    pub pg_hba: Option<String>,
}

impl ClusterOptions {
    /// Options with the given name and no extra settings.
    pub fn new(name: impl Into<String>) -> Self {
        ClusterOptions {
            name: name.into(),
            ..ClusterOptions::default()
        }
    }

    /// Adds an extra `postgresql.conf` setting.
    pub fn setting(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.extra_settings.push((name.into(), value.into()));
        self
    }

    /// Turns TLS on (see [`ClusterOptions::tls`]).
    pub fn with_tls(mut self) -> Self {
        self.tls = true;
        self
    }

    /// Replaces `pg_hba.conf` (see [`ClusterOptions::pg_hba`]).
    pub fn pg_hba(mut self, contents: impl Into<String>) -> Self {
        self.pg_hba = Some(contents.into());
        self
    }
}

/// The defaults every cluster gets (before [`ClusterOptions::extra_settings`]); `port` and
/// `unix_socket_directories` are added per cluster.
pub const DEFAULT_SETTINGS: &[(&str, &str)] = &[
    ("listen_addresses", "127.0.0.1"),
    ("wal_level", "logical"),
    ("max_replication_slots", "40"),
    ("max_wal_senders", "40"),
    ("max_connections", "200"),
    ("shared_buffers", "128MB"),
    ("wal_sender_timeout", "60s"),
    ("fsync", "off"),
    ("synchronous_commit", "on"),
    ("logging_collector", "off"),
    ("log_line_prefix", "%m [%p] %q%u@%d %a: "),
];

const PG_HBA: &str = "\
# written by pgvshift localpg: throwaway cluster, trust everything local
local   all             all                     trust
local   replication     all                     trust
host    all             all     127.0.0.1/32    trust
host    all             all     ::1/128         trust
host    replication     all     127.0.0.1/32    trust
host    replication     all     ::1/128         trust
";

/// A running throwaway PostgreSQL cluster. Stopped and deleted by [`LocalCluster::stop`], on
/// `Drop`, or — if neither runs — by its watchdog process once this process has exited.
#[derive(Debug)]
pub struct LocalCluster {
    name: String,
    bindir: PathBuf,
    /// The temporary directory holding everything (data dir, log, socket).
    root: PathBuf,
    data_dir: PathBuf,
    log_file: PathBuf,
    port: u16,
    /// `Some` when we are root and the server runs as the `postgres` OS user.
    run_as: Option<OsUser>,
    /// `pg_hba.conf` contents ([`PG_HBA`] unless [`ClusterOptions::pg_hba`] was given).
    pg_hba: String,
    /// With [`ClusterOptions::tls`]: the world-readable copy of the server certificate.
    tls_root_cert: Option<PathBuf>,
    watchdog: Mutex<Option<Watchdog>>,
    /// Serialises start/stop/restart of this cluster.
    lifecycle: Mutex<()>,
    stopped: bool,
}

#[derive(Debug, Clone)]
struct OsUser {
    name: String,
    uid: u32,
    gid: u32,
}

#[derive(Debug)]
struct Watchdog {
    child: Child,
    stdin: ChildStdin,
}

impl Watchdog {
    /// Tells the watchdog that cleanup has been done; it exits without acting.
    fn disarm(mut self) {
        let _ = self.stdin.write_all(b"disarm\n");
        let _ = self.stdin.flush();
        drop(self.stdin);
        // It exits right after reading the line; reap it so it does not linger as a zombie.
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            match self.child.try_wait() {
                Ok(Some(_)) | Err(_) => break,
                Ok(None) if Instant::now() >= deadline => break,
                Ok(None) => std::thread::sleep(Duration::from_millis(5)),
            }
        }
    }
}

impl LocalCluster {
    /// Creates a fresh temporary directory, runs `initdb` (or copies the template), picks a
    /// free port on 127.0.0.1, starts the server and waits until it accepts TCP connections.
    pub fn start(opts: ClusterOptions) -> Result<LocalCluster> {
        Self::start_impl(opts, template_enabled())
    }

    fn start_impl(opts: ClusterOptions, use_template: bool) -> Result<LocalCluster> {
        let started = Instant::now();
        let name = sanitize(&opts.name, "cluster");
        for (key, _) in &opts.extra_settings {
            validate_setting_name(key)?;
        }
        let bindir = pg_bindir()?;
        let run_as = server_user()?;

        let root = make_temp_dir(&name)?;
        let mut cluster = LocalCluster {
            name: name.clone(),
            bindir,
            data_dir: root.join("data"),
            log_file: root.join("server.log"),
            root,
            port: 0,
            run_as,
            pg_hba: opts.pg_hba.clone().unwrap_or_else(|| PG_HBA.to_owned()),
            tls_root_cert: None,
            watchdog: Mutex::new(None),
            lifecycle: Mutex::new(()),
            stopped: false,
        };
        // From here on, dropping `cluster` (e.g. on an error) cleans everything up.
        if let Some(user) = &cluster.run_as {
            std::os::unix::fs::chown(&cluster.root, Some(user.uid), Some(user.gid))
                .with_context(|| format!("chown {} to {}", cluster.root.display(), user.name))?;
        }
        // Arm the watchdog before anything slow, so a kill during initdb is covered too.
        let watchdog = cluster.spawn_watchdog()?;
        *cluster.watchdog.lock().unwrap_or_else(|e| e.into_inner()) = Some(watchdog);

        let from_template = cluster.prepare_data_dir(use_template)?;
        let data_ready = started.elapsed();
        let mut extra_settings = opts.extra_settings.clone();
        if opts.tls {
            // Outside the data dir, so the template fallback below (a fresh initdb) keeps them.
            extra_settings.splice(0..0, cluster.make_certificate()?);
        }
        let extra_settings = &extra_settings;

        let mut result = cluster.start_server(extra_settings);
        if let (Err(e), true) = (&result, from_template) {
            // A damaged or incompatible template must not break anything: start from scratch.
            tracing::warn!(
                cluster = %name,
                "cluster copied from template did not start, falling back to initdb: {e:#}"
            );
            let template = template_dir().ok();
            if let Some(template) = &template {
                discard_template(template);
            }
            let _ = cluster.pg_ctl_stop(Duration::from_secs(10));
            let _ = fs::remove_file(&cluster.log_file);
            let data_dir = cluster.data_dir.clone();
            fs::remove_dir_all(&data_dir).with_context(|| format!("remove {}", data_dir.display()))?;
            cluster.initdb()?;
            if let Some(template) = &template {
                let _ = cluster.publish_template(template);
            }
            result = cluster.start_server(extra_settings);
        }
        result?;
        tracing::info!(
            cluster = %name,
            port = cluster.port,
            dir = %cluster.root.display(),
            from_template,
            data_dir_ms = data_ready.as_millis() as u64,
            total_ms = started.elapsed().as_millis() as u64,
            "local PostgreSQL cluster started"
        );
        Ok(cluster)
    }

    /// Configures the cluster with a free port and starts it (retrying with other ports if
    /// the chosen one gets taken meanwhile), then waits until it accepts connections.
    fn start_server(&mut self, extra_settings: &[(String, String)]) -> Result<()> {
        let mut last_err = None;
        for attempt in 1..=PORT_ATTEMPTS {
            let port = pick_port()?;
            self.port = port;
            self.write_config(extra_settings)?;
            let result = self.pg_ctl_start();
            release_port(port);
            match result {
                Ok(()) => return self.wait_ready(Instant::now() + READY_TIMEOUT),
                Err(StartError::PortInUse(msg)) => {
                    tracing::warn!(
                        cluster = %self.name, port, attempt,
                        "port taken while starting PostgreSQL, retrying with another port"
                    );
                    last_err = Some(anyhow!(msg));
                }
                Err(StartError::Other(e)) => return Err(e),
            }
        }
        Err(last_err.unwrap_or_else(|| anyhow!("no attempt made")).context(format!(
            "could not start cluster {}: port taken {PORT_ATTEMPTS} times in a row",
            self.name
        )))
    }

    /// The cluster's name (sanitised [`ClusterOptions::name`]).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// TCP port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `postgresql://postgres@127.0.0.1:<port>/<database>`.
    pub fn url(&self, database: &str) -> String {
        format!(
            "postgresql://postgres@127.0.0.1:{}/{}",
            self.port,
            percent_encode(database)
        )
    }

    /// The data directory (`<tempdir>/data`).
    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// The server log file (outside the data dir).
    pub fn log_file(&self) -> &Path {
        &self.log_file
    }

    /// The directory containing the server's unix socket.
    pub fn socket_dir(&self) -> &Path {
        &self.root
    }

    /// With [`ClusterOptions::tls`]: a world-readable copy of the server's self-signed
    /// certificate (for `sslrootcert`); `None` without TLS.
    pub fn tls_root_cert(&self) -> Option<&Path> {
        self.tls_root_cert.as_deref()
    }

    /// The directory with the PostgreSQL binaries this cluster runs.
    pub fn bindir(&self) -> &Path {
        &self.bindir
    }

    /// The last `lines` lines of the server log (for error messages and test diagnostics).
    pub fn log_tail(&self, lines: usize) -> String {
        log_tail(&self.log_file, 0, lines)
    }

    /// `CREATE DATABASE "<name>"` (connected to database `postgres`).
    pub fn create_database(&self, name: &str) -> Result<()> {
        self.psql("postgres", &format!("CREATE DATABASE {}", quote_ident(name)))
            .with_context(|| format!("create database {name:?} in cluster {}", self.name))?;
        Ok(())
    }

    /// Runs SQL through `psql -X -q -A -t -v ON_ERROR_STOP=1` against `database` and returns
    /// its stdout: the rows of every statement that returns rows, unaligned (`|`-separated),
    /// without headers or command tags, one row per line. Fails on the first SQL error.
    ///
    /// Blocking. From async code prefer [`LocalCluster::psql_async`]: blocking a
    /// single-threaded runtime can deadlock if the SQL waits for something (a lock, a
    /// replication slot) held by a connection that runtime drives.
    pub fn psql(&self, database: &str, sql: &str) -> Result<String> {
        let mut child = self
            .psql_command(database)
            .spawn()
            .with_context(|| format!("spawn {}", self.bindir.join("psql").display()))?;
        let mut stdin = child.stdin.take().expect("psql stdin is piped");
        let input = sql.to_owned();
        // Write from a thread: with large input and output, writing first could deadlock.
        let writer = std::thread::spawn(move || {
            let _ = stdin.write_all(input.as_bytes());
            let _ = stdin.write_all(b"\n");
        });
        let out = child.wait_with_output().context("wait for psql")?;
        let _ = writer.join();
        self.psql_result(database, sql, out)
    }

    /// Like [`LocalCluster::psql`], but does not block the async runtime.
    pub async fn psql_async(&self, database: &str, sql: &str) -> Result<String> {
        use tokio::io::AsyncWriteExt;
        let mut cmd = tokio::process::Command::from(self.psql_command(database));
        cmd.kill_on_drop(true);
        let mut child = cmd
            .spawn()
            .with_context(|| format!("spawn {}", self.bindir.join("psql").display()))?;
        let mut stdin = child.stdin.take().expect("psql stdin is piped");
        let write = async move {
            let _ = stdin.write_all(sql.as_bytes()).await;
            let _ = stdin.write_all(b"\n").await;
        };
        let (_, out) = tokio::join!(write, child.wait_with_output());
        self.psql_result(database, sql, out.context("wait for psql")?)
    }

    /// Like [`LocalCluster::create_database`], but does not block the async runtime.
    pub async fn create_database_async(&self, name: &str) -> Result<()> {
        self.psql_async("postgres", &format!("CREATE DATABASE {}", quote_ident(name)))
            .await
            .with_context(|| format!("create database {name:?} in cluster {}", self.name))?;
        Ok(())
    }

    fn psql_command(&self, database: &str) -> Command {
        let mut cmd = self.client_command("psql");
        cmd.args(["-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1"])
            .arg("-p")
            .arg(self.port.to_string())
            .args(["-U", "postgres", "-d"])
            .arg(database)
            .args(["-f", "-"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        cmd
    }

    fn psql_result(&self, database: &str, sql: &str, out: Output) -> Result<String> {
        if !out.status.success() {
            bail!(
                "psql on {}:{}/{database} failed ({}): {}\nSQL: {}",
                self.name,
                self.port,
                out.status,
                String::from_utf8_lossy(&out.stderr).trim(),
                abbreviate(sql, 500)
            );
        }
        String::from_utf8(out.stdout).context("psql output is not UTF-8")
    }

    /// Restarts the server (fast shutdown, then start) keeping its data and port, and waits
    /// until it accepts connections again.
    pub fn restart(&self) -> Result<()> {
        let _guard = self.lifecycle.lock().unwrap_or_else(|e| e.into_inner());
        if self.stopped {
            bail!("cluster {} is stopped", self.name);
        }
        self.pg_ctl_stop(Duration::from_secs(90))?;
        self.start_on_same_port()?;
        tracing::info!(cluster = %self.name, port = self.port, "local PostgreSQL cluster restarted");
        Ok(())
    }

    /// Shuts the server down (fast shutdown, escalating if needed) but keeps its data
    /// directory and port, for [`LocalCluster::start_stopped_server`]: a server that is down
    /// for a while. Succeeds if it is not running.
    pub fn stop_server(&self) -> Result<()> {
        let _guard = self.lifecycle.lock().unwrap_or_else(|e| e.into_inner());
        if self.stopped {
            bail!("cluster {} is stopped", self.name);
        }
        self.pg_ctl_stop(Duration::from_secs(90))?;
        tracing::info!(cluster = %self.name, port = self.port, "local PostgreSQL server shut down (data kept)");
        Ok(())
    }

    /// Starts a server shut down by [`LocalCluster::stop_server`] again, with its data, on the
    /// same port, and waits until it accepts connections.
    pub fn start_stopped_server(&self) -> Result<()> {
        let _guard = self.lifecycle.lock().unwrap_or_else(|e| e.into_inner());
        if self.stopped {
            bail!("cluster {} is stopped", self.name);
        }
        self.start_on_same_port()?;
        tracing::info!(cluster = %self.name, port = self.port, "local PostgreSQL server started again");
        Ok(())
    }

    /// `pg_ctl start` on the configured port (retrying while the port is briefly taken), then
    /// wait until the server accepts connections.
    fn start_on_same_port(&self) -> Result<()> {
        let deadline = Instant::now() + RESTART_PORT_WAIT;
        loop {
            match self.pg_ctl_start() {
                Ok(()) => break,
                Err(StartError::PortInUse(msg)) if Instant::now() < deadline => {
                    tracing::warn!(cluster = %self.name, port = self.port, "port busy on restart, retrying: {msg}");
                    std::thread::sleep(Duration::from_millis(250));
                }
                Err(StartError::PortInUse(msg)) => {
                    bail!(
                        "restart of cluster {}: port {} stayed in use: {msg}",
                        self.name,
                        self.port
                    )
                }
                Err(StartError::Other(e)) => return Err(e),
            }
        }
        self.wait_ready(Instant::now() + READY_TIMEOUT)
    }

    /// Stops the server (fast shutdown, escalating if needed) and removes its directory.
    pub fn stop(mut self) -> Result<()> {
        self.shutdown()
    }

    fn shutdown(&mut self) -> Result<()> {
        if self.stopped {
            return Ok(());
        }
        self.stopped = true;
        let stop_result = self.pg_ctl_stop(Duration::from_secs(20));
        // Never pull the directory out from under a server that may still be running.
        let rm_result = if stop_result.is_ok() {
            match fs::remove_dir_all(&self.root) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    Err(anyhow!(e).context(format!("remove {}", self.root.display())))
                }
                _ => Ok(()),
            }
        } else {
            Ok(())
        };
        let watchdog = self.watchdog.get_mut().unwrap_or_else(|e| e.into_inner()).take();
        match (&stop_result, &rm_result) {
            (Ok(()), Ok(())) => {
                if let Some(w) = watchdog {
                    w.disarm();
                }
            }
            // Something went wrong: let the watchdog have another go (it runs right away).
            _ => drop(watchdog),
        }
        stop_result?;
        rm_result?;
        tracing::debug!(cluster = %self.name, "local PostgreSQL cluster stopped and removed");
        Ok(())
    }

    // ----- internals -------------------------------------------------------------------

    /// A command for a server-side tool (`initdb`, `pg_ctl`): run as `postgres` when root.
    fn server_command(&self, tool: &str) -> Command {
        let program = self.bindir.join(tool);
        let mut cmd = match &self.run_as {
            Some(user) => {
                let mut c = Command::new("runuser");
                c.args(["-u", &user.name, "--"]).arg(program);
                c
            }
            None => Command::new(program),
        };
        clean_env(&mut cmd);
        cmd.env("LC_ALL", "C").current_dir(&self.root).stdin(Stdio::null());
        cmd
    }

    /// A command for a client tool (`psql`, `pg_isready`): run as ourselves.
    fn client_command(&self, tool: &str) -> Command {
        let mut cmd = Command::new(self.bindir.join(tool));
        clean_env(&mut cmd);
        cmd.env("PGCONNECT_TIMEOUT", "15")
            .env("PGAPPNAME", "pgvshift-localpg")
            .stdin(Stdio::null());
        cmd
    }

    fn spawn_watchdog(&self) -> Result<Watchdog> {
        // $1 = temp dir, $2 = data dir, $3 = pg_ctl, $4 = user to run pg_ctl as (or empty).
        const SCRIPT: &str = r#"trap '' INT HUP
IFS= read -r cmd
if [ "$cmd" = disarm ]; then exit 0; fi
if [ -n "$4" ]; then
  runuser -u "$4" -- "$3" -D "$2" -m immediate -w -t 30 stop
else
  "$3" -D "$2" -m immediate -w -t 30 stop
fi
rm -rf -- "$1"
"#;
        let mut cmd = Command::new("sh");
        cmd.arg("-c")
            .arg(SCRIPT)
            .arg("pgvshift-localpg-watchdog")
            .arg(&self.root)
            .arg(&self.data_dir)
            .arg(self.bindir.join("pg_ctl"))
            .arg(self.run_as.as_ref().map(|u| u.name.as_str()).unwrap_or(""));
        clean_env(&mut cmd);
        cmd.env("LC_ALL", "C")
            .current_dir("/")
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0);
        let mut child = cmd.spawn().context("spawn cleanup watchdog (sh)")?;
        let stdin = child.stdin.take().expect("watchdog stdin is piped");
        Ok(Watchdog { child, stdin })
    }

    /// Fills the data dir: a copy of the template if there is a valid one (returns `true`),
    /// else a fresh `initdb`, which is then published as the template for later clusters.
    fn prepare_data_dir(&self, use_template: bool) -> Result<bool> {
        if !use_template {
            self.initdb()?;
            return Ok(false);
        }
        let template = match template_dir() {
            Ok(t) => t,
            Err(e) => {
                tracing::debug!("no template cache: {e:#}");
                self.initdb()?;
                return Ok(false);
            }
        };
        // Within one process, let the first cluster create the template and the others copy it.
        static TEMPLATE_LOCK: Mutex<()> = Mutex::new(());
        let guard = TEMPLATE_LOCK.lock().unwrap_or_else(|e| e.into_inner());
        if template_is_valid(&template) {
            // Published templates are never modified: copy without holding the lock.
            drop(guard);
            let mut cp = Command::new("cp");
            cp.arg("-a")
                .arg(template.join("data"))
                .arg(&self.data_dir)
                .stdin(Stdio::null());
            match run_checked(&mut cp, "copy template data dir") {
                Ok(_) => return Ok(true),
                Err(e) => {
                    tracing::warn!(cluster = %self.name, "template copy failed, running initdb: {e:#}");
                    if self.data_dir.exists() {
                        fs::remove_dir_all(&self.data_dir)
                            .with_context(|| format!("remove {}", self.data_dir.display()))?;
                    }
                    self.initdb()?;
                    return Ok(false);
                }
            }
        }
        self.initdb()?;
        if let Err(e) = self.publish_template(&template) {
            tracing::debug!(cluster = %self.name, "could not publish template: {e:#}");
        }
        Ok(false)
    }

    /// Copies the pristine data dir (before any configuration) to a staging dir inside our
    /// temp dir (so the watchdog removes it if we die) and atomically renames it into place.
    fn publish_template(&self, template: &Path) -> Result<()> {
        let staging = self.root.join("template-staging");
        fs::create_dir(&staging).with_context(|| format!("create {}", staging.display()))?;
        fs::set_permissions(&staging, fs::Permissions::from_mode(0o755))?;
        if let Some(user) = &self.run_as {
            std::os::unix::fs::chown(&staging, Some(user.uid), Some(user.gid))?;
        }
        let mut cp = Command::new("cp");
        cp.arg("-a")
            .arg(&self.data_dir)
            .arg(staging.join("data"))
            .stdin(Stdio::null());
        run_checked(&mut cp, "copy data dir to template staging dir")?;
        let entries = count_entries(&staging.join("data"))?;
        self.write_owned(&staging.join(TEMPLATE_MARKER), &format!("entries={entries}\n"))?;
        if fs::symlink_metadata(template).is_ok() && !template_is_valid(template) {
            discard_template(template);
        }
        match fs::rename(&staging, template) {
            Ok(()) => {
                tracing::debug!(template = %template.display(), "published initdb template");
                Ok(())
            }
            Err(e) => {
                // Most likely another process published one first.
                let _ = fs::remove_dir_all(&staging);
                Err(anyhow!(e).context(format!("rename template into {}", template.display())))
            }
        }
    }

    fn initdb(&self) -> Result<()> {
        let mut cmd = self.server_command("initdb");
        cmd.arg("-D")
            .arg(&self.data_dir)
            .args(["-A", "trust", "-U", "postgres", "--no-sync", "-E", "UTF8"])
            .arg("--locale=C");
        run_checked(&mut cmd, &format!("initdb for cluster {}", self.name))?;
        Ok(())
    }

    fn write_config(&self, extra: &[(String, String)]) -> Result<()> {
        let mut conf = String::from("# written by pgvshift localpg\n");
        let socket_dir = self
            .root
            .to_str()
            .ok_or_else(|| anyhow!("temp dir path is not UTF-8: {}", self.root.to_string_lossy()))?;
        let per_cluster = [
            ("port".to_owned(), self.port.to_string()),
            ("unix_socket_directories".to_owned(), socket_dir.to_owned()),
        ];
        let defaults = DEFAULT_SETTINGS.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned()));
        for (key, value) in defaults.chain(per_cluster).chain(extra.iter().cloned()) {
            conf.push_str(&format!("{key} = {}\n", quote_conf_value(&value)));
        }
        let conf_path = self.data_dir.join("pgvshift.conf");
        self.write_owned(&conf_path, &conf)?;
        self.write_owned(&self.data_dir.join("pg_hba.conf"), &self.pg_hba)?;

        let main_conf = self.data_dir.join("postgresql.conf");
        let existing = fs::read_to_string(&main_conf).with_context(|| format!("read {}", main_conf.display()))?;
        const INCLUDE: &str = "include_if_exists = 'pgvshift.conf'";
        if !existing.contains(INCLUDE) {
            let mut f = fs::OpenOptions::new()
                .append(true)
                .open(&main_conf)
                .with_context(|| format!("open {}", main_conf.display()))?;
            writeln!(f, "\n{INCLUDE}").with_context(|| format!("write {}", main_conf.display()))?;
        }
        Ok(())
    }

    /// Makes `server.crt` / `server.key` in the temporary directory (key mode 0600, both owned
    /// by the server's user) and a world-readable copy `root.crt` of the certificate; returns
    /// the settings that turn TLS on with them.
    ///
    /// The certificate is self-signed for `localhost` and 127.0.0.1, and marked as not a CA:
    /// `openssl req -x509` marks it as a CA by default, and rustls (webpki) refuses a CA
    /// certificate presented as a server's own ("CaUsedAsEndEntity").
    fn make_certificate(&mut self) -> Result<Vec<(String, String)>> {
        let (cert, key, root) = (
            self.root.join("server.crt"),
            self.root.join("server.key"),
            self.root.join("root.crt"),
        );
        make_self_signed_certificate(&cert, &key, "localhost", "DNS:localhost,IP:127.0.0.1")
            .with_context(|| format!("TLS certificate for cluster {}", self.name))?;
        fs::set_permissions(&key, fs::Permissions::from_mode(0o600))
            .with_context(|| format!("chmod 0600 {}", key.display()))?;
        if let Some(user) = &self.run_as {
            for path in [&cert, &key] {
                std::os::unix::fs::chown(path, Some(user.uid), Some(user.gid))
                    .with_context(|| format!("chown {}", path.display()))?;
            }
        }
        fs::copy(&cert, &root).with_context(|| format!("copy {} to {}", cert.display(), root.display()))?;
        fs::set_permissions(&root, fs::Permissions::from_mode(0o644))?;
        self.tls_root_cert = Some(root);
        let path = |p: &Path| p.to_string_lossy().into_owned();
        Ok(vec![
            ("ssl".to_owned(), "on".to_owned()),
            ("ssl_cert_file".to_owned(), path(&cert)),
            ("ssl_key_file".to_owned(), path(&key)),
        ])
    }

    /// Writes a file that the server must be able to read (owned by it when we are root).
    fn write_owned(&self, path: &Path, contents: &str) -> Result<()> {
        fs::write(path, contents).with_context(|| format!("write {}", path.display()))?;
        if let Some(user) = &self.run_as {
            std::os::unix::fs::chown(path, Some(user.uid), Some(user.gid))
                .with_context(|| format!("chown {}", path.display()))?;
        }
        Ok(())
    }

    fn pg_ctl_start(&self) -> std::result::Result<(), StartError> {
        let log_offset = fs::metadata(&self.log_file).map(|m| m.len()).unwrap_or(0);
        let mut cmd = self.server_command("pg_ctl");
        cmd.arg("-D").arg(&self.data_dir).arg("-l").arg(&self.log_file).args([
            "-w",
            "-t",
            &READY_TIMEOUT.as_secs().to_string(),
            "start",
        ]);
        let out = match run(&mut cmd) {
            Ok(out) => out,
            Err(e) => return Err(StartError::Other(e.context("spawn pg_ctl start"))),
        };
        if out.status.success() {
            return Ok(());
        }
        let new_log = log_tail(&self.log_file, log_offset, LOG_TAIL_LINES);
        let msg = format!(
            "pg_ctl start of cluster {} on port {} failed ({}): {}\n--- server log ---\n{}",
            self.name,
            self.port,
            out.status,
            output_text(&out),
            new_log
        );
        // Make sure a half-started server does not linger before a retry.
        let _ = self.pg_ctl_stop(Duration::from_secs(10));
        if is_port_conflict(&new_log) {
            Err(StartError::PortInUse(msg))
        } else {
            Err(StartError::Other(anyhow!(msg)))
        }
    }

    /// Stops the server: fast shutdown, then immediate, then SIGKILL of the postmaster.
    /// Succeeds if no server is running.
    fn pg_ctl_stop(&self, fast_timeout: Duration) -> Result<()> {
        let pid_file = self.data_dir.join("postmaster.pid");
        if !pid_file.exists() {
            return Ok(());
        }
        let mut errors = Vec::new();
        for (mode, timeout) in [("fast", fast_timeout), ("immediate", Duration::from_secs(20))] {
            let mut cmd = self.server_command("pg_ctl");
            cmd.arg("-D")
                .arg(&self.data_dir)
                .args(["-m", mode, "-w", "-t", &timeout.as_secs().max(1).to_string()])
                .arg("stop");
            match run(&mut cmd) {
                Ok(out) if out.status.success() => return Ok(()),
                Ok(out) => {
                    let text = output_text(&out);
                    if text.contains("Is server running?") || !pid_file.exists() {
                        return Ok(()); // not running (any more)
                    }
                    errors.push(format!("pg_ctl stop -m {mode}: {text}"));
                }
                Err(e) => errors.push(format!("pg_ctl stop -m {mode}: {e:#}")),
            }
        }
        // Last resort: SIGKILL the postmaster named in postmaster.pid.
        if let Some(pid) = fs::read_to_string(&pid_file)
            .ok()
            .and_then(|s| s.lines().next().and_then(|l| l.trim().parse::<u32>().ok()))
        {
            let _ = Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
            let deadline = Instant::now() + Duration::from_secs(10);
            while Path::new(&format!("/proc/{pid}")).exists() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(50));
            }
            if !Path::new(&format!("/proc/{pid}")).exists() {
                tracing::warn!(cluster = %self.name, "had to SIGKILL postmaster: {}", errors.join("; "));
                return Ok(());
            }
        }
        bail!(
            "could not stop cluster {}: {}\n--- server log ---\n{}",
            self.name,
            errors.join("; "),
            self.log_tail(LOG_TAIL_LINES)
        )
    }

    /// Waits until the server accepts connections on 127.0.0.1:port.
    fn wait_ready(&self, deadline: Instant) -> Result<()> {
        loop {
            let mut cmd = self.client_command("pg_isready");
            cmd.args(["-h", "127.0.0.1", "-p", &self.port.to_string()])
                .args(["-U", "postgres", "-d", "postgres", "-t", "5"]);
            let last = match run(&mut cmd) {
                Ok(out) if out.status.success() => return Ok(()),
                Ok(out) => format!("pg_isready ({}): {}", out.status, output_text(&out)),
                Err(e) => format!("{e:#}"),
            };
            if Instant::now() >= deadline {
                bail!(
                    "cluster {} did not accept connections on 127.0.0.1:{} in time; last: {}\n--- server log ---\n{}",
                    self.name,
                    self.port,
                    last,
                    self.log_tail(LOG_TAIL_LINES)
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for LocalCluster {
    fn drop(&mut self) {
        if let Err(e) = self.shutdown() {
            tracing::warn!(cluster = %self.name, "cleanup of local PostgreSQL cluster failed: {e:#}");
        }
    }
}

enum StartError {
    PortInUse(String),
    Other(anyhow::Error),
}

/// One source and one target cluster per process, started lazily (in parallel) on first use
/// and shared by every test of a test binary. They are never dropped; their watchdogs remove
/// them when the process exits. Panics if the clusters cannot be started.
pub fn shared_pair() -> &'static (LocalCluster, LocalCluster) {
    static PAIR: OnceLock<(LocalCluster, LocalCluster)> = OnceLock::new();
    PAIR.get_or_init(|| {
        let (source, target) = std::thread::scope(|s| {
            let source = s.spawn(|| LocalCluster::start(ClusterOptions::new("source")));
            let target = s.spawn(|| LocalCluster::start(ClusterOptions::new("target")));
            (join_start(source), join_start(target))
        });
        match (source, target) {
            (Ok(s), Ok(t)) => (s, t),
            (Err(e), _) | (_, Err(e)) => panic!("localpg::shared_pair: {e:#}"),
        }
    })
}

fn join_start(h: std::thread::ScopedJoinHandle<'_, Result<LocalCluster>>) -> Result<LocalCluster> {
    h.join()
        .unwrap_or_else(|_| Err(anyhow!("cluster start thread panicked")))
}

/// A name unique within this machine's recent history: `<prefix>_<pid>_<counter>`, lowercase
/// `[a-z0-9_]` only, starting with a letter or `_`, at most 63 bytes — usable unquoted as a
/// database, replication slot or publication name.
pub fn unique_name(prefix: &str) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let suffix = format!("_{}_{}", std::process::id(), n);
    let mut prefix = sanitize(prefix, "x");
    if !prefix.starts_with(|c: char| c.is_ascii_lowercase() || c == '_') {
        prefix.insert(0, 'x');
    }
    prefix.truncate(63 - suffix.len());
    prefix + &suffix
}

/// The directory with the PostgreSQL server binaries: `$PGVSHIFT_PG_BINDIR`, else
/// `pg_config --bindir`, else the highest-numbered `/usr/lib/postgresql/*/bin` with `initdb`.
pub fn pg_bindir() -> Result<PathBuf> {
    static BINDIR: OnceLock<std::result::Result<PathBuf, String>> = OnceLock::new();
    BINDIR
        .get_or_init(|| find_bindir().map_err(|e| format!("{e:#}")))
        .clone()
        .map_err(|e| anyhow!(e))
}

fn find_bindir() -> Result<PathBuf> {
    if let Some(dir) = std::env::var_os("PGVSHIFT_PG_BINDIR").filter(|d| !d.is_empty()) {
        let dir = PathBuf::from(dir);
        if !dir.join("initdb").is_file() {
            bail!("PGVSHIFT_PG_BINDIR={} has no initdb", dir.display());
        }
        return Ok(dir);
    }
    if let Ok(out) = Command::new("pg_config").arg("--bindir").stdin(Stdio::null()).output() {
        if out.status.success() {
            let dir = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
            if dir.join("initdb").is_file() {
                return Ok(dir);
            }
        }
    }
    let mut best: Option<(u32, PathBuf)> = None;
    if let Ok(entries) = fs::read_dir("/usr/lib/postgresql") {
        for entry in entries.flatten() {
            let Some(version) = entry
                .file_name()
                .to_str()
                .and_then(|s| s.split('.').next()?.parse::<u32>().ok())
            else {
                continue;
            };
            let bin = entry.path().join("bin");
            let better = match &best {
                Some((v, _)) => version > *v,
                None => true,
            };
            if better && bin.join("initdb").is_file() {
                best = Some((version, bin));
            }
        }
    }
    best.map(|(_, p)| p).ok_or_else(|| {
        anyhow!(
            "no PostgreSQL server binaries found: set PGVSHIFT_PG_BINDIR, put pg_config on PATH or install postgresql"
        )
    })
}

const TEMPLATE_MARKER: &str = "pgvshift-template-complete";

/// Template caching is on unless `PGVSHIFT_LOCALPG_TEMPLATE=0`.
fn template_enabled() -> bool {
    !matches!(
        std::env::var("PGVSHIFT_LOCALPG_TEMPLATE").as_deref(),
        Ok("0" | "off" | "false" | "no")
    )
}

/// `$TMPDIR/pgvshift-template-<pg major>-<uid of the server user>`.
fn template_dir() -> Result<PathBuf> {
    let uid = template_owner()?;
    let major = pg_major_version()?;
    Ok(std::env::temp_dir().join(format!("pgvshift-template-{major}-{uid}")))
}

/// The uid that runs the server and so owns data dirs and the template.
fn template_owner() -> Result<u32> {
    Ok(match server_user()? {
        Some(user) => user.uid,
        None => own_uid()?,
    })
}

/// A template is only used if it is a real directory owned by the server user, not writable
/// by others, completely published (marker file) and still complete (entry count matches:
/// tmp cleaners may have removed old files).
fn template_is_valid(dir: &Path) -> bool {
    let check = || -> Result<bool> {
        let meta = fs::symlink_metadata(dir)?;
        if !meta.is_dir() || meta.uid() != template_owner()? || meta.mode() & 0o022 != 0 {
            return Ok(false);
        }
        let marker = fs::read_to_string(dir.join(TEMPLATE_MARKER))?;
        let Some(expected) = marker
            .trim()
            .strip_prefix("entries=")
            .and_then(|n| n.parse::<u64>().ok())
        else {
            return Ok(false);
        };
        Ok(dir.join("data/PG_VERSION").is_file() && count_entries(&dir.join("data"))? == expected)
    };
    check().unwrap_or(false)
}

/// Removes a template (renaming it away first so nobody sees it half-deleted).
fn discard_template(dir: &Path) {
    let trash = dir.with_file_name(format!(
        "{}.trash-{}-{:08x}",
        dir.file_name().and_then(|n| n.to_str()).unwrap_or("template"),
        std::process::id(),
        rand::thread_rng().gen::<u32>()
    ));
    if fs::rename(dir, &trash).is_ok() {
        let _ = fs::remove_dir_all(&trash);
    }
}

/// Number of files and directories below `dir` (not following symlinks).
fn count_entries(dir: &Path) -> Result<u64> {
    let mut count = 0;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in fs::read_dir(&d).with_context(|| format!("read {}", d.display()))? {
            let entry = entry?;
            count += 1;
            if entry.file_type()?.is_dir() {
                stack.push(entry.path());
            }
        }
    }
    Ok(count)
}

/// Major version of the server binaries, from `pg_ctl --version` (e.g. "pg_ctl (PostgreSQL) 15.20").
fn pg_major_version() -> Result<u32> {
    static MAJOR: OnceLock<std::result::Result<u32, String>> = OnceLock::new();
    MAJOR
        .get_or_init(|| {
            let query = || -> Result<u32> {
                let bindir = pg_bindir()?;
                let mut cmd = Command::new(bindir.join("pg_ctl"));
                cmd.arg("--version");
                clean_env(&mut cmd);
                let out = run_checked(&mut cmd, "pg_ctl --version")?;
                let text = String::from_utf8_lossy(&out.stdout);
                text.split("(PostgreSQL)")
                    .nth(1)
                    .and_then(|v| {
                        let v = v.trim_start();
                        let digits: String = v.chars().take_while(char::is_ascii_digit).collect();
                        digits.parse().ok()
                    })
                    .ok_or_else(|| anyhow!("unexpected pg_ctl --version output: {text:?}"))
            };
            query().map_err(|e| format!("{e:#}"))
        })
        .clone()
        .map_err(|e| anyhow!(e))
}

/// Our effective uid (via `id -u`; `unsafe` libc calls are forbidden in this crate).
fn own_uid() -> Result<u32> {
    static UID: OnceLock<std::result::Result<u32, String>> = OnceLock::new();
    UID.get_or_init(|| id_query(&["-u"]).map_err(|e| format!("{e:#}")))
        .clone()
        .map_err(|e| anyhow!(e))
}

/// `Some(postgres user)` when we are root (server tools must then run as that user).
fn server_user() -> Result<Option<OsUser>> {
    static USER: OnceLock<std::result::Result<Option<OsUser>, String>> = OnceLock::new();
    USER.get_or_init(|| lookup_server_user().map_err(|e| format!("{e:#}")))
        .clone()
        .map_err(|e| anyhow!(e))
}

fn lookup_server_user() -> Result<Option<OsUser>> {
    if own_uid()? != 0 {
        return Ok(None);
    }
    let name = "postgres";
    let uid = id_query(&["-u", name])
        .context("we run as root, so the server must run as OS user `postgres`, which was not found")?;
    let gid = id_query(&["-g", name])?;
    Ok(Some(OsUser {
        name: name.to_owned(),
        uid,
        gid,
    }))
}

fn id_query(args: &[&str]) -> Result<u32> {
    let out = Command::new("id")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .context("run `id`")?;
    if !out.status.success() {
        bail!("id {}: {}", args.join(" "), output_text(&out));
    }
    let text = String::from_utf8_lossy(&out.stdout);
    text.trim()
        .parse()
        .with_context(|| format!("parse output of `id {}`: {text:?}", args.join(" ")))
}

/// Makes a self-signed certificate and its unencrypted RSA key with the `openssl` CLI (valid
/// for 2 days; `CN=<common_name>`, subjectAltName `alt_names`, e.g.
/// `"DNS:localhost,IP:127.0.0.1"`; not a CA). Also used by tests for an unrelated certificate.
pub fn make_self_signed_certificate(cert: &Path, key: &Path, common_name: &str, alt_names: &str) -> Result<()> {
    let mut cmd = Command::new("openssl");
    cmd.args(["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj"])
        .arg(format!("/CN={common_name}"))
        .arg("-addext")
        .arg(format!("subjectAltName={alt_names}"))
        .args(["-addext", "basicConstraints=critical,CA:FALSE", "-keyout"])
        .arg(key)
        .arg("-out")
        .arg(cert);
    clean_env(&mut cmd);
    match run(&mut cmd) {
        Ok(out) if out.status.success() => Ok(()),
        Ok(out) => bail!("openssl req -x509 failed ({}): {}", out.status, output_text(&out)),
        Err(e) => Err(e.context("run openssl (install it, e.g. with scripts/setup.sh)")),
    }
}

/// Creates `$TMPDIR/pgvshift-<name>-<pid>-<random>` (must not exist yet).
fn make_temp_dir(name: &str) -> Result<PathBuf> {
    let base = std::env::temp_dir();
    let mut rng = rand::thread_rng();
    for _ in 0..100 {
        let suffix: u32 = rng.gen();
        let dir = base.join(format!("pgvshift-{name}-{}-{suffix:08x}", std::process::id()));
        match fs::create_dir(&dir) {
            Ok(()) => {
                // The unix socket path must fit into sun_path (107 bytes).
                let socket_len = dir.as_os_str().len() + "/.s.PGSQL.65535".len();
                if socket_len > 107 {
                    let _ = fs::remove_dir(&dir);
                    bail!(
                        "temp dir path {} is too long for a unix socket; set TMPDIR to a shorter path",
                        dir.display()
                    );
                }
                return Ok(dir);
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e).with_context(|| format!("create {}", dir.display())),
        }
    }
    bail!("could not create a unique temp dir under {}", base.display())
}

/// Ports handed out in this process whose server has not bound them yet.
fn reserved_ports() -> &'static Mutex<HashSet<u16>> {
    static RESERVED: OnceLock<Mutex<HashSet<u16>>> = OnceLock::new();
    RESERVED.get_or_init(|| Mutex::new(HashSet::new()))
}

fn release_port(port: u16) {
    reserved_ports().lock().unwrap_or_else(|e| e.into_inner()).remove(&port);
}

/// Picks a port that is currently free on 127.0.0.1, preferably outside the ephemeral range.
fn pick_port() -> Result<u16> {
    #[cfg(test)]
    if let Some(port) = tests::FORCED_PORT.with(|p| p.take()) {
        return Ok(port);
    }
    let mut reserved = reserved_ports().lock().unwrap_or_else(|e| e.into_inner());
    let (eph_low, _) = ephemeral_port_range();
    let low: u16 = 15000;
    let mut rng = rand::thread_rng();
    if eph_low > low + 1000 {
        for _ in 0..50 {
            let port = rng.gen_range(low..eph_low);
            if !reserved.contains(&port) && port_is_free(port) {
                reserved.insert(port);
                return Ok(port);
            }
        }
    }
    for _ in 0..50 {
        let listener = TcpListener::bind(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 0))
            .context("bind 127.0.0.1:0 to find a free port")?;
        let port = listener.local_addr()?.port();
        if !reserved.contains(&port) {
            reserved.insert(port);
            return Ok(port);
        }
    }
    bail!("could not find a free TCP port on 127.0.0.1")
}

fn port_is_free(port: u16) -> bool {
    let addr = SocketAddrV4::new(Ipv4Addr::LOCALHOST, port);
    if TcpListener::bind(addr).is_err() {
        return false;
    }
    // A listener on another address that still answers for 127.0.0.1 (e.g. with SO_REUSEPORT).
    TcpStream::connect_timeout(&addr.into(), Duration::from_millis(200)).is_err()
}

fn ephemeral_port_range() -> (u16, u16) {
    fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|s| {
            let mut it = s.split_whitespace().map(|p| p.parse::<u16>().ok());
            Some((it.next()??, it.next()??))
        })
        .unwrap_or((32768, 60999))
}

fn is_port_conflict(log: &str) -> bool {
    log.contains("Address already in use")
        || log.contains("could not bind IPv4 address")
        || log.contains("could not create any TCP/IP sockets")
        || log.contains("could not create listen socket")
}

/// Removes all `PG*` variables so the caller's libpq environment cannot redirect our tools.
fn clean_env(cmd: &mut Command) {
    for (key, _) in std::env::vars_os() {
        if key.as_encoded_bytes().starts_with(b"PG") {
            cmd.env_remove(&key);
        }
    }
}

fn run(cmd: &mut Command) -> Result<Output> {
    cmd.stdin(Stdio::null());
    cmd.output().with_context(|| format!("spawn {}", program_name(cmd)))
}

fn run_checked(cmd: &mut Command, what: &str) -> Result<Output> {
    let out = run(cmd).with_context(|| what.to_owned())?;
    if !out.status.success() {
        bail!("{what} failed ({}): {}", out.status, output_text(&out));
    }
    Ok(out)
}

fn program_name(cmd: &Command) -> String {
    std::iter::once(cmd.get_program())
        .chain(cmd.get_args().take(4))
        .map(OsStr::to_string_lossy)
        .collect::<Vec<_>>()
        .join(" ")
}

fn output_text(out: &Output) -> String {
    let mut text = String::from_utf8_lossy(&out.stderr).trim().to_owned();
    let stdout = String::from_utf8_lossy(&out.stdout);
    if !stdout.trim().is_empty() {
        if !text.is_empty() {
            text.push('\n');
        }
        text.push_str(stdout.trim());
    }
    text
}

/// The last `lines` lines of `path`, reading from byte `from` on (at most the last 64 KiB).
fn log_tail(path: &Path, from: u64, lines: usize) -> String {
    let read = || -> std::io::Result<String> {
        let mut f = fs::File::open(path)?;
        let len = f.metadata()?.len();
        let start = from.max(len.saturating_sub(64 * 1024));
        f.seek(SeekFrom::Start(start))?;
        let mut buf = Vec::new();
        f.read_to_end(&mut buf)?;
        Ok(String::from_utf8_lossy(&buf).into_owned())
    };
    match read() {
        Ok(text) => {
            let all: Vec<&str> = text.lines().collect();
            all[all.len().saturating_sub(lines)..].join("\n")
        }
        Err(e) => format!("(could not read {}: {e})", path.display()),
    }
}

fn sanitize(s: &str, fallback: &str) -> String {
    let out: String = s
        .chars()
        .map(|c| {
            let c = c.to_ascii_lowercase();
            if c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if out.is_empty() {
        fallback.to_owned()
    } else {
        out
    }
}

fn validate_setting_name(name: &str) -> Result<()> {
    let ok = !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.');
    if !ok {
        bail!("invalid PostgreSQL setting name {name:?}");
    }
    Ok(())
}

fn quote_conf_value(value: &str) -> String {
    if value.len() >= 2 && value.starts_with('\'') && value.ends_with('\'') {
        return value.replace(['\n', '\r'], " ");
    }
    format!("'{}'", value.replace(['\n', '\r'], " ").replace('\'', "''"))
}

fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn abbreviate(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_owned();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    thread_local! {
        /// Makes the next `pick_port` on this thread return this port (to test the retry).
        pub(super) static FORCED_PORT: std::cell::Cell<Option<u16>> = const { std::cell::Cell::new(None) };
    }

    #[test]
    fn start_retries_when_port_is_taken() {
        let blocker = TcpListener::bind(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 0)).unwrap();
        let taken = blocker.local_addr().unwrap().port();
        FORCED_PORT.with(|p| p.set(Some(taken)));
        let cluster = LocalCluster::start(ClusterOptions::new("portrace")).expect("start");
        assert_eq!(FORCED_PORT.with(|p| p.get()), None, "forced port was not used");
        assert_ne!(cluster.port(), taken);
        assert_eq!(cluster.psql("postgres", "SELECT 1").unwrap().trim(), "1");
        assert!(
            fs::read_to_string(cluster.log_file())
                .unwrap()
                .contains("Address already in use"),
            "first attempt should have hit the taken port"
        );
        cluster.stop().unwrap();
        drop(blocker);
    }

    fn accepts_connections(port: u16) -> bool {
        TcpStream::connect_timeout(
            &SocketAddrV4::new(Ipv4Addr::LOCALHOST, port).into(),
            Duration::from_millis(500),
        )
        .is_ok()
    }

    #[test]
    fn unique_names_are_identifier_safe() {
        let a = unique_name("Test-Slot");
        let b = unique_name("Test-Slot");
        assert_ne!(a, b);
        assert!(a.starts_with("test_slot_"), "{a}");
        assert!(a
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'));
        assert!(unique_name("9lives").starts_with('x'));
        assert!(unique_name("").starts_with('x'));
        assert!(unique_name(&"a".repeat(200)).len() <= 63);
    }

    #[test]
    fn helpers() {
        assert_eq!(quote_conf_value("on"), "'on'");
        assert_eq!(quote_conf_value("'x'"), "'x'");
        assert_eq!(quote_conf_value("a'b"), "'a''b'");
        assert_eq!(quote_ident("a\"b"), "\"a\"\"b\"");
        assert_eq!(percent_encode("db_1"), "db_1");
        assert_eq!(percent_encode("a b/c"), "a%20b%2Fc");
        assert!(validate_setting_name("a\nb").is_err());
        assert!(validate_setting_name("pg_stat_statements.max").is_ok());
    }

    #[test]
    fn tls_and_pg_hba_options() {
        let hba = "hostssl all postgres 127.0.0.1/32 trust\nhostssl replication postgres 127.0.0.1/32 trust\n";
        let cluster = LocalCluster::start(ClusterOptions::new("tlsopt").with_tls().pg_hba(hba)).expect("start");
        // psql (libpq's default sslmode=prefer) gets in over TLS, the only way pg_hba.conf allows
        let ssl = cluster
            .psql("postgres", "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
            .unwrap();
        assert_eq!(ssl.trim(), "t");
        assert_eq!(fs::read_to_string(cluster.data_dir().join("pg_hba.conf")).unwrap(), hba);
        let key = fs::metadata(cluster.root.join("server.key")).unwrap();
        assert_eq!(key.permissions().mode() & 0o777, 0o600);
        if let Some(user) = &cluster.run_as {
            assert_eq!(key.uid(), user.uid);
        }
        let root = cluster.tls_root_cert().expect("a certificate path");
        let pem = fs::read_to_string(root).unwrap();
        assert!(pem.starts_with("-----BEGIN CERTIFICATE-----"), "{pem}");
        assert_eq!(fs::metadata(root).unwrap().permissions().mode() & 0o777, 0o644);
        cluster.stop().unwrap();
        // Defaults unchanged: no TLS, trust everything local.
        assert!(!ClusterOptions::new("x").tls && ClusterOptions::new("x").pg_hba.is_none());
    }

    #[test]
    fn cluster_lifecycle() {
        let t0 = Instant::now();
        let cluster =
            LocalCluster::start(ClusterOptions::new("unit-test").setting("work_mem", "8MB")).expect("start cluster");
        eprintln!("LocalCluster::start took {:?}", t0.elapsed());
        let port = cluster.port();
        let data_dir = cluster.data_dir().to_path_buf();
        assert!(data_dir.join("PG_VERSION").is_file());
        assert_eq!(
            cluster.url("some_db"),
            format!("postgresql://postgres@127.0.0.1:{port}/some_db")
        );

        let db = unique_name("lifecycle");
        cluster.create_database(&db).expect("create database");
        let out = cluster
            .psql(&db, "CREATE EXTENSION vector; SELECT '[1,2,3]'::vector;")
            .expect("pgvector");
        assert_eq!(out.trim(), "[1,2,3]");
        assert_eq!(cluster.psql(&db, "SHOW wal_level").unwrap().trim(), "logical");
        assert_eq!(cluster.psql(&db, "SHOW work_mem").unwrap().trim(), "8MB");
        assert_eq!(cluster.psql(&db, "SHOW max_replication_slots").unwrap().trim(), "40");
        assert_eq!(
            cluster.psql(&db, "SHOW unix_socket_directories").unwrap().trim(),
            cluster.socket_dir().to_str().unwrap()
        );
        assert!(cluster.psql(&db, "SELECT * FROM no_such_table").is_err());

        let t1 = Instant::now();
        cluster.restart().expect("restart");
        eprintln!("LocalCluster::restart took {:?}", t1.elapsed());
        assert_eq!(cluster.port(), port);
        assert_eq!(cluster.psql(&db, "SELECT '[4,5]'::vector").unwrap().trim(), "[4,5]");

        let root = cluster.socket_dir().to_path_buf();
        let t2 = Instant::now();
        cluster.stop().expect("stop");
        eprintln!("LocalCluster::stop took {:?}", t2.elapsed());
        assert!(!data_dir.exists(), "data dir still exists");
        assert!(!root.exists(), "temp dir still exists");
        assert!(!accepts_connections(port), "port {port} still accepts connections");
    }

    #[test]
    fn drop_cleans_up() {
        let cluster = LocalCluster::start(ClusterOptions::new("drop")).expect("start");
        let port = cluster.port();
        let root = cluster.socket_dir().to_path_buf();
        drop(cluster);
        assert!(!root.exists());
        assert!(!accepts_connections(port));
    }

    #[test]
    fn shared_pair_has_two_clusters() {
        let t0 = Instant::now();
        let (source, target) = shared_pair();
        eprintln!("shared_pair took {:?}", t0.elapsed());
        assert_ne!(source.port(), target.port());
        assert_ne!(source.data_dir(), target.data_dir());
        assert!(std::ptr::eq(shared_pair(), shared_pair()));
        for c in [source, target] {
            assert_eq!(c.psql("postgres", "SELECT 1").unwrap().trim(), "1");
            let db = unique_name("pair");
            c.create_database(&db).unwrap();
            assert_eq!(c.psql(&db, "SELECT current_database()").unwrap().trim(), db);
        }
    }

    const CHILD_ENV: &str = "PGVSHIFT_LOCALPG_SIGKILL_CHILD";

    /// Helper run as a subprocess by `watchdog_cleans_up_after_sigkill`; a no-op otherwise.
    #[test]
    #[ignore = "helper for watchdog_cleans_up_after_sigkill"]
    fn sigkill_child() {
        if std::env::var_os(CHILD_ENV).is_none() {
            return;
        }
        let cluster = LocalCluster::start(ClusterOptions::new("sigkill")).expect("start");
        println!("CLUSTER {} {}", cluster.port(), cluster.socket_dir().display());
        std::io::stdout().flush().unwrap();
        // Like a cluster in a static: never dropped. Wait to be killed.
        std::mem::forget(cluster);
        std::thread::sleep(Duration::from_secs(120));
    }

    #[test]
    fn watchdog_cleans_up_after_sigkill() {
        use std::io::BufRead;
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "testkit::localpg::tests::sigkill_child",
                "--ignored",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD_ENV, "1")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn child test process");
        let stdout = child.stdout.take().unwrap();
        let mut line = String::new();
        let mut found = None;
        for l in std::io::BufReader::new(stdout).lines() {
            line = l.expect("read child output");
            // libtest prints "test ... " on the same line before the test's own output.
            if let Some(rest) = line.split_once("CLUSTER ").map(|(_, r)| r) {
                let (port, dir) = rest.split_once(' ').unwrap();
                found = Some((port.parse::<u16>().unwrap(), PathBuf::from(dir)));
                break;
            }
        }
        let Some((port, root)) = found else {
            let _ = child.kill();
            panic!("child did not report a cluster; last line: {line}");
        };
        assert!(accepts_connections(port));
        assert!(root.exists());
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        while (root.exists() || accepts_connections(port)) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(100));
        }
        assert!(!root.exists(), "watchdog did not remove {}", root.display());
        assert!(!accepts_connections(port), "server on port {port} still running");
    }

    /// Manual stress test: `cargo test --lib localpg::tests::parallel_starts -- --ignored --nocapture`.
    #[test]
    #[ignore = "stress test, run manually"]
    fn parallel_starts() {
        let n = 8;
        let t0 = Instant::now();
        let clusters: Vec<LocalCluster> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..n)
                .map(|i| {
                    s.spawn(move || {
                        let t = Instant::now();
                        let c = LocalCluster::start(ClusterOptions::new(format!("stress{i}"))).expect("start");
                        eprintln!("cluster {i} on port {} started in {:?}", c.port(), t.elapsed());
                        c
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        eprintln!("{n} parallel starts took {:?}", t0.elapsed());
        let ports: HashSet<u16> = clusters.iter().map(|c| c.port()).collect();
        assert_eq!(ports.len(), n);
        for c in clusters {
            c.stop().unwrap();
        }
    }

    /// Manual timing: `cargo test --lib localpg::tests::start_timing -- --ignored --nocapture`.
    #[test]
    #[ignore = "timing measurement, run manually"]
    fn start_timing() {
        for template in [false, true, false, true] {
            let mut times = Vec::new();
            for _ in 0..3 {
                let t = Instant::now();
                let c = LocalCluster::start_impl(ClusterOptions::new("timing"), template).expect("start");
                times.push(t.elapsed());
                c.stop().unwrap();
            }
            let label = if template { "template copy" } else { "initdb" };
            eprintln!("start() with {label}: {times:?}");
        }
    }

    #[tokio::test]
    async fn psql_async_works() {
        let (source, _) = tokio::task::spawn_blocking(shared_pair).await.unwrap();
        let db = unique_name("async");
        source.create_database_async(&db).await.unwrap();
        let out = source
            .psql_async(
                &db,
                "CREATE TABLE t (v int); INSERT INTO t VALUES (1), (2); SELECT sum(v) FROM t;",
            )
            .await
            .unwrap();
        assert_eq!(out.trim(), "3");
        assert!(source.psql_async(&db, "SELECT broken(").await.is_err());
    }
}
