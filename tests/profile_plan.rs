//! `plan` shows the translated schema and index DDL for each of the six profiles, read from a
//! real source catalog, and changes nothing. The engines other than pgvector are not installed
//! on these test servers, so their plans end with a blocking finding naming the extension.

mod support;

#[test]
fn plan_translates_schema_and_indexes_for_every_profile() {
    let env = support::TestEnv::new(
        "profiles",
        "CREATE TABLE items (id bigint PRIMARY KEY, emb vector(768), h halfvec(4), b bit(64), note text);
         INSERT INTO items SELECT g, (SELECT array_agg(random()) FROM generate_series(1, 768) WHERE g > 0)::vector, '[1,2,3,4]', B'1010101010101010101010101010101010101010101010101010101010101010', 'x'
           FROM generate_series(1, 50) g;
         ANALYZE items;
         CREATE INDEX items_l2 ON items USING hnsw (\"emb\" vector_l2_ops) WITH (m = 16, ef_construction = 64);
         CREATE INDEX items_cos ON items USING hnsw (emb vector_cosine_ops);
         CREATE INDEX items_ivf ON items USING ivfflat (\"emb\") WITH (lists = 10);
         CREATE INDEX items_note ON items (note);",
    );
    let cases: [(&str, i32, &[&str]); 6] = [
        (
            "profile = \"pgvector\"",
            0,
            &[
                "vector(768) -> vector(768): binary passthrough",
                "USING hnsw (\"emb\" vector_l2_ops) WITH (m='16', ef_construction='64')",
                "USING ivfflat (\"emb\") WITH (lists='10')",
                "USING btree (\"note\")",
            ],
        ),
        (
            "profile = \"halfvec\"",
            0,
            &[
                "vector(768) -> halfvec(768): f32 -> f16",
                "halfvec(4) -> halfvec(4): binary passthrough",
                "USING hnsw (\"emb\" halfvec_l2_ops) WITH (m='16', ef_construction='64')",
                "USING ivfflat (\"emb\" halfvec_l2_ops)",
            ],
        ),
        (
            "profile = \"lantern\"",
            1,
            &[
                "vector(768) -> real[]",
                "bit(64) -> integer[]",
                "USING lantern_hnsw (\"emb\" dist_l2sq_ops)",
                "USING lantern_hnsw (\"emb\" dist_cos_ops)",
                "extensions the target needs for these indexes: lantern",
            ],
        ),
        (
            "profile = \"pgvecto_rs\"",
            1,
            &[
                "vector(768) -> vectors.vector(768)",
                "halfvec(4) -> vectors.vecf16(4)",
                "bit(64) -> vectors.bvector(64)",
                "USING vectors (",
                "vectors.vector_l2_ops",
                "[indexing.hnsw]",
                "[indexing.ivf]",
            ],
        ),
        (
            "profile = \"vectorchord\"",
            1,
            &[
                "vector(768) -> vector(768)",
                "USING vchordrq (",
                "vector_cosine_ops",
                "lists = [10]",
                "vchord",
            ],
        ),
        (
            "profile = \"alloydb\"\nindex = \"scann\"",
            1,
            &[
                "vector(768) -> vector(768)",
                "USING scann (",
                "l2",
                "cosine",
                "num_leaves = 10",
                "alloydb_scann",
            ],
        ),
    ];
    for (keys, want_code, wants) in cases {
        let path = env.write_config_with(&[("public.items", keys)], "");
        let (code, stdout, stderr) = env.run_binary(&["plan", "--config", path.to_str().unwrap()]);
        assert_eq!(code, want_code, "{keys}:\n{stdout}\n{stderr}");
        for want in wants {
            assert!(stdout.contains(want), "{keys}: plan lacks {want:?}:\n{stdout}");
        }
        // Engines that are not installed here: the plan is still shown, and the run is blocked
        // up front (instead of failing at the index build after the whole copy).
        if want_code == 1 {
            assert!(
                stderr.contains("CREATE EXTENSION"),
                "{keys}: the fix installs the engine:\n{stderr}"
            );
        }
    }
    // plan changed nothing anywhere.
    assert_eq!(
        env.source_value("SELECT count(*) FROM pg_replication_slots WHERE slot_name = current_database()"),
        "0"
    );
    assert_eq!(
        env.target_value("SELECT count(*) FROM pg_tables WHERE tablename = 'items' OR schemaname = 'pgvshift'"),
        "0"
    );
}
