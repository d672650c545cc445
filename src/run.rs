//! `pgvshift run`: snapshot (if it has not completed), then stream until stopped.
//!
//! ```text
//!   checks (read-only) ──> progress row on target?
//!        none ────────────> snapshot
//!        phase=snapshot ──> "previous snapshot did not complete": drop slot, empty tables -> snapshot
//!        phase=streaming ─> stream from applied_lsn
//!   snapshot: publication -> progress row (phase=snapshot) -> slot + exported snapshot
//!             -> target tables -> COPY (binary) per table -> indexes -> phase=streaming
//!
//!   connection lost after the checks (Error::is_transient) ──> wait (backoff, crate::retry)
//!        -> connect source + target -> checks again -> the same three cases: an interrupted
//!           snapshot starts over, a stream resumes from the target's applied_lsn
//!   no connection for replication.max_retry_duration_secs ──> give up (exit code 3)
//! ```

use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::watch;
use tokio_postgres::Client;

use crate::apply::{ApplyStats, TargetTable};
use crate::catalog::{self, CatalogError, Table};
use crate::config::Config;
use crate::copy::{self, CopyJob, CopyProgress};
use crate::error::{DbContext, Error, Result};
use crate::indexdef::Translation;
use crate::mapping::{self, TableMap};
use crate::pg::{connect, Side};
use crate::replication;
use crate::retry::{self, Lost, Reconnects};
use crate::schema;
use crate::sql::{quote_ident, QualifiedName};
use crate::state::{self, Phase};
use crate::stream;
use crate::Lsn;

/// Shared counters a caller (the demo, tests) can watch.
#[derive(Debug, Default)]
pub struct RunStats {
    pub copy: Arc<CopyProgress>,
    pub apply: Arc<ApplyStats>,
    /// Times both connections were established again after a lost one (the run went on).
    pub reconnects: AtomicU64,
}

/// Everything `plan` and `run` learn before changing anything.
pub struct Inspection {
    /// Each table with its mapping onto the target.
    pub tables: Vec<(Table, TableMap)>,
    pub problems: Vec<String>,
    /// Per configured table: does the target table exist, and how many rows it has.
    pub target_state: Vec<TargetTableState>,
    pub slot_exists: bool,
    pub publication_tables: Option<Vec<QualifiedName>>,
}

#[derive(Debug, Clone)]
pub struct TargetTableState {
    pub exists: bool,
    pub has_rows: bool,
    pub columns: HashSet<String>,
    /// Column name -> its type as `format_type` prints it.
    pub types: std::collections::HashMap<String, String>,
}

/// Read the source and target catalogs and list blocking problems; changes nothing.
/// `ours` lists target tables this configuration already wrote (a snapshot being restarted).
pub async fn inspect(config: &Config, source: &Client, target: &Client, ours: &HashSet<String>) -> Result<Inspection> {
    catalog::prepare_session(source)
        .await
        .db(|| "preparing the source session".into())?;
    let mut problems = Vec::new();
    let mut tables = Vec::new();
    let mut target_state = Vec::new();
    for t in &config.tables {
        match catalog::describe_table(source, &t.source).await {
            Ok(table) => {
                problems.extend(table.blocking_problems());
                let map = mapping::map_table(&table, t);
                problems.extend(map.problems.iter().cloned());
                let st = target_table_state(target, &t.target).await?;
                if st.exists && st.has_rows && !ours.contains(&t.source.to_string()) {
                    problems.push(format!(
                        "target table {} already exists and is not empty: pgvshift never appends to existing data. Empty it (TRUNCATE {}) or choose another target name",
                        t.target, t.target
                    ));
                }
                if st.exists {
                    for c in map.replicated() {
                        if !st.columns.contains(&c.target) {
                            problems.push(format!(
                                "target table {} exists but has no column {} ({} expected): add it or drop the target table",
                                t.target,
                                quote_ident(&c.target),
                                c.target_type
                            ));
                        }
                    }
                }
                target_state.push(st);
                tables.push((table, map));
            }
            Err(CatalogError::NotFound(name)) => problems.push(format!(
                "table {name} does not exist on the source {} (check [[tables]] source = ... in {})",
                config.source.redacted_url,
                config.path.display()
            )),
            Err(CatalogError::NotATable { name, relkind }) => problems.push(format!(
                "{name} is not a plain table (relkind {relkind}); list plain tables only"
            )),
            Err(CatalogError::Query { table, source }) => {
                return Err(Error::Db {
                    context: format!("reading the catalog of {table}"),
                    source,
                })
            }
        }
    }
    let slot_exists = source
        .query_opt(
            "SELECT 1 FROM pg_replication_slots WHERE slot_name = $1",
            &[&config.replication.slot],
        )
        .await
        .db(|| "reading pg_replication_slots on the source".into())?
        .is_some();
    let publication_tables = publication_tables(source, &config.replication.publication).await?;
    Ok(Inspection {
        tables,
        problems,
        target_state,
        slot_exists,
        publication_tables,
    })
}

async fn target_table_state(target: &Client, name: &QualifiedName) -> Result<TargetTableState> {
    let cols = target
        .query(
            "SELECT a.attname::text, format_type(a.atttypid, a.atttypmod) FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid \
               JOIN pg_namespace n ON n.oid = c.relnamespace \
              WHERE n.nspname = $1 AND c.relname = $2 AND a.attnum > 0 AND NOT a.attisdropped",
            &[&name.schema, &name.name],
        )
        .await
        .db(|| format!("reading target table {name}"))?;
    if cols.is_empty() {
        return Ok(TargetTableState {
            exists: false,
            has_rows: false,
            columns: HashSet::new(),
            types: Default::default(),
        });
    }
    let has_rows: bool = target
        .query_one(&format!("SELECT EXISTS (SELECT 1 FROM {})", name.quoted()), &[])
        .await
        .db(|| format!("reading target table {name}"))?
        .get(0);
    Ok(TargetTableState {
        exists: true,
        has_rows,
        columns: cols.iter().map(|r| r.get(0)).collect(),
        types: cols.iter().map(|r| (r.get(0), r.get(1))).collect(),
    })
}

async fn publication_tables(source: &Client, publication: &str) -> Result<Option<Vec<QualifiedName>>> {
    let exists = source
        .query_opt("SELECT 1 FROM pg_publication WHERE pubname = $1", &[&publication])
        .await
        .db(|| "reading pg_publication on the source".into())?
        .is_some();
    if !exists {
        return Ok(None);
    }
    let rows = source
        .query(
            "SELECT schemaname::text, tablename::text FROM pg_publication_tables WHERE pubname = $1",
            &[&publication],
        )
        .await
        .db(|| "reading pg_publication_tables on the source".into())?;
    let mut names: Vec<QualifiedName> = rows
        .iter()
        .map(|r| QualifiedName::new(r.get::<_, String>(0), r.get::<_, String>(1)))
        .collect();
    names.sort();
    Ok(Some(names))
}

/// Run until `stop` becomes true: snapshot if needed, then stream.
///
/// A connection lost after the checks (during the snapshot or the stream) is reconnected with
/// backoff until `replication.max_retry_duration_secs` runs out (see [`crate::retry`]): the
/// stream resumes from the target's committed position, an interrupted snapshot starts over.
/// Errors before that, such as a wrong URL or password or a server that is down when `run`
/// starts, are returned at once.
pub async fn run(config: &Config, stop: watch::Receiver<bool>, stats: Arc<RunStats>) -> Result<Lsn> {
    let source = connect(&config.source, Side::Source).await?;
    let target = connect(&config.target, Side::Target).await?;
    let prepared = prepare(config, source, target).await?;

    let mut reconnects = Reconnects::new(config.replication.max_retry_duration);
    let mut stage = Stage::Checks;
    let mut attempt = Attempt::start(&stats);
    // A lost connection interrupted the snapshot, and it has not been started over yet.
    let mut snapshot_interrupted = false;
    let mut result = execute(config, prepared, stop.clone(), &stats, &mut stage).await;
    loop {
        let error = match result {
            Ok(lsn) => return Ok(lsn),
            Err(e) if e.is_transient() => e,
            Err(e) => return Err(e),
        };
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
                _ = stop_wait.wait_for(|s| *s) => None,
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
        result = match prepare(config, source, target).await {
            Ok(prepared) => execute(config, prepared, stop.clone(), &stats, &mut stage).await,
            Err(e) => Err(e),
        };
    }
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

/// What the checks decided, with the connections they used.
struct Prepared {
    source: Client,
    target: Client,
    inspection: Inspection,
    start: Start,
}

enum Start {
    /// The snapshot completed before: stream from the target's applied position.
    Resume { applied: Lsn },
    /// Take the snapshot; `restart` when an unfinished one is started over.
    Snapshot {
        restart: bool,
        previous: Vec<state::TableState>,
        created_publication: bool,
    },
}

/// The checks (read-only): progress on the target, catalogs, slot and publication.
async fn prepare(config: &Config, source: Client, target: Client) -> Result<Prepared> {
    let slot = &config.replication.slot;
    state::tag_session(&target, slot)
        .await
        .db(|| "tagging the target session".into())?;
    let progress = state::load_progress(&target, slot)
        .await
        .db(|| "reading pgvshift.progress on the target".into())?;

    let restart = match &progress {
        Some(p) if p.phase == Phase::Streaming => {
            let recorded: HashSet<String> = state::load_tables(&target, slot)
                .await
                .db(|| "reading pgvshift.tables".into())?
                .into_iter()
                .map(|t| t.source_table)
                .collect();
            let configured: HashSet<String> = config.tables.iter().map(|t| t.source.to_string()).collect();
            if recorded != configured {
                return Err(Error::Blocked(vec![format!(
                    "the configured tables differ from the ones slot {slot} was started with ({}); adding or removing tables needs a new snapshot: run `pgvshift cleanup --config {}` then `pgvshift run`",
                    recorded.into_iter().collect::<Vec<_>>().join(", "),
                    config.path.display()
                )]));
            }
            let inspection = inspect(config, &source, &target, &recorded).await?;
            if !inspection.slot_exists {
                return Err(Error::Runtime(format!(
                    "replication slot {slot} no longer exists on the source, so changes since {} are lost to it: a fresh snapshot is required. Run `pgvshift cleanup --config {}`, empty the target tables, then `pgvshift run`",
                    p.applied_lsn.unwrap_or_default(),
                    config.path.display()
                )));
            }
            return Ok(Prepared {
                source,
                target,
                inspection,
                start: Start::Resume {
                    applied: p.applied_lsn.unwrap_or_default(),
                },
            });
        }
        Some(_) => true,
        None => false,
    };

    // The tables an unfinished snapshot was filling (read once; used by the checks and the restart).
    let previous = if restart {
        state::load_tables(&target, slot)
            .await
            .db(|| "reading pgvshift.tables".into())?
    } else {
        Vec::new()
    };
    let ours: HashSet<String> = previous.iter().map(|t| t.source_table.clone()).collect();
    let inspection = inspect(config, &source, &target, &ours).await?;
    let mut problems = inspection.problems.clone();
    if inspection.slot_exists && !restart {
        problems.push(format!(
            "replication slot {slot} already exists on the source but this configuration has no progress for it on the target; if it is left over from an earlier pgvshift run, remove it with `pgvshift cleanup --config {}` (or SELECT pg_drop_replication_slot('{slot}') on the source)",
            config.path.display()
        ));
    }
    let wanted: Vec<QualifiedName> = {
        let mut w: Vec<QualifiedName> = config.tables.iter().map(|t| t.source.clone()).collect();
        w.sort();
        w
    };
    let created_publication = match &inspection.publication_tables {
        None => true,
        Some(existing) if *existing == wanted => progress.as_ref().map(|p| p.created_publication).unwrap_or(false),
        Some(existing) => {
            problems.push(format!(
                "publication {} exists on the source with other tables ({}) than the configuration lists ({}); drop it (DROP PUBLICATION {}) or name another publication in [replication]",
                config.replication.publication,
                existing.iter().map(|t| t.to_string()).collect::<Vec<_>>().join(", "),
                wanted.iter().map(|t| t.to_string()).collect::<Vec<_>>().join(", "),
                quote_ident(&config.replication.publication)
            ));
            false
        }
    };
    if !problems.is_empty() {
        return Err(Error::Blocked(problems));
    }
    Ok(Prepared {
        source,
        target,
        inspection,
        start: Start::Snapshot {
            restart,
            previous,
            created_publication,
        },
    })
}

/// Snapshot (unless complete), then stream; `stage` says how far it got.
async fn execute(
    config: &Config,
    prepared: Prepared,
    stop: watch::Receiver<bool>,
    stats: &RunStats,
    stage: &mut Stage,
) -> Result<Lsn> {
    let Prepared {
        source,
        target,
        inspection,
        start,
    } = prepared;
    let slot = &config.replication.slot;
    match start {
        Start::Resume { applied } => {
            stats.apply.applied_lsn.fetch_max(applied.0, Ordering::Relaxed);
            let tables = target_tables(&inspection, &target).await?;
            drop((source, target));
            *stage = Stage::Streaming;
            tracing::info!(slot = %slot, applied = %applied, "snapshot already complete: resuming the stream");
            stream::stream_changes(config, tables, applied, stop, stats.apply.clone()).await
        }
        Start::Snapshot {
            restart,
            previous,
            created_publication,
        } => {
            *stage = Stage::Snapshot;
            // From here on, things change. A stop request during the snapshot ends it at once:
            // the next run recognises the unfinished snapshot and starts it over.
            let mut stop_wait = stop.clone();
            let snapshot = snapshot(
                config,
                &source,
                target,
                &inspection,
                restart,
                &previous,
                created_publication,
                stats,
            );
            let (consistent_point, tables) = tokio::select! {
                r = snapshot => r?,
                _ = stop_wait.wait_for(|s| *s) => {
                    tracing::warn!("stopped during the snapshot: the next run starts it over");
                    return Ok(Lsn::ZERO);
                }
            };
            drop(source);
            stats.apply.applied_lsn.fetch_max(consistent_point.0, Ordering::Relaxed);
            *stage = Stage::Streaming;
            stream::stream_changes(config, tables, consistent_point, stop, stats.apply.clone()).await
        }
    }
}

/// Publication, progress row, slot + exported snapshot, target tables, copy, indexes.
/// Returns the consistent point to stream from and the tables as the applier needs them.
#[allow(clippy::too_many_arguments)]
async fn snapshot(
    config: &Config,
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
        if inspection.slot_exists {
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
        let list: Vec<String> = config.tables.iter().map(|t| t.source.quoted()).collect();
        source
            .batch_execute(&format!(
                "CREATE PUBLICATION {} FOR TABLE {}",
                quote_ident(&config.replication.publication),
                list.join(", ")
            ))
            .await
            .db(|| format!("creating publication {} on the source", config.replication.publication))?;
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
        for ((table, map), &exists) in inspection.tables.iter().zip(&exists) {
            let tname = &map.target;
            if let Some(sql) = schema::create_schema_sql(tname) {
                tx.batch_execute(&sql)
                    .await
                    .db(|| format!("creating schema {}", quote_ident(&tname.schema)))?;
            }
            if !exists {
                tx.batch_execute(&schema::create_table_sql(map))
                    .await
                    .db(|| format!("creating target table {tname}"))?;
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
    let copied = copy::copy_tables(config, &snap.snapshot_name, jobs, stats.copy.clone()).await?;
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
        let st = target_table_state(target, &map.target).await?;
        out.push(TargetTable {
            target_columns: st.columns,
            map: map.clone(),
        });
    }
    Ok(out)
}

/// Drop a replication slot, waiting (up to 30 s) for a previous session to release it.
pub async fn drop_slot(source: &Client, slot: &str) -> Result<()> {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let row = source
            .query_opt(
                "SELECT active, active_pid FROM pg_replication_slots WHERE slot_name = $1",
                &[&slot],
            )
            .await
            .db(|| "reading pg_replication_slots".into())?;
        let Some(row) = row else { return Ok(()) };
        let active: bool = row.get(0);
        if !active {
            match source.execute("SELECT pg_drop_replication_slot($1)", &[&slot]).await {
                Ok(_) => {
                    tracing::info!(slot = %slot, "dropped replication slot");
                    return Ok(());
                }
                Err(e) if std::time::Instant::now() < deadline => {
                    tracing::debug!("dropping slot {slot}: {}; retrying", crate::pg::describe(&e));
                }
                Err(e) => {
                    return Err(Error::Db {
                        context: format!("dropping replication slot {slot}"),
                        source: e,
                    })
                }
            }
        } else if std::time::Instant::now() >= deadline {
            let pid: Option<i32> = row.get(1);
            return Err(Error::Runtime(format!(
                "replication slot {slot} is in use by the source backend pid {}: stop the pgvshift process that streams from it first",
                pid.unwrap_or_default()
            )));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
