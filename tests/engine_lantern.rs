//! The lantern profile against the real Lantern (built by `scripts/engines.sh lantern`), with a
//! pgvector and a halfvec table on the same run: snapshot and live inserts, updates and deletes
//! arrive; the translated `lantern_hnsw` indexes are built by Lantern itself; `verify` finds
//! the target equal and `verify --ann` finds recall@10 >= 0.8 on each target's own index (with
//! the engine's search knobs set and reported); `cutover` completes. `check` warns when Lantern
//! was created before pgvector. Skipped (one line) when Lantern is not installed.

mod support;

use support::engines::{self, assert_ann};
use support::TestEnv;

fn setup() -> String {
    format!(
        "{}
         CREATE TABLE lan (id int PRIMARY KEY, note text, emb vector(32), h halfvec(32), b bit(64));
         INSERT INTO lan SELECT g, 'n' || g, near(g)::vector, near(g)::halfvec, near_bits(g) FROM generate_series(1, 4000) g;
         CREATE INDEX lan_emb_l2 ON lan USING hnsw (emb vector_l2_ops) WITH (m = 16, ef_construction = 64);
         CREATE INDEX lan_emb_cos ON lan USING ivfflat (emb vector_cosine_ops) WITH (lists = 20);
         CREATE INDEX lan_h_cos ON lan USING hnsw (h halfvec_cosine_ops);
         CREATE INDEX lan_b_ham ON lan USING hnsw (b bit_hamming_ops);
         {}",
        engines::CLUSTERED,
        engines::COMPANIONS
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lantern_profile_on_real_lantern() {
    let Some(version) = engines::require("lantern", "Lantern", "lantern") else {
        return;
    };
    let env = TestEnv::new("eng_lantern", &setup());
    // pgvector first (the harness created it), then Lantern: its operator classes for vector
    // columns exist only when pgvector does.
    env.target_value("CREATE EXTENSION lantern");
    let (path, run) = engines::start(&env, ("public.lan", "profile = \"lantern\"")).await;

    // Lantern built the translated indexes (its indexdef omits the default dist_l2sq_ops).
    let lan = engines::target_indexdefs(&env, "lan");
    eprintln!("Lantern {version} target indexes:\n{}", lan.join("\n"));
    for want in [
        "lan_b_ham ON public.lan USING lantern_hnsw (b dist_hamming_ops) WITH (m='16', ef_construction='64', ef='64', dim='2')",
        "lan_emb_cos ON public.lan USING lantern_hnsw (emb dist_cos_ops) WITH (m='16', ef_construction='128', ef='64', dim='32')",
        "lan_emb_l2 ON public.lan USING lantern_hnsw (emb) WITH (m='16', ef_construction='64', ef='64', dim='32')",
        "lan_h_cos ON public.lan USING lantern_hnsw (h dist_cos_ops) WITH (m='16', ef_construction='64', ef='64', dim='32')",
    ] {
        assert!(lan.iter().any(|d| d.ends_with(want)), "no {want:?} in {lan:#?}");
    }

    // Live changes on every table: inserts, vector updates, deletes.
    let report = engines::change_and_verify(
        &env,
        &path,
        "INSERT INTO lan SELECT g, 'live', near(g)::vector, near(g)::halfvec, near_bits(g) FROM generate_series(4001, 4300) g;
         UPDATE lan SET emb = near(id + 7)::vector, b = near_bits(id + 7), note = 'moved' WHERE id % 11 = 0;
         UPDATE lan SET h = NULL WHERE id % 97 = 0;
         DELETE FROM lan WHERE id % 13 = 0",
    )
    .await;
    let lan = engines::ann_of(&report, "public.lan");
    assert_ann(&lan, "lan_emb_l2", "lan_emb_l2", Some("lantern_hnsw.ef"), 0.8);
    assert_ann(&lan, "lan_emb_cos", "lan_emb_cos", Some("lantern_hnsw.ef"), 0.8);
    assert_ann(&lan, "lan_h_cos", "lan_h_cos", Some("lantern_hnsw.ef"), 0.8);
    assert_ann(&lan, "lan_b_ham", "lan_b_ham", Some("lantern_hnsw.ef"), 0.8);
    // The text report names the settings too.
    let (code, text, _) = env.run_binary(&["verify", "--config", path.to_str().unwrap(), "--ann", "10,5"]);
    assert_eq!(code, 0, "{text}");
    assert!(text.contains("search settings: lantern_hnsw.ef = '64'"), "{text}");

    engines::cutover_and_stop(&path, run).await;

    // Lantern created before pgvector: no operator classes for vector columns; check says so.
    let early = format!("{}_early", env.name);
    env.target.create_database(&early).unwrap();
    env.target
        .psql(&early, "CREATE EXTENSION lantern; CREATE EXTENSION vector;")
        .unwrap();
    let other = env.write_config_with_urls(
        "early.toml",
        &env.source_url(),
        &env.target.url(&early),
        &["public.lan"],
    );
    let mut toml = std::fs::read_to_string(&other).unwrap();
    toml.push_str("profile = \"lantern\"\n");
    std::fs::write(&other, toml).unwrap();
    let (_, findings, stderr) = engines::json(&env, &["check", "--config", other.to_str().unwrap()]);
    let warning = findings["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["check"] == "lantern_order")
        .unwrap_or_else(|| panic!("no lantern_order finding: {findings:#}\n{stderr}"));
    assert_eq!(warning["level"], "warning");
    assert!(
        warning["fix"]
            .as_str()
            .unwrap()
            .starts_with("DROP EXTENSION lantern; CREATE EXTENSION lantern;"),
        "{warning:#}"
    );
}
