//! One source transaction far bigger than the memory pgvshift may use (300k rows of 1 kB,
//! ~300 MB of row data) streams through with bounded memory: the binary's peak resident set
//! (VmHWM, which the kernel keeps as a high-water mark) stays under 200 MB, and the target
//! ends up identical.

mod support;

use std::time::{Duration, Instant};

use pgvshift::Lsn;
use support::binary::{applied, Binary};
use support::TestEnv;

const ROWS: u64 = 300_000;
const ROW_BYTES: u64 = 1000;
const PEAK_RSS_LIMIT_KB: u64 = 200 * 1024;
/// How often the waits below look at the target.
const POLL: Duration = Duration::from_millis(50);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transaction_much_bigger_than_memory_streams_through() {
    let env = TestEnv::new(
        "bigtxn",
        "CREATE TABLE payloads (id int PRIMARY KEY, body text NOT NULL, embedding vector(3));
         INSERT INTO payloads VALUES (0, 'before', '[1,2,3]');",
    );
    let config = env.write_config(&[("public.payloads", None)], "");
    let mut bin = Binary::start(&env, &config).polling_every(POLL);
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
