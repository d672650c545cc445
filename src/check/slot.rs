//! The slot, the publication and this slot's progress on the target: ours? invalidated? in use?

use std::collections::BTreeSet;

use tokio_postgres::Client;

use crate::apply::state::{Progress, TableState};
use crate::config::{human_bytes, Config};
use crate::error::{DbContext, Result};
use crate::source::slot::SlotInfo;
use crate::sql::{display_ident, QualifiedName};

use super::finding::{Finding, Level};
use super::preflight::Mode;
use super::servers::*;

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
pub(super) fn check_slot_and_publication(
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
