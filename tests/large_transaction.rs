//! One source transaction far bigger than the memory pgvshift may use (300k rows of 1 kB,
//! ~300 MB of row data) streams through with bounded memory: the binary's peak resident set
//! (VmHWM, which the kernel keeps as a high-water mark) stays under 200 MB, and the target
//! ends up identical.

mod support;

use std::io::Read;
use std::path::Path;
use std::process::Child;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use pgvshift::Lsn;
use support::TestEnv;

const ROWS: u64 = 300_000;
const ROW_BYTES: u64 = 1000;
const PEAK_RSS_LIMIT_KB: u64 = 200 * 1024;

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
            for r in self.readers.drain(..) {
                let _ = r.join();
            }
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
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// A field of /proc/<pid>/status in kB (VmRSS, VmHWM).
    fn status_kb(&self, field: &str) -> u64 {
        let status =
            std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).expect("read /proc/<pid>/status");
        let line = status
            .lines()
            .find(|l| l.starts_with(&format!("{field}:")))
            .unwrap_or_else(|| panic!("no {field} in:\n{status}"));
        line.split_whitespace().nth(1).unwrap().parse().unwrap()
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

async fn applied(env: &TestEnv) -> Option<Lsn> {
    let target = env.target_client().await;
    let row = target
        .query_opt(
            "SELECT applied_lsn::text FROM pgvshift.progress WHERE slot = $1 AND phase = 'streaming'",
            &[&env.name],
        )
        .await
        .ok()??;
    row.get::<_, Option<String>>(0).map(|a| a.parse().unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transaction_much_bigger_than_memory_streams_through() {
    let env = TestEnv::new(
        "bigtxn",
        "CREATE TABLE payloads (id int PRIMARY KEY, body text NOT NULL, embedding vector(3));
         INSERT INTO payloads VALUES (0, 'before', '[1,2,3]');",
    );
    let config = env.write_config(&[("public.payloads", None)], "");
    let mut bin = Binary::start(&env, &config);
    bin.wait_until("the snapshot to complete", Duration::from_secs(120), || async {
        applied(&env).await.is_some()
    })
    .await;
    let rss_streaming = bin.status_kb("VmRSS");

    // One transaction: every row in it, plus an update and a delete of older data.
    let wal_before: Lsn = env.source_value("SELECT pg_current_wal_insert_lsn()").parse().unwrap();
    let started = Instant::now();
    let source = env.source_client().await;
    source
        .batch_execute(&format!(
            "BEGIN;
             INSERT INTO payloads SELECT g, repeat(chr(65 + g % 26), {ROW_BYTES}), ARRAY[g, g % 7, 1]::real[]::vector
               FROM generate_series(1, {ROWS}) g;
             UPDATE payloads SET body = 'updated in the big one' WHERE id = 0;
             DELETE FROM payloads WHERE id % 100000 = 5;
             COMMIT;"
        ))
        .await
        .unwrap();
    let wrote = started.elapsed();
    let mark: Lsn = env.source_value("SELECT pg_current_wal_insert_lsn()").parse().unwrap();
    let wal_bytes = mark.0 - wal_before.0;

    bin.wait_until(
        &format!("the big transaction to be applied (up to {mark})"),
        Duration::from_secs(600),
        || async { applied(&env).await.is_some_and(|a| a >= mark) },
    )
    .await;
    // VmHWM is the high-water mark over the whole life of the process: read it while it runs.
    let peak_kb = bin.status_kb("VmHWM");
    let applied_after = started.elapsed();
    eprintln!(
        "{ROWS} rows x {ROW_BYTES} B in one transaction (~{} MB of WAL): written in {:.1} s, applied after {:.1} s; \
         RSS while idle {} MB, peak RSS (VmHWM) {} MB",
        wal_bytes / 1_000_000,
        wrote.as_secs_f64(),
        applied_after.as_secs_f64(),
        rss_streaming / 1024,
        peak_kb / 1024
    );
    assert!(
        peak_kb < PEAK_RSS_LIMIT_KB,
        "peak RSS {} MB while applying a {} MB transaction: memory is not bounded (limit {} MB)",
        peak_kb / 1024,
        ROWS * ROW_BYTES / 1_000_000,
        PEAK_RSS_LIMIT_KB / 1024
    );
    assert_eq!(
        env.target_value("SELECT count(*) FROM payloads"),
        (ROWS + 1 - 3).to_string()
    );
    env.assert_same("payloads", "id").await;
}
