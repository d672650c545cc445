//! `pgvshift run`: snapshot (if it has not completed), then stream until stopped.
//!
//! ```text
//!   check::preflight (read-only; any blocking finding -> exit 1, nothing changed)
//!        ──> progress row on target?
//!        none ────────────> snapshot
//!        phase=snapshot ──> "previous snapshot did not complete": drop slot, empty tables -> snapshot
//!        phase=streaming ─> stream from applied_lsn
//!   snapshot: publication -> progress row (phase=snapshot) -> slot + exported snapshot
//!             -> target tables -> COPY (binary) per table -> indexes -> phase=streaming
//!
//!   connection lost after the checks (Error::is_transient) ──> wait (backoff, crate::error::retry)
//!        -> connect source + target -> checks again -> the same three cases: an interrupted
//!           snapshot starts over, a stream resumes from the target's applied_lsn
//!   no connection for replication.max_retry_duration_secs ──> give up (exit code 3)
//!   retained WAL past max_retained_wal (crate::source::walguard) ──> stop, never retried
//! ```

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::watch;
use tokio_postgres::Client;

use crate::apply::copy::{self, CopyJob};
use crate::apply::state;
use crate::apply::stream;
use crate::apply::TargetTable;
use crate::check::{self, Inspection, Level, Mode, Options, Preflight};
use crate::config::Config;
use crate::config::Side;
use crate::error::retry::{self, Lost, Reconnects};
use crate::error::{DbContext, Error, Result};
use crate::observe::stats::{Phase, RunStats};
use crate::schema::catalog::{ReplicaIdentity, Table};
use crate::schema::ddl;
use crate::schema::mapping::{self, TableMap};
use crate::source::connect;
use crate::source::replication;
use crate::source::slot::drop_slot;
use crate::source::walguard::{self, WalGuard};
use crate::sql::quote_ident;
use crate::translate::index::Translation;
use crate::Lsn;

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

/// `replica_identity = "full"` tables: ALTER TABLE .. REPLICA IDENTITY FULL on the source (the
/// one change to the source's tables that pgvshift makes, and only when asked), with a short
/// lock_timeout so it never queues in front of the application.
async fn set_replica_identity(config: &Config, source: &Client, inspection: &mut Inspection) -> Result<()> {
    for (table, map) in inspection.tables.iter_mut() {
        if !map.config.replica_identity_full || table.replica_identity == ReplicaIdentity::Full {
            continue;
        }
        let was = format!("{:?}", table.replica_identity).to_uppercase();
        source
            .batch_execute(&format!(
                "SET lock_timeout = '{SOURCE_LOCK_TIMEOUT}'; ALTER TABLE {} REPLICA IDENTITY FULL; RESET lock_timeout",
                table.name.quoted()
            ))
            .await
            .db(|| {
                format!(
                    "setting REPLICA IDENTITY FULL on source table {} (replica_identity = \"full\" in {}); if the lock was not granted within {SOURCE_LOCK_TIMEOUT}, another session holds the table: retry when it is quieter",
                    table.name,
                    config.path.display()
                )
            })?;
        tracing::warn!(table = %table.name, was = %was, "set REPLICA IDENTITY FULL on the source table as configured (replica_identity = \"full\"); after the cutover you may restore it with ALTER TABLE {} REPLICA IDENTITY DEFAULT", table.name.quoted());
        table.replica_identity = ReplicaIdentity::Full;
    }
    Ok(())
}

/// Publication, progress row, slot + exported snapshot, target tables, copy, indexes.
/// Returns the consistent point to stream from and the tables as the applier needs them.
#[allow(clippy::too_many_arguments)]
async fn snapshot(
    config: &Config,
    opts: Options,
    source: &Client,
    target: Client,
    inspection: &Inspection,
    restart: bool,
    previous: &[state::TableState],
    created_publication: bool,
    stats: &RunStats,
) -> Result<(Lsn, Vec<TargetTable>)> {
    let slot = &config.replication.slot;
    // Whether each target table exists at the DDL step below.
    let mut exists: Vec<bool> = inspection.target_state.iter().map(|st| st.exists).collect();
    if restart {
        let emptied = previous.len();
        if inspection.slot_exists() {
            drop_slot(source, slot).await?;
        }
        // Tables pgvshift created are dropped and created again, so indexes built before the
        // crash do not slow the new copy down; tables that existed before are only emptied.
        for (i, (table, map)) in inspection.tables.iter().enumerate() {
            let name = table.name.to_string();
            let Some(prev) = previous.iter().find(|t| t.source_table == name) else {
                continue;
            };
            if !exists[i] {
                continue;
            }
            let (sql, what) = if prev.created_table {
                exists[i] = false;
                (format!("DROP TABLE {}", map.target.quoted()), "dropping")
            } else {
                (format!("TRUNCATE {}", map.target.quoted()), "emptying")
            };
            target
                .batch_execute(&sql)
                .await
                .db(|| format!("{what} {} to restart the snapshot", map.target))?;
        }
        if config.langchain.is_some() {
            // LangChain mode: the collection tables it created are dropped, the others emptied.
            crate::langchain::snapshot::reset(config, &target).await?;
        }
        tracing::warn!(slot = %slot, emptied_tables = emptied, "the previous snapshot did not complete: starting it over (slot recreated, partially copied tables emptied)");
    }
    // Record first (created_publication, phase = snapshot), then create: a crash in between
    // leaves a record that `cleanup` and the next `run` act on, never an unknown publication.
    state::ensure_schema(&target)
        .await
        .db(|| "creating the pgvshift schema on the target".into())?;
    state::begin_snapshot(&target, slot, &config.replication.publication, created_publication)
        .await
        .db(|| "recording the snapshot start on the target".into())?;
    if inspection.publication_tables.is_none() {
        let list: Vec<String> = config.published_tables().iter().map(|t| t.quoted()).collect();
        // CREATE PUBLICATION .. FOR TABLE takes SHARE UPDATE EXCLUSIVE on each table for an
        // instant: reads and writes go on, but it would queue behind (and in front of) VACUUM
        // or DDL, hence the lock_timeout. The comment lets `cleanup` recognise it later.
        source
            .batch_execute(&format!(
                "SET lock_timeout = '{SOURCE_LOCK_TIMEOUT}'; CREATE PUBLICATION {pubname} FOR TABLE {}; COMMENT ON PUBLICATION {pubname} IS {}; RESET lock_timeout",
                list.join(", "),
                crate::sql::quote_literal(&state::publication_comment(slot)),
                pubname = quote_ident(&config.replication.publication),
            ))
            .await
            .db(|| format!("creating publication {} on the source (if a lock was not granted within {SOURCE_LOCK_TIMEOUT}, a VACUUM, DDL or long transaction holds one of the tables: retry when it is done)", config.replication.publication))?;
        tracing::info!(publication = %config.replication.publication, "created publication");
    }

    let snap = replication::create_slot_with_snapshot(&config.source, slot, &config.replication.publication).await?;
    tracing::info!(slot = %slot, consistent_point = %snap.consistent_point, snapshot = %snap.snapshot_name, "created slot with exported snapshot");
    state::record_consistent_point(&target, slot, snap.consistent_point)
        .await
        .db(|| "recording the consistent point".into())?;

    // Target tables and their state rows, in one transaction.
    let mut target = target;
    {
        let tx = target.transaction().await.db(|| "starting target DDL".into())?;
        for (((table, map), &exists), st) in inspection.tables.iter().zip(&exists).zip(&inspection.target_state) {
            let tname = &map.target;
            if let Some(sql) = ddl::create_schema_sql(tname) {
                tx.batch_execute(&sql)
                    .await
                    .db(|| format!("creating schema {}", quote_ident(&tname.schema)))?;
            }
            if !exists {
                tx.batch_execute(&ddl::create_table_sql(map))
                    .await
                    .db(|| format!("creating target table {tname}"))?;
            } else if opts.truncate_target
                && st.has_rows
                && !previous.iter().any(|p| p.source_table == table.name.to_string())
            {
                let removed = check::count_rows(&tx, tname).await?;
                tx.batch_execute(&format!("TRUNCATE {}", tname.quoted()))
                    .await
                    .db(|| format!("emptying target table {tname} (--truncate-target)"))?;
                tracing::warn!(table = %tname, rows_removed = removed, "--truncate-target: emptied the target table before the copy");
            }
            state::insert_table(&tx, slot, &table.name.to_string(), &tname.schema, &tname.name, !exists)
                .await
                .db(|| "recording table state".into())?;
        }
        tx.commit().await.db(|| "committing target DDL".into())?;
    }

    let jobs: Vec<CopyJob> = inspection
        .tables
        .iter()
        .zip(&inspection.target_state)
        .map(|((t, m), st)| CopyJob {
            source: t.clone(),
            map: m.clone(),
            // A pre-created target table's own column types win over the planned ones.
            target_types: m
                .replicated()
                .map(|c| {
                    st.types
                        .get(&c.target)
                        .cloned()
                        .unwrap_or_else(|| c.target_type.clone())
                })
                .collect(),
        })
        .collect();
    let started = std::time::Instant::now();
    let mut copied = if jobs.is_empty() {
        Vec::new()
    } else {
        copy::copy_tables(config, &snap.snapshot_name, jobs, stats.copy.clone()).await?
    };
    if let Some(lc) = &inspection.langchain {
        // LangChain mode: the collection tables, under the same exported snapshot.
        let rows =
            crate::langchain::snapshot::copy(config, opts, lc, &snap.snapshot_name, &mut target, stats.copy.clone())
                .await?;
        copied.push((
            crate::sql::QualifiedName::new(
                config.langchain.as_ref().map_or("public", |l| l.source_schema.as_str()),
                crate::langchain::layout::EMBEDDING_TABLE,
            ),
            rows,
        ));
    }
    let consistent_point = snap.consistent_point;
    snap.close().await;
    let rows: u64 = copied.iter().map(|(_, r)| r).sum();
    tracing::info!(
        tables = copied.len(),
        rows,
        seconds = format!("{:.1}", started.elapsed().as_secs_f64()),
        "snapshot copy complete"
    );

    for (table, map) in &inspection.tables {
        build_indexes(config, &target, table, map).await?;
        state::set_table_state(&target, slot, &table.name.to_string(), "indexed", None)
            .await
            .db(|| "recording index state".into())?;
    }
    state::finish_snapshot(&target, slot, consistent_point)
        .await
        .db(|| "recording the snapshot's completion".into())?;
    let tables = target_tables(inspection, &target).await?;
    Ok((consistent_point, tables))
}

/// Build the table's secondary and vector indexes on the target, translated for its profile
/// (after the data is in: one build instead of maintaining the index row by row).
async fn build_indexes(config: &Config, target: &Client, table: &Table, map: &TableMap) -> Result<()> {
    let plans = mapping::index_plan(table, map);
    if plans.is_empty() {
        return Ok(());
    }
    if let Some(m) = &config.indexes.maintenance_work_mem {
        target
            .batch_execute(&format!("SET maintenance_work_mem = {}", crate::sql::quote_literal(m)))
            .await
            .db(|| format!("setting maintenance_work_mem = {m} (from [indexes])"))?;
    }
    if let Some(w) = config.indexes.max_parallel_maintenance_workers {
        target
            .batch_execute(&format!("SET max_parallel_maintenance_workers = {w}"))
            .await
            .db(|| format!("setting max_parallel_maintenance_workers = {w} (from [indexes])"))?;
    }
    for plan in plans {
        match plan.translation {
            Translation::Skip { reason } => tracing::warn!(table = %map.target, "{reason}"),
            Translation::Create { sql, notes, .. } => {
                for note in notes {
                    tracing::info!(table = %map.target, "{note}");
                }
                if map.config.index_ddl_only {
                    tracing::info!(table = %map.target, index = %plan.name, ddl = %sql, "index_ddl_only: not building this index; run the DDL yourself");
                    continue;
                }
                let started = std::time::Instant::now();
                target.batch_execute(&sql).await.db(|| {
                    format!(
                        "building index {} on {} with `{sql}` (set index_ddl_only = true on the table to skip index builds and run them yourself)",
                        quote_ident(&plan.name),
                        map.target
                    )
                })?;
                tracing::info!(index = %plan.name, table = %map.target, seconds = format!("{:.1}", started.elapsed().as_secs_f64()), "built index");
            }
        }
    }
    Ok(())
}

async fn target_tables(inspection: &Inspection, target: &Client) -> Result<Vec<TargetTable>> {
    let mut out = Vec::new();
    for (_, map) in &inspection.tables {
        let st = check::target_table_state(target, &map.target).await?;
        out.push(TargetTable {
            target_columns: st.columns,
            map: map.clone(),
        });
    }
    Ok(out)
}
