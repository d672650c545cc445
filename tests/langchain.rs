//! LangChain mode against real servers: LangChain's two tables (exactly as LangChain creates
//! them) become one table per collection, with the snapshot and every kind of change routed
//! by collection_id, and the end state compared per collection (id, content, embedding, typed
//! metadata columns, the JSON rest).

mod support;

use std::time::Duration;

use support::langchain::{
    langchain_community_sql, langchain_postgres_sql, source_fingerprint, source_fingerprint_as, target_fingerprint,
    vector_sql, write_config,
};
use support::{InProcess, TestEnv};

const DIMS: usize = 1536;
const DOCS: &str = "d0000000-0000-0000-0000-000000000001";
const FAQ: &str = "d0000000-0000-0000-0000-000000000002";
const SKIP: &str = "d0000000-0000-0000-0000-000000000003";
const LATER: &str = "d0000000-0000-0000-0000-000000000004";
const TEMP: &str = "d0000000-0000-0000-0000-000000000005";

/// Wait for `until`, failing at once with the run's error if the run ends first.
async fn wait(run: &mut InProcess, until: impl std::future::Future<Output = ()>) {
    tokio::select! {
        _ = until => {}
        ended = &mut run.handle => panic!("the run ended while the test waited for it: {ended:?}"),
    }
}

fn seed_sql() -> String {
    let v = |seed: &str| vector_sql(DIMS, seed);
    format!(
        "{schema}
         INSERT INTO langchain_pg_collection VALUES
           ('{DOCS}', 'docs', '{{\"owner\": \"a\"}}'), ('{FAQ}', 'FAQ & Help', NULL),
           ('{SKIP}', 'skipme', NULL), ('{TEMP}', 'temp', NULL);
         INSERT INTO langchain_pg_embedding
           SELECT 'doc-' || g, '{DOCS}', {vg}, 'document ' || g,
                  jsonb_build_object('page', g, 'source', 's' || (g % 5) || '.pdf',
                                     'nested', jsonb_build_object('a', jsonb_build_object('b', jsonb_build_array(g, 'x'))), 'tag', 'v')
             FROM generate_series(1, 200) g;
         INSERT INTO langchain_pg_embedding
           SELECT md5('faq' || g)::uuid::text, '{FAQ}', {v1000}, 'faq ' || g,
                  jsonb_build_object('source', 'faq', 'deep', jsonb_build_object('x', g, 'y', NULL))
             FROM generate_series(1, 40) g;
         INSERT INTO langchain_pg_embedding
           SELECT 'skip-' || g, '{SKIP}', {v2000}, 'skipped ' || g, '{{}}' FROM generate_series(1, 20) g;
         INSERT INTO langchain_pg_embedding
           SELECT 'orphan-' || g, NULL, {v3000}, 'orphan ' || g, jsonb_build_object('page', g) FROM generate_series(1, 3) g;
         INSERT INTO langchain_pg_embedding
           SELECT 'temp-' || g, '{TEMP}', {v4000}, 'temp ' || g, NULL FROM generate_series(1, 15) g;",
        schema = langchain_postgres_sql(DIMS),
        vg = v("g"),
        v1000 = v("1000 + g"),
        v2000 = v("2000 + g"),
        v3000 = v("3000 + g"),
        v4000 = v("4000 + g"),
    )
}

const CONFIG: &str = "collections = [\"docs\", \"FAQ & Help\", \"later\", \"temp\"]
id_type = \"text\"
metadata_columns = [{ name = \"page\", type = \"integer\" }, { name = \"source\", type = \"text\" }]
index_min_rows = 100";

/// Source and target agree on this collection.
async fn assert_collection(env: &TestEnv, collection: &str, table: &str) -> i64 {
    let s = source_fingerprint(env, collection, &["page", "source"], "e.id").await;
    let t = target_fingerprint(env, table, &[("page", "page::text"), ("source", "source")]).await;
    assert_eq!(
        s, t,
        "collection {collection:?} -> {table}: (rows, md5) differ between source and target"
    );
    s.0
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn snapshot_and_stream_route_every_change_to_its_collection_table() {
    support::logs::capture();
    let env = TestEnv::new("lc_stream", &seed_sql());
    let path = write_config(&env, CONFIG);
    let config = pgvshift::config::Config::load_with_env(&path, &|_| None).unwrap();
    let mut run = env.spawn_run(config.clone());
    let started = std::time::Instant::now();
    wait(&mut run, env.wait_streaming()).await;
    eprintln!(
        "snapshot of 278 rows (1536 dims) took {:.1}s",
        started.elapsed().as_secs_f64()
    );

    // The snapshot: one table per selected collection, derived names, skipped rows counted.
    assert_eq!(assert_collection(&env, "docs", "docs").await, 200);
    assert_eq!(assert_collection(&env, "FAQ & Help", "faq_help").await, 40);
    assert_eq!(assert_collection(&env, "temp", "temp").await, 15);
    assert_eq!(env.target_value("SELECT to_regclass('skipme') IS NULL"), "t");
    assert_eq!(
        env.target_value(&format!(
            "SELECT skipped_null_collection || ' ' || skipped_unselected FROM pgvshift.langchain WHERE slot = '{}'",
            env.name
        )),
        "3 20"
    );
    // LangChain's layout: types and the index name PGVectorStore looks for (docs >= 100 rows).
    assert_eq!(
        env.target_value(
            "SELECT string_agg(attname || ' ' || format_type(atttypid, atttypmod) || CASE WHEN attnotnull THEN ' NOT NULL' ELSE '' END, ', ' ORDER BY attnum) FROM pg_attribute WHERE attrelid = 'docs'::regclass AND attnum > 0"
        ),
        "langchain_id text NOT NULL, content text NOT NULL, embedding vector(1536) NOT NULL, page integer, source text, langchain_metadata json"
    );
    assert_eq!(
        env.target_value("SELECT to_regclass('docslangchainvectorindex') IS NOT NULL"),
        "t"
    );
    assert_eq!(
        env.target_value("SELECT to_regclass('faq_helplangchainvectorindex') IS NULL"),
        "t"
    );

    // Writes from the application while the test changes things: inserts into two collections.
    let writer = {
        let source = env.source_client().await;
        let v = vector_sql(DIMS, "g");
        tokio::spawn(async move {
            for t in 0..25 {
                let n = 1 + t % 12;
                let collection = if t % 3 == 0 { FAQ } else { DOCS };
                source
                    .batch_execute(&format!(
                        "INSERT INTO langchain_pg_embedding SELECT 'w-{t}-' || g, '{collection}', {v}, 'written ' || g,
                                jsonb_build_object('page', g, 'source', 'w.pdf', 'obj', jsonb_build_object('t', {t})) FROM generate_series(1, {n}) g"
                    ))
                    .await
                    .unwrap();
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
    };
    let source = env.source_client().await;
    let exec = |sql: String| {
        let source = &source;
        async move {
            source
                .batch_execute(&sql)
                .await
                .unwrap_or_else(|e| panic!("{sql}: {e}"))
        }
    };
    let v = |seed: &str| vector_sql(DIMS, seed);
    // Metadata-only updates of rows with TOASTed 1536-dim embeddings (a run of 20, then one).
    exec("UPDATE langchain_pg_embedding SET cmetadata = cmetadata || '{\"page\": 999, \"edited\": true}' WHERE id IN (SELECT 'doc-' || g FROM generate_series(1, 20) g)".into()).await;
    exec("UPDATE langchain_pg_embedding SET cmetadata = jsonb_set(cmetadata, '{nested,a}', '\"changed\"') WHERE id = 'doc-21'".into()).await;
    // LangChain's own upsert of an existing id (a complete new row).
    exec(format!(
        "INSERT INTO langchain_pg_embedding VALUES ('doc-22', '{DOCS}', {}, 'new doc 22', '{{\"page\": 22}}')
           ON CONFLICT (id) DO UPDATE SET embedding = EXCLUDED.embedding, document = EXCLUDED.document, cmetadata = EXCLUDED.cmetadata",
        v("5000")
    ))
    .await;
    // Collection moves: between selected collections, out of the selection, into it from a
    // collection that is not migrated and from no collection (their embeddings unchanged).
    exec(format!(
        "UPDATE langchain_pg_embedding SET collection_id = '{FAQ}' WHERE id IN ('doc-30', 'doc-31')"
    ))
    .await;
    exec(format!(
        "UPDATE langchain_pg_embedding SET collection_id = '{SKIP}' WHERE id = 'doc-32'"
    ))
    .await;
    exec(format!(
        "UPDATE langchain_pg_embedding SET collection_id = '{DOCS}' WHERE id = 'skip-1'"
    ))
    .await;
    exec(format!(
        "UPDATE langchain_pg_embedding SET collection_id = '{DOCS}', cmetadata = '{{\"page\": 5}}' WHERE id = 'orphan-1'"
    ))
    .await;
    exec(format!(
        "BEGIN;
         UPDATE langchain_pg_embedding SET collection_id = '{FAQ}' WHERE id = 'doc-33';
         UPDATE langchain_pg_embedding SET cmetadata = cmetadata || '{{\"moved\": 1}}' WHERE id = 'doc-33';
         UPDATE langchain_pg_embedding SET collection_id = '{FAQ}' WHERE id = 'doc-34';
         UPDATE langchain_pg_embedding SET collection_id = '{DOCS}', document = 'back home' WHERE id = 'doc-34';
         COMMIT;"
    ))
    .await;
    // Id changes, one together with a move.
    exec("UPDATE langchain_pg_embedding SET id = 'doc-35-renamed' WHERE id = 'doc-35'".into()).await;
    exec(format!(
        "UPDATE langchain_pg_embedding SET id = 'moved-36', collection_id = '{FAQ}' WHERE id = 'doc-36'"
    ))
    .await;
    // Deletes (one of a skipped row, one of a row inserted in the same transaction).
    exec(format!(
        "BEGIN;
         DELETE FROM langchain_pg_embedding WHERE id IN ('doc-40', 'doc-41', 'skip-2', md5('faq1')::uuid::text);
         INSERT INTO langchain_pg_embedding VALUES ('short-lived', '{DOCS}', {}, 'gone', NULL);
         DELETE FROM langchain_pg_embedding WHERE id = 'short-lived';
         COMMIT;",
        v("6000")
    ))
    .await;
    // A new collection mid-stream, its first rows in the same transaction; more rows later.
    exec(format!(
        "BEGIN;
         INSERT INTO langchain_pg_collection VALUES ('{LATER}', 'later', '{{}}');
         INSERT INTO langchain_pg_embedding SELECT 'later-' || g, '{LATER}', {}, 'later ' || g,
                jsonb_build_object('page', g, 'source', 'l', 'list', jsonb_build_array(1, jsonb_build_object('k', g))) FROM generate_series(1, 12) g;
         COMMIT;",
        v("7000 + g")
    ))
    .await;
    exec(format!(
        "INSERT INTO langchain_pg_embedding VALUES ('later-x', '{LATER}', {}, 'later x', '{{\"page\": 1}}')",
        v("8000")
    ))
    .await;
    // A collection deleted mid-stream (its rows go by the FK cascade).
    exec("DELETE FROM langchain_pg_collection WHERE name = 'temp'".into()).await;
    // Rows that stay out: a collection that is not selected, and no collection.
    exec(format!(
        "INSERT INTO langchain_pg_collection VALUES ('d0000000-0000-0000-0000-000000000006', 'other', NULL);
         INSERT INTO langchain_pg_embedding SELECT 'other-' || g, 'd0000000-0000-0000-0000-000000000006', {}, 'o', NULL FROM generate_series(1, 4) g;
         INSERT INTO langchain_pg_embedding SELECT 'none-' || g, NULL, {}, 'n', NULL FROM generate_series(1, 2) g;",
        v("g"),
        v("g")
    ))
    .await;
    // Enough rows for "FAQ & Help" to pass index_min_rows while streaming.
    exec(format!(
        "INSERT INTO langchain_pg_embedding SELECT 'faq-more-' || g, '{FAQ}', {}, 'more', '{{}}' FROM generate_series(1, 70) g",
        v("g")
    ))
    .await;
    writer.await.unwrap();
    wait(&mut run, env.wait_caught_up()).await;
    // Its index is built on the side (CONCURRENTLY), the stream going on.
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while env.target_value(
        "SELECT coalesce((SELECT indisvalid FROM pg_index WHERE indexrelid = to_regclass('faq_helplangchainvectorindex')), false)",
    ) != "t"
    {
        assert!(std::time::Instant::now() < deadline, "no index on faq_help after it passed index_min_rows");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    let docs = assert_collection(&env, "docs", "docs").await;
    let faq = assert_collection(&env, "FAQ & Help", "faq_help").await;
    let later = assert_collection(&env, "later", "later").await;
    assert_eq!(later, 13);
    assert!(docs > 190 && faq > 45, "docs {docs}, faq {faq}");
    // The rows that entered the selection without their embedding in the change are there.
    assert_eq!(
        env.target_value("SELECT count(*) FROM docs WHERE langchain_id IN ('skip-1', 'orphan-1')"),
        "2"
    );
    assert_eq!(
        env.target_value("SELECT count(*) FROM docs WHERE langchain_id = 'doc-32'"),
        "0"
    );
    // The deleted collection's table is kept, empty; its record says deleted.
    assert_eq!(env.target_value("SELECT count(*) FROM temp"), "0");
    assert_eq!(
        env.target_value(&format!(
            "SELECT state FROM pgvshift.langchain_collections WHERE slot = '{}' AND name = 'temp'",
            env.name
        )),
        "deleted"
    );
    // Every migrated row has exactly one route, and only those.
    assert_eq!(
        env.target_value(&format!(
            "SELECT count(*) FROM pgvshift.langchain_routes WHERE slot = '{}'",
            env.name
        )),
        (docs + faq + later).to_string()
    );
    let skipped = env.target_value(&format!(
        "SELECT skipped_null_collection || ' ' || skipped_unselected FROM pgvshift.langchain WHERE slot = '{}'",
        env.name
    ));
    assert_eq!(
        skipped, "5 24",
        "rows skipped: 3 + 2 without a collection, 20 + 4 of other collections (doc-32, moved out, is not counted)"
    );

    // `status` shows the collections and the skipped rows.
    let (code, out, err) = env.run_binary(&["status", "--config", path.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains(
            "rows skipped (at the snapshot and inserted since): 5 without a collection, 24 of collections not selected"
        ),
        "{out}"
    );
    assert!(out.contains("'temp' -> public.temp: deleted on the source"), "{out}");
    assert!(out.contains("'other': not selected (4 rows skipped)"), "{out}");

    // Stop and resume: the router takes its state from the target again.
    run.stop().await;
    let mut run = env.spawn_run(config);
    exec(format!(
        "INSERT INTO langchain_pg_embedding VALUES ('after-restart', '{LATER}', {}, 'again', '{{\"page\": 2}}');
         UPDATE langchain_pg_embedding SET collection_id = '{LATER}' WHERE id = 'doc-50';",
        v("9000")
    ))
    .await;
    wait(&mut run, env.wait_caught_up()).await;
    assert_eq!(assert_collection(&env, "later", "later").await, 15);
    assert_collection(&env, "docs", "docs").await;
    run.stop().await;

    // Cutover: the tables below index_min_rows get their index.
    let (code, out, err) = env.run_binary(&["langchain", "indexes", "--config", path.to_str().unwrap()]);
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(out.contains("public.later: built laterlangchainvectorindex"), "{out}");
    assert!(out.contains("public.docs: index exists"), "{out}");
    assert_eq!(
        env.target_value("SELECT to_regclass('laterlangchainvectorindex') IS NOT NULL"),
        "t"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_counts_ids_and_metadata_that_would_not_fit_and_refuses_source_deletion() {
    let env = TestEnv::new(
        "lc_check",
        &format!(
            "{}
             INSERT INTO langchain_pg_collection VALUES ('{DOCS}', 'docs', NULL);
             INSERT INTO langchain_pg_embedding
               SELECT CASE WHEN g <= 3 THEN 'not-a-uuid-' || g ELSE md5(g::text)::uuid::text END, '{DOCS}', '[1,2,3]',
                      'd', jsonb_build_object('page', CASE WHEN g % 4 = 0 THEN to_jsonb('p' || g) ELSE to_jsonb(g) END)
                 FROM generate_series(1, 20) g;",
            langchain_postgres_sql(3)
        ),
    );
    let path = write_config(
        &env,
        "metadata_columns = [{ name = \"page\", type = \"integer\" }]\ndelete_source_collections = true",
    );
    let config = pgvshift::config::Config::load_with_env(&path, &|_| None).unwrap();
    let findings = pgvshift::check::check(&config, Default::default()).await.unwrap();
    let blocking: Vec<String> = findings
        .iter()
        .filter(|f| f.level == pgvshift::check::Level::Blocking)
        .map(|f| f.one_line())
        .collect();
    let all = blocking.join("\n");
    assert!(
        all.contains("3 row(s) of the selected collections have an id that langchain_id uuid cannot hold (first: id 'not-a-uuid-")
            && all.contains("id_type = \\\"text\\\"") | all.contains("id_type = \"text\""),
        "{all}"
    );
    assert!(
        all.contains("5 row(s) of the selected collections have a cmetadata key \"page\" that does not fit metadata column \"page\" integer")
            && all.contains("a string of 2 characters"),
        "{all}"
    );
    assert!(
        all.contains("needs `pgvshift verify` to prove each collection table equal first"),
        "{all}"
    );
    assert_eq!(blocking.len(), 3, "{all}");
    // `run` refuses before creating anything.
    let (tx, rx) = tokio::sync::watch::channel(false);
    let err = pgvshift::run::run(&config, rx, Default::default()).await.unwrap_err();
    drop(tx);
    assert!(err.to_string().contains("needs `pgvshift verify`"), "{err}");
    // verify and cutover refuse LangChain mode instead of reporting an empty comparison as equal.
    for verb in ["verify", "cutover"] {
        let (code, _, stderr) = env.run_binary(&[verb, "--config", path.to_str().unwrap()]);
        assert_eq!(code, 2, "{verb}: {stderr}");
        assert!(
            stderr.contains("[langchain]") || stderr.contains("LangChain"),
            "{verb}: {stderr}"
        );
    }
    assert_eq!(
        env.source_value(&format!(
            "SELECT count(*) FROM pg_replication_slots WHERE slot_name = '{}'",
            env.name
        )),
        "0"
    );

    // Missing tables: the finding says where they are instead.
    let path = write_config(&env, "source_schema = \"rag\"");
    let config = pgvshift::config::Config::load_with_env(&path, &|_| None).unwrap();
    let findings = pgvshift::check::check(&config, Default::default()).await.unwrap();
    let missing = findings
        .iter()
        .find(|f| f.check == "langchain_tables")
        .expect("a langchain_tables finding");
    assert!(missing.message.contains("does not exist on the source"), "{missing:?}");
    assert!(
        missing
            .fix
            .as_deref()
            .unwrap_or("")
            .contains("source_schema = \"public\""),
        "{missing:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plan_lists_collections_with_their_tables_and_list_prints_names() {
    let env = TestEnv::new(
        "lc_plan",
        &format!(
            "{}
             INSERT INTO langchain_pg_collection VALUES ('{DOCS}', 'My Docs', NULL), ('{FAQ}', 'my-docs', NULL), ('{SKIP}', 'zzz', NULL);
             INSERT INTO langchain_pg_embedding SELECT 'a' || g, '{DOCS}', '[1,2,3]', 'd', '{{}}' FROM generate_series(1, 7) g;
             INSERT INTO langchain_pg_embedding SELECT 'b' || g, '{FAQ}', '[1,2,3]', 'd', '{{}}' FROM generate_series(1, 2) g;",
            langchain_postgres_sql(3)
        ),
    );
    let path = write_config(&env, "collections = [\"My Docs\", \"my-docs\"]\nid_type = \"text\"");
    let (code, out, err) = env.run_binary(&["plan", "--config", path.to_str().unwrap()]);
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(out.contains("'My Docs'"), "{out}");
    assert!(out.contains("7 rows  -> public.my_docs (will be created)"), "{out}");
    assert!(out.contains("2 rows  -> public.my_docs_d0000000"), "{out}");
    assert!(out.contains("'zzz'") && out.contains("not selected: skipped"), "{out}");
    assert!(out.contains("\"langchain_id\" text PRIMARY KEY"), "{out}");
    let (code, out, err) = env.run_binary(&["langchain", "list", "--config", path.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, "My Docs\nmy-docs\nzzz\n");
    let (code, out, err) = env.run_binary(&["check", "--config", path.to_str().unwrap()]);
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(
        out.contains("[langchain_layout] table public.langchain_pg_embedding: langchain_postgres layout: key id, cmetadata jsonb, embedding 3 dimensions"),
        "{out}"
    );
    assert!(
        out.contains("[langchain_collections] collections: 2 of 3 collection(s) selected (9 rows)\n"),
        "{out}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn community_layout_maps_custom_id_and_a_metadata_value_that_does_not_fit_stops_with_its_row() {
    let env = TestEnv::new(
        "lc_community",
        &format!(
            "{}
             INSERT INTO langchain_pg_collection VALUES ('{DOCS}', 'docs', NULL), ('{FAQ}', NULL, NULL);
             INSERT INTO langchain_pg_embedding
               SELECT md5('u' || g)::uuid, '{DOCS}', {v}, 'doc ' || g,
                      json_build_object('page', g, 'x', json_build_object('y', g)), CASE WHEN g = 1 THEN NULL ELSE 'custom-' || g END
                 FROM generate_series(1, 30) g;
             INSERT INTO langchain_pg_embedding SELECT md5('f' || g)::uuid, '{FAQ}', {v}, 'f', '{{}}', 'f' || g FROM generate_series(1, 5) g;",
            langchain_community_sql(),
            v = vector_sql(8, "g")
        ),
    );
    let path = write_config(
        &env,
        "id_type = \"text\"\nvector_size = 8\nprofile = \"halfvec\"\nmetadata_columns = [{ name = \"page\", type = \"bigint\" }]\ndrop_deleted_collections = true",
    );
    let config = pgvshift::config::Config::load_with_env(&path, &|_| None).unwrap();
    let mut run = env.spawn_run(config);
    wait(&mut run, env.wait_streaming()).await;
    let source = env.source_client().await;
    source
        .batch_execute(&format!(
            "INSERT INTO langchain_pg_embedding VALUES (md5('new')::uuid, '{DOCS}', {v}, 'new', '{{\"page\": 7}}', 'custom-new');
             UPDATE langchain_pg_embedding SET custom_id = 'custom-2b', cmetadata = '{{\"page\": 2}}' WHERE custom_id = 'custom-2';
             DELETE FROM langchain_pg_embedding WHERE custom_id = 'custom-3';",
            v = vector_sql(8, "1")
        ))
        .await
        .unwrap();
    wait(&mut run, env.wait_caught_up()).await;
    // The target id is custom_id (the uuid's text where it is NULL); embeddings are halfvec.
    let s = source_fingerprint_as(
        &env,
        "docs",
        &["page"],
        "coalesce(e.custom_id, e.uuid::text)",
        "e.embedding::halfvec::text",
    )
    .await;
    let t = target_fingerprint(&env, "docs", &[("page", "page::text")]).await;
    assert_eq!(s.0, 30);
    assert_eq!(s, t, "(rows, md5) differ between source and target");
    assert_eq!(
        env.target_value("SELECT format_type(atttypid, atttypmod) FROM pg_attribute WHERE attrelid = 'docs'::regclass AND attname = 'embedding'"),
        "halfvec(8)"
    );
    assert_eq!(
        env.target_value(&format!(
            "SELECT count(*) FROM docs WHERE langchain_id = '{}'",
            env.source_value("SELECT md5('u1')::uuid")
        )),
        "1"
    );
    assert_eq!(
        env.target_value("SELECT page FROM docs WHERE langchain_id = 'custom-2b'"),
        "2"
    );
    assert_eq!(
        env.target_value("SELECT count(*) FROM docs WHERE langchain_id IN ('custom-2', 'custom-3')"),
        "0"
    );
    assert_eq!(
        env.target_value("SELECT string_agg(langchain_id || ':' || langchain_metadata::text, ',') FROM docs WHERE langchain_id = 'custom-4'"),
        "custom-4:{\"x\":{\"y\":4}}"
    );
    // The collection without a name is migrated too (collections = "all"), as "collection".
    assert_eq!(env.target_value("SELECT count(*) FROM collection"), "5");
    // drop_deleted_collections: deleting it drops its table.
    source
        .batch_execute(&format!("DELETE FROM langchain_pg_collection WHERE uuid = '{FAQ}'"))
        .await
        .unwrap();
    wait(&mut run, env.wait_caught_up()).await;
    assert_eq!(env.target_value("SELECT to_regclass('collection') IS NULL"), "t");

    // A metadata value that does not fit: the run stops, naming the row, the key and the fix.
    source
        .batch_execute(&format!(
            "INSERT INTO langchain_pg_embedding VALUES (md5('bad')::uuid, '{DOCS}', {v}, 'bad', '{{\"page\": \"three\"}}', 'custom-bad')",
            v = vector_sql(8, "1")
        ))
        .await
        .unwrap();
    let message = run.failure().await;
    assert!(
        message.contains("custom_id 'custom-bad'")
            && message.contains("cmetadata key \"page\" holds a string of 5 characters, which does not fit metadata column \"page\" bigint")
            && message.contains("remove \"page\" from metadata_columns"),
        "{message}"
    );
}

/// Throughput of the LangChain snapshot against the plain-table path on the same data (run
/// with `cargo test --release --test langchain -- --ignored --nocapture`; numbers in
/// docs/langchain.md).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore]
async fn measure_snapshot_throughput() {
    let rows: i64 = std::env::var("LC_ROWS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20_000);
    let env = TestEnv::new(
        "lc_bench",
        &format!(
            "{}
             INSERT INTO langchain_pg_collection VALUES ('{DOCS}', 'docs', NULL), ('{FAQ}', 'faq', NULL);
             INSERT INTO langchain_pg_embedding
               SELECT 'doc-' || g, CASE WHEN g % 2 = 0 THEN '{DOCS}'::uuid ELSE '{FAQ}'::uuid END,
                      (SELECT array_agg(random()::real) FROM generate_series(1, {DIMS}) WHERE g IS NOT NULL)::vector,
                      'document text ' || g, jsonb_build_object('page', g, 'source', 's.pdf', 'nested', jsonb_build_object('a', g))
                 FROM generate_series(1, {rows}) g;
             CREATE TABLE plain AS SELECT * FROM langchain_pg_embedding;
             ALTER TABLE plain ADD PRIMARY KEY (id);",
            langchain_postgres_sql(DIMS)
        ),
    );
    let measure = |path: std::path::PathBuf| {
        let env = &env;
        async move {
            let config = pgvshift::config::Config::load_with_env(&path, &|_| None).unwrap();
            let started = std::time::Instant::now();
            let mut run = env.spawn_run(config);
            wait(&mut run, env.wait_streaming()).await;
            let secs = started.elapsed().as_secs_f64();
            run.stop().await;
            env.wait_slot_inactive();
            let (_, out, _) = env.run_binary(&["cleanup", "--config", path.to_str().unwrap(), "--yes"]);
            let _ = out;
            secs
        }
    };
    let plain = measure(env.write_config(&[("public.plain", Some("public.plain_copy"))], "")).await;
    let lc = measure(write_config(
        &env,
        "id_type = \"text\"\nmetadata_columns = [{ name = \"page\", type = \"integer\" }, { name = \"source\", type = \"text\" }]\nvector_index = \"none\"",
    ))
    .await;
    let lc_plain_json = {
        env.target.psql(&env.name, "DROP TABLE docs, faq").unwrap();
        measure(write_config(&env, "id_type = \"text\"\nvector_index = \"none\"")).await
    };
    eprintln!(
        "{rows} rows of vector({DIMS}): plain table {plain:.2}s ({:.0} rows/s); LangChain mode, 2 typed metadata columns {lc:.2}s ({:.0} rows/s); LangChain mode, JSON passed through {lc_plain_json:.2}s ({:.0} rows/s)",
        rows as f64 / plain,
        rows as f64 / lc,
        rows as f64 / lc_plain_json
    );
}
