//! `pgvshift verify`: compare the target with the source row by row after each table's
//! profile translation, while `run` streams, and optionally measure ANN recall.
//!
//! ```text
//!   compare.rs  the passes: key ranges (or a sample), differing keys re-checked once the target
//!               has caught up, the report
//!   keys.rs     PURE: the SQL that reads a key range, a sample or given keys on either side
//!   values.rs   PURE: one value compared after translation (through translate's codecs)
//!   ann.rs      recall@K of the target's vector indexes against exact search on the source
//! ```

pub mod ann;
mod compare;
pub mod keys;
pub mod values;

pub use compare::{
    failure, parse_ann, render, verify, verify_at, Consistency, KeyDiff, Options, Report, TableReport, CANDIDATE_CAP,
    RECHECK_ROUNDS, SAMPLE_MIN_ROWS,
};
