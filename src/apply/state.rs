//! pgvshift's state on the target (`pgvshift` schema): the progress row per slot and per-table
//! copy state. Written only in target transactions; the progress row's `applied_lsn` moves in
//! the same transaction as the changes it covers (invariant 2 in docs/architecture.md).

use std::time::{Duration, Instant};

use tokio_postgres::{Client, GenericClient};

use crate::error::DbContext;
use crate::Lsn;

/// The run's phase as stored in `pgvshift.progress.phase`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Phase {
    /// The initial copy was started and has not completed. Set before the slot is created, so
    /// a crash at any later instant is recognised and the snapshot is started over.
    Snapshot,
    /// The copy completed; changes after `applied_lsn` stream from the slot.
    Streaming,
}

impl Phase {
    fn as_str(self) -> &'static str {
        match self {
            Phase::Snapshot => "snapshot",
            Phase::Streaming => "streaming",
        }
    }
}

/// The progress row of one slot.
#[derive(Debug, Clone)]
pub struct Progress {
    pub slot: String,
    pub publication: String,
    pub created_publication: bool,
    pub phase: Phase,
    pub consistent_point: Option<Lsn>,
    pub applied_lsn: Option<Lsn>,
    pub last_applied_age_secs: Option<f64>,
    /// Seconds since the snapshot started (its slot and exported snapshot hold back WAL
    /// recycling and, while the copy runs, vacuum on the source).
    pub snapshot_age_secs: Option<f64>,
    /// Seconds since the source committed the last applied transaction, or since the stream
    /// last recorded that it was idle and caught up, whichever is later.
    pub lag_secs: Option<f64>,
}

/// Per-table state row.
#[derive(Debug, Clone, serde::Serialize)]
pub struct TableState {
    pub source_table: String,
    pub target_schema: String,
    pub target_name: String,
    pub state: String,
    pub rows_copied: i64,
    pub created_table: bool,
    /// Changes applied since the stream began (committed with them).
    pub inserts: i64,
    pub updates: i64,
    pub deletes: i64,
    pub truncates: i64,
}

/// The comment pgvshift puts on a publication it creates, so `cleanup` can recognise it even
/// when the target's record of it is gone.
pub fn publication_comment(slot: &str) -> String {
    format!("created by pgvshift for slot {slot}")
}

/// The `application_name` of a run's sessions on the target: `status` looks for it to tell a
/// running snapshot (no slot session yet) from a stopped one.
pub fn run_application_name(slot: &str) -> String {
    format!("pgvshift_run_{slot}")
}

/// Tag this target session as belonging to the run of `slot`.
pub async fn tag_session(client: &Client, slot: &str) -> Result<(), tokio_postgres::Error> {
    client
        .execute(
            "SELECT set_config('application_name', $1, false)",
            &[&run_application_name(slot)],
        )
        .await
        .map(|_| ())
}

/// Take the per-slot session lock on the target (held until the connection ends). Waits up to
/// 60 s for a previous session to go away, then says who holds it.
pub async fn lock_slot(client: &Client, slot: &str) -> crate::error::Result<()> {
    use crate::error::DbContext;
    const KEY: &str = "pg_advisory_lock(1886809715, hashtext($1))"; // 1886809715 = 'pvs3'
    client
        .batch_execute("SET lock_timeout = '60s'")
        .await
        .db(|| "setting lock_timeout".into())?;
    let locked = client.execute(&format!("SELECT {KEY}"), &[&slot]).await;
    client
        .batch_execute("RESET lock_timeout")
        .await
        .db(|| "resetting lock_timeout".into())?;
    match locked {
        Ok(_) => Ok(()),
        Err(e) if e.code() == Some(&tokio_postgres::error::SqlState::LOCK_NOT_AVAILABLE) => {
            Err(crate::error::Error::Runtime(format!(
                "another pgvshift process is applying changes for slot {slot} on this target (it holds the slot's lock): stop it first, or use a different slot"
            )))
        }
        Err(source) => Err(crate::error::Error::Db { context: format!("locking slot {slot} on the target"), source }),
    }
}

pub async fn ensure_schema(client: &Client) -> Result<(), tokio_postgres::Error> {
    client.batch_execute(include_str!("../sql/state_schema.sql")).await
}

/// Whether the state schema exists (without creating it: `status` and `plan` change nothing).
pub async fn schema_exists(client: &impl GenericClient) -> Result<bool, tokio_postgres::Error> {
    let row = client
        .query_one("SELECT to_regclass('pgvshift.progress') IS NOT NULL", &[])
        .await?;
    Ok(row.get(0))
}

pub async fn load_progress(client: &impl GenericClient, slot: &str) -> Result<Option<Progress>, tokio_postgres::Error> {
    if !schema_exists(client).await? {
        return Ok(None);
    }
    let row = client
        .query_opt(
            "SELECT slot, publication, created_publication, phase, consistent_point::text, applied_lsn::text, \
                    extract(epoch FROM now() - last_applied_at)::float8, \
                    extract(epoch FROM now() - snapshot_started_at)::float8, \
                    extract(epoch FROM now() - greatest(last_commit_time, \
                        CASE WHEN updated_at > last_applied_at THEN updated_at END))::float8 \
               FROM pgvshift.progress WHERE slot = $1",
            &[&slot],
        )
        .await?;
    Ok(row.map(|r| Progress {
        slot: r.get(0),
        publication: r.get(1),
        created_publication: r.get(2),
        phase: if r.get::<_, String>(3) == "streaming" {
            Phase::Streaming
        } else {
            Phase::Snapshot
        },
        consistent_point: r.get::<_, Option<String>>(4).and_then(|s| s.parse().ok()),
        applied_lsn: r.get::<_, Option<String>>(5).and_then(|s| s.parse().ok()),
        last_applied_age_secs: r.get(6),
        snapshot_age_secs: r.get(7),
        lag_secs: r.get(8),
    }))
}

/// [`load_progress`], a failure reported as an error reading the progress row on the target.
pub async fn progress(client: &impl GenericClient, slot: &str) -> crate::error::Result<Option<Progress>> {
    load_progress(client, slot)
        .await
        .db(|| "reading pgvshift.progress on the target".into())
}

/// The target's applied position for the slot.
pub async fn applied_lsn(target: &Client, slot: &str) -> crate::error::Result<Option<Lsn>> {
    Ok(progress(target, slot).await?.and_then(|p| p.applied_lsn))
}

/// Wait until the target has applied `lsn`; the applied position reached, or `None` after
/// `timeout`.
pub async fn wait_applied(
    target: &Client,
    slot: &str,
    lsn: Lsn,
    timeout: Duration,
) -> crate::error::Result<Option<Lsn>> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(a) = applied_lsn(target, slot).await? {
            if a >= lsn {
                return Ok(Some(a));
            }
        }
        if Instant::now() >= deadline {
            return Ok(None);
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

pub async fn load_tables(client: &impl GenericClient, slot: &str) -> Result<Vec<TableState>, tokio_postgres::Error> {
    if !schema_exists(client).await? {
        return Ok(Vec::new());
    }
    let rows = client
        .query(
            "SELECT source_table, target_schema, target_name, state, rows_copied, created_table, \
                    inserts, updates, deletes, truncates \
               FROM pgvshift.tables WHERE slot = $1 ORDER BY source_table",
            &[&slot],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|r| TableState {
            source_table: r.get(0),
            target_schema: r.get(1),
            target_name: r.get(2),
            state: r.get(3),
            rows_copied: r.get(4),
            created_table: r.get(5),
            inserts: r.get(6),
            updates: r.get(7),
            deletes: r.get(8),
            truncates: r.get(9),
        })
        .collect())
}

/// Start (or restart) a snapshot: replaces the slot's progress and table rows.
pub async fn begin_snapshot(
    client: &impl GenericClient,
    slot: &str,
    publication: &str,
    created_publication: bool,
) -> Result<(), tokio_postgres::Error> {
    client
        .execute("DELETE FROM pgvshift.progress WHERE slot = $1", &[&slot])
        .await?;
    client
        .execute(
            "INSERT INTO pgvshift.progress (slot, publication, created_publication, phase, snapshot_started_at) \
             VALUES ($1, $2, $3, $4, now())",
            &[&slot, &publication, &created_publication, &Phase::Snapshot.as_str()],
        )
        .await?;
    Ok(())
}

pub async fn record_consistent_point(
    client: &impl GenericClient,
    slot: &str,
    lsn: Lsn,
) -> Result<(), tokio_postgres::Error> {
    client
        .execute(
            "UPDATE pgvshift.progress SET consistent_point = $2::text::pg_lsn, updated_at = now() WHERE slot = $1",
            &[&slot, &lsn.to_string()],
        )
        .await?;
    Ok(())
}

pub async fn insert_table(
    client: &impl GenericClient,
    slot: &str,
    source_table: &str,
    target_schema: &str,
    target_name: &str,
    created_table: bool,
) -> Result<(), tokio_postgres::Error> {
    client
        .execute(
            "INSERT INTO pgvshift.tables (slot, source_table, target_schema, target_name, state, created_table) \
             VALUES ($1, $2, $3, $4, 'pending', $5)",
            &[&slot, &source_table, &target_schema, &target_name, &created_table],
        )
        .await?;
    Ok(())
}

pub async fn set_table_state(
    client: &impl GenericClient,
    slot: &str,
    source_table: &str,
    state: &str,
    rows_copied: Option<i64>,
) -> Result<(), tokio_postgres::Error> {
    client
        .execute(
            "UPDATE pgvshift.tables SET state = $3, rows_copied = coalesce($4, rows_copied), updated_at = now() \
              WHERE slot = $1 AND source_table = $2",
            &[&slot, &source_table, &state, &rows_copied],
        )
        .await?;
    Ok(())
}

/// The snapshot is complete: streaming starts at the slot's consistent point.
pub async fn finish_snapshot(
    client: &impl GenericClient,
    slot: &str,
    consistent_point: Lsn,
) -> Result<(), tokio_postgres::Error> {
    client
        .execute(
            "UPDATE pgvshift.progress SET phase = 'streaming', applied_lsn = $2::text::pg_lsn, \
                    snapshot_finished_at = now(), updated_at = now() WHERE slot = $1",
            &[&slot, &consistent_point.to_string()],
        )
        .await?;
    Ok(())
}

/// Statement that advances the progress row; run inside the apply transaction.
/// $1 slot, $2 applied end LSN (text), $3 source commit time (timestamptz) or NULL for an idle advance.
/// Add one batch's changes of one table to its counters ($1 slot, $2 source table, $3..$6
/// inserts, updates, deletes, truncates); runs in the batch's transaction.
pub const COUNT_SQL: &str = "UPDATE pgvshift.tables SET inserts = inserts + $3, updates = updates + $4, \
       deletes = deletes + $5, truncates = truncates + $6 WHERE slot = $1 AND source_table = $2";

pub const ADVANCE_SQL: &str = "UPDATE pgvshift.progress SET applied_lsn = $2::text::pg_lsn, \
       last_commit_time = coalesce($3, last_commit_time), \
       last_applied_at = CASE WHEN $3 IS NULL THEN last_applied_at ELSE now() END, \
       updated_at = now() WHERE slot = $1 AND applied_lsn <= $2::text::pg_lsn";

pub async fn drop_schema(client: &Client) -> Result<(), tokio_postgres::Error> {
    client.batch_execute("DROP SCHEMA IF EXISTS pgvshift CASCADE").await
}

/// Remove one slot's rows (other configurations sharing the target keep theirs).
pub async fn forget_slot(client: &impl GenericClient, slot: &str) -> Result<u64, tokio_postgres::Error> {
    client
        .execute("DELETE FROM pgvshift.progress WHERE slot = $1", &[&slot])
        .await
}
