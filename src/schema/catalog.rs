//! Source catalog: what a table looks like (columns with exact types and typmods, primary key,
//! replica identity, indexes, size estimates). Read-only; queries live in `src/sql/*.sql`.
//!
//! Types are identified by *name*: pgvector's `vector`, `halfvec`, `sparsevec` are extension
//! types whose OIDs differ per database.

use tokio_postgres::Client;

use crate::sql::QualifiedName;

/// One column of a source table.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Column {
    pub name: String,
    pub attnum: i16,
    /// The type as `format_type` prints it, typmod included: `vector(768)`, `character varying(20)`.
    pub type_sql: String,
    /// `pg_type.typname` (`vector`, `_int4` for int[]).
    pub type_name: String,
    pub type_schema: String,
    pub type_oid: u32,
    pub type_modifier: i32,
    pub not_null: bool,
    /// `pg_type.typtype`: b base, c composite, d domain, e enum, r range, m multirange.
    pub type_kind: char,
    /// For arrays: the element type's typtype ('\0' when not an array).
    pub elem_kind: char,
    /// For arrays: whether the element type is a user/extension type (OID >= 16384).
    pub elem_is_user_type: bool,
    /// `STORED` generated column: its expression. Such columns are neither copied nor streamed
    /// (pgoutput does not send them); the target computes them itself.
    pub generation_expr: Option<String>,
}

impl Column {
    /// Why this column's values cannot pass between two databases as binary bytes, if so.
    /// Binary array and record encodings embed type OIDs, which are per database for
    /// user-defined and extension types (e.g. `mood[]`, `vector[]`, composite types).
    pub fn binary_portability_problem(&self) -> Option<String> {
        if self.type_kind == 'c' {
            return Some(format!(
                "column {} has composite type {}: its binary form embeds per-database type OIDs; not supported yet",
                crate::sql::display_ident(&self.name),
                self.type_sql
            ));
        }
        if self.elem_kind != '\0' && self.elem_is_user_type {
            return Some(format!(
                "column {} is an array of a user-defined or extension type ({}): its binary form embeds the element type's OID, which differs between databases; not supported yet (store it as text[] or a non-array column)",
                crate::sql::display_ident(&self.name),
                self.type_sql
            ));
        }
        None
    }
}

/// One index of a source table.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Index {
    pub name: String,
    pub is_primary: bool,
    pub is_unique: bool,
    pub is_replica_identity: bool,
    pub is_valid: bool,
    /// `pg_get_indexdef` output, e.g.
    /// `CREATE INDEX items_embedding_idx ON public.items USING hnsw (embedding vector_cosine_ops) WITH (m='16', ef_construction='64')`.
    pub definition: String,
    pub key_columns: Vec<String>,
}

/// `pg_class.relreplident`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum ReplicaIdentity {
    Default,
    Nothing,
    Full,
    Index,
}

/// A source table as the migration needs to know it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Table {
    pub name: QualifiedName,
    pub relid: u32,
    /// How `pg_get_indexdef` prints this table's name (`public.items`, `"My S"."T"`).
    pub printed_name: String,
    pub replica_identity: ReplicaIdentity,
    pub estimated_rows: i64,
    pub total_bytes: i64,
    /// Heap + TOAST, without indexes: about what a COPY of the table reads (progress ETA).
    pub table_bytes: i64,
    pub columns: Vec<Column>,
    pub primary_key: Vec<String>,
    pub indexes: Vec<Index>,
}

impl Table {
    /// Secondary indexes to build on the target after the copy (the primary key comes with the
    /// table's DDL).
    pub fn secondary_indexes(&self) -> impl Iterator<Item = &Index> {
        self.indexes.iter().filter(|i| !i.is_primary && i.is_valid)
    }

    /// Column types that cannot be moved (the replica identity is judged by `check`, which
    /// knows the table's `replica_identity` setting).
    pub fn blocking_problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        for column in &self.columns {
            if let Some(p) = column.binary_portability_problem() {
                problems.push(format!("table {}: {p}", self.name));
            }
        }
        problems
    }
}

#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    #[error("table {0} does not exist on the source")]
    NotFound(QualifiedName),
    #[error("{name} is not a plain table (relkind {relkind:?}); list the table itself (partitioned tables: list each partition)")]
    NotATable { name: QualifiedName, relkind: String },
    #[error("reading the catalog of {table}: {source}")]
    Query {
        table: QualifiedName,
        #[source]
        source: tokio_postgres::Error,
    },
}

/// Make `format_type` print extension types unqualified on this session (see table_columns.sql).
pub async fn prepare_session(client: &Client) -> Result<(), tokio_postgres::Error> {
    client
        .batch_execute(
            "SELECT set_config('search_path', \
               (SELECT string_agg(DISTINCT quote_ident(n.nspname), ',') \
                  FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace), false)",
        )
        .await
}

/// Describe one table, or `NotFound`.
pub async fn describe_table(client: &Client, name: &QualifiedName) -> Result<Table, CatalogError> {
    let q = |source| CatalogError::Query {
        table: name.clone(),
        source,
    };
    let info = client
        .query_opt(include_str!("../sql/table_info.sql"), &[&name.schema, &name.name])
        .await
        .map_err(q)?
        .ok_or_else(|| CatalogError::NotFound(name.clone()))?;
    let relkind: String = info.get("relkind");
    if relkind != "r" {
        return Err(CatalogError::NotATable {
            name: name.clone(),
            relkind,
        });
    }
    let relid: u32 = info.get("relid");
    let replica_identity = match info.get::<_, String>("replica_identity").as_str() {
        "n" => ReplicaIdentity::Nothing,
        "f" => ReplicaIdentity::Full,
        "i" => ReplicaIdentity::Index,
        _ => ReplicaIdentity::Default,
    };
    let columns = client
        .query(include_str!("../sql/table_columns.sql"), &[&name.schema, &name.name])
        .await
        .map_err(q)?
        .iter()
        .map(|r| {
            let generated: String = r.get("generated");
            Column {
                name: r.get("name"),
                attnum: r.get("attnum"),
                type_sql: r.get("type_sql"),
                type_name: r.get("type_name"),
                type_schema: r.get("type_schema"),
                type_oid: r.get("type_oid"),
                type_modifier: r.get("type_modifier"),
                not_null: r.get("not_null"),
                type_kind: first_char(&r.get::<_, String>("type_kind")),
                elem_kind: first_char(&r.get::<_, String>("elem_kind")),
                elem_is_user_type: r.get("elem_is_user_type"),
                generation_expr: if generated.is_empty() {
                    None
                } else {
                    r.get("generation_expr")
                },
            }
        })
        .collect();
    let indexes: Vec<Index> = client
        .query(include_str!("../sql/table_indexes.sql"), &[&relid])
        .await
        .map_err(q)?
        .iter()
        .map(|r| Index {
            name: r.get("name"),
            is_primary: r.get("is_primary"),
            is_unique: r.get("is_unique"),
            is_replica_identity: r.get("is_replica_identity"),
            is_valid: r.get("is_valid"),
            definition: r.get("definition"),
            key_columns: r.get("key_columns"),
        })
        .collect();
    let primary_key = indexes
        .iter()
        .find(|i| i.is_primary)
        .map(|i| i.key_columns.clone())
        .unwrap_or_default();
    Ok(Table {
        name: name.clone(),
        relid,
        printed_name: info.get("printed_name"),
        replica_identity,
        estimated_rows: info.get("estimated_rows"),
        total_bytes: info.get("total_bytes"),
        table_bytes: info.get("table_bytes"),
        columns,
        primary_key,
        indexes,
    })
}

fn first_char(s: &str) -> char {
    s.chars().next().unwrap_or('\0')
}

/// Catalog values for unit tests of the pure modules (mapping, schema).
#[cfg(test)]
pub(crate) mod fixtures {
    use super::*;

    /// A column of type `type_name`, with `(typmod)` in its SQL form when typmod > 0.
    pub fn column(name: &str, type_name: &str, typmod: i32) -> Column {
        Column {
            name: name.into(),
            attnum: 1,
            type_sql: if typmod > 0 {
                format!("{type_name}({typmod})")
            } else {
                type_name.into()
            },
            type_name: type_name.into(),
            type_schema: "public".into(),
            type_oid: 0,
            type_modifier: typmod,
            not_null: false,
            type_kind: 'b',
            elem_kind: '\0',
            elem_is_user_type: false,
            generation_expr: None,
        }
    }

    /// `public.items` with these columns and primary key `id`.
    pub fn table(columns: Vec<Column>) -> Table {
        Table {
            name: QualifiedName::new("public", "items"),
            relid: 1,
            printed_name: "public.items".into(),
            replica_identity: ReplicaIdentity::Default,
            estimated_rows: 0,
            total_bytes: 0,
            table_bytes: 0,
            columns,
            primary_key: vec!["id".into()],
            indexes: vec![],
        }
    }
}
