//! No harm to the source: the snapshot and the stream take no lock stronger than ACCESS SHARE
//! on source tables (the publication is created with a lock_timeout and the REPLICA IDENTITY
//! FULL asked for never queues in front of the application), retained WAL past
//! `max_retained_wal` stops the run with an explanation, and `cleanup` removes what a crashed
//! run left behind so no slot keeps holding WAL.

mod support;

use std::time::{Duration, Instant};

use support::TestEnv;

fn path_str(p: &std::path::Path) -> &str {
    p.to_str().expect("utf-8 temp path")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn snapshot_and_stream_need_only_access_share_on_source_tables() {
    let env = TestEnv::new(
        "prot_locks",
        "CREATE TABLE items (id int PRIMARY KEY, note text, embedding vector(3));
         CREATE INDEX ON items USING hnsw (embedding vector_l2_ops);
         INSERT INTO items SELECT i, 'n' || i, '[1,2,3]' FROM generate_series(1, 500) i;",
    );
    // The publication exists (pgvshift uses it as is); another session holds EXCLUSIVE on the
    // table, which conflicts with every lock but ACCESS SHARE, for the whole snapshot.
    env.source_value(&format!("CREATE PUBLICATION {} FOR TABLE items", env.name));
    let holder = env.source_client().await;
    holder
        .batch_execute("BEGIN; LOCK TABLE items IN EXCLUSIVE MODE")
        .await
        .unwrap();
    let run = env.spawn_run(env.config(&[("public.items", None)]));
    env.wait_streaming().await;
    let still_held: bool = holder
        .query_one(
            "SELECT EXISTS (SELECT 1 FROM pg_locks WHERE pid = pg_backend_pid() AND mode = 'ExclusiveLock' AND relation = 'items'::regclass)",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert!(still_held, "the snapshot completed while the EXCLUSIVE lock was held");
    holder.batch_execute("COMMIT").await.unwrap();
    env.source_value("UPDATE items SET note = 'x' WHERE id <= 10; DELETE FROM items WHERE id > 490");
    env.wait_caught_up().await;
    env.assert_same("items", "id").await;
    run.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replica_identity_full_gives_up_instead_of_queueing_behind_a_reader() {
    let env = TestEnv::new(
        "prot_ri_wait",
        "CREATE TABLE notes (body text, embedding vector(3)); INSERT INTO notes VALUES ('a', '[1,2,3]');",
    );
    // A long read transaction holds ACCESS SHARE. ALTER TABLE .. REPLICA IDENTITY FULL needs
    // ACCESS EXCLUSIVE: queued, it would block every later query of the application.
    let reader = env.source_client().await;
    reader.batch_execute("BEGIN; SELECT count(*) FROM notes").await.unwrap();
    let path = env.write_config_with(&[("public.notes", "replica_identity = \"full\"")], "");
    let config = pgvshift::config::Config::load_with_env(&path, &|_| None).unwrap();
    let started = Instant::now();
    let run = env.spawn_run(config);
    // Meanwhile the application's queries are not blocked behind pgvshift's lock request for
    // longer than the lock_timeout.
    let app = env.source_client().await;
    app.batch_execute("SET statement_timeout = '30s'").await.unwrap();
    app.query_one("SELECT count(*) FROM notes", &[]).await.unwrap();
    let message = run.failure().await;
    assert!(
        message.contains("setting REPLICA IDENTITY FULL on source table public.notes")
            && message.contains("lock timeout")
            && message.contains("5s"),
        "{message}"
    );
    assert!(started.elapsed() < Duration::from_secs(60));
    reader.batch_execute("COMMIT").await.unwrap();
    assert_eq!(
        env.source_value("SELECT relreplident FROM pg_class WHERE relname = 'notes'"),
        "d"
    );
    assert_eq!(env.footprint(), (false, false, false), "nothing was created");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retained_wal_past_the_limit_stops_streaming_and_run_resumes_later() {
    let env = TestEnv::new(
        "prot_wal",
        "CREATE TABLE items (id int PRIMARY KEY, note text);
         CREATE TABLE filler (id serial PRIMARY KEY, pad text);
         INSERT INTO items SELECT i, 'n' || i FROM generate_series(1, 100) i;",
    );
    let path = env.write_config(
        &[("public.items", None), ("public.filler", None)],
        "warn_retained_wal = \"1MB\"\nmax_retained_wal = \"4MB\"",
    );
    let config = pgvshift::config::Config::load_with_env(&path, &|_| None).unwrap();
    let run = env.spawn_run(config);
    env.wait_streaming().await;
    // An open write transaction keeps the slot's restart_lsn where it began, so the WAL written
    // after it is retained however fast pgvshift applies.
    let open = env.source_client().await;
    open.batch_execute("BEGIN; INSERT INTO items VALUES (1000, 'open')")
        .await
        .unwrap();
    let writer = env.source_client().await;
    for _ in 0..12 {
        writer
            .batch_execute("INSERT INTO filler (pad) SELECT repeat('x', 1000) FROM generate_series(1, 1000)")
            .await
            .unwrap();
    }
    let message = run.failure().await;
    assert!(
        message.contains("more than max_retained_wal (4.0 MB)")
            && message.contains("streaming stopped")
            && message.contains("raise max_retained_wal")
            && message.contains("pgvshift cleanup"),
        "{message}"
    );
    let (code, stdout, stderr) = env.run_binary(&["status", "--config", path_str(&path), "--json"]);
    assert_eq!(code, 0, "{stderr}");
    let status: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert!(
        status["retained_wal_bytes"].as_i64().unwrap() > 4 << 20,
        "status shows the retained WAL: {status}"
    );
    assert!(env.footprint().0, "the slot is kept so that run can resume");

    // Once the transaction ends and the limit is raised, run resumes and nothing is lost.
    open.batch_execute("COMMIT").await.unwrap();
    let raised = env.write_config(
        &[("public.items", None), ("public.filler", None)],
        "max_retained_wal = \"1GB\"",
    );
    let run = env.spawn_run(pgvshift::config::Config::load_with_env(&raised, &|_| None).unwrap());
    env.wait_caught_up().await;
    env.assert_same("items", "id").await;
    env.assert_same("filler", "id").await;
    run.stop().await;
}

/// Start `pgvshift run` as a child and kill -9 it while the snapshot is under way (slot made,
/// phase = snapshot): what `cleanup` then has to find.
async fn crash_during_snapshot(env: &TestEnv, config: &std::path::Path) {
    let mut child = env.spawn_binary(&["run", "--config", path_str(config)]);
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let slot = env.footprint().0;
        let phase = if env.footprint().2 {
            // consistent_point is recorded once CREATE_REPLICATION_SLOT has returned: before
            // that the slot is ephemeral and would vanish with the killed session.
            env.target_value(&format!(
                "SELECT coalesce((SELECT phase FROM pgvshift.progress WHERE slot = '{}' AND consistent_point IS NOT NULL), '')",
                env.name
            ))
        } else {
            String::new()
        };
        if slot && phase == "snapshot" {
            break;
        }
        assert!(Instant::now() < deadline, "the snapshot never started");
        assert!(
            child.try_wait().unwrap().is_none(),
            "run ended before it could be killed"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // While it runs, status shows how long the snapshot has been holding back the source.
    let (code, stdout, stderr) = env.run_binary(&["status", "--config", path_str(config), "--json"]);
    assert_eq!(code, 0, "{stderr}");
    let status: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    if status["phase"] == "snapshot" {
        assert!(status["snapshot_age_secs"].as_f64().is_some(), "{status}");
    } else {
        assert_eq!(status["phase"], "streaming", "{status}");
    }
    std::process::Command::new("kill")
        .args(["-KILL", &child.id().to_string()])
        .status()
        .unwrap();
    child.wait().unwrap();
    env.wait_slot_inactive();
}

const BIG_TABLE: &str = "CREATE TABLE items (id int PRIMARY KEY, embedding vector(16));
     INSERT INTO items SELECT i, (SELECT array_agg(random())::vector FROM generate_series(1, 16) WHERE i > 0)
       FROM generate_series(1, 20000) i;
     CREATE INDEX ON items USING hnsw (embedding vector_l2_ops);";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cleanup_after_a_crash_during_the_snapshot_leaves_no_slot() {
    let env = TestEnv::new("prot_crash", BIG_TABLE);
    let config = env.write_config(&[("public.items", None)], "");
    crash_during_snapshot(&env, &config).await;
    assert_eq!(
        env.footprint(),
        (true, true, true),
        "the crash left slot, publication and state"
    );
    let (code, stdout, stderr) = env.run_binary(&["cleanup", "--config", path_str(&config), "--yes"]);
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    assert_eq!(
        env.footprint(),
        (false, false, false),
        "cleanup removed everything:\n{stdout}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cleanup_finds_a_crashed_runs_slot_and_publication_without_target_state() {
    let env = TestEnv::new("prot_orphan", BIG_TABLE);
    let config = env.write_config(&[("public.items", None)], "");
    crash_during_snapshot(&env, &config).await;
    // The target's record is gone too (target database recreated, schema dropped by hand).
    env.target_value("DROP SCHEMA pgvshift CASCADE; DROP TABLE IF EXISTS items");
    let (code, stdout, stderr) = env.run_binary(&["check", "--config", path_str(&config)]);
    assert_eq!(code, 1, "{stdout}\n{stderr}");
    assert!(
        stdout.contains("the target has no progress for it") && stdout.contains("pgvshift cleanup --config"),
        "{stdout}"
    );
    let (code, stdout, stderr) = env.run_binary(&["cleanup", "--config", path_str(&config), "--yes"]);
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    assert!(stdout.contains("left over from an earlier run"), "{stdout}");
    assert!(stdout.contains(&format!("drop publication {}", env.name)), "{stdout}");
    assert_eq!(env.footprint(), (false, false, false), "{stdout}");
    // And a new run starts cleanly.
    let run = env.spawn_run(env.config(&[("public.items", None)]));
    env.wait_streaming().await;
    env.assert_same("items", "id").await;
    run.stop().await;
}
