//! Source: the connections to the servers and what the source's replication machinery says.
//!
//! ```text
//!   connect.rs      SQL connections (tokio-postgres, TLS from tls.rs), RawValue (bytes as sent)
//!   replication.rs  the replication connection: START_REPLICATION, keepalives, confirm(lsn)
//!   pgoutput.rs     PURE: pgoutput message bytes ──> Begin / Relation / Insert / ... / Commit
//!   copyframe.rs    PURE: COPY binary chunks ──> tuples ──> (converted) COPY binary
//!   slot.rs         the slot and the WAL position: every pg_replication_slots /
//!                   pg_current_wal_* probe, drop_slot
//!   walguard.rs     while run is up: retained WAL (warn, stop), an invalidated slot
//! ```
//!
//! The pure decoders do no I/O (like `postgres-protocol`'s `Message::parse`); the sockets are
//! in connect.rs and replication.rs.

mod connect;
pub mod copyframe;
pub mod pgoutput;
pub mod replication;
pub mod slot;
pub mod tls;
pub mod walguard;

pub use connect::{connect, connect_url, RawValue};
