//! `pgvshift run`: snapshot (if it has not completed), then stream until stopped.
//!
//! ```text
//!   check::preflight (read-only; any blocking finding -> exit 1, nothing changed)
//!        ──> progress row on target?
//!        none ────────────> snapshot
//!        phase=snapshot ──> "previous snapshot did not complete": drop slot, empty tables -> snapshot
//!        phase=streaming ─> stream from applied_lsn
//!   snapshot: publication -> progress row (phase=snapshot) -> slot + exported snapshot
//!             -> target tables -> COPY (binary) per table -> indexes -> phase=streaming
//!
//!   connection lost after the checks (Error::is_transient) ──> wait (backoff, crate::error::retry)
//!        -> connect source + target -> checks again -> the same three cases: an interrupted
//!           snapshot starts over, a stream resumes from the target's applied_lsn
//!   no connection for replication.max_retry_duration_secs ──> give up (exit code 3)
//!   retained WAL past max_retained_wal (crate::source::walguard) ──> stop, never retried
//! ```
//!
//! `execute.rs` is the loop (checks, snapshot or stream, reconnect), `snapshot.rs` the
//! snapshot, `cleanup.rs` what `pgvshift cleanup` undoes.

mod cleanup;
mod execute;
mod snapshot;

pub use cleanup::cleanup;
pub use execute::{run, run_with, SOURCE_LOCK_TIMEOUT};
