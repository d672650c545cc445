//! The `pgvshift` binary: parse the command line, set up logging, run a verb, map its error to
//! an exit code (0 ok, 1 blocking problem found, 2 bad usage or config, 3 runtime error).

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
        /// source_current_lsn, lag_bytes, seconds_since_last_applied_commit, slot_active,
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
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Human => builder.with_target(false).init(),
        LogFormat::Json => builder.json().init(),
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

async fn dispatch(command: Command) -> Result<(), Error> {
    let load = |p: &PathBuf| Config::load(p).map_err(Error::from);
    match command {
        Command::Plan { config } => {
            let config = load(&config)?;
            print!("{}", pgvshift::commands::plan(&config).await?);
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
            pgvshift::run::run_with(&config, opts, stop, Arc::default()).await?;
        }
        Command::Status { config, json } => {
            let config = load(&config)?;
            let status = pgvshift::commands::status(&config).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&status).expect("status serializes"));
            } else {
                print!("{}", pgvshift::commands::render_status(&status));
            }
        }
        Command::Cleanup { config, yes } => {
            let config = load(&config)?;
            for action in pgvshift::commands::cleanup(&config, yes).await? {
                println!("{action}");
            }
        }
        Command::Bench { rows, dims, json } => {
            let report = pgvshift::bench::bench(rows, dims).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&report).expect("report serializes"));
            } else {
                print!("{}", report.render());
            }
        }
        Command::Langchain { command } => print!("{}", pgvshift::langchain::commands::run(command).await?),
        Command::Demo { rows } => {
            let stop = stop_on_signals();
            pgvshift::demo::demo(rows, stop).await?;
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
    match runtime.block_on(dispatch(cli.command)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(e.exit_code() as u8)
        }
    }
}
