//! The fence: a source session holding `SHARE` locks on the migrated tables in an open
//! transaction (why a session-held lock: see the parent module), and who else holds locks there.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tokio_postgres::Client;

use crate::config::Config;
use crate::config::Side;
use crate::error::{DbContext, Error, Result};
use crate::source::connect;
use crate::sql::{quote_literal, QualifiedName};

pub(super) fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// The session name of the fence, so operators can find it (`pg_stat_activity`).
pub fn fence_application_name(slot: &str) -> String {
    format!("pgvshift_cutover_{slot}")
}

/// PURE: the statement that fences the tables.
pub fn fence_sql(tables: &[QualifiedName]) -> String {
    format!(
        "LOCK TABLE {} IN SHARE MODE",
        tables.iter().map(QualifiedName::quoted).collect::<Vec<_>>().join(", ")
    )
}

/// PURE: the fence session's `idle_in_transaction_session_timeout`: longer than everything
/// pgvshift does while holding it, so it only fires when pgvshift is gone.
pub fn fence_idle_timeout(max_write_pause: Duration, hold: Duration) -> Duration {
    max_write_pause + hold + Duration::from_secs(30)
}

/// The fence: a source session holding SHARE locks on the migrated tables in an open
/// transaction. Dropping it (or pgvshift dying) closes the session, which lifts the fence.
pub(super) struct Fence {
    pub(super) client: Client,
    pub(super) acquired: Instant,
    pub(super) granted_unix_ms: u64,
}

impl Fence {
    pub(super) async fn acquire(config: &Config, tables: &[QualifiedName], idle: Duration) -> Result<Fence> {
        let client = connect(&config.source, Side::Source).await?;
        let settings = &config.cutover;
        client
            .batch_execute(&format!(
                "SET application_name = {}; SET idle_in_transaction_session_timeout = '{}ms'; SET lock_timeout = '{}ms'",
                quote_literal(&fence_application_name(&config.replication.slot)),
                idle.as_millis(),
                settings.lock_timeout.as_millis()
            ))
            .await
            .db(|| "preparing the fence session on the source".into())?;
        match client.batch_execute(&format!("BEGIN; {}", fence_sql(tables))).await {
            Ok(()) => Ok(Fence {
                client,
                acquired: Instant::now(),
                granted_unix_ms: unix_ms(),
            }),
            Err(e) if e.code() == Some(&tokio_postgres::error::SqlState::LOCK_NOT_AVAILABLE) => {
                Err(Error::Failed(format!(
                    "the SHARE locks were not granted within lock_timeout_secs = {} (write transactions on the tables were still running)",
                    settings.lock_timeout.as_secs()
                )))
            }
            Err(e) => Err(Error::Db {
                context: "fencing the source tables".into(),
                source: e,
            }),
        }
    }

    /// Lift the fence; returns how long it was held. `COMMIT` after a success, `ROLLBACK`
    /// otherwise (the transaction changed nothing either way). If the statement fails, the
    /// session is closed, which lifts it too.
    pub(super) async fn lift(self, success: bool) -> Duration {
        let sql = if success { "COMMIT" } else { "ROLLBACK" };
        if let Err(e) = self.client.batch_execute(sql).await {
            tracing::warn!(
                "lifting the fence with {sql} failed ({}): closing its session, which releases the locks",
                crate::error::describe(&e)
            );
        }
        let held = self.acquired.elapsed();
        drop(self.client);
        held
    }
}

/// Sessions holding or awaiting locks on the tables (other than ours), for messages.
pub(super) async fn lock_holders(source: &Client, tables: &[QualifiedName]) -> Result<Vec<String>> {
    let names: Vec<String> = tables.iter().map(|t| t.quoted()).collect();
    let rows = source
        .query(
            "SELECT l.pid, l.mode, l.granted, coalesce(a.application_name, ''), coalesce(a.state, ''), \
                    coalesce(extract(epoch FROM now() - a.xact_start)::float8, 0), l.relation::regclass::text \
               FROM pg_locks l LEFT JOIN pg_stat_activity a ON a.pid = l.pid \
              WHERE l.locktype = 'relation' AND l.relation = ANY (SELECT unnest($1::text[])::regclass) \
                AND l.pid <> pg_backend_pid() AND l.mode NOT IN ('AccessShareLock') \
              ORDER BY l.pid",
            &[&names],
        )
        .await
        .db(|| "reading pg_locks on the source".into())?;
    Ok(rows
        .iter()
        .map(|r| {
            format!(
                "pid {} {} {} on {} ({}, {}, transaction open {:.0} s)",
                r.get::<_, i32>(0),
                if r.get::<_, bool>(2) { "holds" } else { "waits for" },
                r.get::<_, String>(1),
                r.get::<_, String>(6),
                r.get::<_, String>(3),
                r.get::<_, String>(4),
                r.get::<_, f64>(5)
            )
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fence_statement_and_timeout() {
        let tables = [QualifiedName::new("public", "items"), QualifiedName::new("My S", "T")];
        assert_eq!(
            fence_sql(&tables),
            "LOCK TABLE \"public\".\"items\", \"My S\".\"T\" IN SHARE MODE"
        );
        assert_eq!(
            fence_idle_timeout(Duration::from_secs(30), Duration::from_secs(5)),
            Duration::from_secs(65)
        );
        assert_eq!(fence_application_name("s1"), "pgvshift_cutover_s1");
    }
}
