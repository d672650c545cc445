//! Apply: everything that writes to the target, and the progress that commits with it.
//!
//! ```text
//!   # Snapshot (copy.rs)
//!   worker 1..N: source COPY (binary) under the exported snapshot ──> transcode (translate)
//!                ──> target COPY FROM STDIN + pgvshift.tables state, one transaction per table
//!
//!   # Replication (stream.rs drives applier.rs)
//!   slot events ──> Applier::begin / handle / commit ──> batch of whole source transactions
//!                ──> flush: target COMMIT with the progress row ──> confirm the LSN to the source
//!
//!   # Progress (state.rs)
//!   pgvshift.progress / pgvshift.tables on the target: phase, applied_lsn, per-table state
//! ```
//!
//! # Exactly once
//! `applied_lsn` moves in the same target transaction as the changes it covers, and the source
//! is told an LSN only after that transaction committed; a restart resumes from it and skips
//! what was already applied (invariant 2 in docs/architecture.md).

mod applier;
pub mod copy;
pub mod state;
pub mod stream;

pub(crate) use applier::copy_binary;
pub use applier::{delete_sql, insert_sql, update_sql, Applier, TargetTable, MAX_IN_FLIGHT};
