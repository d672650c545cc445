//! LangChain verbs and report sections: `pgvshift langchain list`, `pgvshift langchain
//! indexes`, the collections part of `plan`, and of `status`.

use std::path::PathBuf;

use super::check::LangchainInspection;
use super::config::LangchainConfig;
use super::ddl;
use super::layout::{COLLECTION_TABLE, EMBEDDING_TABLE};
use super::state;
use crate::config::Config;
use crate::config::Side;
use crate::error::{DbContext, Error, Result};
use crate::source::connect;
use crate::sql::QualifiedName;

/// `pgvshift langchain ...`
#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Print the names of the LangChain collections on the source, one per line (as
    /// LangChain's `alist_pgvector_collection_names`).
    List {
        #[arg(long, short)]
        config: PathBuf,
    },
    /// Build the vector index of every collection table that has none yet (the cutover
    /// step: tables below `index_min_rows` get theirs here). CONCURRENTLY: a running
    /// `pgvshift run` goes on.
    Indexes {
        #[arg(long, short)]
        config: PathBuf,
    },
}

/// Run a `pgvshift langchain` verb; returns what to print.
pub async fn run(command: Command) -> Result<String> {
    let load = |p: &PathBuf| Config::load(p).map_err(Error::from);
    match command {
        Command::List { config } => {
            let config = load(&config)?;
            let lc = langchain(&config)?;
            Ok(list(&config, lc).await?.into_iter().map(|n| n + "\n").collect())
        }
        Command::Indexes { config } => {
            let config = load(&config)?;
            indexes(&config).await
        }
    }
}

fn langchain(config: &Config) -> Result<&LangchainConfig> {
    config.langchain.as_ref().ok_or_else(|| {
        Error::Usage(format!(
            "{} has no [langchain] section (see config.langchain.example.toml)",
            config.path.display()
        ))
    })
}

/// The collection names on the source (`SELECT name FROM langchain_pg_collection`), sorted.
pub async fn list(config: &Config, lc: &LangchainConfig) -> Result<Vec<String>> {
    let source = connect(&config.source, Side::Source).await?;
    let c = QualifiedName::new(lc.source_schema.clone(), COLLECTION_TABLE);
    let rows = source
        .query(&format!("SELECT name::text FROM {} ORDER BY name", c.quoted()), &[])
        .await
        .db(|| format!("reading {c} on the source (is [langchain] source_schema right?)"))?;
    Ok(rows
        .iter()
        .map(|r| r.get::<_, Option<String>>(0).unwrap_or_default())
        .collect())
}

/// `pgvshift langchain indexes`: build the missing vector indexes.
pub async fn indexes(config: &Config) -> Result<String> {
    let lc = langchain(config)?;
    let slot = &config.replication.slot;
    let target = connect(&config.target, Side::Target).await?;
    let st = state::load(&target, slot)
        .await
        .db(|| "reading pgvshift.langchain_collections on the target".into())?;
    if st.layout.is_none() {
        return Err(Error::Usage(format!(
            "slot {slot} has no LangChain state on the target yet: run `pgvshift run --config {}` first",
            config.path.display()
        )));
    }
    let dims = target_dims(&target, lc, &st).await?;
    let mut out = String::new();
    for c in st.collections.iter().filter(|c| c.selected && !c.deleted) {
        let Some(table) = &c.table else { continue };
        if c.index_built {
            out.push_str(&format!("{table}: index exists\n"));
            continue;
        }
        if let Some(reason) = ddl::index_skip_reason(lc, dims) {
            out.push_str(&format!("{table}: no index ({reason})\n"));
            continue;
        }
        let secs = super::stream::build_index(lc, &config.target, slot, c.collection, table, dims).await?;
        out.push_str(&format!(
            "{table}: built {} in {secs:.1}s\n",
            ddl::index_name(&table.name)
        ));
    }
    if out.is_empty() {
        out.push_str("no collection tables\n");
    }
    Ok(out)
}

/// The embedding dimensions of the collection tables (from one of them).
async fn target_dims(target: &tokio_postgres::Client, lc: &LangchainConfig, st: &state::SlotState) -> Result<u32> {
    for t in st.collections.iter().filter_map(|c| c.table.as_ref()) {
        let row = target
            .query_opt(
                "SELECT a.atttypmod FROM pg_attribute a WHERE a.attrelid = to_regclass($1) AND a.attname = $2 AND NOT a.attisdropped",
                &[&t.quoted(), &lc.embedding_column],
            )
            .await
            .db(|| format!("reading {t}"))?;
        if let Some(r) = row {
            let m: i32 = r.get(0);
            if m > 0 {
                return Ok(m as u32);
            }
        }
    }
    Ok(lc.vector_size.unwrap_or(0))
}

/// The collections part of `pgvshift plan`.
pub fn plan_section(lc: &LangchainConfig, ins: &LangchainInspection, resume: bool) -> String {
    let mut out = format!(
        "\nLangChain collections ({} layout: {}.{EMBEDDING_TABLE}, embedding {} dims) -> one table per collection in schema {}{}:\n",
        ins.layout.layout,
        lc.source_schema,
        ins.dims,
        crate::sql::display_ident(&lc.target_schema),
        if resume { " (as recorded while streaming)" } else { "" }
    );
    let width = ins
        .collections
        .iter()
        .map(|c| {
            c.name
                .as_deref()
                .map_or(6, |n| super::transform::quoted(n).chars().count())
        })
        .max()
        .unwrap_or(10)
        .max(10);
    for c in &ins.collections {
        let name = c
            .name
            .as_deref()
            .map_or_else(|| "(NULL)".to_string(), super::transform::quoted);
        let target = match (&c.table, c.selected) {
            (Some(t), _) => {
                let state = ins
                    .targets
                    .iter()
                    .find(|(id, _)| *id == c.collection)
                    .map(|(_, st)| match (st.exists, st.has_rows) {
                        (false, _) => " (will be created)",
                        (true, false) => " (exists, empty)",
                        (true, true) => " (exists, has rows)",
                    })
                    .unwrap_or_default();
                format!("-> {t}{state}")
            }
            _ => "not selected: skipped".to_string(),
        };
        out.push_str(&format!("  {name:<width$} {:>10} rows  {target}\n", c.rows));
    }
    if ins.null_collection_rows > 0 {
        out.push_str(&format!(
            "  {:<width$} {:>10} rows  skipped (collection_id NULL)\n",
            "(none)", ins.null_collection_rows
        ));
    }
    if ins.collections.is_empty() {
        out.push_str("  (no collections yet: tables are created as collections appear)\n");
    }
    let example = QualifiedName::new(lc.target_schema.clone(), "<table>");
    out.push_str("  table DDL:\n");
    for line in ddl::create_table_sql(lc, &example, ins.dims).lines() {
        out.push_str(&format!("    {line}\n"));
    }
    match ddl::create_index_sql(lc, &example, ins.dims, false) {
        Some(sql) => out.push_str(&format!(
            "  vector index, once a table holds {} rows (after the copy, or while streaming), else at cutover (`pgvshift langchain indexes`):\n    {sql}\n",
            lc.index_min_rows
        )),
        None => out.push_str(&format!(
            "  vector index: none ({})\n",
            ddl::index_skip_reason(lc, ins.dims).unwrap_or_default()
        )),
    }
    let mut extracted: Vec<String> = lc
        .metadata_columns
        .iter()
        .map(|m| {
            format!(
                "{:?} -> {} {}",
                m.name,
                m.data_type.sql(),
                if m.nullable { "" } else { "NOT NULL" }
            )
        })
        .collect();
    if !extracted.is_empty() {
        extracted.iter_mut().for_each(|s| *s = s.trim_end().to_string());
        out.push_str(&format!(
            "  cmetadata keys into typed columns: {}; the other keys -> {}\n",
            extracted.join(", "),
            lc.metadata_json
                .as_ref()
                .map_or("dropped (store_metadata = false)".to_string(), |j| format!(
                    "{:?}",
                    j.name
                ))
        ));
    }
    out
}

/// The LangChain part of `pgvshift status`.
pub fn render_status(s: &state::SlotState) -> String {
    let mut out = format!(
        "langchain ({}): rows skipped (at the snapshot and inserted since): {} without a collection, {} of collections not selected\n",
        s.layout.as_deref().unwrap_or("-"),
        s.skipped_null_collection,
        s.skipped_unselected
    );
    for c in &s.collections {
        let name = c
            .name
            .as_deref()
            .map_or_else(|| "(NULL)".to_string(), super::transform::quoted);
        match (&c.table, c.selected) {
            (Some(t), true) => out.push_str(&format!(
                "  {name} -> {t}: {}{} ({} copied, {} inserted since){}\n",
                if c.deleted { "deleted on the source" } else { "active" },
                if c.index_built { ", indexed" } else { "" },
                c.rows_copied,
                c.rows_streamed,
                if c.skipped_rows > 0 {
                    format!(", {} skipped", c.skipped_rows)
                } else {
                    String::new()
                }
            )),
            _ => out.push_str(&format!("  {name}: not selected ({} rows skipped)\n", c.skipped_rows)),
        }
    }
    out
}
