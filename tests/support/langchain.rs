//! LangChain's two tables as LangChain creates them, and per-collection comparisons of the
//! source with the collection tables on the target.
#![allow(dead_code)]

use super::TestEnv;

/// `langchain_postgres.PGVector` (0.0.17) with `embedding_length = dims`: the DDL SQLAlchemy
/// emits for its models (types, FK ON DELETE CASCADE, the GIN index on cmetadata).
pub fn langchain_postgres_sql(dims: usize) -> String {
    format!(
        "CREATE TABLE langchain_pg_collection (
             uuid UUID NOT NULL,
             name VARCHAR NOT NULL,
             cmetadata JSON,
             PRIMARY KEY (uuid),
             UNIQUE (name)
         );
         CREATE TABLE langchain_pg_embedding (
             id VARCHAR NOT NULL,
             collection_id UUID,
             embedding VECTOR({dims}),
             document VARCHAR,
             cmetadata JSONB,
             PRIMARY KEY (id),
             FOREIGN KEY(collection_id) REFERENCES langchain_pg_collection (uuid) ON DELETE CASCADE
         );
         CREATE INDEX ix_cmetadata_gin ON langchain_pg_embedding USING gin (cmetadata jsonb_path_ops);"
    )
}

/// The legacy `langchain_community` PGVector (`use_jsonb = False`, untyped `vector`).
pub fn langchain_community_sql() -> String {
    "CREATE TABLE langchain_pg_collection (
         uuid UUID NOT NULL,
         name VARCHAR,
         cmetadata JSON,
         PRIMARY KEY (uuid)
     );
     CREATE TABLE langchain_pg_embedding (
         uuid UUID NOT NULL,
         collection_id UUID,
         embedding VECTOR,
         document VARCHAR,
         cmetadata JSON,
         custom_id VARCHAR,
         PRIMARY KEY (uuid),
         FOREIGN KEY(collection_id) REFERENCES langchain_pg_collection (uuid) ON DELETE CASCADE
     );"
    .to_string()
}

/// A deterministic `vector(dims)` literal from an SQL integer expression.
pub fn vector_sql(dims: usize, seed: &str) -> String {
    format!("(SELECT array_agg((({seed}) * 31 + i) % 997 / 997.0)::real[] FROM generate_series(1, {dims}) i)::vector")
}

/// A config file with this `[langchain]` section body.
pub fn write_config(env: &TestEnv, langchain: &str) -> std::path::PathBuf {
    env.write_config(&[], &format!("[langchain]\n{langchain}\n"))
}

/// What both sides must agree on for one collection: (rows, md5 over id, content, embedding,
/// each typed key, the JSON rest), with `typed` = the metadata keys that have typed columns.
pub async fn source_fingerprint(env: &TestEnv, collection: &str, typed: &[&str], id: &str) -> (i64, String) {
    source_fingerprint_as(env, collection, typed, id, "e.embedding::text").await
}

/// Like [`source_fingerprint`], with the embedding's text from `embedding` (e.g.
/// `e.embedding::halfvec::text` to compare with a halfvec target).
pub async fn source_fingerprint_as(
    env: &TestEnv,
    collection: &str,
    typed: &[&str],
    id: &str,
    embedding: &str,
) -> (i64, String) {
    let keys: Vec<String> = typed.iter().map(|k| format!("e.cmetadata->>'{k}'")).collect();
    let minus: String = typed.iter().map(|k| format!(" - '{k}'")).collect();
    let sql = format!(
        "SELECT count(*), coalesce(md5(string_agg(concat_ws('|', {id}, e.document, {embedding}, {keys}, (e.cmetadata::jsonb{minus})::text), '#' ORDER BY {id})), '')
           FROM langchain_pg_embedding e JOIN langchain_pg_collection c ON c.uuid = e.collection_id WHERE c.name = $1",
        keys = if keys.is_empty() { "NULL".to_string() } else { keys.join(", ") },
    );
    let row = env.source_client().await.query_one(&sql, &[&collection]).await.unwrap();
    (row.get(0), row.get(1))
}

pub async fn target_fingerprint(env: &TestEnv, table: &str, typed: &[(&str, &str)]) -> (i64, String) {
    // typed: (column, SQL turning it into the text ->> gives on the source)
    let keys: Vec<String> = typed.iter().map(|(_, expr)| expr.to_string()).collect();
    let sql = format!(
        "SELECT count(*), coalesce(md5(string_agg(concat_ws('|', langchain_id::text, content, embedding::text, {keys}, langchain_metadata::jsonb::text), '#' ORDER BY langchain_id::text)), '') FROM {table}",
        keys = if keys.is_empty() { "NULL".to_string() } else { keys.join(", ") },
    );
    let row = env.target_client().await.query_one(&sql, &[]).await.unwrap();
    (row.get(0), row.get(1))
}
