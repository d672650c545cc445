//! The replication slot and the source's WAL position, as the source reports them: the one
//! place for the `pg_replication_slots` and `pg_current_wal_*` probes that `check`, `run`, the
//! WAL guard, `status`, `cleanup`, `verify`, `cutover` and the demo need. (The target's side,
//! how far it has applied, is the progress row: [`crate::apply::state::wait_applied`].)

use std::time::Duration;

use tokio_postgres::Client;

use crate::error::{describe, DbContext, Error, Result};
use crate::Lsn;

/// One replication slot as `pg_replication_slots` shows it.
#[derive(Debug, Clone)]
pub struct SlotInfo {
    /// The output plugin (`pgoutput` for a slot pgvshift created); `None` for a physical slot.
    pub plugin: Option<String>,
    pub database: Option<String>,
    /// Whether it is a slot of the database this connection is in (`None`: a physical slot).
    pub this_database: Option<bool>,
    /// Whether a session holds it (a `pgvshift run` streaming).
    pub active: bool,
    pub active_pid: Option<i32>,
    pub confirmed_flush_lsn: Option<String>,
    /// `reserved`, `extended`, `unreserved` or `lost` (invalidated).
    pub wal_status: Option<String>,
    /// WAL the slot holds back on the source: `pg_current_wal_lsn() - restart_lsn`.
    pub retained_bytes: Option<i64>,
}

/// The slot named `slot`, if it exists.
pub async fn slot_info(source: &Client, slot: &str) -> Result<Option<SlotInfo>> {
    let row = source
        .query_opt(include_str!("../sql/slot_info.sql"), &[&slot])
        .await
        .db(|| "reading pg_replication_slots on the source".into())?;
    Ok(row.map(|r| SlotInfo {
        plugin: r.get("plugin"),
        database: r.get("database"),
        this_database: r.get("this_database"),
        active: r.get("active"),
        active_pid: r.get("active_pid"),
        confirmed_flush_lsn: r.get("confirmed_flush_lsn"),
        wal_status: r.get("wal_status"),
        retained_bytes: r.get("retained_bytes"),
    }))
}

/// Whether the slot exists and a session holds it (a `pgvshift run` streaming).
pub async fn slot_active(source: &Client, slot: &str) -> Result<bool> {
    Ok(slot_info(source, slot).await?.is_some_and(|s| s.active))
}

/// The source's current WAL write position (`pg_current_wal_lsn()`).
pub async fn current_lsn(source: &Client) -> Result<Lsn> {
    wal_position(source, "SELECT pg_current_wal_lsn()::text").await
}

/// Where the source's WAL insertion is (`pg_current_wal_insert_lsn()`): every transaction
/// visible to an earlier statement committed before it, and one that commits after this call
/// ends beyond it.
pub async fn insert_lsn(source: &Client) -> Result<Lsn> {
    wal_position(source, "SELECT pg_current_wal_insert_lsn()::text").await
}

async fn wal_position(source: &Client, sql: &str) -> Result<Lsn> {
    let text: String = source
        .query_one(sql, &[])
        .await
        .db(|| "reading the source's WAL position".into())?
        .get(0);
    text.parse().map_err(|e| Error::Runtime(format!("{e}")))
}

/// Write a tiny logical decoding message on the source, so that WAL exists past a position
/// just read and the stream's idle position can move past it even when nothing else is
/// written (the message itself is not sent to pgvshift). Failing to is harmless.
pub async fn nudge(source: &Client) {
    if let Err(e) = source
        .execute("SELECT pg_logical_emit_message(true, 'pgvshift', 'position')", &[])
        .await
    {
        tracing::debug!("pg_logical_emit_message on the source: {}", describe(&e));
    }
}

/// Drop a replication slot, waiting (up to 30 s) for a previous session to release it.
pub async fn drop_slot(source: &Client, slot: &str) -> Result<()> {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let Some(info) = slot_info(source, slot).await? else {
            return Ok(());
        };
        if !info.active {
            match source.execute("SELECT pg_drop_replication_slot($1)", &[&slot]).await {
                Ok(_) => {
                    tracing::info!(slot = %slot, "dropped replication slot");
                    return Ok(());
                }
                Err(e) if std::time::Instant::now() < deadline => {
                    tracing::debug!("dropping slot {slot}: {}; retrying", describe(&e));
                }
                Err(e) => {
                    return Err(Error::Db {
                        context: format!("dropping replication slot {slot}"),
                        source: e,
                    })
                }
            }
        } else if std::time::Instant::now() >= deadline {
            return Err(Error::Runtime(format!(
                "replication slot {slot} is in use by the source backend pid {}: stop the pgvshift process that streams from it first",
                info.active_pid.unwrap_or_default()
            )));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
