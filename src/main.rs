//! The `pgvshift` binary: parse the command line, set up logging, run a verb, map its error to
//! an exit code (0 ok, 1 blocking problem found, 2 bad usage or config, 3 runtime error).

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Parser, Subcommand, ValueEnum};
use tokio::sync::watch;

use pgvshift::config::Config;
use pgvshift::error::Error;

#[derive(Parser)]
#[command(
    name = "pgvshift",
    version,
    about = "Move live PostgreSQL tables holding pgvector data with near-zero downtime"
)]
struct Cli {
    /// Log format on stderr.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Human)]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, ValueEnum)]
enum LogFormat {
    Human,
    Json,
}

#[derive(Subcommand)]
enum Command {
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
    // --- verify and cutover (src/verify.rs, src/cutover.rs) ---
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
        command: pgvshift::langchain::commands::Command,
    },
    /// Start throwaway source and target clusters with demo data, migrate live, verify, clean up.
    Demo {
        /// Rows of demo data (768-dim vectors).
        #[arg(long, default_value_t = 3000)]
        rows: u32,
    },
}

fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("PGVSHIFT_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,pgwire_replication=warn"));
    // Colours only on a terminal: log files and pipes get plain text.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(|| BarAwareStderr(Vec::new()));
    match format {
        LogFormat::Human => builder.with_target(false).init(),
        LogFormat::Json => builder.json().init(),
    }
}

/// One log event for stderr, written when dropped with the snapshot's progress bars (if any)
/// cleared, so log lines appear above the bars instead of through them.
struct BarAwareStderr(Vec<u8>);

impl std::io::Write for BarAwareStderr {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for BarAwareStderr {
    fn drop(&mut self) {
        if !self.0.is_empty() {
            let event = std::mem::take(&mut self.0);
            pgvshift::observe::progress::suspend_bars(|| {
                let _ = std::io::stderr().write_all(&event);
            });
        }
    }
}

/// SIGINT or SIGTERM flips the returned channel to true.
fn stop_on_signals() -> watch::Receiver<bool> {
    let (tx, rx) = watch::channel(false);
    tokio::spawn(async move {
        use tokio::signal::unix::{signal, SignalKind};
        let (Ok(mut term), Ok(mut int)) = (signal(SignalKind::terminate()), signal(SignalKind::interrupt())) else {
            return;
        };
        tokio::select! {
            _ = term.recv() => tracing::info!("SIGTERM received"),
            _ = int.recv() => tracing::info!("SIGINT received"),
        }
        let _ = tx.send(true);
    });
    rx
}

async fn dispatch(command: Command, log_format: LogFormat) -> Result<(), Error> {
    let load = |p: &PathBuf| Config::load(p).map_err(Error::from);
    match command {
        Command::Plan { config } => {
            let config = load(&config)?;
            print!("{}", pgvshift::cli::commands::plan(&config).await?);
        }
        Command::Check {
            config,
            json,
            truncate_target,
        } => {
            let config = load(&config)?;
            let findings = pgvshift::check::check(&config, pgvshift::check::Options { truncate_target }).await?;
            let count = |l| findings.iter().filter(|f| f.level == l).count();
            let blocking = count(pgvshift::check::Level::Blocking);
            if json {
                let report = serde_json::json!({
                    "findings": findings,
                    "blocking": blocking,
                    "warnings": count(pgvshift::check::Level::Warning),
                });
                println!("{}", serde_json::to_string_pretty(&report).expect("report serializes"));
            } else {
                print!("{}", pgvshift::check::render(&findings));
            }
            if blocking > 0 {
                return Err(Error::CheckFailed(blocking));
            }
        }
        Command::Run {
            config,
            truncate_target,
        } => {
            let config = load(&config)?;
            let stop = stop_on_signals();
            let opts = pgvshift::check::Options { truncate_target };
            let stats = Arc::new(pgvshift::observe::stats::RunStats::default());
            let display = if matches!(log_format, LogFormat::Human) && std::io::stderr().is_terminal() {
                pgvshift::observe::progress::Display::Bars
            } else {
                pgvshift::observe::progress::Display::Lines
            };
            let progress = pgvshift::observe::progress::spawn(stats.copy.clone(), display);
            let result = pgvshift::run::run_with(&config, opts, stop, stats).await;
            progress.abort();
            result?;
        }
        Command::Status { config, json } => {
            let config = load(&config)?;
            let status = pgvshift::cli::commands::status(&config).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&status).expect("status serializes"));
            } else {
                print!("{}", pgvshift::cli::commands::render_status(&status));
            }
        }
        Command::Cleanup { config, yes } => {
            let config = load(&config)?;
            for action in pgvshift::run::cleanup(&config, yes).await? {
                println!("{action}");
            }
        }
        // --- verify and cutover ---
        Command::Verify {
            config,
            json,
            sample,
            ann,
            max_keys,
            chunk_rows,
        } => {
            if let Some(p) = sample.filter(|p| !(*p > 0.0 && *p <= 100.0)) {
                return Err(Error::Usage(format!(
                    "--sample {p}: give a percentage above 0 and at most 100"
                )));
            }
            let ann = ann
                .as_deref()
                .map(pgvshift::verify::parse_ann)
                .transpose()
                .map_err(Error::Usage)?;
            let config = load(&config)?;
            let opts = pgvshift::verify::Options {
                sample_percent: sample,
                ann,
                max_keys,
                chunk_rows: chunk_rows.max(1),
                ..Default::default()
            };
            let report = pgvshift::verify::verify(&config, &opts).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&report).expect("report serializes"));
            } else {
                print!("{}", pgvshift::verify::render(&report));
            }
            if let Some(e) = pgvshift::verify::failure(&report) {
                return Err(e);
            }
        }
        Command::Cutover {
            config,
            dry_run,
            json,
            drop_slot,
        } => {
            let config = load(&config)?;
            let opts = pgvshift::cutover::Options {
                dry_run,
                json,
                drop_slot,
            };
            pgvshift::cutover::cutover(&config, &opts, stop_on_signals()).await?;
        }
        // --- end verify and cutover ---
        Command::Bench { rows, dims, json } => {
            let report = pgvshift::cli::bench::bench(rows, dims).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&report).expect("report serializes"));
            } else {
                print!("{}", report.render());
            }
        }
        Command::Langchain { command } => print!("{}", pgvshift::langchain::commands::run(command).await?),
        Command::Demo { rows } => {
            let stop = stop_on_signals();
            pgvshift::cli::demo::demo(rows, stop).await?;
        }
    }
    Ok(())
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.log_format);
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(3);
        }
    };
    match runtime.block_on(dispatch(cli.command, cli.log_format)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(e.exit_code() as u8)
        }
    }
}
