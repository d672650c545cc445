//! The validated configuration: what every other stage reads ([`Config`] and its sections),
//! the defaults and limits of each setting, and [`ConfigError`].

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::endpoint::Endpoint;
use super::profile::Profile;
use crate::sql::QualifiedName;

/// Environment variable that replaces `source.url` from the file.
pub const SOURCE_URL_ENV: &str = "PGVSHIFT_SOURCE_URL";
/// Environment variable that replaces `target.url` from the file.
pub const TARGET_URL_ENV: &str = "PGVSHIFT_TARGET_URL";
/// Default for `replication.batch_max_changes`.
pub const DEFAULT_BATCH_MAX_CHANGES: usize = 5000;
/// Default for `replication.status_interval_secs`.
pub const DEFAULT_STATUS_INTERVAL_SECS: u64 = 1;
/// Upper bound for `replication.status_interval_secs`.
pub const MAX_STATUS_INTERVAL_SECS: u64 = 3600;
/// Default for `replication.max_retry_duration_secs`.
pub const DEFAULT_MAX_RETRY_DURATION_SECS: u64 = 300;
/// Upper bound for `replication.max_retry_duration_secs` (one week).
pub const MAX_MAX_RETRY_DURATION_SECS: u64 = 7 * 24 * 3600;
/// Default for `snapshot.workers`.
pub const DEFAULT_WORKERS: usize = 2;
/// Upper bound for `snapshot.workers`.
pub const MAX_WORKERS: usize = 64;
/// Longest slot / publication name PostgreSQL accepts (NAMEDATALEN - 1).
pub const MAX_NAME_BYTES: usize = 63;
/// The validated, resolved configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// The file the configuration was read from (as given, not canonicalized).
    pub path: PathBuf,
    pub source: Endpoint,
    pub target: Endpoint,
    pub replication: ReplicationSettings,
    pub snapshot: SnapshotSettings,
    pub indexes: IndexSettings,
    /// `[cutover]` (optional section; defaults otherwise).
    pub cutover: CutoverSettings,
    pub tables: Vec<TableConfig>,
    /// `[metrics] listen`: where `run` serves `/metrics` and `/healthz` (None: not served).
    pub metrics_listen: Option<std::net::SocketAddr>,
    /// LangChain mode (`[langchain]`, see `crate::langchain`): the two LangChain tables are
    /// rewritten into one table per collection; `tables` is then empty.
    pub langchain: Option<crate::langchain::config::LangchainConfig>,
}

impl Config {
    /// The source tables the publication holds: the configured tables, or in LangChain mode
    /// `langchain_pg_collection` and `langchain_pg_embedding`.
    pub fn published_tables(&self) -> Vec<QualifiedName> {
        match &self.langchain {
            Some(lc) => vec![
                QualifiedName::new(lc.source_schema.clone(), crate::langchain::layout::COLLECTION_TABLE),
                QualifiedName::new(lc.source_schema.clone(), crate::langchain::layout::EMBEDDING_TABLE),
            ],
            None => self.tables.iter().map(|t| t.source.clone()).collect(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplicationSettings {
    /// Logical replication slot on the source; matches `[a-z0-9_]+`, at most 63 bytes.
    pub slot: String,
    /// Publication on the source; matches `[a-z0-9_]+`, at most 63 bytes.
    pub publication: String,
    /// Most source changes applied in one target transaction (>= 1).
    pub batch_max_changes: usize,
    /// How often the applied position is reported to the source.
    pub status_interval: Duration,
    /// Log a warning (and show it in `status`) once the slot retains more WAL than this many
    /// bytes on the source (`warn_retained_wal`, default 1GB; None = never).
    pub warn_retained_wal: Option<u64>,
    /// Stop once the slot retains more WAL than this many bytes (`max_retained_wal`; default
    /// None = no limit). See docs/operations.md on what stopping does and does not release.
    pub max_retained_wal: Option<u64>,
    /// How long `run` keeps reconnecting after losing the source or the target before it gives
    /// up; zero gives up at the first lost connection.
    pub max_retry_duration: Duration,
}

/// Default for `replication.warn_retained_wal`: 1 GB.
pub const DEFAULT_WARN_RETAINED_WAL: u64 = 1 << 30;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotSettings {
    /// Parallel COPY workers, 1..=64.
    pub workers: usize,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableConfig {
    pub source: QualifiedName,
    /// Defaults to `source`.
    pub target: QualifiedName,
    /// The target engine for this table's vector columns (`profile = "..."`, default pgvector).
    pub profile: Profile,
    /// Per-column profile overrides (`column_profiles = { embedding = "halfvec" }`), by the
    /// source column's exact name.
    pub column_profiles: BTreeMap<String, Profile>,
    /// Column renames, source name -> target name (`columns = { embedding = "vec" }`).
    pub renames: BTreeMap<String, String>,
    /// Source columns left out of the target (`exclude = ["secret"]`).
    pub exclude: Vec<String>,
    /// Lantern / halfvec: densify sparsevec columns instead of refusing them.
    pub densify_sparse: bool,
    /// AlloyDB: build ScaNN indexes instead of pgvector's (`index = "scann"`).
    pub alloydb_scann: bool,
    /// Print the translated index DDL (in `plan` and the log) without running it.
    pub index_ddl_only: bool,
    /// Translate these source indexes as if they used another pgvector opclass
    /// (`index_opclasses = { items_emb_ip = "vector_cosine_ops" }`): the explicit mapping for a
    /// metric the target engine lacks.
    pub index_opclasses: BTreeMap<String, String>,
    /// `replica_identity = "full"`: `run` sets REPLICA IDENTITY FULL on this (key-less) source
    /// table before adding it to the publication, so the application's UPDATE and DELETE keep
    /// working. The only source change pgvshift makes on request.
    pub replica_identity_full: bool,
}

impl TableConfig {
    /// A table moved as is: default profile, no renames or exclusions.
    pub fn new(source: QualifiedName, target: QualifiedName) -> TableConfig {
        TableConfig {
            source,
            target,
            profile: Profile::default(),
            column_profiles: BTreeMap::new(),
            renames: BTreeMap::new(),
            exclude: Vec::new(),
            densify_sparse: false,
            alloydb_scann: false,
            index_ddl_only: false,
            index_opclasses: BTreeMap::new(),
            replica_identity_full: false,
        }
    }

    /// The profile that applies to a source column.
    pub fn profile_for(&self, column: &str) -> Profile {
        self.column_profiles.get(column).copied().unwrap_or(self.profile)
    }

    /// The target name of a source column (None when excluded).
    pub fn target_column<'a>(&'a self, column: &'a str) -> Option<&'a str> {
        if self.exclude.iter().any(|c| c == column) {
            None
        } else {
            Some(self.renames.get(column).map_or(column, String::as_str))
        }
    }
}

/// How secondary and vector indexes are built on the target after the copy (`[indexes]`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct IndexSettings {
    /// `SET maintenance_work_mem` for the builds, e.g. "1GB" (default: the server's).
    pub maintenance_work_mem: Option<String>,
    /// `SET max_parallel_maintenance_workers` for the builds (default: the server's).
    pub max_parallel_maintenance_workers: Option<u32>,
}

/// How `pgvshift cutover` waits, fences and verifies (`[cutover]`). See docs/operations.md.
#[derive(Debug, Clone, PartialEq)]
pub struct CutoverSettings {
    /// Step (a): wait until the target is at most this many bytes of source WAL behind.
    pub max_lag: u64,
    /// How long steps (a) (lag) and (b) (index builds) may each wait.
    pub wait_timeout: Duration,
    /// Step (c): how long to wait for the SHARE locks that fence the source tables (running
    /// write transactions on them must finish first); the cutover gives up without fencing.
    pub lock_timeout: Duration,
    /// Steps (d)-(f) (wait for the fence position, sequences, final verify) must complete
    /// within this, counted from the fence; else the fence is lifted and the cutover fails.
    pub max_write_pause: Duration,
    pub final_verify: FinalVerify,
    /// `final_verify = "sample"`: percent of each table's rows (at least 1000 rows).
    pub sample_percent: f64,
    /// Keep the fence this long after "switch the application now" (SIGINT/SIGTERM ends it
    /// earlier), so writes still aimed at the old source wait instead of landing there.
    pub hold_fence: Duration,
}

/// `[cutover] final_verify`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FinalVerify {
    Full,
    Sample,
    Off,
}

/// Default for `cutover.max_lag`: 16 MB of WAL.
pub const DEFAULT_CUTOVER_MAX_LAG: u64 = 16 << 20;

impl Default for CutoverSettings {
    fn default() -> Self {
        CutoverSettings {
            max_lag: DEFAULT_CUTOVER_MAX_LAG,
            wait_timeout: Duration::from_secs(300),
            lock_timeout: Duration::from_secs(5),
            max_write_pause: Duration::from_secs(30),
            final_verify: FinalVerify::Sample,
            sample_percent: 1.0,
            hold_fence: Duration::ZERO,
        }
    }
}

/// Why the configuration could not be loaded. Every variant names the file; none contains a
/// password (URLs appear only in their [`redact_url`](super::redact_url) form).
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("config file {} not found", path.display())]
    NotFound { path: PathBuf },

    #[error("cannot read config file {}: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// TOML syntax error, unknown key, missing key or wrong type.
    #[error("{}: TOML parse error at line {line}, column {column}: {message}", path.display())]
    Toml {
        path: PathBuf,
        line: usize,
        column: usize,
        message: String,
    },

    #[error(
        "{}: missing `{key}`: set it in the file (e.g. [{section}] url = \"postgresql://user@host:5432/db\") or set the environment variable {env_var}",
        path.display(),
        section = key.split('.').next().unwrap_or(key)
    )]
    MissingUrl {
        path: PathBuf,
        key: &'static str,
        env_var: &'static str,
    },

    /// A connection URL that cannot be used. `origin` says where it came from (file position
    /// and key, or environment variable).
    #[error("{origin}: invalid PostgreSQL URL {redacted_url}: {reason}")]
    Url {
        path: PathBuf,
        origin: String,
        redacted_url: String,
        reason: String,
    },

    /// A value that parses but is not acceptable; `message` says how to fix it.
    #[error("{}: {key}: {message}", location(path, *position))]
    Invalid {
        path: PathBuf,
        /// 1-based (line, column) of the offending value, when it is in the file.
        position: Option<(usize, usize)>,
        key: String,
        message: String,
    },
}

impl ConfigError {
    /// The config file this error is about.
    pub fn path(&self) -> &Path {
        match self {
            ConfigError::NotFound { path }
            | ConfigError::Read { path, .. }
            | ConfigError::Toml { path, .. }
            | ConfigError::MissingUrl { path, .. }
            | ConfigError::Url { path, .. }
            | ConfigError::Invalid { path, .. } => path,
        }
    }
}

pub(super) fn location(path: &Path, position: Option<(usize, usize)>) -> String {
    match position {
        Some((line, column)) => format!("{}:{line}:{column}", path.display()),
        None => path.display().to_string(),
    }
}
