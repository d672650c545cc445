//! Snapshot copier.
//!
//! ```text
//!   slot session (idle, holds the exported snapshot)
//!        |
//!   worker 1..N: source  BEGIN REPEATABLE READ READ ONLY; SET TRANSACTION SNAPSHOT 'name'
//!                        COPY "s"."t" (cols) TO STDOUT (FORMAT binary) ----+  bytes, unparsed
//!                target  BEGIN; COPY "s"."t" (cols) FROM STDIN (FORMAT binary) <-+
//!                        UPDATE pgvshift.tables SET state = 'copied'; COMMIT
//! ```
//! Values of identical types pass through as the source's binary bytes: nothing is parsed to
//! text and back. Each table lands in one target transaction with its state row.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use futures_util::{SinkExt, StreamExt};

use crate::catalog::Table;
use crate::config::Config;
use crate::error::{DbContext, Error, Result};
use crate::pg::{connect, Side};
use crate::sql::{quote_ident, quote_literal, QualifiedName};
use crate::state;

/// One table to copy.
#[derive(Debug, Clone)]
pub struct CopyJob {
    pub source: Table,
    pub target: QualifiedName,
}

impl CopyJob {
    fn column_list(&self) -> String {
        self.source.replicated_columns().map(|c| quote_ident(&c.name)).collect::<Vec<_>>().join(", ")
    }
}

/// Live counters, readable while the copy runs.
#[derive(Debug, Default)]
pub struct CopyProgress {
    pub bytes: AtomicU64,
    pub tables_done: AtomicU64,
    pub rows: AtomicU64,
}

/// Copy every job under the exported snapshot with `workers` parallel connections.
/// Returns rows copied per job, in job order.
pub async fn copy_tables(
    config: &Config,
    snapshot_name: &str,
    jobs: Vec<CopyJob>,
    progress: Arc<CopyProgress>,
) -> Result<Vec<(QualifiedName, u64)>> {
    let queue = Arc::new(Mutex::new(jobs.into_iter().collect::<VecDeque<_>>()));
    let workers = config.snapshot.workers.max(1).min(queue.lock().unwrap().len().max(1));
    let mut handles = Vec::new();
    for _ in 0..workers {
        let queue = queue.clone();
        let progress = progress.clone();
        let source = config.source.clone();
        let target = config.target.clone();
        let slot = config.replication.slot.clone();
        let snapshot = snapshot_name.to_string();
        handles.push(tokio::spawn(async move {
            let src = connect(&source, Side::Source).await?;
            src.batch_execute(&format!(
                "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY; SET TRANSACTION SNAPSHOT {}",
                quote_literal(&snapshot)
            ))
            .await
            .db(|| format!("importing the slot's exported snapshot {snapshot} on the source"))?;
            let mut tgt = connect(&target, Side::Target).await?;
            let mut done = Vec::new();
            loop {
                let job = queue.lock().unwrap().pop_front();
                let Some(job) = job else { break };
                let rows = copy_one(&src, &mut tgt, &slot, &job, &progress).await?;
                progress.tables_done.fetch_add(1, Ordering::Relaxed);
                done.push((job.source.name.clone(), rows));
            }
            src.batch_execute("COMMIT").await.db(|| "ending the snapshot transaction".into())?;
            Ok::<_, Error>(done)
        }));
    }
    let mut all = Vec::new();
    let mut first_error = None;
    for h in handles {
        match h.await {
            Ok(Ok(done)) => all.extend(done),
            Ok(Err(e)) => {
                first_error.get_or_insert(e);
            }
            Err(join) => {
                first_error.get_or_insert(Error::Runtime(format!("a copy worker failed: {join}")));
            }
        }
    }
    match first_error {
        Some(e) => Err(e),
        None => Ok(all),
    }
}

async fn copy_one(
    src: &tokio_postgres::Client,
    tgt: &mut tokio_postgres::Client,
    slot: &str,
    job: &CopyJob,
    progress: &CopyProgress,
) -> Result<u64> {
    let cols = job.column_list();
    let started = std::time::Instant::now();
    let tx = tgt.transaction().await.db(|| format!("starting the copy of {} on the target", job.target))?;
    let sink = tx
        .copy_in(&format!("COPY {} ({cols}) FROM STDIN (FORMAT binary)", job.target.quoted()))
        .await
        .db(|| format!("starting COPY into {} on the target", job.target))?;
    let stream = src
        .copy_out(&format!("COPY {} ({cols}) TO STDOUT (FORMAT binary)", job.source.name.quoted()))
        .await
        .db(|| format!("starting COPY out of {} on the source", job.source.name))?;
    futures_util::pin_mut!(sink);
    futures_util::pin_mut!(stream);
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.db(|| format!("reading {} from the source", job.source.name))?;
        progress.bytes.fetch_add(chunk.len() as u64, Ordering::Relaxed);
        sink.feed(chunk).await.db(|| format!("writing {} into the target", job.target))?;
    }
    let rows = sink.finish().await.db(|| format!("finishing COPY into {} on the target", job.target))?;
    state::set_table_state(&tx, slot, &job.source.name.to_string(), "copied", Some(rows as i64))
        .await
        .db(|| "recording copy progress".into())?;
    tx.commit().await.db(|| format!("committing the copy of {}", job.target))?;
    progress.rows.fetch_add(rows, Ordering::Relaxed);
    tracing::info!(
        table = %job.source.name,
        target = %job.target,
        rows,
        seconds = format!("{:.2}", started.elapsed().as_secs_f64()),
        "copied"
    );
    Ok(rows)
}
