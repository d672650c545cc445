//! The read-only and maintenance verbs: `plan`, `status`, `cleanup`.

use std::collections::HashSet;
use std::io::{IsTerminal, Write};

use serde::Serialize;

use crate::config::Config;
use crate::error::{DbContext, Error, Result};
use crate::pg::{connect, Side};
use crate::run::{drop_slot, inspect};
use crate::schema;
use crate::sql::quote_ident;
use crate::state::{self, Phase};

/// `pgvshift plan`: what `run` would do, and any blocking problem. Changes nothing.
/// Returns the text to print; `Err(Blocked)` when a problem blocks the run.
pub async fn plan(config: &Config) -> Result<String> {
    let source = connect(&config.source, Side::Source).await?;
    let target = connect(&config.target, Side::Target).await?;
    let ours: HashSet<String> = state::load_tables(&target, &config.replication.slot)
        .await
        .db(|| "reading pgvshift.tables on the target".into())?
        .into_iter()
        .map(|t| t.source_table)
        .collect();
    let ins = inspect(config, &source, &target, &ours).await?;
    let mut out = String::new();
    out.push_str(&format!(
        "source {}\ntarget {}\nslot {} ({}), publication {} ({})\n",
        config.source.redacted_url,
        config.target.redacted_url,
        config.replication.slot,
        if ins.slot_exists { "exists" } else { "will be created" },
        config.replication.publication,
        match &ins.publication_tables {
            None => "will be created".to_string(),
            Some(t) => format!("exists with {} table(s)", t.len()),
        }
    ));
    for ((table, map), st) in ins.tables.iter().zip(&ins.target_state) {
        let tname = &map.target;
        out.push_str(&format!(
            "\ntable {} -> {} (profile {})\n  estimated rows {}, size {}\n  replica identity {:?}, primary key ({})\n  columns (source type -> target type: how values move):\n",
            table.name,
            tname,
            map.profile,
            table.estimated_rows,
            human_bytes(table.total_bytes),
            table.replica_identity,
            table.primary_key.iter().map(|c| quote_ident(c)).collect::<Vec<_>>().join(", ")
        ));
        for c in &map.columns {
            let renamed = if c.source != c.target {
                format!(" as {}", quote_ident(&c.target))
            } else {
                String::new()
            };
            out.push_str(&format!(
                "    {:<24} {} -> {}{}{}: {}\n",
                quote_ident(&c.source),
                c.source_type,
                c.target_type,
                if c.not_null { " NOT NULL" } else { "" },
                renamed,
                if c.is_generated() {
                    "generated on the target, not copied"
                } else {
                    &c.how
                }
            ));
        }
        for c in &map.columns {
            if let Some(note) = crate::mapping::index_limit_note(c) {
                out.push_str(&format!("      note: {note}\n"));
            }
        }
        for c in &map.excluded {
            out.push_str(&format!(
                "    {:<24} excluded (not copied or streamed)\n",
                quote_ident(c)
            ));
        }
        if st.exists {
            out.push_str(&format!(
                "  target table exists ({}): no DDL\n",
                if st.has_rows { "has rows" } else { "empty" }
            ));
        } else {
            out.push_str("  target DDL:\n");
            if let Some(s) = schema::create_schema_sql(tname) {
                out.push_str(&format!("    {s};\n"));
            }
            for line in schema::create_table_sql(map).lines() {
                out.push_str(&format!("    {line}\n"));
            }
        }
        let plans = crate::mapping::index_plan(table, map);
        if plans.is_empty() {
            out.push_str("  indexes after the copy: none\n");
        } else {
            out.push_str(&format!(
                "  indexes after the copy{}:\n",
                if map.config.index_ddl_only {
                    " (index_ddl_only: printed, not built)"
                } else {
                    ""
                }
            ));
            let mut extensions = std::collections::BTreeSet::new();
            for p in plans {
                match p.translation {
                    crate::indexdef::Translation::Create { sql, notes, extension } => {
                        out.push_str(&format!("    {sql};\n"));
                        for n in notes {
                            out.push_str(&format!("      note: {n}\n"));
                        }
                        extensions.extend(extension);
                    }
                    crate::indexdef::Translation::Skip { reason } => out.push_str(&format!("    skipped: {reason}\n")),
                }
            }
            if !extensions.is_empty() {
                out.push_str(&format!(
                    "  extensions the target needs for these indexes: {}\n",
                    extensions.into_iter().collect::<Vec<_>>().join(", ")
                ));
            }
        }
    }
    if ins.problems.is_empty() {
        out.push_str("\nno blocking problems\n");
        Ok(out)
    } else {
        print!("{out}");
        Err(Error::Blocked(ins.problems))
    }
}

fn human_bytes(b: i64) -> String {
    let units = ["B", "kB", "MB", "GB", "TB"];
    let mut v = b as f64;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < units.len() {
        v /= 1024.0;
        u += 1;
    }
    format!("{v:.1} {}", units[u])
}

/// `pgvshift status` as data (the `--json` keys are these field names).
#[derive(Debug, Serialize)]
pub struct Status {
    /// `not_started`, `snapshot`, `streaming` or `stopped`.
    pub phase: String,
    pub slot: String,
    pub tables: Vec<state::TableState>,
    pub applied_lsn: Option<String>,
    pub confirmed_flush_lsn: Option<String>,
    pub source_current_lsn: Option<String>,
    pub lag_bytes: Option<i64>,
    pub seconds_since_last_applied_commit: Option<f64>,
    pub slot_active: bool,
}

pub async fn status(config: &Config) -> Result<Status> {
    let slot = &config.replication.slot;
    let target = connect(&config.target, Side::Target).await?;
    let source = connect(&config.source, Side::Source).await?;
    let progress = state::load_progress(&target, slot)
        .await
        .db(|| "reading pgvshift.progress on the target".into())?;
    let tables = state::load_tables(&target, slot)
        .await
        .db(|| "reading pgvshift.tables on the target".into())?;
    let slot_row = source
        .query_opt(
            "SELECT active, confirmed_flush_lsn::text FROM pg_replication_slots WHERE slot_name = $1",
            &[slot],
        )
        .await
        .db(|| "reading pg_replication_slots on the source".into())?;
    let current: String = source
        .query_one("SELECT pg_current_wal_lsn()::text", &[])
        .await
        .db(|| "reading pg_current_wal_lsn() on the source".into())?
        .get(0);
    let (slot_active, confirmed) = slot_row
        .map(|r| (r.get::<_, bool>(0), r.get::<_, Option<String>>(1)))
        .unwrap_or((false, None));
    let applied = progress.as_ref().and_then(|p| p.applied_lsn);
    let lag = match (applied, current.parse::<crate::Lsn>()) {
        (Some(a), Ok(c)) => Some(c.0.saturating_sub(a.0) as i64),
        _ => None,
    };
    // The slot is held by a session only while streaming; during the snapshot (copy, then
    // index builds) the run's tagged session on the target shows that it is under way.
    let running: bool = target
        .query_one(
            "SELECT EXISTS (SELECT 1 FROM pg_stat_activity WHERE application_name = $1)",
            &[&state::run_application_name(slot)],
        )
        .await
        .db(|| "reading pg_stat_activity on the target".into())?
        .get(0);
    let phase = match &progress {
        None => "not_started",
        Some(p) if p.phase == Phase::Snapshot && running => "snapshot",
        Some(p) if p.phase == Phase::Streaming && slot_active => "streaming",
        Some(_) => "stopped",
    };
    Ok(Status {
        phase: phase.to_string(),
        slot: slot.clone(),
        tables,
        applied_lsn: applied.map(|l| l.to_string()),
        confirmed_flush_lsn: confirmed,
        source_current_lsn: Some(current),
        lag_bytes: lag,
        seconds_since_last_applied_commit: progress.and_then(|p| p.last_applied_age_secs),
        slot_active,
    })
}

pub fn render_status(s: &Status) -> String {
    let mut out = format!(
        "phase: {}\nslot: {} ({})\napplied_lsn: {}\nconfirmed_flush_lsn: {}\nsource_current_lsn: {}\nlag_bytes: {}\nseconds_since_last_applied_commit: {}\ntables:\n",
        s.phase,
        s.slot,
        if s.slot_active { "active" } else { "inactive" },
        s.applied_lsn.as_deref().unwrap_or("-"),
        s.confirmed_flush_lsn.as_deref().unwrap_or("-"),
        s.source_current_lsn.as_deref().unwrap_or("-"),
        s.lag_bytes.map(|v| v.to_string()).unwrap_or_else(|| "-".into()),
        s.seconds_since_last_applied_commit.map(|v| format!("{v:.1}")).unwrap_or_else(|| "-".into()),
    );
    for t in &s.tables {
        out.push_str(&format!(
            "  {} -> {}.{}: {} ({} rows copied)\n",
            t.source_table,
            quote_ident(&t.target_schema),
            quote_ident(&t.target_name),
            t.state,
            t.rows_copied
        ));
    }
    out
}

/// `pgvshift cleanup`: drop the slot, the publication if pgvshift created it, and the state on
/// the target. User data (the target tables) is left alone.
pub async fn cleanup(config: &Config, yes: bool) -> Result<Vec<String>> {
    let slot = &config.replication.slot;
    let source = connect(&config.source, Side::Source).await?;
    let target = connect(&config.target, Side::Target).await?;
    let progress = state::load_progress(&target, slot)
        .await
        .db(|| "reading pgvshift.progress".into())?;
    let slot_exists = source
        .query_opt("SELECT 1 FROM pg_replication_slots WHERE slot_name = $1", &[slot])
        .await
        .db(|| "reading pg_replication_slots".into())?
        .is_some();
    let drop_publication = progress.as_ref().is_some_and(|p| p.created_publication);
    let mut actions = Vec::new();
    if slot_exists {
        actions.push(format!("drop replication slot {slot} on the source"));
    }
    if drop_publication {
        actions.push(format!(
            "drop publication {} on the source (pgvshift created it)",
            config.replication.publication
        ));
    } else if progress.is_none() {
        actions.push(format!(
            "leave publication {} alone (no record that pgvshift created it)",
            config.replication.publication
        ));
    }
    if state::schema_exists(&target).await.db(|| "reading the target".into())? {
        actions.push(format!("remove slot {slot}'s progress from the pgvshift schema on the target (the schema itself once no other slot uses it)"));
    }
    if actions.is_empty() {
        actions.push("nothing to clean up".into());
        return Ok(actions);
    }
    if !yes {
        if std::io::stdin().is_terminal() {
            eprintln!(
                "pgvshift cleanup will:\n{}",
                actions.iter().map(|a| format!("  - {a}\n")).collect::<String>()
            );
            eprint!("proceed? type yes: ");
            let _ = std::io::stderr().flush();
            let mut answer = String::new();
            let _ = std::io::stdin().read_line(&mut answer);
            if answer.trim() != "yes" {
                return Err(Error::Runtime("cleanup cancelled; nothing was changed".into()));
            }
        } else {
            return Err(Error::Usage(format!(
                "cleanup would: {}. Pass --yes to do it (stdin is not a terminal to ask)",
                actions.join("; ")
            )));
        }
    }
    if slot_exists {
        drop_slot(&source, slot).await?;
    }
    if drop_publication {
        source
            .batch_execute(&format!(
                "DROP PUBLICATION IF EXISTS {}",
                quote_ident(&config.replication.publication)
            ))
            .await
            .db(|| "dropping the publication".into())?;
    }
    if state::schema_exists(&target).await.db(|| "reading the target".into())? {
        state::forget_slot(&target, slot)
            .await
            .db(|| "removing progress".into())?;
        let others: i64 = target
            .query_one("SELECT count(*) FROM pgvshift.progress", &[])
            .await
            .db(|| "reading pgvshift.progress".into())?
            .get(0);
        if others == 0 {
            state::drop_schema(&target)
                .await
                .db(|| "dropping the pgvshift schema".into())?;
        }
    }
    Ok(actions)
}
