//! The counters a run shares with its observers (`/metrics`, `/healthz`, the progress display,
//! the demo, tests): written by the copy, the applier and the WAL guard, read by anyone.

use std::sync::atomic::{AtomicI64, AtomicU64, AtomicU8, Ordering};
use std::sync::Arc;

use super::metrics::{BatchLatency, ChangeCounters};
use crate::source::walguard::WalStats;

/// Shared counters a caller (the demo, tests) can watch.
#[derive(Debug, Default)]
pub struct RunStats {
    pub copy: Arc<CopyProgress>,
    pub apply: Arc<ApplyStats>,
    pub wal: Arc<WalStats>,
    /// Times both connections were established again after a lost one (the run went on).
    pub reconnects: AtomicU64,
    /// What the run is doing now ([`Phase`] as u8), for `/healthz` and `/metrics`.
    phase: AtomicU8,
}

/// What a run is doing, as `/healthz` reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    Checks,
    Snapshot,
    Streaming,
    Reconnecting,
    Stopped,
}

impl Phase {
    pub fn name(self) -> &'static str {
        match self {
            Phase::Checks => "checks",
            Phase::Snapshot => "snapshot",
            Phase::Streaming => "streaming",
            Phase::Reconnecting => "reconnecting",
            Phase::Stopped => "stopped",
        }
    }
}

impl RunStats {
    pub fn phase(&self) -> Phase {
        match self.phase.load(Ordering::Relaxed) {
            1 => Phase::Snapshot,
            2 => Phase::Streaming,
            3 => Phase::Reconnecting,
            4 => Phase::Stopped,
            _ => Phase::Checks,
        }
    }

    pub fn set_phase(&self, phase: Phase) {
        let v = match phase {
            Phase::Checks => 0,
            Phase::Snapshot => 1,
            Phase::Streaming => 2,
            Phase::Reconnecting => 3,
            Phase::Stopped => 4,
        };
        self.phase.store(v, Ordering::Relaxed);
    }
}

/// Counters of applied changes (read by `demo` and logs).
#[derive(Debug, Default)]
pub struct ApplyStats {
    pub inserts: AtomicU64,
    pub updates: AtomicU64,
    pub deletes: AtomicU64,
    pub truncates: AtomicU64,
    pub transactions: AtomicU64,
    pub skipped_transactions: AtomicU64,
    /// The position the target has committed (`pgvshift.progress.applied_lsn`, as an
    /// [`Lsn`](crate::Lsn)'s u64): where a new stream would resume. 0 until a stream has started.
    pub applied_lsn: AtomicU64,
    /// Target commits of changes or idle positions (a sign that streaming works).
    pub target_commits: AtomicU64,
    /// Source commit time (µs since the Unix epoch) of the last transaction committed on the
    /// target; 0 before the first.
    pub last_commit_micros: AtomicI64,
    /// Changes applied, by target table and kind (insert, update, delete, truncate).
    pub by_table: ChangeCounters,
    /// Seconds from opening a target transaction to its COMMIT (one batch).
    pub batch_seconds: BatchLatency,
}

/// Live counters, readable while the copy runs.
#[derive(Debug, Default)]
pub struct CopyProgress {
    pub bytes: AtomicU64,
    pub tables_done: AtomicU64,
    pub rows: AtomicU64,
    /// Per table, for progress bars and log lines (reset when a snapshot starts).
    pub tables: std::sync::Mutex<Vec<TableProgress>>,
}

/// One table's copy as the progress display sees it.
#[derive(Debug, Clone)]
pub struct TableProgress {
    pub name: String,
    /// Planner estimates (reltuples, heap + TOAST size): the ETA's basis.
    pub estimated_rows: i64,
    pub estimated_bytes: i64,
    /// COPY bytes read from the source so far.
    pub bytes: u64,
    /// Exact, once the table's copy has committed.
    pub rows: Option<u64>,
    pub started: Option<std::time::Instant>,
    pub finished: Option<std::time::Instant>,
}

impl CopyProgress {
    /// Start over with these tables (a snapshot starts).
    pub(crate) fn register(&self, list: Vec<TableProgress>) {
        *self.tables.lock().unwrap_or_else(|e| e.into_inner()) = list;
    }

    pub(crate) fn update(&self, name: &str, f: impl FnOnce(&mut TableProgress)) {
        let mut tables = self.tables.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(t) = tables.iter_mut().find(|t| t.name == name) {
            f(t);
        }
    }
}
