//! Profile `lantern`: vector and halfvec columns become real[], bit becomes integer[] (32 bits a
//! word), sparsevec is refused unless densify_sparse. Values must equal the server's own casts
//! (`v::real[]`), in the snapshot and in the stream; `plan` shows the lantern_hnsw DDL. The
//! target is plain PostgreSQL with the same column types and the indexes are printed
//! (index_ddl_only), not built, so this runs everywhere; tests/engine_lantern.rs runs the
//! profile against the real Lantern when it is installed.

mod support;

use pgvshift::config::Config;

const SETUP: &str = "CREATE TABLE items (id int PRIMARY KEY, note text, emb vector(16), h halfvec(8), b bit(40), s sparsevec(6));
     INSERT INTO items SELECT g, 'n' || g,
            (SELECT array_agg((random() - 0.5) * 10) FROM generate_series(1, 16) WHERE g > 0)::vector,
            (SELECT array_agg(random()) FROM generate_series(1, 8) WHERE g > 0)::halfvec,
            (SELECT string_agg(CASE WHEN random() < 0.5 THEN '1' ELSE '0' END, '') FROM generate_series(1, 40) WHERE g > 0)::bit(40),
            CASE WHEN g % 4 = 0 THEN NULL ELSE format('{%s:%s,6:-1}/6', 1 + g % 5, g)::sparsevec END
       FROM generate_series(1, 200) g;
     CREATE INDEX items_emb_l2 ON items USING hnsw (emb vector_l2_ops) WITH (m = 12, ef_construction = 500);
     CREATE INDEX items_h_cos ON items USING hnsw (h halfvec_cosine_ops);
     CREATE INDEX items_emb_ip ON items USING hnsw (emb vector_ip_ops);
     CREATE INDEX items_note ON items (note);";

/// The source's values through PostgreSQL's own casts, and the target's as stored.
fn fingerprint(env: &support::TestEnv, source: bool) -> String {
    let cols = if source {
        "emb::real[]::text, h::real[]::text, \
         CASE WHEN b IS NOT NULL THEN ARRAY[substring(b from 1 for 32)::bit(32)::int4, \
                                             (substring(b from 33 for 8) || B'000000000000000000000000')::bit(32)::int4]::text END, \
         s::vector::real[]::text"
    } else {
        "emb::text, h::text, b::text, s::text"
    };
    let sql = format!(
        "SELECT count(*) || ' ' || md5(string_agg(concat_ws('|', id, note, {cols}), ';' ORDER BY id)) FROM items"
    );
    if source {
        env.source_value(&sql)
    } else {
        env.target_value(&sql)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vectors_become_real_arrays_with_translated_indexes() {
    let env = support::TestEnv::new("lantern", SETUP);

    // sparsevec has no Lantern type: plan blocks and names the fix.
    let path = env.write_config_with(&[("public.items", "profile = \"lantern\"")], "");
    let (code, stdout, stderr) = env.run_binary(&["plan", "--config", path.to_str().unwrap()]);
    assert_eq!(code, 1, "{stdout}\n{stderr}");
    assert!(
        stderr.contains("column s") && stderr.contains("densify_sparse = true"),
        "{stderr}"
    );
    // Inner product has no Lantern opclass: skipped, with the explicit mapping to use.
    assert!(
        stdout.contains("skipped: index items_emb_ip")
            && stdout.contains("index_opclasses = { items_emb_ip = \"vector_cosine_ops\" }"),
        "{stdout}"
    );

    let path = env.write_config_with(&[("public.items", "profile = \"lantern\"\ndensify_sparse = true\nindex_ddl_only = true\nindex_opclasses = { items_emb_ip = \"vector_cosine_ops\" }")], "");
    let (code, plan, stderr) = env.run_binary(&["plan", "--config", path.to_str().unwrap()]);
    assert_eq!(code, 0, "{plan}\n{stderr}");
    for want in [
        "vector(16) -> real[]",
        "halfvec(8) -> real[]",
        "bit(40) -> integer[]",
        "sparsevec(6) -> real[]",
        "USING lantern_hnsw (\"emb\" dist_l2sq_ops) WITH (m=12, ef_construction=400, ef=64, dim=16)",
        "ef_construction 500 clamped to 400",
        "USING lantern_hnsw (\"h\" dist_cos_ops)",
        "CREATE INDEX IF NOT EXISTS \"items_emb_ip\" ON \"public\".\"items\" USING lantern_hnsw (\"emb\" dist_cos_ops)",
        "index items_emb_ip: translated as vector_cosine_ops instead of vector_ip_ops (index_opclasses)",
        "extensions the target needs for these indexes: lantern",
    ] {
        assert!(plan.contains(want), "plan lacks {want:?}:\n{plan}");
    }

    let run = env.spawn_run(Config::load_with_env(&path, &|_| None).unwrap());
    env.wait_streaming().await;
    assert_eq!(
        env.target_value("SELECT string_agg(format_type(atttypid, atttypmod), ',' ORDER BY attnum) FROM pg_attribute WHERE attrelid = 'items'::regclass AND attnum > 0"),
        "integer,text,real[],real[],integer[],real[]"
    );
    assert_eq!(
        fingerprint(&env, true),
        fingerprint(&env, false),
        "snapshot values differ from v::real[]"
    );
    // index_ddl_only: printed, not built (only the primary key exists).
    assert_eq!(
        env.target_value("SELECT count(*) FROM pg_indexes WHERE tablename = 'items'"),
        "1"
    );

    let source = env.source_client().await;
    source
        .batch_execute(
            "INSERT INTO items SELECT g, 'live', (SELECT array_agg(i * 0.25) FROM generate_series(1, 16) i)::vector,
                    '[1,2,3,4,5,6,7,65504]'::halfvec, B'1000000000000000000000000000000000000001', '{6:2.5}/6'::sparsevec
               FROM generate_series(1001, 1030) g;
             INSERT INTO items VALUES (2000, 'single', NULL, NULL, NULL, NULL);
             UPDATE items SET emb = emb, b = ~b WHERE id % 9 = 0;
             UPDATE items SET note = 'edited' WHERE id % 5 = 0;
             DELETE FROM items WHERE id % 13 = 0;",
        )
        .await
        .unwrap();
    env.wait_caught_up().await;
    assert_eq!(
        fingerprint(&env, true),
        fingerprint(&env, false),
        "streamed values differ from v::real[]"
    );
    run.stop().await;
}
