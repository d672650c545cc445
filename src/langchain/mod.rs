//! LangChain mode (`[langchain]` in the config): the two shared tables of LangChain's PGVector
//! store (`langchain_pg_collection`, `langchain_pg_embedding`) become one table per collection
//! on the target, in the layout of `PGVectorStore` / `AlloyDBVectorStore`
//! (`init_vectorstore_table`), live: the snapshot and the stream route every row by its
//! `collection_id`. See docs/langchain.md for the user's side.
//!
//! ```text
//!   config     [langchain] section                          (config.rs)
//!   check      layout, ids, metadata casts, target tables    (check.rs, layout.rs)
//!   snapshot   one COPY out of langchain_pg_embedding, rows routed to per-collection COPYs
//!              on N target connections, routes recorded     (snapshot.rs)
//!   stream     Router: changes -> ops the applier runs in its batch transaction (stream.rs)
//!   pure       table names (names.rs), metadata casts (metadata.rs), row transform
//!              (transform.rs), DDL (ddl.rs)
//!   state      pgvshift.langchain*, routing table and SQL functions (state.rs)
//! ```
//!
//! Routing: a delete's old row carries only the key, and an update's new row does not say in
//! which collection the row was before. `pgvshift.langchain_routes` (key -> collection) is kept
//! on the target in the same transaction as the data, and two SQL functions use it
//! (`langchain_delete`, `langchain_place`), so the applier never waits for an answer: every
//! statement stays pipelined.

pub mod check;
pub mod commands;
pub mod config;
pub mod ddl;
pub mod layout;
pub mod metadata;
pub mod names;
pub mod snapshot;
pub mod state;
pub mod stream;
pub mod transform;
