//! `pgvshift verify` against real servers while `run` streams: equal data passes (exit 0), rows
//! changed on the target behind pgvshift's back are named by key (never by value, exit 1), for
//! the pgvector, halfvec and lantern profiles and for a table without a primary key (multiset);
//! `--ann` reports recall 1.0 where the target searches exactly, and for a table the target
//! cannot search says why and measures the next; a writer running during the
//! comparison causes no false mismatch (rows it changes are re-checked); `--sample` works.

mod support;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use pgvshift::config::Config;
use serde_json::Value;
use support::TestEnv;

/// `pgvshift verify --config <path> --json <extra>`: (exit code, report, stderr).
fn verify(env: &TestEnv, path: &std::path::Path, extra: &[&str]) -> (i32, Value, String) {
    let mut args = vec!["verify", "--config", path.to_str().unwrap(), "--json"];
    args.extend_from_slice(extra);
    let (code, stdout, stderr) = env.run_binary(&args);
    let report = serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{e}: not JSON:\n{stdout}\n{stderr}"));
    (code, report, stderr)
}

fn table<'a>(report: &'a Value, source: &str) -> &'a Value {
    report["tables"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["source"] == source)
        .unwrap_or_else(|| panic!("no table {source} in {report:#}"))
}

/// The (kind, key) pairs a table report names.
fn keys(t: &Value) -> Vec<(String, String)> {
    t["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| {
            (
                k["kind"].as_str().unwrap().to_string(),
                k["key"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn load(path: &std::path::Path) -> Config {
    Config::load_with_env(path, &|_| None).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pgvector_profile_names_the_keys_changed_behind_its_back() {
    let env = TestEnv::new(
        "verify_pgv",
        "CREATE TABLE items (id bigint PRIMARY KEY, note text, meta jsonb, emb vector(16));
         INSERT INTO items SELECT g, 'n' || g, jsonb_build_object('g', g),
                (SELECT array_agg(random()) FROM generate_series(1, 16) WHERE g > 0)::vector
           FROM generate_series(1, 2500) g;
         CREATE INDEX items_emb ON items USING hnsw (emb vector_cosine_ops);
         CREATE TABLE events (kind text, payload int, emb vector(4));
         ALTER TABLE events REPLICA IDENTITY FULL;
         INSERT INTO events SELECT 'k' || (g % 3), g % 7, '[1,2,3,4]' FROM generate_series(1, 300) g;",
    );
    // index_ddl_only: the target has no vector index, so its top-K search is exact.
    let path = env.write_config_with(&[("public.items", "index_ddl_only = true"), ("public.events", "")], "");
    let run = env.spawn_run(load(&path));
    env.wait_streaming().await;
    env.source_value("UPDATE items SET note = 'streamed' WHERE id % 100 = 0");
    env.wait_caught_up().await;

    let started = Instant::now();
    let (code, report, stderr) = verify(&env, &path, &["--ann", "5,20", "--chunk-rows", "300"]);
    let took = started.elapsed();
    assert_eq!(code, 0, "{report:#}\n{stderr}");
    let items = table(&report, "public.items");
    assert_eq!(items["status"], "ok");
    assert_eq!(items["method"], "primary_key");
    assert_eq!(items["source_rows"], 2500);
    assert_eq!(items["target_rows"], 2500);
    assert_eq!(items["compared_rows"], 2500);
    let ann = &items["ann"][0];
    assert_eq!(ann["metric"], "cosine", "{ann:#}");
    assert_eq!(ann["source_index"], "items_emb");
    assert_eq!(ann["queries"], 20, "{ann:#}");
    assert_eq!(ann["target_index"], Value::Null, "no index on the target: {ann:#}");
    assert_eq!(ann["recall_mean"], 1.0, "exact search on identical data: {ann:#}");
    assert_eq!(ann["recall_min"], 1.0, "{ann:#}");
    let events = table(&report, "public.events");
    assert_eq!(events["status"], "ok", "{events:#}");
    assert_eq!(events["method"], "multiset");
    assert_eq!(events["source_rows"], 300);
    eprintln!(
        "verify of 2,500 + 300 rows (vector(16), 20 ANN queries): {:.2} s wall, items {:.0} rows/s",
        took.as_secs_f64(),
        items["rows_per_sec"].as_f64().unwrap()
    );

    // Behind pgvshift's back, on the target: one vector changed, one row gone, one row added,
    // one text changed; and a duplicate row in the table without a key.
    env.target_value(
        "UPDATE items SET emb = '[9,9,9,9,9,9,9,9,9,9,9,9,9,9,9,9]' WHERE id = 42;
         DELETE FROM items WHERE id = 1234;
         INSERT INTO items VALUES (99999, 'intruder', NULL, NULL);
         UPDATE items SET note = 'edited' WHERE id = 2000;
         INSERT INTO events VALUES ('k1', 1, '[1,2,3,4]');",
    );
    let (code, report, stderr) = verify(&env, &path, &[]);
    assert_eq!(code, 1, "{report:#}\n{stderr}");
    assert!(stderr.contains("does not equal the source"), "{stderr}");
    let items = table(&report, "public.items");
    assert_eq!(items["status"], "mismatch");
    assert_eq!(items["different"], 2);
    assert_eq!(items["missing_on_target"], 1);
    assert_eq!(items["extra_on_target"], 1);
    let mut named = keys(items);
    named.sort();
    assert_eq!(
        named,
        [
            ("different".to_string(), "id=2000".to_string()),
            ("different".to_string(), "id=42".to_string()),
            ("extra_on_target".to_string(), "id=99999".to_string()),
            ("missing_on_target".to_string(), "id=1234".to_string()),
        ]
    );
    let k42 = items["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["key"] == "id=42")
        .unwrap();
    assert_eq!(k42["columns"], serde_json::json!(["emb"]));
    let events = table(&report, "public.events");
    assert_eq!(events["status"], "mismatch", "{events:#}");
    assert_eq!(events["target_rows"], 301);
    // Keys only, never values.
    let text = report.to_string();
    for value in ["intruder", "edited", "9,9,9"] {
        assert!(!text.contains(value), "a value ({value}) appears in the report");
    }
    // The text report says the same.
    let (code, stdout, _) = env.run_binary(&["verify", "--config", path.to_str().unwrap(), "--max-keys", "1"]);
    assert_eq!(code, 1);
    assert!(stdout.contains("MISMATCH") && stdout.contains("id="), "{stdout}");
    assert_eq!(stdout.matches("id=").count(), 1, "--max-keys 1: {stdout}");
    run.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn halfvec_profile_compares_within_the_rounding_and_reports_it() {
    let env = TestEnv::new(
        "verify_half",
        "CREATE TABLE docs (id int PRIMARY KEY, emb vector(64), keep halfvec(8));
         INSERT INTO docs SELECT g,
                (SELECT array_agg((random() - 0.5) * 100) FROM generate_series(1, 64) WHERE g > 0)::vector,
                (SELECT array_agg(random()) FROM generate_series(1, 8) WHERE g > 0)::halfvec
           FROM generate_series(1, 500) g;
         CREATE INDEX docs_emb ON docs USING hnsw (emb vector_l2_ops);",
    );
    let path = env.write_config_with(&[("public.docs", "profile = \"halfvec\"")], "");
    let run = env.spawn_run(load(&path));
    env.wait_streaming().await;

    let (code, report, stderr) = verify(&env, &path, &["--ann", "10,10"]);
    assert_eq!(code, 0, "{report:#}\n{stderr}");
    let docs = table(&report, "public.docs");
    assert_eq!(docs["compared_rows"], 500);
    let err = docs["max_abs_error"]
        .as_f64()
        .expect("lossy columns report their error");
    // Values up to 50 in magnitude: binary16 spacing is at most 2^-5 there.
    assert!(err > 0.0 && err <= 2f64.powi(-6), "max abs error {err}");
    let ann = &docs["ann"][0];
    assert_eq!(ann["metric"], "l2");
    assert_eq!(ann["target_operator"], "<->");
    assert_eq!(ann["queries"], 10, "{ann:#}");
    // The planner picks the hnsw index or (small table) a sequential scan: reported, not assumed.
    eprintln!(
        "halfvec: max abs error {err:.3e}; ANN recall@10 on the target (plan's index: {}): mean {}, min {}",
        ann["target_index"], ann["recall_mean"], ann["recall_min"]
    );

    // One element of one halfvec on the target, by a few f16 steps: beyond the rounding.
    env.target_value(
        "UPDATE docs SET emb = (SELECT array_agg(CASE WHEN i = 1 THEN x + 1 ELSE x END ORDER BY i)
                                  FROM unnest(emb::real[]) WITH ORDINALITY AS u(x, i))::halfvec(64)
          WHERE id = 77",
    );
    let (code, report, _) = verify(&env, &path, &[]);
    assert_eq!(code, 1, "{report:#}");
    let docs = table(&report, "public.docs");
    assert_eq!(keys(docs), [("different".to_string(), "id=77".to_string())]);
    assert_eq!(docs["keys"][0]["columns"], serde_json::json!(["emb"]));
    run.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lantern_profile_compares_real_arrays_and_searches_with_its_operators() {
    let env = TestEnv::new(
        "verify_lantern",
        "CREATE TABLE items (id int PRIMARY KEY, emb vector(8), h halfvec(4), b bit(40));
         INSERT INTO items SELECT g,
                (SELECT array_agg(random() - 0.5) FROM generate_series(1, 8) WHERE g > 0)::vector,
                (SELECT array_agg(random()) FROM generate_series(1, 4) WHERE g > 0)::halfvec,
                (SELECT string_agg(CASE WHEN random() < 0.5 THEN '1' ELSE '0' END, '') FROM generate_series(1, 40) WHERE g > 0)::bit(40)
           FROM generate_series(1, 400) g;
         CREATE INDEX items_emb ON items USING hnsw (emb vector_l2_ops);",
    );
    // A stand-in for Lantern (so this runs everywhere; tests/engine_lantern.rs has the real
    // one): its `<->` on real[] (squared L2) defined on the target by hand, so the ANN check
    // runs the SQL it would run against Lantern.
    env.target_value(
        "CREATE FUNCTION l2sq(a real[], b real[]) RETURNS float8 LANGUAGE sql IMMUTABLE STRICT AS
           $$ SELECT sum((x - y) * (x - y))::float8 FROM unnest(a, b) AS u(x, y) $$;
         CREATE OPERATOR <-> (LEFTARG = real[], RIGHTARG = real[], FUNCTION = l2sq);",
    );
    let path = env.write_config_with(&[("public.items", "profile = \"lantern\"\nindex_ddl_only = true")], "");
    let run = env.spawn_run(load(&path));
    env.wait_streaming().await;
    env.source_value("UPDATE items SET b = ~b WHERE id % 10 = 0");
    env.wait_caught_up().await;

    let (code, report, stderr) = verify(&env, &path, &["--ann", "5,10"]);
    assert_eq!(code, 0, "{report:#}\n{stderr}");
    let items = table(&report, "public.items");
    assert_eq!(items["compared_rows"], 400);
    assert_eq!(items["max_abs_error"], Value::Null, "real[] is exact");
    let ann = &items["ann"][0];
    assert_eq!(ann["target_operator"], "<->");
    assert_eq!(ann["recall_mean"], 1.0, "squared L2 orders like L2: {ann:#}");

    env.target_value(
        "UPDATE items SET emb[3] = emb[3] + 0.001 WHERE id = 5; UPDATE items SET b[1] = b[1] # 1 WHERE id = 6;",
    );
    let (code, report, _) = verify(&env, &path, &[]);
    assert_eq!(code, 1, "{report:#}");
    let items = table(&report, "public.items");
    let mut named = keys(items);
    named.sort();
    assert_eq!(
        named,
        [
            ("different".to_string(), "id=5".to_string()),
            ("different".to_string(), "id=6".to_string())
        ]
    );
    run.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ann_says_why_a_table_cannot_be_searched_and_goes_on() {
    let env = TestEnv::new(
        "verify_ann_fail",
        "CREATE TABLE lan (id int PRIMARY KEY, emb vector(8));
         INSERT INTO lan SELECT g, (SELECT array_agg(random()) FROM generate_series(1, 8) WHERE g > 0)::vector FROM generate_series(1, 300) g;
         CREATE INDEX lan_emb ON lan USING hnsw (emb vector_l2_ops);
         CREATE TABLE pgv (id int PRIMARY KEY, emb vector(8));
         INSERT INTO pgv SELECT g, (SELECT array_agg(random()) FROM generate_series(1, 8) WHERE g > 0)::vector FROM generate_series(1, 300) g;
         CREATE INDEX pgv_emb ON pgv USING hnsw (emb vector_l2_ops);",
    );
    // Lantern is not created in the target database (index_ddl_only: the run does not need
    // it), so real[] has no `<->` there.
    let path = env.write_config_with(
        &[
            ("public.lan", "profile = \"lantern\"\nindex_ddl_only = true"),
            ("public.pgv", ""),
        ],
        "",
    );
    let run = env.spawn_run(load(&path));
    env.wait_streaming().await;

    let (code, report, stderr) = verify(&env, &path, &["--ann", "5,5"]);
    assert_eq!(code, 0, "the data is equal: {report:#}\n{stderr}");
    let lan = &table(&report, "public.lan")["ann"][0];
    assert_eq!(lan["recall_mean"], Value::Null, "{lan:#}");
    let note = lan["note"].as_str().unwrap();
    assert!(
        note.starts_with("not measured: ") && note.contains("operator does not exist: real[] <-> real[]"),
        "{note}"
    );
    assert!(
        note.contains("CREATE EXTENSION vector; CREATE EXTENSION lantern;"),
        "{note}"
    );
    // The next table is still measured, with pgvector's knob for its hnsw index.
    let pgv = &table(&report, "public.pgv")["ann"][0];
    assert_eq!(pgv["queries"], 5, "{pgv:#}");
    assert!(pgv["recall_mean"].as_f64().is_some(), "{pgv:#}");
    assert_eq!(pgv["search_settings"]["hnsw.ef_search"], "40", "{pgv:#}");
    let (code, text, _) = env.run_binary(&["verify", "--config", path.to_str().unwrap(), "--ann", "5,5"]);
    assert_eq!(code, 0, "{text}");
    assert!(text.contains("ann emb (L2): not measured: "), "{text}");
    assert!(text.contains("search settings: hnsw.ef_search = '40'"), "{text}");
    run.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_concurrent_writer_causes_no_false_mismatch() {
    let env = TestEnv::new(
        "verify_live",
        "CREATE TABLE items (id bigint PRIMARY KEY, n int NOT NULL DEFAULT 0, emb vector(32));
         INSERT INTO items SELECT g, 0, (SELECT array_agg(random()) FROM generate_series(1, 32) WHERE g > 0)::vector
           FROM generate_series(1, 20000) g;",
    );
    let path = env.write_config(&[("public.items", None)], "");
    let config = load(&path);
    let run = env.spawn_run(config.clone());
    env.wait_streaming().await;

    let stop = Arc::new(AtomicBool::new(false));
    let committed = Arc::new(AtomicU64::new(0));
    let writer = {
        let (stop, committed) = (stop.clone(), committed.clone());
        let env = clone_env(&env);
        tokio::spawn(async move {
            support::binary::write_until(&env, &stop, &committed, 100_000, |txn, next_id| {
                // Updates spread over the whole key range, so chunks are read while they change.
                let hot = 1 + (txn * 37) % 20000;
                (
                    format!(
                        "BEGIN;
                         UPDATE items SET n = n + 1, emb = (SELECT array_agg(random()) FROM generate_series(1, 32) WHERE {txn} > 0)::vector
                          WHERE id IN ({hot}, {}, {});
                         INSERT INTO items VALUES ({next_id}, 1, NULL), ({}, 1, NULL);
                         DELETE FROM items WHERE id = {};
                         COMMIT;",
                        1 + (hot + 7000) % 20000,
                        1 + (hot + 14000) % 20000,
                        next_id + 1,
                        next_id - 1,
                    ),
                    2,
                )
            })
            .await
        })
    };
    let opts = pgvshift::verify::Options {
        chunk_rows: 200,
        ..Default::default()
    };
    let mut rechecked = 0;
    for round in 0..3 {
        let before = committed.load(Ordering::Relaxed);
        let report = pgvshift::verify::verify(&config, &opts).await.unwrap();
        let t = &report.tables[0];
        let during = committed.load(Ordering::Relaxed) - before;
        eprintln!(
            "round {round}: {} with {during} writer transactions during it; {} rows compared in {:.2} s ({:.0} rows/s), {} re-checked in {} round(s)",
            t.status, t.compared_rows, t.seconds, t.rows_per_sec, t.rechecked, t.recheck_rounds
        );
        assert!(
            report.ok,
            "false mismatch under a concurrent writer:\n{}",
            pgvshift::verify::render(&report)
        );
        assert!(during > 0, "the writer committed nothing during the verify");
        rechecked += t.rechecked;
        // A sample under the same writer.
        let sample = pgvshift::verify::Options {
            sample_percent: Some(20.0),
            ..Default::default()
        };
        let report = pgvshift::verify::verify(&config, &sample).await.unwrap();
        assert!(report.ok, "{}", pgvshift::verify::render(&report));
        assert!(report.tables[0].sample_percent.is_some());
    }
    eprintln!("rows re-checked over the three full comparisons: {rechecked}");
    stop.store(true, Ordering::Relaxed);
    writer.await.unwrap();
    env.wait_caught_up().await;
    run.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rows_read_while_the_target_lags_are_rechecked_not_reported() {
    let env = TestEnv::new(
        "verify_lag",
        "CREATE TABLE items (id bigint PRIMARY KEY, note text, emb vector(8));
         INSERT INTO items SELECT g, 'n' || g, (SELECT array_agg(random()) FROM generate_series(1, 8) WHERE g > 0)::vector
           FROM generate_series(1, 3000) g;",
    );
    let path = env.write_config(&[("public.items", None)], "");
    let config = load(&path);
    let run = env.spawn_run(config.clone());
    env.wait_streaming().await;

    // Hold the applier back: a target session locks the table against writes (reads go on).
    let blocker = env.target_client().await;
    blocker
        .batch_execute("BEGIN; LOCK TABLE items IN EXCLUSIVE MODE")
        .await
        .unwrap();
    env.source_value(
        "UPDATE items SET emb = '[1,1,1,1,1,1,1,1]', note = 'changed' WHERE id <= 50;
         DELETE FROM items WHERE id BETWEEN 60 AND 70;
         INSERT INTO items SELECT g, 'new', NULL FROM generate_series(5001, 5010) g;",
    );
    let target = env.target_client().await;
    let deadline = Instant::now() + std::time::Duration::from_secs(60);
    while !support::binary::pgvshift_waits_for_lock(&target).await {
        assert!(
            Instant::now() < deadline,
            "the applier never waited for the test's lock"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    // Verify reads both sides while the target is 71 rows behind; its re-check then waits for
    // the target to apply past the source reads. The lock goes once verify is waiting for that
    // (its source session's last statement is the position message it writes before waiting).
    let opts = pgvshift::verify::Options {
        initial_catch_up: false,
        ..Default::default()
    };
    let task = tokio::spawn(async move { pgvshift::verify::verify(&config, &opts).await });
    let source = env.source_client().await;
    loop {
        let waiting: bool = source
            .query_one(
                "SELECT EXISTS (SELECT 1 FROM pg_stat_activity WHERE datname = current_database() AND application_name = 'pgvshift' AND query LIKE '%pg_logical_emit_message%')",
                &[],
            )
            .await
            .unwrap()
            .get(0);
        if waiting {
            break;
        }
        assert!(Instant::now() < deadline, "verify never reached its re-check");
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    blocker.batch_execute("COMMIT").await.unwrap();
    let report = task.await.unwrap().unwrap();
    let t = &report.tables[0];
    eprintln!(
        "target behind by 71 rows: {} re-checked in {} round(s), status {}",
        t.rechecked, t.recheck_rounds, t.status
    );
    assert!(report.ok, "{}", pgvshift::verify::render(&report));
    assert_eq!(
        t.rechecked, 71,
        "every changed row differed on the first read and was re-checked"
    );
    assert_eq!(t.recheck_rounds, 1);
    assert_eq!(t.compared_rows, 2999, "3000 - 11 deleted + 10 inserted");
    run.stop().await;
}

/// A second handle on the same test world (for a task).
fn clone_env(env: &TestEnv) -> TestEnv {
    TestEnv {
        name: env.name.clone(),
        source: env.source,
        target: env.target,
        dir: env.dir.clone(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refuses_before_the_snapshot_and_rejects_bad_options() {
    let env = TestEnv::new("verify_usage", "CREATE TABLE t (id int PRIMARY KEY);");
    let path = env.write_config(&[("public.t", None)], "");
    let (code, _, stderr) = env.run_binary(&["verify", "--config", path.to_str().unwrap()]);
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("no progress for slot"), "{stderr}");
    for (args, want) in [(vec!["--sample", "0"], "--sample"), (vec!["--ann", "10"], "K,Q")] {
        let mut all = vec!["verify", "--config", path.to_str().unwrap()];
        all.extend(args);
        let (code, _, stderr) = env.run_binary(&all);
        assert_eq!(code, 2, "{stderr}");
        assert!(stderr.contains(want), "{stderr}");
    }
}
