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
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};

use futures_util::{SinkExt, StreamExt};

use crate::apply::state;
use crate::config::Config;
use crate::config::Side;
use crate::error::{DbContext, Error, Result, SNAPSHOT_SESSION_LOST};
use crate::observe::stats::{CopyProgress, TableProgress};
use crate::schema::catalog::Table;
use crate::schema::mapping::TableMap;
use crate::source::connect;
use crate::source::copyframe::Transcoder;
use crate::sql::{quote_ident, quote_literal, QualifiedName};
use crate::translate::{self, Conversion};

/// One table to copy, with its mapping onto the target (names, conversions).
#[derive(Debug, Clone)]
pub struct CopyJob {
    pub source: Table,
    pub map: TableMap,
    /// The target's type of each replicated column (for casts from staged text values).
    pub target_types: Vec<String>,
}

/// Staging table for rows whose values are in a text form (dropped at commit).
const STAGE: &str = "pgvshift_copy_stage";

impl CopyJob {
    fn source_columns(&self) -> String {
        self.map
            .replicated()
            .map(|c| quote_ident(&c.source))
            .collect::<Vec<_>>()
            .join(", ")
    }

    fn target_columns(&self) -> String {
        self.map
            .replicated()
            .map(|c| quote_ident(&c.target))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// Copy every job under the exported snapshot with `workers` parallel connections.
/// Returns rows copied per job, in job order.
pub async fn copy_tables(
    config: &Config,
    snapshot_name: &str,
    jobs: Vec<CopyJob>,
    progress: Arc<CopyProgress>,
) -> Result<Vec<(QualifiedName, u64)>> {
    progress.register(
        jobs.iter()
            .map(|j| TableProgress {
                name: j.source.name.to_string(),
                estimated_rows: j.source.estimated_rows,
                estimated_bytes: j.source.table_bytes,
                bytes: 0,
                rows: None,
                started: None,
                finished: None,
            })
            .collect(),
    );
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
            .map_err(|e| import_error(e, &snapshot))?;
            let mut tgt = connect(&target, Side::Target).await?;
            let mut done = Vec::new();
            loop {
                let job = queue.lock().unwrap().pop_front();
                let Some(job) = job else { break };
                let rows = copy_one(&src, &mut tgt, &slot, &job, &progress).await?;
                progress.tables_done.fetch_add(1, Ordering::Relaxed);
                done.push((job.source.name.clone(), rows));
            }
            src.batch_execute("COMMIT")
                .await
                .db(|| "ending the snapshot transaction".into())?;
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

/// A snapshot that cannot be imported (22023 invalid_parameter_value, "invalid snapshot
/// identifier") no longer exists: the slot's session that exported it is gone, which only a
/// lost connection does (pgvshift keeps it open and idle until the copy is done). Reported as
/// such, so that `run` reconnects and starts the snapshot over.
fn import_error(e: tokio_postgres::Error, snapshot: &str) -> Error {
    if e.code() == Some(&tokio_postgres::error::SqlState::INVALID_PARAMETER_VALUE) {
        return Error::Runtime(format!(
            "{SNAPSHOT_SESSION_LOST} (importing snapshot {snapshot} on the source: {})",
            crate::error::describe(&e)
        ));
    }
    Error::Db {
        context: format!("importing the slot's exported snapshot {snapshot} on the source"),
        source: e,
    }
}

async fn copy_one(
    src: &tokio_postgres::Client,
    tgt: &mut tokio_postgres::Client,
    slot: &str,
    job: &CopyJob,
    progress: &CopyProgress,
) -> Result<u64> {
    let target = &job.map.target;
    let started = std::time::Instant::now();
    let source_name = job.source.name.to_string();
    progress.update(&source_name, |t| t.started = Some(started));
    let tx = tgt
        .transaction()
        .await
        .db(|| format!("starting the copy of {target} on the target"))?;
    // Values converted to a TEXT form (PGVecto.rs) cannot go into a binary COPY of their target
    // type: they are staged in text columns and cast by one INSERT ... SELECT.
    let staged = job.map.replicated().any(|c| c.conversion.text_output());
    let copy_into = if staged {
        let columns: Vec<String> = job
            .map
            .replicated()
            .zip(&job.target_types)
            .map(|(c, ty)| {
                format!(
                    "{} {}",
                    quote_ident(&c.target),
                    if c.conversion.text_output() {
                        "text"
                    } else {
                        ty.as_str()
                    }
                )
            })
            .collect();
        tx.batch_execute(&format!(
            "CREATE TEMP TABLE {STAGE} ({}) ON COMMIT DROP",
            columns.join(", ")
        ))
        .await
        .db(|| format!("creating a staging table for {target}"))?;
        format!("pg_temp.{STAGE}")
    } else {
        target.quoted()
    };
    let sink = tx
        .copy_in(&format!(
            "COPY {copy_into} ({}) FROM STDIN (FORMAT binary)",
            job.target_columns()
        ))
        .await
        .db(|| format!("starting COPY into {target} on the target"))?;
    let stream = src
        .copy_out(&format!(
            "COPY {} ({}) TO STDOUT (FORMAT binary)",
            job.source.name.quoted(),
            job.source_columns()
        ))
        .await
        .db(|| format!("starting COPY out of {} on the source", job.source.name))?;
    futures_util::pin_mut!(sink);
    futures_util::pin_mut!(stream);
    // Identical types: the bytes pass through unparsed. Otherwise each row is re-framed and the
    // converted columns rewritten (vector -> halfvec, vector -> real[], ...).
    let columns: Vec<_> = job.map.replicated().collect();
    let conversions: Vec<Conversion> = columns.iter().map(|c| c.conversion).collect();
    let key_fields: Vec<(usize, &str)> = job
        .map
        .primary_key
        .iter()
        .filter_map(|k| columns.iter().position(|c| &c.target == k).map(|i| (i, k.as_str())))
        .collect();
    let mut transcoder = job.map.converts().then(|| Transcoder::new(columns.len()));
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.db(|| format!("reading {} from the source", job.source.name))?;
        progress.bytes.fetch_add(chunk.len() as u64, Ordering::Relaxed);
        progress.update(&source_name, |t| t.bytes += chunk.len() as u64);
        let chunk = match transcoder.as_mut() {
            None => chunk,
            Some(t) => {
                let mut out = bytes::BytesMut::with_capacity(chunk.len());
                t.push(&chunk, &mut out, |field, value, row| match conversions[field] {
                    Conversion::Passthrough => Ok(None),
                    conversion => translate::convert(conversion, value).map(Some).map_err(|e| {
                        let key = job.map.describe_key(|k| {
                            key_fields
                                .iter()
                                .find(|(_, n)| *n == k)
                                .and_then(|(i, _)| row.field(*i))
                        });
                        format!(
                            "row {key}, column {} ({} -> {}, profile {}): {e}",
                            quote_ident(&columns[field].source),
                            columns[field].source_type,
                            columns[field].target_type,
                            columns[field].profile
                        )
                    }),
                })
                .map_err(|e| Error::Runtime(format!("copying {} to {target}: {e}", job.source.name)))?;
                out.freeze()
            }
        };
        sink.feed(chunk)
            .await
            .db(|| format!("writing into {target} on the target"))?;
    }
    if let Some(t) = &transcoder {
        t.finish()
            .map_err(|e| Error::Runtime(format!("copying {} to {target}: {e}", job.source.name)))?;
    }
    let mut rows = sink
        .finish()
        .await
        .db(|| format!("finishing COPY into {target} on the target"))?;
    if staged {
        let casts: Vec<String> = job
            .map
            .replicated()
            .zip(&job.target_types)
            .map(|(c, ty)| {
                if c.conversion.text_output() {
                    format!("{}::{ty}", quote_ident(&c.target))
                } else {
                    quote_ident(&c.target)
                }
            })
            .collect();
        rows = tx
            .execute(
                &format!(
                    "INSERT INTO {} ({}) SELECT {} FROM pg_temp.{STAGE}",
                    target.quoted(),
                    job.target_columns(),
                    casts.join(", ")
                ),
                &[],
            )
            .await
            .db(|| format!("moving staged rows into {target}"))?;
    }
    state::set_table_state(&tx, slot, &job.source.name.to_string(), "copied", Some(rows as i64))
        .await
        .db(|| "recording copy progress".into())?;
    tx.commit().await.db(|| format!("committing the copy of {target}"))?;
    progress.rows.fetch_add(rows, Ordering::Relaxed);
    progress.update(&source_name, |t| {
        t.rows = Some(rows);
        t.finished = Some(std::time::Instant::now());
    });
    tracing::info!(
        table = %job.source.name,
        target = %target,
        rows,
        seconds = format!("{:.2}", started.elapsed().as_secs_f64()),
        "copied"
    );
    Ok(rows)
}
