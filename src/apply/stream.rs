//! Stream driver: slot -> decoder -> applier, with batching, confirmation and clean stops.
//!
//! ```text
//!  Stream::next ──Begin──> Applier::begin (skip if applied before)
//!               ──Data───> pgoutput::decode -> Applier::handle
//!               ──Commit─> Applier::commit; flush when the batch is full or no event is ready
//!                          flush = COMMIT on target with progress row -> Stream::confirm(lsn)
//!               ──KeepAlive (idle, nothing open)─> record the idle position, then confirm it
//! ```
//! A stop request (SIGINT/SIGTERM) is honoured between source transactions: the batch is
//! committed and confirmed, then the stream ends. A stop arriving mid-transaction lets that
//! transaction finish first (pgoutput protocol 1 sends each transaction whole, at its commit).

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::FutureExt;
use tokio::sync::watch;

use crate::apply::{Applier, TargetTable};
use crate::config::Config;
use crate::config::Side;
use crate::error::{Error, Result, SOURCE_ENDED_STREAM};
use crate::observe::stats::ApplyStats;
use crate::source::connect;
use crate::source::pgoutput;
use crate::source::replication::{Event, Stream};
use crate::Lsn;

/// A batch of small source transactions is committed at the latest this long after it opened.
const MAX_BATCH_AGE: Duration = Duration::from_millis(500);

/// Stream from `start` until `stop` becomes true (or the stream fails).
pub async fn stream_changes(
    config: &Config,
    tables: Vec<TargetTable>,
    start: Lsn,
    mut stop: watch::Receiver<bool>,
    stats: Arc<ApplyStats>,
) -> Result<Lsn> {
    let target = connect(&config.target, Side::Target).await?;
    crate::apply::state::tag_session(&target, &config.replication.slot)
        .await
        .map_err(|source| Error::Db {
            context: "tagging the target session".into(),
            source,
        })?;
    // One applier per slot. After a crash the previous process's backend may still be finishing
    // a COMMIT; it holds this lock until it has, so applied_lsn is read only after it is ours.
    crate::apply::state::lock_slot(&target, &config.replication.slot).await?;
    let start = match crate::apply::state::load_progress(&target, &config.replication.slot)
        .await
        .map_err(|source| Error::Db {
            context: "reading pgvshift.progress".into(),
            source,
        })? {
        Some(p) => p.applied_lsn.unwrap_or(start).max(start),
        None => start,
    };
    // LangChain mode: the router learns the collections and their tables from the target.
    let router = match &config.langchain {
        Some(_) => Some(crate::langchain::stream::Router::load(config, &target).await?),
        None => None,
    };
    let mut applier = Applier::new(target, &config.replication.slot, tables, start, stats.clone()).await?;
    if let Some(router) = router {
        applier.enable_langchain(router)?;
    }
    let mut stream = Stream::start(
        &config.source,
        &config.replication.slot,
        &config.replication.publication,
        start,
        config.replication.status_interval,
    )
    .await?;
    tracing::info!(slot = %config.replication.slot, from = %start, "streaming changes");

    let batch_max = config.replication.batch_max_changes;
    let idle_every = config.replication.status_interval;
    let mut last_idle_write = Instant::now();
    let mut in_txn = false;
    let mut stopping = *stop.borrow();
    let mut last_log = Instant::now();
    let mut batch_started = Instant::now();
    // Where the time goes (logged at the end): waiting for the source vs. applying.
    let mut waited = Duration::ZERO;
    let started = Instant::now();

    loop {
        if stopping && !in_txn {
            break;
        }
        // Between source transactions with a batch open: commit it unless more is already
        // waiting (then keep batching, up to batch_max_changes or MAX_BATCH_AGE).
        let ready = if !in_txn && applier.has_open_batch() {
            match stream.next().now_or_never() {
                Some(ev) if batch_started.elapsed() < MAX_BATCH_AGE => Some(ev),
                other => {
                    if let Some(lsn) = applier.flush().await? {
                        stream.confirm(lsn);
                    }
                    other
                }
            }
        } else {
            None
        };
        let event = match ready {
            Some(ev) => ev?,
            None => tokio::select! {
                biased;
                changed = stop.changed(), if !stopping => {
                    if changed.is_err() || *stop.borrow() {
                        stopping = true;
                        tracing::info!("stop requested: finishing the current transaction");
                    }
                    continue;
                }
                ev = async {
                    let t = Instant::now();
                    let ev = stream.next().await;
                    waited += t.elapsed();
                    ev
                } => ev?,
            },
        };
        let Some(event) = event else {
            return Err(Error::Runtime(SOURCE_ENDED_STREAM.into()));
        };
        match event {
            Event::Begin { final_lsn, xid, .. } => {
                in_txn = true;
                if !applier.has_open_batch() {
                    batch_started = Instant::now();
                }
                applier.begin(final_lsn, xid).await?;
            }
            Event::Data(bytes) => {
                let msg = pgoutput::decode(&bytes).map_err(|e| {
                    Error::Runtime(format!(
                        "decoding a pgoutput message after {}: {e}",
                        applier.applied_lsn()
                    ))
                })?;
                applier.handle(msg).await?;
            }
            Event::Commit {
                end_lsn,
                commit_time_micros,
                ..
            } => {
                in_txn = false;
                applier.commit(end_lsn, commit_time_micros);
                if applier.batch_changes() >= batch_max {
                    if let Some(lsn) = applier.flush().await? {
                        stream.confirm(lsn);
                    }
                }
            }
            Event::Message { .. } => {}
            Event::KeepAlive { wal_end } => {
                if !in_txn
                    && !applier.has_open_batch()
                    && last_idle_write.elapsed() >= idle_every
                    && applier.advance_idle(wal_end).await?
                {
                    last_idle_write = Instant::now();
                    stream.confirm(wal_end);
                }
            }
        }
        if last_log.elapsed() >= Duration::from_secs(10) {
            last_log = Instant::now();
            tracing::info!(
                applied = %applier.applied_lsn(),
                transactions = stats.transactions.load(std::sync::atomic::Ordering::Relaxed),
                inserts = stats.inserts.load(std::sync::atomic::Ordering::Relaxed),
                updates = stats.updates.load(std::sync::atomic::Ordering::Relaxed),
                deletes = stats.deletes.load(std::sync::atomic::Ordering::Relaxed),
                "streaming"
            );
        }
    }
    if let Some(lsn) = applier.flush().await? {
        stream.confirm(lsn);
    }
    let applied = applier.applied_lsn();
    stream
        .finish(applied, Duration::from_secs(5) + config.replication.status_interval)
        .await;
    tracing::info!(
        applied = %applied,
        seconds = format!("{:.1}", started.elapsed().as_secs_f64()),
        waiting_for_source_seconds = format!("{:.1}", waited.as_secs_f64()),
        "stopped; everything applied is committed on the target and confirmed to the source"
    );
    Ok(applied)
}
