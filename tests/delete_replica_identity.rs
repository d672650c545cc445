//! DELETE (and UPDATE) under each replica identity the applier has to match rows with:
//! - DEFAULT on a table with a primary key: the old tuple ('K') carries only the key;
//! - FULL on a table with a primary key: the whole old row ('O'), matched on the key;
//! - FULL on a table WITHOUT a primary key: matched on every column, NULLs included, json and
//!   point (types without an equality operator) included, and exactly ONE of several identical
//!   rows is deleted or updated, as on the source.

mod support;

use support::{InProcess, TestEnv};

/// Wait for `until` (e.g. `env.wait_caught_up()`), failing at once with the run's error if the
/// run ends first.
async fn wait(run: &mut InProcess, until: impl std::future::Future<Output = ()>) {
    tokio::select! {
        _ = until => {}
        ended = &mut run.handle => panic!("the run ended while the test waited for it: {ended:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_with_replica_identity_default_uses_the_key() {
    let env = TestEnv::new(
        "delkey",
        "CREATE TABLE items (id int PRIMARY KEY, note text, j json, embedding vector(3));
         INSERT INTO items SELECT g, 'item ' || g, json_build_object('n', g), ARRAY[g, g, g]::vector FROM generate_series(1, 10) g;
         UPDATE items SET note = NULL, j = NULL, embedding = NULL WHERE id = 3;",
    );
    assert_eq!(
        env.source_value("SELECT relreplident FROM pg_class WHERE relname = 'items'"),
        "d"
    );
    let mut run = env.spawn_run(env.config(&[("public.items", None)]));
    wait(&mut run, env.wait_streaming()).await;
    let source = env.source_client().await;

    source
        .batch_execute("DELETE FROM items WHERE id IN (1, 3)")
        .await
        .unwrap();
    source
        .batch_execute(
            "BEGIN;
             INSERT INTO items VALUES (11, 'new', '{\"a\": [1, 2]}', '[1,1,1]');
             DELETE FROM items WHERE id = 11;
             DELETE FROM items WHERE id = 5;
             INSERT INTO items VALUES (5, 'five again', NULL, '[5,0,5]');
             COMMIT;",
        )
        .await
        .unwrap();
    wait(&mut run, env.wait_caught_up()).await;

    assert_eq!(
        env.target_value("SELECT string_agg(id::text, ',' ORDER BY id) FROM items"),
        "2,4,5,6,7,8,9,10"
    );
    assert_eq!(
        env.target_value("SELECT note || ' ' || embedding::text FROM items WHERE id = 5"),
        "five again [5,0,5]"
    );
    assert!(run.apply_stats().deletes.load(std::sync::atomic::Ordering::Relaxed) >= 4);
    env.assert_same("items", "id").await;
    run.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_with_replica_identity_full_and_a_primary_key() {
    let env = TestEnv::new(
        "delfullpk",
        "CREATE TABLE items (id int PRIMARY KEY, note text, j json, embedding vector(3));
         ALTER TABLE items REPLICA IDENTITY FULL;
         INSERT INTO items SELECT g, 'item ' || g, json_build_object('n', g), ARRAY[g, g, g]::vector FROM generate_series(1, 10) g;
         UPDATE items SET note = NULL, j = NULL, embedding = NULL WHERE id IN (3, 4);",
    );
    assert_eq!(
        env.source_value("SELECT relreplident FROM pg_class WHERE relname = 'items'"),
        "f"
    );
    let mut run = env.spawn_run(env.config(&[("public.items", None)]));
    wait(&mut run, env.wait_streaming()).await;
    let source = env.source_client().await;

    // The old tuples carry json values and NULLs: the match must still find the row.
    source
        .batch_execute("DELETE FROM items WHERE id IN (1, 3)")
        .await
        .unwrap();
    source
        .batch_execute("UPDATE items SET note = 'four', j = '{\"x\": 4}', embedding = '[4,4,4]' WHERE id = 4")
        .await
        .unwrap();
    source
        .batch_execute("UPDATE items SET note = NULL, j = NULL WHERE id = 6")
        .await
        .unwrap();
    source
        .batch_execute("UPDATE items SET id = 70 WHERE id = 7")
        .await
        .unwrap();
    source.batch_execute("DELETE FROM items WHERE id = 6").await.unwrap();
    wait(&mut run, env.wait_caught_up()).await;

    assert_eq!(
        env.target_value("SELECT string_agg(id::text, ',' ORDER BY id) FROM items"),
        "2,4,5,8,9,10,70"
    );
    assert_eq!(
        env.target_value("SELECT note || ' ' || j::text || ' ' || embedding::text FROM items WHERE id = 4"),
        "four {\"x\": 4} [4,4,4]"
    );
    env.assert_same("items", "id").await;
    run.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_and_update_without_primary_key_touch_exactly_one_matching_row() {
    // Rows are inserted so that the row to keep comes first in physical order: a match that
    // ignored a column would pick it instead of the row the source changed.
    let env = TestEnv::new(
        "delnopk",
        "CREATE TABLE log (a int, note text, j json, embedding vector(3), p point);
         ALTER TABLE log REPLICA IDENTITY FULL;
         INSERT INTO log (a, note, j, embedding) VALUES
           (1, 'twin', '{\"k\": 1}', '[1,2,3]'), (1, 'twin', '{\"k\": 1}', '[1,2,3]'),
           (2, NULL, NULL, NULL), (2, NULL, NULL, NULL), (2, 'not null', NULL, NULL),
           (3, 'json', '{\"k\": \"keep\"}', '[3,3,3]'), (3, 'json', '{\"k\": \"gone\"}', '[3,3,3]'),
           (4, 'vec', NULL, '[1,1,1]'), (4, 'vec', NULL, '[2,2,2]'),
           (5, 'twin', NULL, '[5,5,5]'), (5, 'twin', NULL, '[5,5,5]'),
           (6, 'json', '{\"k\": \"keep\"}', NULL), (6, 'json', '{\"k\": \"edit\"}', NULL);
         INSERT INTO log (a, note, p) VALUES (8, 'point', '(1,2)'), (8, 'point', '(1.5,2)');",
    );
    assert_eq!(
        env.source_value("SELECT count(*) FROM pg_index WHERE indrelid = 'log'::regclass"),
        "0"
    );
    let mut run = env.spawn_run(env.config(&[("public.log", None)]));
    wait(&mut run, env.wait_streaming()).await;
    let source = env.source_client().await;
    let one = |cond: &str| format!("ctid = (SELECT ctid FROM log WHERE {cond} LIMIT 1)");

    // One of two identical rows.
    source
        .batch_execute(&format!("DELETE FROM log WHERE {}", one("a = 1")))
        .await
        .unwrap();
    // One of two all-NULL rows (NULL must match NULL).
    source
        .batch_execute(&format!("DELETE FROM log WHERE {}", one("a = 2 AND note IS NULL")))
        .await
        .unwrap();
    // Rows that differ only in a json column / only in a vector column.
    source
        .batch_execute("DELETE FROM log WHERE a = 3 AND j::text = '{\"k\": \"gone\"}'")
        .await
        .unwrap();
    source
        .batch_execute("DELETE FROM log WHERE a = 4 AND embedding = '[2,2,2]'")
        .await
        .unwrap();
    // point has no `=` either (and its binary form is not its text form).
    source
        .batch_execute("DELETE FROM log WHERE a = 8 AND p ~= '(1.5,2)'")
        .await
        .unwrap();
    // UPDATE: one of two identical rows, and the second of two rows differing only in json.
    source
        .batch_execute(&format!("UPDATE log SET note = 'changed' WHERE {}", one("a = 5")))
        .await
        .unwrap();
    source
        .batch_execute("UPDATE log SET note = 'edited' WHERE a = 6 AND j::text = '{\"k\": \"edit\"}'")
        .await
        .unwrap();
    // Duplicates written and thinned out while streaming, in one transaction.
    source
        .batch_execute(&format!(
            "BEGIN;
             INSERT INTO log (a, note, j, embedding) VALUES (7, 'dup', '[1]', '[7,7,7]'), (7, 'dup', '[1]', '[7,7,7]'), (7, 'dup', '[1]', '[7,7,7]');
             DELETE FROM log WHERE {};
             UPDATE log SET embedding = '[0,0,0]' WHERE {};
             COMMIT;",
            one("a = 7"),
            one("a = 7 AND embedding = '[7,7,7]'")
        ))
        .await
        .unwrap();
    wait(&mut run, env.wait_caught_up()).await;

    let rows = |a: i32| env.target_value(&format!("SELECT count(*) FROM log WHERE a = {a}"));
    assert_eq!(rows(1), "1", "deleting one of two identical rows deletes exactly one");
    assert_eq!(
        env.target_value("SELECT count(*) FROM log WHERE a = 2 AND note IS NULL"),
        "1"
    );
    assert_eq!(
        env.target_value("SELECT count(*) FROM log WHERE a = 2 AND note = 'not null'"),
        "1"
    );
    assert_eq!(
        env.target_value("SELECT string_agg(j::text, ',') FROM log WHERE a = 3"),
        "{\"k\": \"keep\"}"
    );
    assert_eq!(
        env.target_value("SELECT string_agg(embedding::text, ',') FROM log WHERE a = 4"),
        "[1,1,1]"
    );
    assert_eq!(
        env.target_value("SELECT string_agg(p::text, ',') FROM log WHERE a = 8"),
        "(1,2)"
    );
    assert_eq!(
        env.target_value("SELECT string_agg(note, ',' ORDER BY note) FROM log WHERE a = 5"),
        "changed,twin"
    );
    assert_eq!(
        env.target_value("SELECT note FROM log WHERE a = 6 AND j::text = '{\"k\": \"edit\"}'"),
        "edited"
    );
    assert_eq!(
        env.target_value("SELECT note FROM log WHERE a = 6 AND j::text = '{\"k\": \"keep\"}'"),
        "json"
    );
    assert_eq!(
        env.target_value("SELECT string_agg(embedding::text, ',' ORDER BY embedding) FROM log WHERE a = 7"),
        "[0,0,0],[7,7,7]"
    );
    env.assert_same("log", "t::text").await;
    run.stop().await;
}
