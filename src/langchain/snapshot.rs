//! The snapshot in LangChain mode: under the slot's exported snapshot, one COPY out of
//! `langchain_pg_embedding` (every column but nothing parsed except what is transformed),
//! rows routed by collection into per-collection buffers, and those written by N target
//! workers (`[snapshot] workers`), each in one transaction: a binary COPY into the
//! collection's table plus a COPY of the rows' routes.
//!
//! ```text
//!  source COPY (SELECT key, .., cmetadata FROM langchain_pg_embedding) TO STDOUT (binary)
//!    -> RowReader -> Transformer -> buffer per collection (4 MiB; 64 MiB in all)
//!    -> worker (collection hash) : COPY "schema"."table" FROM STDIN (binary)
//!                                  COPY pgvshift.langchain_routes FROM STDIN (binary)
//!  all workers done -> COMMIT each -> counts -> vector indexes of tables >= index_min_rows
//! ```
//! A failure anywhere rolls every worker back; the snapshot then starts over as any other
//! (the tables pgvshift created are dropped by [`reset`]).

use std::collections::{HashMap, HashSet};
use std::sync::atomic::Ordering;
use std::sync::Arc;

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use tokio::sync::mpsc;
use tokio_postgres::Client;
use uuid::Uuid;

use super::check::{plan_collections, LangchainInspection};
use super::config::LangchainConfig;
use super::ddl;
use super::layout::{self, COLLECTION_TABLE, EMBEDDING_TABLE};
use super::state::{self, CollectionRecord};
use super::transform::{Positions, Transformer};
use crate::apply::copy_binary;
use crate::check::Options;
use crate::config::Config;
use crate::config::Side;
use crate::error::{DbContext, Error, Result, SNAPSHOT_SESSION_LOST};
use crate::observe::stats::CopyProgress;
use crate::source::connect;
use crate::source::copyframe::RowReader;
use crate::source::pgoutput::{Tuple, TupleValue};
use crate::sql::{quote_ident, quote_literal, QualifiedName};

/// A collection's buffer is sent to its worker at this size.
const BATCH_BYTES: usize = 4 << 20;
/// All buffers together stay below this (the biggest is sent first).
const BUFFERED_BYTES: usize = 64 << 20;

/// A snapshot that did not complete is started over: drop the collection tables pgvshift
/// created, empty the ones that existed, forget the routes. Before `state::begin_snapshot`.
pub async fn reset(config: &Config, target: &Client) -> Result<()> {
    let slot = &config.replication.slot;
    let st = state::load(target, slot)
        .await
        .db(|| "reading pgvshift.langchain_collections on the target".into())?;
    for c in &st.collections {
        let Some(t) = &c.table else { continue };
        let exists: bool = target
            .query_one("SELECT to_regclass($1) IS NOT NULL", &[&t.quoted()])
            .await
            .db(|| format!("looking for {t} on the target"))?
            .get(0);
        if !exists {
            continue;
        }
        let (sql, what) = if c.created_table {
            (format!("DROP TABLE {}", t.quoted()), "dropping")
        } else {
            (format!("TRUNCATE {}", t.quoted()), "emptying")
        };
        target
            .batch_execute(&sql)
            .await
            .db(|| format!("{what} {t} to restart the snapshot"))?;
    }
    state::forget(target, slot)
        .await
        .db(|| "forgetting the routes of the unfinished snapshot".into())?;
    Ok(())
}

/// What one worker writes.
enum Msg {
    Rows {
        table: Arc<CopyTarget>,
        rows: Vec<Tuple>,
        routes: Vec<Tuple>,
        bytes: usize,
    },
    /// Everything was read: commit.
    Finish,
}

/// A collection table with its COPY statement.
struct CopyTarget {
    name: QualifiedName,
    copy_sql: String,
}

/// Per collection: its table and what was read for it.
struct Route {
    target: Option<Arc<CopyTarget>>,
    worker: usize,
    rows: Vec<Tuple>,
    routes: Vec<Tuple>,
    bytes: usize,
    copied: i64,
    skipped: i64,
}

/// Create the collection tables, copy every selected row under the exported snapshot, record
/// the routes and counts, and build the indexes of the tables that reached `index_min_rows`.
/// Returns the rows copied.
pub async fn copy(
    config: &Config,
    opts: Options,
    inspection: &LangchainInspection,
    snapshot_name: &str,
    target: &mut Client,
    progress: Arc<CopyProgress>,
) -> Result<u64> {
    let lc = config.langchain.as_ref().expect("LangChain mode");
    let slot = &config.replication.slot;
    let started = std::time::Instant::now();
    state::ensure(target)
        .await
        .db(|| "creating pgvshift's LangChain state on the target".into())?;
    let source = connect(&config.source, Side::Source).await?;
    source
        .batch_execute(&format!(
            "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY; SET TRANSACTION SNAPSHOT {}",
            quote_literal(snapshot_name)
        ))
        .await
        .map_err(|e| import_error(e, snapshot_name))?;
    // The collections as of the snapshot (one may have been created since the checks).
    let c = QualifiedName::new(lc.source_schema.clone(), COLLECTION_TABLE);
    let found: Vec<(Uuid, Option<String>, i64)> = source
        .query(&format!("SELECT uuid, name::text FROM {}", c.quoted()), &[])
        .await
        .db(|| format!("reading {c} under the snapshot"))?
        .iter()
        .map(|r| (r.get(0), r.get(1), 0))
        .collect();
    let planned = plan_collections(lc, &found);
    let dims = inspection.dims;

    // The tables and their records, in one transaction.
    let mut created = HashSet::new();
    {
        let tx = target
            .transaction()
            .await
            .db(|| "starting the collection tables' DDL on the target".into())?;
        let columns = ddl::columns(lc, dims);
        let others: Vec<String> = columns[1..].iter().map(|c| c.name.clone()).collect();
        state::begin(
            &tx,
            slot,
            inspection.layout.layout,
            &lc.id_column,
            &lc.id_type.sql(),
            &others,
        )
        .await
        .db(|| "recording the LangChain layout on the target".into())?;
        for p in &planned {
            let mut created_table = false;
            if let Some(t) = &p.table {
                let exists: bool = tx
                    .query_one("SELECT to_regclass($1) IS NOT NULL", &[&t.quoted()])
                    .await
                    .db(|| format!("looking for {t} on the target"))?
                    .get(0);
                if exists {
                    let rows: i64 = tx
                        .query_one(&format!("SELECT count(*) FROM {}", t.quoted()), &[])
                        .await
                        .db(|| format!("counting the rows of {t}"))?
                        .get(0);
                    if rows > 0 && opts.truncate_target {
                        tx.batch_execute(&format!("TRUNCATE {}", t.quoted()))
                            .await
                            .db(|| format!("emptying {t} (--truncate-target)"))?;
                        tracing::warn!(table = %t, rows_removed = rows, "--truncate-target: emptied the collection table before the copy");
                    } else if rows > 0 {
                        return Err(Error::Runtime(format!(
                            "collection table {t} already has {rows} rows: empty it, or pass --truncate-target"
                        )));
                    }
                } else {
                    if let Some(s) = crate::schema::ddl::create_schema_sql(t) {
                        tx.batch_execute(&s)
                            .await
                            .db(|| format!("creating schema {}", quote_ident(&t.schema)))?;
                    }
                    tx.batch_execute(&ddl::create_table_sql(lc, t, dims))
                        .await
                        .db(|| format!("creating collection table {t}"))?;
                    created_table = true;
                    created.insert(p.collection);
                }
            }
            state::insert_collection(
                &tx,
                slot,
                &CollectionRecord {
                    collection: p.collection,
                    name: p.name.clone(),
                    selected: p.selected,
                    table: p.table.clone(),
                    created_table,
                    deleted: false,
                    rows_copied: 0,
                    rows_streamed: 0,
                    skipped_rows: 0,
                    index_built: false,
                },
            )
            .await
            .db(|| "recording a collection".into())?;
        }
        tx.commit()
            .await
            .db(|| "committing the collection tables' DDL".into())?;
    }
    for p in planned.iter().filter(|p| p.table.is_some()) {
        tracing::info!(
            collection = p.name.as_deref().unwrap_or(""),
            table = %p.table.as_ref().expect("selected"),
            "{} collection table",
            if created.contains(&p.collection) { "created" } else { "using the existing" }
        );
    }

    // Workers.
    let workers = config.snapshot.workers.max(1);
    let mut senders = Vec::new();
    let mut handles = Vec::new();
    for _ in 0..workers {
        let (tx, rx) = mpsc::channel::<Msg>(2);
        senders.push(tx);
        let endpoint = config.target.clone();
        handles.push(tokio::spawn(worker(endpoint, rx)));
    }
    let columns = ddl::columns(lc, dims);
    let column_list = columns
        .iter()
        .map(|c| quote_ident(&c.name))
        .collect::<Vec<_>>()
        .join(", ");
    let mut routes: HashMap<Uuid, Route> = planned
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let target = p.table.as_ref().map(|t| {
                Arc::new(CopyTarget {
                    name: t.clone(),
                    copy_sql: format!("COPY {} ({column_list}) FROM STDIN (FORMAT binary)", t.quoted()),
                })
            });
            (
                p.collection,
                Route {
                    target,
                    worker: i % workers,
                    rows: Vec::new(),
                    routes: Vec::new(),
                    bytes: 0,
                    copied: 0,
                    skipped: 0,
                },
            )
        })
        .collect();
    let read = read_rows(config, lc, inspection, &source, &mut routes, &senders, &progress).await;
    let read = match read {
        Ok(n) => {
            // Everything read: each worker commits.
            for s in &senders {
                let _ = s.send(Msg::Finish).await;
            }
            Ok(n)
        }
        Err(e) => Err(e),
    };
    drop(senders);
    let mut worker_error = None;
    for h in handles {
        match h.await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                worker_error.get_or_insert(e);
            }
            Err(join) => {
                worker_error.get_or_insert(Error::Runtime(format!("a copy worker failed: {join}")));
            }
        }
    }
    // A worker's own error explains a reader that could not hand it rows.
    let (null_rows, unselected_rows) = match (read, worker_error) {
        (Ok(n), None) => n,
        (_, Some(e)) | (Err(e), None) => return Err(e),
    };
    source
        .batch_execute("COMMIT")
        .await
        .db(|| "ending the snapshot transaction".into())?;

    // Counts, then indexes.
    let mut total = 0u64;
    {
        let tx = target.transaction().await.db(|| "recording the copy".into())?;
        for (id, r) in &routes {
            total += r.copied as u64;
            state::set_copied(&tx, slot, *id, r.copied, r.skipped)
                .await
                .db(|| "recording the rows copied".into())?;
        }
        tx.execute(
            "UPDATE pgvshift.langchain SET skipped_null_collection = $2, skipped_unselected = $3 WHERE slot = $1",
            &[slot, &null_rows, &unselected_rows],
        )
        .await
        .db(|| "recording the skipped rows".into())?;
        tx.commit().await.db(|| "recording the copy".into())?;
    }
    tracing::info!(
        collections = planned.iter().filter(|p| p.selected).count(),
        rows = total,
        skipped_without_collection = null_rows,
        skipped_unselected = unselected_rows,
        seconds = format!("{:.1}", started.elapsed().as_secs_f64()),
        "LangChain snapshot copy complete"
    );
    for p in &planned {
        let Some(t) = &p.table else { continue };
        let rows = routes.get(&p.collection).map_or(0, |r| r.copied);
        if (rows as u64) < lc.index_min_rows {
            continue;
        }
        build_index(config, lc, target, t, dims, p.collection).await?;
    }
    Ok(total)
}

/// Read the source table, route its rows; returns (rows without a collection, rows of
/// collections not selected).
async fn read_rows(
    config: &Config,
    lc: &LangchainConfig,
    inspection: &LangchainInspection,
    source: &Client,
    routes: &mut HashMap<Uuid, Route>,
    senders: &[mpsc::Sender<Msg>],
    progress: &CopyProgress,
) -> Result<(i64, i64)> {
    let slot = &config.replication.slot;
    let cols = layout::copy_columns(&inspection.layout);
    let refs: Vec<&str> = cols.iter().map(String::as_str).collect();
    let transformer = Transformer::new(
        lc,
        &inspection.layout,
        Positions::find(&inspection.layout, &refs).map_err(Error::Runtime)?,
    );
    let e = QualifiedName::new(lc.source_schema.clone(), EMBEDDING_TABLE);
    let stream = source
        .copy_out(&format!(
            "COPY (SELECT {} FROM {}) TO STDOUT (FORMAT binary)",
            cols.iter().map(|c| quote_ident(c)).collect::<Vec<_>>().join(", "),
            e.quoted()
        ))
        .await
        .db(|| format!("starting COPY out of {e} on the source"))?;
    futures_util::pin_mut!(stream);
    let mut reader = RowReader::new(cols.len());
    let (mut null_rows, mut unselected) = (0i64, 0i64);
    let mut buffered = 0usize;
    let slot_bytes = Bytes::copy_from_slice(slot.as_bytes());
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.db(|| format!("reading {e} from the source"))?;
        progress.bytes.fetch_add(chunk.len() as u64, Ordering::Relaxed);
        let mut ready: Vec<Uuid> = Vec::new();
        let mut row_error = None;
        let pushed = reader.push(&chunk, |values| {
            let values: Vec<TupleValue> = values
                .into_iter()
                .map(|v| v.map_or(TupleValue::Null, TupleValue::Binary))
                .collect();
            let row = match transformer.transform(&values) {
                Ok(r) => r,
                Err(err) => {
                    let message = format!("cannot migrate {e} row {}: {}", err.row, err.message);
                    row_error = Some(message.clone());
                    return Err(message);
                }
            };
            let Some(collection) = row.collection else {
                null_rows += 1;
                return Ok(());
            };
            let Some(route) = routes.get_mut(&collection) else {
                // A collection created after the snapshot's collection list was read cannot
                // have rows under this snapshot; a missing FK can leave orphans.
                unselected += 1;
                return Ok(());
            };
            if route.target.is_none() {
                route.skipped += 1;
                unselected += 1;
                return Ok(());
            }
            let size: usize = row.tuple.0.iter().map(value_bytes).sum();
            route.routes.push(Tuple(vec![
                TupleValue::Binary(slot_bytes.clone()),
                TupleValue::Binary(Bytes::copy_from_slice(row.key.as_bytes())),
                TupleValue::Binary(Bytes::copy_from_slice(collection.as_bytes())),
                if row.target_id == row.key {
                    TupleValue::Null
                } else {
                    TupleValue::Binary(Bytes::copy_from_slice(row.target_id.as_bytes()))
                },
            ]));
            route.rows.push(row.tuple);
            route.bytes += size;
            route.copied += 1;
            buffered += size;
            if route.bytes >= BATCH_BYTES {
                ready.push(collection);
            }
            Ok(())
        });
        if let Err(err) = pushed {
            return Err(Error::Runtime(
                row_error.unwrap_or_else(|| format!("copying {e}: {err}")),
            ));
        }
        for id in ready {
            buffered -= send(routes, id, senders).await?;
        }
        while buffered > BUFFERED_BYTES {
            let biggest = routes
                .iter()
                .max_by_key(|(_, r)| r.bytes)
                .map(|(id, _)| *id)
                .expect("buffers exist");
            buffered -= send(routes, biggest, senders).await?;
        }
    }
    reader
        .finish()
        .map_err(|err| Error::Runtime(format!("copying {e}: {err}")))?;
    let ids: Vec<Uuid> = routes.keys().copied().collect();
    for id in ids {
        send(routes, id, senders).await?;
    }
    progress.rows.fetch_add(reader.rows(), Ordering::Relaxed);
    Ok((null_rows, unselected))
}

fn value_bytes(v: &TupleValue) -> usize {
    match v {
        TupleValue::Binary(b) => b.len() + 4,
        _ => 4,
    }
}

/// Hand a collection's buffer to its worker; returns the bytes sent.
async fn send(routes: &mut HashMap<Uuid, Route>, id: Uuid, senders: &[mpsc::Sender<Msg>]) -> Result<usize> {
    let route = routes.get_mut(&id).expect("known collection");
    let (Some(table), false) = (route.target.clone(), route.rows.is_empty()) else {
        return Ok(0);
    };
    let bytes = std::mem::take(&mut route.bytes);
    let msg = Msg::Rows {
        table,
        rows: std::mem::take(&mut route.rows),
        routes: std::mem::take(&mut route.routes),
        bytes,
    };
    senders[route.worker]
        .send(msg)
        .await
        .map_err(|_| Error::Runtime("a copy worker stopped".into()))?;
    Ok(bytes)
}

/// One target connection: COPY each batch in one transaction, commit on `Finish`.
async fn worker(endpoint: crate::config::Endpoint, mut rx: mpsc::Receiver<Msg>) -> Result<()> {
    let mut client = connect(&endpoint, Side::Target).await?;
    let tx = client
        .transaction()
        .await
        .db(|| "starting a copy transaction on the target".into())?;
    while let Some(msg) = rx.recv().await {
        match msg {
            Msg::Finish => {
                tx.commit()
                    .await
                    .db(|| "committing the collection tables' copy".into())?;
                return Ok(());
            }
            Msg::Rows {
                table,
                rows,
                routes,
                bytes,
            } => {
                let what = || format!("copying rows into {} on the target", table.name);
                let sink = tx.copy_in(&table.copy_sql).await.db(what)?;
                futures_util::pin_mut!(sink);
                sink.send(copy_binary(&rows, bytes)).await.db(what)?;
                sink.finish().await.db(what)?;
                let what = || "recording the routes of copied rows".to_string();
                let sink = tx
                    .copy_in(
                        "COPY pgvshift.langchain_routes (slot, key, collection, target_id) FROM STDIN (FORMAT binary)",
                    )
                    .await
                    .db(what)?;
                futures_util::pin_mut!(sink);
                sink.send(copy_binary(&routes, 0)).await.db(what)?;
                sink.finish().await.db(what)?;
            }
        }
    }
    // The reader stopped without Finish: it failed, and says why. Roll back.
    Err(Error::Runtime("the snapshot's reader stopped".into()))
}

/// Build one collection table's vector index after the copy (like the plain tables' indexes:
/// one build instead of maintaining it row by row).
async fn build_index(
    config: &Config,
    lc: &LangchainConfig,
    target: &Client,
    table: &QualifiedName,
    dims: u32,
    collection: Uuid,
) -> Result<()> {
    let Some(sql) = ddl::create_index_sql(lc, table, dims, false) else {
        return Ok(());
    };
    if let Some(m) = &config.indexes.maintenance_work_mem {
        target
            .batch_execute(&format!("SET maintenance_work_mem = {}", quote_literal(m)))
            .await
            .db(|| format!("setting maintenance_work_mem = {m} (from [indexes])"))?;
    }
    if let Some(w) = config.indexes.max_parallel_maintenance_workers {
        target
            .batch_execute(&format!("SET max_parallel_maintenance_workers = {w}"))
            .await
            .db(|| format!("setting max_parallel_maintenance_workers = {w} (from [indexes])"))?;
    }
    let started = std::time::Instant::now();
    target
        .batch_execute(&sql)
        .await
        .db(|| format!("building the vector index of {table} with `{sql}`"))?;
    state::set_index_built(target, &config.replication.slot, collection)
        .await
        .db(|| "recording the index build".into())?;
    tracing::info!(table = %table, seconds = format!("{:.1}", started.elapsed().as_secs_f64()), "built vector index");
    Ok(())
}

/// As in `crate::apply::copy`: an exported snapshot that cannot be imported means its session is gone.
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
