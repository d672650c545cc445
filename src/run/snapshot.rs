//! The snapshot: publication, progress row, slot with its exported snapshot, target tables,
//! the parallel copy, then the indexes; and the replica identity `run` sets before it.

use tokio_postgres::Client;

use crate::apply::copy::{self, CopyJob};
use crate::apply::state;
use crate::apply::TargetTable;
use crate::check::{self, Inspection, Options};
use crate::config::Config;
use crate::error::{DbContext, Result};
use crate::observe::stats::RunStats;
use crate::schema::catalog::{ReplicaIdentity, Table};
use crate::schema::ddl;
use crate::schema::mapping::{self, TableMap};
use crate::source::replication;
use crate::source::slot::drop_slot;
use crate::sql::quote_ident;
use crate::translate::index::Translation;
use crate::Lsn;

use super::execute::SOURCE_LOCK_TIMEOUT;

/// `replica_identity = "full"` tables: ALTER TABLE .. REPLICA IDENTITY FULL on the source (the
/// one change to the source's tables that pgvshift makes, and only when asked), with a short
/// lock_timeout so it never queues in front of the application.
pub(super) async fn set_replica_identity(config: &Config, source: &Client, inspection: &mut Inspection) -> Result<()> {
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
pub(super) async fn snapshot(
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

pub(super) async fn target_tables(inspection: &Inspection, target: &Client) -> Result<Vec<TargetTable>> {
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
