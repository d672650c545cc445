//! The `pgvshift` binary as users drive it: exit codes (0 ok, 1 blocking problem, 2 bad usage or
//! config, 3 runtime error), what `plan` prints and that it changes nothing, `status --json`,
//! `cleanup` (refuses without --yes when it cannot ask, then removes exactly pgvshift's own
//! objects), and that a password in a connection URL never appears in any output.

mod support;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Child;

use support::TestEnv;

/// The password put in every URL below; the clusters use trust authentication, which ignores it.
const PASSWORD: &str = "s3cretpw";

/// Keys of `status --json`, exactly.
const STATUS_KEYS: [&str; 13] = [
    "phase",
    "slot",
    "tables",
    "applied_lsn",
    "confirmed_flush_lsn",
    "source_current_lsn",
    "lag_bytes",
    "lag_seconds",
    "seconds_since_last_applied_commit",
    "slot_active",
    "retained_wal_bytes",
    "wal_status",
    "snapshot_age_secs",
];

/// `postgresql://postgres:s3cretpw@127.0.0.1:<port>/<db>`
fn url_with_password(port: u16, db: &str) -> String {
    format!("postgresql://postgres:{PASSWORD}@127.0.0.1:{port}/{db}")
}

/// A config for `tables` whose URLs carry a password. `source_port` / `target_port` override
/// the clusters' ports (to point at a port nothing listens on).
fn write_config(env: &TestEnv, tables: &[&str], source_port: Option<u16>, target_port: Option<u16>) -> PathBuf {
    let mut toml = format!(
        "[source]\nurl = \"{}\"\n[target]\nurl = \"{}\"\n[replication]\nslot = \"{}\"\npublication = \"{}\"\nstatus_interval_secs = 1\n",
        url_with_password(source_port.unwrap_or(env.source.port()), &env.name),
        url_with_password(target_port.unwrap_or(env.target.port()), &env.name),
        env.name,
        env.name
    );
    for t in tables {
        toml.push_str(&format!("[[tables]]\nsource = \"{t}\"\n"));
    }
    let path = env.dir.join(format!(
        "cli-{}-{}.toml",
        source_port.unwrap_or(0),
        target_port.unwrap_or(0)
    ));
    std::fs::write(&path, toml).unwrap();
    path
}

/// Run the binary; assert the exit code and that the password is in neither stream.
fn pgvshift(env: &TestEnv, args: &[&str], want_code: i32) -> (String, String) {
    let (code, stdout, stderr) = env.run_binary(args);
    assert_eq!(
        code, want_code,
        "pgvshift {args:?}: exit code\nstdout:\n{stdout}\nstderr:\n{stderr}"
    );
    assert_no_password(&format!("pgvshift {args:?}"), &stdout, &stderr);
    (stdout, stderr)
}

fn assert_no_password(what: &str, stdout: &str, stderr: &str) {
    assert!(
        !stdout.contains(PASSWORD),
        "{what}: the password appears on stdout:\n{stdout}"
    );
    assert!(
        !stderr.contains(PASSWORD),
        "{what}: the password appears on stderr:\n{stderr}"
    );
}

fn path_str(p: &Path) -> &str {
    p.to_str().expect("utf-8 temp path")
}

/// A TCP port on 127.0.0.1 that nothing listens on.
fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

fn status_json(env: &TestEnv, config: &str) -> serde_json::Map<String, serde_json::Value> {
    let (stdout, _) = pgvshift(env, &["status", "--config", config, "--json"], 0);
    match serde_json::from_str(&stdout) {
        Ok(serde_json::Value::Object(map)) => map,
        other => panic!("status --json did not print a JSON object ({other:?}):\n{stdout}"),
    }
}

/// A `pgvshift run` child process; killed (by its pid) if the test fails before stopping it.
struct RunningBinary(Option<Child>);

impl RunningBinary {
    /// Send SIGTERM (with kill(1): the crate forbids unsafe code, so no libc::kill) and wait;
    /// returns (exit code, stderr).
    fn terminate(mut self) -> (i32, String) {
        let child = self.0.take().expect("still running");
        let pid = child.id().to_string();
        let sent = std::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap();
        assert!(sent.success(), "kill -TERM {pid}");
        let out = child.wait_with_output().unwrap();
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }
}

impl Drop for RunningBinary {
    fn drop(&mut self) {
        if let Some(mut child) = self.0.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

#[test]
fn config_problems_exit_2_and_say_where() {
    let dir = std::env::temp_dir().join(pgvshift::testkit::localpg::unique_name("pgvshift-cli-config"));
    std::fs::create_dir_all(&dir).unwrap();
    let run = |args: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_pgvshift"))
            .args(args)
            .output()
            .unwrap();
        let (stdout, stderr) = (
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        );
        assert_no_password(&format!("pgvshift {args:?}"), &stdout, &stderr);
        (out.status.code().unwrap_or(-1), stderr)
    };

    let missing = dir.join("no-such-config.toml");
    let (code, stderr) = run(&["plan", "--config", path_str(&missing)]);
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains(path_str(&missing)),
        "the message names the missing file:\n{stderr}"
    );

    // An unknown key on line 8, column 1 (the URL on line 2 holds a password).
    let bad = dir.join("unknown-key.toml");
    std::fs::write(
        &bad,
        format!(
            "[source]\nurl = \"{}\"\n[target]\nurl = \"{}\"\n[replication]\nslot = \"s\"\npublication = \"p\"\nbatch_max_chnages = 10\n[[tables]]\nsource = \"public.t\"\n",
            url_with_password(5432, "a"),
            url_with_password(5433, "b")
        ),
    )
    .unwrap();
    let (code, stderr) = run(&["plan", "--config", path_str(&bad)]);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains(path_str(&bad)), "the message names the file:\n{stderr}");
    assert!(
        stderr.contains("batch_max_chnages"),
        "the message names the key:\n{stderr}"
    );
    assert!(
        stderr.contains(":8:1") || stderr.contains("line 8, column 1"),
        "the message gives the line and column (8:1):\n{stderr}"
    );
    std::fs::remove_dir_all(&dir).ok();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plan_blocks_a_table_without_key_or_identity_with_exit_1() {
    let env = TestEnv::new(
        "cli_nopk",
        "CREATE TABLE notes (body text, embedding vector(3)); INSERT INTO notes VALUES ('a', '[1,2,3]');",
    );
    let config = write_config(&env, &["public.notes"], None, None);
    let (stdout, stderr) = pgvshift(&env, &["plan", "--config", path_str(&config)], 1);
    let all = format!("{stdout}\n{stderr}");
    assert!(stderr.contains("public.notes"), "the problem names the table:\n{all}");
    assert!(
        stderr.contains("add a primary key"),
        "the first fix (a primary key) is given:\n{all}"
    );
    assert!(
        stderr.contains("ALTER TABLE public.notes REPLICA IDENTITY FULL"),
        "the second fix (REPLICA IDENTITY FULL) is given:\n{all}"
    );
    assert_eq!(env.footprint(), (false, false, false), "a blocked plan changes nothing");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plan_shows_types_and_ddl_and_changes_nothing() {
    let env = TestEnv::new(
        "cli_plan",
        "CREATE TABLE items (id bigint PRIMARY KEY, title text NOT NULL, embedding vector(768));
         INSERT INTO items SELECT g, 'item ' || g, (SELECT array_agg(g + i * 0.001) FROM generate_series(1, 768) i)::vector
           FROM generate_series(1, 50) g;
         CREATE INDEX items_embedding_idx ON items USING hnsw (embedding vector_cosine_ops) WITH (m = 16, ef_construction = 64);",
    );
    let config = write_config(&env, &["public.items"], None, None);
    let (stdout, _) = pgvshift(&env, &["plan", "--config", path_str(&config)], 0);
    assert!(
        stdout.contains("vector(768)"),
        "the vector column with its dimensions:\n{stdout}"
    );
    assert!(
        stdout.contains("CREATE TABLE IF NOT EXISTS \"public\".\"items\""),
        "the target table DDL:\n{stdout}"
    );
    assert!(
        stdout.contains("\"embedding\" vector(768)"),
        "the DDL keeps the typmod:\n{stdout}"
    );
    assert!(
        stdout.contains("PRIMARY KEY (\"id\")"),
        "the DDL has the primary key:\n{stdout}"
    );
    assert!(
        stdout.contains("CREATE INDEX IF NOT EXISTS \"items_embedding_idx\" ON \"public\".\"items\" USING hnsw (\"embedding\" vector_cosine_ops) WITH (m='16', ef_construction='64')"),
        "the hnsw index DDL:\n{stdout}"
    );
    assert!(stdout.contains("***"), "the URLs are shown redacted:\n{stdout}");
    assert_eq!(
        env.footprint(),
        (false, false, false),
        "plan creates no slot, publication or pgvshift schema"
    );
    assert_eq!(
        env.target_value("SELECT count(*) FROM pg_tables WHERE tablename = 'items'"),
        "0",
        "plan creates no table"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_json_while_streaming_then_stopped_then_cleanup() {
    let env = TestEnv::new(
        "cli_status",
        "CREATE TABLE items (id int PRIMARY KEY, embedding vector(3));
         INSERT INTO items SELECT g, ARRAY[g, g, g]::vector FROM generate_series(1, 100) g;",
    );
    let config = write_config(&env, &["public.items"], None, None);
    let config = path_str(&config);
    let child = RunningBinary(Some(env.spawn_binary(&["run", "--config", config])));
    env.wait_streaming().await;
    // A change applied through the stream: the stream is up (and holds the slot).
    env.source_client()
        .await
        .batch_execute("INSERT INTO items VALUES (101, '[1,0,1]')")
        .await
        .unwrap();
    env.wait_caught_up().await;

    let status = status_json(&env, config);
    let keys: BTreeSet<&str> = status.keys().map(String::as_str).collect();
    assert_eq!(
        keys,
        STATUS_KEYS.into_iter().collect::<BTreeSet<_>>(),
        "status --json keys"
    );
    assert_eq!(status["phase"], "streaming", "{status:?}");
    assert_eq!(status["slot"], env.name.as_str());
    assert_eq!(status["slot_active"], true);
    assert_eq!(status["tables"].as_array().map(Vec::len), Some(1), "{status:?}");
    assert!(
        status["applied_lsn"].is_string() && status["source_current_lsn"].is_string(),
        "{status:?}"
    );
    assert!(status["lag_bytes"].is_i64(), "{status:?}");
    // The human form works too.
    let (human, _) = pgvshift(&env, &["status", "--config", config], 0);
    assert!(human.contains("phase: streaming"), "{human}");

    let (code, stderr) = child.terminate();
    assert_eq!(code, 0, "run stops cleanly on SIGTERM:\n{stderr}");
    assert_no_password("pgvshift run", "", &stderr);
    env.wait_slot_inactive();
    let status = status_json(&env, config);
    assert_eq!(status["phase"], "stopped", "{status:?}");
    assert_eq!(status["slot_active"], false);

    // cleanup: without --yes and without a terminal to ask on, it refuses and changes nothing.
    assert_eq!(env.footprint(), (true, true, true));
    let (_, stderr) = pgvshift(&env, &["cleanup", "--config", config], 2);
    assert!(stderr.contains("--yes"), "the refusal says how to proceed:\n{stderr}");
    assert_eq!(
        env.footprint(),
        (true, true, true),
        "cleanup without --yes changes nothing"
    );

    let (stdout, _) = pgvshift(&env, &["cleanup", "--config", config, "--yes"], 0);
    assert!(!stdout.is_empty(), "cleanup lists what it did");
    assert_eq!(
        env.footprint(),
        (false, false, false),
        "slot, publication and pgvshift schema are gone"
    );
    assert_eq!(
        env.target_value("SELECT count(*) FROM items"),
        "101",
        "the target table and its rows stay"
    );
    env.assert_same("items", "id").await;
    let (stdout, _) = pgvshift(&env, &["status", "--config", config, "--json"], 0);
    assert!(
        stdout.contains("\"not_started\""),
        "after cleanup nothing is recorded:\n{stdout}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connection_errors_exit_3_and_show_only_the_redacted_url() {
    let env = TestEnv::new(
        "cli_conn",
        "CREATE TABLE items (id int PRIMARY KEY, embedding vector(3));",
    );
    let port = closed_port();
    let bad_source = write_config(&env, &["public.items"], Some(port), None);
    let bad_target = write_config(&env, &["public.items"], None, Some(port));
    let redacted = format!("postgresql://postgres:***@127.0.0.1:{port}/{}", env.name);
    for (config, verb) in [
        (&bad_source, "plan"),
        (&bad_target, "plan"),
        (&bad_target, "status"),
        (&bad_source, "cleanup"),
    ] {
        let mut args = vec![verb, "--config", path_str(config)];
        if verb == "cleanup" {
            args.push("--yes");
        }
        let (_, stderr) = pgvshift(&env, &args, 3);
        assert!(
            stderr.contains(&redacted),
            "pgvshift {args:?}: the error shows the redacted URL {redacted}:\n{stderr}"
        );
    }
    // Nothing was created along the way.
    assert_eq!(env.footprint(), (false, false, false));
}
