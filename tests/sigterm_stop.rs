//! SIGTERM while streaming under load: the binary finishes the source transaction in hand,
//! commits its batch with the progress row, confirms it to the source and exits 0 within a few
//! seconds. Afterwards the target's applied_lsn is exactly the slot's confirmed_flush_lsn
//! (nothing committed but unconfirmed, nothing confirmed but uncommitted), the target holds
//! only whole source transactions, and a restart catches up to an identical table.

mod support;

use std::io::Read;
use std::path::Path;
use std::process::{Child, ExitStatus};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use pgvshift::Lsn;
use rand::Rng;
use support::TestEnv;

const DIMS: usize = 768;
const SEED_ROWS: i64 = 1000;
/// Ids the writer inserts start here.
const FIRST_ID: i64 = 100_000;

/// The `pgvshift run` child process, with its stdout/stderr drained by threads (a full pipe
/// would block it) and its stderr kept for assertions and failure messages.
struct Binary {
    child: Child,
    stderr: Arc<Mutex<String>>,
    readers: Vec<std::thread::JoinHandle<()>>,
}

impl Binary {
    fn start(env: &TestEnv, config: &Path) -> Binary {
        let mut child = env.spawn_binary(&["run", "--config", config.to_str().unwrap()]);
        let stderr = Arc::new(Mutex::new(String::new()));
        let out = child.stdout.take().unwrap();
        let err = child.stderr.take().unwrap();
        let keep = stderr.clone();
        let readers = vec![
            std::thread::spawn(move || drain(out, None)),
            std::thread::spawn(move || drain(err, Some(keep))),
        ];
        Binary { child, stderr, readers }
    }

    fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    fn assert_running(&mut self, while_: &str) {
        if let Some(status) = self.child.try_wait().unwrap() {
            self.join_readers();
            panic!(
                "pgvshift exited ({status}) while {while_}; its stderr:\n{}",
                self.stderr()
            );
        }
    }

    /// Poll `cond` until true, failing early if the process dies.
    async fn wait_until<F, Fut>(&mut self, what: &str, timeout: Duration, mut cond: F)
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = bool>,
    {
        let deadline = Instant::now() + timeout;
        loop {
            if cond().await {
                return;
            }
            self.assert_running(what);
            if Instant::now() >= deadline {
                panic!(
                    "timed out after {timeout:?} waiting for {what}; pgvshift stderr:\n{}",
                    self.stderr()
                );
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// Send SIGTERM (via kill(1): the crate forbids `unsafe`, so no libc::kill here).
    fn sigterm(&self) {
        let status = std::process::Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -TERM failed: {status}");
    }

    /// Wait up to `timeout` for the process to exit; returns its status, or None if it is
    /// still running (then it is killed).
    async fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                self.join_readers();
                return Some(status);
            }
            if Instant::now() >= deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                self.join_readers();
                return None;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    fn join_readers(&mut self) {
        for r in self.readers.drain(..) {
            let _ = r.join();
        }
    }
}

impl Drop for Binary {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

fn drain(mut pipe: impl Read, keep: Option<Arc<Mutex<String>>>) {
    let mut buf = [0u8; 8192];
    loop {
        match pipe.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => {
                if let Some(keep) = &keep {
                    keep.lock().unwrap().push_str(&String::from_utf8_lossy(&buf[..n]));
                }
            }
        }
    }
}

/// Progress row on the target: (phase, applied_lsn), if the state schema and row exist.
async fn target_progress(env: &TestEnv) -> Option<(String, Option<Lsn>)> {
    let target = env.target_client().await;
    let row = target
        .query_opt(
            "SELECT phase, applied_lsn::text FROM pgvshift.progress WHERE slot = $1",
            &[&env.name],
        )
        .await
        .ok()??;
    let applied: Option<String> = row.get(1);
    Some((row.get(0), applied.map(|a| a.parse().unwrap())))
}

/// The slot's (active, confirmed_flush_lsn) on the source.
async fn slot_state(env: &TestEnv) -> (bool, Lsn) {
    let source = env.source_client().await;
    let row = source
        .query_one(
            "SELECT active, confirmed_flush_lsn::text FROM pg_replication_slots WHERE slot_name = $1",
            &[&env.name],
        )
        .await
        .expect("the slot exists");
    let confirmed: String = row.get(1);
    (row.get(0), confirmed.parse().unwrap())
}

async fn wait_slot_inactive(env: &TestEnv) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while slot_state(env).await.0 {
        assert!(
            Instant::now() < deadline,
            "slot {} stayed active after pgvshift exited",
            env.name
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

async fn source_lsn(env: &TestEnv) -> Lsn {
    let source = env.source_client().await;
    source
        .query_one("SELECT pg_current_wal_insert_lsn()::text", &[])
        .await
        .unwrap()
        .get::<_, String>(0)
        .parse()
        .unwrap()
}

/// Wait until the target has applied up to `mark`.
async fn wait_applied(env: &TestEnv, bin: &mut Binary, mark: Lsn) {
    bin.wait_until(&format!("the target to apply up to {mark}"), Duration::from_secs(120), || async {
        matches!(target_progress(env).await, Some((phase, Some(applied))) if phase == "streaming" && applied >= mark)
    })
    .await;
}

/// Multi-statement transactions until `stop`. Transaction `t` inserts row `t` into `ticks`
/// and sets `items.last_txn = t` on every row it touches: the target then shows whether it
/// holds whole transactions only.
async fn writer(env: &TestEnv, stop: Arc<AtomicBool>, committed: Arc<AtomicU64>) {
    let source = env.source_client().await;
    let mut next_id: i64 = FIRST_ID;
    let mut txn: i64 = 0;
    let vec = format!("(SELECT array_agg(random()::real) FROM generate_series(1, {DIMS}) WHERE g IS NOT NULL)::vector");
    while !stop.load(Ordering::Relaxed) {
        txn += 1;
        let (upd, del, inserts) = {
            let mut rng = rand::thread_rng();
            // Mostly rows that exist: the seed rows or ones this writer inserted.
            let mut pick = || {
                if next_id == FIRST_ID || rng.gen_bool(0.5) {
                    rng.gen_range(1..=SEED_ROWS)
                } else {
                    rng.gen_range(FIRST_ID..next_id)
                }
            };
            let upd: Vec<String> = (0..7).map(|_| pick().to_string()).collect();
            let del = pick();
            let upd = upd[..rng.gen_range(1..=7)].to_vec();
            (upd.join(", "), del, rng.gen_range(1..20))
        };
        source
            .batch_execute(&format!(
                "BEGIN;
                 INSERT INTO ticks VALUES ({txn});
                 INSERT INTO items (id, last_txn, embedding) SELECT g, {txn}, {vec} FROM generate_series({next_id}, {last}) g;
                 UPDATE items SET last_txn = {txn} WHERE id IN ({upd});
                 DELETE FROM items WHERE id = {del};
                 UPDATE ticks SET items_after = (SELECT count(*) FROM items) WHERE txn = {txn};
                 COMMIT;",
                last = next_id + inserts - 1
            ))
            .await
            .expect("writer transaction");
        next_id += inserts;
        committed.fetch_add(1, Ordering::Relaxed);
        // Pacing only (keeps the load steady on a small machine); nothing waits on it.
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_while_streaming_exits_0_quickly_with_everything_applied_committed_and_confirmed() {
    let env = Arc::new(TestEnv::new(
        "sigterm",
        &format!(
            "CREATE TABLE items (id bigint PRIMARY KEY, last_txn bigint NOT NULL, embedding vector({DIMS}));
             INSERT INTO items SELECT g, 0, (SELECT array_agg(random()::real) FROM generate_series(1, {DIMS}) WHERE g IS NOT NULL)::vector
               FROM generate_series(1, {SEED_ROWS}) g;
             CREATE TABLE ticks (txn bigint PRIMARY KEY, items_after bigint);"
        ),
    ));
    let config = env.write_config(&[("public.items", None), ("public.ticks", None)], "");
    let mut bin = Binary::start(&env, &config);
    bin.wait_until("the snapshot to complete", Duration::from_secs(120), || async {
        matches!(target_progress(&env).await, Some((phase, _)) if phase == "streaming")
    })
    .await;

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
    wait_slot_inactive(&env).await;
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
    wait_slot_inactive(&env).await;
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
    bin.wait_until("the snapshot to complete", Duration::from_secs(120), || async {
        matches!(target_progress(&env).await, Some((phase, _)) if phase == "streaming")
    })
    .await;

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
    let target = env.target_client().await;
    bin.wait_until("the applier to wait for the locked row", Duration::from_secs(60), || async {
        let row = target
            .query_one(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND application_name LIKE 'pgvshift%' AND wait_event_type = 'Lock'",
                &[],
            )
            .await
            .unwrap();
        row.get::<_, i64>(0) == 1
    })
    .await;
    let (_, applied_before) = target_progress(&env).await.unwrap();

    bin.sigterm();
    let log = bin.stderr.clone();
    bin.wait_until("the binary to receive SIGTERM", Duration::from_secs(15), || {
        let received = log.lock().unwrap().contains("SIGTERM received");
        async move { received }
    })
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
    wait_slot_inactive(&env).await;
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
