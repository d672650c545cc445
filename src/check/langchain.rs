//! LangChain mode's checks: the two LangChain tables, the collections and their target tables.

use std::collections::HashSet;

use tokio_postgres::Client;

use crate::config::Config;
use crate::error::{DbContext, Result};
use crate::sql::QualifiedName;

use super::finding::{Finding, Level};
use super::preflight::{Mode, Options};
use super::servers::*;
use super::source_tables::*;
use super::target::*;

/// The checks of LangChain mode: both LangChain tables as source tables (privileges, replica
/// identity), their layout, the collections and their target tables, and (before a snapshot)
/// one pass over the selected rows' ids and metadata.
#[allow(clippy::too_many_arguments)]
pub(super) async fn langchain_checks(
    config: &Config,
    lc: &crate::langchain::config::LangchainConfig,
    opts: Options,
    mode: Mode,
    source: &Client,
    target: &Client,
    server: &SourceServer,
    tserver: &TargetServer,
    publication_exists: bool,
    f: &mut Vec<Finding>,
) -> Result<Option<crate::langchain::check::LangchainInspection>> {
    use crate::langchain::check as lcc;
    lcc::check_cutover_options(config, lc, f);
    let Some((collection, embedding)) = lcc::source_tables(config, lc, source, f).await? else {
        return Ok(None);
    };
    for table in [&collection, &embedding] {
        let tc = crate::config::TableConfig::new(table.name.clone(), table.name.clone());
        check_table_privileges(config, source, server, table, &tc, publication_exists, f).await?;
        check_replica_identity(config, table, &tc, f);
    }
    let Some((layout, dims)) = lcc::check_layout(lc, &collection, &embedding, f) else {
        return Ok(None);
    };
    lcc::check_cascade(source, lc, f).await?;
    if tserver.vector_version.is_none() {
        f.push(
            Finding::new(
                Level::Blocking,
                "pgvector",
                "target",
                "pgvector is not installed in the target database; the collection tables need it",
            )
            .fix(if tserver.vector_available.is_some() {
                "CREATE EXTENSION vector; in the target database"
            } else {
                "install pgvector 0.7+ on the target server, then CREATE EXTENSION vector;"
            }),
        );
    }
    let recorded = crate::langchain::state::load(target, &config.replication.slot)
        .await
        .db(|| "reading pgvshift.langchain_collections on the target".into())?;
    if mode == Mode::Resume {
        // The collections and their tables are recorded on the target; the stream goes on.
        let collections = recorded
            .collections
            .iter()
            .map(|r| crate::langchain::check::Planned {
                collection: r.collection,
                name: r.name.clone(),
                selected: r.selected,
                table: r.table.clone(),
                rows: r.rows_copied + r.rows_streamed,
            })
            .collect();
        return Ok(Some(crate::langchain::check::LangchainInspection {
            layout,
            dims,
            collections,
            null_collection_rows: recorded.skipped_null_collection,
            targets: Vec::new(),
        }));
    }
    let (found, null_rows) = lcc::collections(source, lc).await?;
    let planned = lcc::plan_collections(lc, &found);
    lcc::check_collections(lc, &planned, null_rows, f);
    let ours: HashSet<QualifiedName> = recorded.collections.iter().filter_map(|c| c.table.clone()).collect();
    let mut targets = Vec::new();
    let embedding_name = embedding.name.clone();
    for p in planned.iter().filter(|p| p.selected) {
        let Some(table) = &p.table else { continue };
        let st = target_table_state(target, table).await?;
        if st.exists {
            let (tt, _) = crate::langchain::ddl::virtual_table(lc, &embedding_name, table, dims, 0, "check");
            check_target_table(
                config,
                opts,
                target,
                tserver,
                &tt.map,
                &st,
                ours.contains(table),
                mode,
                f,
            )
            .await?;
        }
        targets.push((p.collection, st));
    }
    let selected: HashSet<uuid::Uuid> = planned.iter().filter(|p| p.selected).map(|p| p.collection).collect();
    lcc::scan_rows(source, lc, &layout, dims, &selected, f).await?;
    Ok(Some(crate::langchain::check::LangchainInspection {
        layout,
        dims,
        collections: planned,
        null_collection_rows: null_rows,
        targets,
    }))
}
