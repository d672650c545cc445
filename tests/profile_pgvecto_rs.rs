//! Profile `pgvecto_rs`: values arrive in PGVecto.rs's text forms (sparse indices made 0-based),
//! in the snapshot (staged as text, cast to the target's column types) and in the stream (text
//! parameters). PGVecto.rs cannot be installed here: the target table is pre-created with `text`
//! columns where the real one would have `vectors.*` types, so everything up to the extension's
//! own input function is exercised.

mod support;

use pgvshift::config::Config;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn values_arrive_in_pgvecto_rs_text_form() {
    let env = support::TestEnv::new(
        "pgvectors",
        "CREATE TABLE items (id int PRIMARY KEY, v vector(3), h halfvec(2), s sparsevec(5), b bit(4), note text);
         INSERT INTO items VALUES (1, '[1,2.5,-3]', '[0.5,1]', '{1:1.5,3:-2}/5', B'1011', 'a'),
                                  (2, NULL, NULL, '{}/5', NULL, 'b');
         CREATE INDEX items_v ON items USING hnsw (v vector_cosine_ops);",
    );
    env.target
        .psql(
            &env.name,
            "CREATE TABLE items (id int PRIMARY KEY, v text, h text, s text, b text, note text)",
        )
        .unwrap();
    let path = env.write_config_with(
        &[("public.items", "profile = \"pgvecto_rs\"\nindex_ddl_only = true")],
        "",
    );
    let (code, plan, stderr) = env.run_binary(&["plan", "--config", path.to_str().unwrap()]);
    assert_eq!(code, 0, "{plan}\n{stderr}");
    for want in [
        "vector(3) -> vectors.vector(3)",
        "sparsevec(5) -> vectors.svector(5)",
        "indices made 0-based",
        "USING vectors (",
        "vectors.vector_cos_ops",
    ] {
        assert!(plan.contains(want), "plan lacks {want:?}:\n{plan}");
    }

    let run = env.spawn_run(Config::load_with_env(&path, &|_| None).unwrap());
    env.wait_streaming().await;
    let rows =
        || env.target_value("SELECT string_agg(concat_ws('|', id, v, h, s, b, note), E'\\n' ORDER BY id) FROM items");
    assert_eq!(
        rows(),
        "1|[1, 2.5, -3]|[0.5, 1]|{0:1.5, 2:-2}/5|[1, 0, 1, 1]|a\n2|{}/5|b"
    );

    env.source_client()
        .await
        .batch_execute(
            "INSERT INTO items VALUES (3, '[0.25,-0,7]', '[2,3]', '{5:9}/5', B'0001', 'c');
             UPDATE items SET h = '[1.5,2]' WHERE id = 1;
             UPDATE items SET note = 'bb' WHERE id = 2;
             DELETE FROM items WHERE id = 1;",
        )
        .await
        .unwrap();
    env.wait_caught_up().await;
    assert_eq!(rows(), "2|{}/5|bb\n3|[0.25, -0, 7]|[2, 3]|{4:9}/5|[0, 0, 0, 1]|c");
    run.stop().await;
}
