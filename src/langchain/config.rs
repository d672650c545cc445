//! The `[langchain]` section: which collections move, how their tables are named and laid out
//! (the layout `PGEngine.init_vectorstore_table` / `AlloyDBEngine.init_vectorstore_table`
//! create), and how `cmetadata` keys become typed columns. Parsed with the rest of the file by
//! `crate::config`; this module only validates its own keys (errors carry the key and the
//! value's position, which `crate::config` turns into a `ConfigError::Invalid`).

use std::collections::{BTreeMap, BTreeSet};
use std::ops::Range;

use serde::Deserialize;
use toml::Spanned;

use crate::config::profile::Profile;
use crate::config::MAX_NAME_BYTES;

/// Default `id_column` (LangChain's `init_vectorstore_table` default).
pub const DEFAULT_ID_COLUMN: &str = "langchain_id";
/// Default `content_column`.
pub const DEFAULT_CONTENT_COLUMN: &str = "content";
/// Default `embedding_column`.
pub const DEFAULT_EMBEDDING_COLUMN: &str = "embedding";
/// Default `metadata_json_column`.
pub const DEFAULT_METADATA_JSON_COLUMN: &str = "langchain_metadata";
/// Default `index_min_rows`: a collection table gets its vector index once it holds this many
/// rows (at the end of the snapshot, or while streaming), else at cutover.
pub const DEFAULT_INDEX_MIN_ROWS: u64 = 10_000;

/// The validated `[langchain]` section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LangchainConfig {
    /// Schema of `langchain_pg_collection` and `langchain_pg_embedding` on the source.
    pub source_schema: String,
    /// Which collections move.
    pub collections: Selection,
    /// Schema of the collection tables on the target.
    pub target_schema: String,
    /// Put in front of every derived table name (not of names given in `table_names`).
    pub table_prefix: String,
    /// Collection name -> target table name, overriding the derived name.
    pub table_names: BTreeMap<String, String>,
    pub id_column: String,
    pub id_type: IdType,
    pub content_column: String,
    pub embedding_column: String,
    /// The column for the metadata keys that have no typed column (`None`: store_metadata =
    /// false, those keys are dropped as LangChain does without a JSON column).
    pub metadata_json: Option<JsonColumn>,
    pub metadata_columns: Vec<MetadataColumn>,
    /// The embedding's target engine: `vector(n)` (pgvector, alloydb, vectorchord) or
    /// `halfvec(n)` (halfvec).
    pub profile: Profile,
    /// Dimensions of the target embedding column when the source column is a plain `vector`
    /// without a typmod (LangChain without `embedding_length`).
    pub vector_size: Option<u32>,
    pub index: VectorIndex,
    pub index_min_rows: u64,
    /// Drop a collection's table when the collection is deleted (default: keep it, empty).
    pub drop_deleted_collections: bool,
    /// Accepted, and refused by the checks until `pgvshift verify` exists.
    pub delete_source_collections: bool,
}

/// `collections = "all"` or a list of names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Selection {
    All,
    Names(BTreeSet<String>),
}

impl Selection {
    /// Whether a collection of this name moves (a collection without a name moves only with
    /// `"all"`).
    pub fn includes(&self, name: Option<&str>) -> bool {
        match (self, name) {
            (Selection::All, _) => true,
            (Selection::Names(names), Some(n)) => names.contains(n),
            (Selection::Names(_), None) => false,
        }
    }
}

/// The id column's type on the target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdType {
    /// `UUID` (LangChain's default): every id must be a UUID.
    Uuid,
    Text,
    /// `VARCHAR` / `VARCHAR(n)`.
    Varchar(Option<u32>),
}

impl IdType {
    /// The type as `format_type` prints it (used in DDL and compared with existing tables).
    pub fn sql(self) -> String {
        match self {
            IdType::Uuid => "uuid".into(),
            IdType::Text => "text".into(),
            IdType::Varchar(None) => "character varying".into(),
            IdType::Varchar(Some(n)) => format!("character varying({n})"),
        }
    }

    fn parse(text: &str) -> Option<IdType> {
        match MetaType::parse(text)? {
            MetaType::Uuid => Some(IdType::Uuid),
            MetaType::Text => Some(IdType::Text),
            MetaType::Varchar(n) => Some(IdType::Varchar(n)),
            _ => None,
        }
    }
}

/// The JSON column for the remaining metadata keys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JsonColumn {
    pub name: String,
    /// `jsonb` instead of LangChain's `json`.
    pub jsonb: bool,
}

/// One typed metadata column: the `cmetadata` key of the same name goes there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetadataColumn {
    pub name: String,
    pub data_type: MetaType,
    pub nullable: bool,
}

/// The types a metadata value can be cast to (in Rust, from the decoded JSON; see
/// `crate::langchain::metadata` for the rules).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetaType {
    Text,
    Varchar(Option<u32>),
    Char(u32),
    Int2,
    Int4,
    Int8,
    Float4,
    Float8,
    /// `numeric` or `numeric(precision, scale)`.
    Numeric(Option<(u32, u32)>),
    Bool,
    Uuid,
    Json,
    Jsonb,
    Date,
    Timestamp,
    Timestamptz,
    TextArray,
}

/// The accepted spellings, for error messages.
pub const METADATA_TYPES: &str = "text, varchar(n), char(n), smallint, integer, bigint, real, double precision, numeric(p,s), boolean, uuid, json, jsonb, date, timestamp, timestamptz, text[]";

impl MetaType {
    /// Parse a type as written in SQL (`INTEGER`, `varchar(255)`, `timestamp with time zone`).
    pub fn parse(text: &str) -> Option<MetaType> {
        let t = normalize_type(text);
        let (base, args) = match t.find('(') {
            Some(i) if t.ends_with(')') => (&t[..i], Some(&t[i + 1..t.len() - 1])),
            Some(_) => return None,
            None => (t.as_str(), None),
        };
        let nums: Option<Vec<u32>> = match args {
            None => None,
            Some(a) => Some(
                a.split(',')
                    .map(|n| n.trim().parse().ok())
                    .collect::<Option<Vec<u32>>>()?,
            ),
        };
        let one = |nums: &Option<Vec<u32>>| -> Option<Option<u32>> {
            match nums.as_deref() {
                None => Some(None),
                Some([n]) if *n >= 1 => Some(Some(*n)),
                _ => None,
            }
        };
        Some(match base {
            "text" => MetaType::Text,
            "varchar" | "character varying" => MetaType::Varchar(one(&nums)?),
            "char" | "character" | "bpchar" => MetaType::Char(one(&nums)?.unwrap_or(1)),
            "smallint" | "int2" => MetaType::Int2,
            "integer" | "int" | "int4" => MetaType::Int4,
            "bigint" | "int8" => MetaType::Int8,
            "real" | "float4" => MetaType::Float4,
            "double precision" | "float8" | "float" => MetaType::Float8,
            "numeric" | "decimal" => MetaType::Numeric(match nums.as_deref() {
                None => None,
                Some([p]) if (1..=1000).contains(p) => Some((*p, 0)),
                Some([p, s]) if (1..=1000).contains(p) && s <= p => Some((*p, *s)),
                _ => return None,
            }),
            "boolean" | "bool" => MetaType::Bool,
            "uuid" => MetaType::Uuid,
            "json" => MetaType::Json,
            "jsonb" => MetaType::Jsonb,
            "date" => MetaType::Date,
            "timestamp" | "timestamp without time zone" => MetaType::Timestamp,
            "timestamptz" | "timestamp with time zone" => MetaType::Timestamptz,
            "text[]" | "_text" => MetaType::TextArray,
            _ => return None,
        })
        .filter(|m| nums.is_none() || matches!(m, MetaType::Varchar(_) | MetaType::Char(_) | MetaType::Numeric(_)))
    }

    /// The type as `format_type` prints it.
    pub fn sql(self) -> String {
        match self {
            MetaType::Text => "text".into(),
            MetaType::Varchar(None) => "character varying".into(),
            MetaType::Varchar(Some(n)) => format!("character varying({n})"),
            MetaType::Char(n) => format!("character({n})"),
            MetaType::Int2 => "smallint".into(),
            MetaType::Int4 => "integer".into(),
            MetaType::Int8 => "bigint".into(),
            MetaType::Float4 => "real".into(),
            MetaType::Float8 => "double precision".into(),
            MetaType::Numeric(None) => "numeric".into(),
            MetaType::Numeric(Some((p, s))) => format!("numeric({p},{s})"),
            MetaType::Bool => "boolean".into(),
            MetaType::Uuid => "uuid".into(),
            MetaType::Json => "json".into(),
            MetaType::Jsonb => "jsonb".into(),
            MetaType::Date => "date".into(),
            MetaType::Timestamp => "timestamp without time zone".into(),
            MetaType::Timestamptz => "timestamp with time zone".into(),
            MetaType::TextArray => "text[]".into(),
        }
    }
}

/// Lower case, single spaces, none around parentheses and commas.
fn normalize_type(text: &str) -> String {
    let lower = text.trim().to_lowercase();
    let collapsed = lower.split_whitespace().collect::<Vec<_>>().join(" ");
    collapsed
        .replace(" (", "(")
        .replace("( ", "(")
        .replace(" )", ")")
        .replace(" ,", ",")
        .replace(", ", ",")
        .replace(" [", "[")
}

/// Which vector index each collection table gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VectorIndex {
    pub method: IndexMethod,
    pub distance: Distance,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IndexMethod {
    /// LangChain's `HNSWIndex` defaults: m = 16, ef_construction = 64.
    Hnsw {
        m: u32,
        ef_construction: u32,
    },
    /// LangChain's `IVFFlatIndex` default: lists = 100.
    Ivfflat {
        lists: u32,
    },
    None,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Distance {
    Cosine,
    L2,
    InnerProduct,
}

impl Distance {
    /// The operator class suffix: `cosine_ops`, `l2_ops`, `ip_ops`.
    pub fn ops_suffix(self) -> &'static str {
        match self {
            Distance::Cosine => "cosine_ops",
            Distance::L2 => "l2_ops",
            Distance::InnerProduct => "ip_ops",
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Raw form
// ---------------------------------------------------------------------------------------------

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawLangchain {
    source_schema: Option<Spanned<String>>,
    collections: Option<Spanned<toml::Value>>,
    target_schema: Option<Spanned<String>>,
    table_prefix: Option<Spanned<String>>,
    table_names: Option<Spanned<BTreeMap<String, String>>>,
    id_column: Option<Spanned<String>>,
    id_type: Option<Spanned<String>>,
    content_column: Option<Spanned<String>>,
    embedding_column: Option<Spanned<String>>,
    store_metadata: Option<bool>,
    metadata_json_column: Option<Spanned<String>>,
    metadata_json_type: Option<Spanned<String>>,
    metadata_columns: Option<Vec<Spanned<RawMetadataColumn>>>,
    profile: Option<Spanned<String>>,
    vector_size: Option<Spanned<i64>>,
    vector_index: Option<Spanned<String>>,
    distance: Option<Spanned<String>>,
    hnsw_m: Option<Spanned<i64>>,
    hnsw_ef_construction: Option<Spanned<i64>>,
    ivfflat_lists: Option<Spanned<i64>>,
    index_min_rows: Option<Spanned<i64>>,
    drop_deleted_collections: Option<bool>,
    delete_source_collections: Option<bool>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMetadataColumn {
    name: Spanned<String>,
    #[serde(rename = "type")]
    data_type: Spanned<String>,
    nullable: Option<bool>,
}

/// A validation error: the key, where its value is, and what to do.
#[derive(Debug)]
pub(crate) struct Invalid {
    pub key: String,
    pub span: Range<usize>,
    pub message: String,
}

fn invalid<T>(key: impl Into<String>, span: Range<usize>, message: impl Into<String>) -> Result<T, Invalid> {
    Err(Invalid {
        key: key.into(),
        span,
        message: message.into(),
    })
}

/// A PostgreSQL identifier (kept as written, quoted in SQL): non-empty, at most 63 bytes.
fn identifier(key: &str, value: &Spanned<String>) -> Result<String, Invalid> {
    let v = value.get_ref();
    if v.is_empty() {
        return invalid(key, value.span(), "is empty: give a column, table or schema name");
    }
    if v.len() > MAX_NAME_BYTES {
        return invalid(
            key,
            value.span(),
            format!(
                "{v:?} is {} bytes long; PostgreSQL names are at most {MAX_NAME_BYTES} bytes",
                v.len()
            ),
        );
    }
    if v.contains('\0') {
        return invalid(key, value.span(), "contains a NUL character");
    }
    Ok(v.clone())
}

fn name_or(key: &str, value: &Option<Spanned<String>>, default: &str) -> Result<String, Invalid> {
    match value {
        Some(v) => identifier(key, v),
        None => Ok(default.to_string()),
    }
}

fn positive(key: &str, value: &Option<Spanned<i64>>, default: u64, max: u64) -> Result<u64, Invalid> {
    match value {
        None => Ok(default),
        Some(v) => match u64::try_from(*v.get_ref()) {
            Ok(n) if (1..=max).contains(&n) => Ok(n),
            _ => invalid(
                key,
                v.span(),
                format!(
                    "{} is out of range: it must be between 1 and {max} (default {default})",
                    v.get_ref()
                ),
            ),
        },
    }
}

/// Validate the section; `section` is the whole table's span (for errors about several keys).
pub(crate) fn validate(raw: &RawLangchain, section: Range<usize>) -> Result<LangchainConfig, Invalid> {
    let source_schema = name_or("langchain.source_schema", &raw.source_schema, "public")?;
    let target_schema = name_or("langchain.target_schema", &raw.target_schema, "public")?;
    let collections = match &raw.collections {
        None => Selection::All,
        Some(v) => match v.get_ref() {
            toml::Value::String(s) if s == "all" => Selection::All,
            toml::Value::Array(items) => {
                let mut names = BTreeSet::new();
                for item in items {
                    let Some(name) = item.as_str() else {
                        return invalid(
                            "langchain.collections",
                            v.span(),
                            "must be \"all\" or a list of collection names (strings)",
                        );
                    };
                    if !names.insert(name.to_string()) {
                        return invalid(
                            "langchain.collections",
                            v.span(),
                            format!("collection {name:?} is listed twice"),
                        );
                    }
                }
                if names.is_empty() {
                    return invalid(
                        "langchain.collections",
                        v.span(),
                        "is an empty list: list at least one collection, or write \"all\"",
                    );
                }
                Selection::Names(names)
            }
            _ => {
                return invalid(
                    "langchain.collections",
                    v.span(),
                    "must be \"all\" or a list of collection names, e.g. [\"docs\", \"faq\"] (`pgvshift langchain list` prints them)",
                )
            }
        },
    };
    let table_prefix = match &raw.table_prefix {
        None => String::new(),
        Some(p) => {
            let v = p.get_ref();
            if !v
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
                || v.len() > 32
            {
                return invalid(
                    "langchain.table_prefix",
                    p.span(),
                    format!("{v:?}: a prefix may hold only a-z, 0-9 and _, at most 32 bytes (e.g. \"lc_\")"),
                );
            }
            v.clone()
        }
    };
    let mut table_names = BTreeMap::new();
    if let Some(t) = &raw.table_names {
        let mut seen: BTreeMap<String, &str> = BTreeMap::new();
        for (collection, table) in t.get_ref() {
            let key = format!("langchain.table_names.{collection:?}");
            let table = identifier(&key, &Spanned::new(t.span(), table.clone()))?;
            if let Some(other) = seen.insert(table.clone(), collection) {
                return invalid(
                    key,
                    t.span(),
                    format!("collections {other:?} and {collection:?} are both mapped to table {table:?}: each collection needs its own table"),
                );
            }
            table_names.insert(collection.clone(), table);
        }
    }
    let id_column = name_or("langchain.id_column", &raw.id_column, DEFAULT_ID_COLUMN)?;
    let id_type = match &raw.id_type {
        None => IdType::Uuid,
        Some(v) => match IdType::parse(v.get_ref()) {
            Some(t) => t,
            None => {
                return invalid(
                    "langchain.id_type",
                    v.span(),
                    format!(
                        "unknown id type {:?}: use \"uuid\" (LangChain's default; every id must then be a UUID), \"text\" or \"varchar(n)\"",
                        v.get_ref()
                    ),
                )
            }
        },
    };
    let content_column = name_or("langchain.content_column", &raw.content_column, DEFAULT_CONTENT_COLUMN)?;
    let embedding_column = name_or(
        "langchain.embedding_column",
        &raw.embedding_column,
        DEFAULT_EMBEDDING_COLUMN,
    )?;
    let store_metadata = raw.store_metadata.unwrap_or(true);
    let jsonb = match &raw.metadata_json_type {
        None => false,
        Some(v) => match v.get_ref().as_str() {
            "json" => false,
            "jsonb" => true,
            other => {
                return invalid(
                    "langchain.metadata_json_type",
                    v.span(),
                    format!("unknown type {other:?}: use \"json\" (LangChain's) or \"jsonb\""),
                )
            }
        },
    };
    let metadata_json = if store_metadata {
        Some(JsonColumn {
            name: name_or(
                "langchain.metadata_json_column",
                &raw.metadata_json_column,
                DEFAULT_METADATA_JSON_COLUMN,
            )?,
            jsonb,
        })
    } else {
        if let Some(v) = &raw.metadata_json_column {
            return invalid(
                "langchain.metadata_json_column",
                v.span(),
                "is set but store_metadata = false (no JSON column): remove one of them",
            );
        }
        None
    };
    let mut metadata_columns = Vec::new();
    for (i, c) in raw.metadata_columns.iter().flatten().enumerate() {
        let c = c.get_ref();
        let key = format!("langchain.metadata_columns[{i}]");
        let name = identifier(&format!("{key}.name"), &c.name)?;
        let Some(data_type) = MetaType::parse(c.data_type.get_ref()) else {
            return invalid(
                format!("{key}.type"),
                c.data_type.span(),
                format!(
                    "type {:?} of metadata column {name:?} is not supported: use one of {METADATA_TYPES}, or leave the key in the JSON column",
                    c.data_type.get_ref()
                ),
            );
        };
        metadata_columns.push(MetadataColumn {
            name,
            data_type,
            nullable: c.nullable.unwrap_or(true),
        });
    }
    // Every column of the collection tables needs its own name.
    let mut columns: Vec<(&str, String)> = vec![
        ("id_column", id_column.clone()),
        ("content_column", content_column.clone()),
        ("embedding_column", embedding_column.clone()),
    ];
    if let Some(j) = &metadata_json {
        columns.push(("metadata_json_column", j.name.clone()));
    }
    for m in &metadata_columns {
        columns.push(("metadata_columns", m.name.clone()));
    }
    let mut seen: BTreeMap<&str, &str> = BTreeMap::new();
    for (what, name) in &columns {
        if let Some(other) = seen.insert(name.as_str(), what) {
            return invalid(
                "langchain",
                section,
                format!("{other} and {what} both name column {name:?}: the columns of a collection table must have distinct names"),
            );
        }
    }
    let profile = match &raw.profile {
        None => Profile::Pgvector,
        Some(v) => match Profile::parse(v.get_ref()) {
            Some(p @ (Profile::Pgvector | Profile::Halfvec | Profile::Alloydb | Profile::Vectorchord)) => p,
            _ => {
                return invalid(
                    "langchain.profile",
                    v.span(),
                    format!(
                        "profile {:?} cannot hold a LangChain embedding column (PGVectorStore needs a pgvector type): use \"pgvector\" (default), \"halfvec\", \"alloydb\" or \"vectorchord\"",
                        v.get_ref()
                    ),
                )
            }
        },
    };
    let vector_size = match &raw.vector_size {
        None => None,
        Some(_) => Some(positive("langchain.vector_size", &raw.vector_size, 0, 16_000)? as u32),
    };
    let method = match raw.vector_index.as_ref().map(|v| (v.get_ref().as_str(), v.span())) {
        None | Some(("hnsw", _)) => IndexMethod::Hnsw {
            m: positive("langchain.hnsw_m", &raw.hnsw_m, 16, 100)? as u32,
            ef_construction: positive("langchain.hnsw_ef_construction", &raw.hnsw_ef_construction, 64, 1000)? as u32,
        },
        Some(("ivfflat", _)) => IndexMethod::Ivfflat {
            lists: positive("langchain.ivfflat_lists", &raw.ivfflat_lists, 100, 32_768)? as u32,
        },
        Some(("none", _)) => IndexMethod::None,
        Some((other, span)) => {
            return invalid(
                "langchain.vector_index",
                span,
                format!("unknown index {other:?}: use \"hnsw\" (default), \"ivfflat\" or \"none\""),
            )
        }
    };
    let misplaced = match method {
        IndexMethod::Hnsw { .. } => raw.ivfflat_lists.as_ref().map(|v| ("ivfflat_lists", v.span())),
        IndexMethod::Ivfflat { .. } => raw
            .hnsw_m
            .as_ref()
            .or(raw.hnsw_ef_construction.as_ref())
            .map(|v| ("hnsw_m / hnsw_ef_construction", v.span())),
        IndexMethod::None => None,
    };
    if let Some((key, span)) = misplaced {
        return invalid(
            format!("langchain.{key}"),
            span,
            "does not apply to this vector_index: remove it",
        );
    }
    let distance = match &raw.distance {
        None => Distance::Cosine,
        Some(v) => match v.get_ref().as_str() {
            "cosine" => Distance::Cosine,
            "l2" | "euclidean" => Distance::L2,
            "inner_product" | "ip" => Distance::InnerProduct,
            other => {
                return invalid(
                    "langchain.distance",
                    v.span(),
                    format!(
                        "unknown distance {other:?}: use \"cosine\" (LangChain's default), \"l2\" or \"inner_product\""
                    ),
                )
            }
        },
    };
    let index_min_rows = match &raw.index_min_rows {
        None => DEFAULT_INDEX_MIN_ROWS,
        Some(v) => match u64::try_from(*v.get_ref()) {
            Ok(n) => n,
            Err(_) => {
                return invalid(
                    "langchain.index_min_rows",
                    v.span(),
                    "must be 0 or more (0 builds every table's index right away)",
                )
            }
        },
    };
    Ok(LangchainConfig {
        source_schema,
        collections,
        target_schema,
        table_prefix,
        table_names,
        id_column,
        id_type,
        content_column,
        embedding_column,
        metadata_json,
        metadata_columns,
        profile,
        vector_size,
        index: VectorIndex { method, distance },
        index_min_rows,
        drop_deleted_collections: raw.drop_deleted_collections.unwrap_or(false),
        delete_source_collections: raw.delete_source_collections.unwrap_or(false),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<LangchainConfig, Invalid> {
        let raw: RawLangchain = toml::from_str(text).unwrap_or_else(|e| panic!("{e}"));
        validate(&raw, 0..0)
    }

    #[test]
    fn defaults_are_langchains() {
        let c = parse("").unwrap();
        assert_eq!(c.collections, Selection::All);
        assert_eq!(c.id_column, "langchain_id");
        assert_eq!(c.id_type, IdType::Uuid);
        assert_eq!(c.content_column, "content");
        assert_eq!(c.embedding_column, "embedding");
        assert_eq!(
            c.metadata_json,
            Some(JsonColumn {
                name: "langchain_metadata".into(),
                jsonb: false
            })
        );
        assert_eq!(
            c.index,
            VectorIndex {
                method: IndexMethod::Hnsw {
                    m: 16,
                    ef_construction: 64
                },
                distance: Distance::Cosine
            }
        );
        assert_eq!(c.index_min_rows, DEFAULT_INDEX_MIN_ROWS);
        assert!(!c.drop_deleted_collections && !c.delete_source_collections);
    }

    #[test]
    fn metadata_types_parse_like_sql() {
        let cases = [
            ("TEXT", MetaType::Text),
            ("VARCHAR(255)", MetaType::Varchar(Some(255))),
            ("character  varying ( 20 )", MetaType::Varchar(Some(20))),
            ("varchar", MetaType::Varchar(None)),
            ("char(3)", MetaType::Char(3)),
            ("INT", MetaType::Int4),
            ("int8", MetaType::Int8),
            ("Double Precision", MetaType::Float8),
            ("numeric(10, 2)", MetaType::Numeric(Some((10, 2)))),
            ("DECIMAL", MetaType::Numeric(None)),
            ("bool", MetaType::Bool),
            ("timestamp with time zone", MetaType::Timestamptz),
            ("TIMESTAMP", MetaType::Timestamp),
            ("text []", MetaType::TextArray),
            ("JSONB", MetaType::Jsonb),
        ];
        for (text, want) in cases {
            assert_eq!(MetaType::parse(text), Some(want), "{text}");
            // format_type's spelling reads back as the same type.
            assert_eq!(MetaType::parse(&want.sql()), Some(want), "{text}");
        }
        for bad in [
            "integer(3)",
            "varchar(0)",
            "numeric(2,5)",
            "geometry",
            "int[]",
            "text(",
            "vector(3)",
        ] {
            assert_eq!(MetaType::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn full_section() {
        let c = parse(
            r#"
collections = ["docs", "faq"]
target_schema = "rag"
table_prefix = "lc_"
table_names = { "My Docs" = "my_docs" }
id_column = "id"
id_type = "text"
metadata_json_column = "meta"
metadata_json_type = "jsonb"
metadata_columns = [{ name = "page", type = "INTEGER" }, { name = "source", type = "text", nullable = false }]
profile = "halfvec"
vector_size = 1536
vector_index = "ivfflat"
ivfflat_lists = 50
distance = "l2"
index_min_rows = 0
drop_deleted_collections = true
"#,
        )
        .unwrap();
        assert_eq!(
            c.collections,
            Selection::Names(["docs".to_string(), "faq".to_string()].into())
        );
        assert!(c.collections.includes(Some("faq")) && !c.collections.includes(Some("x")));
        assert!(!c.collections.includes(None));
        assert_eq!(c.table_names["My Docs"], "my_docs");
        assert_eq!(c.id_type, IdType::Text);
        assert_eq!(c.metadata_json.as_ref().unwrap().name, "meta");
        assert!(c.metadata_json.as_ref().unwrap().jsonb);
        assert_eq!(c.metadata_columns.len(), 2);
        assert!(c.metadata_columns[0].nullable && !c.metadata_columns[1].nullable);
        assert_eq!(c.profile, Profile::Halfvec);
        assert_eq!(c.vector_size, Some(1536));
        assert_eq!(c.index.method, IndexMethod::Ivfflat { lists: 50 });
        assert_eq!(c.index.distance, Distance::L2);
        assert_eq!(c.index_min_rows, 0);
        assert!(c.drop_deleted_collections);
    }

    #[test]
    fn mistakes_name_the_key_and_the_fix() {
        let err = |text: &str| parse(text).expect_err(text);
        let e = err("metadata_columns = [{ name = \"geo\", type = \"geometry\" }]");
        assert_eq!(e.key, "langchain.metadata_columns[0].type");
        assert!(e.message.contains("not supported") && e.message.contains("leave the key in the JSON column"));
        let e = err("metadata_columns = [{ name = \"content\", type = \"text\" }]");
        assert!(
            e.message
                .contains("content_column and metadata_columns both name column \"content\""),
            "{}",
            e.message
        );
        let e = err("id_type = \"integer\"");
        assert!(e.message.contains("\"text\""), "{}", e.message);
        let e = err("profile = \"lantern\"");
        assert!(e.message.contains("PGVectorStore needs a pgvector type"));
        let e = err("collections = []");
        assert!(e.message.contains("empty list"));
        let e = err("collections = \"docs\"");
        assert!(e.message.contains("langchain list"));
        let e = err("table_names = { a = \"t\", b = \"t\" }");
        assert!(e.message.contains("both mapped to table"), "{}", e.message);
        let e = err("store_metadata = false\nmetadata_json_column = \"m\"");
        assert_eq!(e.key, "langchain.metadata_json_column");
        let e = err("vector_index = \"hnsw\"\nivfflat_lists = 3");
        assert_eq!(e.key, "langchain.ivfflat_lists");
        let e = err("table_prefix = \"Bad-\"");
        assert!(e.message.contains("a-z, 0-9 and _"));
        assert!(parse("store_metadata = false").unwrap().metadata_json.is_none());
    }
}
