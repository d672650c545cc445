//! pgvshift: move live PostgreSQL tables holding pgvector data to a new home with near-zero
//! downtime. See docs/architecture.md for the flow and the invariants.

pub mod apply;
pub mod bench;
pub mod catalog;
pub mod check;
pub mod commands;
pub mod config;
pub mod connect_error;
pub mod copy;
pub mod copyframe;
// `cutover` (fence, catch-up, sequences, final verify).
pub mod cutover;
pub mod demo;
pub mod error;
pub mod indexdef;
pub mod langchain;
pub mod localpg;
pub mod lsn;
pub mod mapping;
pub mod metrics;
pub mod pg;
pub mod pgoutput;
pub mod profile;
pub mod progress;
pub mod replication;
pub mod retry;
pub mod run;
pub mod schema;
pub mod sql;
pub mod state;
pub mod stream;
pub mod tls;
pub mod translate;
// `verify` (row-by-row comparison, ANN recall).
pub mod verify;
pub mod walguard;

pub use lsn::Lsn;
