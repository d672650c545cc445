//! A crash during the snapshot: the next `run` recognises the unfinished snapshot (progress
//! phase still 'snapshot'), says so in one log line, drops and recreates the slot, empties the
//! tables it had already copied and copies them again. Nothing is duplicated, and streaming
//! afterwards works.
//!
//! The kill lands deterministically in the window after both tables were copied (their state
//! rows say 'copied', committed with the data) and before the snapshot completes: the hnsw
//! index on `big` takes seconds to build on the target (the target database gets a tiny
//! maintenance_work_mem and no parallel workers; the source builds the same index quickly).
//! `small` has no primary key, so copying it again without emptying it first would show up as
//! duplicate rows rather than as a key violation.

mod support;

use std::io::Read;
use std::path::Path;
use std::process::Child;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use pgvshift::Lsn;
use support::TestEnv;

const DIMS: usize = 768;

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
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// SIGKILL, reap, and return everything it logged.
    fn kill9(mut self) -> String {
        self.child.kill().expect("kill -9 pgvshift");
        self.child.wait().unwrap();
        self.join_readers();
        self.stderr()
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

/// What the target says about the snapshot: (phase, consistent_point, tables in state 'copied').
async fn snapshot_state(env: &TestEnv) -> Option<(String, Option<Lsn>, i64)> {
    let target = env.target_client().await;
    let row = target
        .query_opt(
            "SELECT p.phase, p.consistent_point::text, (SELECT count(*) FROM pgvshift.tables t WHERE t.slot = p.slot AND t.state = 'copied') \
               FROM pgvshift.progress p WHERE p.slot = $1",
            &[&env.name],
        )
        .await
        .ok()??;
    let cp: Option<String> = row.get(1);
    Some((row.get(0), cp.map(|c| c.parse().unwrap()), row.get(2)))
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

fn random_vector_sql(correlate: &str) -> String {
    format!("(SELECT array_agg(random()::real) FROM generate_series(1, {DIMS}) WHERE {correlate} IS NOT NULL)::vector")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_during_snapshot_starts_it_over_cleanly() {
    let env = TestEnv::new(
        "snaprestart",
        &format!(
            "CREATE TABLE big (id int PRIMARY KEY, embedding vector({DIMS}) NOT NULL);
             INSERT INTO big SELECT g, {vec} FROM generate_series(1, 8000) g;
             SET maintenance_work_mem = '512MB';
             CREATE INDEX big_embedding_idx ON big USING hnsw (embedding vector_l2_ops) WITH (m = 4, ef_construction = 10);
             CREATE TABLE small (k int NOT NULL, note text, embedding vector({DIMS}));
             ALTER TABLE small REPLICA IDENTITY FULL;
             INSERT INTO small SELECT g, 'note ' || g, {vec} FROM generate_series(1, 500) g;
             CREATE INDEX small_note_idx ON small (note);",
            vec = random_vector_sql("g")
        ),
    );
    // Index builds on the target are slow: that is the window the kill lands in.
    env.target
        .psql(
            &env.name,
            &format!("ALTER DATABASE {0} SET maintenance_work_mem = '1MB'; ALTER DATABASE {0} SET max_parallel_maintenance_workers = 0", env.name),
        )
        .unwrap();
    let config = env.write_config(&[("public.big", None), ("public.small", None)], "");

    let mut first = Binary::start(&env, &config);
    let seen = Mutex::new(None);
    first
        .wait_until(
            "both tables to be copied while the snapshot is still running",
            Duration::from_secs(120),
            || async {
                let state = snapshot_state(&env).await;
                if let Some((phase, _, _)) = &state {
                    assert_eq!(
                        phase, "snapshot",
                        "the snapshot completed before the kill: the index build window is too short"
                    );
                }
                let hit = matches!(&state, Some((_, Some(_), 2)));
                *seen.lock().unwrap() = state;
                hit
            },
        )
        .await;
    let log = first.kill9();
    let (_, old_cp, _) = seen.into_inner().unwrap().unwrap();
    let old_cp = old_cp.unwrap();
    assert!(!log.contains("streaming changes"), "killed too late: {log}");
    // Both tables were copied (committed) when it died: there is something to empty.
    assert_eq!(env.target_value("SELECT count(*) FROM big"), "8000");
    assert_eq!(env.target_value("SELECT count(*) FROM small"), "500");
    assert_eq!(env.target_value("SELECT phase FROM pgvshift.progress"), "snapshot");

    // Changes while nothing runs: the new snapshot must contain them.
    env.source_value(&format!(
        "BEGIN;
         INSERT INTO big SELECT g, {vec} FROM generate_series(8001, 8100) g;
         UPDATE big SET embedding = {vec2} WHERE id % 100 = 7;
         DELETE FROM big WHERE id % 250 = 3;
         INSERT INTO small SELECT g, 'late ' || g, {vec} FROM generate_series(501, 520) g;
         DELETE FROM small WHERE k % 50 = 1;
         COMMIT;",
        vec = random_vector_sql("g"),
        vec2 = random_vector_sql("id")
    ));

    let mut second = Binary::start(&env, &config);
    second
        .wait_until(
            "the restarted snapshot to complete",
            Duration::from_secs(180),
            || async { applied(&env).await.is_some() },
        )
        .await;
    // Streaming after the restarted snapshot.
    env.source_value(&format!(
        "INSERT INTO small SELECT g, 'streamed ' || g, {vec} FROM generate_series(1000, 1009) g;
         UPDATE small SET note = 'streamed update' WHERE k = 2;
         UPDATE big SET embedding = {vec2} WHERE id = 1;
         DELETE FROM big WHERE id = 2;",
        vec = random_vector_sql("g"),
        vec2 = random_vector_sql("id")
    ));
    let mark = source_lsn(&env).await;
    second
        .wait_until(
            &format!("the target to apply up to {mark}"),
            Duration::from_secs(120),
            || async { applied(&env).await.is_some_and(|a| a >= mark) },
        )
        .await;

    env.assert_same("big", "id").await;
    env.assert_same("small", "k, note").await;
    assert_eq!(
        env.target_value("SELECT count(*) - count(DISTINCT (k, note)) FROM small"),
        "0",
        "duplicate rows in the table without a primary key"
    );
    assert_eq!(env.target_value("SELECT count(*) - count(DISTINCT id) FROM big"), "0");
    assert_eq!(
        env.target_value("SELECT count(*) FROM pg_indexes WHERE indexname IN ('big_embedding_idx', 'small_note_idx')"),
        "2"
    );

    let log = second.stderr();
    assert_eq!(
        log.matches("previous snapshot did not complete").count(),
        1,
        "the restart must say once that it starts the snapshot over; stderr:\n{log}"
    );
    let (phase, new_cp, _) = snapshot_state(&env).await.unwrap();
    let new_cp = new_cp.unwrap();
    assert_eq!(phase, "streaming");
    assert!(
        new_cp > old_cp,
        "the slot was not recreated: consistent point {old_cp} -> {new_cp}"
    );
    let slots = env.source_value(&format!(
        "SELECT count(*) FROM pg_replication_slots WHERE slot_name = '{}'",
        env.name
    ));
    assert_eq!(slots, "1");
    let confirmed: Lsn = env
        .source_value(&format!(
            "SELECT confirmed_flush_lsn FROM pg_replication_slots WHERE slot_name = '{}'",
            env.name
        ))
        .parse()
        .unwrap();
    assert!(
        confirmed >= new_cp,
        "slot confirmed {confirmed} is before the new consistent point {new_cp}"
    );
    eprintln!("consistent point {old_cp} (killed snapshot) -> {new_cp} (restarted)");
    second.kill9();
}
