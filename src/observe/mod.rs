//! Observe: what a run shares with people and monitoring while it works.
//!
//! ```text
//!   stats.rs     RunStats (phase, copy progress, apply counters, WAL guard): written by the
//!                pipeline, read by everything below
//!   metrics.rs   /metrics (Prometheus text) and /healthz, built from RunStats per scrape
//!   progress.rs  snapshot progress: bars on a terminal, log lines otherwise
//! ```

pub mod metrics;
pub mod progress;
pub mod stats;
