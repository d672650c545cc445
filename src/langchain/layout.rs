//! PURE: which LangChain layout the source has, read from the catalog of its two tables.
//!
//! | | `langchain_postgres.PGVector` | legacy `langchain_community` PGVector |
//! |---|---|---|
//! | `langchain_pg_collection` | `uuid` UUID PK, `name` VARCHAR UNIQUE NOT NULL, `cmetadata` JSON | `uuid` UUID PK, `name` VARCHAR (nullable), `cmetadata` JSON |
//! | `langchain_pg_embedding` key | `id` VARCHAR PK (the user's id) | `uuid` UUID PK; the user's id in `custom_id` VARCHAR |
//! | other columns | `collection_id` UUID FK ON DELETE CASCADE, `embedding` vector[(n)], `document` VARCHAR, `cmetadata` JSONB | the same, `cmetadata` JSON or JSONB |
//!
//! The community layout is recognised by `custom_id`, or by `uuid` without `id`.

use crate::schema::catalog::{Column, Table};
use crate::sql::display_ident;

pub const COLLECTION_TABLE: &str = "langchain_pg_collection";
pub const EMBEDDING_TABLE: &str = "langchain_pg_embedding";

/// Which LangChain wrote the tables.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Layout {
    /// `langchain_postgres.PGVector`: the user's id is the primary key `id`.
    LangchainPostgres,
    /// `langchain_community.vectorstores.PGVector`: primary key `uuid`, user id in `custom_id`.
    LangchainCommunity,
}

impl Layout {
    pub fn name(self) -> &'static str {
        match self {
            Layout::LangchainPostgres => "langchain_postgres",
            Layout::LangchainCommunity => "langchain_community",
        }
    }

    pub fn parse(s: &str) -> Option<Layout> {
        [Layout::LangchainPostgres, Layout::LangchainCommunity]
            .into_iter()
            .find(|l| l.name() == s)
    }
}

impl std::fmt::Display for Layout {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// What the router and the copier need to know about the source tables.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceLayout {
    pub layout: Layout,
    /// The embedding table's primary key column (`id`, or `uuid` in the community layout):
    /// what deletes carry, and the key of the routing table.
    pub key_column: String,
    /// The key column is a UUID (community layout).
    pub key_is_uuid: bool,
    /// The column holding the user's id when it is not the key (`custom_id`).
    pub user_id_column: Option<String>,
    /// `cmetadata` of the embedding table is jsonb (else json).
    pub cmetadata_jsonb: bool,
    /// Dimensions from the embedding column's typmod (`vector(1536)`), if it has one.
    pub dims: Option<u32>,
    /// `name` of the collection table may be NULL (community layout).
    pub names_nullable: bool,
}

fn column<'a>(table: &'a Table, name: &str) -> Option<&'a Column> {
    table.columns.iter().find(|c| c.name == name)
}

/// The column `name` of `table` if its type passes `ok`, else a problem saying what was expected.
fn expect(
    problems: &mut Vec<String>,
    table: &Table,
    name: &str,
    ok: fn(&Column) -> bool,
    what: &str,
) -> Option<Column> {
    match column(table, name) {
        Some(c) if ok(c) => Some(c.clone()),
        Some(c) => {
            problems.push(format!(
                "{}.{} is {}, expected {what}",
                table.name,
                display_ident(name),
                c.type_sql
            ));
            None
        }
        None => {
            problems.push(format!("{} has no column {} ({what})", table.name, display_ident(name)));
            None
        }
    }
}

fn is_text(c: &Column) -> bool {
    matches!(c.type_name.as_str(), "varchar" | "text" | "bpchar")
}

fn is_json(c: &Column) -> bool {
    matches!(c.type_name.as_str(), "json" | "jsonb")
}

/// Recognise the layout, or list every problem (each naming the column and what was expected).
pub fn detect(collection: &Table, embedding: &Table) -> Result<SourceLayout, Vec<String>> {
    let mut problems = Vec::new();
    let p = &mut problems;
    expect(p, collection, "uuid", |c| c.type_name == "uuid", "uuid");
    let name = expect(p, collection, "name", is_text, "varchar or text");
    expect(p, embedding, "collection_id", |c| c.type_name == "uuid", "uuid");
    let emb = expect(
        p,
        embedding,
        "embedding",
        |c| c.type_name == "vector",
        "vector or vector(n) (pgvector)",
    );
    expect(p, embedding, "document", is_text, "varchar or text");
    let cmetadata = expect(p, embedding, "cmetadata", is_json, "json or jsonb");
    let has = |n: &str| column(embedding, n).is_some();
    let layout = if has("custom_id") || (has("uuid") && !has("id")) {
        Layout::LangchainCommunity
    } else if has("id") {
        Layout::LangchainPostgres
    } else {
        p.push(format!(
            "{} has neither an id column (langchain_postgres) nor uuid/custom_id (langchain_community): not a LangChain PGVector layout",
            embedding.name
        ));
        Layout::LangchainPostgres
    };
    let (key_column, key_is_uuid, user_id_column) = match layout {
        Layout::LangchainPostgres => {
            expect(p, embedding, "id", is_text, "varchar or text");
            ("id".to_string(), false, None)
        }
        Layout::LangchainCommunity => {
            expect(p, embedding, "uuid", |c| c.type_name == "uuid", "uuid");
            let user = if has("custom_id") {
                expect(p, embedding, "custom_id", is_text, "varchar or text");
                Some("custom_id".to_string())
            } else {
                None
            };
            ("uuid".to_string(), true, user)
        }
    };
    if embedding.primary_key != [key_column.clone()] && !embedding.columns.is_empty() {
        problems.push(format!(
            "{}'s primary key is ({}), expected ({}) as LangChain creates it: deletes are routed by that key",
            embedding.name,
            embedding.primary_key.join(", "),
            key_column
        ));
    }
    if collection.primary_key != ["uuid".to_string()] && !collection.columns.is_empty() {
        problems.push(format!(
            "{}'s primary key is ({}), expected (uuid) as LangChain creates it",
            collection.name,
            collection.primary_key.join(", ")
        ));
    }
    if !problems.is_empty() {
        return Err(problems);
    }
    Ok(SourceLayout {
        layout,
        key_column,
        key_is_uuid,
        user_id_column,
        cmetadata_jsonb: cmetadata.is_some_and(|c| c.type_name == "jsonb"),
        dims: emb.and_then(|c| (c.type_modifier > 0).then_some(c.type_modifier as u32)),
        names_nullable: name.is_some_and(|c| !c.not_null),
    })
}

/// The embedding table's columns in the order the copier reads them and the transformer
/// expects them: key, [user id], collection_id, document, embedding, cmetadata.
pub fn copy_columns(layout: &SourceLayout) -> Vec<String> {
    let mut cols = vec![layout.key_column.clone()];
    cols.extend(layout.user_id_column.clone());
    for c in ["collection_id", "document", "embedding", "cmetadata"] {
        cols.push(c.to_string());
    }
    cols
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::catalog::fixtures::{column as col, table};
    use crate::sql::QualifiedName;

    fn tables(embedding_cols: Vec<Column>, pk: &str) -> (Table, Table) {
        let mut c = table(vec![
            col("uuid", "uuid", -1),
            col("name", "varchar", -1),
            col("cmetadata", "json", -1),
        ]);
        c.name = QualifiedName::new("public", COLLECTION_TABLE);
        c.primary_key = vec!["uuid".into()];
        let mut e = table(embedding_cols);
        e.name = QualifiedName::new("public", EMBEDDING_TABLE);
        e.primary_key = vec![pk.into()];
        (c, e)
    }

    #[test]
    fn recognises_both_layouts() {
        let (c, e) = tables(
            vec![
                col("id", "varchar", -1),
                col("collection_id", "uuid", -1),
                col("embedding", "vector", 1536),
                col("document", "varchar", -1),
                col("cmetadata", "jsonb", -1),
            ],
            "id",
        );
        let l = detect(&c, &e).unwrap();
        assert_eq!(l.layout, Layout::LangchainPostgres);
        assert_eq!(
            (l.key_column.as_str(), l.key_is_uuid, l.user_id_column.as_deref()),
            ("id", false, None)
        );
        assert!(l.cmetadata_jsonb);
        assert_eq!(l.dims, Some(1536));
        assert_eq!(
            copy_columns(&l),
            ["id", "collection_id", "document", "embedding", "cmetadata"]
        );

        let (c, e) = tables(
            vec![
                col("uuid", "uuid", -1),
                col("collection_id", "uuid", -1),
                col("embedding", "vector", -1),
                col("document", "varchar", -1),
                col("cmetadata", "json", -1),
                col("custom_id", "varchar", -1),
            ],
            "uuid",
        );
        let l = detect(&c, &e).unwrap();
        assert_eq!(l.layout, Layout::LangchainCommunity);
        assert_eq!(l.user_id_column.as_deref(), Some("custom_id"));
        assert!(l.key_is_uuid && !l.cmetadata_jsonb);
        assert_eq!(l.dims, None);
        assert_eq!(
            copy_columns(&l),
            [
                "uuid",
                "custom_id",
                "collection_id",
                "document",
                "embedding",
                "cmetadata"
            ]
        );
    }

    #[test]
    fn lists_every_problem() {
        let (c, e) = tables(
            vec![
                col("collection_id", "text", -1),
                col("embedding", "real[]", -1),
                col("cmetadata", "text", -1),
            ],
            "x",
        );
        let problems = detect(&c, &e).unwrap_err();
        let all = problems.join("\n");
        assert!(all.contains("collection_id is text, expected uuid"), "{all}");
        assert!(all.contains("embedding is real[], expected vector"), "{all}");
        assert!(all.contains("has no column document"), "{all}");
        assert!(all.contains("neither an id column"), "{all}");
        assert!(all.contains("cmetadata is text, expected json or jsonb"), "{all}");
    }
}
