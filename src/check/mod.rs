//! Preflight checks (`pgvshift check`, and the first thing `run` and `plan` do): read both
//! catalogs and servers, change nothing, and report each finding as ok / warning / blocking
//! with the object it concerns and the exact fix.
//!
//! ```text
//!   connect source, target ──> servers (wal_level, slots, wal senders, same database?)
//!     ──> source role (REPLICATION, SELECT, ownership for the publication / replica identity)
//!     ──> tables (exist? replica identity, column types, mapping)
//!     ──> target (privileges, pgvector and types, existing tables: columns, types, rows)
//!     ──> slot and publication (ours? invalidated?) and this slot's progress on the target
//! ```
//!
//! One file per topic: `finding.rs` (the result type and the report), `preflight.rs` (the order
//! of the checks and what `run` gets back), `servers.rs`, `source_tables.rs`, `target.rs`,
//! `slot.rs` (slot, publication, progress) and `langchain.rs` (LangChain mode's tables).

mod finding;
mod langchain;
mod preflight;
mod servers;
mod slot;
mod source_tables;
mod target;

pub use finding::{render, Finding, Level};
pub use preflight::{check, preflight, preflight_on, Inspection, Mode, Options, Preflight};
pub use slot::publication_tables;
pub use source_tables::closest;
pub use target::{count_rows, target_table_state, TargetTableState};
