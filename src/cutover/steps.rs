//! The steps in order ([`cutover`]), what they report ([`Report`]), and the checks and waits
//! before and after the fence.

use std::io::Write;
use std::time::{Duration, Instant};

use serde::Serialize;
use tokio::sync::watch;
use tokio_postgres::Client;

use crate::apply::state::{self, applied_lsn, wait_applied, Phase};
use crate::config::Side;
use crate::config::{Config, FinalVerify};
use crate::error::{DbContext, Error, Result};
use crate::schema::catalog::{self, Table};
use crate::schema::mapping::{self, TableMap};
use crate::source::connect;
use crate::source::slot::{insert_lsn, nudge, slot_active};
use crate::sql::{display_ident, quote_ident, QualifiedName};
use crate::translate::index::Translation;
use crate::verify::{self, Consistency};
use crate::Lsn;

use super::fence::*;
use super::sequences::*;

/// Command-line options.
#[derive(Debug, Clone, Copy, Default)]
pub struct Options {
    pub dry_run: bool,
    pub json: bool,
    pub drop_slot: bool,
}

/// What happened (`--json` prints it at the end).
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub dry_run: bool,
    pub ok: bool,
    pub steps: Vec<StepReport>,
    /// The source WAL position once the fence held: the target applied everything before it.
    pub fence_lsn: Option<String>,
    /// How long writes to the migrated tables were blocked (fence granted to fence lifted).
    pub write_pause_ms: Option<f64>,
    /// From the fence being granted to "switch the application now".
    pub switch_after_ms: Option<f64>,
    /// Wall-clock times of the fence (milliseconds since the Unix epoch).
    pub fence_granted_unix_ms: Option<u64>,
    pub fence_lifted_unix_ms: Option<u64>,
    pub sequences: Vec<SequenceCopy>,
    pub verify: Option<verify::Report>,
    pub failure: Option<String>,
}

/// One step's outcome.
#[derive(Debug, Clone, Serialize)]
pub struct StepReport {
    /// `checks`, `lag`, `indexes`, `sequences_prepare`, `fence`, `fence_applied`,
    /// `sequences`, `verify`, `switch`, `lift`, `drop_slot`.
    pub step: String,
    /// `ok`, `failed`, `skipped`, or `dry_run`.
    pub status: String,
    pub detail: String,
    pub seconds: f64,
}

/// The steps' printer: lines as they happen (text), or collected for the JSON at the end.
struct Steps {
    json: bool,
    report: Report,
}

impl Steps {
    fn say(&self, line: &str) {
        if self.json {
            tracing::info!("{line}");
        } else {
            println!("{line}");
            let _ = std::io::stdout().flush();
        }
    }

    fn step(&mut self, step: &str, status: &str, detail: String, since: Instant) {
        let seconds = since.elapsed().as_secs_f64();
        self.say(&format!("[{status}] {step}: {detail} ({seconds:.2} s)"));
        self.report.steps.push(StepReport {
            step: step.into(),
            status: status.into(),
            detail,
            seconds,
        });
    }
}

/// PURE: human-readable bytes.
fn bytes(n: u64) -> String {
    crate::config::human_bytes(n as i64)
}

/// One migrated table as the cutover needs it.
pub(super) struct Migrated {
    pub(super) table: Table,
    pub(super) map: TableMap,
    pub(super) created_table: bool,
}

/// `pgvshift cutover`. Prints as it goes; returns the report (also on failure, inside the
/// error's message only the cause: the report was printed).
pub async fn cutover(config: &Config, opts: &Options, stop: watch::Receiver<bool>) -> Result<Report> {
    // LangChain mode has no [[tables]] to fence or compare: refuse rather than "succeed" with
    // an empty fence.
    if config.langchain.is_some() {
        return Err(Error::Usage(format!(
            "{}: `pgvshift cutover` does not handle [langchain] mode yet (it would fence and compare no table); follow the cutover steps in docs/langchain.md",
            config.path.display()
        )));
    }
    let mut steps = Steps {
        json: opts.json,
        report: Report {
            dry_run: opts.dry_run,
            ok: false,
            steps: Vec::new(),
            fence_lsn: None,
            write_pause_ms: None,
            switch_after_ms: None,
            fence_granted_unix_ms: None,
            fence_lifted_unix_ms: None,
            sequences: Vec::new(),
            verify: None,
            failure: None,
        },
    };
    let result = run_steps(config, opts, stop, &mut steps).await;
    if let Err(e) = &result {
        steps.report.failure = Some(e.to_string());
    }
    steps.report.ok = result.is_ok();
    if opts.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&steps.report).expect("report serializes")
        );
    }
    result.map(|()| steps.report)
}

async fn run_steps(config: &Config, opts: &Options, mut stop: watch::Receiver<bool>, steps: &mut Steps) -> Result<()> {
    let settings = &config.cutover;
    let slot = &config.replication.slot;
    let t0 = Instant::now();
    let source = connect(&config.source, Side::Source).await?;
    let target = connect(&config.target, Side::Target).await?;
    catalog::prepare_session(&source)
        .await
        .db(|| "preparing the source session".into())?;

    // checks
    let tables = load_tables(config, &source, &target).await?;
    let mut problems = Vec::new();
    match state::progress(&target, slot).await? {
        Some(p) if p.phase == Phase::Streaming => {}
        Some(_) => problems.push(format!("the snapshot of slot {slot} has not completed yet")),
        None => problems.push(format!(
            "the target has no progress for slot {slot}: run `pgvshift run --config {}` first",
            config.path.display()
        )),
    }
    if !slot_active(&source, slot).await? {
        problems.push(format!(
            "no `pgvshift run` is streaming from slot {slot}: start `pgvshift run --config {}` and keep it running during the cutover (cutover does not stream itself, so that streaming goes on whatever happens to the cutover)",
            config.path.display()
        ));
    }
    for m in &tables {
        let ok: bool = source
            .query_one(
                "SELECT has_table_privilege(c.oid, 'UPDATE') OR has_table_privilege(c.oid, 'DELETE') \
                        OR has_table_privilege(c.oid, 'TRUNCATE') OR pg_has_role(c.relowner, 'USAGE') \
                   FROM pg_class c WHERE c.oid = $1",
                &[&m.table.relid],
            )
            .await
            .db(|| format!("reading privileges on {}", m.table.name))?
            .get(0);
        if !ok {
            problems.push(format!(
                "the source role cannot fence {} (LOCK ... IN SHARE MODE needs UPDATE, DELETE or TRUNCATE on it, or its ownership): GRANT UPDATE ON {} TO {}",
                m.table.name,
                m.table.name.quoted(),
                quote_ident(&config.source.user)
            ));
        }
    }
    let seqs = plan_sequences(&source, &target, &tables, &mut problems).await?;
    if problems.is_empty() {
        steps.step(
            "checks",
            "ok",
            format!(
                "`run` is streaming from slot {slot}; {} table(s), {} sequence(s)",
                tables.len(),
                seqs.len()
            ),
            t0,
        );
    } else {
        let detail = problems.join("; ");
        steps.step("checks", "failed", detail.clone(), t0);
        return Err(Error::Failed(format!("cutover cannot start: {detail}")));
    }

    // (a) lag
    let t = Instant::now();
    if opts.dry_run {
        let (l, current, applied) = lag(&source, &target, slot).await?;
        steps.step(
            "lag",
            "dry_run",
            format!(
                "lag now {} (source at {current}, target applied {applied}); would wait up to {} s for it to be at most {}",
                bytes(l),
                settings.wait_timeout.as_secs(),
                bytes(settings.max_lag)
            ),
            t,
        );
    } else {
        loop {
            let (l, current, applied) = lag(&source, &target, slot).await?;
            if l <= settings.max_lag {
                steps.step(
                    "lag",
                    "ok",
                    format!(
                        "lag {} <= {} (source at {current}, target applied {applied})",
                        bytes(l),
                        bytes(settings.max_lag)
                    ),
                    t,
                );
                break;
            }
            if t.elapsed() >= settings.wait_timeout || !slot_active(&source, slot).await? {
                let why = if t.elapsed() >= settings.wait_timeout {
                    format!("the lag stayed above {} for {} s (now {}): let `run` catch up, or raise [cutover] max_lag / wait_timeout_secs", bytes(settings.max_lag), settings.wait_timeout.as_secs(), bytes(l))
                } else {
                    format!("`pgvshift run` stopped streaming from slot {slot}")
                };
                steps.step("lag", "failed", why.clone(), t);
                return Err(Error::Failed(format!("cutover stopped before fencing anything: {why}")));
            }
            if pause(&mut stop, Duration::from_millis(200)).await {
                return Err(interrupted(steps, "lag", t, false));
            }
        }
    }

    // (b) indexes
    let t = Instant::now();
    loop {
        let missing = unbuilt_indexes(&target, &tables).await?;
        let planned: usize = tables.iter().map(|m| planned_indexes(m).len()).sum();
        if missing.is_empty() {
            steps.step(
                "indexes",
                if opts.dry_run { "dry_run" } else { "ok" },
                format!("all {planned} planned target index(es) exist and are valid"),
                t,
            );
            break;
        }
        if opts.dry_run {
            steps.step(
                "indexes",
                "dry_run",
                format!(
                    "not built yet: {}; would wait up to {} s",
                    missing.join("; "),
                    settings.wait_timeout.as_secs()
                ),
                t,
            );
            break;
        }
        if t.elapsed() >= settings.wait_timeout {
            let why = format!(
                "target index(es) not built within {} s: {}",
                settings.wait_timeout.as_secs(),
                missing.join("; ")
            );
            steps.step("indexes", "failed", why.clone(), t);
            return Err(Error::Failed(format!("cutover stopped before fencing anything: {why}")));
        }
        if pause(&mut stop, Duration::from_millis(500)).await {
            return Err(interrupted(steps, "indexes", t, false));
        }
    }

    // sequences that the target lacks: created before the fence (no write pause for DDL)
    let t = Instant::now();
    let to_create: Vec<&SeqPlan> = seqs.iter().filter(|s| s.create.is_some()).collect();
    if to_create.is_empty() {
        steps.step("sequences_prepare", "ok", "every target sequence exists".into(), t);
    } else {
        let mut done = Vec::new();
        for s in &to_create {
            // One transaction per sequence; the ALTER TABLE waits for the applier's open batch
            // at most lock_timeout_secs.
            let mut sql = format!(
                "BEGIN; SET LOCAL lock_timeout = '{}ms'; {}",
                settings.lock_timeout.as_millis(),
                s.create.clone().unwrap_or_default()
            );
            if let Some(d) = &s.set_default {
                sql.push_str("; ");
                sql.push_str(d);
            }
            sql.push_str("; COMMIT");
            if !opts.dry_run {
                if let Err(e) = target.batch_execute(&sql).await {
                    let _ = target.batch_execute("ROLLBACK").await;
                    return Err(Error::Db {
                        context: format!("creating sequence {} on the target (before fencing anything)", s.target),
                        source: e,
                    });
                }
            }
            done.push(format!(
                "{}{}",
                s.target,
                if s.set_default.is_some() {
                    format!(" (default of {}.{})", s.target_table, display_ident(&s.target_column))
                } else {
                    String::new()
                }
            ));
        }
        steps.step(
            "sequences_prepare",
            if opts.dry_run { "dry_run" } else { "ok" },
            format!(
                "{} on the target: {}",
                if opts.dry_run { "would create" } else { "created" },
                done.join(", ")
            ),
            t,
        );
    }

    let names: Vec<QualifiedName> = tables.iter().map(|m| m.table.name.clone()).collect();
    let idle = fence_idle_timeout(settings.max_write_pause, settings.hold_fence);
    if opts.dry_run {
        return dry_run_rest(config, opts, &source, &target, &names, &seqs, idle, steps).await;
    }

    // (c) fence
    let t = Instant::now();
    let fence = match Fence::acquire(config, &names, idle).await {
        Ok(f) => f,
        Err(e) => {
            let holders = lock_holders(&source, &names).await.unwrap_or_default();
            let why = format!(
                "{e}{}",
                if holders.is_empty() {
                    String::new()
                } else {
                    format!(
                        "; sessions holding or waiting for locks on these tables: {}",
                        holders.join("; ")
                    )
                }
            );
            steps.step("fence", "failed", why.clone(), t);
            return Err(Error::Failed(format!("cutover stopped without fencing: {why}")));
        }
    };
    steps.report.fence_granted_unix_ms = Some(fence.granted_unix_ms);
    steps.step(
        "fence",
        "ok",
        format!(
            "{} held by session {} (writes from every role wait; reads go on)",
            fence_sql(&names),
            fence_application_name(slot)
        ),
        t,
    );
    let fenced = fenced_steps(config, opts, &source, &target, &seqs, &fence, &mut stop, steps).await;
    match fenced {
        Ok(()) => {}
        Err(e) => {
            let held = fence.lift(false).await;
            steps.report.write_pause_ms = Some(held.as_secs_f64() * 1000.0);
            steps.report.fence_lifted_unix_ms = Some(unix_ms());
            steps.step(
                "lift",
                "ok",
                format!(
                    "fence lifted after a write pause of {:.0} ms; `run` goes on streaming",
                    held.as_secs_f64() * 1000.0
                ),
                Instant::now(),
            );
            return Err(e);
        }
    }

    // (g) switch
    let switch_ms = fence.acquired.elapsed().as_secs_f64() * 1000.0;
    steps.report.switch_after_ms = Some(switch_ms);
    steps.step(
        "switch",
        "ok",
        format!("writes paused for {switch_ms:.0} ms so far: switch the application now"),
        Instant::now(),
    );
    if !opts.json {
        println!(
            ">>> switch the application now: the target holds everything up to {} <<<",
            steps.report.fence_lsn.as_deref().unwrap_or("-")
        );
    }
    tracing::warn!(slot = %slot, "switch the application now");
    if !settings.hold_fence.is_zero() {
        steps.say(&format!(
            "holding the fence for {} s (SIGINT/SIGTERM lifts it now)",
            settings.hold_fence.as_secs()
        ));
        pause(&mut stop, settings.hold_fence).await;
    }
    let t = Instant::now();
    let held = fence.lift(true).await;
    steps.report.write_pause_ms = Some(held.as_secs_f64() * 1000.0);
    steps.report.fence_lifted_unix_ms = Some(unix_ms());
    steps.step(
        "lift",
        "ok",
        format!(
            "fence lifted: writes to the migrated tables were paused for {:.0} ms in all",
            held.as_secs_f64() * 1000.0
        ),
        t,
    );

    // (h) slot and publication
    if opts.drop_slot {
        let t = Instant::now();
        steps.say(&format!(
            "stop `pgvshift run --config {}` now (SIGINT/SIGTERM): the slot is dropped once it has stopped (waiting up to {} s)",
            config.path.display(),
            settings.wait_timeout.as_secs()
        ));
        while slot_active(&source, slot).await? {
            if t.elapsed() >= settings.wait_timeout || pause(&mut stop, Duration::from_millis(200)).await {
                let why = format!(
                    "the cutover completed, but `run` still streams from slot {slot}: stop it, then `pgvshift cleanup --config {} --yes`",
                    config.path.display()
                );
                steps.step("drop_slot", "failed", why.clone(), t);
                return Err(Error::Failed(why));
            }
        }
        let actions = crate::run::cleanup(config, true).await?;
        steps.step("drop_slot", "ok", actions.join("; "), t);
    }
    Ok(())
}

/// (lag in bytes, source WAL insert position, target applied position).
async fn lag(source: &Client, target: &Client, slot: &str) -> Result<(u64, Lsn, Lsn)> {
    let current = insert_lsn(source).await?;
    let applied = applied_lsn(target, slot).await?.unwrap_or_default();
    Ok((current.0.saturating_sub(applied.0), current, applied))
}

/// Sleep `d`, or less if a stop is requested; true when stopped.
async fn pause(stop: &mut watch::Receiver<bool>, d: Duration) -> bool {
    if *stop.borrow() {
        return true;
    }
    tokio::select! {
        _ = tokio::time::sleep(d) => {}
        _ = stop.wait_for(|s| *s) => return true,
    }
    let stopped = *stop.borrow();
    stopped
}

fn interrupted(steps: &mut Steps, step: &str, t: Instant, fenced: bool) -> Error {
    let why = if fenced {
        "interrupted (SIGINT/SIGTERM): lifting the fence"
    } else {
        "interrupted (SIGINT/SIGTERM) before fencing anything"
    };
    steps.step(step, "failed", why.into(), t);
    Error::Failed(format!("cutover {why}; `run` goes on streaming"))
}

/// (d), (e), (f): under the fence, within `max_write_pause` of it.
#[allow(clippy::too_many_arguments)]
async fn fenced_steps(
    config: &Config,
    opts: &Options,
    source: &Client,
    target: &Client,
    seqs: &[SeqPlan],
    fence: &Fence,
    stop: &mut watch::Receiver<bool>,
    steps: &mut Steps,
) -> Result<()> {
    let settings = &config.cutover;
    let deadline = fence.acquired + settings.max_write_pause;
    let left = || deadline.saturating_duration_since(Instant::now());
    let over = |what: &str| {
        Error::Failed(format!(
            "cutover gave up: {what} did not complete within max_write_pause_secs = {} of the fence",
            settings.max_write_pause.as_secs()
        ))
    };

    // (d) the fence position, applied on the target
    let t = Instant::now();
    let fence_lsn = insert_lsn(source).await?;
    steps.report.fence_lsn = Some(fence_lsn.to_string());
    nudge(source).await;
    let applied = tokio::select! {
        r = wait_applied(target, &config.replication.slot, fence_lsn, left()) => r?,
        _ = stop.wait_for(|s| *s) => return Err(interrupted(steps, "fence_applied", t, true)),
    };
    match applied {
        Some(a) => steps.step(
            "fence_applied",
            "ok",
            format!("fence position {fence_lsn}; the target has applied up to {a}"),
            t,
        ),
        None => {
            let a = applied_lsn(target, &config.replication.slot).await?;
            steps.step(
                "fence_applied",
                "failed",
                format!(
                    "the target did not apply up to the fence position {fence_lsn} in time (applied {})",
                    a.map_or_else(|| "-".into(), |a| a.to_string())
                ),
                t,
            );
            return Err(over("applying up to the fence position"));
        }
    }

    // (e) sequences
    let t = Instant::now();
    let mut lines = Vec::new();
    for s in seqs {
        let copy = copy_sequence(source, target, s, false).await?;
        lines.push(format!(
            "{} -> {}: {}",
            copy.source,
            copy.target,
            match copy.set_to {
                Some(v) => format!("set to {v}"),
                None => "already ahead, left alone".into(),
            }
        ));
        steps.report.sequences.push(copy);
    }
    steps.step(
        "sequences",
        "ok",
        if lines.is_empty() {
            "no sequences feed the migrated tables".into()
        } else {
            lines.join("; ")
        },
        t,
    );
    if left().is_zero() {
        return Err(over("copying the sequences"));
    }

    // (f) final verify
    let t = Instant::now();
    let vopts = match settings.final_verify {
        FinalVerify::Off => {
            steps.step("verify", "skipped", "final_verify = \"off\"".into(), t);
            return Ok(());
        }
        FinalVerify::Full => verify::Options::default(),
        FinalVerify::Sample => verify::Options {
            sample_percent: Some(settings.sample_percent),
            ..Default::default()
        },
    };
    let r = tokio::select! {
        r = tokio::time::timeout(left(), verify::verify_at(config, &vopts, Consistency::Fenced(fence_lsn))) => r,
        _ = stop.wait_for(|s| *s) => return Err(interrupted(steps, "verify", t, true)),
    };
    let report = match r {
        Ok(r) => r?,
        Err(_) => {
            steps.step("verify", "failed", "did not complete in time".into(), t);
            return Err(over("the final verify"));
        }
    };
    let rows: u64 = report.tables.iter().map(|t| t.compared_rows).sum();
    let ok = report.ok;
    let summary = report
        .tables
        .iter()
        .map(|t| {
            format!(
                "{}: {} ({} of {} rows compared{})",
                t.source,
                t.status,
                t.compared_rows,
                t.source_rows,
                if t.keys.is_empty() {
                    String::new()
                } else {
                    format!(
                        "; keys {}",
                        t.keys.iter().map(|k| k.key.clone()).collect::<Vec<_>>().join(", ")
                    )
                }
            )
        })
        .collect::<Vec<_>>()
        .join("; ");
    if !opts.json && !ok {
        print!("{}", verify::render(&report));
    }
    steps.report.verify = Some(report);
    if ok {
        steps.step(
            "verify",
            "ok",
            format!("{rows} rows equal at the fence position: {summary}"),
            t,
        );
        Ok(())
    } else {
        steps.step("verify", "failed", summary.clone(), t);
        Err(Error::Failed(format!(
            "cutover gave up: the final verify found differences ({summary}); nothing was switched"
        )))
    }
}

/// The rest of a dry run: what the fenced steps would do, against the current state.
#[allow(clippy::too_many_arguments)]
async fn dry_run_rest(
    config: &Config,
    _opts: &Options,
    source: &Client,
    target: &Client,
    names: &[QualifiedName],
    seqs: &[SeqPlan],
    idle: Duration,
    steps: &mut Steps,
) -> Result<()> {
    let settings = &config.cutover;
    let t = Instant::now();
    let holders = lock_holders(source, names).await?;
    steps.step(
        "fence",
        "dry_run",
        format!(
            "would run `SET lock_timeout = '{}s'; SET idle_in_transaction_session_timeout = '{}s'; BEGIN; {}` in session {}{}",
            settings.lock_timeout.as_secs(),
            idle.as_secs(),
            fence_sql(names),
            fence_application_name(&config.replication.slot),
            if holders.is_empty() {
                "; no session holds a lock on these tables now".to_string()
            } else {
                format!("; it would wait for: {}", holders.join("; "))
            }
        ),
        t,
    );
    let current = insert_lsn(source).await?;
    let applied = applied_lsn(target, &config.replication.slot).await?;
    steps.step(
        "fence_applied",
        "dry_run",
        format!(
            "would record the source position once fenced and wait for the target to apply it (now: source {current}, target applied {}); (d)-(f) within {} s",
            applied.map_or_else(|| "-".into(), |a| a.to_string()),
            settings.max_write_pause.as_secs()
        ),
        t,
    );
    let mut lines = Vec::new();
    for s in seqs {
        let copy = copy_sequence(source, target, s, true).await?;
        lines.push(format!(
            "{} (last_value {}, is_called {}) -> {} ({})",
            copy.source,
            copy.source_last_value.map_or_else(|| "-".into(), |v| v.to_string()),
            copy.source_is_called.map_or_else(|| "-".into(), |v| v.to_string()),
            copy.target,
            copy.note.clone().unwrap_or_default()
        ));
        steps.report.sequences.push(copy);
    }
    steps.step(
        "sequences",
        "dry_run",
        if lines.is_empty() {
            "no sequences feed the migrated tables".into()
        } else {
            format!("would copy: {}", lines.join("; "))
        },
        t,
    );
    steps.step(
        "verify",
        "dry_run",
        match settings.final_verify {
            FinalVerify::Off => "final_verify = \"off\": none".into(),
            FinalVerify::Full => "would compare every row at the fence position".into(),
            FinalVerify::Sample => format!(
                "would compare row counts and a {} % sample (at least {} rows per table) at the fence position",
                settings.sample_percent,
                verify::SAMPLE_MIN_ROWS
            ),
        },
        t,
    );
    steps.step(
        "switch",
        "dry_run",
        format!(
            "would print the write pause and \"switch the application now\", hold the fence {} s, then lift it{}",
            settings.hold_fence.as_secs(),
            if _opts.drop_slot {
                "; then wait for `run` to stop and drop the slot and publication"
            } else {
                ""
            }
        ),
        t,
    );
    Ok(())
}

async fn load_tables(config: &Config, source: &Client, target: &Client) -> Result<Vec<Migrated>> {
    let states = state::load_tables(target, &config.replication.slot)
        .await
        .db(|| "reading pgvshift.tables on the target".into())?;
    let mut out = Vec::new();
    for tc in &config.tables {
        let table = catalog::describe_table(source, &tc.source)
            .await
            .map_err(|e| Error::Runtime(e.to_string()))?;
        let map = mapping::map_table(&table, tc);
        let created_table = states
            .iter()
            .any(|s| s.source_table == table.name.to_string() && s.created_table);
        out.push(Migrated {
            table,
            map,
            created_table,
        });
    }
    Ok(out)
}

fn planned_indexes(m: &Migrated) -> Vec<String> {
    mapping::index_plan(&m.table, &m.map)
        .into_iter()
        .filter(|p| matches!(p.translation, Translation::Create { .. }))
        .map(|p| p.name)
        .collect()
}

/// Planned target indexes that do not exist or are not valid yet, with build progress.
async fn unbuilt_indexes(target: &Client, tables: &[Migrated]) -> Result<Vec<String>> {
    let mut out = Vec::new();
    for m in tables {
        for name in planned_indexes(m) {
            let row = target
                .query_opt(
                    "SELECT i.indisvalid AND i.indisready, \
                            (SELECT p.phase || coalesce(' ' || round(100.0 * p.blocks_done / nullif(p.blocks_total, 0)) || '%', '') \
                               FROM pg_stat_progress_create_index p WHERE p.relid = t.oid LIMIT 1) \
                       FROM pg_index i JOIN pg_class ic ON ic.oid = i.indexrelid \
                       JOIN pg_class t ON t.oid = i.indrelid JOIN pg_namespace n ON n.oid = t.relnamespace \
                      WHERE n.nspname = $1 AND t.relname = $2 AND ic.relname = $3",
                    &[&m.map.target.schema, &m.map.target.name, &name],
                )
                .await
                .db(|| format!("reading the indexes of {}", m.map.target))?;
            match row {
                Some(r) if r.get::<_, bool>(0) => {}
                Some(r) => out.push(format!(
                    "{} on {} is being built ({})",
                    display_ident(&name),
                    m.map.target,
                    r.get::<_, Option<String>>(1).unwrap_or_else(|| "not valid yet".into())
                )),
                None => out.push(format!(
                    "{} on {} does not exist{}",
                    display_ident(&name),
                    m.map.target,
                    if m.map.config.index_ddl_only {
                        " (index_ddl_only: run the DDL `pgvshift plan` prints)"
                    } else {
                        ""
                    }
                )),
            }
        }
    }
    Ok(out)
}
