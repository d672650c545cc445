//! The `pgvshift run` binary as a child process (kill -9, SIGTERM and memory tests), the small
//! source/target queries those tests watch it with (the target's progress row, the slot's state
//! on the source, the source's WAL position), and the loop of a load writer on the source.
#![allow(dead_code)]

use std::io::Read;
use std::path::Path;
use std::process::{Child, ExitStatus};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use pgvshift::Lsn;
use rand::Rng;
use tokio_postgres::Client;

use super::TestEnv;

/// The `pgvshift run` child process, with its stdout/stderr drained by threads (a full pipe
/// would block it) and its stderr kept for assertions and failure messages.
pub struct Binary {
    child: Child,
    /// Everything it has written to stderr so far.
    pub stderr: Arc<Mutex<String>>,
    readers: Vec<std::thread::JoinHandle<()>>,
    /// How often [`Binary::wait_until`] re-checks its condition.
    poll: Duration,
}

impl Binary {
    /// Start `pgvshift run --config <config>`; [`Binary::wait_until`] polls every 25 ms.
    pub fn start(env: &TestEnv, config: &Path) -> Binary {
        let mut child = env.spawn_binary(&["run", "--config", config.to_str().unwrap()]);
        let stderr = Arc::new(Mutex::new(String::new()));
        let out = child.stdout.take().unwrap();
        let err = child.stderr.take().unwrap();
        let keep = stderr.clone();
        let readers = vec![
            std::thread::spawn(move || drain(out, None)),
            std::thread::spawn(move || drain(err, Some(keep))),
        ];
        Binary {
            child,
            stderr,
            readers,
            poll: Duration::from_millis(25),
        }
    }

    /// Make [`Binary::wait_until`] poll every `poll` instead.
    pub fn polling_every(mut self, poll: Duration) -> Binary {
        self.poll = poll;
        self
    }

    pub fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// Panic (with its log) if the process has exited.
    pub fn assert_running(&mut self, while_: &str) {
        if let Some(status) = self.child.try_wait().unwrap() {
            self.join_readers();
            panic!(
                "pgvshift exited ({status}) while {while_}; its stderr:\n{}",
                self.stderr()
            );
        }
    }

    /// Poll `cond` until true, failing early if the process dies.
    pub async fn wait_until<F, Fut>(&mut self, what: &str, timeout: Duration, mut cond: F)
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
            tokio::time::sleep(self.poll).await;
        }
    }

    /// Wait until its stderr contains `needle` (see [`Binary::wait_until`]).
    pub async fn wait_logged(&mut self, what: &str, timeout: Duration, needle: &str) {
        let log = self.stderr.clone();
        self.wait_until(what, timeout, || {
            let logged = log.lock().unwrap().contains(needle);
            async move { logged }
        })
        .await;
    }

    /// Wait until its session on the target waits for a lock (one a test session holds).
    pub async fn wait_blocked_on_lock(&mut self, env: &TestEnv, what: &str) {
        let target = env.target_client().await;
        self.wait_until(what, Duration::from_secs(60), || pgvshift_waits_for_lock(&target))
            .await;
    }

    /// SIGKILL, reap, and return everything it logged.
    pub fn kill9(mut self) -> String {
        self.child.kill().expect("kill -9 pgvshift");
        self.child.wait().unwrap();
        self.join_readers();
        self.stderr()
    }

    /// Send SIGTERM (via kill(1): the crate forbids `unsafe`, so no libc::kill here).
    pub fn sigterm(&self) {
        let status = std::process::Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -TERM failed: {status}");
    }

    /// Wait up to `timeout` for the process to exit; returns its status, or None if it is
    /// still running (then it is killed).
    pub async fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
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

    /// A field of /proc/<pid>/status in kB (VmRSS, VmHWM).
    pub fn status_kb(&self, field: &str) -> u64 {
        let status =
            std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).expect("read /proc/<pid>/status");
        let line = status
            .lines()
            .find(|l| l.starts_with(&format!("{field}:")))
            .unwrap_or_else(|| panic!("no {field} in:\n{status}"));
        line.split_whitespace().nth(1).unwrap().parse().unwrap()
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
pub async fn target_progress(env: &TestEnv) -> Option<(String, Option<Lsn>)> {
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

/// The target's applied_lsn once it is streaming (None before, or without a progress row).
pub async fn applied(env: &TestEnv) -> Option<Lsn> {
    match target_progress(env).await {
        Some((phase, applied)) if phase == "streaming" => applied,
        _ => None,
    }
}

/// The slot's (active, confirmed_flush_lsn) on the source.
pub async fn slot_state(env: &TestEnv) -> (bool, Lsn) {
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

/// Wait until the source no longer counts the slot as active; `after` ends the failure message
/// ("slot … stayed active {after}").
pub async fn wait_slot_inactive(env: &TestEnv, after: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while slot_state(env).await.0 {
        assert!(Instant::now() < deadline, "slot {} stayed active {after}", env.name);
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// The current WAL insert position, read over `source`.
pub async fn current_wal_lsn(source: &Client) -> Lsn {
    source
        .query_one("SELECT pg_current_wal_insert_lsn()::text", &[])
        .await
        .unwrap()
        .get::<_, String>(0)
        .parse()
        .unwrap()
}

/// The source's current WAL insert position (over a new connection).
pub async fn source_lsn(env: &TestEnv) -> Lsn {
    let source = env.source_client().await;
    current_wal_lsn(&source).await
}

/// Wait until the binary has completed the snapshot (progress phase = streaming).
pub async fn wait_snapshot_done(env: &TestEnv, bin: &mut Binary) {
    bin.wait_until("the snapshot to complete", Duration::from_secs(120), || async {
        matches!(target_progress(env).await, Some((phase, _)) if phase == "streaming")
    })
    .await;
}

/// Wait until the target has applied up to `mark`.
pub async fn wait_applied(env: &TestEnv, bin: &mut Binary, mark: Lsn) {
    bin.wait_until(&format!("the target to apply up to {mark}"), Duration::from_secs(120), || async {
        matches!(target_progress(env).await, Some((phase, Some(applied))) if phase == "streaming" && applied >= mark)
    })
    .await;
}

/// Wait until the target has applied everything committed on the source so far.
pub async fn wait_caught_up(env: &TestEnv, bin: &mut Binary) {
    let mark = source_lsn(env).await;
    wait_applied(env, bin, mark).await;
}

/// Whether exactly one pgvshift session on `target`'s database is waiting for a lock.
pub async fn pgvshift_waits_for_lock(target: &Client) -> bool {
    let row = target
        .query_one(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND application_name LIKE 'pgvshift%' AND wait_event_type = 'Lock'",
            &[],
        )
        .await
        .unwrap();
    row.get::<_, i64>(0) == 1
}

/// SQL for a random `dims`-dimensional vector, re-evaluated per row of `correlate`'s query.
pub fn random_vector_sql(dims: usize, correlate: &str) -> String {
    format!("(SELECT array_agg(random()::real) FROM generate_series(1, {dims}) WHERE {correlate} IS NOT NULL)::vector")
}

/// Load on the source until `stop`: transaction `txn` (1, 2, …) is the SQL `next(txn, next_id)`
/// returns, with how many ids it inserts from `next_id` on (the first is `first_id`). Each
/// commit counts in `committed`.
pub async fn write_until<F>(env: &TestEnv, stop: &AtomicBool, committed: &AtomicU64, first_id: i64, mut next: F)
where
    F: FnMut(i64, i64) -> (String, i64),
{
    let source = env.source_client().await;
    let mut next_id: i64 = first_id;
    let mut txn: i64 = 0;
    while !stop.load(Ordering::Relaxed) {
        txn += 1;
        let (sql, inserted) = next(txn, next_id);
        source.batch_execute(&sql).await.expect("writer transaction");
        next_id += inserted;
        committed.fetch_add(1, Ordering::Relaxed);
        // Pacing only (keeps the load steady on a small machine); nothing waits on it.
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Mostly rows that exist: one of the seed rows `1..=seed_rows` or one a writer inserted
/// (`first_id..next_id`), half and half once there are any of the latter.
pub fn pick_existing_id(rng: &mut impl Rng, seed_rows: i64, first_id: i64, next_id: i64) -> i64 {
    if next_id == first_id || rng.gen_bool(0.5) {
        rng.gen_range(1..=seed_rows)
    } else {
        rng.gen_range(first_id..next_id)
    }
}
