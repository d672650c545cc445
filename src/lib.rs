//! pgvshift: move live PostgreSQL tables holding pgvector data to a new home with near-zero
//! downtime. See docs/architecture.md for the flow and the invariants.

pub mod config;
pub mod localpg;
pub mod lsn;
pub mod pgoutput;
pub mod sql;

pub use lsn::Lsn;
