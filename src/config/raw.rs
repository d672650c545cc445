//! The file as written ([`RawConfig`] and its sections: `deny_unknown_fields`, with spans for
//! messages) and its validation into [`Config`]: every value checked and every error naming
//! the file, the line and column, the key and the fix.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

use super::endpoint::{env_nonempty, resolve_endpoint, Endpoint, Env};
use super::model::location;
use super::model::*;
use super::profile::Profile;
use super::redact::redact_secrets;
use super::size::parse_size;
use crate::sql::QualifiedName;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    source: Option<RawEndpoint>,
    target: Option<RawEndpoint>,
    replication: RawReplication,
    snapshot: Option<RawSnapshot>,
    indexes: Option<RawIndexes>,
    metrics: Option<RawMetrics>,
    cutover: Option<RawCutover>,
    #[serde(default)]
    tables: Vec<RawTable>,
    langchain: Option<Spanned<crate::langchain::config::RawLangchain>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMetrics {
    listen: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCutover {
    max_lag: Option<Spanned<String>>,
    wait_timeout_secs: Option<Spanned<i64>>,
    lock_timeout_secs: Option<Spanned<i64>>,
    max_write_pause_secs: Option<Spanned<i64>>,
    final_verify: Option<Spanned<String>>,
    sample_percent: Option<Spanned<f64>>,
    hold_fence_secs: Option<Spanned<i64>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawIndexes {
    maintenance_work_mem: Option<Spanned<String>>,
    max_parallel_maintenance_workers: Option<Spanned<i64>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEndpoint {
    url: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawReplication {
    slot: Spanned<String>,
    publication: Spanned<String>,
    batch_max_changes: Option<Spanned<i64>>,
    status_interval_secs: Option<Spanned<i64>>,
    warn_retained_wal: Option<Spanned<String>>,
    max_retained_wal: Option<Spanned<String>>,
    max_retry_duration_secs: Option<Spanned<i64>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSnapshot {
    workers: Option<Spanned<i64>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTable {
    source: Spanned<String>,
    target: Option<Spanned<String>>,
    profile: Option<Spanned<String>>,
    column_profiles: Option<Spanned<BTreeMap<String, String>>>,
    columns: Option<Spanned<BTreeMap<String, String>>>,
    exclude: Option<Spanned<Vec<String>>>,
    densify_sparse: Option<bool>,
    index: Option<Spanned<String>>,
    index_ddl_only: Option<bool>,
    index_opclasses: Option<BTreeMap<String, String>>,
    replica_identity: Option<Spanned<String>>,
}

/// Parsing context: the file text (for positions) and its path (for messages).
struct Ctx<'a> {
    path: &'a Path,
    text: &'a str,
}

impl Ctx<'_> {
    fn pos(&self, span: std::ops::Range<usize>) -> (usize, usize) {
        line_col(self.text, span.start)
    }

    fn invalid<T>(
        &self,
        key: impl Into<String>,
        span: std::ops::Range<usize>,
        message: impl Into<String>,
    ) -> Result<T, ConfigError> {
        Err(ConfigError::Invalid {
            path: self.path.to_path_buf(),
            position: Some(self.pos(span)),
            key: key.into(),
            // Values are echoed in messages; make sure a pasted URL does not leak its password.
            message: redact_secrets(&message.into()),
        })
    }
}

/// 1-based line and column (in characters) of byte `offset` in `text`.
pub(super) fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let mut offset = offset.min(text.len());
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let column = before[line_start..].chars().count() + 1;
    (line, column)
}

impl Config {
    /// Read + parse + validate + resolve secrets, using the process environment.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        Config::load_with_env(path, &|name| std::env::var(name).ok())
    }

    /// Like [`Config::load`], with `env` returning an environment variable's value.
    pub fn load_with_env(path: &Path, env: &dyn Fn(&str) -> Option<String>) -> Result<Config, ConfigError> {
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(ConfigError::NotFound {
                    path: path.to_path_buf(),
                })
            }
            Err(source) => {
                return Err(ConfigError::Read {
                    path: path.to_path_buf(),
                    source,
                })
            }
        };
        Config::parse_str(&text, path, env)
    }

    /// Parse + validate + resolve secrets from `text`; `path` is used in messages only.
    pub fn parse_str(text: &str, path: &Path, env: &dyn Fn(&str) -> Option<String>) -> Result<Config, ConfigError> {
        let ctx = Ctx { path, text };
        let raw: RawConfig = toml::from_str(text).map_err(|e| toml_error(&ctx, &e))?;

        let replication = validate_replication(&ctx, raw.replication)?;
        let snapshot = validate_snapshot(&ctx, raw.snapshot)?;
        let indexes = validate_indexes(&ctx, raw.indexes)?;
        let metrics_listen = match raw.metrics.and_then(|m| m.listen) {
            None => None,
            Some(v) => match v.get_ref().trim().parse::<std::net::SocketAddr>() {
                Ok(addr) => Some(addr),
                Err(_) => {
                    return ctx.invalid(
                        "metrics.listen",
                        v.span(),
                        format!(
                            "{:?} is not an address to listen on: write IP:PORT, e.g. \"127.0.0.1:9187\" (or \"0.0.0.0:9187\" for every interface)",
                            v.get_ref()
                        ),
                    )
                }
            },
        };
        let cutover = validate_cutover(&ctx, raw.cutover)?;
        let langchain = match &raw.langchain {
            Some(section) => {
                if let Some(first) = raw.tables.first() {
                    return ctx.invalid(
                        "[[tables]]",
                        first.source.span(),
                        "[[tables]] cannot be combined with [langchain]: LangChain mode moves langchain_pg_collection and langchain_pg_embedding itself; move other tables with a second configuration (its own slot and publication)",
                    );
                }
                Some(
                    crate::langchain::config::validate(section.get_ref(), section.span())
                        .or_else(|e| ctx.invalid(e.key, e.span, e.message))?,
                )
            }
            None => None,
        };
        let tables = if langchain.is_some() {
            Vec::new()
        } else {
            validate_tables(&ctx, raw.tables)?
        };
        let source = endpoint_from(&ctx, "source", "source.url", SOURCE_URL_ENV, raw.source, env)?;
        let target = endpoint_from(&ctx, "target", "target.url", TARGET_URL_ENV, raw.target, env)?;

        if source.same_database_as(&target) {
            if let Some(t) = tables.iter().find(|t| t.source == t.target) {
                return Err(ConfigError::Invalid {
                    path: path.to_path_buf(),
                    position: None,
                    key: "tables".into(),
                    message: format!(
                        "source and target are the same database ({}:{}/{}), so table {} would be copied onto itself: point target.url at the new database or give the table a different target name",
                        source.host, source.port, source.dbname, t.source
                    ),
                });
            }
        }

        Ok(Config {
            path: path.to_path_buf(),
            source,
            target,
            replication,
            snapshot,
            indexes,
            cutover,
            tables,
            metrics_listen,
            langchain,
        })
    }
}

fn toml_error(ctx: &Ctx<'_>, err: &toml::de::Error) -> ConfigError {
    // `err.to_string()` would quote the offending source line, which may hold a password
    // (e.g. an unterminated `url = "postgresql://u:secret@...`), so rebuild the message from
    // its parts instead.
    let (line, column) = err.span().map_or((1, 1), |span| ctx.pos(span));
    // One line for logs; and the numeric keys deserialize as i64 (so range errors can carry
    // a fix), which users know as "an integer".
    let mut message = redact_secrets(err.message().trim())
        .replace('\n', "; ")
        .replace("expected i64", "expected an integer");
    // A wrong value's error names neither key nor section: name them.
    if let Some(key) = err.span().and_then(|span| key_of_value_at(ctx.text, span.start)) {
        if !message.contains(&key) {
            message = format!("{key}: {message}");
        }
    }
    ConfigError::Toml {
        path: ctx.path.to_path_buf(),
        line,
        column,
        message,
    }
}

/// PURE: the dotted key (`replication.batch_max_changes`, `[[tables]] profile`) whose value
/// starts at byte `offset`, when that line reads `key = value`; else None.
pub(super) fn key_of_value_at(text: &str, offset: usize) -> Option<String> {
    let offset = offset.min(text.len());
    let line_start = text[..offset].rfind('\n').map_or(0, |i| i + 1);
    let before = &text[line_start..offset];
    let eq = before.find('=')?;
    let key = before[..eq].trim();
    if key.is_empty() || key.starts_with('#') || key.starts_with('[') {
        return None;
    }
    let section = text[..line_start]
        .lines()
        .rev()
        .map(str::trim)
        .find(|l| l.starts_with('['))
        .map(|l| l.trim_matches(|c| c == '[' || c == ']').trim().to_string());
    Some(match section {
        Some(s) if text[..line_start].contains(&format!("[[{s}]]")) => format!("[[{s}]] {key}"),
        Some(s) => format!("{s}.{key}"),
        None => key.to_string(),
    })
}

fn validate_name(ctx: &Ctx<'_>, key: &str, what: &str, value: &Spanned<String>) -> Result<String, ConfigError> {
    let name = value.get_ref();
    let valid_chars = !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
    if valid_chars && name.len() <= MAX_NAME_BYTES {
        return Ok(name.clone());
    }
    let problem = if name.is_empty() {
        "is empty".to_string()
    } else if !valid_chars {
        "may contain only lowercase letters a-z, digits 0-9 and underscores".to_string()
    } else {
        format!("is {} bytes long; the limit is {MAX_NAME_BYTES}", name.len())
    };
    let suggestion = if redact_secrets(name) == *name {
        suggest_name(name)
    } else {
        "pgvshift".to_string()
    };
    ctx.invalid(
        key,
        value.span(),
        format!(
            "{what} name {name:?} {problem} (it is sent unquoted in the replication protocol); use e.g. {suggestion:?}"
        ),
    )
}

/// A valid slot / publication name resembling `name`.
pub(super) fn suggest_name(name: &str) -> String {
    let mut out: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '_'
            }
        })
        .take(MAX_NAME_BYTES)
        .collect();
    if out.trim_matches('_').is_empty() {
        out = "pgvshift".to_string();
    }
    out
}

fn int_in_range(
    ctx: &Ctx<'_>,
    key: &str,
    value: Option<Spanned<i64>>,
    default: u64,
    range: std::ops::RangeInclusive<u64>,
    fix: &str,
) -> Result<u64, ConfigError> {
    let Some(value) = value else {
        return Ok(default);
    };
    match u64::try_from(*value.get_ref()) {
        Ok(v) if range.contains(&v) => Ok(v),
        _ => {
            let bound = if *range.end() == u64::MAX {
                format!("at least {}", range.start())
            } else {
                format!("between {} and {}", range.start(), range.end())
            };
            ctx.invalid(
                key,
                value.span(),
                format!(
                    "{} is out of range: it must be {bound} ({fix}; default {default})",
                    value.get_ref()
                ),
            )
        }
    }
}

fn validate_replication(ctx: &Ctx<'_>, raw: RawReplication) -> Result<ReplicationSettings, ConfigError> {
    let slot = validate_name(ctx, "replication.slot", "replication slot", &raw.slot)?;
    let publication = validate_name(ctx, "replication.publication", "publication", &raw.publication)?;
    let batch_max_changes = int_in_range(
        ctx,
        "replication.batch_max_changes",
        raw.batch_max_changes,
        DEFAULT_BATCH_MAX_CHANGES as u64,
        1..=u64::MAX,
        "the most source changes applied in one target transaction",
    )?;
    let status_secs = int_in_range(
        ctx,
        "replication.status_interval_secs",
        raw.status_interval_secs,
        DEFAULT_STATUS_INTERVAL_SECS,
        1..=MAX_STATUS_INTERVAL_SECS,
        "seconds between position reports to the source",
    )?;
    let wal_size = |key: &str,
                    value: Option<Spanned<String>>,
                    default: Option<u64>|
     -> Result<Option<u64>, ConfigError> {
        let Some(v) = value else { return Ok(default) };
        let text = v.get_ref().trim();
        if text.eq_ignore_ascii_case("off") || text == "0" {
            return Ok(None);
        }
        match parse_size(text) {
            Some(bytes) => Ok(Some(bytes)),
            None => ctx.invalid(
                key,
                v.span(),
                format!("{text:?} is not a size: write e.g. \"2GB\" or \"512MB\" (units kB, MB, GB, TB), or \"off\""),
            ),
        }
    };
    let warn_retained_wal = wal_size(
        "replication.warn_retained_wal",
        raw.warn_retained_wal,
        Some(DEFAULT_WARN_RETAINED_WAL),
    )?;
    let max_retained_wal = wal_size("replication.max_retained_wal", raw.max_retained_wal, None)?;
    let retry_secs = int_in_range(
        ctx,
        "replication.max_retry_duration_secs",
        raw.max_retry_duration_secs,
        DEFAULT_MAX_RETRY_DURATION_SECS,
        0..=MAX_MAX_RETRY_DURATION_SECS,
        "seconds to keep reconnecting after losing the source or target; 0 never reconnects",
    )?;
    Ok(ReplicationSettings {
        slot,
        publication,
        batch_max_changes: usize::try_from(batch_max_changes).unwrap_or(usize::MAX),
        status_interval: Duration::from_secs(status_secs),
        warn_retained_wal,
        max_retained_wal,
        max_retry_duration: Duration::from_secs(retry_secs),
    })
}

fn validate_snapshot(ctx: &Ctx<'_>, raw: Option<RawSnapshot>) -> Result<SnapshotSettings, ConfigError> {
    let workers = int_in_range(
        ctx,
        "snapshot.workers",
        raw.and_then(|s| s.workers),
        DEFAULT_WORKERS as u64,
        1..=MAX_WORKERS as u64,
        "the number of parallel COPY workers",
    )?;
    Ok(SnapshotSettings {
        workers: workers as usize,
    })
}

fn validate_tables(ctx: &Ctx<'_>, raw: Vec<RawTable>) -> Result<Vec<TableConfig>, ConfigError> {
    if raw.is_empty() {
        return Err(ConfigError::Invalid {
            path: ctx.path.to_path_buf(),
            position: None,
            key: "tables".into(),
            message: "no tables to migrate: add at least one entry, e.g.\n[[tables]]\nsource = \"public.items\"\n(or a [langchain] section to rewrite LangChain's PGVector tables, see config.langchain.example.toml)".into(),
        });
    }
    let parse = |key: &str, value: &Spanned<String>| -> Result<QualifiedName, ConfigError> {
        QualifiedName::parse(value.get_ref()).or_else(|e| ctx.invalid(key, value.span(), e))
    };
    let mut tables = Vec::with_capacity(raw.len());
    // name -> (entry number, line) of its first occurrence
    let mut sources: HashMap<QualifiedName, (usize, usize)> = HashMap::new();
    let mut targets: HashMap<QualifiedName, (usize, usize)> = HashMap::new();
    for (i, entry) in raw.iter().enumerate() {
        let n = i + 1;
        let source_key = format!("[[tables]] #{n} source");
        let target_key = format!("[[tables]] #{n} target");
        let source = parse(&source_key, &entry.source)?;
        let target = match &entry.target {
            Some(t) => parse(&target_key, t)?,
            None => source.clone(),
        };
        let source_line = ctx.pos(entry.source.span()).0;
        if let Some(&(first, line)) = sources.get(&source) {
            return ctx.invalid(
                source_key,
                entry.source.span(),
                format!("source table {source} is already listed as [[tables]] #{first} (line {line}): list each source table once"),
            );
        }
        sources.insert(source.clone(), (n, source_line));
        let target_span = entry.target.as_ref().map_or(entry.source.span(), |t| t.span());
        if let Some(&(first, line)) = targets.get(&target) {
            return ctx.invalid(
                target_key,
                target_span.clone(),
                format!(
                    "target table {target} is also the target of [[tables]] #{first} (line {line}): two source tables cannot write to the same target; give this entry a distinct `target`"
                ),
            );
        }
        targets.insert(target.clone(), (n, ctx.pos(target_span).0));
        let profile_of = |key: &str, v: &Spanned<String>| -> Result<Profile, ConfigError> {
            Profile::parse(v.get_ref()).map_or_else(
                || {
                    ctx.invalid(
                        key,
                        v.span(),
                        format!(
                            "unknown profile {:?}: choose one of {}",
                            v.get_ref(),
                            Profile::ALL.iter().map(|p| p.name()).collect::<Vec<_>>().join(", ")
                        ),
                    )
                },
                Ok,
            )
        };
        let profile = match &entry.profile {
            Some(p) => profile_of(&format!("[[tables]] #{n} profile"), p)?,
            None => Profile::default(),
        };
        let mut column_profiles = BTreeMap::new();
        if let Some(cp) = &entry.column_profiles {
            for (column, name) in cp.get_ref() {
                let spanned = Spanned::new(cp.span(), name.clone());
                column_profiles.insert(
                    column.clone(),
                    profile_of(&format!("[[tables]] #{n} column_profiles.{column}"), &spanned)?,
                );
            }
        }
        let renames = entry.columns.as_ref().map(|c| c.get_ref().clone()).unwrap_or_default();
        let mut seen = HashMap::new();
        for (from, to) in &renames {
            if to.is_empty() {
                return ctx.invalid(
                    format!("[[tables]] #{n} columns.{from}"),
                    entry.columns.as_ref().expect("some").span(),
                    "a column cannot be renamed to an empty name",
                );
            }
            if let Some(other) = seen.insert(to.clone(), from.clone()) {
                return ctx.invalid(
                    format!("[[tables]] #{n} columns"),
                    entry.columns.as_ref().expect("some").span(),
                    format!(
                        "columns {other} and {from} are both renamed to {to}: target column names must be distinct"
                    ),
                );
            }
        }
        let exclude = entry.exclude.as_ref().map(|e| e.get_ref().clone()).unwrap_or_default();
        if let Some(both) = exclude.iter().find(|c| renames.contains_key(*c)) {
            return ctx.invalid(
                format!("[[tables]] #{n} exclude"),
                entry.exclude.as_ref().expect("some").span(),
                format!("column {both} is both excluded and renamed: choose one"),
            );
        }
        let alloydb_scann = match &entry.index {
            None => false,
            Some(v) => match (v.get_ref().as_str(), profile) {
                ("scann", Profile::Alloydb) => true,
                ("pgvector", _) => false,
                ("scann", _) => {
                    return ctx.invalid(
                        format!("[[tables]] #{n} index"),
                        v.span(),
                        format!("index = \"scann\" needs profile = \"alloydb\" (this table's profile is {profile})"),
                    )
                }
                (other, _) => {
                    return ctx.invalid(
                        format!("[[tables]] #{n} index"),
                        v.span(),
                        format!("unknown index kind {other:?}: use \"pgvector\" (default) or \"scann\" (AlloyDB)"),
                    )
                }
            },
        };
        let replica_identity_full = match &entry.replica_identity {
            None => false,
            Some(v) if v.get_ref() == "full" => true,
            Some(v) => {
                return ctx.invalid(
                    format!("[[tables]] #{n} replica_identity"),
                    v.span(),
                    format!(
                        "unknown replica_identity {:?}: the only value is \"full\" (pgvshift then runs ALTER TABLE {} REPLICA IDENTITY FULL on the source); leave the key out to keep the table's own setting",
                        v.get_ref(),
                        source
                    ),
                )
            }
        };
        tables.push(TableConfig {
            source,
            target,
            profile,
            column_profiles,
            renames,
            exclude,
            densify_sparse: entry.densify_sparse.unwrap_or(false),
            alloydb_scann,
            index_ddl_only: entry.index_ddl_only.unwrap_or(false),
            index_opclasses: entry.index_opclasses.clone().unwrap_or_default(),
            replica_identity_full,
        });
    }
    Ok(tables)
}

fn validate_indexes(ctx: &Ctx<'_>, raw: Option<RawIndexes>) -> Result<IndexSettings, ConfigError> {
    let Some(raw) = raw else {
        return Ok(IndexSettings::default());
    };
    let mut settings = IndexSettings::default();
    if let Some(m) = raw.maintenance_work_mem {
        let v = m.get_ref().trim();
        if parse_size(v).is_none() {
            return ctx.invalid(
                "indexes.maintenance_work_mem",
                m.span(),
                format!("{v:?} is not a memory size: write e.g. \"512MB\" or \"2GB\" (units kB, MB, GB, TB)"),
            );
        }
        settings.maintenance_work_mem = Some(v.to_string());
    }
    if let Some(w) = raw.max_parallel_maintenance_workers {
        let v = *w.get_ref();
        if !(0..=1024).contains(&v) {
            return ctx.invalid(
                "indexes.max_parallel_maintenance_workers",
                w.span(),
                format!("{v} is out of range 0..=1024"),
            );
        }
        settings.max_parallel_maintenance_workers = Some(v as u32);
    }
    Ok(settings)
}

fn validate_cutover(ctx: &Ctx<'_>, raw: Option<RawCutover>) -> Result<CutoverSettings, ConfigError> {
    let mut c = CutoverSettings::default();
    let Some(raw) = raw else { return Ok(c) };
    if let Some(v) = raw.max_lag {
        match parse_size(v.get_ref()) {
            Some(bytes) => c.max_lag = bytes,
            None => {
                return ctx.invalid(
                    "cutover.max_lag",
                    v.span(),
                    format!(
                        "{:?} is not a size: write e.g. \"16MB\" (units kB, MB, GB, TB)",
                        v.get_ref()
                    ),
                )
            }
        }
    }
    let secs =
        |key: &str, v: Option<Spanned<i64>>, default: Duration, range: std::ops::RangeInclusive<u64>, fix: &str| {
            int_in_range(ctx, key, v, default.as_secs(), range, fix).map(Duration::from_secs)
        };
    c.wait_timeout = secs(
        "cutover.wait_timeout_secs",
        raw.wait_timeout_secs,
        c.wait_timeout,
        1..=86_400,
        "seconds to wait for low lag, and for index builds",
    )?;
    c.lock_timeout = secs(
        "cutover.lock_timeout_secs",
        raw.lock_timeout_secs,
        c.lock_timeout,
        1..=300,
        "seconds to wait for the locks that fence the source tables",
    )?;
    c.max_write_pause = secs(
        "cutover.max_write_pause_secs",
        raw.max_write_pause_secs,
        c.max_write_pause,
        1..=3600,
        "seconds the fenced steps may take before the fence is lifted",
    )?;
    c.hold_fence = secs(
        "cutover.hold_fence_secs",
        raw.hold_fence_secs,
        c.hold_fence,
        0..=3600,
        "seconds to keep the fence after \"switch the application now\"",
    )?;
    if let Some(v) = raw.final_verify {
        c.final_verify = match v.get_ref().as_str() {
            "full" => FinalVerify::Full,
            "sample" => FinalVerify::Sample,
            "off" => FinalVerify::Off,
            other => {
                return ctx.invalid(
                    "cutover.final_verify",
                    v.span(),
                    format!("{other:?} is not one of \"full\", \"sample\", \"off\""),
                )
            }
        };
    }
    if let Some(v) = raw.sample_percent {
        let p = *v.get_ref();
        if !(p > 0.0 && p <= 100.0) {
            return ctx.invalid(
                "cutover.sample_percent",
                v.span(),
                format!("{p} is out of range: give a percentage above 0 and at most 100"),
            );
        }
        c.sample_percent = p;
    }
    Ok(c)
}

fn endpoint_from(
    ctx: &Ctx<'_>,
    role: &str,
    key: &'static str,
    env_var: &'static str,
    raw: Option<RawEndpoint>,
    env: Env<'_>,
) -> Result<Endpoint, ConfigError> {
    let file_url = raw.and_then(|r| r.url);
    let (url, origin) = match (env_nonempty(env, env_var), file_url) {
        (Some(url), file_url) => {
            if file_url.is_some() {
                tracing::info!(
                    "{role}: using the URL from {env_var} instead of {key} in {}",
                    ctx.path.display()
                );
            }
            (
                url,
                format!(
                    "environment variable {env_var} (overrides {key} in {})",
                    ctx.path.display()
                ),
            )
        }
        (None, Some(url)) => {
            let origin = format!("{}: {key}", location(ctx.path, Some(ctx.pos(url.span()))));
            (url.into_inner(), origin)
        }
        (None, None) => {
            return Err(ConfigError::MissingUrl {
                path: ctx.path.to_path_buf(),
                key,
                env_var,
            });
        }
    };
    resolve_endpoint(role, &url, ctx.path, origin, env)
}
