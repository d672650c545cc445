//! SIGTERM while streaming under load: the binary finishes the source transaction in hand,
//! commits its batch with the progress row, confirms it to the source and exits 0 within a few
//! seconds. Afterwards the target's applied_lsn is exactly the slot's confirmed_flush_lsn
//! (nothing committed but unconfirmed, nothing confirmed but uncommitted), the target holds
//! only whole source transactions, and a restart catches up to an identical table.

mod support;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::Rng;
use support::binary::{
    pick_existing_id, random_vector_sql, slot_state, source_lsn, target_progress, wait_applied, wait_slot_inactive,
    wait_snapshot_done, write_until, Binary,
};
use support::TestEnv;

const DIMS: usize = 768;
const SEED_ROWS: i64 = 1000;
/// Ids the writer inserts start here.
const FIRST_ID: i64 = 100_000;

/// Multi-statement transactions until `stop`. Transaction `t` inserts row `t` into `ticks`
/// and sets `items.last_txn = t` on every row it touches: the target then shows whether it
/// holds whole transactions only.
async fn writer(env: &TestEnv, stop: Arc<AtomicBool>, committed: Arc<AtomicU64>) {
    let vec = random_vector_sql(DIMS, "g");
    write_until(env, &stop, &committed, FIRST_ID, |txn, next_id| {
        let (upd, del, inserts) = {
            let mut rng = rand::thread_rng();
            // Mostly rows that exist: the seed rows or ones this writer inserted.
            let mut pick = || pick_existing_id(&mut rng, SEED_ROWS, FIRST_ID, next_id);
            let upd: Vec<String> = (0..7).map(|_| pick().to_string()).collect();
            let del = pick();
            let upd = upd[..rng.gen_range(1..=7)].to_vec();
            (upd.join(", "), del, rng.gen_range(1..20))
        };
        let sql = format!(
            "BEGIN;
                 INSERT INTO ticks VALUES ({txn});
                 INSERT INTO items (id, last_txn, embedding) SELECT g, {txn}, {vec} FROM generate_series({next_id}, {last}) g;
                 UPDATE items SET last_txn = {txn} WHERE id IN ({upd});
                 DELETE FROM items WHERE id = {del};
                 UPDATE ticks SET items_after = (SELECT count(*) FROM items) WHERE txn = {txn};
                 COMMIT;",
            last = next_id + inserts - 1
        );
        (sql, inserts)
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_while_streaming_exits_0_quickly_with_everything_applied_committed_and_confirmed() {
    let env = Arc::new(TestEnv::new(
        "sigterm",
        &format!(
            "CREATE TABLE items (id bigint PRIMARY KEY, last_txn bigint NOT NULL, embedding vector({DIMS}));
             INSERT INTO items SELECT g, 0, {vec}
               FROM generate_series(1, {SEED_ROWS}) g;
             CREATE TABLE ticks (txn bigint PRIMARY KEY, items_after bigint);",
            vec = random_vector_sql(DIMS, "g")
        ),
    ));
    let config = env.write_config(&[("public.items", None), ("public.ticks", None)], "");
    let mut bin = Binary::start(&env, &config);
    wait_snapshot_done(&env, &mut bin).await;

    let stop = Arc::new(AtomicBool::new(false));
    let committed = Arc::new(AtomicU64::new(0));
    let writer_task = {
        let (env, stop, committed) = (env.clone(), stop.clone(), committed.clone());
        tokio::spawn(async move { writer(&env, stop, committed).await })
    };
    // Streaming under load: let it apply a good number of the writer's transactions first.
    bin.wait_until("the writer to commit 100 transactions", Duration::from_secs(60), || {
        let n = committed.load(Ordering::Relaxed);
        async move { n >= 100 }
    })
    .await;
    let mark = source_lsn(&env).await;
    wait_applied(&env, &mut bin, mark).await;
    // A random moment, so the signal lands in or between transactions.
    tokio::time::sleep(Duration::from_millis(rand::thread_rng().gen_range(0..500))).await;

    bin.assert_running("streaming under load");
    let writer_at = committed.load(Ordering::Relaxed);
    let sent = Instant::now();
    bin.sigterm();
    let status = bin.wait_exit(Duration::from_secs(15)).await;
    let took = sent.elapsed();
    let log = bin.stderr();
    let status =
        status.unwrap_or_else(|| panic!("pgvshift did not exit within 15 s of SIGTERM (killed); stderr:\n{log}"));
    eprintln!(
        "SIGTERM -> exit {status} in {:.3} s (writer at {writer_at} transactions)",
        took.as_secs_f64()
    );
    assert_eq!(status.code(), Some(0), "exit status after SIGTERM; stderr:\n{log}");
    assert!(took < Duration::from_secs(15), "took {took:?} to stop");
    assert!(log.contains("SIGTERM received"), "stderr:\n{log}");
    assert!(
        log.contains("everything applied is committed on the target and confirmed to the source"),
        "stderr:\n{log}"
    );

    // The writer is still running: the slot's confirmed position must not depend on when we
    // look. Once the source has let go of the slot, nothing can move it any more.
    wait_slot_inactive(&env, "after pgvshift exited").await;
    let (_, confirmed) = slot_state(&env).await;
    let (phase, applied) = target_progress(&env).await.expect("progress row");
    let applied = applied.expect("applied_lsn");
    assert_eq!(phase, "streaming");
    eprintln!("after the stop: applied_lsn {applied}, confirmed_flush_lsn {confirmed}");
    assert_eq!(
        confirmed, applied,
        "the slot's confirmed_flush_lsn differs from the target's applied_lsn; stderr:\n{log}"
    );
    assert!(applied >= mark, "applied {applied} went backwards from {mark}");

    // Only whole source transactions on the target: ticks 1..=max without a gap, and the item
    // count recorded by the last applied transaction is the target's item count.
    let max_tick: i64 = env
        .target_value("SELECT coalesce(max(txn), 0) FROM ticks")
        .parse()
        .unwrap();
    assert!(max_tick >= 100, "only {max_tick} writer transactions applied");
    assert_eq!(
        env.target_value("SELECT count(*) FROM ticks").parse::<i64>().unwrap(),
        max_tick,
        "a gap in the applied transactions"
    );
    assert_eq!(
        env.target_value(&format!("SELECT items_after FROM ticks WHERE txn = {max_tick}")),
        env.target_value("SELECT count(*) FROM items"),
        "items on the target do not match the state after transaction {max_tick}"
    );
    assert_eq!(
        env.target_value(&format!("SELECT count(*) FROM items WHERE last_txn > {max_tick}")),
        "0",
        "the target holds changes of transactions after {max_tick}"
    );

    // Restart: it resumes exactly there and catches up.
    stop.store(true, Ordering::Relaxed);
    writer_task.await.expect("writer");
    let mut bin = Binary::start(&env, &config);
    let mark = source_lsn(&env).await;
    wait_applied(&env, &mut bin, mark).await;
    assert!(bin.stderr().contains("resuming"), "stderr:\n{}", bin.stderr());
    env.assert_same("items", "id").await;
    env.assert_same("ticks", "txn").await;
    bin.sigterm();
    let status = bin.wait_exit(Duration::from_secs(15)).await;
    assert_eq!(
        status.and_then(|s| s.code()),
        Some(0),
        "second stop; stderr:\n{}",
        bin.stderr()
    );
    wait_slot_inactive(&env, "after pgvshift exited").await;
    let (_, confirmed) = slot_state(&env).await;
    let (_, applied) = target_progress(&env).await.unwrap();
    assert_eq!(Some(confirmed), applied, "after the idle stop");
}

/// SIGTERM arriving while the binary is in the middle of a source transaction (held there
/// deterministically: a test session on the target locks the row the transaction's first
/// statement deletes). Once the lock is released, the binary finishes that transaction,
/// commits and confirms it, and exits 0.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_in_the_middle_of_a_transaction_finishes_it_first() {
    const ROWS: i64 = 20_000;
    let env = TestEnv::new(
        "sigtermmid",
        "CREATE TABLE bulk (id int PRIMARY KEY, body text NOT NULL);
         INSERT INTO bulk VALUES (0, 'seed');
         CREATE TABLE ticks (txn bigint PRIMARY KEY, rows bigint NOT NULL);",
    );
    let config = env.write_config(&[("public.bulk", None), ("public.ticks", None)], "");
    let mut bin = Binary::start(&env, &config);
    wait_snapshot_done(&env, &mut bin).await;

    let blocker = env.target_client().await;
    blocker
        .batch_execute("BEGIN; SELECT 1 FROM bulk WHERE id = 0 FOR UPDATE")
        .await
        .unwrap();
    let source = env.source_client().await;
    source
        .batch_execute(&format!(
            "BEGIN;
             DELETE FROM bulk WHERE id = 0;
             INSERT INTO bulk SELECT g, repeat('y', 100) FROM generate_series(1, {ROWS}) g;
             INSERT INTO ticks VALUES (1, {ROWS});
             COMMIT;"
        ))
        .await
        .unwrap();
    bin.wait_blocked_on_lock(&env, "the applier to wait for the locked row")
        .await;
    let (_, applied_before) = target_progress(&env).await.unwrap();

    bin.sigterm();
    bin.wait_logged(
        "the binary to receive SIGTERM",
        Duration::from_secs(15),
        "SIGTERM received",
    )
    .await;
    bin.assert_running("stuck in the middle of a transaction after SIGTERM");
    let released = Instant::now();
    blocker.batch_execute("ROLLBACK").await.unwrap();
    let status = bin.wait_exit(Duration::from_secs(15)).await;
    let took = released.elapsed();
    let log = bin.stderr();
    let status = status
        .unwrap_or_else(|| panic!("pgvshift did not exit within 15 s of the lock's release (killed); stderr:\n{log}"));
    eprintln!(
        "mid-transaction SIGTERM: exit {status} {:.3} s after the transaction could proceed",
        took.as_secs_f64()
    );
    assert_eq!(status.code(), Some(0), "stderr:\n{log}");
    assert!(log.contains("finishing the current transaction"), "stderr:\n{log}");

    // The transaction in hand was finished, committed and confirmed before the exit.
    assert_eq!(
        env.target_value("SELECT count(*) FROM ticks"),
        "1",
        "the transaction in hand was not finished; stderr:\n{log}"
    );
    assert_eq!(env.target_value("SELECT count(*) FROM bulk"), ROWS.to_string());
    wait_slot_inactive(&env, "after pgvshift exited").await;
    let (_, confirmed) = slot_state(&env).await;
    let (_, applied) = target_progress(&env).await.unwrap();
    assert!(applied > applied_before, "applied_lsn did not move: {applied:?}");
    assert_eq!(Some(confirmed), applied, "confirmed_flush_lsn vs applied_lsn");

    let mut bin = Binary::start(&env, &config);
    let mark = source_lsn(&env).await;
    wait_applied(&env, &mut bin, mark).await;
    env.assert_same("bulk", "id").await;
    env.assert_same("ticks", "txn").await;
}
