//! `pgvshift cutover`: switch the application from the source to the target with a short,
//! bounded write pause, while `pgvshift run` keeps streaming.
//!
//! ```text
//!  checks   a streaming `run` (slot active, phase streaming), privileges for the fence and
//!           the sequences                                         (nothing fenced yet)
//!  (a) lag    wait until source WAL insert position - target applied_lsn <= max_lag
//!  (b) index  wait until every planned target index exists and is valid
//!      prep   create missing target sequences (and their column default on tables pgvshift
//!             created)                                            (nothing fenced yet)
//!  (c) fence  own source session: BEGIN; LOCK TABLE <tables> IN SHARE MODE   (lock_timeout)
//!  (d) F      = WAL insert position once the locks are held; wait target applied_lsn >= F
//!  (e) seqs   setval(target seq, source last_value, is_called)   (never moves one backwards)
//!  (f) verify the final comparison at F (exact: nothing changes on either side)
//!  (g)        print the write pause and "switch the application now"; hold the fence
//!             hold_fence_secs (or until SIGINT/SIGTERM); COMMIT = lift the fence
//!  (h)        --drop-slot: wait until `run` is stopped, then `cleanup` (slot, publication)
//!  any failure or timeout in (c)-(f) -> lift the fence (ROLLBACK), streaming goes on, exit 1
//! ```
//!
//! Why a session-held `SHARE` lock: it blocks INSERT/UPDATE/DELETE/TRUNCATE from every role
//! (superusers and owners included; a trigger or a REVOKE does not stop them), lets reads go
//! on, and dies with the session: a killed pgvshift (even `kill -9`) closes its connection and
//! the server releases the fence at once; a vanished host is covered by the session's
//! `idle_in_transaction_session_timeout`. A trigger or a REVOKE would outlive a crashed
//! pgvshift and leave the source fenced. The price: writers wait (they queue behind the lock)
//! instead of failing fast, and the lock is only granted once the write transactions already
//! running on those tables have finished (bounded by `lock_timeout_secs`).
//!
//! `steps.rs` runs the steps and reports them, `fence.rs` holds the fence, `sequences.rs`
//! carries the sequences over.

mod fence;
mod sequences;
mod steps;

pub use fence::{fence_application_name, fence_idle_timeout, fence_sql};
pub use sequences::{needs_setval, SequenceCopy};
pub use steps::{cutover, Options, Report, StepReport};
