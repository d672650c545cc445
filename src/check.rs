//! Preflight checks (`pgvshift check`, and the first thing `run` and `plan` do): read both
//! catalogs and servers, change nothing, and report each finding as ok / warning / blocking
//! with the object it concerns and the exact fix.
//!
//! ```text
//!   connect source, target ──> servers (wal_level, slots, wal senders, same database?)
//!     ──> source role (REPLICATION, SELECT, ownership for the publication / replica identity)
//!     ──> tables (exist? replica identity, column types, mapping)
//!     ──> target (privileges, pgvector and types, existing tables: columns, types, rows)
//!     ──> slot and publication (ours? invalidated?) and this slot's progress on the target
//! ```

use std::collections::{BTreeSet, HashMap, HashSet};

use serde::Serialize;
use tokio_postgres::Client;

use crate::catalog::{self, CatalogError, ReplicaIdentity, Table};
use crate::config::Config;
use crate::error::{DbContext, Error, Result};
use crate::mapping::{self, TableMap};
use crate::pg::{connect, Side};
use crate::sql::{display_ident, quote_literal, QualifiedName};
use crate::state::{self, Phase, Progress, TableState};

/// How serious a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    Ok,
    Warning,
    Blocking,
}

/// One result of one check.
#[derive(Debug, Clone, Serialize)]
pub struct Finding {
    pub level: Level,
    /// Which check (stable identifiers, e.g. `wal_level`, `replica_identity`).
    pub check: &'static str,
    /// What it is about: `source`, `target`, a table, a slot, ...
    pub object: String,
    pub message: String,
    /// The SQL or setting that fixes it (warnings and blocking findings).
    pub fix: Option<String>,
}

impl Finding {
    pub(crate) fn new(
        level: Level,
        check: &'static str,
        object: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        Finding {
            level,
            check,
            object: object.into(),
            message: message.into(),
            fix: None,
        }
    }

    pub(crate) fn fix(mut self, fix: impl Into<String>) -> Self {
        self.fix = Some(fix.into());
        self
    }

    /// One line for `Error::Blocked`: "object: message. Fix: ...".
    pub fn one_line(&self) -> String {
        match &self.fix {
            Some(f) => format!("{}: {}. Fix: {f}", self.object, self.message),
            None => format!("{}: {}", self.object, self.message),
        }
    }
}

/// Options that change what counts as blocking.
#[derive(Debug, Clone, Copy, Default)]
pub struct Options {
    /// `--truncate-target`: a non-empty target table is emptied by `run` instead of blocking.
    pub truncate_target: bool,
}

/// What `run` does next, decided from the target's progress row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// No progress: a new snapshot.
    Fresh,
    /// A snapshot was started and did not complete: it is started over.
    RestartSnapshot,
    /// The snapshot completed: stream from `applied_lsn`.
    Resume,
}

/// The replication slot as the source reports it.
#[derive(Debug, Clone)]
pub struct SlotInfo {
    pub plugin: Option<String>,
    pub database: Option<String>,
    pub active_pid: Option<i32>,
    pub wal_status: Option<String>,
    pub retained_bytes: Option<i64>,
}

/// Everything the checks learned, for `run` and `plan` to act on.
pub struct Inspection {
    /// Each table with its mapping onto the target.
    pub tables: Vec<(Table, TableMap)>,
    /// Per table (same order): the target table's state.
    pub target_state: Vec<TargetTableState>,
    pub slot: Option<SlotInfo>,
    pub publication_tables: Option<Vec<QualifiedName>>,
    /// LangChain mode: the layout, the collections and their tables (src/langchain/check.rs).
    pub langchain: Option<crate::langchain::check::LangchainInspection>,
}

impl Inspection {
    pub fn slot_exists(&self) -> bool {
        self.slot.is_some()
    }
}

#[derive(Debug, Clone, Default)]
pub struct TargetTableState {
    pub exists: bool,
    /// Whether it holds any row (an EXISTS probe: the exact count is taken only where a
    /// message reports it, see [`count_rows`]).
    pub has_rows: bool,
    pub columns: HashSet<String>,
    /// Column name -> (type as `format_type` prints it, NOT NULL without default).
    pub types: HashMap<String, String>,
    pub required: HashSet<String>,
}

/// The outcome of the checks, with the open connections for `run` to continue on.
pub struct Preflight {
    pub findings: Vec<Finding>,
    pub mode: Mode,
    pub progress: Option<Progress>,
    /// This slot's `pgvshift.tables` rows (an unfinished snapshot's or the streaming run's).
    pub previous: Vec<TableState>,
    pub inspection: Inspection,
    pub source: Client,
    pub target: Client,
}

impl Preflight {
    pub fn blocking(&self) -> Vec<&Finding> {
        self.findings.iter().filter(|f| f.level == Level::Blocking).collect()
    }

    /// `Err(Blocked)` listing every blocking finding, or `Ok`.
    pub fn ensure_no_blocking(&self) -> Result<()> {
        let blocking = self.blocking();
        if blocking.is_empty() {
            Ok(())
        } else {
            Err(Error::Blocked(blocking.iter().map(|f| f.one_line()).collect()))
        }
    }
}

/// `pgvshift check`: every finding, including a connection that could not be opened (which
/// `run` and `plan` report as an error instead).
pub async fn check(config: &Config, opts: Options) -> Result<Vec<Finding>> {
    let (source, target) = tokio::join!(
        connect(&config.source, Side::Source),
        connect(&config.target, Side::Target)
    );
    let mut findings = Vec::new();
    for (side, r) in [("source", &source), ("target", &target)] {
        if let Err(e) = r {
            findings.push(Finding::new(Level::Blocking, "connect", side, e.to_string()));
        }
    }
    let (Ok(source), Ok(target)) = (source, target) else {
        return Ok(findings);
    };
    findings.push(Finding::new(
        Level::Ok,
        "connect",
        "source",
        format!("connected to {}", config.source.redacted_url),
    ));
    findings.push(Finding::new(
        Level::Ok,
        "connect",
        "target",
        format!("connected to {}", config.target.redacted_url),
    ));
    let pre = preflight_on(config, opts, source, target).await?;
    findings.extend(pre.findings);
    Ok(findings)
}

/// Connect to both sides and run every check.
pub async fn preflight(config: &Config, opts: Options) -> Result<Preflight> {
    let source = connect(&config.source, Side::Source).await?;
    let target = connect(&config.target, Side::Target).await?;
    preflight_on(config, opts, source, target).await
}

/// Run every check on open connections.
pub async fn preflight_on(config: &Config, opts: Options, source: Client, target: Client) -> Result<Preflight> {
    let slot = &config.replication.slot;
    let mut f = Vec::new();
    catalog::prepare_session(&source)
        .await
        .db(|| "preparing the source session".into())?;
    let progress = state::load_progress(&target, slot)
        .await
        .db(|| "reading pgvshift.progress on the target".into())?;
    let previous = state::load_tables(&target, slot)
        .await
        .db(|| "reading pgvshift.tables on the target".into())?;
    let mode = match &progress {
        None => Mode::Fresh,
        Some(p) if p.phase == Phase::Streaming => Mode::Resume,
        Some(_) => Mode::RestartSnapshot,
    };
    let ours: HashSet<String> = previous.iter().map(|t| t.source_table.clone()).collect();

    let slot_info = slot_info(&source, slot).await?;
    let server = source_server(&source).await?;
    let tserver = target_server(&target).await?;
    check_servers(config, &server, &tserver, slot_info.is_some(), &mut f);
    check_source_role(&server, &mut f);
    if mode != Mode::Resume {
        check_long_transactions(&source, &mut f).await?;
    }

    let publication_tables = publication_tables(&source, &config.replication.publication).await?;
    let mut tables = Vec::new();
    let mut target_state = Vec::new();
    for t in &config.tables {
        let table = match catalog::describe_table(&source, &t.source).await {
            Ok(table) => table,
            Err(CatalogError::NotFound(name)) => {
                let suggestions = similar_tables(&source, &name).await?;
                let mut finding = Finding::new(
                    Level::Blocking,
                    "table_exists",
                    format!("table {name}"),
                    format!("does not exist on the source {}", config.source.redacted_url),
                );
                finding = if suggestions.is_empty() {
                    finding.fix(format!(
                        "correct [[tables]] source = {:?} in {}",
                        name.to_string(),
                        config.path.display()
                    ))
                } else {
                    finding.fix(format!(
                        "did you mean {}? Correct [[tables]] source in {}",
                        suggestions.join(" or "),
                        config.path.display()
                    ))
                };
                f.push(finding);
                continue;
            }
            Err(CatalogError::NotATable { name, relkind }) => {
                f.push(
                    Finding::new(
                        Level::Blocking,
                        "table_exists",
                        format!("table {name}"),
                        format!("is not a plain table (relkind {relkind})"),
                    )
                    .fix("list plain tables only (for a partitioned table, list each partition)"),
                );
                continue;
            }
            Err(CatalogError::Query { table, source }) => {
                return Err(Error::Db {
                    context: format!("reading the catalog of {table}"),
                    source,
                })
            }
        };
        let object = format!("table {}", table.name);
        check_table_privileges(
            config,
            &source,
            &server,
            &table,
            t,
            publication_tables.is_some(),
            &mut f,
        )
        .await?;
        check_replica_identity(config, &table, t, &mut f);
        for p in table.blocking_problems() {
            f.push(Finding::new(Level::Blocking, "column_types", &object, p));
        }
        let map = mapping::map_table(&table, t);
        for p in &map.problems {
            f.push(Finding::new(Level::Blocking, "mapping", &object, p.clone()));
        }
        let st = target_table_state(&target, &map.target).await?;
        check_target_table(
            config,
            opts,
            &target,
            &tserver,
            &map,
            &st,
            ours.contains(&t.source.to_string()),
            mode,
            &mut f,
        )
        .await?;
        target_state.push(st);
        tables.push((table, map));
    }
    // LangChain mode: its two tables instead of [[tables]] (the LangChain specifics are in
    // src/langchain/check.rs).
    let langchain = match &config.langchain {
        Some(lc) => {
            langchain_checks(
                config,
                lc,
                opts,
                mode,
                &source,
                &target,
                &server,
                &tserver,
                publication_tables.is_some(),
                &mut f,
            )
            .await?
        }
        None => None,
    };
    check_target_types(&target, &tserver, &tables, &target_state, &mut f).await?;
    check_target_schemas(
        &target,
        &tables,
        &target_state,
        config.langchain.as_ref().map(|lc| lc.target_schema.as_str()),
        &mut f,
    )
    .await?;
    check_slot_and_publication(
        config,
        &server,
        mode,
        progress.as_ref(),
        &previous,
        slot_info.as_ref(),
        publication_tables.as_ref(),
        &mut f,
    );

    if f.iter().all(|x| x.level != Level::Blocking) && config.langchain.is_none() {
        f.push(Finding::new(
            Level::Ok,
            "tables",
            "tables",
            format!(
                "{} table(s) checked: {}",
                tables.len(),
                tables
                    .iter()
                    .map(|(t, _)| t.name.to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        ));
    }
    Ok(Preflight {
        findings: f,
        mode,
        progress,
        previous,
        inspection: Inspection {
            tables,
            target_state,
            slot: slot_info,
            publication_tables,
            langchain,
        },
        source,
        target,
    })
}

// ---------------------------------------------------------------------------------------------
// Servers and roles
// ---------------------------------------------------------------------------------------------

struct SourceServer {
    wal_level: String,
    max_slots: i32,
    used_slots: i32,
    max_senders: i32,
    used_senders: i32,
    max_slot_wal_keep_size: String,
    superuser: bool,
    replication: bool,
    rds_replication: bool,
    user: String,
    can_create_in_db: bool,
    database: String,
    identity: String,
}

async fn source_server(source: &Client) -> Result<SourceServer> {
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

struct TargetServer {
    user: String,
    vector_version: Option<String>,
    vector_available: Option<String>,
    identity: String,
    extensions: HashSet<String>,
    /// Extensions the target server has installed files for (`pg_available_extensions`).
    available: HashSet<String>,
    /// None: the target role may not read it (it needs pg_read_all_settings).
    shared_preload_libraries: Option<String>,
    /// VectorChord's settings exist: its library was loaded at server start.
    vchord_loaded: bool,
    /// Lantern's operator classes for pgvector's `vector` (created only when pgvector exists
    /// at `CREATE EXTENSION lantern`).
    lantern_vector_opclasses: bool,
}

async fn target_server(target: &Client) -> Result<TargetServer> {
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

fn check_servers(config: &Config, s: &SourceServer, t: &TargetServer, slot_exists: bool, f: &mut Vec<Finding>) {
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

fn check_source_role(s: &SourceServer, f: &mut Vec<Finding>) {
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

async fn check_long_transactions(source: &Client, f: &mut Vec<Finding>) -> Result<()> {
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

// ---------------------------------------------------------------------------------------------
// Source tables
// ---------------------------------------------------------------------------------------------

async fn check_table_privileges(
    config: &Config,
    source: &Client,
    server: &SourceServer,
    table: &Table,
    tc: &crate::config::TableConfig,
    publication_exists: bool,
    f: &mut Vec<Finding>,
) -> Result<()> {
    let object = format!("table {}", table.name);
    let r = source
        .query_one(
            "SELECT has_table_privilege(c.oid, 'SELECT'), pg_has_role(current_user, c.relowner, 'USAGE'), \
                    pg_get_userbyid(c.relowner)::text \
               FROM pg_class c WHERE c.oid = $1",
            &[&table.relid],
        )
        .await
        .db(|| format!("reading privileges on {}", table.name))?;
    let (select, owner, owner_name): (bool, bool, String) = (r.get(0), r.get(1), r.get(2));
    if !select {
        f.push(
            Finding::new(
                Level::Blocking,
                "table_select",
                &object,
                format!("source role {} cannot read it (no SELECT privilege)", server.user),
            )
            .fix(format!(
                "GRANT SELECT ON {} TO {};",
                table.name,
                display_ident(&server.user)
            )),
        );
    }
    if !publication_exists && !owner {
        f.push(
            Finding::new(
                Level::Blocking,
                "publication_owner",
                &object,
                format!(
                    "source role {} does not own it (owner {owner_name}), so it cannot add it to publication {}",
                    server.user, config.replication.publication
                ),
            )
            .fix(format!(
                "have the owner create the publication first: CREATE PUBLICATION {} FOR TABLE {}; (pgvshift uses an existing publication with exactly the configured tables), or GRANT {} TO {};",
                display_ident(&config.replication.publication),
                config.published_tables().iter().map(|t| t.to_string()).collect::<Vec<_>>().join(", "),
                display_ident(&owner_name),
                display_ident(&server.user)
            )),
        );
    }
    if !publication_exists && !server.can_create_in_db && !server.superuser {
        f.push(
            Finding::new(
                Level::Blocking,
                "publication_owner",
                &object,
                format!(
                    "source role {} cannot create publication {} (no CREATE privilege on database {})",
                    server.user, config.replication.publication, server.database
                ),
            )
            .fix(format!(
                "GRANT CREATE ON DATABASE {} TO {};, or create the publication yourself: CREATE PUBLICATION {} FOR TABLE ...",
                display_ident(&server.database),
                display_ident(&server.user),
                display_ident(&config.replication.publication)
            )),
        );
    }
    if tc.replica_identity_full && table.replica_identity != ReplicaIdentity::Full && !owner {
        f.push(
            Finding::new(
                Level::Blocking,
                "replica_identity",
                &object,
                format!(
                    "replica_identity = \"full\" is configured but source role {} does not own the table (owner {owner_name}), so it cannot ALTER it",
                    server.user
                ),
            )
            .fix(format!("as the owner: ALTER TABLE {} REPLICA IDENTITY FULL;", table.name)),
        );
    }
    Ok(())
}

fn check_replica_identity(config: &Config, table: &Table, tc: &crate::config::TableConfig, f: &mut Vec<Finding>) {
    let object = format!("table {}", table.name);
    let ri = match table.replica_identity {
        ReplicaIdentity::Nothing => "NOTHING",
        ReplicaIdentity::Default => "DEFAULT",
        _ => return,
    };
    if table.replica_identity == ReplicaIdentity::Default && !table.primary_key.is_empty() {
        return;
    }
    if tc.replica_identity_full {
        f.push(Finding::new(
            Level::Warning,
            "replica_identity",
            &object,
            format!(
                "has no primary key and REPLICA IDENTITY {ri}: run will execute ALTER TABLE {} REPLICA IDENTITY FULL on the source (replica_identity = \"full\" in the config; it briefly takes an ACCESS EXCLUSIVE lock, and each UPDATE/DELETE then logs the whole old row)",
                table.name
            ),
        ));
        return;
    }
    f.push(
        Finding::new(
            Level::Blocking,
            "replica_identity",
            &object,
            format!(
                "has no primary key and REPLICA IDENTITY {ri}: once it is in a publication, the application's UPDATE and DELETE on it would fail on the source"
            ),
        )
        .fix(format!(
            "add a primary key (ALTER TABLE {} ADD PRIMARY KEY (...)), or set replica_identity = \"full\" on this table in {} so that run executes ALTER TABLE {} REPLICA IDENTITY FULL",
            table.name,
            config.path.display(),
            table.name
        )),
    );
}

/// Up to three existing tables whose names are close to `missing` (for "did you mean").
async fn similar_tables(source: &Client, missing: &QualifiedName) -> Result<Vec<String>> {
    let rows = source
        .query(
            "SELECT n.nspname::text, c.relname::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
              WHERE c.relkind IN ('r', 'p') AND n.nspname NOT IN ('pg_catalog', 'information_schema') \
                AND n.nspname NOT LIKE 'pg\\_toast%' AND n.nspname NOT LIKE 'pg\\_temp%'",
            &[],
        )
        .await
        .db(|| "listing the source's tables".into())?;
    let names: Vec<QualifiedName> = rows
        .iter()
        .map(|r| QualifiedName::new(r.get::<_, String>(0), r.get::<_, String>(1)))
        .collect();
    Ok(closest(missing, &names))
}

/// PURE: the names most similar to `missing` (same name in another schema, different case,
/// typos), best first, at most three.
pub fn closest(missing: &QualifiedName, names: &[QualifiedName]) -> Vec<String> {
    let want = missing.name.to_lowercase();
    let mut scored: Vec<(f64, String)> = names
        .iter()
        .filter_map(|n| {
            let have = n.name.to_lowercase();
            let mut score = strsim::jaro_winkler(&want, &have);
            if n.schema == missing.schema {
                score += 0.02;
            }
            (score >= 0.85 || have == want).then(|| (score, n.to_string()))
        })
        .collect();
    scored.sort_by(|a, b| b.0.total_cmp(&a.0).then_with(|| a.1.cmp(&b.1)));
    scored.into_iter().take(3).map(|(_, n)| n).collect()
}

// ---------------------------------------------------------------------------------------------
// LangChain mode
// ---------------------------------------------------------------------------------------------

/// The checks of LangChain mode: both LangChain tables as source tables (privileges, replica
/// identity), their layout, the collections and their target tables, and (before a snapshot)
/// one pass over the selected rows' ids and metadata.
#[allow(clippy::too_many_arguments)]
async fn langchain_checks(
    config: &Config,
    lc: &crate::langchain::config::LangchainConfig,
    opts: Options,
    mode: Mode,
    source: &Client,
    target: &Client,
    server: &SourceServer,
    tserver: &TargetServer,
    publication_exists: bool,
    f: &mut Vec<Finding>,
) -> Result<Option<crate::langchain::check::LangchainInspection>> {
    use crate::langchain::check as lcc;
    lcc::check_cutover_options(config, lc, f);
    let Some((collection, embedding)) = lcc::source_tables(config, lc, source, f).await? else {
        return Ok(None);
    };
    for table in [&collection, &embedding] {
        let tc = crate::config::TableConfig::new(table.name.clone(), table.name.clone());
        check_table_privileges(config, source, server, table, &tc, publication_exists, f).await?;
        check_replica_identity(config, table, &tc, f);
    }
    let Some((layout, dims)) = lcc::check_layout(lc, &collection, &embedding, f) else {
        return Ok(None);
    };
    lcc::check_cascade(source, lc, f).await?;
    if tserver.vector_version.is_none() {
        f.push(
            Finding::new(
                Level::Blocking,
                "pgvector",
                "target",
                "pgvector is not installed in the target database; the collection tables need it",
            )
            .fix(if tserver.vector_available.is_some() {
                "CREATE EXTENSION vector; in the target database"
            } else {
                "install pgvector 0.7+ on the target server, then CREATE EXTENSION vector;"
            }),
        );
    }
    let recorded = crate::langchain::state::load(target, &config.replication.slot)
        .await
        .db(|| "reading pgvshift.langchain_collections on the target".into())?;
    if mode == Mode::Resume {
        // The collections and their tables are recorded on the target; the stream goes on.
        let collections = recorded
            .collections
            .iter()
            .map(|r| crate::langchain::check::Planned {
                collection: r.collection,
                name: r.name.clone(),
                selected: r.selected,
                table: r.table.clone(),
                rows: r.rows_copied + r.rows_streamed,
            })
            .collect();
        return Ok(Some(crate::langchain::check::LangchainInspection {
            layout,
            dims,
            collections,
            null_collection_rows: recorded.skipped_null_collection,
            targets: Vec::new(),
        }));
    }
    let (found, null_rows) = lcc::collections(source, lc).await?;
    let planned = lcc::plan_collections(lc, &found);
    lcc::check_collections(lc, &planned, null_rows, f);
    let ours: HashSet<QualifiedName> = recorded.collections.iter().filter_map(|c| c.table.clone()).collect();
    let mut targets = Vec::new();
    let embedding_name = embedding.name.clone();
    for p in planned.iter().filter(|p| p.selected) {
        let Some(table) = &p.table else { continue };
        let st = target_table_state(target, table).await?;
        if st.exists {
            let (tt, _) = crate::langchain::ddl::virtual_table(lc, &embedding_name, table, dims, 0, "check");
            check_target_table(
                config,
                opts,
                target,
                tserver,
                &tt.map,
                &st,
                ours.contains(table),
                mode,
                f,
            )
            .await?;
        }
        targets.push((p.collection, st));
    }
    let selected: HashSet<uuid::Uuid> = planned.iter().filter(|p| p.selected).map(|p| p.collection).collect();
    lcc::scan_rows(source, lc, &layout, dims, &selected, f).await?;
    Ok(Some(crate::langchain::check::LangchainInspection {
        layout,
        dims,
        collections: planned,
        null_collection_rows: null_rows,
        targets,
    }))
}

// ---------------------------------------------------------------------------------------------
// Target
// ---------------------------------------------------------------------------------------------

pub async fn target_table_state(target: &Client, name: &QualifiedName) -> Result<TargetTableState> {
    let cols = target
        .query(
            "SELECT a.attname::text, format_type(a.atttypid, a.atttypmod), \
                    a.attnotnull AND NOT a.atthasdef AND a.attgenerated = '' AND a.attidentity = '' \
               FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid \
               JOIN pg_namespace n ON n.oid = c.relnamespace \
              WHERE n.nspname = $1 AND c.relname = $2 AND a.attnum > 0 AND NOT a.attisdropped",
            &[&name.schema, &name.name],
        )
        .await
        .db(|| format!("reading target table {name}"))?;
    if cols.is_empty() {
        return Ok(TargetTableState::default());
    }
    // Read on every preflight (and every reconnection) and for each table after the snapshot:
    // a probe, not a count of a possibly huge table.
    let has_rows: bool = target
        .query_one(&format!("SELECT EXISTS (SELECT 1 FROM {})", name.quoted()), &[])
        .await
        .db(|| format!("reading target table {name}"))?
        .get(0);
    Ok(TargetTableState {
        exists: true,
        has_rows,
        columns: cols.iter().map(|r| r.get(0)).collect(),
        types: cols.iter().map(|r| (r.get(0), r.get(1))).collect(),
        required: cols.iter().filter(|r| r.get::<_, bool>(2)).map(|r| r.get(0)).collect(),
    })
}

/// The exact number of rows of a target table (for messages that report it).
pub async fn count_rows(client: &impl tokio_postgres::GenericClient, name: &QualifiedName) -> Result<i64> {
    Ok(client
        .query_one(&format!("SELECT count(*) FROM {}", name.quoted()), &[])
        .await
        .db(|| format!("counting the rows of target table {name}"))?
        .get(0))
}

/// PURE: a type name without its schema qualification (`extensions.vector(3)` -> `vector(3)`),
/// so a pgvector installed in another schema on the target still compares equal.
fn unqualified(type_sql: &str) -> &str {
    let head_end = type_sql.find('(').unwrap_or(type_sql.len());
    match type_sql[..head_end].rfind('.') {
        Some(dot) if !type_sql[..dot].contains('"') => &type_sql[dot + 1..],
        _ => type_sql,
    }
}

#[allow(clippy::too_many_arguments)]
async fn check_target_table(
    config: &Config,
    opts: Options,
    target: &Client,
    server: &TargetServer,
    map: &TableMap,
    st: &TargetTableState,
    ours: bool,
    mode: Mode,
    f: &mut Vec<Finding>,
) -> Result<()> {
    let object = format!("target table {}", map.target);
    if !st.exists {
        return Ok(());
    }
    let drop_fix = format!(
        "change the target table to match (see `pgvshift plan --config {}` for the expected DDL), or drop it and let pgvshift create it",
        config.path.display()
    );
    for c in map.replicated() {
        match st.types.get(&c.target) {
            None => f.push(
                Finding::new(
                    Level::Blocking,
                    "target_columns",
                    &object,
                    format!(
                        "has no column {} ({} expected, from source column {})",
                        display_ident(&c.target),
                        c.target_type,
                        display_ident(&c.source)
                    ),
                )
                .fix(format!(
                    "ALTER TABLE {} ADD COLUMN {} {}; or {drop_fix}",
                    map.target,
                    display_ident(&c.target),
                    c.target_type
                )),
            ),
            Some(actual) if unqualified(actual) != unqualified(&c.target_type) => {
                if c.conversion.text_output() {
                    f.push(Finding::new(
                        Level::Warning,
                        "target_columns",
                        &object,
                        format!(
                            "column {} is {actual} where pgvshift would create {}: values are sent in text form and the target casts them",
                            display_ident(&c.target),
                            c.target_type
                        ),
                    ));
                } else {
                    f.push(
                        Finding::new(
                            Level::Blocking,
                            "target_columns",
                            &object,
                            format!(
                                "column {} is {actual} on the target but pgvshift writes {} (source column {} is {})",
                                display_ident(&c.target),
                                c.target_type,
                                display_ident(&c.source),
                                c.source_type
                            ),
                        )
                        .fix(format!(
                            "ALTER TABLE {} ALTER COLUMN {} TYPE {}; or {drop_fix}",
                            map.target,
                            display_ident(&c.target),
                            c.target_type
                        )),
                    );
                }
            }
            Some(_) => {}
        }
    }
    let mapped: HashSet<&str> = map.columns.iter().map(|c| c.target.as_str()).collect();
    for extra in st.required.iter().filter(|c| !mapped.contains(c.as_str())) {
        f.push(
            Finding::new(
                Level::Blocking,
                "target_columns",
                &object,
                format!(
                    "column {} is NOT NULL without a default and has no source column, so every insert would fail",
                    display_ident(extra)
                ),
            )
            .fix(format!(
                "ALTER TABLE {} ALTER COLUMN {} DROP NOT NULL; (or give it a DEFAULT)",
                map.target,
                display_ident(extra)
            )),
        );
    }
    let privileges = target
        .query_one(
            &format!(
                "SELECT has_table_privilege({t}::regclass, 'INSERT'), has_table_privilege({t}::regclass, 'UPDATE'), \
                        has_table_privilege({t}::regclass, 'DELETE'), has_table_privilege({t}::regclass, 'TRUNCATE'), \
                        pg_has_role(current_user, (SELECT relowner FROM pg_class WHERE oid = {t}::regclass), 'USAGE')",
                t = quote_literal(&map.target.quoted())
            ),
            &[],
        )
        .await
        .db(|| format!("reading privileges on target table {}", map.target))?;
    let missing: Vec<&str> = ["INSERT", "UPDATE", "DELETE", "TRUNCATE"]
        .iter()
        .enumerate()
        .filter(|(i, _)| !privileges.get::<_, bool>(*i))
        .map(|(_, p)| *p)
        .collect();
    if !missing.is_empty() {
        f.push(
            Finding::new(
                Level::Blocking,
                "target_privilege",
                &object,
                format!("target role {} lacks {} on it", server.user, missing.join(", ")),
            )
            .fix(format!(
                "GRANT {} ON {} TO {};",
                missing.join(", "),
                map.target,
                display_ident(&server.user)
            )),
        );
    }
    let owner: bool = privileges.get(4);
    if !owner && !map.config.index_ddl_only && mode != Mode::Resume {
        f.push(
            Finding::new(
                Level::Blocking,
                "target_privilege",
                &object,
                format!(
                    "target role {} does not own it, so it cannot build its indexes after the copy",
                    server.user
                ),
            )
            .fix(format!(
                "ALTER TABLE {} OWNER TO {};, or set index_ddl_only = true on the table and build the indexes yourself",
                map.target,
                display_ident(&server.user)
            )),
        );
    }
    if st.has_rows && !ours && mode != Mode::Resume {
        let rows = count_rows(target, &map.target).await?;
        if opts.truncate_target {
            f.push(Finding::new(
                Level::Warning,
                "target_rows",
                &object,
                format!("has {rows} row(s): --truncate-target empties it (TRUNCATE) before the copy"),
            ));
        } else {
            f.push(
                Finding::new(
                    Level::Blocking,
                    "target_rows",
                    &object,
                    format!("already has {rows} row(s): pgvshift never appends to existing data"),
                )
                .fix(format!(
                    "empty it yourself (TRUNCATE {}), pass --truncate-target to `pgvshift run` to have it emptied, or choose another target name",
                    map.target
                )),
            );
        }
    }
    Ok(())
}

/// Every type the target DDL uses must exist on the target (pgvector and its version, other
/// extensions' types, user types), and the index builds' extensions must be installed.
async fn check_target_types(
    target: &Client,
    server: &TargetServer,
    tables: &[(Table, TableMap)],
    states: &[TargetTableState],
    f: &mut Vec<Finding>,
) -> Result<()> {
    let mut types: BTreeSet<(String, String)> = BTreeSet::new(); // (type, first table)
    let mut extensions: BTreeSet<(String, String)> = BTreeSet::new();
    for ((table, map), st) in tables.iter().zip(states) {
        if !st.exists {
            for c in &map.columns {
                if !types.iter().any(|(t, _)| *t == c.target_type) {
                    types.insert((c.target_type.clone(), map.target.to_string()));
                }
            }
        }
        if !map.config.index_ddl_only {
            for plan in mapping::index_plan(table, map) {
                if let crate::indexdef::Translation::Create { extension: Some(e), .. } = plan.translation {
                    extensions.insert((e, format!("index {} on {}", plan.name, map.target)));
                }
            }
        }
    }
    for (ty, table) in types {
        let exists = match target.query_one("SELECT to_regtype($1) IS NOT NULL", &[&ty]).await {
            Ok(r) => r.get::<_, bool>(0),
            Err(_) => false,
        };
        if exists {
            continue;
        }
        let base = unqualified(&ty)
            .split('(')
            .next()
            .unwrap_or("")
            .trim_end_matches("[]")
            .to_string();
        let object = format!("target type {ty}");
        let finding = if matches!(base.as_str(), "vector" | "halfvec" | "sparsevec") {
            match (&server.vector_version, &server.vector_available) {
                (Some(v), _) => Finding::new(
                    Level::Blocking,
                    "pgvector",
                    object,
                    format!("pgvector {v} on the target has no type {base} (needed by {table}; halfvec and sparsevec need pgvector 0.7.0 or later)"),
                )
                .fix("install pgvector 0.7+ on the target server, then ALTER EXTENSION vector UPDATE; in the target database"),
                (None, Some(avail)) => Finding::new(
                    Level::Blocking,
                    "pgvector",
                    object,
                    format!("pgvector is not installed in the target database (needed by {table}); version {avail} is available on the server"),
                )
                .fix("CREATE EXTENSION vector; in the target database"),
                (None, None) => Finding::new(
                    Level::Blocking,
                    "pgvector",
                    object,
                    format!("pgvector is not available on the target server (needed by {table})"),
                )
                .fix("install pgvector 0.7+ on the target server (e.g. Debian/Ubuntu package postgresql-NN-pgvector), then CREATE EXTENSION vector;"),
            }
        } else {
            Finding::new(
                Level::Blocking,
                "target_types",
                object,
                format!("does not exist on the target (needed by {table})"),
            )
            .fix("create the type, or the extension that provides it (e.g. CREATE EXTENSION vectors; for PGVecto.rs), in the target database before running")
        };
        f.push(finding);
    }
    for (ext, what) in extensions {
        if matches!(ext.as_str(), "lantern" | "vchord") {
            f.extend(engine_findings(&ext, &what, server));
        } else if !server.extensions.contains(&ext) {
            f.push(
                Finding::new(
                    Level::Blocking,
                    "target_extensions",
                    format!("target extension {ext}"),
                    format!("is not installed in the target database but {what} needs it"),
                )
                .fix(format!("CREATE EXTENSION {ext}; on the target, or set index_ddl_only = true on the table to skip building its indexes")),
            );
        }
    }
    if let Some(v) = &server.vector_version {
        f.push(Finding::new(
            Level::Ok,
            "pgvector",
            "target",
            format!("pgvector {v} installed"),
        ));
    }
    Ok(())
}

/// What Lantern and VectorChord need on the target beyond `CREATE EXTENSION`: VectorChord
/// must be in `shared_preload_libraries` (its library refuses to load otherwise) and Lantern is
/// created after pgvector (it adds its operator classes for `vector` only when pgvector exists).
fn engine_findings(ext: &str, what: &str, server: &TargetServer) -> Vec<Finding> {
    let object = format!("target extension {ext}");
    let installed = server.extensions.contains(ext);
    let available = server.available.contains(ext);
    let mut f = Vec::new();
    match ext {
        "vchord" => {
            let preload: Vec<&str> = server
                .shared_preload_libraries
                .as_deref()
                .unwrap_or("")
                .split(',')
                .map(|l| l.trim().trim_matches('"'))
                .filter(|l| !l.is_empty())
                .collect();
            let preloaded = server.vchord_loaded || preload.iter().any(|l| *l == "vchord" || l.ends_with("/vchord"));
            let preload_sql = match server.shared_preload_libraries {
                Some(_) => format!(
                    "ALTER SYSTEM SET shared_preload_libraries = '{}'",
                    preload.iter().copied().chain(["vchord"]).collect::<Vec<_>>().join(", ")
                ),
                // Unreadable for this role: the user knows (or a superuser can see) the list.
                None => "add vchord to shared_preload_libraries, keeping the libraries it lists (ALTER SYSTEM SET shared_preload_libraries = '<those>, vchord')".into(),
            };
            let steps = format!(
                "{preload_sql}; restart the target server; then CREATE EXTENSION vchord CASCADE; in the target database"
            );
            if !available {
                f.push(
                    Finding::new(
                        Level::Blocking,
                        "target_extensions",
                        object,
                        format!("VectorChord is not installed on the target server but {what} needs it"),
                    )
                    .fix(format!("install VectorChord 1.x on the target server (github.com/tensorchord/VectorChord), then {steps}; or set index_ddl_only = true on the table to skip building its indexes")),
                );
            } else if !preloaded {
                f.push(
                    Finding::new(
                        Level::Blocking,
                        "vchord_preload",
                        object,
                        match &server.shared_preload_libraries {
                            Some(list) => format!("VectorChord must be loaded at server start, but shared_preload_libraries = '{list}' does not include vchord ({what} needs it)"),
                            None => format!("VectorChord must be loaded at server start (shared_preload_libraries), and it is not ({what} needs it)"),
                        },
                    )
                    .fix(steps),
                );
            } else if !installed {
                f.push(
                    Finding::new(
                        Level::Blocking,
                        "target_extensions",
                        object,
                        format!("is not installed in the target database but {what} needs it"),
                    )
                    .fix("CREATE EXTENSION vchord CASCADE; in the target database (CASCADE creates pgvector too if it is missing)"),
                );
            }
        }
        "lantern" => {
            let create = if server.vector_version.is_some() {
                "CREATE EXTENSION lantern;".to_string()
            } else {
                "CREATE EXTENSION vector; CREATE EXTENSION lantern; (pgvector first: Lantern adds its operator classes for vector columns only when pgvector exists)".to_string()
            };
            if !installed {
                let (message, fix) = if available {
                    (
                        format!("is not installed in the target database but {what} needs it"),
                        format!("{create} in the target database"),
                    )
                } else {
                    (
                        format!("Lantern is not installed on the target server but {what} needs it"),
                        format!("install Lantern 0.2+ on the target server (github.com/lanterndata/lantern), then {create} in the target database"),
                    )
                };
                f.push(
                    Finding::new(Level::Blocking, "target_extensions", object, message).fix(format!(
                        "{fix}; or set index_ddl_only = true on the table to skip building its indexes"
                    )),
                );
            } else if server.vector_version.is_some() && !server.lantern_vector_opclasses {
                f.push(
                    Finding::new(
                        Level::Warning,
                        "lantern_order",
                        object,
                        "Lantern was created before pgvector, so it has no operator classes for vector columns (dist_vec_*); the lantern profile indexes real[] columns, which do not need them, but a lantern_hnsw index on a vector column fails",
                    )
                    .fix("DROP EXTENSION lantern; CREATE EXTENSION lantern; in the target database (pgvector is there now), before pgvshift creates lantern_hnsw indexes"),
                );
            }
        }
        _ => {}
    }
    f
}

/// The target role must be able to create the target tables (in their schemas) and pgvshift's
/// own `pgvshift` schema.
async fn check_target_schemas(
    target: &Client,
    tables: &[(Table, TableMap)],
    states: &[TargetTableState],
    langchain_schema: Option<&str>,
    f: &mut Vec<Finding>,
) -> Result<()> {
    let mut schemas: BTreeSet<String> = tables
        .iter()
        .zip(states)
        .filter(|(_, st)| !st.exists)
        .map(|((_, m), _)| m.target.schema.clone())
        .collect();
    schemas.insert("pgvshift".to_string());
    // LangChain mode: tables of collections created while streaming go there too.
    schemas.extend(langchain_schema.map(str::to_string));
    for schema in schemas {
        let r = target
            .query_one(
                "SELECT current_user::text, (SELECT has_schema_privilege(oid, 'CREATE') FROM pg_namespace WHERE nspname = $1), \
                        has_database_privilege(current_database(), 'CREATE'), current_database()::text",
                &[&schema],
            )
            .await
            .db(|| format!("reading privileges on schema {schema} on the target"))?;
        let (user, on_schema, on_db, db): (String, Option<bool>, bool, String) =
            (r.get(0), r.get(1), r.get(2), r.get(3));
        let (ok, fix) = match on_schema {
            Some(ok) => (
                ok,
                format!(
                    "GRANT CREATE ON SCHEMA {} TO {};",
                    display_ident(&schema),
                    display_ident(&user)
                ),
            ),
            None => (
                on_db,
                format!(
                    "GRANT CREATE ON DATABASE {} TO {}; (or create schema {} for it)",
                    display_ident(&db),
                    display_ident(&user),
                    display_ident(&schema)
                ),
            ),
        };
        if !ok {
            let what = if schema == "pgvshift" {
                "pgvshift's state (schema pgvshift: progress committed with the data)".to_string()
            } else {
                "the target tables".to_string()
            };
            f.push(
                Finding::new(
                    Level::Blocking,
                    "target_privilege",
                    format!("target schema {}", display_ident(&schema)),
                    format!(
                        "target role {user} cannot create tables in it{} for {what}",
                        if on_schema.is_none() {
                            " (it does not exist and the role cannot create schemas)"
                        } else {
                            ""
                        }
                    ),
                )
                .fix(fix),
            );
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Slot, publication and progress
// ---------------------------------------------------------------------------------------------

async fn slot_info(source: &Client, slot: &str) -> Result<Option<SlotInfo>> {
    let row = source
        .query_opt(
            "SELECT plugin::text, database::text, active_pid, wal_status, \
                    pg_wal_lsn_diff(pg_current_wal_lsn(), restart_lsn)::bigint \
               FROM pg_replication_slots WHERE slot_name = $1",
            &[&slot],
        )
        .await
        .db(|| "reading pg_replication_slots on the source".into())?;
    Ok(row.map(|r| SlotInfo {
        plugin: r.get(0),
        database: r.get(1),
        active_pid: r.get(2),
        wal_status: r.get(3),
        retained_bytes: r.get(4),
    }))
}

pub async fn publication_tables(source: &Client, publication: &str) -> Result<Option<Vec<QualifiedName>>> {
    let exists = source
        .query_opt("SELECT 1 FROM pg_publication WHERE pubname = $1", &[&publication])
        .await
        .db(|| "reading pg_publication on the source".into())?
        .is_some();
    if !exists {
        return Ok(None);
    }
    let rows = source
        .query(
            "SELECT schemaname::text, tablename::text FROM pg_publication_tables WHERE pubname = $1",
            &[&publication],
        )
        .await
        .db(|| "reading pg_publication_tables on the source".into())?;
    let mut names: Vec<QualifiedName> = rows
        .iter()
        .map(|r| QualifiedName::new(r.get::<_, String>(0), r.get::<_, String>(1)))
        .collect();
    names.sort();
    Ok(Some(names))
}

#[allow(clippy::too_many_arguments)]
fn check_slot_and_publication(
    config: &Config,
    server: &SourceServer,
    mode: Mode,
    progress: Option<&Progress>,
    previous: &[TableState],
    slot: Option<&SlotInfo>,
    publication_tables: Option<&Vec<QualifiedName>>,
    f: &mut Vec<Finding>,
) {
    let name = &config.replication.slot;
    let object = format!("slot {name}");
    let cleanup = format!("pgvshift cleanup --config {}", config.path.display());
    if let Some(s) = slot {
        let foreign =
            s.plugin.as_deref() != Some("pgoutput") || s.database.as_deref() != Some(server.database.as_str());
        if foreign {
            f.push(
                Finding::new(
                    Level::Blocking,
                    "slot",
                    &object,
                    format!(
                        "exists on the source but is not a pgoutput slot of database {} (plugin {}, database {}): it belongs to something else",
                        server.database,
                        s.plugin.as_deref().unwrap_or("none (physical)"),
                        s.database.as_deref().unwrap_or("none")
                    ),
                )
                .fix("choose another [replication] slot name; do not drop a slot you did not create"),
            );
        } else if mode == Mode::Fresh {
            f.push(
                Finding::new(
                    Level::Blocking,
                    "slot",
                    &object,
                    "exists on the source but the target has no progress for it: it was not made by this configuration's run (or the target's pgvshift schema was removed)",
                )
                .fix(format!("if it is left over from an earlier pgvshift run, remove it: {cleanup} (or SELECT pg_drop_replication_slot('{name}') on the source); otherwise choose another [replication] slot name")),
            );
        } else if mode == Mode::Resume && s.wal_status.as_deref() == Some("lost") {
            f.push(
                Finding::new(
                    Level::Blocking,
                    "slot",
                    &object,
                    format!(
                        "was invalidated by the source (wal_status = lost: it fell behind more than max_slot_wal_keep_size), so changes after {} are gone from it: a fresh snapshot is required",
                        progress.and_then(|p| p.applied_lsn).unwrap_or_default()
                    ),
                )
                .fix(format!("{cleanup} --yes, then `pgvshift run --config {} --truncate-target` to copy again", config.path.display())),
            );
        } else if let Some(pid) = s.active_pid {
            // Another run of this configuration, or our own previous session that the server
            // has not noticed is gone yet (after a lost connection): starting the stream waits
            // up to 60 s for it to be released, and the target's slot lock keeps two appliers
            // from ever running at once.
            f.push(Finding::new(
                Level::Warning,
                "slot",
                &object,
                format!("is in use by the source backend pid {pid}: run waits up to 60 s for it to be released (stop any other `pgvshift run` of this configuration)"),
            ));
        } else if let Some(bytes) = s.retained_bytes {
            let level = match config.replication.warn_retained_wal {
                Some(w) if bytes as u64 > w => Level::Warning,
                _ => Level::Ok,
            };
            f.push(Finding::new(
                level,
                "retained_wal",
                &object,
                format!("retains {} of WAL on the source", human_bytes(bytes)),
            ));
        }
    } else if mode == Mode::Resume {
        f.push(
            Finding::new(
                Level::Blocking,
                "slot",
                &object,
                format!(
                    "no longer exists on the source, so changes since {} are lost to it: a fresh snapshot is required",
                    progress.and_then(|p| p.applied_lsn).unwrap_or_default()
                ),
            )
            .fix(format!(
                "{cleanup} --yes, then `pgvshift run --config {} --truncate-target`",
                config.path.display()
            )),
        );
    }
    if mode == Mode::Resume {
        let recorded: BTreeSet<&str> = previous.iter().map(|t| t.source_table.as_str()).collect();
        let configured: Vec<String> = config.tables.iter().map(|t| t.source.to_string()).collect();
        let configured: BTreeSet<&str> = configured.iter().map(String::as_str).collect();
        if recorded != configured {
            f.push(
                Finding::new(
                    Level::Blocking,
                    "tables",
                    &object,
                    format!(
                        "the configured tables ({}) differ from the ones it was started with ({}); adding or removing tables needs a new snapshot",
                        configured.iter().copied().collect::<Vec<_>>().join(", "),
                        recorded.iter().copied().collect::<Vec<_>>().join(", ")
                    ),
                )
                .fix(format!("restore the table list, or {cleanup} and `pgvshift run --truncate-target`")),
            );
        }
    }
    let wanted: Vec<QualifiedName> = {
        let mut w: Vec<QualifiedName> = config.published_tables();
        w.sort();
        w
    };
    match publication_tables {
        Some(existing) if *existing != wanted => f.push(
            Finding::new(
                Level::Blocking,
                "publication",
                format!("publication {}", config.replication.publication),
                format!(
                    "exists on the source with other tables ({}) than the configuration lists ({})",
                    if existing.is_empty() { "none".to_string() } else { existing.iter().map(|t| t.to_string()).collect::<Vec<_>>().join(", ") },
                    wanted.iter().map(|t| t.to_string()).collect::<Vec<_>>().join(", ")
                ),
            )
            .fix(if progress.is_some_and(|p| p.created_publication) {
                cleanup.clone()
            } else {
                format!(
                    "DROP PUBLICATION {}; on the source if nothing else uses it, or name another publication in [replication]",
                    display_ident(&config.replication.publication)
                )
            }),
        ),
        Some(_) => f.push(Finding::new(
            Level::Ok,
            "publication",
            format!("publication {}", config.replication.publication),
            "exists with exactly the configured tables",
        )),
        None => {}
    }
}

pub fn human_bytes(b: i64) -> String {
    let units = ["B", "kB", "MB", "GB", "TB"];
    let mut v = b as f64;
    let mut u = 0;
    while v.abs() >= 1024.0 && u + 1 < units.len() {
        v /= 1024.0;
        u += 1;
    }
    format!("{v:.1} {}", units[u])
}

/// Human-readable report for `pgvshift check`.
pub fn render(findings: &[Finding]) -> String {
    let mut out = String::new();
    let mut sorted: Vec<&Finding> = findings.iter().collect();
    sorted.sort_by_key(|f| std::cmp::Reverse(f.level));
    for f in &sorted {
        let tag = match f.level {
            Level::Ok => "ok      ",
            Level::Warning => "WARNING ",
            Level::Blocking => "BLOCKING",
        };
        out.push_str(&format!("{tag} [{}] {}: {}\n", f.check, f.object, f.message));
        if let Some(fix) = &f.fix {
            out.push_str(&format!("         fix: {fix}\n"));
        }
    }
    let count = |l: Level| findings.iter().filter(|f| f.level == l).count();
    out.push_str(&format!(
        "\n{} ok, {} warning(s), {} blocking{}\n",
        count(Level::Ok),
        count(Level::Warning),
        count(Level::Blocking),
        if count(Level::Blocking) > 0 {
            ": `pgvshift run` would refuse to start; nothing was changed"
        } else {
            ": ready to run"
        }
    ));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(s: &str, n: &str) -> QualifiedName {
        QualifiedName::new(s.to_string(), n.to_string())
    }

    #[test]
    fn closest_names() {
        let names = vec![
            q("public", "items"),
            q("app", "items"),
            q("public", "item_tags"),
            q("public", "orders"),
            q("public", "Items2"),
        ];
        let got = closest(&q("public", "itms"), &names);
        assert_eq!(got.first().map(String::as_str), Some("public.items"), "{got:?}");
        assert!(got.contains(&"app.items".to_string()), "{got:?}");
        assert!(!got.contains(&"public.orders".to_string()));
        assert!(closest(&q("public", "zzz"), &names).is_empty());
        // Same name in another schema is always suggested.
        assert_eq!(
            closest(&q("sales", "orders"), &names),
            vec!["public.orders".to_string()]
        );
    }

    #[test]
    fn unqualified_types() {
        assert_eq!(unqualified("extensions.vector(3)"), "vector(3)");
        assert_eq!(unqualified("vector(3)"), "vector(3)");
        assert_eq!(unqualified("numeric(10,2)"), "numeric(10,2)");
        assert_eq!(unqualified("timestamp with time zone"), "timestamp with time zone");
        assert_eq!(unqualified("real[]"), "real[]");
    }

    #[test]
    fn one_line_and_render() {
        let f = Finding::new(Level::Blocking, "wal_level", "source", "wal_level = replica")
            .fix("ALTER SYSTEM SET wal_level = logical");
        assert_eq!(
            f.one_line(),
            "source: wal_level = replica. Fix: ALTER SYSTEM SET wal_level = logical"
        );
        let text = render(&[Finding::new(Level::Ok, "connect", "source", "connected"), f]);
        assert!(
            text.starts_with("BLOCKING [wal_level] source: wal_level = replica\n         fix: ALTER SYSTEM"),
            "{text}"
        );
        assert!(
            text.contains("1 ok, 0 warning(s), 1 blocking: `pgvshift run` would refuse to start"),
            "{text}"
        );
    }
}
