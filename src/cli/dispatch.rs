//! From a parsed command line to a verb's result and the process's exit code.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::Parser;
use tokio::sync::watch;

use super::args::{Cli, Command, LogFormat};
use super::logging::init_logging;
use crate::config::Config;
use crate::error::Error;

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
            print!("{}", crate::cli::commands::plan(&config).await?);
        }
        Command::Check {
            config,
            json,
            truncate_target,
        } => {
            let config = load(&config)?;
            let findings = crate::check::check(&config, crate::check::Options { truncate_target }).await?;
            let count = |l| findings.iter().filter(|f| f.level == l).count();
            let blocking = count(crate::check::Level::Blocking);
            if json {
                let report = serde_json::json!({
                    "findings": findings,
                    "blocking": blocking,
                    "warnings": count(crate::check::Level::Warning),
                });
                println!("{}", serde_json::to_string_pretty(&report).expect("report serializes"));
            } else {
                print!("{}", crate::check::render(&findings));
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
            let opts = crate::check::Options { truncate_target };
            let stats = Arc::new(crate::observe::stats::RunStats::default());
            let display = if matches!(log_format, LogFormat::Human) && std::io::stderr().is_terminal() {
                crate::observe::progress::Display::Bars
            } else {
                crate::observe::progress::Display::Lines
            };
            let progress = crate::observe::progress::spawn(stats.copy.clone(), display);
            let result = crate::run::run_with(&config, opts, stop, stats).await;
            progress.abort();
            result?;
        }
        Command::Status { config, json } => {
            let config = load(&config)?;
            let status = crate::cli::commands::status(&config).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&status).expect("status serializes"));
            } else {
                print!("{}", crate::cli::commands::render_status(&status));
            }
        }
        Command::Cleanup { config, yes } => {
            let config = load(&config)?;
            for action in crate::run::cleanup(&config, yes).await? {
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
                .map(crate::verify::parse_ann)
                .transpose()
                .map_err(Error::Usage)?;
            let config = load(&config)?;
            let opts = crate::verify::Options {
                sample_percent: sample,
                ann,
                max_keys,
                chunk_rows: chunk_rows.max(1),
                ..Default::default()
            };
            let report = crate::verify::verify(&config, &opts).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&report).expect("report serializes"));
            } else {
                print!("{}", crate::verify::render(&report));
            }
            if let Some(e) = crate::verify::failure(&report) {
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
            let opts = crate::cutover::Options {
                dry_run,
                json,
                drop_slot,
            };
            crate::cutover::cutover(&config, &opts, stop_on_signals()).await?;
        }
        // --- end verify and cutover ---
        Command::Bench { rows, dims, json } => {
            let report = crate::cli::bench::bench(rows, dims).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&report).expect("report serializes"));
            } else {
                print!("{}", report.render());
            }
        }
        Command::Langchain { command } => print!("{}", crate::langchain::commands::run(command).await?),
        Command::Demo { rows } => {
            let stop = stop_on_signals();
            crate::cli::demo::demo(rows, stop).await?;
        }
    }
    Ok(())
}

/// The `pgvshift` binary: parse the command line, set up logging, run a verb, map its error
/// to an exit code.
pub fn main() -> ExitCode {
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
