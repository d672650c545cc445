//! The stream side of LangChain mode: the [`Router`] turns each change of
//! `langchain_pg_embedding` / `langchain_pg_collection` into operations on the collection
//! tables, which the applier (`crate::apply`) runs in its open target transaction, the one
//! that also moves `pgvshift.progress` (so routing, DDL and data commit together, exactly once).
//!
//! ```text
//!  collection INSERT  -> CREATE TABLE (selected) + pgvshift.langchain_collections row
//!  collection DELETE  -> DELETE FROM its table (or DROP TABLE) + its routes; the FK cascade's
//!                        row deletes that follow find no route and do nothing
//!  embedding INSERT   -> insert into the collection's table (COPY runs) + route (id -> collection)
//!  embedding UPDATE   -> pgvshift.langchain_place(): move the row if collection_id or the id
//!                        changed, then UPDATE there (unchanged TOAST kept), or an upsert when
//!                        the new row came whole
//!  embedding DELETE   -> pgvshift.langchain_delete(): the route says which table
//!  NULL collection_id, collection not selected -> skipped, counted (`pgvshift status`)
//! ```
//! Each collection table is a virtual relation of the applier (its own relid, tuples already
//! in the table's shape), so inserts and updates use the applier's own COPY and staged paths.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use bytes::Bytes;
use tokio_postgres::Client;
use uuid::Uuid;

use super::config::LangchainConfig;
use super::ddl;
use super::layout::{self, SourceLayout, COLLECTION_TABLE, EMBEDDING_TABLE};
use super::names::Namer;
use super::state::{self, CollectionRecord};
use super::transform::{Positions, Row, Transformer};
use crate::apply::TargetTable;
use crate::config::Side;
use crate::config::{Config, Endpoint};
use crate::error::{DbContext, Error, Result};
use crate::source::pgoutput::{LogicalMessage, Oid, Relation, Tuple, TupleValue};
use crate::source::{connect, RawValue};
use crate::sql::{quote_ident, QualifiedName};

/// What the applier does for the router, in order.
#[derive(Debug)]
pub enum Op {
    /// A collection table becomes (or stays) known under a virtual relid.
    Register {
        table: Box<TargetTable>,
        relation: Relation,
    },
    /// A row into a collection table (joins the applier's insert runs).
    Insert { relid: Oid, tuple: Tuple },
    /// An update of a row, found by its id in `tuple` (joins the applier's update runs).
    Update { relid: Oid, tuple: Tuple },
    /// A statement whose result is not needed, pipelined. It may overtake the applier's pending
    /// run unless that run holds the row it touches.
    Exec {
        sql: String,
        params: Vec<RawValue>,
        what: String,
        touch: Touch,
    },
    /// Rows into a table with one binary COPY, after everything before it.
    Copy {
        sql: String,
        rows: Vec<Tuple>,
        what: String,
    },
    /// A statement run after everything before it (DDL, whole-table statements).
    Batch { sql: String, what: String },
}

/// Which row an [`Op::Exec`] touches.
#[derive(Debug, Clone)]
pub enum Touch {
    /// The row with this id (the id column's binary value).
    Row(Bytes),
    /// Not known here: the applier's pending updates go first.
    Unknown,
}

/// A collection as the router knows it.
#[derive(Debug, Clone)]
struct Collection {
    name: Option<String>,
    selected: bool,
    table: Option<QualifiedName>,
    created_table: bool,
    deleted: bool,
    /// Virtual relid while the table is active.
    relid: Option<Oid>,
    /// Rows copied plus rows inserted since (for the index threshold).
    rows: u64,
    index_built: bool,
}

/// Counters of the open batch, written before it commits.
#[derive(Debug, Default)]
struct Counters {
    skipped_null: u64,
    skipped_unselected: u64,
    /// collection -> (rows inserted, rows skipped)
    per_collection: HashMap<Uuid, (u64, u64)>,
}

/// Routes LangChain changes to the collection tables. See the module docs.
pub struct Router {
    config: LangchainConfig,
    slot: String,
    source: Endpoint,
    target: Endpoint,
    source_schema: String,
    layout: SourceLayout,
    dims: u32,
    embedding_relid: Option<Oid>,
    collection_relid: Option<Oid>,
    /// Positions of uuid and name in the collection table's tuples.
    collection_pos: Option<(usize, usize)>,
    /// For tuples in the stream's column order (set by the embedding's Relation message).
    transformer: Option<Transformer>,
    /// For rows read from the source in the copier's column order (missing rows).
    copy_transformer: Transformer,
    collections: HashMap<Uuid, Collection>,
    namer: Namer,
    next_relid: Oid,
    /// Routes of rows inserted in the open batch, not written yet (COPY'd in one go).
    pending_routes: Vec<Tuple>,
    pending_keys: HashSet<String>,
    counters: Counters,
    /// An update may have addressed a row the target does not hold.
    maybe_missing: bool,
    /// Collections whose index build is running.
    indexing: Arc<std::sync::Mutex<HashSet<Uuid>>>,
    /// Opened when rows must be fetched from the source.
    source_client: Option<Client>,
}

impl Router {
    /// The router of a streaming run: the recorded layout and collections from the target.
    pub async fn load(config: &Config, target: &Client) -> Result<Router> {
        let lc = config
            .langchain
            .clone()
            .ok_or_else(|| Error::Runtime("LangChain mode without a [langchain] section".into()))?;
        let slot = config.replication.slot.clone();
        state::ensure(target)
            .await
            .db(|| "creating pgvshift's LangChain state on the target".into())?;
        let st = state::load(target, &slot)
            .await
            .db(|| "reading pgvshift.langchain on the target".into())?;
        let row = target
            .query_opt(
                "SELECT layout, id_type FROM pgvshift.langchain WHERE slot = $1",
                &[&slot],
            )
            .await
            .db(|| "reading pgvshift.langchain on the target".into())?
            .ok_or_else(|| {
                Error::Runtime(format!(
                    "slot {slot} has no LangChain state on the target (pgvshift.langchain): was it started without [langchain]? Run `pgvshift cleanup` and start over"
                ))
            })?;
        let recorded_id_type: String = row.get(1);
        if recorded_id_type != lc.id_type.sql() {
            return Err(Error::Runtime(format!(
                "langchain.id_type is {} but the collection tables were made with {recorded_id_type}: restore id_type, or `pgvshift cleanup` and start over",
                lc.id_type.sql()
            )));
        }
        let source_layout = super::check::source_layout(config, &lc).await?;
        let dims = source_layout.dims.or(lc.vector_size).unwrap_or(0);
        let existing: Vec<String> = target
            .query(
                "SELECT c.relname::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = $1",
                &[&lc.target_schema],
            )
            .await
            .db(|| format!("listing the tables of schema {} on the target", lc.target_schema))?
            .iter()
            .map(|r| r.get(0))
            .collect();
        let copy_names = layout::copy_columns(&source_layout);
        let copy_refs: Vec<&str> = copy_names.iter().map(String::as_str).collect();
        let copy_transformer = Transformer::new(
            &lc,
            &source_layout,
            Positions::find(&source_layout, &copy_refs).map_err(Error::Runtime)?,
        );
        let mut router = Router {
            namer: Namer::new(&lc.table_prefix, &lc.table_names, existing),
            config: lc.clone(),
            slot,
            source: config.source.clone(),
            target: config.target.clone(),
            source_schema: lc.source_schema.clone(),
            layout: source_layout,
            dims,
            embedding_relid: None,
            collection_relid: None,
            collection_pos: None,
            transformer: None,
            copy_transformer,
            collections: HashMap::new(),
            next_relid: u32::MAX,
            pending_routes: Vec::new(),
            pending_keys: HashSet::new(),
            counters: Counters::default(),
            maybe_missing: false,
            indexing: Arc::default(),
            source_client: None,
        };
        router.adopt(st.collections);
        Ok(router)
    }

    /// Take the recorded collections as the current state.
    fn adopt(&mut self, records: Vec<CollectionRecord>) {
        self.collections.clear();
        for r in records {
            if let Some(t) = &r.table {
                self.namer.take(&t.name);
            }
            self.collections.insert(
                r.collection,
                Collection {
                    name: r.name,
                    selected: r.selected,
                    table: r.table,
                    created_table: r.created_table,
                    deleted: r.deleted,
                    relid: None,
                    rows: (r.rows_copied + r.rows_streamed).max(0) as u64,
                    index_built: r.index_built,
                },
            );
        }
    }

    /// Register every active collection table with the applier (at the start, and again after
    /// a rolled-back batch).
    pub fn register_all(&mut self) -> Vec<Op> {
        let ids: Vec<Uuid> = self.collections.keys().copied().collect();
        ids.into_iter().filter_map(|c| self.register(c)).collect()
    }

    fn register(&mut self, collection: Uuid) -> Option<Op> {
        let dims = self.dims;
        let relid = self.new_relid();
        let embedding = QualifiedName::new(self.source_schema.clone(), EMBEDDING_TABLE);
        let c = self.collections.get_mut(&collection)?;
        if !c.selected || c.deleted {
            c.relid = None;
            return None;
        }
        let table = c.table.clone()?;
        c.relid = Some(relid);
        let (table, relation) =
            ddl::virtual_table(&self.config, &embedding, &table, dims, relid, &collection.to_string());
        Some(Op::Register {
            table: Box::new(table),
            relation,
        })
    }

    fn new_relid(&mut self) -> Oid {
        loop {
            let r = self.next_relid;
            self.next_relid -= 1;
            if Some(r) != self.embedding_relid && Some(r) != self.collection_relid {
                return r;
            }
        }
    }

    /// Whether this Relation message is one of the two LangChain tables.
    pub fn intercepts_relation(&self, r: &Relation) -> bool {
        r.namespace == self.source_schema && (r.name == EMBEDDING_TABLE || r.name == COLLECTION_TABLE)
    }

    /// Whether this message is the router's to handle.
    pub fn intercepts(&self, msg: &LogicalMessage) -> bool {
        let ours = |relid: &Oid| Some(*relid) == self.embedding_relid || Some(*relid) == self.collection_relid;
        match msg {
            LogicalMessage::Relation(r) => self.intercepts_relation(r),
            LogicalMessage::Insert { relid, .. }
            | LogicalMessage::Update { relid, .. }
            | LogicalMessage::Delete { relid, .. } => ours(relid),
            LogicalMessage::Truncate { relids, .. } => relids.iter().any(ours),
            _ => false,
        }
    }

    /// Turn one message into operations. `context` names the source transaction for errors.
    pub fn handle(&mut self, msg: LogicalMessage, context: &str) -> Result<Vec<Op>> {
        match msg {
            LogicalMessage::Relation(r) => {
                self.relation(r)?;
                Ok(Vec::new())
            }
            LogicalMessage::Insert { relid, new } if Some(relid) == self.collection_relid => {
                self.collection_insert(&new, context)
            }
            LogicalMessage::Update { relid, old, new } if Some(relid) == self.collection_relid => {
                self.collection_update(old.map(|o| o.tuple), &new, context)
            }
            LogicalMessage::Delete { relid, old } if Some(relid) == self.collection_relid => {
                self.collection_delete(&old.tuple, context)
            }
            LogicalMessage::Insert { new, .. } => self.row_insert(&new, context),
            LogicalMessage::Update { old, new, .. } => self.row_update(old.map(|o| o.tuple), &new, context),
            LogicalMessage::Delete { old, .. } => self.row_delete(&old.tuple, context),
            LogicalMessage::Truncate { relids, .. } => Ok(self.truncate(&relids)),
            _ => Ok(Vec::new()),
        }
    }

    fn relation(&mut self, r: Relation) -> Result<()> {
        let names: Vec<&str> = r.columns.iter().map(|c| c.name.as_str()).collect();
        if r.name == COLLECTION_TABLE {
            let at = |n: &str| names.iter().position(|c| *c == n);
            let (Some(uuid), Some(name)) = (at("uuid"), at("name")) else {
                return Err(Error::Runtime(format!(
                    "{}.{COLLECTION_TABLE} no longer has the columns uuid and name: its changes cannot be routed",
                    self.source_schema
                )));
            };
            self.collection_relid = Some(r.relid);
            self.collection_pos = Some((uuid, name));
        } else {
            let pos = Positions::find(&self.layout, &names).map_err(|e| {
                Error::Runtime(format!(
                    "{}.{EMBEDDING_TABLE}: {e}: its changes cannot be routed (was it altered?)",
                    self.source_schema
                ))
            })?;
            self.embedding_relid = Some(r.relid);
            self.transformer = Some(Transformer::new(&self.config, &self.layout, pos));
        }
        Ok(())
    }

    fn transformer(&self) -> Result<&Transformer> {
        self.transformer.as_ref().ok_or_else(|| {
            Error::Runtime(format!(
                "a change to {EMBEDDING_TABLE} arrived before its Relation message"
            ))
        })
    }

    fn row_error(&self, e: super::transform::RowError, context: &str) -> Error {
        Error::Runtime(format!(
            "cannot migrate {}.{EMBEDDING_TABLE} row {} ({context}): {}",
            self.source_schema, e.row, e.message
        ))
    }

    /// The collection's relid when its rows move (selected, active), counting skipped rows.
    fn destination(&mut self, collection: Option<Uuid>, skipped: bool) -> Option<Oid> {
        let Some(c) = collection else {
            if skipped {
                self.counters.skipped_null += 1;
            }
            return None;
        };
        match self.collections.get(&c).and_then(|x| x.relid) {
            Some(relid) => Some(relid),
            None => {
                if skipped {
                    self.counters.skipped_unselected += 1;
                    if self.collections.contains_key(&c) {
                        self.counters.per_collection.entry(c).or_default().1 += 1;
                    }
                }
                None
            }
        }
    }

    fn row_insert(&mut self, new: &Tuple, context: &str) -> Result<Vec<Op>> {
        let row = self
            .transformer()?
            .transform(&new.0)
            .map_err(|e| self.row_error(e, context))?;
        let Some(relid) = self.destination(row.collection, true) else {
            return Ok(Vec::new());
        };
        let collection = row.collection.expect("routed rows have a collection");
        self.counters.per_collection.entry(collection).or_default().0 += 1;
        self.pending_keys.insert(row.key.clone());
        self.pending_routes.push(route_tuple(&self.slot, &row));
        Ok(vec![Op::Insert {
            relid,
            tuple: row.tuple,
        }])
    }

    fn row_update(&mut self, old: Option<Tuple>, new: &Tuple, context: &str) -> Result<Vec<Op>> {
        let (row, old_key) = {
            let t = self.transformer()?;
            let row = t.transform(&new.0).map_err(|e| self.row_error(e, context))?;
            let old_key = match &old {
                Some(o) => t.key(&o.0).map_err(|e| self.row_error(e, context))?,
                None => row.key.clone(),
            };
            (row, old_key)
        };
        // Skipped rows are counted when they arrive (snapshot, insert), not again per update.
        let relid = self.destination(row.collection, false);
        let mut ops = Vec::new();
        if self.pending_keys.contains(&old_key) || self.pending_keys.contains(&row.key) {
            ops.extend(self.flush_routes());
        }
        let complete = row.complete();
        let collection = relid.and(row.collection);
        let id = row.tuple.0[0].clone();
        let touch = match (&id, old_key == row.key && self.layout.user_id_column.is_none()) {
            (TupleValue::Binary(b), true) => Touch::Row(b.clone()),
            _ => Touch::Unknown,
        };
        ops.push(Op::Exec {
            sql: "SELECT pgvshift.langchain_place($1, $2, $3, $4::text::uuid, $5, $6::text::boolean)".into(),
            params: vec![
                text(&self.slot),
                text(&old_key),
                text(&row.key),
                collection.map_or(RawValue::Null, |c| text(&c.to_string())),
                text(&row.target_id),
                text(if complete { "true" } else { "false" }),
            ],
            what: format!(
                "routing the update of {EMBEDDING_TABLE} row {} ({context})",
                quoted_key(&old_key)
            ),
            touch: touch.clone(),
        });
        let Some(relid) = relid else {
            return Ok(ops);
        };
        if complete {
            let table = self.table_of(row.collection.expect("routed"))?;
            ops.push(Op::Exec {
                sql: self.upsert_sql(&table),
                params: row
                    .tuple
                    .0
                    .iter()
                    .map(|v| match v {
                        TupleValue::Binary(b) => RawValue::Binary(b.clone()),
                        _ => RawValue::Null,
                    })
                    .collect(),
                what: format!("upserting row {} into {table} ({context})", quoted_key(&row.target_id)),
                touch,
            });
        } else {
            self.maybe_missing = true;
            ops.push(Op::Update {
                relid,
                tuple: row.tuple,
            });
        }
        Ok(ops)
    }

    fn row_delete(&mut self, old: &Tuple, context: &str) -> Result<Vec<Op>> {
        let (key, id) = {
            let t = self.transformer()?;
            let key = t.key(&old.0).map_err(|e| self.row_error(e, context))?;
            let id = t.target_id_bytes(&key);
            (key, id)
        };
        let mut ops = Vec::new();
        if self.pending_keys.contains(&key) {
            ops.extend(self.flush_routes());
        }
        let touch = match (&self.layout.user_id_column, id) {
            (None, Ok(b)) => Touch::Row(b),
            _ => Touch::Unknown,
        };
        ops.push(Op::Exec {
            sql: "SELECT pgvshift.langchain_delete($1, $2)".into(),
            params: vec![text(&self.slot), text(&key)],
            what: format!("deleting {EMBEDDING_TABLE} row {} ({context})", quoted_key(&key)),
            touch,
        });
        Ok(ops)
    }

    fn table_of(&self, collection: Uuid) -> Result<QualifiedName> {
        self.collections
            .get(&collection)
            .and_then(|c| c.table.clone())
            .ok_or_else(|| Error::Runtime(format!("collection {collection} has no table")))
    }

    fn upsert_sql(&self, table: &QualifiedName) -> String {
        let cols = ddl::columns(&self.config, self.dims);
        let names: Vec<String> = cols.iter().map(|c| quote_ident(&c.name)).collect();
        let params: Vec<String> = (1..=cols.len()).map(|i| format!("${i}")).collect();
        let sets: Vec<String> = names[1..].iter().map(|n| format!("{n} = EXCLUDED.{n}")).collect();
        format!(
            "INSERT INTO {} ({}) VALUES ({}) ON CONFLICT ({}) DO UPDATE SET {}",
            table.quoted(),
            names.join(", "),
            params.join(", "),
            names[0],
            sets.join(", ")
        )
    }

    fn collection_fields(&self, tuple: &Tuple) -> Result<(Uuid, Option<String>)> {
        let (u, n) = self.collection_pos.ok_or_else(|| {
            Error::Runtime(format!(
                "a change to {COLLECTION_TABLE} arrived before its Relation message"
            ))
        })?;
        let uuid = match tuple.0.get(u) {
            Some(TupleValue::Binary(b)) => Uuid::from_slice(b).ok(),
            _ => None,
        }
        .ok_or_else(|| Error::Runtime(format!("a {COLLECTION_TABLE} row arrived without its uuid")))?;
        let name = match tuple.0.get(n) {
            Some(TupleValue::Binary(b)) => Some(String::from_utf8_lossy(b).into_owned()),
            _ => None,
        };
        Ok((uuid, name))
    }

    fn collection_insert(&mut self, new: &Tuple, context: &str) -> Result<Vec<Op>> {
        let (uuid, name) = self.collection_fields(new)?;
        let selected = self.config.collections.includes(name.as_deref());
        let mut ops = Vec::new();
        let previous = self.collections.get(&uuid).cloned();
        let (table, created) = match (&previous, selected) {
            // A deleted collection's uuid again: its kept table is used again.
            (Some(p), true) if p.table.is_some() => (p.table.clone(), p.created_table),
            (_, true) => {
                let name = self.namer.assign(name.as_deref(), uuid);
                (Some(QualifiedName::new(self.config.target_schema.clone(), name)), true)
            }
            (_, false) => (None, false),
        };
        if let Some(t) = &table {
            let exists = previous
                .as_ref()
                .is_some_and(|p| p.table.is_some() && !(p.deleted && self.config.drop_deleted_collections));
            if !exists {
                if let Some(s) = crate::schema::ddl::create_schema_sql(t) {
                    ops.push(Op::Batch {
                        sql: s,
                        what: format!("creating schema {} for a new collection", quote_ident(&t.schema)),
                    });
                }
                ops.push(Op::Batch {
                    sql: ddl::create_table_sql(&self.config, t, self.dims),
                    what: format!(
                        "creating table {t} for the new collection {} ({context}); if it exists already, drop it or map the collection to another name in [langchain] table_names",
                        name.as_deref().map(super::transform::quoted).unwrap_or_else(|| uuid.to_string())
                    ),
                });
            }
            tracing::info!(slot = %self.slot, collection = name.as_deref().unwrap_or(""), table = %t, "new LangChain collection: created its table");
        }
        ops.push(Op::Exec {
            sql: state::INSERT_COLLECTION_SQL.into(),
            params: vec![
                text(&self.slot),
                text(&uuid.to_string()),
                name.as_deref().map_or(RawValue::Null, text),
                text(&selected.to_string()),
                table.as_ref().map_or(RawValue::Null, |t| text(&t.schema)),
                table.as_ref().map_or(RawValue::Null, |t| text(&t.name)),
                text(&created.to_string()),
                text("0"),
            ],
            what: format!("recording collection {uuid}"),
            touch: Touch::Unknown,
        });
        self.collections.insert(
            uuid,
            Collection {
                name,
                selected,
                table,
                created_table: created,
                deleted: false,
                relid: None,
                rows: previous.as_ref().map_or(0, |p| if p.deleted { 0 } else { p.rows }),
                index_built: previous.as_ref().is_some_and(|p| p.index_built && !p.deleted),
            },
        );
        ops.extend(self.register(uuid));
        Ok(ops)
    }

    fn collection_update(&mut self, old: Option<Tuple>, new: &Tuple, context: &str) -> Result<Vec<Op>> {
        let (uuid, name) = self.collection_fields(new)?;
        let old_uuid = match &old {
            Some(o) => self.collection_fields(o)?.0,
            None => uuid,
        };
        let mut ops = Vec::new();
        if old_uuid != uuid {
            ops.extend(self.flush_routes());
            ops.push(Op::Exec {
                sql: state::REKEY_COLLECTION_SQL.into(),
                params: vec![text(&self.slot), text(&old_uuid.to_string()), text(&uuid.to_string())],
                what: format!("recording the new uuid of collection {old_uuid} ({context})"),
                touch: Touch::Unknown,
            });
            if let Some(c) = self.collections.remove(&old_uuid) {
                self.collections.insert(uuid, c);
                ops.extend(self.register(uuid));
            }
        }
        let Some(c) = self.collections.get_mut(&uuid) else {
            // Never seen (no FK, or selected by a name it did not have): treat as new.
            return self.collection_insert(new, context);
        };
        if c.name != name {
            tracing::info!(slot = %self.slot, collection = %uuid, "collection renamed on the source: its table keeps its name");
            c.name = name.clone();
            ops.push(Op::Exec {
                sql: state::RENAME_COLLECTION_SQL.into(),
                params: vec![
                    text(&self.slot),
                    text(&uuid.to_string()),
                    name.as_deref().map_or(RawValue::Null, text),
                ],
                what: format!("recording the new name of collection {uuid}"),
                touch: Touch::Unknown,
            });
        }
        Ok(ops)
    }

    fn collection_delete(&mut self, old: &Tuple, context: &str) -> Result<Vec<Op>> {
        let (uuid, _) = self.collection_fields(old)?;
        Ok(self.delete_collection(uuid, context))
    }

    fn delete_collection(&mut self, uuid: Uuid, context: &str) -> Vec<Op> {
        let Some(c) = self.collections.get(&uuid).cloned() else {
            return Vec::new();
        };
        let mut ops = Vec::new();
        if let (Some(t), true, false) = (&c.table, c.selected, c.deleted) {
            // The FK cascade's row deletes follow this message; removing the table's rows (and
            // their routes) here at once turns each of those into a no-op.
            ops.extend(self.flush_routes());
            let (sql, what) = if self.config.drop_deleted_collections {
                (format!("DROP TABLE {}", t.quoted()), "dropping")
            } else {
                (format!("DELETE FROM {}", t.quoted()), "emptying")
            };
            ops.push(Op::Batch {
                sql,
                what: format!("{what} table {t} of the deleted collection {uuid} ({context})"),
            });
            ops.push(Op::Exec {
                sql: state::FORGET_COLLECTION_ROUTES_SQL.into(),
                params: vec![text(&self.slot), text(&uuid.to_string())],
                what: format!("forgetting the routes of collection {uuid}"),
                touch: Touch::Unknown,
            });
            tracing::info!(slot = %self.slot, collection = c.name.as_deref().unwrap_or(""), table = %t, "LangChain collection deleted on the source: {what} its table");
        }
        ops.push(Op::Exec {
            sql: state::DELETE_COLLECTION_SQL.into(),
            params: vec![text(&self.slot), text(&uuid.to_string())],
            what: format!("recording the deletion of collection {uuid}"),
            touch: Touch::Unknown,
        });
        if let Some(c) = self.collections.get_mut(&uuid) {
            c.deleted = true;
            c.relid = None;
            if self.config.drop_deleted_collections {
                c.index_built = false;
            }
        }
        ops
    }

    fn truncate(&mut self, relids: &[Oid]) -> Vec<Op> {
        let mut ops = Vec::new();
        let active: Vec<QualifiedName> = self
            .collections
            .values()
            .filter(|c| c.relid.is_some())
            .filter_map(|c| c.table.clone())
            .collect();
        if relids.iter().any(|r| Some(*r) == self.embedding_relid) {
            self.pending_routes.clear();
            self.pending_keys.clear();
            if !active.is_empty() {
                ops.push(Op::Batch {
                    sql: format!(
                        "TRUNCATE {}",
                        active.iter().map(QualifiedName::quoted).collect::<Vec<_>>().join(", ")
                    ),
                    what: format!("applying TRUNCATE {EMBEDDING_TABLE} to the collection tables"),
                });
            }
            ops.push(Op::Batch {
                sql: format!(
                    "DELETE FROM pgvshift.langchain_routes WHERE slot = {s}; DELETE FROM pgvshift.langchain_missing WHERE slot = {s}",
                    s = crate::sql::quote_literal(&self.slot)
                ),
                what: "forgetting every route after a TRUNCATE".into(),
            });
        }
        if relids.iter().any(|r| Some(*r) == self.collection_relid) {
            let live: Vec<Uuid> = self
                .collections
                .iter()
                .filter(|(_, c)| !c.deleted)
                .map(|(id, _)| *id)
                .collect();
            for id in live {
                ops.extend(self.delete_collection(id, &format!("TRUNCATE {COLLECTION_TABLE}")));
            }
        }
        ops
    }

    /// Write the routes of rows inserted in the open batch.
    pub fn flush_routes(&mut self) -> Vec<Op> {
        if self.pending_routes.is_empty() {
            return Vec::new();
        }
        self.pending_keys.clear();
        let rows = std::mem::take(&mut self.pending_routes);
        vec![Op::Copy {
            sql: "COPY pgvshift.langchain_routes (slot, key, collection, target_id) FROM STDIN (FORMAT binary)".into(),
            what: format!("recording the routes of {} inserted rows", rows.len()),
            rows,
        }]
    }

    /// The batch's counters, written before it commits.
    pub fn counter_ops(&mut self) -> Vec<Op> {
        let c = std::mem::take(&mut self.counters);
        let mut ops = Vec::new();
        if c.skipped_null + c.skipped_unselected > 0 {
            ops.push(Op::Exec {
                sql: state::ADD_SKIPPED_SQL.into(),
                params: vec![
                    text(&self.slot),
                    text(&c.skipped_null.to_string()),
                    text(&c.skipped_unselected.to_string()),
                ],
                what: "counting skipped rows".into(),
                touch: Touch::Unknown,
            });
        }
        for (collection, (inserted, skipped)) in c.per_collection {
            if let Some(x) = self.collections.get_mut(&collection) {
                x.rows += inserted;
            }
            ops.push(Op::Exec {
                sql: state::ADD_COLLECTION_COUNTS_SQL.into(),
                params: vec![
                    text(&self.slot),
                    text(&collection.to_string()),
                    text(&inserted.to_string()),
                    text(&skipped.to_string()),
                ],
                what: format!("counting the rows of collection {collection}"),
                touch: Touch::Unknown,
            });
        }
        ops
    }

    /// Rows that updates addressed but the target does not hold (skipped before, when their
    /// collection was not selected) and whose update came without every value: read them from
    /// the source as they are now and write them whole. Later changes in the stream apply on
    /// top, so the end state is exact. Needs the batch's earlier statements done.
    pub async fn missing_ops(&mut self, target: &Client) -> Result<Vec<Op>> {
        if !std::mem::take(&mut self.maybe_missing) {
            return Ok(Vec::new());
        }
        let keys: Vec<String> = target
            .query(
                "DELETE FROM pgvshift.langchain_missing WHERE slot = $1 RETURNING key",
                &[&self.slot],
            )
            .await
            .db(|| "reading pgvshift.langchain_missing".into())?
            .iter()
            .map(|r| r.get(0))
            .collect();
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        if self.source_client.is_none() {
            self.source_client = Some(connect(&self.source, Side::Source).await?);
        }
        let source = self.source_client.as_ref().expect("connected");
        let cols = layout::copy_columns(&self.layout);
        let key_type = if self.layout.key_is_uuid { "uuid" } else { "text" };
        let sql = format!(
            "SELECT {} FROM {} WHERE {} = ANY($1::text[]::{key_type}[])",
            cols.iter().map(|c| quote_ident(c)).collect::<Vec<_>>().join(", "),
            QualifiedName::new(self.source_schema.clone(), EMBEDDING_TABLE).quoted(),
            quote_ident(&self.layout.key_column)
        );
        let rows = source.query(&sql, &[&keys]).await.db(|| {
            format!(
                "reading {} rows from the source's {EMBEDDING_TABLE} (rows that entered a migrated collection)",
                keys.len()
            )
        })?;
        tracing::info!(slot = %self.slot, rows = rows.len(), "rows moved into a migrated collection without every value in the change: read them from the source");
        let mut ops = Vec::new();
        for r in rows {
            let values: Vec<TupleValue> = (0..cols.len())
                .map(|i| match r.get::<_, Option<state::Raw>>(i) {
                    Some(state::Raw(b)) => TupleValue::Binary(b),
                    None => TupleValue::Null,
                })
                .collect();
            let row: Row = self
                .copy_transformer
                .transform(&values)
                .map_err(|e| self.row_error(e, "read from the source for a row that entered a migrated collection"))?;
            let Some(_) = self.destination(row.collection, false) else {
                continue;
            };
            let table = self.table_of(row.collection.expect("routed"))?;
            ops.push(Op::Exec {
                sql: "SELECT pgvshift.langchain_place($1, $2, $2, $3::text::uuid, $4, true)".into(),
                params: vec![
                    text(&self.slot),
                    text(&row.key),
                    text(&row.collection.expect("routed").to_string()),
                    text(&row.target_id),
                ],
                what: format!("routing row {}", quoted_key(&row.key)),
                touch: Touch::Unknown,
            });
            ops.push(Op::Exec {
                sql: self.upsert_sql(&table),
                params: row
                    .tuple
                    .0
                    .iter()
                    .map(|v| match v {
                        TupleValue::Binary(b) => RawValue::Binary(b.clone()),
                        _ => RawValue::Null,
                    })
                    .collect(),
                what: format!("writing row {} into {table}", quoted_key(&row.target_id)),
                touch: Touch::Unknown,
            });
        }
        Ok(ops)
    }

    /// The batch committed: start the index builds of tables that reached `index_min_rows`.
    pub fn committed(&mut self) {
        let due: Vec<(Uuid, QualifiedName)> = self
            .collections
            .iter()
            .filter(|(_, c)| c.relid.is_some() && !c.index_built && c.rows >= self.config.index_min_rows)
            .filter_map(|(id, c)| c.table.clone().map(|t| (*id, t)))
            .collect();
        for (id, table) in due {
            if ddl::index_skip_reason(&self.config, self.dims).is_some() {
                return;
            }
            if !self.indexing.lock().expect("lock").insert(id) {
                continue;
            }
            if let Some(c) = self.collections.get_mut(&id) {
                c.index_built = true; // once per run; recorded on the target when done
            }
            let (config, target, slot, dims, indexing) = (
                self.config.clone(),
                self.target.clone(),
                self.slot.clone(),
                self.dims,
                self.indexing.clone(),
            );
            tokio::spawn(async move {
                match build_index(&config, &target, &slot, id, &table, dims).await {
                    Ok(secs) => {
                        tracing::info!(slot = %slot, table = %table, seconds = format!("{secs:.1}"), "built the vector index of a collection table that reached langchain.index_min_rows")
                    }
                    Err(e) => {
                        tracing::warn!(slot = %slot, table = %table, "building the vector index failed (the next run tries again; `pgvshift langchain indexes` builds it at cutover): {e}")
                    }
                }
                indexing.lock().expect("lock").remove(&id);
            });
        }
    }

    /// The open batch was rolled back: forget its changes, take the target's state again.
    pub async fn rolled_back(&mut self, target: &Client) -> Result<Vec<Op>> {
        self.pending_routes.clear();
        self.pending_keys.clear();
        self.counters = Counters::default();
        self.maybe_missing = false;
        let st = state::load(target, &self.slot)
            .await
            .db(|| "reading pgvshift.langchain_collections again after a rollback".into())?;
        self.adopt(st.collections);
        Ok(self.register_all())
    }
}

/// Build (or finish) one collection table's vector index on its own connection, CONCURRENTLY
/// so the stream goes on; an invalid index left by an interrupted build is dropped first.
/// Returns the seconds it took.
pub async fn build_index(
    config: &LangchainConfig,
    target: &Endpoint,
    slot: &str,
    collection: Uuid,
    table: &QualifiedName,
    dims: u32,
) -> Result<f64> {
    let Some(sql) = ddl::create_index_sql(config, table, dims, true) else {
        return Ok(0.0);
    };
    let started = std::time::Instant::now();
    let client = connect(target, Side::Target).await?;
    let index = QualifiedName::new(table.schema.clone(), ddl::index_name(&table.name));
    let invalid: bool = client
        .query_one(
            "SELECT coalesce((SELECT NOT indisvalid FROM pg_index WHERE indexrelid = to_regclass($1)), false)",
            &[&index.quoted()],
        )
        .await
        .db(|| format!("reading index {index}"))?
        .get(0);
    if invalid {
        client
            .batch_execute(&format!("DROP INDEX CONCURRENTLY IF EXISTS {}", index.quoted()))
            .await
            .db(|| format!("dropping the invalid index {index} left by an interrupted build"))?;
    }
    client
        .batch_execute(&sql)
        .await
        .db(|| format!("building the vector index of {table} with `{sql}`"))?;
    state::set_index_built(&client, slot, collection)
        .await
        .db(|| "recording the index build".into())?;
    Ok(started.elapsed().as_secs_f64())
}

/// A route row for the COPY into pgvshift.langchain_routes.
fn route_tuple(slot: &str, row: &Row) -> Tuple {
    Tuple(vec![
        TupleValue::Binary(Bytes::copy_from_slice(slot.as_bytes())),
        TupleValue::Binary(Bytes::copy_from_slice(row.key.as_bytes())),
        TupleValue::Binary(Bytes::copy_from_slice(row.collection.expect("routed").as_bytes())),
        if row.target_id == row.key {
            TupleValue::Null
        } else {
            TupleValue::Binary(Bytes::copy_from_slice(row.target_id.as_bytes()))
        },
    ])
}

/// A text parameter (binary form of text: its UTF-8 bytes).
fn text(s: &str) -> RawValue {
    RawValue::Binary(Bytes::copy_from_slice(s.as_bytes()))
}

fn quoted_key(k: &str) -> String {
    super::transform::quoted(k)
}
