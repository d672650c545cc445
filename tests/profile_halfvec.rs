//! Profile `halfvec`: vector(n) columns become halfvec(n) on the target, in the snapshot and in
//! the stream, with exactly the values PostgreSQL's own vector -> halfvec cast gives; a value
//! beyond halfvec's range stops the run with an error naming the table, row and column.

mod support;

use pgvshift::config::Config;

const SETUP: &str = "CREATE TABLE items (id bigint PRIMARY KEY, note text, emb vector(768), wide vector(3000));
     INSERT INTO items SELECT g, 'n' || g,
            (SELECT array_agg((random() - 0.5) * 100) FROM generate_series(1, 768) WHERE g > 0)::vector,
            CASE WHEN g % 3 = 0 THEN NULL ELSE (SELECT array_agg(random() * 1e-6) FROM generate_series(1, 3000) WHERE g > 0)::vector END
       FROM generate_series(1, 300) g;
     CREATE INDEX items_emb_idx ON items USING hnsw (emb vector_cosine_ops) WITH (m = 8, ef_construction = 32);";

/// md5 over the halfvec text of every row: on the source through the cast, on the target as stored.
async fn assert_halfvec_equal(env: &support::TestEnv) {
    let q = |cast: &str| {
        format!(
            "SELECT count(*)::text || ' ' || md5(string_agg(id || ':' || coalesce(emb{cast}::text, 'N') || ':' || coalesce(wide{c2}::text, 'N') || ':' || note, '|' ORDER BY id)) FROM items",
            c2 = if cast.is_empty() { "" } else { "::halfvec(3000)" }
        )
    };
    assert_eq!(
        env.source_value(&q("::halfvec(768)")),
        env.target_value(&q("")),
        "halfvec values differ from the server's own cast"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vectors_become_halfvec_in_snapshot_and_stream() {
    let env = support::TestEnv::new("halfvec", SETUP);
    let path = env.write_config_with(&[("public.items", "profile = \"halfvec\"")], "");
    let run = env.spawn_run(Config::load_with_env(&path, &|_| None).unwrap());
    env.wait_streaming().await;

    assert_eq!(
        env.target_value("SELECT format_type(atttypid, atttypmod) FROM pg_attribute WHERE attrelid = 'items'::regclass AND attname IN ('emb', 'wide') ORDER BY attname"),
        "halfvec(768)\nhalfvec(3000)"
    );
    // The hnsw index was translated to the halfvec opclass.
    let def = env.target_value("SELECT indexdef FROM pg_indexes WHERE indexname = 'items_emb_idx'");
    assert!(
        def.contains("USING hnsw (emb halfvec_cosine_ops)") && def.contains("m='8'"),
        "{def}"
    );
    assert_halfvec_equal(&env).await;

    let source = env.source_client().await;
    source
        .batch_execute(
            "INSERT INTO items SELECT g, 'live', (SELECT array_agg(g * 0.001 + i) FROM generate_series(1, 768) i)::vector, NULL FROM generate_series(1001, 1040) g;
             UPDATE items SET emb = (SELECT array_agg(-i * 0.5) FROM generate_series(1, 768) i)::vector WHERE id % 10 = 1;
             UPDATE items SET note = note || '!' WHERE id % 7 = 0;
             INSERT INTO items VALUES (2000, 'single', (SELECT array_agg(65504) FROM generate_series(1, 768))::vector, NULL);
             DELETE FROM items WHERE id % 11 = 0;",
        )
        .await
        .unwrap();
    env.wait_caught_up().await;
    assert_halfvec_equal(&env).await;
    run.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_value_beyond_halfvec_range_stops_with_the_row_named() {
    // In the snapshot...
    let env = support::TestEnv::new(
        "halfvec_snap_bad",
        "CREATE TABLE items (id bigint PRIMARY KEY, emb vector(3));
         INSERT INTO items VALUES (1, '[1,2,3]'), (42, '[1,70000,3]');",
    );
    let path = env.write_config_with(&[("public.items", "profile = \"halfvec\"")], "");
    let run = env.spawn_run(Config::load_with_env(&path, &|_| None).unwrap());
    let err = run.failure().await;
    for want in ["public.items", "id=42", "emb", "halfvec"] {
        assert!(err.contains(want), "missing {want:?} in: {err}");
    }
    assert!(!err.contains("70000"), "values must not be printed: {err}");

    // ...and in the stream.
    let env = support::TestEnv::new(
        "halfvec_stream_bad",
        "CREATE TABLE items (id bigint PRIMARY KEY, emb vector(3));",
    );
    let path = env.write_config_with(&[("public.items", "profile = \"halfvec\"")], "");
    let run = env.spawn_run(Config::load_with_env(&path, &|_| None).unwrap());
    env.wait_streaming().await;
    env.source_client()
        .await
        .batch_execute("INSERT INTO items VALUES (7, '[1,2,3]'); INSERT INTO items VALUES (8, '[-1e6,0,0]')")
        .await
        .unwrap();
    let err = run.failure().await;
    for want in ["public.items", "id=8", "emb", "halfvec"] {
        assert!(err.contains(want), "missing {want:?} in: {err}");
    }
    // Nothing of the failed transaction was applied.
    assert_eq!(env.target_value("SELECT count(*) FROM items"), "0");
}
