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

use std::sync::Mutex;
use std::time::Duration;

use pgvshift::Lsn;
use support::binary::{applied, random_vector_sql, source_lsn, Binary};
use support::TestEnv;

const DIMS: usize = 768;
/// How often the waits below look at the target.
const POLL: Duration = Duration::from_millis(10);

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
            vec = random_vector_sql(DIMS, "g")
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

    let mut first = Binary::start(&env, &config).polling_every(POLL);
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
        vec = random_vector_sql(DIMS, "g"),
        vec2 = random_vector_sql(DIMS, "id")
    ));

    let mut second = Binary::start(&env, &config).polling_every(POLL);
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
        vec = random_vector_sql(DIMS, "g"),
        vec2 = random_vector_sql(DIMS, "id")
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
