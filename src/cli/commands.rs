//! The read-only verbs: `plan` and `status` (`cleanup` is in `run/cleanup.rs`).

use serde::Serialize;

use crate::apply::state::{self, Phase};
use crate::check;
use crate::config::human_bytes;
use crate::config::Config;
use crate::config::Side;
use crate::error::{DbContext, Result};
use crate::schema::ddl;
use crate::source::connect;
use crate::source::slot::{current_lsn, slot_info};
use crate::sql::quote_ident;

/// `pgvshift plan`: what `run` would do, and any blocking problem. Changes nothing.
/// Returns the text to print; `Err(Blocked)` when a problem blocks the run.
pub async fn plan(config: &Config) -> Result<String> {
    let pre = check::preflight(config, check::Options::default()).await?;
    let ins = &pre.inspection;
    let mut out = String::new();
    out.push_str(&format!(
        "source {}\ntarget {}\nslot {} ({}), publication {} ({})\n",
        config.source.redacted_url,
        config.target.redacted_url,
        config.replication.slot,
        if ins.slot_exists() { "exists" } else { "will be created" },
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
            if let Some(note) = crate::schema::mapping::index_limit_note(c) {
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
            if let Some(s) = ddl::create_schema_sql(tname) {
                out.push_str(&format!("    {s};\n"));
            }
            for line in ddl::create_table_sql(map).lines() {
                out.push_str(&format!("    {line}\n"));
            }
        }
        let plans = crate::schema::mapping::index_plan(table, map);
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
                    crate::translate::index::Translation::Create { sql, notes, extension } => {
                        out.push_str(&format!("    {sql};\n"));
                        for n in notes {
                            out.push_str(&format!("      note: {n}\n"));
                        }
                        extensions.extend(extension);
                    }
                    crate::translate::index::Translation::Skip { reason } => {
                        out.push_str(&format!("    skipped: {reason}\n"))
                    }
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
    if let (Some(lc), Some(li)) = (&config.langchain, &ins.langchain) {
        out.push_str(&crate::langchain::commands::plan_section(
            lc,
            li,
            pre.mode == check::Mode::Resume,
        ));
    }
    let warnings: Vec<&check::Finding> = pre
        .findings
        .iter()
        .filter(|f| f.level == check::Level::Warning)
        .collect();
    for w in &warnings {
        out.push_str(&format!("\nwarning: {}", w.one_line()));
    }
    if pre.blocking().is_empty() {
        out.push_str("\nno blocking problems\n");
        Ok(out)
    } else {
        print!("{out}");
        Err(pre.ensure_no_blocking().expect_err("blocking findings"))
    }
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
    /// Seconds since the source committed the last applied transaction (or since the stream
    /// last confirmed it was idle and caught up).
    pub lag_seconds: Option<f64>,
    pub seconds_since_last_applied_commit: Option<f64>,
    pub slot_active: bool,
    /// WAL the slot holds back on the source: `pg_current_wal_lsn() - restart_lsn`.
    pub retained_wal_bytes: Option<i64>,
    /// `pg_replication_slots.wal_status` (`reserved`, `extended`, `unreserved`, `lost`).
    pub wal_status: Option<String>,
    /// While the snapshot runs: seconds since it started (its slot holds WAL and its exported
    /// snapshot holds back vacuum on the source for that long).
    pub snapshot_age_secs: Option<f64>,
    /// LangChain mode: the collections, their tables, and the rows skipped.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub langchain: Option<crate::langchain::state::SlotState>,
}

pub async fn status(config: &Config) -> Result<Status> {
    let slot = &config.replication.slot;
    let target = connect(&config.target, Side::Target).await?;
    let source = connect(&config.source, Side::Source).await?;
    let progress = state::progress(&target, slot).await?;
    let tables = state::load_tables(&target, slot)
        .await
        .db(|| "reading pgvshift.tables on the target".into())?;
    let slot_row = slot_info(&source, slot).await?;
    let current = current_lsn(&source).await?;
    let (slot_active, confirmed, retained, wal_status) = slot_row
        .map(|s| (s.active, s.confirmed_flush_lsn, s.retained_bytes, s.wal_status))
        .unwrap_or((false, None, None, None));
    let applied = progress.as_ref().and_then(|p| p.applied_lsn);
    let lag = applied.map(|a| current.0.saturating_sub(a.0) as i64);
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
        source_current_lsn: Some(current.to_string()),
        lag_bytes: lag,
        lag_seconds: progress.as_ref().and_then(|p| p.lag_secs),
        seconds_since_last_applied_commit: progress.as_ref().and_then(|p| p.last_applied_age_secs),
        slot_active,
        retained_wal_bytes: retained,
        wal_status,
        snapshot_age_secs: progress
            .as_ref()
            .filter(|p| p.phase == Phase::Snapshot && phase == "snapshot")
            .and_then(|p| p.snapshot_age_secs),
        langchain: match &config.langchain {
            Some(_) => Some(
                crate::langchain::state::load(&target, slot)
                    .await
                    .db(|| "reading pgvshift.langchain on the target".into())?,
            ),
            None => None,
        },
    })
}

pub fn render_status(s: &Status) -> String {
    let mut out = format!(
        "phase: {}\nslot: {} ({})\napplied_lsn: {}\nconfirmed_flush_lsn: {}\nsource_current_lsn: {}\nlag_bytes: {}\nlag_seconds: {}\nseconds_since_last_applied_commit: {}\nretained_wal: {}{}\n{}tables:\n",
        s.phase,
        s.slot,
        if s.slot_active { "active" } else { "inactive" },
        s.applied_lsn.as_deref().unwrap_or("-"),
        s.confirmed_flush_lsn.as_deref().unwrap_or("-"),
        s.source_current_lsn.as_deref().unwrap_or("-"),
        s.lag_bytes.map(|v| v.to_string()).unwrap_or_else(|| "-".into()),
        s.lag_seconds.map(|v| format!("{v:.1}")).unwrap_or_else(|| "-".into()),
        s.seconds_since_last_applied_commit.map(|v| format!("{v:.1}")).unwrap_or_else(|| "-".into()),
        s.retained_wal_bytes.map(human_bytes).unwrap_or_else(|| "-".into()),
        s.wal_status.as_ref().map(|w| format!(" (wal_status {w})")).unwrap_or_default(),
        s.snapshot_age_secs
            .map(|a| format!("snapshot running for {a:.0} s (holds back WAL recycling and vacuum on the source)\n"))
            .unwrap_or_default(),
    );
    for t in &s.tables {
        out.push_str(&format!(
            "  {} -> {}.{}: {} ({} rows copied; applied since: {} inserts, {} updates, {} deletes, {} truncates)\n",
            t.source_table,
            quote_ident(&t.target_schema),
            quote_ident(&t.target_name),
            t.state,
            t.rows_copied,
            t.inserts,
            t.updates,
            t.deletes,
            t.truncates
        ));
    }
    if let Some(lc) = &s.langchain {
        out.push_str(&crate::langchain::commands::render_status(lc));
    }
    out
}
