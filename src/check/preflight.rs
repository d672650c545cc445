//! The checks in order ([`preflight_on`]) and what they hand to `run` and `plan`
//! ([`Preflight`], [`Inspection`], [`Mode`]).

use std::collections::HashSet;

use tokio_postgres::Client;

use crate::apply::state::{self, Phase, Progress, TableState};
use crate::config::Config;
use crate::config::Side;
use crate::error::{DbContext, Error, Result};
use crate::schema::catalog::{self, CatalogError, Table};
use crate::schema::mapping::{self, TableMap};
use crate::source::connect;
use crate::source::slot::{slot_info, SlotInfo};
use crate::sql::QualifiedName;

use super::finding::{Finding, Level};
use super::langchain::*;
use super::servers::*;
use super::slot::*;
use super::source_tables::*;
use super::target::*;

/// Options that change what counts as blocking.
#[derive(Debug, Clone, Copy, Default)]
pub struct Options {
    /// `--truncate-target`: a non-empty target table is emptied by `run` instead of blocking.
    pub truncate_target: bool,
}

/// What `run` does next, decided from the target's progress row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// No progress: a new snapshot.
    Fresh,
    /// A snapshot was started and did not complete: it is started over.
    RestartSnapshot,
    /// The snapshot completed: stream from `applied_lsn`.
    Resume,
}

/// Everything the checks learned, for `run` and `plan` to act on.
pub struct Inspection {
    /// Each table with its mapping onto the target.
    pub tables: Vec<(Table, TableMap)>,
    /// Per table (same order): the target table's state.
    pub target_state: Vec<TargetTableState>,
    pub slot: Option<SlotInfo>,
    pub publication_tables: Option<Vec<QualifiedName>>,
    /// LangChain mode: the layout, the collections and their tables (src/langchain/check.rs).
    pub langchain: Option<crate::langchain::check::LangchainInspection>,
}

impl Inspection {
    pub fn slot_exists(&self) -> bool {
        self.slot.is_some()
    }
}

/// The outcome of the checks, with the open connections for `run` to continue on.
pub struct Preflight {
    pub findings: Vec<Finding>,
    pub mode: Mode,
    pub progress: Option<Progress>,
    /// This slot's `pgvshift.tables` rows (an unfinished snapshot's or the streaming run's).
    pub previous: Vec<TableState>,
    pub inspection: Inspection,
    pub source: Client,
    pub target: Client,
}

impl Preflight {
    pub fn blocking(&self) -> Vec<&Finding> {
        self.findings.iter().filter(|f| f.level == Level::Blocking).collect()
    }

    /// `Err(Blocked)` listing every blocking finding, or `Ok`.
    pub fn ensure_no_blocking(&self) -> Result<()> {
        let blocking = self.blocking();
        if blocking.is_empty() {
            Ok(())
        } else {
            Err(Error::Blocked(blocking.iter().map(|f| f.one_line()).collect()))
        }
    }
}

/// `pgvshift check`: every finding, including a connection that could not be opened (which
/// `run` and `plan` report as an error instead).
pub async fn check(config: &Config, opts: Options) -> Result<Vec<Finding>> {
    let (source, target) = tokio::join!(
        connect(&config.source, Side::Source),
        connect(&config.target, Side::Target)
    );
    let mut findings = Vec::new();
    for (side, r) in [("source", &source), ("target", &target)] {
        if let Err(e) = r {
            findings.push(Finding::new(Level::Blocking, "connect", side, e.to_string()));
        }
    }
    let (Ok(source), Ok(target)) = (source, target) else {
        return Ok(findings);
    };
    findings.push(Finding::new(
        Level::Ok,
        "connect",
        "source",
        format!("connected to {}", config.source.redacted_url),
    ));
    findings.push(Finding::new(
        Level::Ok,
        "connect",
        "target",
        format!("connected to {}", config.target.redacted_url),
    ));
    let pre = preflight_on(config, opts, source, target).await?;
    findings.extend(pre.findings);
    Ok(findings)
}

/// Connect to both sides and run every check.
pub async fn preflight(config: &Config, opts: Options) -> Result<Preflight> {
    let source = connect(&config.source, Side::Source).await?;
    let target = connect(&config.target, Side::Target).await?;
    preflight_on(config, opts, source, target).await
}

/// Run every check on open connections.
pub async fn preflight_on(config: &Config, opts: Options, source: Client, target: Client) -> Result<Preflight> {
    let slot = &config.replication.slot;
    let mut f = Vec::new();
    catalog::prepare_session(&source)
        .await
        .db(|| "preparing the source session".into())?;
    let progress = state::progress(&target, slot).await?;
    let previous = state::load_tables(&target, slot)
        .await
        .db(|| "reading pgvshift.tables on the target".into())?;
    let mode = match &progress {
        None => Mode::Fresh,
        Some(p) if p.phase == Phase::Streaming => Mode::Resume,
        Some(_) => Mode::RestartSnapshot,
    };
    let ours: HashSet<String> = previous.iter().map(|t| t.source_table.clone()).collect();

    let slot_info = slot_info(&source, slot).await?;
    let server = source_server(&source).await?;
    let tserver = target_server(&target).await?;
    check_servers(config, &server, &tserver, slot_info.is_some(), &mut f);
    check_source_role(&server, &mut f);
    if mode != Mode::Resume {
        check_long_transactions(&source, &mut f).await?;
    }

    let publication_tables = publication_tables(&source, &config.replication.publication).await?;
    let mut tables = Vec::new();
    let mut target_state = Vec::new();
    for t in &config.tables {
        let table = match catalog::describe_table(&source, &t.source).await {
            Ok(table) => table,
            Err(CatalogError::NotFound(name)) => {
                let suggestions = similar_tables(&source, &name).await?;
                let mut finding = Finding::new(
                    Level::Blocking,
                    "table_exists",
                    format!("table {name}"),
                    format!("does not exist on the source {}", config.source.redacted_url),
                );
                finding = if suggestions.is_empty() {
                    finding.fix(format!(
                        "correct [[tables]] source = {:?} in {}",
                        name.to_string(),
                        config.path.display()
                    ))
                } else {
                    finding.fix(format!(
                        "did you mean {}? Correct [[tables]] source in {}",
                        suggestions.join(" or "),
                        config.path.display()
                    ))
                };
                f.push(finding);
                continue;
            }
            Err(CatalogError::NotATable { name, relkind }) => {
                f.push(
                    Finding::new(
                        Level::Blocking,
                        "table_exists",
                        format!("table {name}"),
                        format!("is not a plain table (relkind {relkind})"),
                    )
                    .fix("list plain tables only (for a partitioned table, list each partition)"),
                );
                continue;
            }
            Err(CatalogError::Query { table, source }) => {
                return Err(Error::Db {
                    context: format!("reading the catalog of {table}"),
                    source,
                })
            }
        };
        let object = format!("table {}", table.name);
        check_table_privileges(
            config,
            &source,
            &server,
            &table,
            t,
            publication_tables.is_some(),
            &mut f,
        )
        .await?;
        check_replica_identity(config, &table, t, &mut f);
        for p in table.blocking_problems() {
            f.push(Finding::new(Level::Blocking, "column_types", &object, p));
        }
        let map = mapping::map_table(&table, t);
        for p in &map.problems {
            f.push(Finding::new(Level::Blocking, "mapping", &object, p.clone()));
        }
        let st = target_table_state(&target, &map.target).await?;
        check_target_table(
            config,
            opts,
            &target,
            &tserver,
            &map,
            &st,
            ours.contains(&t.source.to_string()),
            mode,
            &mut f,
        )
        .await?;
        target_state.push(st);
        tables.push((table, map));
    }
    // LangChain mode: its two tables instead of [[tables]] (the LangChain specifics are in
    // src/langchain/check.rs).
    let langchain = match &config.langchain {
        Some(lc) => {
            langchain_checks(
                config,
                lc,
                opts,
                mode,
                &source,
                &target,
                &server,
                &tserver,
                publication_tables.is_some(),
                &mut f,
            )
            .await?
        }
        None => None,
    };
    check_target_types(&target, &tserver, &tables, &target_state, &mut f).await?;
    check_target_schemas(
        &target,
        &tables,
        &target_state,
        config.langchain.as_ref().map(|lc| lc.target_schema.as_str()),
        &mut f,
    )
    .await?;
    check_slot_and_publication(
        config,
        &server,
        mode,
        progress.as_ref(),
        &previous,
        slot_info.as_ref(),
        publication_tables.as_ref(),
        &mut f,
    );

    if f.iter().all(|x| x.level != Level::Blocking) && config.langchain.is_none() {
        f.push(Finding::new(
            Level::Ok,
            "tables",
            "tables",
            format!(
                "{} table(s) checked: {}",
                tables.len(),
                tables
                    .iter()
                    .map(|(t, _)| t.name.to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        ));
    }
    Ok(Preflight {
        findings: f,
        mode,
        progress,
        previous,
        inspection: Inspection {
            tables,
            target_state,
            slot: slot_info,
            publication_tables,
            langchain,
        },
        source,
        target,
    })
}
