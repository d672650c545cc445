//! The vectorchord profile against the real VectorChord (built by `scripts/engines.sh
//! vectorchord`), with a pgvector and a halfvec table on the same run, on a target cluster
//! started with `shared_preload_libraries = 'vchord'`: snapshot and live inserts, updates and
//! deletes arrive; the translated `vchordrq` indexes are built by VectorChord (hnsw -> no lists
//! below 100k rows, ivfflat lists = L -> lists = [L]; bit keeps its pgvector index); `verify`
//! finds the target equal and `verify --ann` finds recall@10 >= 0.8 on each target's own index,
//! with `vchordrq.probes` set to match each index's lists (none for an index without lists);
//! `cutover` completes. `check` tells a user whose target lacks the preload how to fix it.
//! Skipped (one line) when VectorChord is not installed.

mod support;

use pgvshift::testkit::localpg::ClusterOptions;
use support::engines::{self, assert_ann};
use support::TestEnv;

fn setup() -> String {
    format!(
        "{}
         CREATE TABLE vch (id int PRIMARY KEY, note text, emb vector(32), h halfvec(32), b bit(64));
         INSERT INTO vch SELECT g, 'n' || g, near(g)::vector, near(g)::halfvec, near_bits(g) FROM generate_series(1, 4000) g;
         CREATE INDEX vch_emb_l2 ON vch USING hnsw (emb vector_l2_ops) WITH (m = 16, ef_construction = 64);
         CREATE INDEX vch_emb_ip ON vch USING hnsw (emb vector_ip_ops);
         CREATE INDEX vch_h_cos ON vch USING ivfflat (h halfvec_cosine_ops) WITH (lists = 20);
         CREATE INDEX vch_b_ham ON vch USING hnsw (b bit_hamming_ops);
         {}",
        engines::CLUSTERED,
        engines::COMPANIONS
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vectorchord_profile_on_real_vectorchord() {
    let Some(version) = engines::require("vchord", "VectorChord", "vectorchord") else {
        return;
    };
    // VectorChord refuses to load unless preloaded: a target cluster of this test's own.
    let env = TestEnv::new_private(
        "eng_vchord",
        &setup(),
        ClusterOptions::new("vchord_source"),
        ClusterOptions::new("vchord_target").setting("shared_preload_libraries", "vchord"),
    );
    env.target_value("CREATE EXTENSION vchord");
    let (path, run) = engines::start(&env, ("public.vch", "profile = \"vectorchord\"")).await;

    let vch = engines::target_indexdefs(&env, "vch");
    eprintln!("VectorChord {version} target indexes:\n{}", vch.join("\n"));
    assert_eq!(
        vch,
        [
            "CREATE INDEX vch_b_ham ON public.vch USING hnsw (b bit_hamming_ops)",
            "CREATE INDEX vch_emb_ip ON public.vch USING vchordrq (emb vector_ip_ops)",
            "CREATE INDEX vch_emb_l2 ON public.vch USING vchordrq (emb vector_l2_ops)",
            "CREATE INDEX vch_h_cos ON public.vch USING vchordrq (h halfvec_cosine_ops) WITH (options='residual_quantization = true",
            "[build.internal]",
            "lists = [20]",
            "spherical_centroids = true')",
        ]
    );

    let report = engines::change_and_verify(
        &env,
        &path,
        "INSERT INTO vch SELECT g, 'live', near(g)::vector, near(g)::halfvec, near_bits(g) FROM generate_series(4001, 4300) g;
         UPDATE vch SET emb = near(id + 7)::vector, h = near(id + 7)::halfvec, note = 'moved' WHERE id % 11 = 0;
         UPDATE vch SET b = NULL WHERE id % 97 = 0;
         DELETE FROM vch WHERE id % 13 = 0",
    )
    .await;
    let vch = engines::ann_of(&report, "public.vch");
    // No lists (hnsw below 100k rows): no probes; lists = [20]: probes '5'.
    assert_ann(&vch, "vch_emb_l2", "vch_emb_l2", None, 0.8);
    assert_ann(&vch, "vch_emb_ip", "vch_emb_ip", None, 0.8);
    assert_ann(&vch, "vch_h_cos", "vch_h_cos", Some("vchordrq.probes"), 0.8);
    assert_ann(&vch, "vch_b_ham", "vch_b_ham", Some("hnsw.ef_search"), 0.8);
    let h = vch.iter().find(|a| a["source_index"] == "vch_h_cos").unwrap();
    assert_eq!(h["search_settings"]["vchordrq.probes"], "5", "{h:#}");
    let (code, text, _) = env.run_binary(&["verify", "--config", path.to_str().unwrap(), "--ann", "10,5"]);
    assert_eq!(code, 0, "{text}");
    assert!(text.contains("search settings: vchordrq.probes = '5'"), "{text}");
    assert!(
        text.contains("search settings: none (no vchordrq.probes: the index has no lists"),
        "{text}"
    );

    engines::cutover_and_stop(&path, run).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_names_the_missing_preload() {
    if engines::require("vchord", "VectorChord", "vectorchord").is_none() {
        return;
    }
    // The shared target cluster has no shared_preload_libraries.
    let env = TestEnv::new(
        "eng_vchord_check",
        "CREATE TABLE items (id int PRIMARY KEY, emb vector(3)); CREATE INDEX ON items USING hnsw (emb vector_l2_ops);",
    );
    let path = env.write_config_with(&[("public.items", "profile = \"vectorchord\"")], "");
    let (code, report, stderr) = engines::json(&env, &["check", "--config", path.to_str().unwrap()]);
    assert_eq!(code, 1, "{report:#}\n{stderr}");
    let f = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["check"] == "vchord_preload")
        .unwrap_or_else(|| panic!("no vchord_preload finding: {report:#}"));
    assert_eq!(f["level"], "blocking");
    assert!(
        f["message"].as_str().unwrap().contains("shared_preload_libraries = ''"),
        "{f:#}"
    );
    assert_eq!(
        f["fix"],
        "ALTER SYSTEM SET shared_preload_libraries = 'vchord'; restart the target server; then CREATE EXTENSION vchord CASCADE; in the target database"
    );
}
