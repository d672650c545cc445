//! `pgvshift cleanup` (and `cutover --drop-slot`): undo what `run` set up on both servers.

use std::io::{IsTerminal, Write};

use crate::apply::state;
use crate::config::{Config, Side};
use crate::error::{DbContext, Error, Result};
use crate::source::connect;
use crate::source::slot::{drop_slot, slot_info};
use crate::sql::quote_ident;

/// `pgvshift cleanup`: drop the slot, the publication if pgvshift created it, and the state on
/// the target. User data (the target tables) is left alone. Also finds what a crashed earlier
/// run of this configuration left behind when the target has no record of it: a pgoutput slot
/// of this name in the source database, and a publication carrying pgvshift's comment for this
/// slot. A slot of another plugin or database, or a publication without that mark, is never
/// dropped.
pub async fn cleanup(config: &Config, yes: bool) -> Result<Vec<String>> {
    let slot = &config.replication.slot;
    let publication = &config.replication.publication;
    let source = connect(&config.source, Side::Source).await?;
    let target = connect(&config.target, Side::Target).await?;
    let progress = state::progress(&target, slot).await?;
    let slot_row = slot_info(&source, slot).await?;
    let publication_comment: Option<Option<String>> = source
        .query_opt(
            "SELECT obj_description(oid, 'pg_publication') FROM pg_publication WHERE pubname = $1",
            &[publication],
        )
        .await
        .db(|| "reading pg_publication".into())?
        .map(|r| r.get(0));
    let mut actions = Vec::new();
    let mut drop_slot_too = false;
    if let Some(s) = &slot_row {
        let (plugin, database) = (&s.plugin, &s.database);
        if plugin.as_deref() != Some("pgoutput") || s.this_database != Some(true) {
            actions.push(format!(
                "leave replication slot {slot} alone: it is not a pgoutput slot of this database (plugin {}, database {}), so pgvshift did not create it",
                plugin.as_deref().unwrap_or("none"),
                database.as_deref().unwrap_or("none")
            ));
        } else if progress.is_some() {
            actions.push(format!("drop replication slot {slot} on the source"));
            drop_slot_too = true;
        } else {
            actions.push(format!(
                "drop replication slot {slot} on the source (the target has no progress for it: left over from an earlier run of this configuration)"
            ));
            drop_slot_too = true;
        }
    }
    let marked = publication_comment
        .as_ref()
        .is_some_and(|c| c.as_deref() == Some(state::publication_comment(slot).as_str()));
    let drop_publication =
        publication_comment.is_some() && (progress.as_ref().is_some_and(|p| p.created_publication) || marked);
    if drop_publication {
        actions.push(format!(
            "drop publication {publication} on the source (pgvshift created it)"
        ));
    } else if publication_comment.is_some() {
        actions.push(format!(
            "leave publication {publication} alone (no record that pgvshift created it)"
        ));
    }
    if state::schema_exists(&target).await.db(|| "reading the target".into())? && progress.is_some() {
        actions.push(format!("remove slot {slot}'s progress from the pgvshift schema on the target (the schema itself once no other slot uses it)"));
    }
    if !drop_slot_too && !drop_publication && progress.is_none() {
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
    if drop_slot_too {
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
        crate::langchain::state::forget(&target, slot)
            .await
            .db(|| "removing the LangChain routes".into())?;
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
