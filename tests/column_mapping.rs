//! Column mapping: a renamed column, an excluded column and a different target schema and
//! table name hold in the snapshot and in every kind of streamed change (COPY runs, staged
//! updates, single statements, deletes, truncate), with a per-column profile on top.

mod support;

use pgvshift::config::Config;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn renamed_and_excluded_columns_in_snapshot_and_stream() {
    let env = support::TestEnv::new(
        "colmap",
        "CREATE TABLE docs (id int PRIMARY KEY, secret text, embedding vector(4), small vector(2), title text);
         INSERT INTO docs SELECT g, 'pw' || g, format('[%s,1,2,3]', g)::vector, '[1,2]', 't' || g FROM generate_series(1, 50) g;
         CREATE INDEX docs_emb ON docs USING hnsw (embedding vector_l2_ops);",
    );
    let path = env.write_config_with(
        &[(
            "public.docs",
            "target = \"archive.documents\"\nprofile = \"halfvec\"\ncolumns = { embedding = \"vec\", title = \"Title\" }\nexclude = [\"secret\"]\ncolumn_profiles = { small = \"pgvector\" }",
        )],
        "",
    );
    let run = env.spawn_run(Config::load_with_env(&path, &|_| None).unwrap());
    env.wait_streaming().await;
    assert_eq!(
        env.target_value("SELECT string_agg(attname || ' ' || format_type(atttypid, atttypmod), ', ' ORDER BY attnum) FROM pg_attribute WHERE attrelid = 'archive.documents'::regclass AND attnum > 0"),
        "id integer, vec halfvec(4), small vector(2), Title text"
    );
    let def =
        env.target_value("SELECT indexdef FROM pg_indexes WHERE schemaname = 'archive' AND indexname = 'docs_emb'");
    assert!(def.contains("USING hnsw (vec halfvec_l2_ops)"), "{def}");

    let source = env.source_client().await;
    source
        .batch_execute(
            "INSERT INTO docs SELECT g, 'pw', format('[%s,0,0,0]', g)::vector, '[3,4]', 'new' FROM generate_series(100, 130) g;
             INSERT INTO docs VALUES (200, 'pw', '[9,9,9,9]', NULL, 'one');
             UPDATE docs SET title = title || '!' WHERE id <= 20;
             UPDATE docs SET secret = 'changed' WHERE id = 21;
             UPDATE docs SET embedding = '[-1,-2,-3,-4]', secret = 'x' WHERE id = 22;
             UPDATE docs SET id = 300 WHERE id = 23;
             DELETE FROM docs WHERE id % 10 = 0;",
        )
        .await
        .unwrap();
    env.wait_caught_up().await;
    let q_source = "SELECT count(*) || ' ' || md5(string_agg(concat_ws('|', id, embedding::halfvec(4)::text, small::text, title), ';' ORDER BY id)) FROM docs";
    let q_target = "SELECT count(*) || ' ' || md5(string_agg(concat_ws('|', id, vec::text, small::text, \"Title\"), ';' ORDER BY id)) FROM archive.documents";
    assert_eq!(env.source_value(q_source), env.target_value(q_target));

    source
        .batch_execute("TRUNCATE docs; INSERT INTO docs VALUES (1, 's', '[1,1,1,1]', '[0,0]', 'after')")
        .await
        .unwrap();
    env.wait_caught_up().await;
    assert_eq!(env.source_value(q_source), env.target_value(q_target));
    run.stop().await;
}
