//! The LangChain part of pgvshift's state on the target (`src/sql/langchain_state.sql`):
//! one row per slot, one per collection, the id -> collection routing table, and the SQL
//! functions the stream uses to delete and move rows by id.

use tokio_postgres::{Client, GenericClient};
use uuid::Uuid;

use super::layout::Layout;
use crate::sql::QualifiedName;

/// Create (or update) the tables and functions. Idempotent.
pub async fn ensure(client: &Client) -> Result<(), tokio_postgres::Error> {
    client.batch_execute(include_str!("../sql/langchain_state.sql")).await
}

/// Whether the LangChain tables exist (without creating them).
pub async fn exists(client: &impl GenericClient) -> Result<bool, tokio_postgres::Error> {
    Ok(client
        .query_one("SELECT to_regclass('pgvshift.langchain_routes') IS NOT NULL", &[])
        .await?
        .get(0))
}

/// One collection as recorded on the target.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct CollectionRecord {
    pub collection: Uuid,
    pub name: Option<String>,
    pub selected: bool,
    /// The table (selected collections only).
    pub table: Option<QualifiedName>,
    pub created_table: bool,
    pub deleted: bool,
    pub rows_copied: i64,
    pub rows_streamed: i64,
    pub skipped_rows: i64,
    pub index_built: bool,
}

/// The slot's LangChain row and its collections.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct SlotState {
    pub layout: Option<String>,
    pub skipped_null_collection: i64,
    pub skipped_unselected: i64,
    pub collections: Vec<CollectionRecord>,
}

/// The slot's state (empty when the tables do not exist or the slot has none).
pub async fn load(client: &impl GenericClient, slot: &str) -> Result<SlotState, tokio_postgres::Error> {
    if !exists(client).await? {
        return Ok(SlotState::default());
    }
    let Some(row) = client
        .query_opt(
            "SELECT layout, skipped_null_collection, skipped_unselected FROM pgvshift.langchain WHERE slot = $1",
            &[&slot],
        )
        .await?
    else {
        return Ok(SlotState::default());
    };
    let rows = client
        .query(
            "SELECT collection, name, selected, target_schema, target_name, created_table, state = 'deleted', \
                    rows_copied, rows_streamed, skipped_rows, index_built \
               FROM pgvshift.langchain_collections WHERE slot = $1 ORDER BY name, collection",
            &[&slot],
        )
        .await?;
    Ok(SlotState {
        layout: Some(row.get(0)),
        skipped_null_collection: row.get(1),
        skipped_unselected: row.get(2),
        collections: rows
            .iter()
            .map(|r| CollectionRecord {
                collection: r.get(0),
                name: r.get(1),
                selected: r.get(2),
                table: match (r.get::<_, Option<String>>(3), r.get::<_, Option<String>>(4)) {
                    (Some(s), Some(n)) => Some(QualifiedName::new(s, n)),
                    _ => None,
                },
                created_table: r.get(5),
                deleted: r.get(6),
                rows_copied: r.get(7),
                rows_streamed: r.get(8),
                skipped_rows: r.get(9),
                index_built: r.get(10),
            })
            .collect(),
    })
}

/// Start the slot's LangChain state (after `state::begin_snapshot`, which removed any old one).
pub async fn begin(
    client: &impl GenericClient,
    slot: &str,
    layout: Layout,
    id_column: &str,
    id_type: &str,
    other_columns: &[String],
) -> Result<(), tokio_postgres::Error> {
    client
        .execute(
            "INSERT INTO pgvshift.langchain (slot, layout, id_column, id_type, other_columns) VALUES ($1, $2, $3, $4, $5)",
            &[&slot, &layout.name(), &id_column, &id_type, &other_columns],
        )
        .await?;
    Ok(())
}

/// SQL that records a collection (for the stream: bound as `Op::Exec` parameters in this order:
/// slot, collection, name, selected, target_schema, target_name, created_table, rows_copied).
pub const INSERT_COLLECTION_SQL: &str = "INSERT INTO pgvshift.langchain_collections \
     (slot, collection, name, selected, target_schema, target_name, created_table, rows_copied) \
     VALUES ($1, $2::text::uuid, $3, $4::text::boolean, $5, $6, $7::text::boolean, $8::text::bigint) \
     ON CONFLICT (slot, collection) DO UPDATE SET name = EXCLUDED.name, selected = EXCLUDED.selected, \
       target_schema = EXCLUDED.target_schema, target_name = EXCLUDED.target_name, \
       created_table = EXCLUDED.created_table OR pgvshift.langchain_collections.created_table, \
       state = 'active', updated_at = now()";

/// Record one collection (snapshot).
#[allow(clippy::too_many_arguments)]
pub async fn insert_collection(
    client: &impl GenericClient,
    slot: &str,
    record: &CollectionRecord,
) -> Result<(), tokio_postgres::Error> {
    let (schema, name) = match &record.table {
        Some(t) => (Some(t.schema.as_str()), Some(t.name.as_str())),
        None => (None, None),
    };
    client
        .execute(
            INSERT_COLLECTION_SQL,
            &[
                &slot,
                &record.collection.to_string(),
                &record.name,
                &record.selected.to_string(),
                &schema,
                &name,
                &record.created_table.to_string(),
                &record.rows_copied.to_string(),
            ],
        )
        .await?;
    Ok(())
}

/// Per-collection counts after the snapshot copy.
pub async fn set_copied(
    client: &impl GenericClient,
    slot: &str,
    collection: Uuid,
    rows_copied: i64,
    skipped_rows: i64,
) -> Result<(), tokio_postgres::Error> {
    client
        .execute(
            "UPDATE pgvshift.langchain_collections SET rows_copied = $3, skipped_rows = $4, updated_at = now() \
              WHERE slot = $1 AND collection = $2",
            &[&slot, &collection, &rows_copied, &skipped_rows],
        )
        .await?;
    Ok(())
}

/// Add to the slot's skipped-row counters.
pub const ADD_SKIPPED_SQL: &str = "UPDATE pgvshift.langchain SET \
     skipped_null_collection = skipped_null_collection + $2::text::bigint, \
     skipped_unselected = skipped_unselected + $3::text::bigint, updated_at = now() WHERE slot = $1";

/// Add to one collection's counters.
pub const ADD_COLLECTION_COUNTS_SQL: &str = "UPDATE pgvshift.langchain_collections SET \
     rows_streamed = rows_streamed + $3::text::bigint, skipped_rows = skipped_rows + $4::text::bigint, \
     updated_at = now() WHERE slot = $1 AND collection = $2::text::uuid";

/// Mark a collection deleted on the source.
pub const DELETE_COLLECTION_SQL: &str = "UPDATE pgvshift.langchain_collections SET state = 'deleted', \
     updated_at = now() WHERE slot = $1 AND collection = $2::text::uuid";

/// Rename a collection (its table keeps its name).
pub const RENAME_COLLECTION_SQL: &str = "UPDATE pgvshift.langchain_collections SET name = $3, \
     updated_at = now() WHERE slot = $1 AND collection = $2::text::uuid";

/// A collection's uuid changed: its record and its rows' routes follow.
pub const REKEY_COLLECTION_SQL: &str =
    "WITH c AS (UPDATE pgvshift.langchain_collections SET collection = $3::text::uuid \
       WHERE slot = $1 AND collection = $2::text::uuid) \
     UPDATE pgvshift.langchain_routes SET collection = $3::text::uuid WHERE slot = $1 AND collection = $2::text::uuid";

/// Forget the routes of a collection's rows (the collection was deleted).
pub const FORGET_COLLECTION_ROUTES_SQL: &str =
    "DELETE FROM pgvshift.langchain_routes WHERE slot = $1 AND collection = $2::text::uuid";

/// The index of a collection table was built.
pub async fn set_index_built(
    client: &impl GenericClient,
    slot: &str,
    collection: Uuid,
) -> Result<(), tokio_postgres::Error> {
    client
        .execute(
            "UPDATE pgvshift.langchain_collections SET index_built = true, updated_at = now() \
              WHERE slot = $1 AND collection = $2",
            &[&slot, &collection],
        )
        .await?;
    Ok(())
}

/// Remove the slot's routing rows (the rest goes with the progress row, ON DELETE CASCADE).
pub async fn forget(client: &impl GenericClient, slot: &str) -> Result<(), tokio_postgres::Error> {
    if !exists(client).await? {
        return Ok(());
    }
    client
        .execute("DELETE FROM pgvshift.langchain_routes WHERE slot = $1", &[&slot])
        .await?;
    client
        .execute("DELETE FROM pgvshift.langchain_missing WHERE slot = $1", &[&slot])
        .await?;
    client
        .execute("DELETE FROM pgvshift.langchain WHERE slot = $1", &[&slot])
        .await?;
    Ok(())
}

/// A column value as the server sent it (binary), for rows read with a plain query.
pub(crate) struct Raw(pub bytes::Bytes);

impl<'a> tokio_postgres::types::FromSql<'a> for Raw {
    fn from_sql(
        _ty: &tokio_postgres::types::Type,
        raw: &'a [u8],
    ) -> std::result::Result<Self, Box<dyn std::error::Error + Sync + Send>> {
        Ok(Raw(bytes::Bytes::copy_from_slice(raw)))
    }

    fn accepts(_ty: &tokio_postgres::types::Type) -> bool {
        true
    }
}
