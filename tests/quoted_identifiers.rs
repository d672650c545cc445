//! Identifiers that need quoting work end to end: a non-public schema with a space, a table
//! name with embedded double quotes, mixed-case / spaced / quoted column names with the
//! primary key on one of them, a secondary index with a quoted name, and a table renamed on
//! the target into another (new) schema. Snapshot, then INSERT / UPDATE (incl. of the key) /
//! DELETE / TRUNCATE streamed, then a second run resumes the stream.

mod support;

use support::{InProcess, TestEnv};

const WEIRD: &str = r#""My Schema"."Weird ""Name"" t""#;
const ITEMS_SOURCE: &str = r#""app data"."Items""#;
const ITEMS_TARGET: &str = r#""New.Home"."items v2""#;

/// Wait for `wait`, but fail at once if the pipeline ends (an error) in the meantime.
async fn unless_run_fails(run: &mut InProcess, wait: impl std::future::Future<Output = ()>) {
    tokio::select! {
        _ = wait => {}
        ended = &mut run.handle => panic!("the pipeline ended while the test waited on it: {ended:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quoted_schema_table_and_column_names_migrate_and_stream() {
    let env = TestEnv::new(
        "quoted",
        r#"CREATE SCHEMA "My Schema";
           CREATE TABLE "My Schema"."Weird ""Name"" t" (
               "MixedCase"  int PRIMARY KEY,
               "with space" text,
               "quote""d"   text NOT NULL,
               "Emb"        vector(3)
           );
           CREATE INDEX "Idx ""space"" col" ON "My Schema"."Weird ""Name"" t" ("with space");
           INSERT INTO "My Schema"."Weird ""Name"" t"
           SELECT g, 'space ' || g, 'q"' || g, ARRAY[g, -g, g * 0.5]::real[]::vector
             FROM generate_series(1, 50) g;

           CREATE SCHEMA "app data";
           CREATE TABLE "app data"."Items" ("ID" bigint PRIMARY KEY, "Label" text, v vector(3));
           CREATE INDEX "Items v hnsw" ON "app data"."Items" USING hnsw (v vector_l2_ops);
           INSERT INTO "app data"."Items" SELECT g, 'Label ' || g, ARRAY[g, g, g]::real[]::vector
             FROM generate_series(1, 30) g;"#,
    );
    let config = env.config(&[(WEIRD, None), (ITEMS_SOURCE, Some(ITEMS_TARGET))]);
    assert_eq!(
        config.tables[0].source,
        pgvshift::sql::QualifiedName::new("My Schema", "Weird \"Name\" t")
    );
    assert_eq!(
        config.tables[1].target,
        pgvshift::sql::QualifiedName::new("New.Home", "items v2")
    );
    let mut run = env.spawn_run(config);
    unless_run_fails(&mut run, env.wait_streaming()).await;

    // The snapshot created the tables under their exact names, columns, key and indexes.
    assert_eq!(
        env.target_value(
            r#"SELECT string_agg(a.attname || ':' || format_type(a.atttypid, a.atttypmod) || ':' || a.attnotnull, ', ' ORDER BY a.attnum)
                 FROM pg_attribute a WHERE a.attrelid = '"My Schema"."Weird ""Name"" t"'::regclass AND a.attnum > 0"#
        ),
        r#"MixedCase:integer:true, with space:text:false, quote"d:text:true, Emb:vector(3):false"#
    );
    assert_eq!(
        env.target_value(
            r#"SELECT string_agg(a.attname, ',') FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY (i.indkey)
                WHERE i.indrelid = '"My Schema"."Weird ""Name"" t"'::regclass AND i.indisprimary"#
        ),
        "MixedCase"
    );
    assert_eq!(
        env.target_value(
            r#"SELECT string_agg(schemaname || '|' || tablename || '|' || indexname, ', ' ORDER BY indexname)
                 FROM pg_indexes WHERE schemaname IN ('My Schema', 'New.Home', 'app data') AND indexname NOT LIKE '%pkey'"#
        ),
        r#"My Schema|Weird "Name" t|Idx "space" col, New.Home|items v2|Items v hnsw"#
    );
    assert_eq!(
        env.target_value("SELECT count(*) FROM pg_namespace WHERE nspname = 'app data'"),
        "0",
        "the renamed table must not also land under its source schema"
    );
    env.assert_same(WEIRD, r#""MixedCase""#).await;
    let (s, t) = fingerprint_pair(&env, ITEMS_SOURCE, ITEMS_TARGET).await;
    assert_eq!(s, t, "renamed table differs after the snapshot");
    assert_eq!(t.0, 30);

    // Streamed changes, including an UPDATE of the quoted primary key column. Single rows and
    // multi-row statements (which the applier sends as one COPY / through a staging table).
    let source = env.source_client().await;
    source
        .batch_execute(
            r#"INSERT INTO "My Schema"."Weird ""Name"" t" VALUES (100, 'new row', 'it''s "quoted"', '[1,2,3]');
               INSERT INTO "My Schema"."Weird ""Name"" t" SELECT g, 'bulk ' || g, 'b"' || g, '[0,1,0]' FROM generate_series(200, 219) g;
               UPDATE "My Schema"."Weird ""Name"" t" SET "with space" = NULL, "quote""d" = 'q"changed' WHERE "MixedCase" BETWEEN 1 AND 5;
               UPDATE "My Schema"."Weird ""Name"" t" SET "quote""d" = "quote""d" || '!', "Emb" = '[4,4,4]' WHERE "MixedCase" BETWEEN 10 AND 29;
               UPDATE "My Schema"."Weird ""Name"" t" SET "MixedCase" = -"MixedCase", "Emb" = '[9,9,9]' WHERE "MixedCase" IN (6, 7);
               DELETE FROM "My Schema"."Weird ""Name"" t" WHERE "MixedCase" > 40 AND "MixedCase" < 100;
               BEGIN;
               INSERT INTO "app data"."Items" VALUES (31, 'Label 31', '[3,1,0]');
               UPDATE "app data"."Items" SET "Label" = upper("Label") WHERE "ID" % 3 = 0;
               DELETE FROM "app data"."Items" WHERE "ID" IN (2, 4);
               COMMIT;"#,
        )
        .await
        .unwrap();
    unless_run_fails(&mut run, env.wait_caught_up()).await;
    env.assert_same(WEIRD, r#""MixedCase""#).await;
    let (s, t) = fingerprint_pair(&env, ITEMS_SOURCE, ITEMS_TARGET).await;
    assert_eq!(s, t, "renamed table differs after streamed changes");
    assert_eq!(
        env.target_value(r#"SELECT count(*) FROM "My Schema"."Weird ""Name"" t" WHERE "MixedCase" < 0"#),
        "2"
    );
    assert_eq!(
        env.target_value(r#"SELECT "quote""d" FROM "My Schema"."Weird ""Name"" t" WHERE "MixedCase" = 100"#),
        r#"it's "quoted""#
    );

    // TRUNCATE of both tables in one statement, then new rows.
    source
        .batch_execute(
            r#"TRUNCATE "My Schema"."Weird ""Name"" t", "app data"."Items";
               INSERT INTO "My Schema"."Weird ""Name"" t" VALUES (1, 'after truncate', 'x', NULL);
               INSERT INTO "app data"."Items" VALUES (1, 'after truncate', '[0,0,1]');"#,
        )
        .await
        .unwrap();
    unless_run_fails(&mut run, env.wait_caught_up()).await;
    env.assert_same(WEIRD, r#""MixedCase""#).await;
    let (s, t) = fingerprint_pair(&env, ITEMS_SOURCE, ITEMS_TARGET).await;
    assert_eq!(s, t, "renamed table differs after TRUNCATE");
    assert_eq!(t.0, 1);
    assert_eq!(
        env.target_value(r#"SELECT count(*) FROM "My Schema"."Weird ""Name"" t""#),
        "1"
    );
    assert!(run.apply_stats().truncates.load(std::sync::atomic::Ordering::Relaxed) >= 1);
    run.stop().await;

    // A second run resumes the stream: the recorded (quoted) table names must match the
    // configuration's, and changes made while stopped arrive.
    env.wait_slot_inactive();
    source
        .batch_execute(
            r#"INSERT INTO "My Schema"."Weird ""Name"" t" VALUES (2, 'while stopped', 'y"', '[2,2,2]');
               UPDATE "app data"."Items" SET "Label" = 'changed while stopped' WHERE "ID" = 1;"#,
        )
        .await
        .unwrap();
    let mut run = env.spawn_run(env.config(&[(WEIRD, None), (ITEMS_SOURCE, Some(ITEMS_TARGET))]));
    unless_run_fails(&mut run, env.wait_caught_up()).await;
    env.assert_same(WEIRD, r#""MixedCase""#).await;
    let (s, t) = fingerprint_pair(&env, ITEMS_SOURCE, ITEMS_TARGET).await;
    assert_eq!(s, t, "renamed table differs after resuming");
    assert_eq!(
        env.target_value(r#"SELECT "Label" FROM "New.Home"."items v2" WHERE "ID" = 1"#),
        "changed while stopped"
    );
    run.stop().await;
}

/// (source, target) fingerprints of a table that has different names on each side.
async fn fingerprint_pair(env: &TestEnv, source: &str, target: &str) -> ((i64, String), (i64, String)) {
    let s = pgvshift::cli::demo::fingerprint(&env.source_client().await, source, r#""ID""#)
        .await
        .unwrap();
    let t = pgvshift::cli::demo::fingerprint(&env.target_client().await, target, r#""ID""#)
        .await
        .unwrap();
    (s, t)
}
