//! PURE: the collection tables' columns and DDL, as `PGEngine.init_vectorstore_table` /
//! `AlloyDBEngine.init_vectorstore_table` create them, and their vector index as
//! `aapply_vector_index` names it:
//!
//! ```sql
//! CREATE TABLE "public"."docs" (
//!     "langchain_id" uuid PRIMARY KEY,
//!     "content" text NOT NULL,
//!     "embedding" vector(1536) NOT NULL,
//!     "page" integer,                       -- metadata_columns, in order
//!     "langchain_metadata" json             -- unless store_metadata = false
//! );
//! CREATE INDEX "docslangchainvectorindex" ON "public"."docs"
//!     USING hnsw ("embedding" vector_cosine_ops) WITH (m = 16, ef_construction = 64);
//! ```

use std::collections::HashSet;

use super::config::{IndexMethod, LangchainConfig};
use crate::config::profile::Profile;
use crate::config::{TableConfig, MAX_NAME_BYTES};
use crate::schema::mapping::{ColumnMap, TableMap, VectorKind};
use crate::source::pgoutput::{Relation, RelationColumn, ReplicaIdentity};
use crate::sql::{quote_ident, QualifiedName};
use crate::translate::index::{index_dim_limit, ColumnKind};
use crate::translate::Conversion;

/// One column of a collection table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Column {
    pub name: String,
    /// As `format_type` prints it.
    pub type_sql: String,
    pub not_null: bool,
}

/// The embedding column's type: `vector(n)`, or `halfvec(n)` under profile halfvec.
pub fn embedding_type(config: &LangchainConfig, dims: u32) -> String {
    match config.profile {
        Profile::Halfvec => format!("halfvec({dims})"),
        _ => format!("vector({dims})"),
    }
}

/// How source embeddings become target ones.
pub fn embedding_conversion(config: &LangchainConfig) -> Conversion {
    match config.profile {
        Profile::Halfvec => Conversion::VectorToHalfvec,
        _ => Conversion::Passthrough,
    }
}

/// The columns, in the order rows are written (id, content, embedding, typed metadata, JSON).
pub fn columns(config: &LangchainConfig, dims: u32) -> Vec<Column> {
    let mut out = vec![
        Column {
            name: config.id_column.clone(),
            type_sql: config.id_type.sql(),
            not_null: true,
        },
        Column {
            name: config.content_column.clone(),
            type_sql: "text".into(),
            not_null: true,
        },
        Column {
            name: config.embedding_column.clone(),
            type_sql: embedding_type(config, dims),
            not_null: true,
        },
    ];
    for m in &config.metadata_columns {
        out.push(Column {
            name: m.name.clone(),
            type_sql: m.data_type.sql(),
            not_null: !m.nullable,
        });
    }
    if let Some(j) = &config.metadata_json {
        out.push(Column {
            name: j.name.clone(),
            type_sql: if j.jsonb { "jsonb" } else { "json" }.into(),
            not_null: false,
        });
    }
    out
}

/// `CREATE TABLE` for one collection (no IF NOT EXISTS: a table of that name that pgvshift did
/// not plan for is an error, not silently reused).
pub fn create_table_sql(config: &LangchainConfig, table: &QualifiedName, dims: u32) -> String {
    let items: Vec<String> = columns(config, dims)
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let constraint = if i == 0 {
                " PRIMARY KEY"
            } else if c.not_null {
                " NOT NULL"
            } else {
                ""
            };
            format!("{} {}{constraint}", quote_ident(&c.name), c.type_sql)
        })
        .collect();
    format!("CREATE TABLE {} (\n    {}\n)", table.quoted(), items.join(",\n    "))
}

/// `<table>langchainvectorindex`, cut to 63 bytes as PostgreSQL would.
pub fn index_name(table: &str) -> String {
    let mut name = format!("{table}langchainvectorindex");
    let mut end = name.len().min(MAX_NAME_BYTES);
    while !name.is_char_boundary(end) {
        end -= 1;
    }
    name.truncate(end);
    name
}

/// Why a table gets no vector index (none configured, or too many dimensions for it).
pub fn index_skip_reason(config: &LangchainConfig, dims: u32) -> Option<String> {
    if config.index.method == IndexMethod::None {
        return Some("vector_index = \"none\"".into());
    }
    let kind = if config.profile == Profile::Halfvec {
        ColumnKind::Halfvec
    } else {
        ColumnKind::Vector
    };
    let limit = index_dim_limit(Profile::Pgvector, kind)?;
    (dims > limit).then(|| {
        format!(
            "the embedding has {dims} dimensions, more than hnsw/ivfflat index as {} ({limit}){}",
            embedding_type(config, dims),
            if kind == ColumnKind::Vector && dims <= 4000 {
                ": set profile = \"halfvec\" in [langchain] to index it"
            } else {
                ""
            }
        )
    })
}

/// `CREATE INDEX [CONCURRENTLY] IF NOT EXISTS ...` for a collection table, or None (see
/// [`index_skip_reason`]).
pub fn create_index_sql(
    config: &LangchainConfig,
    table: &QualifiedName,
    dims: u32,
    concurrently: bool,
) -> Option<String> {
    if index_skip_reason(config, dims).is_some() {
        return None;
    }
    let base = if config.profile == Profile::Halfvec {
        "halfvec"
    } else {
        "vector"
    };
    let opclass = format!("{base}_{}", config.index.distance.ops_suffix());
    let (method, with) = match config.index.method {
        IndexMethod::Hnsw { m, ef_construction } => ("hnsw", format!("m = {m}, ef_construction = {ef_construction}")),
        IndexMethod::Ivfflat { lists } => ("ivfflat", format!("lists = {lists}")),
        IndexMethod::None => return None,
    };
    Some(format!(
        "CREATE INDEX {}IF NOT EXISTS {} ON {} USING {method} ({} {opclass}) WITH ({with})",
        if concurrently { "CONCURRENTLY " } else { "" },
        quote_ident(&index_name(&table.name)),
        table.quoted(),
        quote_ident(&config.embedding_column)
    ))
}

/// The schema of the row name a virtual relation carries: never a real schema name.
pub const VIRTUAL_SCHEMA: &str = " pgvshift langchain ";

/// A collection table as the applier sees it: a relation of its own (a virtual relid) whose
/// tuples the router already shaped, so the applier's inserts (COPY runs), updates (staged
/// runs) and statements apply unchanged. The key is the id column.
pub fn virtual_table(
    config: &LangchainConfig,
    source: &QualifiedName,
    table: &QualifiedName,
    dims: u32,
    relid: u32,
    key: &str,
) -> (crate::apply::TargetTable, Relation) {
    let cols = columns(config, dims);
    let name = QualifiedName::new(VIRTUAL_SCHEMA, key);
    let maps: Vec<ColumnMap> = cols
        .iter()
        .map(|c| ColumnMap {
            source: c.name.clone(),
            target: c.name.clone(),
            source_type: c.type_sql.clone(),
            target_type: c.type_sql.clone(),
            conversion: Conversion::Passthrough,
            how: "LangChain collection row".into(),
            kind: VectorKind::None,
            dims: None,
            profile: config.profile,
            not_null: c.not_null,
            generation_expr: None,
        })
        .collect();
    let map = TableMap {
        source: source.clone(),
        target: table.clone(),
        profile: config.profile,
        columns: maps,
        primary_key: vec![config.id_column.clone()],
        excluded: Vec::new(),
        problems: Vec::new(),
        config: TableConfig::new(name.clone(), table.clone()),
    };
    let relation = Relation {
        relid,
        namespace: name.schema.clone(),
        name: name.name.clone(),
        replica_identity: ReplicaIdentity::Default,
        columns: cols
            .iter()
            .enumerate()
            .map(|(i, c)| RelationColumn {
                is_key: i == 0,
                name: c.name.clone(),
                type_oid: 0,
                type_modifier: -1,
            })
            .collect(),
    };
    let target_columns: HashSet<String> = cols.into_iter().map(|c| c.name).collect();
    (crate::apply::TargetTable { target_columns, map }, relation)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(text: &str) -> LangchainConfig {
        crate::langchain::config::validate(&toml::from_str(text).unwrap(), 0..0).unwrap()
    }

    #[test]
    fn ddl_matches_langchains_layout() {
        let c = config("metadata_columns = [{ name = \"page\", type = \"INTEGER\" }, { name = \"source\", type = \"text\", nullable = false }]");
        let t = QualifiedName::new("public", "docs");
        assert_eq!(
            create_table_sql(&c, &t, 1536),
            "CREATE TABLE \"public\".\"docs\" (\n    \"langchain_id\" uuid PRIMARY KEY,\n    \"content\" text NOT NULL,\n    \"embedding\" vector(1536) NOT NULL,\n    \"page\" integer,\n    \"source\" text NOT NULL,\n    \"langchain_metadata\" json\n)"
        );
        assert_eq!(
            create_index_sql(&c, &t, 1536, false).unwrap(),
            "CREATE INDEX IF NOT EXISTS \"docslangchainvectorindex\" ON \"public\".\"docs\" USING hnsw (\"embedding\" vector_cosine_ops) WITH (m = 16, ef_construction = 64)"
        );
        let h = config("profile = \"halfvec\"\nstore_metadata = false\nid_type = \"text\"\nvector_index = \"ivfflat\"\ndistance = \"inner_product\"");
        assert_eq!(
            create_table_sql(&h, &t, 3072),
            "CREATE TABLE \"public\".\"docs\" (\n    \"langchain_id\" text PRIMARY KEY,\n    \"content\" text NOT NULL,\n    \"embedding\" halfvec(3072) NOT NULL\n)"
        );
        assert_eq!(
            create_index_sql(&h, &t, 3072, true).unwrap(),
            "CREATE INDEX CONCURRENTLY IF NOT EXISTS \"docslangchainvectorindex\" ON \"public\".\"docs\" USING ivfflat (\"embedding\" halfvec_ip_ops) WITH (lists = 100)"
        );
        // vector(3072) cannot be indexed; the reason says what to do.
        assert!(create_index_sql(&c, &t, 3072, false).is_none());
        assert!(index_skip_reason(&c, 3072).unwrap().contains("profile = \"halfvec\""));
        assert_eq!(index_name(&"t".repeat(60)).len(), 63);
    }

    #[test]
    fn virtual_relation_keys_on_the_id() {
        let c = config("metadata_columns = [{ name = \"page\", type = \"int\" }]");
        let (t, r) = virtual_table(
            &c,
            &QualifiedName::new("public", "langchain_pg_embedding"),
            &QualifiedName::new("s", "docs"),
            3,
            7,
            "k",
        );
        assert_eq!(r.columns.iter().filter(|c| c.is_key).count(), 1);
        assert_eq!(t.map.primary_key, ["langchain_id"]);
        assert_eq!(r.columns.len(), 5);
        assert!(t.target_columns.contains("langchain_metadata"));
    }
}
