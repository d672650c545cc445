//! pgvshift: move live PostgreSQL tables holding pgvector data to a new home with near-zero
//! downtime. See docs/architecture.md for the flow and the invariants.

pub mod apply;
pub mod check;
pub mod cli;
pub mod config;
pub mod cutover;
pub mod error;
pub mod langchain;
pub mod lsn;
pub mod observe;
pub mod run;
pub mod schema;
pub mod source;
pub mod sql;
// The throwaway-cluster harness: public only with the `testkit` feature (integration tests);
// otherwise crate-internal for `demo` and `bench`, which do not use all of it.
#[cfg(feature = "testkit")]
pub mod testkit;
#[cfg(not(feature = "testkit"))]
#[allow(dead_code)]
mod testkit;
pub mod translate;
pub mod verify;

pub use lsn::Lsn;
