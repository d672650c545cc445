//! The source tables: privileges, replica identity, and a missing table's likely names.

use tokio_postgres::Client;

use crate::config::Config;
use crate::error::{DbContext, Result};
use crate::schema::catalog::{ReplicaIdentity, Table};
use crate::sql::{display_ident, QualifiedName};

use super::finding::{Finding, Level};
use super::servers::*;

pub(super) async fn check_table_privileges(
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

pub(super) fn check_replica_identity(
    config: &Config,
    table: &Table,
    tc: &crate::config::TableConfig,
    f: &mut Vec<Finding>,
) {
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
pub(super) async fn similar_tables(source: &Client, missing: &QualifiedName) -> Result<Vec<String>> {
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
}
