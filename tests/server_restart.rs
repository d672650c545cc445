//! Lost connections: the source or the target server goes away while `run` is streaming or
//! copying, and comes back. The run reconnects with backoff and resumes from the target's
//! committed progress, so nothing is lost and nothing is applied twice; an interrupted snapshot
//! starts over. A target that stays away longer than `max_retry_duration_secs` ends the run
//! with a message saying how to resume, and the next run does.
//!
//! Each test has its own source and target clusters (restarting a shared one would disturb the
//! other tests). `events` has no primary key (REPLICA IDENTITY FULL): a transaction applied
//! twice would show there as extra rows rather than as a key conflict. The writer commits
//! inserts, updates and deletes on both tables, reconnecting whenever its own connection drops;
//! a transaction whose COMMIT got no answer may or may not have committed, and the comparison
//! with the source at the end does not need to know which.

mod support;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use pgvshift::testkit::localpg::{ClusterOptions, LocalCluster};
use pgvshift::Lsn;
use rand::Rng;
use support::binary::{pick_existing_id, wait_caught_up, wait_snapshot_done, Binary};
use support::{logs, TestEnv};
use tokio_postgres::Client;

const SEED_ROWS: i64 = 1000;
/// Ids the writer inserts start here.
const FIRST_ID: i64 = 100_000;
/// Deadlock guard for waits on the writer.
const GUARD: Duration = Duration::from_secs(120);

const SETUP: &str = "
    CREATE TABLE items (id bigint PRIMARY KEY, n int NOT NULL DEFAULT 0, note text, embedding vector(3));
    INSERT INTO items SELECT g, 0, 'seed ' || g, ARRAY[g, g * 0.5, 1]::real[]::vector FROM generate_series(1, 1000) g;
    CREATE TABLE events (txn bigint NOT NULL, seq int NOT NULL, note text, embedding vector(3));
    ALTER TABLE events REPLICA IDENTITY FULL;
    INSERT INTO events SELECT 0, s, 'seed ' || s, ARRAY[0, s, 0.5]::real[]::vector FROM generate_series(1, 100) s;";

const TABLES: &[(&str, Option<&str>)] = &[("public.items", None), ("public.events", None)];

fn private_env(prefix: &str) -> Arc<TestEnv> {
    logs::capture();
    Arc::new(TestEnv::new_private(
        prefix,
        SETUP,
        ClusterOptions::new("source"),
        ClusterOptions::new("target"),
    ))
}

/// Both tables equal on both sides, and no duplicate in the table without a key.
async fn assert_equal(env: &TestEnv) {
    env.assert_same("items", "id").await;
    env.assert_same("events", "txn, seq, note").await;
    assert_eq!(
        env.target_value("SELECT count(*) - count(DISTINCT (txn, seq)) FROM events"),
        "0",
        "a transaction was applied twice: duplicate rows in the table without a primary key"
    );
}

/// One more change on the source reaches the target: the run is still streaming.
async fn assert_still_streaming(env: &TestEnv, handle_finished: impl Fn() -> bool) {
    env.source_value("INSERT INTO events VALUES (-1, 1, 'after the test', '[1,2,3]')");
    env.wait_caught_up().await;
    assert_eq!(
        env.target_value("SELECT count(*) FROM events WHERE txn = -1"),
        "1",
        "the last change did not arrive"
    );
    assert!(!handle_finished(), "the run ended");
}

/// Shut a cluster's server down / start it again / restart it, off the async runtime.
async fn blocking(env: &Arc<TestEnv>, f: fn(&LocalCluster) -> anyhow::Result<()>, target: bool) {
    let env = env.clone();
    tokio::task::spawn_blocking(move || f(if target { env.target } else { env.source }))
        .await
        .unwrap()
        .unwrap();
}

/// Commits mixed transactions on the source until stopped, reconnecting whenever its own
/// connection is lost (the source restarts under it).
struct Writer {
    stop: Arc<AtomicBool>,
    committed: Arc<AtomicU64>,
    /// Transactions that failed because the connection went away.
    failed: Arc<AtomicU64>,
    task: tokio::task::JoinHandle<()>,
}

impl Writer {
    fn start(env: &TestEnv) -> Writer {
        let stop = Arc::new(AtomicBool::new(false));
        let committed = Arc::new(AtomicU64::new(0));
        let failed = Arc::new(AtomicU64::new(0));
        let task = tokio::spawn(write(env.source_url(), stop.clone(), committed.clone(), failed.clone()));
        Writer {
            stop,
            committed,
            failed,
            task,
        }
    }

    fn committed(&self) -> u64 {
        self.committed.load(Ordering::Relaxed)
    }

    /// Wait until `n` transactions have committed in all.
    async fn wait_committed(&self, n: u64) {
        let deadline = Instant::now() + GUARD;
        while self.committed() < n {
            assert!(!self.task.is_finished(), "the writer died");
            assert!(
                Instant::now() < deadline,
                "the writer committed only {} of {n} transactions",
                self.committed()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    async fn stop(self) -> (u64, u64) {
        self.stop.store(true, Ordering::Relaxed);
        let (committed, failed) = (self.committed.clone(), self.failed.clone());
        self.task.await.expect("writer task");
        (committed.load(Ordering::Relaxed), failed.load(Ordering::Relaxed))
    }
}

async fn write(url: String, stop: Arc<AtomicBool>, committed: Arc<AtomicU64>, failed: Arc<AtomicU64>) {
    let mut client: Option<Client> = None;
    let mut next_id = FIRST_ID;
    let mut txn: i64 = 0;
    while !stop.load(Ordering::Relaxed) {
        if !matches!(&client, Some(c) if !c.is_closed()) {
            match pgvshift::source::connect_url(&url).await {
                Ok(c) => client = Some(c),
                Err(_) => {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            }
        }
        txn += 1;
        let (sql, inserted) = transaction(txn, next_id);
        // Ids move on even when the outcome is unknown: a COMMIT whose answer was lost may
        // have used them.
        next_id += inserted;
        match client.as_ref().expect("connected").batch_execute(&sql).await {
            Ok(()) => {
                committed.fetch_add(1, Ordering::Relaxed);
            }
            Err(_) => {
                failed.fetch_add(1, Ordering::Relaxed);
                client = None;
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
        // Pacing only (a steady load on a small machine); nothing waits on it.
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Transaction `txn`: inserts from `next_id` on and updates into `items`, sometimes deletes;
/// inserts into `events`, and updates and deletes there by the full row.
fn transaction(txn: i64, next_id: i64) -> (String, i64) {
    let mut rng = rand::thread_rng();
    let inserts: i64 = rng.gen_range(1..6);
    let upd: Vec<String> = (0..rng.gen_range(1..4))
        .map(|_| pick_existing_id(&mut rng, SEED_ROWS, FIRST_ID, next_id).to_string())
        .collect();
    let mut sql = format!(
        "BEGIN;
         INSERT INTO items (id, n, note, embedding)
           SELECT g, 0, 'w{txn}', ARRAY[g, {txn}, 0.25]::real[]::vector FROM generate_series({next_id}, {last}) g;
         UPDATE items SET n = n + 1, note = 'updated by {txn}', embedding = ARRAY[id, {txn}, 0.75]::real[]::vector
          WHERE id IN ({upd});
         INSERT INTO events (txn, seq, note, embedding)
           SELECT {txn}, s, 'event ' || s, ARRAY[{txn}, s, 0.5]::real[]::vector FROM generate_series(1, {events}) s;
         UPDATE events SET note = 'touched by {txn}' WHERE txn = {touched} AND seq = 1;",
        last = next_id + inserts - 1,
        upd = upd.join(", "),
        events = rng.gen_range(2..5),
        touched = txn - 3,
    );
    if rng.gen_ratio(1, 3) {
        let del = pick_existing_id(&mut rng, SEED_ROWS, FIRST_ID, next_id);
        sql.push_str(&format!(
            "DELETE FROM items WHERE id = {del}; DELETE FROM events WHERE txn = {} AND seq = 2;",
            txn - 5
        ));
    }
    sql.push_str("COMMIT;");
    (sql, inserts)
}

/// Wait until the run has reconnected `n` times in all; returns how long that took.
async fn wait_reconnects(run: &support::InProcess, n: u64) -> Duration {
    let started = Instant::now();
    while run.stats.reconnects.load(Ordering::Relaxed) < n {
        assert!(!run.handle.is_finished(), "the run ended instead of reconnecting");
        assert!(started.elapsed() < GUARD, "the run did not reconnect");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    started.elapsed()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn source_restart_mid_stream_loses_and_duplicates_nothing() {
    let env = private_env("srcrestart");
    let run = env.spawn_run(env.config(TABLES));
    env.wait_streaming().await;
    let writer = Writer::start(&env);
    writer.wait_committed(30).await;
    env.wait_caught_up().await;

    let before = writer.committed();
    blocking(&env, LocalCluster::restart, false).await;
    let back = Instant::now();
    let reconnected = wait_reconnects(&run, 1).await;
    // More changes after the restart, from the writer's new connection.
    writer.wait_committed(before + 30).await;
    env.wait_caught_up().await;
    eprintln!(
        "source back up -> reconnected after {reconnected:?}, caught up with the writer after {:?}",
        back.elapsed()
    );
    let (committed, failed) = writer.stop().await;
    env.wait_caught_up().await;
    assert_equal(&env).await;
    eprintln!("writer: {committed} transactions committed, {failed} lost with its connection");

    assert!(run.stats.reconnects.load(Ordering::Relaxed) > 0);
    let lost = logs::matching(&env.name, "lost the connection to the source");
    assert!(
        !lost.is_empty(),
        "no warning about the lost source: {:#?}",
        logs::lines(&env.name)
    );
    assert!(
        lost[0].contains("reconnecting in") && lost[0].contains("attempt 1"),
        "{}",
        lost[0]
    );
    assert_still_streaming(&env, || run.handle.is_finished()).await;
    run.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn target_down_mid_stream_then_back_catches_up_exactly_once() {
    let env = private_env("tgtrestart");
    let run = env.spawn_run(env.config(TABLES));
    env.wait_streaming().await;
    let writer = Writer::start(&env);
    writer.wait_committed(30).await;
    env.wait_caught_up().await;

    blocking(&env, LocalCluster::stop_server, true).await;
    // Changes pile up on the source while the target is away.
    let down = writer.committed();
    writer.wait_committed(down + 100).await;
    assert_eq!(
        run.stats.reconnects.load(Ordering::Relaxed),
        0,
        "reconnected to a stopped target"
    );
    blocking(&env, LocalCluster::start_stopped_server, true).await;
    let back = Instant::now();
    let reconnected = wait_reconnects(&run, 1).await;
    env.wait_caught_up().await;
    eprintln!(
        "target back up -> reconnected after {reconnected:?}, caught up with {} piled-up transactions after {:?}",
        writer.committed() - down,
        back.elapsed()
    );
    writer.stop().await;
    env.wait_caught_up().await;
    assert_equal(&env).await;

    let lines = logs::lines(&env.name);
    let lost = logs::matching(&env.name, "lost the connection to the target");
    assert!(!lost.is_empty(), "no warning about the lost target: {lines:#?}");
    assert!(
        !logs::matching(&env.name, "cannot reach the target yet").is_empty(),
        "no failed reconnection while the target was down: {lines:#?}"
    );
    assert_still_streaming(&env, || run.handle.is_finished()).await;
    run.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn target_down_too_long_gives_up_and_the_next_run_resumes() {
    let env = private_env("tgtgiveup");
    let config = env.write_config(TABLES, "");
    let mut first = Binary::start(&env, &config);
    wait_snapshot_done(&env, &mut first).await;
    let writer = Writer::start(&env);
    writer.wait_committed(20).await;
    wait_caught_up(&env, &mut first).await;

    // A stop request while it waits to reconnect ends the run at once, cleanly.
    blocking(&env, LocalCluster::stop_server, true).await;
    first
        .wait_logged("a failed reconnection", GUARD, "cannot reach the target yet")
        .await;
    first.sigterm();
    let status = first
        .wait_exit(Duration::from_secs(60))
        .await
        .expect("exits after SIGTERM");
    let log = first.stderr();
    assert!(status.success(), "{status}; stderr:\n{log}");
    assert!(log.contains("stop requested while waiting to reconnect"), "{log}");

    // Starting while the target is down fails at once: no retries at startup.
    let mut refused = Binary::start(&env, &config);
    let status = refused
        .wait_exit(Duration::from_secs(60))
        .await
        .expect("`run` must not retry when the target is down at startup");
    let log = refused.stderr();
    assert_eq!(status.code(), Some(3), "{log}");
    assert!(log.contains("error: cannot connect to the target"), "{log}");
    assert!(!log.contains("reconnecting in"), "{log}");

    // Back up; a run with a short limit resumes, then loses the target for longer than that.
    blocking(&env, LocalCluster::start_stopped_server, true).await;
    let config = env.write_config(TABLES, "max_retry_duration_secs = 3");
    let mut second = Binary::start(&env, &config);
    wait_caught_up(&env, &mut second).await;
    blocking(&env, LocalCluster::stop_server, true).await;
    let down = writer.committed();
    let status = second
        .wait_exit(Duration::from_secs(60))
        .await
        .expect("gives up after 3 s without the target");
    let log = second.stderr();
    assert_eq!(status.code(), Some(3), "{log}");
    let error = log
        .lines()
        .find(|l| l.starts_with("error: "))
        .unwrap_or_else(|| panic!("{log}"));
    eprintln!("{error}");
    for part in [
        "error: gave up after ",
        " reconnection attempts over ",
        "without the target: ",
        "; the target holds everything up to ",
        &format!(
            "run `pgvshift run --config {}` again once the target is reachable",
            config.display()
        ),
        "replication.max_retry_duration_secs = 3",
    ] {
        assert!(error.contains(part), "{part:?} missing from: {error}");
    }
    assert!(log.contains("lost the connection to the target"), "{log}");

    // Changes pile up meanwhile; the next run resumes where the target stopped.
    writer.wait_committed(down + 50).await;
    blocking(&env, LocalCluster::start_stopped_server, true).await;
    let run = env.spawn_run(env.config(TABLES));
    writer.wait_committed(writer.committed() + 20).await;
    writer.stop().await;
    env.wait_caught_up().await;
    assert_equal(&env).await;
    assert_still_streaming(&env, || run.handle.is_finished()).await;
    run.stop().await;
}

/// What the target says about the snapshot: (phase, consistent point).
fn snapshot_state(env: &TestEnv) -> (String, Lsn) {
    let row = env.target_value("SELECT phase || '|' || consistent_point FROM pgvshift.progress");
    let (phase, lsn) = row.split_once('|').unwrap_or_else(|| panic!("progress row: {row:?}"));
    (phase.to_string(), lsn.parse().unwrap())
}

/// The source restarts while the snapshot is being copied. To land there deterministically,
/// the target table `items` exists (empty) before the run and a test session holds a SHARE
/// lock on it: the copy worker's COPY into it waits, with its snapshot transaction open on the
/// source, while the source restarts; then the lock is released and the worker finds its
/// source connection gone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn source_restart_during_the_snapshot_starts_it_over() {
    let env = private_env("snaprestart");
    env.target
        .psql(
            &env.name,
            "CREATE TABLE items (id bigint PRIMARY KEY, n int NOT NULL DEFAULT 0, note text, embedding vector(3))",
        )
        .unwrap();
    let holder = env.target_client().await;
    holder
        .batch_execute("BEGIN; LOCK TABLE items IN SHARE MODE")
        .await
        .unwrap();
    let run = env.spawn_run(env.config(TABLES));
    let target = env.target_client().await;
    let deadline = Instant::now() + GUARD;
    while !support::binary::pgvshift_waits_for_lock(&target).await {
        assert!(!run.handle.is_finished(), "the run ended before copying");
        assert!(Instant::now() < deadline, "the copy never waited for the lock");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let (phase, first_cp) = snapshot_state(&env);
    assert_eq!(phase, "snapshot");
    // Changes while the snapshot is stuck belong to the stream of the interrupted snapshot;
    // the new snapshot must contain them.
    env.source_value("UPDATE items SET n = 7 WHERE id <= 10; DELETE FROM events WHERE seq = 3;");

    blocking(&env, LocalCluster::restart, false).await;
    holder.batch_execute("ROLLBACK").await.unwrap();
    let reconnected = wait_reconnects(&run, 1).await;
    eprintln!("lock released after the source restart -> reconnected after {reconnected:?}");
    let writer = Writer::start(&env);
    env.wait_streaming().await;
    writer.wait_committed(writer.committed() + 30).await;
    writer.stop().await;
    env.wait_caught_up().await;
    assert_equal(&env).await;

    let (phase, second_cp) = snapshot_state(&env);
    assert_eq!(phase, "streaming");
    assert!(
        second_cp > first_cp,
        "the slot was not recreated: consistent point {first_cp} -> {second_cp}"
    );
    let lines = logs::lines(&env.name);
    for text in [
        "lost the connection to the source during the snapshot (it starts over once reconnected)",
        "starting over the snapshot that the lost connection interrupted",
        "the previous snapshot did not complete: starting it over",
    ] {
        assert_eq!(
            logs::matching(&env.name, text).len(),
            1,
            "{text:?} not logged once: {lines:#?}"
        );
    }
    assert!(run.stats.reconnects.load(Ordering::Relaxed) > 0);
    assert_still_streaming(&env, || run.handle.is_finished()).await;
    run.stop().await;
}
