//! pgvshift: move live PostgreSQL tables holding pgvector data to a new home with near-zero
//! downtime. See docs/architecture.md for the flow and the invariants.
//!
//! The modules are the stages of the pipeline, each a folder whose `mod.rs` documents it:
//!
//! ```text
//!   cli ─> check (preflight, read-only) ─> run
//!     run, snapshot:  source COPY ─> translate ─> apply::copy ─> target, progress in the same commit
//!     run, stream:    source::replication ─> source::pgoutput ─> apply::stream ─> apply::Applier
//!                     ─> target, progress in the same commit ─> confirm the LSN to the source
//!   cli ─> verify, cutover, run::cleanup           observe: stats, /metrics, progress bars
//!
//!   layers: cli ─> run / cutover / verify ─> check ─> apply ─> observe ─> source
//!           ─> schema ─> translate ─> error ─> config ─> sql
//!   langchain: LangChain mode (one table per collection), hooked into config, check, apply, run
//!   testkit:   throwaway clusters for demo, bench and the tests (public with `testkit`)
//! ```
//!
//! Dependencies point down that picture: a stage uses the ones below it, never one above
//! (the LangChain hooks in config, check, apply and run are the exception still to remove).

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
