//! The target: its privileges, pgvector and types, and each existing target table (columns,
//! types, rows).

use std::collections::{BTreeSet, HashMap, HashSet};

use tokio_postgres::Client;

use crate::config::Config;
use crate::error::{DbContext, Result};
use crate::schema::catalog::Table;
use crate::schema::mapping::{self, TableMap};
use crate::sql::{display_ident, quote_literal, QualifiedName};

use super::finding::{Finding, Level};
use super::preflight::{Mode, Options};
use super::servers::*;

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
pub(super) async fn check_target_table(
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
pub(super) async fn check_target_types(
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
                if let crate::translate::index::Translation::Create { extension: Some(e), .. } = plan.translation {
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
pub(super) async fn check_target_schemas(
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unqualified_types() {
        assert_eq!(unqualified("extensions.vector(3)"), "vector(3)");
        assert_eq!(unqualified("vector(3)"), "vector(3)");
        assert_eq!(unqualified("numeric(10,2)"), "numeric(10,2)");
        assert_eq!(unqualified("timestamp with time zone"), "timestamp with time zone");
        assert_eq!(unqualified("real[]"), "real[]");
    }
}
