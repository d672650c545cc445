//! LangChain checks (part of `pgvshift check` / `plan` / `run`, called from `crate::check`):
//! the source layout, the collections and the tables they map to, and one pass over the
//! selected rows' ids and metadata (not their embeddings) that counts what would not fit.

use std::collections::{BTreeMap, HashMap, HashSet};

use futures_util::{pin_mut, TryStreamExt};
use tokio_postgres::Client;
use uuid::Uuid;

use super::config::{IdType, LangchainConfig, Selection};
use super::layout::{self, SourceLayout, COLLECTION_TABLE, EMBEDDING_TABLE};
use super::metadata::{self, CastError};
use super::names::Namer;
use super::transform::{quoted, Positions, Transformer};
use crate::check::{Finding, Level, TargetTableState};
use crate::config::Config;
use crate::config::Side;
use crate::error::{DbContext, Error, Result};
use crate::schema::catalog::{self, CatalogError, Table};
use crate::source::connect;
use crate::sql::{display_ident, quote_ident, QualifiedName};

/// One collection and where it goes.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Planned {
    pub collection: Uuid,
    pub name: Option<String>,
    pub selected: bool,
    /// Selected collections only.
    pub table: Option<QualifiedName>,
    pub rows: i64,
}

/// What the LangChain checks learned, for `run` and `plan`.
#[derive(Debug, Clone)]
pub struct LangchainInspection {
    pub layout: SourceLayout,
    /// The embedding column's dimensions on the target.
    pub dims: u32,
    /// Every collection on the source, in the order names were given (by name, then uuid).
    pub collections: Vec<Planned>,
    /// Rows whose collection_id is NULL.
    pub null_collection_rows: i64,
    /// Per selected collection (same order as their `Planned` entries with a table): the
    /// target table's state.
    pub targets: Vec<(Uuid, TargetTableState)>,
}

impl LangchainInspection {
    pub fn selected(&self) -> impl Iterator<Item = &Planned> {
        self.collections.iter().filter(|c| c.selected)
    }
}

fn finding(level: Level, check: &'static str, object: impl Into<String>, message: impl Into<String>) -> Finding {
    Finding::new(level, check, object, message)
}

/// The two source tables, each `None` when missing (with a finding).
pub async fn source_tables(
    config: &Config,
    lc: &LangchainConfig,
    source: &Client,
    f: &mut Vec<Finding>,
) -> Result<Option<(Table, Table)>> {
    let mut out = Vec::new();
    for name in [COLLECTION_TABLE, EMBEDDING_TABLE] {
        let q = QualifiedName::new(lc.source_schema.clone(), name);
        match catalog::describe_table(source, &q).await {
            Ok(t) => out.push(Some(t)),
            Err(CatalogError::NotFound(_)) => {
                let elsewhere: Vec<String> = source
                    .query(
                        "SELECT n.nspname::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
                          WHERE c.relname = $1 AND c.relkind = 'r' ORDER BY 1",
                        &[&name],
                    )
                    .await
                    .db(|| "looking for the LangChain tables on the source".into())?
                    .iter()
                    .map(|r| r.get(0))
                    .collect();
                let fix = if elsewhere.is_empty() {
                    format!(
                        "point source.url at the database of the LangChain application (the one its PGVector connection string names); `pgvshift langchain list --config {}` shows what it finds",
                        config.path.display()
                    )
                } else {
                    format!(
                        "set [langchain] source_schema = {:?} (the table exists in schema {})",
                        elsewhere[0],
                        elsewhere.join(", ")
                    )
                };
                f.push(
                    finding(
                        Level::Blocking,
                        "langchain_tables",
                        format!("table {q}"),
                        format!(
                            "does not exist on the source {}: there is no LangChain PGVector store there",
                            config.source.redacted_url
                        ),
                    )
                    .fix(fix),
                );
                out.push(None);
            }
            Err(CatalogError::NotATable { name, relkind }) => {
                f.push(finding(
                    Level::Blocking,
                    "langchain_tables",
                    format!("table {name}"),
                    format!("is not a plain table (relkind {relkind})"),
                ));
                out.push(None);
            }
            Err(CatalogError::Query { table, source }) => {
                return Err(Error::Db {
                    context: format!("reading the catalog of {table}"),
                    source,
                })
            }
        }
    }
    Ok(match (out.remove(0), out.remove(0)) {
        (Some(c), Some(e)) => Some((c, e)),
        _ => None,
    })
}

/// Connect to the source and read its LangChain layout (for the stream, which has no
/// inspection of its own).
pub async fn source_layout(config: &Config, lc: &LangchainConfig) -> Result<SourceLayout> {
    let source = connect(&config.source, Side::Source).await?;
    catalog::prepare_session(&source)
        .await
        .db(|| "preparing the source session".into())?;
    let mut f = Vec::new();
    let Some((c, e)) = source_tables(config, lc, &source, &mut f).await? else {
        return Err(Error::Blocked(f.iter().map(Finding::one_line).collect()));
    };
    layout::detect(&c, &e).map_err(|p| Error::Runtime(format!("the LangChain tables changed: {}", p.join("; "))))
}

/// The layout, its dimensions, and what blocks them.
pub fn check_layout(
    lc: &LangchainConfig,
    collection: &Table,
    embedding: &Table,
    f: &mut Vec<Finding>,
) -> Option<(SourceLayout, u32)> {
    let object = format!("table {}", embedding.name);
    let layout = match layout::detect(collection, embedding) {
        Ok(l) => l,
        Err(problems) => {
            for p in problems {
                f.push(
                    finding(Level::Blocking, "langchain_layout", &object, p)
                        .fix("pgvshift reads the layouts of langchain_postgres.PGVector and langchain_community's PGVector (docs/langchain.md); restore the column or its type"),
                );
            }
            return None;
        }
    };
    let dims = match (layout.dims, lc.vector_size) {
        (Some(d), Some(v)) if d != v => {
            f.push(
                finding(
                    Level::Blocking,
                    "langchain_layout",
                    &object,
                    format!("embedding is vector({d}) but [langchain] vector_size = {v}"),
                )
                .fix("remove vector_size (the column's own size is used)"),
            );
            return None;
        }
        (Some(d), _) | (None, Some(d)) => d,
        (None, None) => {
            f.push(
                finding(
                    Level::Blocking,
                    "langchain_layout",
                    &object,
                    "embedding is a plain vector without dimensions (LangChain without embedding_length), and the collection tables need vector(n)",
                )
                .fix("set [langchain] vector_size = <the embedding model's dimensions> (every row must have that many; check counts the ones that do not)"),
            );
            return None;
        }
    };
    f.push(finding(
        Level::Ok,
        "langchain_layout",
        &object,
        format!(
            "{} layout: key {}{}, cmetadata {}, embedding {} dimensions",
            layout.layout,
            layout.key_column,
            layout
                .user_id_column
                .as_deref()
                .map(|c| format!(", user ids in {c}"))
                .unwrap_or_default(),
            if layout.cmetadata_jsonb { "jsonb" } else { "json" },
            dims
        ),
    ));
    if let Some(reason) = super::ddl::index_skip_reason(lc, dims) {
        if lc.index.method != super::config::IndexMethod::None {
            f.push(finding(
                Level::Warning,
                "langchain_index",
                "collection tables",
                format!("no vector index will be built: {reason}"),
            ));
        }
    }
    Some((layout, dims))
}

/// Whether `collection_id` references the collection table with ON DELETE CASCADE.
pub async fn check_cascade(source: &Client, lc: &LangchainConfig, f: &mut Vec<Finding>) -> Result<()> {
    let cascade: Option<bool> = source
        .query_opt(
            "SELECT bool_or(c.confdeltype = 'c') FROM pg_constraint c \
               JOIN pg_class e ON e.oid = c.conrelid JOIN pg_namespace n ON n.oid = e.relnamespace \
               JOIN pg_class p ON p.oid = c.confrelid \
              WHERE c.contype = 'f' AND n.nspname = $1 AND e.relname = $2 AND p.relname = $3",
            &[&lc.source_schema, &EMBEDDING_TABLE, &COLLECTION_TABLE],
        )
        .await
        .db(|| "reading the foreign keys of the LangChain tables".into())?
        .and_then(|r| r.get(0));
    if cascade != Some(true) {
        f.push(finding(
            Level::Warning,
            "langchain_fk",
            format!("table {}.{EMBEDDING_TABLE}", display_ident(&lc.source_schema)),
            "collection_id has no foreign key with ON DELETE CASCADE (LangChain creates one): deleting a collection on the source may leave its rows behind there, while pgvshift removes them from the collection's table",
        ));
    }
    Ok(())
}

/// PURE: every collection with its table (selected ones), in naming order.
pub fn plan_collections(lc: &LangchainConfig, found: &[(Uuid, Option<String>, i64)]) -> Vec<Planned> {
    let mut sorted: Vec<&(Uuid, Option<String>, i64)> = found.iter().collect();
    sorted.sort_by(|a, b| a.1.cmp(&b.1).then(a.0.cmp(&b.0)));
    let mut namer = Namer::new(&lc.table_prefix, &lc.table_names, []);
    sorted
        .into_iter()
        .map(|(uuid, name, rows)| {
            let selected = lc.collections.includes(name.as_deref());
            Planned {
                collection: *uuid,
                name: name.clone(),
                selected,
                table: selected
                    .then(|| QualifiedName::new(lc.target_schema.clone(), namer.assign(name.as_deref(), *uuid))),
                rows: *rows,
            }
        })
        .collect()
}

/// The collections on the source with their row counts, and the rows without a collection.
pub async fn collections(source: &Client, lc: &LangchainConfig) -> Result<(Vec<(Uuid, Option<String>, i64)>, i64)> {
    let c = QualifiedName::new(lc.source_schema.clone(), COLLECTION_TABLE);
    let e = QualifiedName::new(lc.source_schema.clone(), EMBEDDING_TABLE);
    let counts: HashMap<Option<Uuid>, i64> = source
        .query(
            &format!("SELECT collection_id, count(*) FROM {} GROUP BY 1", e.quoted()),
            &[],
        )
        .await
        .db(|| format!("counting the rows of {e} per collection"))?
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    let found = source
        .query(&format!("SELECT uuid, name::text FROM {}", c.quoted()), &[])
        .await
        .db(|| format!("reading {c}"))?
        .iter()
        .map(|r| {
            let uuid: Uuid = r.get(0);
            (uuid, r.get(1), counts.get(&Some(uuid)).copied().unwrap_or(0))
        })
        .collect();
    Ok((found, counts.get(&None).copied().unwrap_or(0)))
}

/// Collections and their tables: what is selected, names listed that do not exist.
pub fn check_collections(lc: &LangchainConfig, planned: &[Planned], null_rows: i64, f: &mut Vec<Finding>) {
    if let Selection::Names(names) = &lc.collections {
        let present: HashSet<&str> = planned.iter().filter_map(|p| p.name.as_deref()).collect();
        let absent: Vec<&String> = names.iter().filter(|n| !present.contains(n.as_str())).collect();
        if !absent.is_empty() {
            f.push(finding(
                Level::Warning,
                "langchain_collections",
                "[langchain] collections",
                format!(
                    "{} not on the source (yet): {}; a collection of that name created later gets its table then",
                    if absent.len() == 1 { "is" } else { "are" },
                    absent.iter().map(|n| quoted(n)).collect::<Vec<_>>().join(", ")
                ),
            ));
        }
    }
    let selected: Vec<&Planned> = planned.iter().filter(|p| p.selected).collect();
    let skipped: i64 = planned.iter().filter(|p| !p.selected).map(|p| p.rows).sum();
    f.push(finding(
        Level::Ok,
        "langchain_collections",
        "collections",
        format!(
            "{} of {} collection(s) selected ({} rows){}{}",
            selected.len(),
            planned.len(),
            selected.iter().map(|p| p.rows).sum::<i64>(),
            if skipped > 0 {
                format!("; {skipped} rows of other collections are skipped")
            } else {
                String::new()
            },
            if null_rows > 0 {
                format!("; {null_rows} rows without a collection (collection_id NULL) are skipped")
            } else {
                String::new()
            }
        ),
    ));
}

/// Counts of what would not fit, per kind, with the first row of each.
#[derive(Debug, Default)]
struct Tally {
    count: u64,
    first: Option<String>,
    detail: Option<String>,
}

impl Tally {
    fn add(&mut self, row: impl FnOnce() -> String, detail: impl FnOnce() -> String) {
        self.count += 1;
        if self.first.is_none() {
            self.first = Some(row());
            self.detail = Some(detail());
        }
    }
}

/// One pass over the selected collections' rows: ids the id column cannot hold, metadata that
/// does not fit its typed column, NULL documents or embeddings, embeddings of another size
/// (when the source column has no typmod), and duplicate user ids (community layout).
pub async fn scan_rows(
    source: &Client,
    lc: &LangchainConfig,
    src: &SourceLayout,
    dims: u32,
    selected: &HashSet<Uuid>,
    f: &mut Vec<Finding>,
) -> Result<()> {
    if selected.is_empty() {
        return Ok(());
    }
    let e = QualifiedName::new(lc.source_schema.clone(), EMBEDDING_TABLE);
    let user = src.user_id_column.as_deref().map(quote_ident);
    let sql = format!(
        "SELECT {key}, {user}, collection_id, document IS NULL, embedding IS NULL, {dims}, cmetadata FROM {e} WHERE collection_id = ANY($1)",
        key = quote_ident(&src.key_column),
        user = user.as_deref().unwrap_or("NULL::text"),
        dims = if src.dims.is_none() {
            "CASE WHEN embedding IS NULL THEN NULL ELSE vector_dims(embedding) END"
        } else {
            "NULL::int"
        },
        e = e.quoted()
    );
    let ids: Vec<Uuid> = selected.iter().copied().collect();
    let names = layout::copy_columns(src);
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    let t = Transformer::new(lc, src, Positions::find(src, &refs).map_err(Error::Runtime)?);
    let params: Vec<&(dyn tokio_postgres::types::ToSql + Sync)> = vec![&ids];
    let rows = source
        .query_raw(&sql, params)
        .await
        .db(|| format!("reading the ids and metadata of {e}"))?;
    pin_mut!(rows);
    let mut bad_ids = Tally::default();
    let mut null_docs = Tally::default();
    let mut null_embeddings = Tally::default();
    let mut wrong_dims = Tally::default();
    let mut metadata_problems: BTreeMap<usize, Tally> = BTreeMap::new();
    let mut scanned = 0u64;
    while let Some(r) = rows
        .try_next()
        .await
        .db(|| format!("reading the ids and metadata of {e}"))?
    {
        scanned += 1;
        let key = if src.key_is_uuid {
            r.get::<_, Uuid>(0).hyphenated().to_string()
        } else {
            r.get::<_, String>(0)
        };
        let user: Option<String> = r.get(1);
        let user = user.unwrap_or_else(|| key.clone());
        let name = || format!("{} {}", src.key_column, quoted(&key));
        if let Err(why) = t.target_id_bytes(&user) {
            bad_ids.add(name, || why);
        }
        if r.get::<_, bool>(3) {
            null_docs.add(name, String::new);
        }
        if r.get::<_, bool>(4) {
            null_embeddings.add(name, String::new);
        }
        if let Some(d) = r.get::<_, Option<i32>>(5) {
            if d as u32 != dims {
                wrong_dims.add(name, || format!("{d} dimensions"));
            }
        }
        let raw: Option<super::state::Raw> = r.get(6);
        if !lc.metadata_columns.is_empty() {
            if let Err(e) = metadata::split(
                raw.as_ref().map(|b| &b.0[..]),
                src.cmetadata_jsonb,
                &lc.metadata_columns,
                None,
            ) {
                let detail = match &e.error {
                    CastError::Missing { null: true } => "null, and the column is NOT NULL".to_string(),
                    CastError::Missing { null: false } => "absent, and the column is NOT NULL".to_string(),
                    CastError::Mismatch { got, why } => format!("{got}: {why}"),
                };
                metadata_problems.entry(e.column).or_default().add(name, || detail);
            }
        }
    }
    let object = format!("table {e}");
    let mut blocking = |check: &'static str, tally: &Tally, what: String, fix: String| {
        if tally.count > 0 {
            f.push(
                finding(
                    Level::Blocking,
                    check,
                    &object,
                    format!(
                        "{} row(s) of the selected collections {what} (first: {}{})",
                        tally.count,
                        tally.first.as_deref().unwrap_or(""),
                        tally
                            .detail
                            .as_deref()
                            .filter(|d| !d.is_empty())
                            .map(|d| format!(": {d}"))
                            .unwrap_or_default()
                    ),
                )
                .fix(fix),
            );
        }
    };
    let id_fix = match lc.id_type {
        IdType::Uuid => "set [langchain] id_type = \"text\" (LangChain ids are arbitrary strings; PGVectorStore accepts a TEXT id column: id_column=Column(\"langchain_id\", \"TEXT\"))".to_string(),
        _ => "set [langchain] id_type = \"text\"".to_string(),
    };
    blocking(
        "langchain_ids",
        &bad_ids,
        format!("have an id that {} {} cannot hold", lc.id_column, lc.id_type.sql()),
        id_fix,
    );
    blocking(
        "langchain_rows",
        &null_docs,
        format!("have a NULL document, but {} is TEXT NOT NULL", lc.content_column),
        format!("UPDATE {e} SET document = '' WHERE document IS NULL; on the source, or delete those rows"),
    );
    blocking(
        "langchain_rows",
        &null_embeddings,
        format!("have a NULL embedding, but {} is NOT NULL", lc.embedding_column),
        "delete those rows on the source, or give them embeddings".into(),
    );
    blocking(
        "langchain_rows",
        &wrong_dims,
        format!("have an embedding that is not {dims}-dimensional"),
        "fix or delete those rows, or migrate collections of other sizes with their own configuration (collections, vector_size)".into(),
    );
    for (column, tally) in &metadata_problems {
        let c = &lc.metadata_columns[*column];
        blocking(
            "langchain_metadata",
            tally,
            format!(
                "have a cmetadata key {:?} that does not fit metadata column {:?} {}",
                c.name,
                c.name,
                c.data_type.sql()
            ),
            format!(
                "change the column's type in [langchain] metadata_columns (e.g. type = \"text\" or \"jsonb\"), make it nullable, or remove {:?} from metadata_columns to keep the key in the JSON column",
                c.name
            ),
        );
    }
    if src.user_id_column.is_some() {
        let dup: (i64, Option<String>) = {
            let r = source
                .query_one(
                    &format!(
                        "SELECT count(*), min(coalesce(custom_id, uuid::text)) FROM (SELECT collection_id, coalesce(custom_id, uuid::text) AS custom_id, min(uuid::text) AS uuid \
                           FROM {} WHERE collection_id = ANY($1) GROUP BY 1, 2 HAVING count(*) > 1) d",
                        e.quoted()
                    ),
                    &[&ids],
                )
                .await
                .db(|| format!("looking for duplicate custom_ids in {e}"))?;
            (r.get(0), r.get(1))
        };
        if dup.0 > 0 {
            f.push(
                finding(
                    Level::Blocking,
                    "langchain_ids",
                    &object,
                    format!(
                        "{} custom_id(s) appear more than once in the same collection (first: {}): the collection tables' ids are unique",
                        dup.0,
                        quoted(dup.1.as_deref().unwrap_or(""))
                    ),
                )
                .fix("remove the duplicates on the source (langchain_community inserts without an upsert, so re-adding a document duplicates it)"),
            );
        }
    }
    f.push(finding(
        Level::Ok,
        "langchain_rows",
        &object,
        format!("{scanned} row(s) of the selected collections read (ids and metadata)"),
    ));
    Ok(())
}

/// `delete_source_collections` is refused until `pgvshift verify` can compare LangChain
/// collection tables (it compares `[[tables]]` today).
pub fn check_cutover_options(config: &Config, lc: &LangchainConfig, f: &mut Vec<Finding>) {
    if lc.delete_source_collections {
        f.push(
            finding(
                Level::Blocking,
                "langchain_cutover",
                "[langchain] delete_source_collections",
                "deleting the source collections after the cutover needs `pgvshift verify` to prove each collection table equal first, and verify does not compare LangChain collection tables yet",
            )
            .fix(format!(
                "remove delete_source_collections from {} (delete them yourself once you have compared both sides)",
                config.path.display()
            )),
        );
    }
}
