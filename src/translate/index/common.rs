//! What every profile's index translation shares: the context and the result types, which
//! indexes are vector indexes (and their metric), the dimension limits, the dispatcher
//! [`translate`] and the statement builder. The per-profile rules are in the sibling files.

use std::collections::HashMap;

use super::alloydb::to_alloydb;
use super::halfvec::to_halfvec;
use super::lantern::to_lantern;
use super::parse::{identifier_positions, referenced_identifiers, split_rest, IndexDef, IndexKey, Opclass};
use super::pgvecto_rs::to_pgvecto_rs;
use super::vectorchord::to_vectorchord;
use crate::config::Profile;
use crate::sql::{display_ident, quote_ident, quote_literal, QualifiedName};

/// What a source column holds (pgvector types by name; everything else is `Other`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColumnKind {
    Vector,
    Halfvec,
    Sparsevec,
    Bit,
    Other,
}

/// Everything [`translate`] needs to know about the table besides the index itself.
#[derive(Debug, Clone)]
pub struct TranslateContext {
    pub profile: Profile,
    /// Source column name -> kind. Columns not listed are `Other`.
    pub column_types: HashMap<String, ColumnKind>,
    /// Source column name -> dimensions (typmod; bits for `bit(n)`).
    pub dims: HashMap<String, u32>,
    /// `pg_class.reltuples` of the source table (-1 when never analysed).
    pub estimated_rows: i64,
    /// AlloyDB only: build ScaNN indexes instead of keeping the pgvector ones.
    pub alloydb_scann: bool,
    /// Source column name -> target column name, for renamed columns.
    pub column_renames: HashMap<String, String>,
}

/// The result of translating one index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Translation {
    /// DDL to run after the copy, plus notes for `plan` (clamped options, renamed opclass...).
    Create {
        sql: String,
        notes: Vec<String>,
        /// The extension that provides the index's access method or operator class (`vector`,
        /// `lantern`, `vectors`, `vchord`, `alloydb_scann`); `None` for core access methods.
        extension: Option<String>,
    },
    /// No equivalent on the target: skipped, with the reason and what the user can do.
    Skip { reason: String },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Metric {
    L2,
    Ip,
    Cosine,
    L1,
    Hamming,
    Jaccard,
}

impl Metric {
    pub(super) fn suffix(self) -> &'static str {
        match self {
            Metric::L2 => "l2",
            Metric::Ip => "ip",
            Metric::Cosine => "cosine",
            Metric::L1 => "l1",
            Metric::Hamming => "hamming",
            Metric::Jaccard => "jaccard",
        }
    }

    pub(super) fn describe(self) -> &'static str {
        match self {
            Metric::L2 => "L2",
            Metric::Ip => "inner-product",
            Metric::Cosine => "cosine",
            Metric::L1 => "L1",
            Metric::Hamming => "Hamming",
            Metric::Jaccard => "Jaccard",
        }
    }
}

pub(super) fn kind_prefix(kind: ColumnKind) -> &'static str {
    match kind {
        ColumnKind::Vector => "vector",
        ColumnKind::Halfvec => "halfvec",
        ColumnKind::Sparsevec => "sparsevec",
        ColumnKind::Bit => "bit",
        ColumnKind::Other => "other",
    }
}

/// `vector_cosine_ops` -> (Vector, Cosine). Only pgvector's operator classes are recognised.
pub(super) fn classify_opclass(name: &str) -> Option<(ColumnKind, Metric)> {
    let body = name.strip_suffix("_ops")?;
    let (prefix, metric) = body.rsplit_once('_')?;
    let kind = match prefix {
        "vector" => ColumnKind::Vector,
        "halfvec" => ColumnKind::Halfvec,
        "sparsevec" => ColumnKind::Sparsevec,
        "bit" => ColumnKind::Bit,
        _ => return None,
    };
    let metric = match metric {
        "l2" => Metric::L2,
        "ip" => Metric::Ip,
        "cosine" => Metric::Cosine,
        "l1" => Metric::L1,
        "hamming" => Metric::Hamming,
        "jaccard" => Metric::Jaccard,
        _ => return None,
    };
    let bit_metric = matches!(metric, Metric::Hamming | Metric::Jaccard);
    ((kind == ColumnKind::Bit) == bit_metric).then_some((kind, metric))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum VecMethod {
    Hnsw,
    Ivfflat,
}

/// A pgvector index: one key, hnsw or ivfflat, a pgvector operator class.
pub(super) struct VecIndex<'a> {
    pub(super) key: &'a IndexKey,
    pub(super) method: VecMethod,
    pub(super) kind: ColumnKind,
    pub(super) metric: Metric,
    /// Source dimensions of a plain column key, when known.
    pub(super) dims: Option<u32>,
}

impl VecIndex<'_> {
    pub(super) fn opclass_name(&self) -> String {
        format!("{}_{}_ops", kind_prefix(self.kind), self.metric.suffix())
    }
}

fn vector_index<'a>(def: &'a IndexDef, ctx: &TranslateContext) -> Option<VecIndex<'a>> {
    let method = match def.method.as_str() {
        "hnsw" => VecMethod::Hnsw,
        "ivfflat" => VecMethod::Ivfflat,
        _ => return None,
    };
    let [key] = def.keys.as_slice() else { return None };
    let (kind, metric) = match (&key.opclass, method) {
        (Some(op), _) => classify_opclass(&op.name)?,
        // ivfflat's only DEFAULT operator class is vector_l2_ops (pg_get_indexdef omits it).
        (None, VecMethod::Ivfflat) => (ColumnKind::Vector, Metric::L2),
        (None, VecMethod::Hnsw) => return None,
    };
    let dims = key.column.as_ref().and_then(|c| ctx.dims.get(c).copied());
    Some(VecIndex {
        key,
        method,
        kind,
        metric,
        dims,
    })
}

/// The maximum dimensions an index of this column kind can hold on the target (for `plan`'s
/// "dims beyond the target's index limit" report). `None`: no dimension limit applies, or the
/// target has no such index at all (see [`translate`]'s skip reasons).
///
/// pgvector (and AlloyDB, and VectorChord's kept pgvector indexes): hnsw/ivfflat vector 2000,
/// halfvec 4000, bit 64000 (sparsevec is limited by non-zeros, 1000, not dimensions). halfvec:
/// vector and halfvec 4000. Lantern: 2000 (bit: 2000 int4 words = 64000 bits). PGVecto.rs:
/// 65535 (svector 1 048 575). VectorChord `vchordrq`: 16000 (pgvector's storage cap; vchord's own
/// check allows 60000).
pub fn index_dim_limit(profile: Profile, kind: ColumnKind) -> Option<u32> {
    use ColumnKind as K;
    match (profile, kind) {
        (_, K::Other) => None,
        (Profile::Pgvector | Profile::Alloydb, K::Vector) => Some(2000),
        (Profile::Pgvector | Profile::Alloydb, K::Halfvec) => Some(4000),
        (Profile::Pgvector | Profile::Alloydb | Profile::Halfvec | Profile::Vectorchord, K::Bit) => Some(64000),
        (Profile::Pgvector | Profile::Alloydb | Profile::Vectorchord, K::Sparsevec) => None,
        (Profile::Halfvec, K::Vector | K::Halfvec) => Some(4000),
        (Profile::Halfvec, K::Sparsevec) => None,
        (Profile::Lantern, K::Vector | K::Halfvec) => Some(2000),
        (Profile::Lantern, K::Bit) => Some(64000),
        (Profile::Lantern, K::Sparsevec) => None,
        (Profile::PgvectoRs, K::Vector | K::Halfvec | K::Bit) => Some(65535),
        (Profile::PgvectoRs, K::Sparsevec) => Some(1_048_575),
        (Profile::Vectorchord, K::Vector | K::Halfvec) => Some(16000),
    }
}

/// Translate one source index for the target table. Pure; see the module docs for the rules.
pub fn translate(def: &IndexDef, target_table: &QualifiedName, ctx: &TranslateContext) -> Translation {
    let idx = display_ident(&def.name);
    // Expressions and predicates are copied verbatim, so they must not mention renamed columns.
    let mut texts: Vec<&str> = def.keys.iter().filter_map(|k| k.expression.as_deref()).collect();
    texts.extend(def.predicate.as_deref());
    for text in &texts {
        for id in referenced_identifiers(text) {
            if let Some(to) = ctx.column_renames.get(&id).filter(|to| **to != id) {
                return Translation::Skip {
                    reason: format!(
                        "index {idx}: its expression or WHERE clause `{text}` reads column {} which is renamed to {} on the target, and pgvshift does not rewrite SQL expressions; create the index by hand with the new column name after the migration",
                        display_ident(&id),
                        display_ident(to)
                    ),
                };
            }
        }
    }
    let vector = vector_index(def, ctx);
    if let Some(reason) = reads_retyped_column(def, vector.is_none(), ctx, &idx) {
        return Translation::Skip { reason };
    }
    let mut b = Builder::new(def, target_table, ctx);
    match vector {
        None => plain(def, &mut b),
        Some(v) => match ctx.profile {
            Profile::Pgvector => identity(def, &mut b, &idx),
            Profile::Halfvec => to_halfvec(def, &v, &mut b, &idx),
            Profile::Lantern => to_lantern(def, &v, &mut b, &idx),
            Profile::PgvectoRs => to_pgvecto_rs(def, &v, &mut b, &idx),
            Profile::Vectorchord => to_vectorchord(def, &v, &mut b, ctx, &idx),
            Profile::Alloydb => to_alloydb(def, &v, &mut b, ctx, &idx),
        },
    }
}

/// Collects the pieces of the target statement.
pub(super) struct Builder<'a> {
    pub(super) def: &'a IndexDef,
    pub(super) target: &'a QualifiedName,
    pub(super) ctx: &'a TranslateContext,
    pub(super) notes: Vec<String>,
}

impl<'a> Builder<'a> {
    fn new(def: &'a IndexDef, target: &'a QualifiedName, ctx: &'a TranslateContext) -> Self {
        Builder {
            def,
            target,
            ctx,
            notes: Vec::new(),
        }
    }

    fn target_column(&self, source: &str) -> String {
        quote_ident(
            self.ctx
                .column_renames
                .get(source)
                .map(String::as_str)
                .unwrap_or(source),
        )
    }

    /// The key's column (renamed, quoted) or expression (verbatim).
    pub(super) fn key_sql(&self, key: &IndexKey) -> String {
        match (&key.column, &key.expression) {
            (Some(col), _) => self.target_column(col),
            (None, Some(expr)) => expr.clone(),
            (None, None) => String::new(),
        }
    }

    /// A key with an operator class written as given (or none) and the rest kept in place.
    pub(super) fn full_key_sql(&self, key: &IndexKey, opclass: Option<String>) -> String {
        let (collate, tail) = split_rest(&key.rest);
        let mut parts = vec![self.key_sql(key)];
        parts.extend(collate.map(str::to_string));
        parts.extend(opclass);
        if !tail.is_empty() {
            parts.push(tail.to_string());
        }
        parts.join(" ")
    }

    /// `CREATE [UNIQUE] INDEX IF NOT EXISTS "name" ON "s"."t" USING am (keys) [INCLUDE] [NULLS NOT
    /// DISTINCT] [WITH (with)] [WHERE predicate]`.
    pub(super) fn statement(&self, method: &str, keys: &[String], with: Option<String>) -> String {
        let d = self.def;
        let mut sql = format!(
            "CREATE {}INDEX IF NOT EXISTS {} ON {} USING {method} ({})",
            if d.unique { "UNIQUE " } else { "" },
            quote_ident(&d.name),
            self.target.quoted(),
            keys.join(", ")
        );
        if !d.include.is_empty() {
            let cols: Vec<String> = d.include.iter().map(|c| self.target_column(c)).collect();
            sql.push_str(&format!(" INCLUDE ({})", cols.join(", ")));
        }
        if d.nulls_not_distinct {
            sql.push_str(" NULLS NOT DISTINCT");
        }
        if let Some(with) = with {
            sql.push_str(&format!(" WITH ({with})"));
        }
        if let Some(pred) = &d.predicate {
            sql.push_str(&format!(" WHERE {pred}"));
        }
        sql
    }

    pub(super) fn create(&mut self, sql: String, extension: Option<&str>) -> Translation {
        Translation::Create {
            sql,
            notes: std::mem::take(&mut self.notes),
            extension: extension.map(str::to_string),
        }
    }
}

/// The source's WITH options as they were: `m='16', ef_construction='64'`.
pub(super) fn source_with(def: &IndexDef) -> Option<String> {
    (!def.options.is_empty()).then(|| {
        def.options
            .iter()
            .map(|(k, v)| format!("{}={}", option_name(k), quote_literal(v)))
            .collect::<Vec<_>>()
            .join(", ")
    })
}

fn option_name(name: &str) -> String {
    let bare = name.chars().next().is_some_and(|c| c.is_ascii_lowercase() || c == '_')
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '.');
    if bare {
        name.to_string()
    } else {
        quote_ident(name)
    }
}

/// An operator class as SQL: bare when that reads back the same (names ending in `_ops` are never
/// keywords), quoted otherwise; the schema is always quoted.
fn opclass_sql(op: &Opclass, keep_schema: bool) -> String {
    let name = if display_ident(&op.name) == op.name && op.name.ends_with("_ops") {
        op.name.clone()
    } else {
        quote_ident(&op.name)
    };
    match (&op.schema, keep_schema) {
        (Some(schema), true) => format!("{}.{name}", quote_ident(schema)),
        _ => name,
    }
}

pub(super) fn int_option(def: &IndexDef, name: &str) -> Option<i64> {
    def.options
        .iter()
        .find(|(k, _)| k == name)
        .and_then(|(_, v)| v.trim().parse().ok())
}

/// Notes for WITH options a translation does not carry over.
pub(super) fn note_dropped_options(b: &mut Builder, idx: &str, used: &[&str], target: &str) {
    for (k, v) in &b.def.options {
        if !used.contains(&k.as_str()) {
            b.notes.push(format!(
                "index {idx}: option {k}={v} has no {target} equivalent and is dropped"
            ));
        }
    }
}

fn plain(def: &IndexDef, b: &mut Builder) -> Translation {
    let keys: Vec<String> = def
        .keys
        .iter()
        .map(|k| b.full_key_sql(k, k.opclass.as_ref().map(|op| opclass_sql(op, true))))
        .collect();
    let sql = b.statement(&def.method, &keys, source_with(def));
    b.create(sql, vector_index_extension(def))
}

/// On Lantern and PGVecto.rs vector columns change type (real[], vectors.*), so pgvector's
/// functions, casts and operators no longer apply to them: an expression key (of a plain index)
/// or a predicate that reads a vector column is skipped, unless every use is `IS [NOT] NULL`.
fn reads_retyped_column(def: &IndexDef, plain: bool, ctx: &TranslateContext, idx: &str) -> Option<String> {
    if !matches!(ctx.profile, Profile::Lantern | Profile::PgvectoRs) {
        return None;
    }
    let (engine, becomes) = match ctx.profile {
        Profile::Lantern => ("Lantern", "real[] (or integer[] for bit)"),
        _ => ("PGVecto.rs", "a vectors.* type"),
    };
    let mut texts: Vec<&str> = Vec::new();
    if plain {
        texts.extend(def.keys.iter().filter_map(|k| k.expression.as_deref()));
    }
    texts.extend(def.predicate.as_deref());
    for text in texts {
        for (col, end) in identifier_positions(text) {
            let retyped = ctx.column_types.get(&col).is_some_and(|k| *k != ColumnKind::Other);
            let after = text[end..].trim_start();
            if retyped && !(after.starts_with("IS NOT NULL") || after.starts_with("IS NULL")) {
                return Some(format!(
                    "index {idx}: its expression or WHERE clause `{text}` reads the vector column {}, which becomes {becomes} on {engine}, where pgvector's functions, casts and operators do not apply; re-create the index by hand in {engine}'s terms after the migration, or do without it",
                    display_ident(&col)
                ));
            }
        }
    }
    None
}

/// A plain hnsw/ivfflat index (non-pgvector opclass) still needs pgvector's AM.
fn vector_index_extension(def: &IndexDef) -> Option<&'static str> {
    matches!(def.method.as_str(), "hnsw" | "ivfflat").then_some("vector")
}

/// The pgvector index as it was (operator class unqualified: the target's pgvector may live in
/// another schema, and is found through its search_path).
pub(super) fn identity(def: &IndexDef, b: &mut Builder, idx: &str) -> Translation {
    let keys: Vec<String> = def
        .keys
        .iter()
        .map(|k| {
            let op = k.opclass.as_ref().map(|op| {
                if let Some(schema) = &op.schema {
                    b.notes.push(format!(
                        "index {idx}: operator class {}.{} is written unqualified, as {}; the target resolves it through its search_path, so pgvector's schema must be on it when the index is built",
                        display_ident(schema),
                        display_ident(&op.name),
                        display_ident(&op.name)
                    ));
                }
                opclass_sql(op, false)
            });
            b.full_key_sql(k, op)
        })
        .collect();
    let sql = b.statement(&def.method, &keys, source_with(def));
    b.create(sql, Some("vector"))
}

pub(super) fn too_many_dims(v: &VecIndex, profile: Profile) -> Option<(u32, u32)> {
    let dims = v.dims?;
    let limit = index_dim_limit(profile, v.kind)?;
    (dims > limit).then_some((dims, limit))
}

pub(super) fn expression_skip(idx: &str, engine: &str, key: &IndexKey) -> Translation {
    Translation::Skip {
        reason: format!(
            "index {idx}: the key is an expression ({}) over pgvector functions or casts, which {engine} does not have; create an equivalent index by hand after the migration, or query without an index",
            key.expression.as_deref().unwrap_or_default()
        ),
    }
}
