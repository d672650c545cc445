//! No gap and no duplicate between the snapshot and the stream while the application keeps
//! writing: a writer commits small transactions (inserts, read-modify-write updates, deletes)
//! before the slot exists, during the COPY and after streaming started. Every change must
//! land on the target exactly once: a transaction both copied and streamed would collide on a
//! primary key or increment a counter twice; one neither copied nor streamed would be missing.

mod support;

use std::sync::atomic::Ordering;
use std::sync::{Arc, OnceLock};

use pgvshift::config::Config;
use pgvshift::observe::stats::RunStats;
use pgvshift::Lsn;
use support::{InProcess, TestEnv};
use tokio::sync::watch;
use tokio_postgres::SimpleQueryMessage;

const ITEMS: i64 = 20_000;
const DIMS: usize = 768;
const COUNTERS: i64 = 200;
/// Tables copied one after the other (`workers = 1`), the big one first.
const TABLES: [&str; 3] = ["public.items", "public.counters", "public.events"];

/// What the writer knows about one of its committed transactions.
#[derive(Debug, Clone, Copy)]
struct Commit {
    /// WAL insert position read inside the transaction just before COMMIT: the commit
    /// record lies after it.
    before: Lsn,
    /// WAL insert position read after COMMIT returned: the commit record lies before it.
    after: Lsn,
    /// The snapshot copy had sent bytes before this transaction began and had not finished
    /// every table when it committed: it committed while the COPY was running.
    during_copy: bool,
}

struct Writer {
    commits: Vec<Commit>,
    /// Expected `counters.n` per id (index id - 1).
    counters: Vec<i64>,
    events: i64,
}

/// Write until `stop`; publishes the number of commits so far on `progress`.
async fn writer(
    env_url: String,
    stats: Arc<OnceLock<Arc<RunStats>>>,
    mut stop: watch::Receiver<bool>,
    progress: watch::Sender<usize>,
) -> Writer {
    let client = pgvshift::source::connect_url(&env_url).await.expect("writer connects");
    let mut w = Writer {
        commits: Vec::new(),
        counters: vec![0; COUNTERS as usize],
        events: 0,
    };
    let mut i: i64 = 0;
    while !*stop.borrow_and_update() {
        i += 1;
        let k = i % COUNTERS + 1;
        // Existing rows, with repeats (a lost or doubled title update shows in the text).
        let hot = (i * 7919) % 500 + 1;
        let mut sql = format!(
            "BEGIN;
             UPDATE counters SET n = n + 1 WHERE id = {k};
             INSERT INTO events VALUES ({i}, {k}, 'event {i}');
             UPDATE items SET title = title || '+' WHERE id = {hot};"
        );
        if i % 3 == 0 {
            sql.push_str(&format!(
                "INSERT INTO items VALUES ({}, 'new {i}', array_fill({i}::real / 3, ARRAY[{DIMS}])::vector);",
                ITEMS + i
            ));
        }
        if i % 4 == 0 {
            sql.push_str(&format!(
                "UPDATE items SET embedding = array_fill(-{i}::real, ARRAY[{DIMS}])::vector WHERE id = {};",
                hot + 1
            ));
        }
        if i % 5 == 0 {
            sql.push_str(&format!("DELETE FROM items WHERE id = {};", (i * 104_729) % ITEMS + 1));
        }
        if i % 6 == 0 {
            // A row this writer inserted three transactions ago.
            sql.push_str(&format!("DELETE FROM items WHERE id = {};", ITEMS + i - 3));
        }
        if i % 10 == 0 {
            sql.push_str(&format!("DELETE FROM events WHERE id = {};", i - 5));
            w.events -= 1;
        }
        if i % 7 == 0 {
            // Changes rolled back to a savepoint must not reach the target.
            sql.push_str(&format!(
                "SAVEPOINT sp; UPDATE counters SET n = n + 1000 WHERE id = {k}; INSERT INTO events VALUES (-{i}, {k}, 'rolled back'); ROLLBACK TO SAVEPOINT sp;"
            ));
        }
        sql.push_str("SELECT pg_current_wal_insert_lsn()::text; COMMIT; SELECT pg_current_wal_insert_lsn()::text;");

        let copy_started = stats.get().is_some_and(|s| s.copy.bytes.load(Ordering::Relaxed) > 0);
        let messages = client.simple_query(&sql).await.expect("writer transaction");
        let copy_unfinished = stats
            .get()
            .is_some_and(|s| s.copy.tables_done.load(Ordering::Relaxed) < TABLES.len() as u64);
        let lsns: Vec<Lsn> = messages
            .iter()
            .filter_map(|m| match m {
                SimpleQueryMessage::Row(r) => Some(r.get(0).unwrap().parse().unwrap()),
                _ => None,
            })
            .collect();
        assert_eq!(lsns.len(), 2);
        w.counters[(k - 1) as usize] += 1;
        w.events += 1;
        w.commits.push(Commit {
            before: lsns[0],
            after: lsns[1],
            during_copy: copy_started && copy_unfinished,
        });
        progress.send_replace(w.commits.len());
        if i % 11 == 0 {
            // Neither must a transaction that rolls back.
            client
                .batch_execute(
                    "BEGIN; UPDATE counters SET n = n + 1000000; DELETE FROM items WHERE id <= 100; ROLLBACK;",
                )
                .await
                .expect("writer rollback");
        }
    }
    w
}

/// Wait for `wait`, but fail at once if the pipeline ends (an error) in the meantime.
async fn unless_run_fails(run: &mut InProcess, wait: impl std::future::Future<Output = ()>) {
    tokio::select! {
        _ = wait => {}
        ended = &mut run.handle => panic!("the pipeline ended while the test waited on it: {ended:?}"),
    }
}

async fn commits_reach(progress: &mut watch::Receiver<usize>, n: usize) {
    progress
        .wait_for(|c| *c >= n)
        .await
        .expect("the writer stopped early (it panicked?)");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_during_the_copy_land_exactly_once() {
    let env = TestEnv::new(
        "handoff",
        &format!(
            "CREATE TABLE items (id bigint PRIMARY KEY, title text NOT NULL, embedding vector({DIMS}));
             INSERT INTO items SELECT g, 'item ' || g, array_fill((g % 997)::real / 7, ARRAY[{DIMS}])::vector
               FROM generate_series(1, {ITEMS}) g;
             CREATE TABLE counters (id int PRIMARY KEY, n bigint NOT NULL);
             INSERT INTO counters SELECT g, 0 FROM generate_series(1, {COUNTERS}) g;
             CREATE TABLE events (id bigint PRIMARY KEY, counter int NOT NULL, note text);"
        ),
    );
    let path = env.write_config(&TABLES.map(|t| (t, None)), "[snapshot]\nworkers = 1");
    let config = Config::load_with_env(&path, &|_| None).unwrap();
    assert_eq!(config.snapshot.workers, 1);

    // The writer runs before the slot exists...
    let stats_slot: Arc<OnceLock<Arc<RunStats>>> = Arc::new(OnceLock::new());
    let (stop_tx, stop_rx) = watch::channel(false);
    let (progress_tx, mut progress) = watch::channel(0usize);
    let writer = tokio::spawn(writer(env.source_url(), stats_slot.clone(), stop_rx, progress_tx));
    commits_reach(&mut progress, 20).await;

    // ...keeps going through the snapshot...
    let mut run = env.spawn_run(config);
    stats_slot.set(run.stats.clone()).ok();
    unless_run_fails(&mut run, env.wait_streaming()).await;

    // ...and after streaming started.
    let at_streaming = *progress.borrow();
    commits_reach(&mut progress, at_streaming + 50).await;
    stop_tx.send(true).unwrap();
    let w = writer.await.expect("writer");
    unless_run_fails(&mut run, env.wait_caught_up()).await;

    // The overlap this test is about really happened.
    let consistent_point: Lsn = env
        .target_value(&format!(
            "SELECT consistent_point FROM pgvshift.progress WHERE slot = '{}'",
            env.name
        ))
        .parse()
        .unwrap();
    let before_slot = w.commits.iter().filter(|c| c.after <= consistent_point).count();
    let during_copy = w
        .commits
        .iter()
        .filter(|c| c.before >= consistent_point && c.during_copy)
        .count();
    assert!(
        before_slot >= 20,
        "{before_slot} writer commits before the consistent point {consistent_point}"
    );
    assert!(
        during_copy >= 1,
        "no writer transaction committed while the copy ran (consistent point {consistent_point}, {} commits in all): the copy was too quick for this test",
        w.commits.len()
    );
    assert!(w.commits.len() >= at_streaming + 50);
    eprintln!(
        "writer: {} commits, {before_slot} before the consistent point, {during_copy} during the copy, {} after streaming started",
        w.commits.len(),
        w.commits.len() - at_streaming
    );

    // Exactly once: both sides equal, and equal to what the writer did.
    for (table, key) in [("items", "id"), ("counters", "id"), ("events", "id")] {
        env.assert_same(table, key).await;
    }
    let expected: Vec<String> = w.counters.iter().map(|n| n.to_string()).collect();
    assert_eq!(
        env.target_value("SELECT string_agg(n::text, ',' ORDER BY id) FROM counters"),
        expected.join(",")
    );
    assert_eq!(env.target_value("SELECT count(*) FROM events"), w.events.to_string());
    assert_eq!(
        env.target_value("SELECT sum(n) FROM counters"),
        w.commits.len().to_string()
    );
    let copied: i64 = env
        .target_value(&format!(
            "SELECT rows_copied FROM pgvshift.tables WHERE slot = '{}' AND source_table = 'public.counters'",
            env.name
        ))
        .parse()
        .unwrap();
    assert_eq!(copied, COUNTERS);
    assert!(run.apply_stats().transactions.load(Ordering::Relaxed) as usize >= during_copy);
    run.stop().await;
}
