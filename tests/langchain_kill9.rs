//! LangChain mode under `kill -9`: the binary is killed at random moments while an application
//! keeps writing the way LangChain does (upserts of documents, metadata edits of rows with
//! 1536-dim embeddings, rows moved between collections, deletes, collections created and
//! deleted), and restarted each time. At the end every selected collection's table equals the
//! source, and the routing table holds exactly the migrated rows: nothing lost, nothing twice.

mod support;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use rand::Rng;
use support::binary::{slot_state, target_progress, wait_caught_up, wait_slot_inactive, wait_snapshot_done, Binary};
use support::langchain::{langchain_postgres_sql, source_fingerprint, target_fingerprint, vector_sql, write_config};
use support::TestEnv;

const DIMS: usize = 1536;
const SEED_ROWS: i64 = 300;
/// Collections c0..c2 are migrated, c3 is not; dyn-N come and go while it runs.
const STATIC: [&str; 4] = [
    "c0000000-0000-0000-0000-000000000000",
    "c0000000-0000-0000-0000-000000000001",
    "c0000000-0000-0000-0000-000000000002",
    "c0000000-0000-0000-0000-000000000003",
];

fn dyn_uuid(n: i64) -> String {
    format!("e0000000-0000-0000-0000-{n:012}")
}

/// One LangChain-like transaction.
fn transaction(txn: i64) -> String {
    let mut rng = rand::thread_rng();
    let v = |seed: String| vector_sql(DIMS, &seed);
    let existing = |rng: &mut rand::rngs::ThreadRng| {
        if rng.gen_bool(0.6) {
            format!("doc-{}", rng.gen_range(1..=SEED_ROWS))
        } else {
            format!("w{}-{}", rng.gen_range(1..txn.max(2)), rng.gen_range(0..4))
        }
    };
    let mut sql = String::from("BEGIN;");
    match rng.gen_range(0..10) {
        // add_documents: an upsert of a few rows (new ids and existing ones).
        0..=3 => {
            let c = STATIC[rng.gen_range(0..4)];
            for i in 0..rng.gen_range(1..6) {
                let id = if i == 0 && rng.gen_bool(0.3) {
                    existing(&mut rng)
                } else {
                    format!("w{txn}-{i}")
                };
                sql.push_str(&format!(
                    "INSERT INTO langchain_pg_embedding VALUES ('{id}', '{c}', {}, 'text {txn} {i}', jsonb_build_object('page', {txn}, 'source', 'w', 'n', jsonb_build_object('i', {i})))
                       ON CONFLICT (id) DO UPDATE SET embedding = EXCLUDED.embedding, document = EXCLUDED.document, cmetadata = EXCLUDED.cmetadata;",
                    v(format!("{txn} + {i}"))
                ));
            }
        }
        // Metadata edits (the embedding is not touched: unchanged TOAST).
        4 | 5 => {
            for _ in 0..rng.gen_range(1..12) {
                sql.push_str(&format!(
                    "UPDATE langchain_pg_embedding SET cmetadata = coalesce(cmetadata, '{{}}') || jsonb_build_object('page', {txn}, 'edit', {txn}) WHERE id = '{}';",
                    existing(&mut rng)
                ));
            }
        }
        // Moves between collections, into and out of the migrated ones.
        6 => {
            for _ in 0..rng.gen_range(1..4) {
                sql.push_str(&format!(
                    "UPDATE langchain_pg_embedding SET collection_id = '{}' WHERE id = '{}';",
                    STATIC[rng.gen_range(0..4)],
                    existing(&mut rng)
                ));
            }
        }
        // Deletes.
        7 => {
            sql.push_str(&format!(
                "DELETE FROM langchain_pg_embedding WHERE id IN ('{}', '{}');",
                existing(&mut rng),
                existing(&mut rng)
            ));
        }
        // A collection created with rows, or one deleted.
        8 => {
            sql.push_str(&format!(
                "INSERT INTO langchain_pg_collection VALUES ('{u}', 'dyn-{txn}', NULL);
                 INSERT INTO langchain_pg_embedding SELECT 'd{txn}-' || g, '{u}', {}, 'dyn', jsonb_build_object('page', g) FROM generate_series(1, {n}) g;",
                v("g".into()),
                u = dyn_uuid(txn),
                n = rng.gen_range(1..15),
            ));
        }
        _ => {
            sql.push_str(
                "DELETE FROM langchain_pg_collection WHERE uuid = (SELECT uuid FROM langchain_pg_collection WHERE name LIKE 'dyn-%' ORDER BY random() LIMIT 1);",
            );
        }
    }
    sql.push_str("COMMIT;");
    sql
}

async fn writer(env: &TestEnv, stop: Arc<AtomicBool>, committed: Arc<AtomicU64>) {
    let source = env.source_client().await;
    let mut txn = 0;
    while !stop.load(Ordering::Relaxed) {
        txn += 1;
        let sql = transaction(txn);
        source
            .batch_execute(&sql)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
        committed.fetch_add(1, Ordering::Relaxed);
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill9_under_langchain_writes_loses_and_duplicates_nothing() {
    let env = Arc::new(TestEnv::new(
        "lc_kill9",
        &format!(
            "{}
             INSERT INTO langchain_pg_collection VALUES ('{}', 'alpha', NULL), ('{}', 'beta', NULL), ('{}', 'gamma', NULL), ('{}', 'ignored', NULL);
             INSERT INTO langchain_pg_embedding
               SELECT 'doc-' || g, ('{{{},{},{},{}}}'::uuid[])[1 + g % 4], {}, 'seed ' || g,
                      jsonb_build_object('page', g, 'source', 's', 'nested', jsonb_build_object('g', g))
                 FROM generate_series(1, {SEED_ROWS}) g;",
            langchain_postgres_sql(DIMS),
            STATIC[0],
            STATIC[1],
            STATIC[2],
            STATIC[3],
            STATIC[0],
            STATIC[1],
            STATIC[2],
            STATIC[3],
            vector_sql(DIMS, "g")
        ),
    ));
    let selected: Vec<String> = ["alpha", "beta", "gamma"]
        .iter()
        .map(|s| format!("{s:?}"))
        .chain((1..2000).map(|n| format!("\"dyn-{n}\"")))
        .collect();
    let config = write_config(
        &env,
        &format!(
            "collections = [{}]\nid_type = \"text\"\nmetadata_columns = [{{ name = \"page\", type = \"bigint\" }}]\nindex_min_rows = 50",
            selected.join(", ")
        ),
    );

    let stop = Arc::new(AtomicBool::new(false));
    let committed = Arc::new(AtomicU64::new(0));
    let mut writer_task = Some({
        let (env, stop, committed) = (env.clone(), stop.clone(), committed.clone());
        tokio::spawn(async move { writer(&env, stop, committed).await })
    });
    let mut bin = Binary::start(&env, &config);
    wait_snapshot_done(&env, &mut bin).await;
    const ROUNDS: usize = 4;
    for round in 1..=ROUNDS {
        let ms = rand::thread_rng().gen_range(200..2000);
        tokio::time::sleep(Duration::from_millis(ms)).await;
        bin.assert_running(&format!("streaming under load (round {round})"));
        let log = bin.kill9();
        wait_slot_inactive(&env, "after its process died").await;
        let (_, confirmed) = slot_state(&env).await;
        let (phase, applied) = target_progress(&env).await.expect("progress row");
        let applied = applied.expect("applied_lsn");
        assert_eq!(phase, "streaming");
        assert!(
            confirmed <= applied,
            "round {round}: confirmed {confirmed} is ahead of applied {applied}; log:\n{log}"
        );
        eprintln!(
            "round {round}: killed after {ms} ms (writer at {} transactions), applied {applied}",
            committed.load(Ordering::Relaxed)
        );
        if round == ROUNDS {
            stop.store(true, Ordering::Relaxed);
            writer_task.take().unwrap().await.expect("writer");
        }
        bin = Binary::start(&env, &config);
        bin.wait_logged(
            &format!("restart {round} resuming"),
            Duration::from_secs(60),
            "resuming",
        )
        .await;
    }
    let total = committed.load(Ordering::Relaxed);
    assert!(total > 20, "the writer committed only {total} transactions");
    wait_caught_up(&env, &mut bin).await;

    let target = env.target_client().await;
    let records = target
        .query(
            "SELECT name, target_name, state FROM pgvshift.langchain_collections WHERE slot = $1 AND selected ORDER BY name",
            &[&env.name],
        )
        .await
        .unwrap();
    let mut migrated = 0;
    let mut dynamic = 0;
    for r in &records {
        let (name, table, state): (String, String, String) = (r.get(0), r.get(1), r.get(2));
        if state == "deleted" {
            assert_eq!(
                env.target_value(&format!("SELECT count(*) FROM \"{table}\"")),
                "0",
                "{name}"
            );
            continue;
        }
        dynamic += usize::from(name.starts_with("dyn-"));
        let s = source_fingerprint(&env, &name, &["page"], "e.id").await;
        let t = target_fingerprint(&env, &format!("\"{table}\""), &[("page", "page::text")]).await;
        assert_eq!(s, t, "collection {name} -> {table}: (rows, md5) differ");
        migrated += s.0;
    }
    assert_eq!(
        env.target_value(&format!(
            "SELECT count(*) FROM pgvshift.langchain_routes WHERE slot = '{}'",
            env.name
        )),
        migrated.to_string(),
        "routes"
    );
    eprintln!(
        "writer committed {total} transactions; {migrated} rows in {} collection tables ({dynamic} created while streaming)",
        records.len()
    );
    bin.kill9();
}

/// A `kill -9` in the middle of the LangChain snapshot: the next run drops the collection
/// tables it had created, starts the snapshot over, and ends equal to the source (no row twice).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill9_during_the_snapshot_starts_it_over() {
    let env = TestEnv::new(
        "lc_snapkill",
        &format!(
            "{}
             INSERT INTO langchain_pg_collection VALUES ('{}', 'alpha', NULL), ('{}', 'beta', NULL);
             INSERT INTO langchain_pg_embedding
               SELECT 'doc-' || g, ('{{{},{}}}'::uuid[])[1 + g % 2], {}, 'seed ' || g, jsonb_build_object('page', g)
                 FROM generate_series(1, 4000) g;",
            langchain_postgres_sql(DIMS),
            STATIC[0],
            STATIC[1],
            STATIC[0],
            STATIC[1],
            vector_sql(DIMS, "g")
        ),
    );
    let config = write_config(
        &env,
        "id_type = \"text\"\nmetadata_columns = [{ name = \"page\", type = \"bigint\" }]\n",
    );
    let mut bin = Binary::start(&env, &config).polling_every(Duration::from_millis(2));
    bin.wait_logged(
        "the collection tables to be created",
        Duration::from_secs(60),
        "collection table",
    )
    .await;
    let log = bin.kill9();
    let (phase, _) = target_progress(&env).await.expect("progress row");
    assert_eq!(phase, "snapshot", "killed too late to test a restart; log:\n{log}");
    wait_slot_inactive(&env, "after its process died").await;
    let mut bin = Binary::start(&env, &config);
    wait_caught_up(&env, &mut bin).await;
    assert!(
        bin.stderr()
            .contains("the previous snapshot did not complete: starting it over"),
        "{}",
        bin.stderr()
    );
    for name in ["alpha", "beta"] {
        let s = source_fingerprint(&env, name, &["page"], "e.id").await;
        let t = target_fingerprint(&env, name, &[("page", "page::text")]).await;
        assert_eq!(s.0, 2000);
        assert_eq!(s, t, "collection {name}: (rows, md5) differ");
    }
    assert_eq!(
        env.target_value(&format!(
            "SELECT count(*) FROM pgvshift.langchain_routes WHERE slot = '{}'",
            env.name
        )),
        "4000"
    );
    bin.kill9();
}
