//! Every column type passes through unchanged, both in the snapshot (COPY binary) and in the
//! stream (pgoutput binary values bound as-is): built-in scalars with their edge values (numeric
//! NaN / Infinity / 80 digits, float -0 / Infinity / NaN, infinite dates and timestamps),
//! arrays (NULL elements, multi-dimensional, non-default lower bounds, empty), an enum, NULL in
//! every column, and pgvector's vector, halfvec, sparsevec plus bit / varbit.
//!
//! Two tables: `alltypes` (primary key) and `alltypes_full` (no key, REPLICA IDENTITY FULL, so
//! streamed UPDATE/DELETE must find rows by comparing every one of these values). The stream
//! applies changes two ways and both are covered: long runs of inserts (one binary COPY) and of
//! key-preserving updates (a staging table), and single INSERT / UPDATE / DELETE statements.
//! Runs here are 16+ rows, twice the applier's current threshold (`COPY_MIN_ROWS`).

mod support;

use std::collections::BTreeMap;

use support::{InProcess, TestEnv};

const COLUMNS: &str = "i4 int, i2 smallint, num numeric, num_p numeric(40,20), r real, d double precision, b bool,
    t text, vc varchar(10), ch char(5), by bytea, u uuid, j json, jb jsonb,
    dt date, ts timestamp, tstz timestamptz, tstz3 timestamptz(3), iv interval,
    ia int[], ta text[], ra real[], m mood,
    v vector(3), hv halfvec(3), sv sparsevec(5), bt bit(8), vb varbit";

/// Value sets (SQL literals, in `COLUMNS` order). Each is inserted once before the run
/// (copied by the snapshot) and once after streaming started (streamed).
const ROWS: [&str; 4] = [
    // ordinary values
    r#"42, 7, 3.14159, 1.5, 1.5, 2.25, true,
       'hello', 'short', 'ab', '\x0001ff', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', '{"a": [1, 2, {"b": null}]}', '{"k": "v", "n": 1.50}',
       '2024-02-29', '2024-02-29 12:34:56.789012', '2024-02-29 12:34:56.789012+05:30', '2024-02-29 12:34:56.789+00', '1 year 2 mons 3 days 04:05:06.789',
       '{1,2,3}', '{a,"b c",NULL}', '{1.5,-0,NaN}', 'happy',
       '[1,2,3]', '[1.5,2.5,3.5]', '{1:1.5,5:-2}/5', B'10101010', B'101'"#,
    // extremes and oddities
    r#"-2147483648, 32767, 'NaN', -99999999999999999999.99999999999999999999, 'NaN', '-0', false,
       E'ünïcødé ✓ \\ tab\t "quote" ''s\nline 2', '', 'x', '', '00000000-0000-0000-0000-000000000000', '{ "a" :1,  "a": 2 }', '[]',
       'infinity', '-infinity', 'infinity', '-infinity', '-1 days +02:00:00',
       '{{1,2},{3,NULL}}', '{{NULL,x},{"",y}}', '{}', 'sad',
       '[0,-0,3.4e38]', '[65504,-0,0.000061035156]', '{}/5', B'00000000', B''"#,
    // more extremes
    r#"0, -32768, '1234567890123456789012345678901234567890.0123456789012345678901234567890123456789', 0.00000000000000000001, '-Infinity', 'Infinity', true,
       repeat('long ', 2000), 'ten chars!', 'abcde', decode(repeat('00ff', 300), 'hex'), 'ffffffff-ffff-ffff-ffff-ffffffffffff', 'null', '{"nested": {"deep": [true, false, null, 1e100]}}',
       '0044-03-15 BC', '1999-12-31 23:59:59.999999', '1970-01-01 00:00:00+00', '2000-01-01 00:00:00.0005+00', '-178000000 years',
       '[0:2]={7,8,9}', '{"NULL","",NULL}', '{{-1e-45,3.4028235e38}}', 'ok',
       '[1e-7,-1e-7,0.1]', '[0.1,-0.1,1]', '{2:0.5}/5', B'11111111', B'0000000000000000000000000000000000000001'"#,
    // NULL everywhere (but the key)
    "NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
     NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL",
];

/// `INSERT INTO table VALUES (id, ROWS[id % 4])` for each id, consecutively.
fn inserts(table: &str, ids: impl IntoIterator<Item = i64>) -> String {
    ids.into_iter()
        .map(|id| format!("INSERT INTO {table} VALUES ({id}, {});\n", ROWS[row_of(id)]))
        .collect()
}

/// The value set an id is first inserted with.
fn row_of(id: i64) -> usize {
    (id % 4) as usize
}

/// Every column but the key, for `num_nonnulls(..)`.
fn column_names() -> Vec<String> {
    split_top_level(COLUMNS)
        .iter()
        .map(|c| c.split_whitespace().next().unwrap().to_string())
        .collect()
}

/// `SET col = value, ...` for every column, from one of `ROWS`.
fn set_all(row: &str) -> String {
    let names = column_names();
    let values = split_top_level(row);
    assert_eq!(names.len(), values.len(), "ROWS and COLUMNS disagree");
    names
        .iter()
        .zip(&values)
        .map(|(n, v)| format!("{n} = {v}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Split a list of SQL literals at top-level commas (not inside quotes or parentheses).
fn split_top_level(list: &str) -> Vec<String> {
    let (mut out, mut cur, mut quoted, mut depth) = (Vec::new(), String::new(), false, 0);
    let mut chars = list.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\'' if quoted && chars.peek() == Some(&'\'') => {
                cur.push(c);
                cur.push(chars.next().unwrap());
                continue;
            }
            '\\' if quoted => {
                cur.push(c);
                if let Some(n) = chars.next() {
                    cur.push(n);
                }
                continue;
            }
            '\'' => quoted = !quoted,
            '(' if !quoted => depth += 1,
            ')' if !quoted => depth -= 1,
            ',' if !quoted && depth == 0 => {
                out.push(cur.trim().to_string());
                cur.clear();
                continue;
            }
            _ => {}
        }
        cur.push(c);
    }
    out.push(cur.trim().to_string());
    out
}

fn column_types_sql(table: &str) -> String {
    format!(
        "SELECT string_agg(attname || ' ' || format_type(atttypid, atttypmod) || CASE WHEN attnotnull THEN ' NOT NULL' ELSE '' END, ', ' ORDER BY attnum)
           FROM pg_attribute WHERE attrelid = '{table}'::regclass AND attnum > 0 AND NOT attisdropped"
    )
}

async fn unless_run_fails(run: &mut InProcess, wait: impl std::future::Future<Output = ()>) {
    tokio::select! {
        _ = wait => {}
        ended = &mut run.handle => panic!("the pipeline ended while the test waited on it: {ended:?}"),
    }
}

/// Values whose text form is checked explicitly on the target: (column, row index, text).
const EXPECTED_TEXT: [(&str, usize, &str); 22] = [
    ("num", 1, "NaN"),
    ("num_p", 1, "-99999999999999999999.99999999999999999999"),
    (
        "num",
        2,
        "1234567890123456789012345678901234567890.0123456789012345678901234567890123456789",
    ),
    ("num_p", 2, "0.00000000000000000001"),
    ("d", 1, "-0"),
    ("d", 2, "Infinity"),
    ("r", 2, "-Infinity"),
    ("concat(ch, '|')", 1, "x    |"),
    ("dt", 2, "0044-03-15 BC"),
    ("ts", 1, "-infinity"),
    ("iv", 2, "-178000000 years"),
    ("ia", 1, "{{1,2},{3,NULL}}"),
    ("ia", 2, "[0:2]={7,8,9}"),
    ("ta", 1, "{{NULL,x},{\"\",y}}"),
    ("ta", 2, "{\"NULL\",\"\",NULL}"),
    ("j", 1, "{ \"a\" :1,  \"a\": 2 }"),
    ("m", 0, "happy"),
    ("v", 0, "[1,2,3]"),
    ("hv", 1, "[65504,-0,6.1035156e-05]"),
    ("sv", 0, "{1:1.5,5:-2}/5"),
    ("bt", 0, "10101010"),
    ("vb", 1, ""),
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_type_passes_through_snapshot_and_stream_unchanged() {
    let enum_sql = "CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy');";
    // What `alltypes` must hold: id -> index into ROWS.
    let mut model: BTreeMap<i64, usize> = BTreeMap::new();
    let snapshot_ids = 1..=16;
    let env = TestEnv::new(
        "types",
        &format!(
            "{enum_sql}
             CREATE TABLE alltypes (id bigint PRIMARY KEY, {COLUMNS});
             CREATE TABLE alltypes_full (id bigint, {COLUMNS});
             ALTER TABLE alltypes_full REPLICA IDENTITY FULL;
             {}{}{}",
            inserts("alltypes", snapshot_ids.clone()),
            inserts("alltypes_full", snapshot_ids.clone()),
            // Two identical keyless rows.
            inserts("alltypes_full", [40, 40]),
        ),
    );
    model.extend(snapshot_ids.clone().map(|id| (id, row_of(id))));
    // The tool does not create types: the enum exists on the target beforehand.
    env.target.psql(&env.name, enum_sql).unwrap();
    let mut run = env.spawn_run(env.config(&[("public.alltypes", None), ("public.alltypes_full", None)]));
    unless_run_fails(&mut run, env.wait_streaming()).await;

    // The target tables were created with exactly the source's column types.
    for table in ["alltypes", "alltypes_full"] {
        let source_types = env.source_value(&column_types_sql(table));
        assert!(
            source_types.contains("vc character varying(10)") && source_types.contains("hv halfvec(3)"),
            "{source_types}"
        );
        assert_eq!(
            env.target_value(&column_types_sql(table)),
            source_types,
            "{table}: column types differ"
        );
    }
    env.assert_same("alltypes", "id").await;
    env.assert_same("alltypes_full", "t::text").await;
    check_values(&env, &model).await;

    let source = env.source_client().await;
    // The same values through the stream: a run of inserts per table (one COPY each)...
    let copied_ids = 101..=116;
    source
        .batch_execute(&format!(
            "BEGIN; {}{} COMMIT;",
            inserts("alltypes", copied_ids.clone()),
            inserts("alltypes_full", copied_ids.clone())
        ))
        .await
        .unwrap();
    model.extend(copied_ids.clone().map(|id| (id, row_of(id))));
    // ...and single INSERT statements (the tables alternate, so no run forms).
    let single_ids = 201..=204;
    let singles: String = single_ids
        .clone()
        .map(|id| inserts("alltypes", [id]) + &inserts("alltypes_full", [id]))
        .collect();
    source.batch_execute(&singles).await.unwrap();
    model.extend(single_ids.clone().map(|id| (id, row_of(id))));

    // Updates moving every column to the next value set (values -> other values,
    // values -> NULL, NULL -> values). On `alltypes`, 32 consecutive key-preserving updates
    // form a run (staging table); on the keyless table each is matched on all its values.
    let mut updates = String::new();
    for id in snapshot_ids.clone().chain(copied_ids.clone()) {
        let next = (model[&id] + 1) % 4;
        updates.push_str(&format!(
            "UPDATE alltypes SET {} WHERE id = {id};\n",
            set_all(ROWS[next])
        ));
        model.insert(id, next);
    }
    for id in snapshot_ids.clone().chain(copied_ids.clone()) {
        let next = (row_of(id) + 1) % 4;
        updates.push_str(&format!(
            "UPDATE alltypes_full SET {} WHERE id = {id};\n",
            set_all(ROWS[next])
        ));
    }
    source.batch_execute(&updates).await.unwrap();
    // Short runs (single statements), a key change and deletes, on both tables.
    for table in ["alltypes", "alltypes_full"] {
        source
            .batch_execute(&format!(
                "UPDATE {table} SET {} WHERE id = 201;
                 UPDATE {table} SET {} WHERE id = 202;
                 UPDATE {table} SET id = id + 1000 WHERE id IN (3, 103);
                 DELETE FROM {table} WHERE id IN (4, 104, 203);",
                set_all(ROWS[3]),
                set_all(ROWS[0]),
            ))
            .await
            .unwrap();
    }
    model.insert(201, 3);
    model.insert(202, 0);
    for id in [3, 103] {
        let row = model.remove(&id).unwrap();
        model.insert(id + 1000, row);
    }
    for id in [4, 104, 203] {
        model.remove(&id);
    }
    // One of two identical keyless rows goes: exactly one must remain on the target.
    source
        .batch_execute("DELETE FROM alltypes_full WHERE ctid = (SELECT min(ctid) FROM alltypes_full WHERE id = 40)")
        .await
        .unwrap();
    unless_run_fails(&mut run, env.wait_caught_up()).await;

    env.assert_same("alltypes", "id").await;
    env.assert_same("alltypes_full", "t::text").await;
    assert_eq!(
        env.target_value("SELECT count(*) FROM alltypes_full WHERE id = 40"),
        "1"
    );
    assert_eq!(
        env.target_value("SELECT string_agg(id::text, ',' ORDER BY id) FROM alltypes"),
        model.keys().map(|id| id.to_string()).collect::<Vec<_>>().join(",")
    );
    check_values(&env, &model).await;
    let stats = run.apply_stats();
    assert!(stats.inserts.load(std::sync::atomic::Ordering::Relaxed) >= 40);
    assert!(stats.updates.load(std::sync::atomic::Ordering::Relaxed) >= 68);
    assert!(stats.deletes.load(std::sync::atomic::Ordering::Relaxed) >= 7);
    run.stop().await;
}

/// Check `EXPECTED_TEXT` on both sides for every row of `alltypes` that the model says holds
/// that value set, and that the all-NULL rows are NULL in every column.
async fn check_values(env: &TestEnv, model: &BTreeMap<i64, usize>) {
    let (source, target) = (env.source_client().await, env.target_client().await);
    for (column, row, expected) in EXPECTED_TEXT {
        let ids: Vec<i64> = model.iter().filter(|(_, r)| **r == row).map(|(id, _)| *id).collect();
        assert!(!ids.is_empty());
        let sql = format!("SELECT id, ({column})::text FROM alltypes WHERE id = ANY($1) ORDER BY id");
        for (side, client) in [("source", &source), ("target", &target)] {
            let rows = client.query(&sql, &[&ids]).await.unwrap();
            assert_eq!(rows.len(), ids.len(), "{side}: rows {ids:?}");
            for r in rows {
                let (id, value): (i64, Option<String>) = (r.get(0), r.get(1));
                assert_eq!(value.as_deref(), Some(expected), "{side}: {column} of id {id}");
            }
        }
    }
    let nulls: Vec<i64> = model.iter().filter(|(_, r)| **r == 3).map(|(id, _)| *id).collect();
    let sql = format!(
        "SELECT count(*) FROM alltypes WHERE id = ANY($1) AND num_nonnulls({}) = 0",
        column_names().join(", ")
    );
    let count: i64 = target.query_one(&sql, &[&nulls]).await.unwrap().get(0);
    assert_eq!(count as usize, nulls.len(), "all-NULL rows on the target");
    let sql = "SELECT count(*) FROM alltypes WHERE md5(t) = md5(repeat('long ', 2000)) AND id = ANY($1)";
    let long: Vec<i64> = model.iter().filter(|(_, r)| **r == 2).map(|(id, _)| *id).collect();
    let count: i64 = target.query_one(sql, &[&long]).await.unwrap().get(0);
    assert_eq!(count as usize, long.len(), "long text values on the target");
}
