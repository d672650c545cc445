//! The command line (clap): the verbs and their options. `pgvshift --help` is built from the
//! doc comments here.

use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};

#[derive(Parser)]
#[command(
    name = "pgvshift",
    version,
    about = "Move live PostgreSQL tables holding pgvector data with near-zero downtime"
)]
pub struct Cli {
    /// Log format on stderr.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Human)]
    pub log_format: LogFormat,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Clone, Copy, ValueEnum)]
pub enum LogFormat {
    Human,
    Json,
}

#[derive(Subcommand)]
pub enum Command {
    /// Dry run: each table's size, columns (source type -> target type), target DDL, indexes
    /// and blocking problems. Changes nothing.
    Plan {
        #[arg(long, short)]
        config: PathBuf,
    },
    /// Run every preflight check without changing anything: each finding is ok, warning or
    /// blocking, with the object it concerns and the fix. Exit code 1 if any is blocking.
    Check {
        #[arg(long, short)]
        config: PathBuf,
        /// Print JSON: {"findings": [{level, check, object, message, fix}], "blocking": n,
        /// "warnings": n}.
        #[arg(long)]
        json: bool,
        /// Judge non-empty target tables as `run --truncate-target` would.
        #[arg(long)]
        truncate_target: bool,
    },
    /// Check, then snapshot (unless already complete), then stream changes until
    /// SIGINT/SIGTERM. Re-running after any stop resumes from the target's committed progress.
    Run {
        #[arg(long, short)]
        config: PathBuf,
        /// Empty (TRUNCATE) target tables that already hold rows before the copy, and report
        /// how many rows were removed. Without it such tables block the run.
        #[arg(long)]
        truncate_target: bool,
    },
    /// Phase, per-table state, applied and confirmed LSNs, lag.
    Status {
        #[arg(long, short)]
        config: PathBuf,
        /// Print JSON (keys: phase, slot, tables, applied_lsn, confirmed_flush_lsn,
        /// source_current_lsn, lag_bytes, seconds_since_last_applied_commit, slot_active, lag_seconds,
        /// retained_wal_bytes, wal_status, snapshot_age_secs).
        #[arg(long)]
        json: bool,
    },
    /// Drop the slot and the publication pgvshift created, and its state on the target.
    /// Leaves user data alone.
    Cleanup {
        #[arg(long, short)]
        config: PathBuf,
        /// Do it without asking.
        #[arg(long)]
        yes: bool,
    },
    // --- verify and cutover (src/verify/, src/cutover/) ---
    /// Compare the target with the source row by row, after each table's profile translation,
    /// while `run` streams (differing rows are re-checked once the target has caught up).
    /// Names the first differing keys (never values). Exit code 1 when they differ.
    Verify {
        #[arg(long, short)]
        config: PathBuf,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
        /// Compare about P percent of each table's rows (at least 1000 per table) instead of all.
        #[arg(long, value_name = "P")]
        sample: Option<f64>,
        /// Also run Q top-K queries (vectors sampled from the source) on both sides and report the
        /// target's recall@K against exact search on the source, e.g. --ann 10,50.
        #[arg(long, value_name = "K,Q")]
        ann: Option<String>,
        /// Differing keys named per table.
        #[arg(long, default_value_t = 10)]
        max_keys: usize,
        /// Rows per primary-key range read at a time (bounds memory).
        #[arg(long, default_value_t = 1000)]
        chunk_rows: usize,
    },
    /// Switch over: wait for low lag and built indexes, fence writes on the source tables, wait
    /// until the target has applied everything, copy sequences, verify, then say "switch the
    /// application now". Needs `pgvshift run` streaming. Any failure lifts the fence.
    Cutover {
        #[arg(long, short)]
        config: PathBuf,
        /// Show each step and the current state, change nothing.
        #[arg(long)]
        dry_run: bool,
        /// Print the report as JSON (at the end).
        #[arg(long)]
        json: bool,
        /// After the switch: wait for `pgvshift run` to be stopped, then drop the slot, the
        /// publication and pgvshift's state (as `cleanup --yes`).
        #[arg(long)]
        drop_slot: bool,
    },
    // --- end verify and cutover ---
    /// Measure snapshot and streaming throughput against baselines run on the same throwaway
    /// clusters (psql COPY binary pipe; native logical replication).
    Bench {
        /// Rows in the table (and inserts + updates in the streaming workload).
        #[arg(long, default_value_t = 100_000)]
        rows: u32,
        /// Vector dimensions.
        #[arg(long, default_value_t = 768)]
        dims: u32,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
    },
    /// LangChain mode helpers: `list` the collections, build the collection tables' `indexes`.
    Langchain {
        #[command(subcommand)]
        command: crate::langchain::commands::Command,
    },
    /// Start throwaway source and target clusters with demo data, migrate live, verify, clean up.
    Demo {
        /// Rows of demo data (768-dim vectors).
        #[arg(long, default_value_t = 3000)]
        rows: u32,
    },
}
