//! The servers and the source role: `wal_level`, slots and WAL senders to spare, the same
//! database on both sides, the role's REPLICATION and ownership, long transactions.

use std::collections::HashSet;

use tokio_postgres::Client;

use crate::config::Config;
use crate::error::{DbContext, Result};
use crate::sql::display_ident;

use super::finding::{Finding, Level};

pub(super) struct SourceServer {
    pub(super) wal_level: String,
    pub(super) max_slots: i32,
    pub(super) used_slots: i32,
    pub(super) max_senders: i32,
    pub(super) used_senders: i32,
    pub(super) max_slot_wal_keep_size: String,
    pub(super) superuser: bool,
    pub(super) replication: bool,
    pub(super) rds_replication: bool,
    pub(super) user: String,
    pub(super) can_create_in_db: bool,
    pub(super) database: String,
    pub(super) identity: String,
}

pub(super) async fn source_server(source: &Client) -> Result<SourceServer> {
    let r = source
        .query_one(
            "SELECT current_setting('wal_level'), current_setting('max_replication_slots')::int, \
                    (SELECT count(*) FROM pg_replication_slots)::int, \
                    current_setting('max_wal_senders')::int, \
                    (SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'walsender')::int, \
                    current_setting('max_slot_wal_keep_size'), \
                    r.rolsuper, r.rolreplication, current_user::text, \
                    EXISTS (SELECT 1 FROM pg_roles g WHERE g.rolname = 'rds_replication' \
                             AND pg_has_role(current_user, g.oid, 'MEMBER')), \
                    has_database_privilege(current_database(), 'CREATE'), current_database()::text, \
                    pg_postmaster_start_time()::text || '/' || current_setting('port') || '/' || \
                      (SELECT oid FROM pg_database WHERE datname = current_database())::text \
               FROM pg_roles r WHERE r.rolname = current_user",
            &[],
        )
        .await
        .db(|| "reading the source server's settings".into())?;
    Ok(SourceServer {
        wal_level: r.get(0),
        max_slots: r.get(1),
        used_slots: r.get(2),
        max_senders: r.get(3),
        used_senders: r.get(4),
        max_slot_wal_keep_size: r.get(5),
        superuser: r.get(6),
        replication: r.get(7),
        user: r.get(8),
        rds_replication: r.get(9),
        can_create_in_db: r.get(10),
        database: r.get(11),
        identity: r.get(12),
    })
}

pub(super) struct TargetServer {
    pub(super) user: String,
    pub(super) vector_version: Option<String>,
    pub(super) vector_available: Option<String>,
    pub(super) identity: String,
    pub(super) extensions: HashSet<String>,
    /// Extensions the target server has installed files for (`pg_available_extensions`).
    pub(super) available: HashSet<String>,
    /// None: the target role may not read it (it needs pg_read_all_settings).
    pub(super) shared_preload_libraries: Option<String>,
    /// VectorChord's settings exist: its library was loaded at server start.
    pub(super) vchord_loaded: bool,
    /// Lantern's operator classes for pgvector's `vector` (created only when pgvector exists
    /// at `CREATE EXTENSION lantern`).
    pub(super) lantern_vector_opclasses: bool,
}

pub(super) async fn target_server(target: &Client) -> Result<TargetServer> {
    let r = target
        .query_one(
            "SELECT current_user::text, \
                    (SELECT extversion FROM pg_extension WHERE extname = 'vector'), \
                    (SELECT default_version FROM pg_available_extensions WHERE name = 'vector'), \
                    pg_postmaster_start_time()::text || '/' || current_setting('port') || '/' || \
                      (SELECT oid FROM pg_database WHERE datname = current_database())::text, \
                    ARRAY(SELECT extname::text FROM pg_extension), \
                    ARRAY(SELECT name::text FROM pg_available_extensions WHERE name IN ('lantern', 'vchord')), \
                    (SELECT setting FROM pg_settings WHERE name = 'shared_preload_libraries'), \
                    current_setting('vchordrq.probes', true) IS NOT NULL, \
                    EXISTS (SELECT 1 FROM pg_opclass WHERE opcname = 'dist_vec_l2sq_ops')",
            &[],
        )
        .await
        .db(|| "reading the target server".into())?;
    Ok(TargetServer {
        user: r.get(0),
        vector_version: r.get(1),
        vector_available: r.get(2),
        identity: r.get(3),
        extensions: r.get::<_, Vec<String>>(4).into_iter().collect(),
        available: r.get::<_, Vec<String>>(5).into_iter().collect(),
        shared_preload_libraries: r.get(6),
        vchord_loaded: r.get(7),
        lantern_vector_opclasses: r.get(8),
    })
}

pub(super) fn check_servers(
    config: &Config,
    s: &SourceServer,
    t: &TargetServer,
    slot_exists: bool,
    f: &mut Vec<Finding>,
) {
    if s.identity == t.identity {
        f.push(
            Finding::new(
                Level::Blocking,
                "same_database",
                "source and target",
                format!(
                    "{} and {} are the same database ({} on the same server)",
                    config.source.redacted_url, config.target.redacted_url, s.database
                ),
            )
            .fix("point target.url at the new database"),
        );
    }
    if s.wal_level == "logical" {
        f.push(Finding::new(Level::Ok, "wal_level", "source", "wal_level = logical"));
    } else {
        f.push(
            Finding::new(
                Level::Blocking,
                "wal_level",
                "source",
                format!("wal_level = {}: logical replication needs wal_level = logical", s.wal_level),
            )
            .fix("ALTER SYSTEM SET wal_level = logical; then restart the source server (RDS/Aurora: rds.logical_replication = 1 in the parameter group; Cloud SQL: flag cloudsql.logical_decoding = on; AlloyDB: flag alloydb.logical_decoding = on)"),
        );
    }
    let needed = if slot_exists { 0 } else { 1 };
    if s.max_slots - s.used_slots < needed {
        f.push(
            Finding::new(
                Level::Blocking,
                "replication_slots",
                "source",
                format!(
                    "max_replication_slots = {} and {} slot(s) exist: no free slot for {}",
                    s.max_slots, s.used_slots, config.replication.slot
                ),
            )
            .fix("drop an unused slot (SELECT slot_name, active FROM pg_replication_slots; SELECT pg_drop_replication_slot('name')) or raise max_replication_slots (ALTER SYSTEM SET max_replication_slots = ...; restart)"),
        );
    } else {
        f.push(Finding::new(
            Level::Ok,
            "replication_slots",
            "source",
            format!("{} of max_replication_slots = {} in use", s.used_slots, s.max_slots),
        ));
    }
    if s.max_senders - s.used_senders < 1 {
        f.push(
            Finding::new(
                Level::Blocking,
                "wal_senders",
                "source",
                format!(
                    "max_wal_senders = {} and {} WAL sender(s) are running: none left for pgvshift's replication connection",
                    s.max_senders, s.used_senders
                ),
            )
            .fix("stop an unused replication client or raise max_wal_senders (ALTER SYSTEM SET max_wal_senders = ...; restart)"),
        );
    } else {
        f.push(Finding::new(
            Level::Ok,
            "wal_senders",
            "source",
            format!("{} of max_wal_senders = {} in use", s.used_senders, s.max_senders),
        ));
    }
    if s.max_slot_wal_keep_size == "-1" && config.replication.max_retained_wal.is_none() {
        f.push(
            Finding::new(
                Level::Warning,
                "retained_wal",
                "source",
                "nothing limits the WAL the slot can hold back (max_slot_wal_keep_size = -1 and no max_retained_wal): if pgvshift stops or falls behind for long, the source's disk fills",
            )
            .fix("set [replication] max_retained_wal in the config, and/or ALTER SYSTEM SET max_slot_wal_keep_size = '50GB' on the source (then SELECT pg_reload_conf()); watch `pgvshift status`"),
        );
    }
}

pub(super) fn check_source_role(s: &SourceServer, f: &mut Vec<Finding>) {
    if s.superuser || s.replication || s.rds_replication {
        f.push(Finding::new(
            Level::Ok,
            "replication_privilege",
            format!("source role {}", s.user),
            "may use replication",
        ));
    } else {
        f.push(
            Finding::new(
                Level::Blocking,
                "replication_privilege",
                format!("source role {}", s.user),
                "has neither the REPLICATION attribute nor membership in rds_replication, so it cannot create or read the replication slot",
            )
            .fix(format!(
                "ALTER ROLE {} WITH REPLICATION; (RDS/Aurora: GRANT rds_replication TO {}; Cloud SQL / AlloyDB: ALTER USER {} WITH REPLICATION as a cloudsqlsuperuser / alloydbsuperuser)",
                display_ident(&s.user),
                display_ident(&s.user),
                display_ident(&s.user)
            )),
        );
    }
}

pub(super) async fn check_long_transactions(source: &Client, f: &mut Vec<Finding>) -> Result<()> {
    let rows = source
        .query(
            "SELECT pid, extract(epoch FROM now() - xact_start)::bigint, coalesce(usename::text, ''), \
                    left(regexp_replace(coalesce(query, ''), '\\s+', ' ', 'g'), 60) \
               FROM pg_stat_activity \
              WHERE backend_xid IS NOT NULL AND xact_start < now() - interval '5 minutes' \
                AND pid <> pg_backend_pid() ORDER BY xact_start LIMIT 5",
            &[],
        )
        .await
        .db(|| "reading pg_stat_activity on the source".into())?;
    if !rows.is_empty() {
        let list: Vec<String> = rows
            .iter()
            .map(|r| {
                format!(
                    "pid {} ({}s, user {}: {})",
                    r.get::<_, i32>(0),
                    r.get::<_, i64>(1),
                    r.get::<_, String>(2),
                    r.get::<_, String>(3)
                )
            })
            .collect();
        f.push(
            Finding::new(
                Level::Warning,
                "long_transactions",
                "source",
                format!(
                    "write transactions open for more than 5 minutes: creating the replication slot waits until they end: {}",
                    list.join("; ")
                ),
            )
            .fix("let them finish, or end them (SELECT pg_cancel_backend(pid)) before `pgvshift run`"),
        );
    }
    Ok(())
}
