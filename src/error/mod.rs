//! Errors: the library's [`Error`] (one variant per kind of failure, each mapped to an exit
//! code), what counts as a lost connection, and how `run` reconnects.
//!
//! ```text
//!   types.rs    Error, Result, DbContext (.db(|| "what we were doing")), describe()
//!   connect.rs  a connection that could not be opened ──> one line: cause and fix
//!   retry.rs    after a lost connection: backoff, the outage clock, the messages
//! ```
//!
//! # Error handling
//! [`Error::is_transient`] says whether reconnecting can help (a lost or refused connection,
//! a server shutting down); `run` retries only those, for at most
//! `replication.max_retry_duration_secs`. Everything else ends the command with its exit code.

pub mod connect;
pub mod retry;
mod types;

pub use types::{describe, transient_sqlstate, DbContext, Error, Result, SNAPSHOT_SESSION_LOST, SOURCE_ENDED_STREAM};
