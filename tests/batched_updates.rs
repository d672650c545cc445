//! Runs of updates are applied through a staging table (COPY + one UPDATE ... FROM). The result
//! must equal applying them one by one: the same key updated several times in one transaction
//! ends with its last value, mixed column shapes (TOASTed vector unchanged or not) keep every
//! value, and REPLICA IDENTITY FULL tables with a key work the same.

mod support;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn staged_updates_equal_row_by_row_application() {
    let env = support::TestEnv::new(
        "batched",
        "CREATE TABLE items (id int PRIMARY KEY, n int NOT NULL, note text, embedding vector(768));
         INSERT INTO items SELECT g, 0, 'row ' || g, (SELECT array_agg(g + i * 0.5) FROM generate_series(1, 768) i)::vector
           FROM generate_series(1, 2000) g;
         CREATE TABLE full_items (id int PRIMARY KEY, n int NOT NULL, payload jsonb);
         ALTER TABLE full_items REPLICA IDENTITY FULL;
         INSERT INTO full_items SELECT g, 0, jsonb_build_object('g', g) FROM generate_series(1, 500) g;",
    );
    let run = env.spawn_run(env.config(&[("public.items", None), ("public.full_items", None)]));
    env.wait_streaming().await;
    let source = env.source_client().await;

    // The same keys updated many times in one transaction: counters must end exact.
    let mut sql = String::from("BEGIN;");
    for round in 0..20 {
        sql.push_str(&format!("UPDATE items SET n = n + 1 WHERE id % 10 = {};", round % 10));
        sql.push_str("UPDATE items SET n = n + 1 WHERE id <= 50;");
    }
    sql.push_str("COMMIT;");
    source.batch_execute(&sql).await.unwrap();

    // Mixed shapes in one transaction: note only (vector unchanged, sent as 'u'), then vector
    // too, then note only again, then a key change in the middle.
    source
        .batch_execute(
            "BEGIN;
             UPDATE items SET note = note || ' a' WHERE id BETWEEN 100 AND 300;
             UPDATE items SET embedding = (SELECT array_agg(-i::real) FROM generate_series(1, 768) i)::vector, note = 'v'
              WHERE id BETWEEN 200 AND 400;
             UPDATE items SET note = note || ' b' WHERE id BETWEEN 250 AND 450;
             UPDATE items SET id = id + 100000 WHERE id BETWEEN 440 AND 460;
             UPDATE items SET note = note || ' c' WHERE id > 100000 OR id BETWEEN 430 AND 470;
             COMMIT;",
        )
        .await
        .unwrap();

    // One large statement, and a REPLICA IDENTITY FULL table with a key.
    source.batch_execute("UPDATE items SET n = n * 2").await.unwrap();
    source
        .batch_execute("UPDATE full_items SET n = n + 7, payload = payload || '{\"x\": 1}' WHERE id % 3 = 0; UPDATE full_items SET n = n + 1")
        .await
        .unwrap();
    env.wait_caught_up().await;

    assert_eq!(
        env.target_value("SELECT count(*) FROM items WHERE embedding IS NULL"),
        "0"
    );
    assert_eq!(
        env.target_value("SELECT n FROM items WHERE id = 1"),
        env.source_value("SELECT n FROM items WHERE id = 1")
    );
    env.assert_same("items", "id").await;
    env.assert_same("full_items", "id").await;
    run.stop().await;
}
