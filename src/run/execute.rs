//! One `run`: the checks, then the snapshot or the stream, and reconnecting after a lost
//! connection until `replication.max_retry_duration_secs` runs out.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::watch;
use tokio_postgres::Client;

use crate::apply::state;
use crate::apply::stream;
use crate::check::{self, Level, Mode, Options, Preflight};
use crate::config::Config;
use crate::config::Side;
use crate::error::retry::{self, Lost, Reconnects};
use crate::error::{DbContext, Error, Result};
use crate::observe::stats::{Phase, RunStats};
use crate::source::connect;
use crate::source::slot::drop_slot;
use crate::source::walguard::{self, WalGuard};
use crate::Lsn;

use super::snapshot::{set_replica_identity, snapshot, target_tables};

/// How long `run` waits for a lock on a source table (CREATE PUBLICATION, the REPLICA IDENTITY
/// FULL asked for) before giving up, so it never queues in front of the application's queries.
pub const SOURCE_LOCK_TIMEOUT: &str = "5s";

/// Run until `stop` becomes true: snapshot if needed, then stream.
pub async fn run(config: &Config, stop: watch::Receiver<bool>, stats: Arc<RunStats>) -> Result<Lsn> {
    run_with(config, Options::default(), stop, stats).await
}

/// [`run`] with options (`--truncate-target`).
///
/// The checks come first and fail fast: a wrong URL or password, a server that is down when
/// `run` starts, or any blocking finding ends it at once, before anything is changed. A
/// connection lost after that (during the snapshot or the stream) is reconnected with backoff
/// until `replication.max_retry_duration_secs` runs out (see [`crate::error::retry`]): the checks run
/// again, the stream resumes from the target's committed position, an interrupted snapshot
/// starts over.
pub async fn run_with(
    config: &Config,
    opts: Options,
    stop: watch::Receiver<bool>,
    stats: Arc<RunStats>,
) -> Result<Lsn> {
    stats.set_phase(Phase::Checks);
    let _metrics = match config.metrics_listen {
        Some(addr) => Some(crate::observe::metrics::serve(addr, stats.clone()).await?),
        None => None,
    };
    let result = run_checked(config, opts, stop, stats.clone()).await;
    stats.set_phase(Phase::Stopped);
    result
}

async fn run_checked(config: &Config, opts: Options, stop: watch::Receiver<bool>, stats: Arc<RunStats>) -> Result<Lsn> {
    let pre = checked(check::preflight(config, opts).await?)?;
    let (guard, stop) = WalGuard::spawn(config, stop, stats.wal.clone());

    let mut reconnects = Reconnects::new(config.replication.max_retry_duration);
    let mut stage = Stage::Checks;
    let mut attempt = Attempt::start(&stats);
    // A lost connection interrupted the snapshot, and it has not been started over yet.
    let mut snapshot_interrupted = false;
    let mut result = execute(config, opts, pre, stop.clone(), &stats, &mut stage, &guard).await;
    loop {
        let error = match result {
            Ok(lsn) => return Ok(lsn),
            // The guard stopped the run on purpose: never retried.
            Err(e) if guard.reason().is_some() => return Err(e),
            Err(e) if e.is_transient() => e,
            Err(e) => return Err(e),
        };
        stats.set_phase(Phase::Reconnecting);
        if attempt.recovered(&stats, stage) {
            reconnects.recovered();
        }
        let interrupted = stage;
        snapshot_interrupted = match stage {
            Stage::Checks => snapshot_interrupted,
            Stage::Snapshot => true,
            Stage::Streaming => false,
        };
        let mut lost = lost_side(config, &error, stage).await;
        let mut cause = retry::one_line(&error.to_string());
        let mut first = true;
        // Wait, reconnect both sides; again until that works, the outage outlasts the limit, or
        // a stop is requested.
        let (source, target) = loop {
            if *stop.borrow() {
                return Ok(stopped_while_reconnecting(config, &stats));
            }
            let now = Instant::now();
            let Some(wait) = reconnects.next(now) else {
                return Err(Error::Runtime(retry::give_up_message(
                    reconnects.attempts(),
                    reconnects.elapsed(now),
                    lost,
                    &cause,
                    applied(&stats),
                    &config.path,
                    config.replication.max_retry_duration,
                )));
            };
            let during = if interrupted == Stage::Snapshot {
                " during the snapshot (it starts over once reconnected)"
            } else {
                ""
            };
            let what = if first {
                format!("lost the connection to the {lost}{during}")
            } else {
                format!("cannot reach the {lost} yet")
            };
            tracing::warn!(
                slot = %config.replication.slot,
                "{what}: {cause}; reconnecting in {:.1}s (attempt {}, giving up in {:.1}s)",
                wait.delay.as_secs_f64(),
                wait.attempt,
                wait.left.as_secs_f64()
            );
            first = false;
            let mut stop_wait = stop.clone();
            let reconnected = tokio::select! {
                _ = async { let _ = stop_wait.wait_for(|s| *s).await; } => None,
                r = async {
                    tokio::time::sleep(wait.delay).await;
                    reconnect(config).await
                } => Some(r),
            };
            match reconnected {
                None => return Ok(stopped_while_reconnecting(config, &stats)),
                Some(Ok(clients)) => break clients,
                Some(Err(Reconnect::Failed { side, cause: c })) => {
                    lost = side;
                    cause = c;
                }
                Some(Err(Reconnect::Fatal(e))) => return Err(e),
            }
        };
        stats.reconnects.fetch_add(1, Ordering::Relaxed);
        let now = Instant::now();
        tracing::info!(
            slot = %config.replication.slot,
            "reconnected to the source and the target after {} attempt{} over {:.1}s: {}",
            reconnects.attempts(),
            if reconnects.attempts() == 1 { "" } else { "s" },
            reconnects.elapsed(now).as_secs_f64(),
            if snapshot_interrupted {
                "starting over the snapshot that the lost connection interrupted"
            } else {
                "resuming from the target's committed position"
            }
        );
        attempt = Attempt::start(&stats);
        stage = Stage::Checks;
        result = match check::preflight_on(config, opts, source, target)
            .await
            .and_then(checked)
        {
            Ok(pre) => execute(config, opts, pre, stop.clone(), &stats, &mut stage, &guard).await,
            Err(e) => Err(e),
        };
    }
}

/// Log the warnings; `Err(Blocked)` on any blocking finding.
fn checked(pre: Preflight) -> Result<Preflight> {
    for f in pre.findings.iter().filter(|f| f.level == Level::Warning) {
        tracing::warn!(check = f.check, "{}", f.one_line());
    }
    pre.ensure_no_blocking()?;
    Ok(pre)
}

/// Snapshot (unless complete), then stream; `stage` says how far it got.
async fn execute(
    config: &Config,
    opts: Options,
    pre: Preflight,
    stop: watch::Receiver<bool>,
    stats: &RunStats,
    stage: &mut Stage,
    guard: &WalGuard,
) -> Result<Lsn> {
    let Preflight {
        mode,
        progress,
        previous,
        mut inspection,
        source,
        target,
        ..
    } = pre;
    let slot = &config.replication.slot;
    state::tag_session(&target, slot)
        .await
        .db(|| "tagging the target session".into())?;

    if mode == Mode::Resume {
        let start = progress.as_ref().and_then(|p| p.applied_lsn).unwrap_or_default();
        stats.apply.applied_lsn.fetch_max(start.0, Ordering::Relaxed);
        let tables = target_tables(&inspection, &target).await?;
        drop((source, target));
        *stage = Stage::Streaming;
        stats.set_phase(Phase::Streaming);
        tracing::info!(slot = %slot, applied = %start, "snapshot already complete: resuming the stream");
        let applied = stream::stream_changes(config, tables, start, stop, stats.apply.clone()).await?;
        return guard_outcome(guard, config, applied);
    }

    let created_publication = match &inspection.publication_tables {
        None => true,
        Some(_) => progress.as_ref().is_some_and(|p| p.created_publication),
    };
    set_replica_identity(config, &source, &mut inspection).await?;

    // From here on, things change. A stop request during the snapshot ends it at once: the
    // next run recognises the unfinished snapshot and starts it over.
    *stage = Stage::Snapshot;
    stats.set_phase(Phase::Snapshot);
    let mut stop_wait = stop.clone();
    let snapshot = snapshot(
        config,
        opts,
        &source,
        target,
        &inspection,
        mode == Mode::RestartSnapshot,
        &previous,
        created_publication,
        stats,
    );
    let (consistent_point, tables) = tokio::select! {
        r = snapshot => r?,
        _ = async { let _ = stop_wait.wait_for(|s| *s).await; } => {
            if let Some(reason) = guard.reason() {
                // Nothing is lost by dropping the slot now: the snapshot starts over anyway.
                drop_slot(&source, slot).await?;
                return Err(Error::Runtime(walguard::explain(&reason, config, true)));
            }
            tracing::warn!("stopped during the snapshot: the next run starts it over");
            return Ok(Lsn::ZERO);
        }
    };
    drop(source);
    stats.apply.applied_lsn.fetch_max(consistent_point.0, Ordering::Relaxed);
    *stage = Stage::Streaming;
    stats.set_phase(Phase::Streaming);
    let applied = stream::stream_changes(config, tables, consistent_point, stop, stats.apply.clone()).await?;
    guard_outcome(guard, config, applied)
}

/// How far one attempt of `run` got (decides what a lost connection means).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    /// Reading catalogs and progress; nothing changed yet.
    Checks,
    /// Taking the snapshot: a failure here starts it over.
    Snapshot,
    /// Streaming (or about to): a failure here resumes from the target's applied position.
    Streaming,
}

/// When an attempt started, to tell afterwards whether it worked for a while.
struct Attempt {
    started: Instant,
    commits: u64,
}

impl Attempt {
    fn start(stats: &RunStats) -> Attempt {
        Attempt {
            started: Instant::now(),
            commits: stats.apply.target_commits.load(Ordering::Relaxed),
        }
    }

    /// It committed on the target (streaming worked), or got past its checks and ran for
    /// [`retry::HEALTHY_AFTER`]: a failure now is a new outage, not more of the last one.
    fn recovered(&self, stats: &RunStats, stage: Stage) -> bool {
        stats.apply.target_commits.load(Ordering::Relaxed) > self.commits
            || (stage != Stage::Checks && self.started.elapsed() >= retry::HEALTHY_AFTER)
    }
}

/// The position the target has committed, if a stream ever started (else the snapshot is
/// unfinished).
fn applied(stats: &RunStats) -> Option<Lsn> {
    match stats.apply.applied_lsn.load(Ordering::Relaxed) {
        0 => None,
        lsn => Some(Lsn(lsn)),
    }
}

fn stopped_while_reconnecting(config: &Config, stats: &RunStats) -> Lsn {
    tracing::info!(
        slot = %config.replication.slot,
        "stop requested while waiting to reconnect: stopped; {}",
        retry::target_holds(applied(stats))
    );
    applied(stats).unwrap_or(Lsn::ZERO)
}

/// How long one reconnection may take per side before it counts as failed.
const RECONNECT_TIMEOUT: Duration = Duration::from_secs(30);
/// How long [`lost_side`] waits for a test connection.
const PROBE_TIMEOUT: Duration = Duration::from_secs(5);

enum Reconnect {
    /// The side cannot be reached yet (a transient error or a timeout): try again later.
    Failed { side: Lost, cause: String },
    /// Reconnecting cannot work (e.g. the password was changed meanwhile).
    Fatal(Error),
}

/// Fresh connections to both sides (source first).
async fn reconnect(config: &Config) -> std::result::Result<(Client, Client), Reconnect> {
    let source = connect_within(config, Side::Source).await?;
    let target = connect_within(config, Side::Target).await?;
    Ok((source, target))
}

async fn connect_within(config: &Config, side: Side) -> std::result::Result<Client, Reconnect> {
    let endpoint = match side {
        Side::Source => &config.source,
        Side::Target => &config.target,
    };
    match tokio::time::timeout(RECONNECT_TIMEOUT, connect(endpoint, side)).await {
        Ok(Ok(client)) => Ok(client),
        Ok(Err(e)) if e.is_transient() => Err(Reconnect::Failed {
            side: side.into(),
            cause: retry::one_line(&e.to_string()),
        }),
        Ok(Err(e)) => Err(Reconnect::Fatal(e)),
        Err(_) => Err(Reconnect::Failed {
            side: side.into(),
            cause: format!(
                "connecting to the {side} {} did not complete within {}s",
                endpoint.redacted_url,
                RECONNECT_TIMEOUT.as_secs()
            ),
        }),
    }
}

/// Which connection a transient error lost: the replication stream is the source's; in the
/// stream every SQL statement runs on the target; otherwise the error's context names a side,
/// or a test connection to each finds the one that does not answer.
async fn lost_side(config: &Config, error: &Error, stage: Stage) -> Lost {
    match error {
        Error::Connect { side: Some(side), .. } => return (*side).into(),
        Error::Replication { .. } | Error::Runtime(_) => return Lost::Source,
        Error::Db { .. } if stage == Stage::Streaming => return Lost::Target,
        Error::Db { context, .. } => match (context.contains("the source"), context.contains("the target")) {
            (true, false) => return Lost::Source,
            (false, true) => return Lost::Target,
            _ => {}
        },
        _ => {}
    }
    let answers = |side: Side| async move {
        let endpoint = match side {
            Side::Source => &config.source,
            Side::Target => &config.target,
        };
        matches!(
            tokio::time::timeout(PROBE_TIMEOUT, connect(endpoint, side)).await,
            Ok(Ok(_))
        )
    };
    match tokio::join!(answers(Side::Source), answers(Side::Target)) {
        (false, true) => Lost::Source,
        (true, false) => Lost::Target,
        _ => Lost::Either,
    }
}

/// After the stream stopped: an error if the WAL guard stopped it, else the applied LSN.
fn guard_outcome(guard: &WalGuard, config: &Config, applied: Lsn) -> Result<Lsn> {
    match guard.reason() {
        Some(reason) => Err(Error::Runtime(walguard::explain(&reason, config, false))),
        None => Ok(applied),
    }
}
