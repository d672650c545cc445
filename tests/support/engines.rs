//! The real vector engines (Lantern, VectorChord) that `scripts/engines.sh` builds into the
//! local PostgreSQL, and clustered test data for recall checks on their indexes.

use std::path::{Path, PathBuf};
use std::process::Command;

use pgvshift::config::Config;

use super::{InProcess, TestEnv};

/// The version of `extension` installed in the PostgreSQL the harness runs (its control file's
/// `default_version`, with the library next to it), or None.
pub fn installed(extension: &str) -> Option<String> {
    let bindir = pgvshift::testkit::localpg::pg_bindir().ok()?;
    let dir = |what: &str| -> Option<String> {
        let out = Command::new(bindir.join("pg_config")).arg(what).output().ok()?;
        Some(String::from_utf8(out.stdout).ok()?.trim().to_string())
    };
    let (sharedir, pkglibdir) = (dir("--sharedir")?, dir("--pkglibdir")?);
    if !std::path::Path::new(&format!("{pkglibdir}/{extension}.so")).is_file() {
        return None;
    }
    let control = std::fs::read_to_string(format!("{sharedir}/extension/{extension}.control")).ok()?;
    control.lines().find_map(|l| {
        l.strip_prefix("default_version = '")?
            .strip_suffix('\'')
            .map(str::to_string)
    })
}

/// [`installed`], or None after printing the one line that says the test is skipped and how
/// to install the engine.
pub fn require(extension: &str, engine: &str, script_arg: &str) -> Option<String> {
    let version = installed(extension);
    if version.is_none() {
        eprintln!(
            "skipped: {engine} is not installed in the local PostgreSQL (./scripts/engines.sh {script_arg} builds it)"
        );
    }
    version
}

/// Helpers on the source for data with real structure: 24 cluster centres in 32 dimensions
/// (coordinates uniform in [-5, 5]) and, per row, a centre plus uniform noise in [-1, 1] per
/// coordinate; bits are a centre's 64-bit pattern with 10 % of the bits flipped.
///
/// Why not uniform random vectors: in uniform noise every point is almost as far from a query
/// as every other, so the "true" top-10 is decided by tiny differences and an ANN index's
/// recall there measures the noise, not the index; IVF-style partitions (ivfflat, vchordrq
/// lists) have no structure to find either. Real embeddings are clustered, and on clustered
/// data a correctly built index has high recall, so a recall threshold tests the index. The
/// seed makes the data the same on every run.
pub const CLUSTERED: &str = "
    SELECT setseed(0.13);
    CREATE TABLE centers AS
      SELECT c, (SELECT array_agg((random() - 0.5) * 10) FROM generate_series(1, 32) WHERE c > 0)::real[] AS v,
             (SELECT string_agg(CASE WHEN random() < 0.5 THEN '1' ELSE '0' END, '') FROM generate_series(1, 64) WHERE c > 0) AS bits
        FROM generate_series(1, 24) c;
    CREATE FUNCTION near(g int) RETURNS real[] LANGUAGE sql VOLATILE AS $$
      SELECT array_agg(x + ((random() - 0.5) * 2)::real ORDER BY i)
        FROM centers, unnest(v) WITH ORDINALITY AS u(x, i) WHERE c = 1 + g % 24 $$;
    CREATE FUNCTION near_bits(g int) RETURNS bit(64) LANGUAGE sql VOLATILE AS $$
      SELECT string_agg(CASE WHEN random() < 0.1 THEN (1 - substr(bits, i, 1)::int)::text ELSE substr(bits, i, 1) END, '' ORDER BY i)::bit(64)
        FROM centers, generate_series(1, 64) i WHERE c = 1 + g % 24 $$;";

/// The pgvector and halfvec tables that run beside each engine's table (same source, same
/// run, same target server): `pgv` (profile pgvector: hnsw l2, ivfflat cosine with 20 lists)
/// and `half` (profile halfvec: hnsw cosine, ivfflat l2 with 20 lists). Needs [`CLUSTERED`].
pub const COMPANIONS: &str = "
    CREATE TABLE pgv (id int PRIMARY KEY, emb vector(32));
    INSERT INTO pgv SELECT g, near(g)::vector FROM generate_series(1, 4000) g;
    CREATE INDEX pgv_emb_l2 ON pgv USING hnsw (emb vector_l2_ops);
    CREATE INDEX pgv_emb_cos ON pgv USING ivfflat (emb vector_cosine_ops) WITH (lists = 20);
    CREATE TABLE half (id int PRIMARY KEY, emb vector(32));
    INSERT INTO half SELECT g, near(g)::vector FROM generate_series(1, 4000) g;
    CREATE INDEX half_emb_cos ON half USING hnsw (emb vector_cosine_ops);
    CREATE INDEX half_emb_l2 ON half USING ivfflat (emb vector_l2_ops) WITH (lists = 20);";

/// The companions' config entries.
pub const COMPANION_TABLES: [(&str, &str); 2] = [
    ("public.pgv", "profile = \"pgvector\""),
    ("public.half", "profile = \"halfvec\""),
];

/// Live inserts, vector updates and deletes on the companions.
pub const COMPANION_CHANGES: &str = "
    INSERT INTO pgv SELECT g, near(g)::vector FROM generate_series(4001, 4300) g;
    UPDATE pgv SET emb = near(id + 5)::vector WHERE id % 11 = 0;
    DELETE FROM pgv WHERE id % 13 = 0;
    INSERT INTO half SELECT g, near(g)::vector FROM generate_series(4001, 4300) g;
    UPDATE half SET emb = near(id + 5)::vector WHERE id % 11 = 0;
    DELETE FROM half WHERE id % 13 = 0;";

/// The companions' translated indexes on the target, and their recall in `report` (verify
/// --json --ann 10,Q).
pub fn assert_companions(env: &TestEnv, report: &serde_json::Value) {
    assert_eq!(
        target_indexdefs(env, "half"),
        [
            "CREATE INDEX half_emb_cos ON public.half USING hnsw (emb halfvec_cosine_ops)",
            "CREATE INDEX half_emb_l2 ON public.half USING ivfflat (emb halfvec_l2_ops) WITH (lists='20')",
        ]
    );
    assert_eq!(target_indexdefs(env, "pgv").len(), 2);
    let pgv = ann_of(report, "public.pgv");
    assert_ann(&pgv, "pgv_emb_l2", "pgv_emb_l2", Some("hnsw.ef_search"), 0.8);
    assert_ann(&pgv, "pgv_emb_cos", "pgv_emb_cos", Some("ivfflat.probes"), 0.8);
    let half = ann_of(report, "public.half");
    assert_ann(&half, "half_emb_cos", "half_emb_cos", Some("hnsw.ef_search"), 0.8);
    assert_ann(&half, "half_emb_l2", "half_emb_l2", Some("ivfflat.probes"), 0.8);
}

/// Writes the config for the engine's table (`source`, `keys`) and the companions, asserts
/// that `check` passes, starts `run` and waits for the snapshot and its index builds.
pub async fn start(env: &TestEnv, table: (&'static str, &'static str)) -> (PathBuf, InProcess) {
    let mut tables = vec![table];
    tables.extend(COMPANION_TABLES);
    let path = env.write_config_with(&tables, "");
    let (code, stdout, stderr) = env.run_binary(&["check", "--config", path.to_str().unwrap()]);
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    let mut run = env.spawn_run(Config::load_with_env(&path, &|_| None).unwrap());
    wait_streaming_or_failure(env, &mut run).await;
    (path, run)
}

/// Runs `changes` (on the engine's table) and [`COMPANION_CHANGES`] on the source, waits until
/// the target has applied them, and returns `verify --json --ann 10,30` after asserting that
/// it passed and that the companions' indexes answer (recall >= 0.8).
pub async fn change_and_verify(env: &TestEnv, path: &Path, changes: &str) -> serde_json::Value {
    env.source_value(&format!("{changes}; {COMPANION_CHANGES}"));
    env.wait_caught_up().await;
    let (code, report, stderr) = json(env, &["verify", "--config", path.to_str().unwrap(), "--ann", "10,30"]);
    assert_eq!(code, 0, "{report:#}\n{stderr}");
    assert_companions(env, &report);
    report
}

/// `cutover` end to end (its final verify included), then stops the run.
pub async fn cutover_and_stop(path: &Path, run: InProcess) {
    let (code, report, stderr) = super::cutover(path, &[]).await;
    assert_eq!(code, 0, "{report:#}\n{stderr}");
    assert_eq!(report["ok"], true, "{report:#}");
    assert_eq!(report["verify"]["ok"], true, "{report:#}");
    run.stop().await;
}

/// Wait for the snapshot (data and index builds) to complete, or panic with the run's error
/// if it fails first (e.g. an index build the engine refuses).
pub async fn wait_streaming_or_failure(env: &TestEnv, run: &mut InProcess) {
    tokio::select! {
        _ = env.wait_streaming() => {}
        r = &mut run.handle => panic!("run ended before streaming: {r:?}"),
    }
}

/// The target's index definitions on `table`, secondary indexes only, by name.
pub fn target_indexdefs(env: &TestEnv, table: &str) -> Vec<String> {
    env.target_value(&format!(
        "SELECT string_agg(indexdef, E'\\n' ORDER BY indexname) FROM pg_indexes WHERE tablename = '{table}' AND indexname NOT LIKE '%pkey'"
    ))
    .lines()
    .map(str::to_string)
    .collect()
}

/// `pgvshift <args> --json`: (exit code, parsed stdout, stderr).
pub fn json(env: &TestEnv, args: &[&str]) -> (i32, serde_json::Value, String) {
    let mut all = args.to_vec();
    all.push("--json");
    let (code, stdout, stderr) = env.run_binary(&all);
    let v = serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{e}: not JSON:\n{stdout}\n{stderr}"));
    (code, v, stderr)
}

/// The verify report's ANN entries of one table, after asserting that the table compared
/// equal.
pub fn ann_of(report: &serde_json::Value, source: &str) -> Vec<serde_json::Value> {
    let t = report["tables"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["source"] == source)
        .unwrap_or_else(|| panic!("no table {source} in {report:#}"));
    assert_eq!(t["status"], "ok", "{source}: {t:#}");
    t["ann"].as_array().unwrap().clone()
}

/// Asserts one ANN measurement: recall@K of at least `min_recall` on the target index `index`
/// with `setting` among its search settings; prints the figures.
pub fn assert_ann(
    entries: &[serde_json::Value],
    source_index: &str,
    index: &str,
    setting: Option<&str>,
    min_recall: f64,
) {
    let a = entries
        .iter()
        .find(|a| a["source_index"] == source_index)
        .unwrap_or_else(|| panic!("no ANN entry for {source_index}: {entries:#?}"));
    eprintln!(
        "ann {source_index} -> {}: recall@{} mean {} min {} over {} queries, settings {}",
        a["target_index"], a["k"], a["recall_mean"], a["recall_min"], a["queries"], a["search_settings"]
    );
    assert_eq!(a["target_index"], index, "the target's own index answers: {a:#}");
    let recall = a["recall_mean"]
        .as_f64()
        .unwrap_or_else(|| panic!("not measured: {a:#}"));
    assert!(recall >= min_recall, "recall {recall} < {min_recall}: {a:#}");
    match setting {
        Some(name) => assert!(a["search_settings"].get(name).is_some(), "{name} not set: {a:#}"),
        None => assert_eq!(a["search_settings"], serde_json::json!({}), "{a:#}"),
    }
}
