//! Crash safety under load: the binary is killed with SIGKILL at random moments while a writer
//! keeps changing the source, and restarted each time. Every restart resumes from the target's
//! committed progress; at the end both tables are identical on both sides. The insert-only
//! table without a primary key (REPLICA IDENTITY FULL) proves no transaction was applied twice:
//! a duplicate would be an extra row there, not a key conflict. After every kill the source
//! must never have been confirmed more than the target committed.
//!
//! The second test makes the dangerous moment deterministic: the target commit is stalled by a
//! row lock while the replication connection keeps sending status updates, and the kill lands
//! there (this is the test that catches an LSN confirmed before its target commit).

mod support;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use rand::Rng;
use support::binary::{
    current_wal_lsn, pick_existing_id, random_vector_sql, slot_state, target_progress, wait_caught_up,
    wait_slot_inactive, wait_snapshot_done, write_until, Binary,
};
use support::TestEnv;

const DIMS: usize = 768;
const SEED_ROWS: i64 = 2000;
/// Ids the writer inserts start here.
const FIRST_ID: i64 = 100_000;

/// Mixed multi-statement transactions on `items` (PK) and inserts into `events` (no PK),
/// until `stop`, counting committed transactions in `committed`.
async fn writer(env: &TestEnv, stop: Arc<AtomicBool>, committed: Arc<AtomicU64>) {
    write_until(env, &stop, &committed, FIRST_ID, |txn, next_id| {
        let mut rng = rand::thread_rng();
        // Now and then a bigger transaction, so that kills also land in the middle of one.
        let inserts: i64 = if rng.gen_ratio(1, 10) {
            rng.gen_range(150..300)
        } else {
            rng.gen_range(1..6)
        };
        // Mostly rows that exist: the seed rows or ones this writer inserted.
        let mut pick = || pick_existing_id(&mut rng, SEED_ROWS, FIRST_ID, next_id);
        let upd: Vec<i64> = (0..5).map(|_| pick()).collect();
        let upd_vec: i64 = pick();
        let del: Vec<i64> = (0..2).map(|_| pick()).collect();
        let (upd, del) = (
            upd[..rng.gen_range(1..=5)].to_vec(),
            del[..rng.gen_range(0..=2)].to_vec(),
        );
        let events: i64 = rng.gen_range(1..4);
        let ids = |v: &[i64]| v.iter().map(|i| i.to_string()).collect::<Vec<_>>().join(", ");
        let mut sql = format!(
            "BEGIN;
                 INSERT INTO items (id, title, n, embedding)
                   SELECT g, 'w{txn} ' || g, 0, {vec} FROM generate_series({next_id}, {last}) g;
                 UPDATE items SET n = n + 1, title = 'updated by {txn}' WHERE id IN ({upd});
                 UPDATE items SET embedding = {vec2} WHERE id = {upd_vec};
                 INSERT INTO events (txn, seq, note, embedding)
                   SELECT {txn}, s, 'event ' || s || ' of {txn}', ARRAY[{txn}, s, 0.5]::real[]::vector FROM generate_series(1, {events}) s;",
            vec = random_vector_sql(DIMS, "g"),
            vec2 = random_vector_sql(DIMS, "id"),
            last = next_id + inserts - 1,
            upd = ids(&upd),
        );
        if !del.is_empty() {
            sql.push_str(&format!("DELETE FROM items WHERE id IN ({});", ids(&del)));
        }
        sql.push_str("COMMIT;");
        (sql, inserts)
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill9_at_random_moments_under_load_loses_and_duplicates_nothing() {
    let env = Arc::new(TestEnv::new(
        "kill9",
        &format!(
            "CREATE TABLE items (id bigint PRIMARY KEY, title text NOT NULL, n int NOT NULL DEFAULT 0, embedding vector({DIMS}));
             INSERT INTO items SELECT g, 'item ' || g, 0, {vec} FROM generate_series(1, {SEED_ROWS}) g;
             CREATE TABLE events (txn bigint NOT NULL, seq int NOT NULL, note text, embedding vector(3));
             ALTER TABLE events REPLICA IDENTITY FULL;
             INSERT INTO events SELECT 0, s, 'seed ' || s, ARRAY[0, s, 0.5]::real[]::vector FROM generate_series(1, 100) s;",
            vec = random_vector_sql(DIMS, "g")
        ),
    ));
    let config = env.write_config(&[("public.items", None), ("public.events", None)], "");

    let stop = Arc::new(AtomicBool::new(false));
    let committed = Arc::new(AtomicU64::new(0));
    let mut writer_task = Some({
        let (env, stop, committed) = (env.clone(), stop.clone(), committed.clone());
        tokio::spawn(async move { writer(&env, stop, committed).await })
    });

    let mut bin = Binary::start(&env, &config);
    wait_snapshot_done(&env, &mut bin).await;

    const ROUNDS: usize = 5;
    let mut resumed_logs = Vec::new();
    for round in 1..=ROUNDS {
        // Let it stream under load for a random while, then pull the plug.
        let ms = rand::thread_rng().gen_range(200..2000);
        tokio::time::sleep(Duration::from_millis(ms)).await;
        bin.assert_running(&format!("streaming under load (round {round})"));
        let before = committed.load(Ordering::Relaxed);
        let log = bin.kill9();

        // The killed process held the slot; once the source noticed, nothing moves any more:
        // what the source was confirmed must be covered by what the target committed.
        wait_slot_inactive(&env, "after its process died").await;
        let (_, confirmed) = slot_state(&env).await;
        let (phase, applied) = target_progress(&env).await.expect("progress row");
        let applied = applied.expect("applied_lsn");
        assert_eq!(phase, "streaming");
        assert!(
            confirmed <= applied,
            "round {round}: the source was confirmed up to {confirmed} but the target committed only up to {applied}; log of the killed process:\n{log}"
        );
        eprintln!("round {round}: killed after {ms} ms (writer at {before} transactions): applied {applied}, confirmed {confirmed}");

        if round == ROUNDS {
            stop.store(true, Ordering::Relaxed);
            writer_task.take().unwrap().await.expect("writer");
        }
        bin = Binary::start(&env, &config);
        bin.wait_logged(
            &format!("the restart of round {round} to log that it resumes"),
            Duration::from_secs(60),
            "resuming",
        )
        .await;
        resumed_logs.push(bin.stderr());
    }
    let total = committed.load(Ordering::Relaxed);
    assert!(
        total > 20,
        "the writer committed only {total} transactions: not much of a load"
    );

    wait_caught_up(&env, &mut bin).await;
    env.assert_same("items", "id").await;
    env.assert_same("events", "txn, seq").await;
    let events = env.target_value("SELECT count(*) FROM events");
    let distinct = env.target_value("SELECT count(*) FROM (SELECT DISTINCT txn, seq FROM events) d");
    assert_eq!(
        events, distinct,
        "an insert into the table without a primary key was applied twice"
    );
    assert_eq!(resumed_logs.len(), ROUNDS);
    for (i, log) in resumed_logs.iter().enumerate() {
        assert!(
            log.contains("resuming"),
            "restart {} did not log that it resumed:\n{log}",
            i + 1
        );
        assert!(
            !log.contains("previous snapshot did not complete"),
            "restart {} restarted the snapshot:\n{log}",
            i + 1
        );
    }

    // Still true while it runs: read the source first, the target second.
    let (_, confirmed) = slot_state(&env).await;
    let (_, applied) = target_progress(&env).await.unwrap();
    let applied = applied.unwrap();
    assert!(
        confirmed <= applied,
        "confirmed {confirmed} is ahead of applied {applied}"
    );
    eprintln!("writer committed {total} transactions; {} rows in items, {events} in events; final applied {applied}, confirmed {confirmed}", env.target_value("SELECT count(*) FROM items"));
    bin.kill9();
}

/// The one moment where confirming too early loses data, made deterministic: the target
/// commit is stalled (a test session holds the progress row), so the batch with the source's
/// latest transactions cannot commit; the replication connection keeps sending its status
/// updates meanwhile. Killed there, the source must still be confirmed only up to what the
/// target committed, and the restart must bring the stalled transactions over.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill9_while_the_target_commit_is_stalled_leaves_the_source_unconfirmed() {
    let env = TestEnv::new(
        "kill9stall",
        &format!(
            "CREATE TABLE items (id bigint PRIMARY KEY, title text NOT NULL, n int NOT NULL DEFAULT 0, embedding vector({DIMS}));
             INSERT INTO items SELECT g, 'item ' || g, 0, {vec} FROM generate_series(1, 200) g;
             CREATE TABLE events (txn bigint NOT NULL, seq int NOT NULL, note text, embedding vector(3));
             ALTER TABLE events REPLICA IDENTITY FULL;",
            vec = random_vector_sql(DIMS, "g")
        ),
    );
    let config = env.write_config(&[("public.items", None), ("public.events", None)], "");
    let mut bin = Binary::start(&env, &config);
    wait_caught_up(&env, &mut bin).await;
    let (_, committed_before) = target_progress(&env).await.unwrap();
    let committed_before = committed_before.unwrap();

    // Stall the target commit: the applier's progress update waits for this row lock.
    let blocker = env.target_client().await;
    blocker
        .batch_execute(&format!(
            "BEGIN; SELECT 1 FROM pgvshift.progress WHERE slot = '{}' FOR UPDATE",
            env.name
        ))
        .await
        .unwrap();
    let source = env.source_client().await;
    for txn in 1..=3 {
        source
            .batch_execute(&format!(
                "BEGIN;
                 INSERT INTO items SELECT g, 'stalled {txn}', 0, {vec} FROM generate_series({txn} * 1000, {txn} * 1000 + 9) g;
                 UPDATE items SET n = n + 1 WHERE id <= 50;
                 INSERT INTO events VALUES ({txn}, 1, 'stalled', '[1,2,3]');
                 COMMIT;",
                vec = random_vector_sql(DIMS, "g")
            ))
            .await
            .unwrap();
    }
    let stalled_end = current_wal_lsn(&source).await;
    bin.wait_blocked_on_lock(&env, "the applier's commit to wait for the row lock")
        .await;
    // From now on every status update the replication connection sends is one it sent while
    // the batch holding the three transactions was received but not committed.
    let stalled_at: std::time::SystemTime = source.query_one("SELECT clock_timestamp()", &[]).await.unwrap().get(0);
    let slot = env.name.clone();
    bin.wait_until("a status update from pgvshift while its commit is stalled", Duration::from_secs(60), || async {
        let row = source
            .query_opt(
                "SELECT r.reply_time FROM pg_stat_replication r JOIN pg_replication_slots s ON s.active_pid = r.pid WHERE s.slot_name = $1",
                &[&slot],
            )
            .await
            .unwrap();
        row.and_then(|r| r.get::<_, Option<std::time::SystemTime>>(0)).is_some_and(|t| t > stalled_at)
    })
    .await;
    let log = bin.kill9();
    blocker.batch_execute("ROLLBACK").await.unwrap();
    wait_slot_inactive(&env, "after its process died").await;

    let (_, confirmed) = slot_state(&env).await;
    let (_, applied) = target_progress(&env).await.unwrap();
    let applied = applied.unwrap();
    eprintln!("stalled: committed {committed_before} before, source at {stalled_end}; after the kill applied {applied}, confirmed {confirmed}");
    assert_eq!(applied, committed_before, "the stalled batch cannot have committed");
    assert!(
        confirmed <= applied,
        "the source was confirmed up to {confirmed} while the target had committed only up to {applied}: the stalled transactions are lost; log:\n{log}"
    );
    assert_eq!(env.target_value("SELECT count(*) FROM events"), "0");

    let mut bin = Binary::start(&env, &config);
    wait_caught_up(&env, &mut bin).await;
    env.assert_same("items", "id").await;
    env.assert_same("events", "txn, seq").await;
    assert_eq!(env.target_value("SELECT count(*) FROM events"), "3");
    bin.kill9();
}
