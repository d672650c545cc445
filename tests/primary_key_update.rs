//! An UPDATE that changes the primary key arrives with the old key (REPLICA IDENTITY DEFAULT:
//! a 'K' old tuple) and the new row; the target must find the row by its OLD key and move it:
//! the old key disappears, the new key holds the row's other values (vectors included).

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

/// A `vector(1536)` literal whose components depend on `seed` (big enough to be TOASTed).
fn big_vector_sql(seed: i32) -> String {
    format!("(SELECT array_agg({seed} + i * 0.001) FROM generate_series(1, 1536) i)::vector")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn primary_key_changes_move_the_row_on_the_target() {
    let env = TestEnv::new(
        "pkupd",
        &format!(
            "CREATE TABLE items (id int PRIMARY KEY, title text, embedding vector(3));
             INSERT INTO items SELECT g, 'item ' || g, ARRAY[g, g + 0.5, -g]::vector FROM generate_series(1, 10) g;
             CREATE TABLE pairs (tenant int, code text, note text, embedding vector(3), PRIMARY KEY (tenant, code));
             INSERT INTO pairs SELECT g % 3, 'c' || g, 'pair ' || g, ARRAY[g, 0, 1]::vector FROM generate_series(1, 9) g;
             CREATE TABLE docs (id int PRIMARY KEY, title text, embedding vector(1536));
             INSERT INTO docs SELECT g, 'doc ' || g, {} FROM generate_series(1, 5) g;
             CREATE TABLE bulk (id int PRIMARY KEY, n int, embedding vector(3));
             INSERT INTO bulk SELECT g, g, ARRAY[g, g, 1]::vector FROM generate_series(1, 30) g;",
            big_vector_sql(7)
        ),
    );
    let mut run = env.spawn_run(env.config(&[
        ("public.items", None),
        ("public.pairs", None),
        ("public.docs", None),
        ("public.bulk", None),
    ]));
    wait(&mut run, env.wait_streaming()).await;
    let source = env.source_client().await;

    // 1. Single-column key: id 1 -> 101, other values untouched.
    source
        .batch_execute("UPDATE items SET id = 101 WHERE id = 1")
        .await
        .unwrap();
    // Key and a value in the same statement.
    source
        .batch_execute("UPDATE items SET id = 103, embedding = '[9,8,7]' WHERE id = 3")
        .await
        .unwrap();
    // 2. Composite key: change one part, then the other part, then both.
    source
        .batch_execute("UPDATE pairs SET code = 'moved' WHERE tenant = 1 AND code = 'c1'")
        .await
        .unwrap();
    source
        .batch_execute("UPDATE pairs SET tenant = 7 WHERE tenant = 2 AND code = 'c2'")
        .await
        .unwrap();
    source
        .batch_execute("UPDATE pairs SET tenant = 8, code = 'both' WHERE tenant = 0 AND code = 'c3'")
        .await
        .unwrap();
    // 3. In one transaction: move id 2 away and insert a new row reusing key 2; then swap the
    //    keys of 4 and 5 through a temporary key, and move 6 twice.
    source
        .batch_execute(
            "BEGIN;
             UPDATE items SET id = 102 WHERE id = 2;
             INSERT INTO items VALUES (2, 'reused key', '[2,2,2]');
             UPDATE items SET id = -4 WHERE id = 4;
             UPDATE items SET id = 4 WHERE id = 5;
             UPDATE items SET id = 5 WHERE id = -4;
             UPDATE items SET id = 60 WHERE id = 6;
             UPDATE items SET id = 600, title = 'six hundred' WHERE id = 60;
             COMMIT;",
        )
        .await
        .unwrap();
    // 4. A key change on a row whose TOASTed vector is not touched: it arrives as 'unchanged'
    //    in the new tuple and must travel with the row.
    source
        .batch_execute("UPDATE docs SET id = 50 WHERE id = 5")
        .await
        .unwrap();
    // 5. Key changes between long runs of key-keeping updates of the same table, in one
    //    transaction (the applier may apply such runs set-wise), one moving back onto a key
    //    freed in the same transaction.
    source
        .batch_execute(
            "BEGIN;
             UPDATE bulk SET n = n + 1;
             UPDATE bulk SET id = id + 100 WHERE id <= 5;
             UPDATE bulk SET n = n * 10;
             UPDATE bulk SET id = 1, embedding = '[0,0,0]' WHERE id = 101;
             UPDATE bulk SET n = -n WHERE id BETWEEN 1 AND 10;
             COMMIT;",
        )
        .await
        .unwrap();
    wait(&mut run, env.wait_caught_up()).await;

    // Old keys gone, new keys present with the row's values.
    assert_eq!(
        env.target_value("SELECT count(*) FROM items WHERE id IN (1, 3, 6, 60)"),
        "0"
    );
    assert_eq!(
        env.target_value("SELECT title || ' ' || embedding::text FROM items WHERE id = 101"),
        "item 1 [1,1.5,-1]"
    );
    assert_eq!(
        env.target_value("SELECT title || ' ' || embedding::text FROM items WHERE id = 103"),
        "item 3 [9,8,7]"
    );
    assert_eq!(
        env.target_value("SELECT title || ' ' || embedding::text FROM items WHERE id = 102"),
        "item 2 [2,2.5,-2]"
    );
    assert_eq!(
        env.target_value("SELECT title || ' ' || embedding::text FROM items WHERE id = 2"),
        "reused key [2,2,2]"
    );
    assert_eq!(env.target_value("SELECT title FROM items WHERE id = 4"), "item 5");
    assert_eq!(env.target_value("SELECT title FROM items WHERE id = 5"), "item 4");
    assert_eq!(
        env.target_value("SELECT title || ' ' || embedding::text FROM items WHERE id = 600"),
        "six hundred [6,6.5,-6]"
    );

    assert_eq!(
        env.target_value("SELECT count(*) FROM pairs WHERE (tenant, code) IN ((1, 'c1'), (2, 'c2'), (0, 'c3'))"),
        "0"
    );
    assert_eq!(
        env.target_value("SELECT note || ' ' || embedding::text FROM pairs WHERE tenant = 1 AND code = 'moved'"),
        "pair 1 [1,0,1]"
    );
    assert_eq!(
        env.target_value("SELECT note || ' ' || embedding::text FROM pairs WHERE tenant = 7 AND code = 'c2'"),
        "pair 2 [2,0,1]"
    );
    assert_eq!(
        env.target_value("SELECT note || ' ' || embedding::text FROM pairs WHERE tenant = 8 AND code = 'both'"),
        "pair 3 [3,0,1]"
    );

    assert_eq!(env.target_value("SELECT count(*) FROM docs WHERE id = 5"), "0");
    assert_eq!(
        env.target_value(&format!(
            "SELECT title || ' ' || (embedding = {})::text FROM docs WHERE id = 50",
            big_vector_sql(7)
        )),
        "doc 5 true"
    );

    env.assert_same("items", "id").await;
    env.assert_same("pairs", "tenant, code").await;
    env.assert_same("docs", "id").await;
    assert_eq!(
        env.target_value("SELECT count(*) FROM bulk WHERE id BETWEEN 2 AND 5 OR id = 101"),
        "0"
    );
    assert_eq!(
        env.target_value("SELECT n || ' ' || embedding::text FROM bulk WHERE id = 1"),
        "-20 [0,0,0]"
    );
    assert_eq!(
        env.target_value("SELECT n || ' ' || embedding::text FROM bulk WHERE id = 102"),
        "30 [2,2,1]"
    );
    assert_eq!(env.target_value("SELECT n FROM bulk WHERE id = 10"), "-110");
    env.assert_same("bulk", "id").await;
    run.stop().await;
}
