//! Configuration: the TOML file, environment overrides and secret resolution.
//!
//! The file (see `config.example.toml` at the repository root) is deserialized into private
//! `Raw*` structs with `deny_unknown_fields`, then validated and resolved into [`Config`]:
//! table names are parsed into [`QualifiedName`]s, URLs into [`Endpoint`]s with a fully
//! resolved `tokio_postgres::Config`, and passwords are looked up the way libpq does
//! (URL, then `PGPASSWORD`, then the password file).
//!
//! Secrets never leave this module in readable form: [`Endpoint`] has a hand-written `Debug`,
//! every error that mentions a URL carries its [`redact_url`] form, and TOML errors are
//! rebuilt from the parser's message and position without echoing the offending source line.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

use crate::config::profile::Profile;
use crate::sql::QualifiedName;

use super::size::parse_size;

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
/// Default PostgreSQL port.
pub const DEFAULT_PORT: u16 = 5432;

/// Query parameters of a connection URL that are passed on to `tokio_postgres::Config`
/// (besides `host`, `port`, `user`, `password` and `dbname`, and the TLS parameters
/// [`TLS_PARAMS`], which are resolved here).
const TUNING_PARAMS: &[&str] = &[
    "application_name",
    "options",
    "connect_timeout",
    "tcp_user_timeout",
    "keepalives",
    "keepalives_idle",
    "keepalives_interval",
    "keepalives_retries",
    "target_session_attrs",
    "channel_binding",
];

/// Query parameters that configure TLS (see [`TlsSettings`]); they apply to the SQL and the
/// replication connections alike.
const TLS_PARAMS: &[&str] = &["sslmode", "sslrootcert"];

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

/// Which side a connection is for (used in messages).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    Source,
    Target,
}

impl std::fmt::Display for Side {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Side::Source => "source",
            Side::Target => "target",
        })
    }
}

/// One database to connect to. `Debug` and `Display` never show the password.
#[derive(Clone)]
pub struct Endpoint {
    /// Fully resolved connection settings, including the password (if any).
    pub pg: tokio_postgres::Config,
    /// The URL as configured, with any password replaced by `***`. Use this in messages.
    pub redacted_url: String,
    /// Host name, IP address, or (when it starts with `/`) a unix socket directory.
    pub host: String,
    pub port: u16,
    pub user: String,
    /// From the URL, else `PGPASSWORD`, else the password file; `None` if none of them has one.
    pub password: Option<String>,
    pub dbname: String,
    /// `sslmode` and `sslrootcert`, validated (the root certificates are read at load time).
    pub tls: TlsSettings,
}

impl Endpoint {
    /// An endpoint from a URL alone (demo, bench, tests), resolved like a configured one
    /// (TLS parameters, password lookup) with the process environment.
    pub fn from_url(url: &str) -> Result<Endpoint, ConfigError> {
        resolve_endpoint("url", url, Path::new(""), "connection URL".into(), &|name| {
            std::env::var(name).ok()
        })
    }

    /// True when `host` is a unix socket directory rather than a TCP host.
    pub fn is_unix_socket(&self) -> bool {
        self.host.starts_with('/')
    }

    fn same_database_as(&self, other: &Endpoint) -> bool {
        self.host == other.host && self.port == other.port && self.dbname == other.dbname
    }
}

impl fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Endpoint")
            .field("url", &self.redacted_url)
            .field("host", &self.host)
            .field("port", &self.port)
            .field("user", &self.user)
            .field("password", &self.password.as_ref().map(|_| "***"))
            .field("dbname", &self.dbname)
            .field("tls", &self.tls)
            .field("application_name", &self.pg.get_application_name())
            .finish_non_exhaustive()
    }
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.redacted_url)
    }
}

/// `sslmode`, with libpq's meaning.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SslMode {
    /// Never TLS.
    Disable,
    /// TLS if the server offers it, else plain; the certificate is not checked (the default).
    Prefer,
    /// TLS or fail. The certificate is not checked, unless `sslrootcert` is given: then, as in
    /// libpq, its chain is verified as with `verify-ca`.
    Require,
    /// TLS, and the certificate chain must lead to a certificate in `sslrootcert`.
    VerifyCa,
    /// `verify-ca`, and the certificate must also name the host connected to.
    VerifyFull,
}

impl SslMode {
    const ALL: [SslMode; 5] = [
        SslMode::Disable,
        SslMode::Prefer,
        SslMode::Require,
        SslMode::VerifyCa,
        SslMode::VerifyFull,
    ];

    /// The libpq name (`verify-full`).
    pub fn name(self) -> &'static str {
        match self {
            SslMode::Disable => "disable",
            SslMode::Prefer => "prefer",
            SslMode::Require => "require",
            SslMode::VerifyCa => "verify-ca",
            SslMode::VerifyFull => "verify-full",
        }
    }

    fn parse(value: &str) -> Option<SslMode> {
        SslMode::ALL.into_iter().find(|m| m.name() == value)
    }
}

impl fmt::Display for SslMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Where the certificates that vouch for the server come from (`sslrootcert`).
#[derive(Clone)]
pub enum RootCert {
    /// `sslrootcert=<path>`: a PEM file of CA certificates (or the server's self-signed
    /// certificate), read and parsed when the configuration is loaded.
    File {
        path: PathBuf,
        roots: Arc<rustls::RootCertStore>,
    },
    /// `sslrootcert=system`: the public certificate authorities (see `crate::source::tls`).
    System,
}

impl fmt::Debug for RootCert {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RootCert::File { path, roots } => write!(f, "File({}, {} certificates)", path.display(), roots.len()),
            RootCert::System => f.write_str("System"),
        }
    }
}

impl fmt::Display for RootCert {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RootCert::File { path, .. } => write!(f, "{}", path.display()),
            RootCert::System => f.write_str("system"),
        }
    }
}

/// The TLS settings of one endpoint, from its URL's `sslmode` and `sslrootcert`. Used for the
/// SQL connections (`crate::source::tls`) and the replication connection (`crate::source::replication`).
#[derive(Debug, Clone)]
pub struct TlsSettings {
    /// As configured (default `prefer`, or `verify-full` with `sslrootcert=system`, as libpq).
    pub mode: SslMode,
    pub root_cert: Option<RootCert>,
}

impl Default for TlsSettings {
    fn default() -> Self {
        TlsSettings {
            mode: SslMode::Prefer,
            root_cert: None,
        }
    }
}

impl TlsSettings {
    /// No connection without TLS.
    pub fn requires_tls(&self) -> bool {
        !matches!(self.mode, SslMode::Disable | SslMode::Prefer)
    }

    /// The server's certificate chain is verified against [`TlsSettings::root_cert`]
    /// (`verify-ca`, `verify-full`, and `require` with an `sslrootcert`, as in libpq).
    pub fn verifies_chain(&self) -> bool {
        match self.mode {
            SslMode::VerifyCa | SslMode::VerifyFull => true,
            SslMode::Require => self.root_cert.is_some(),
            SslMode::Disable | SslMode::Prefer => false,
        }
    }

    /// The server's certificate must name the host connected to (`verify-full`).
    pub fn verifies_host_name(&self) -> bool {
        self.mode == SslMode::VerifyFull
    }

    /// `sslmode=verify-full, sslrootcert=/etc/ca.crt`, for messages.
    pub fn describe(&self) -> String {
        match &self.root_cert {
            Some(root) => format!("sslmode={}, sslrootcert={root}", self.mode),
            None => format!("sslmode={}", self.mode),
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
/// password (URLs appear only in their [`redact_url`] form).
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

fn location(path: &Path, position: Option<(usize, usize)>) -> String {
    match position {
        Some((line, column)) => format!("{}:{line}:{column}", path.display()),
        None => path.display().to_string(),
    }
}

// ---------------------------------------------------------------------------------------------
// Raw (file) form
// ---------------------------------------------------------------------------------------------

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

type Env<'a> = &'a dyn Fn(&str) -> Option<String>;

/// Reads a variable through `env`, treating an empty value as unset (as libpq does for
/// `PGPASSWORD`, and as shells make it easy to do by accident).
fn env_nonempty(env: Env<'_>, name: &str) -> Option<String> {
    env(name).filter(|v| !v.is_empty())
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
fn line_col(text: &str, offset: usize) -> (usize, usize) {
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
fn key_of_value_at(text: &str, offset: usize) -> Option<String> {
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
fn suggest_name(name: &str) -> String {
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

// ---------------------------------------------------------------------------------------------
// Endpoints
// ---------------------------------------------------------------------------------------------

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

const NO_HOST: &str = "no host: add one (postgresql://user@HOST:5432/db), or a unix socket directory (postgresql://user@%2Fvar%2Frun%2Fpostgresql/db or ?host=/var/run/postgresql)";

/// The parts of a connection URL; `pg` holds the tuning parameters from the query string.
struct UrlParts {
    host: Option<String>,
    port: Option<u16>,
    user: Option<String>,
    password: Option<String>,
    dbname: Option<String>,
    sslmode: Option<String>,
    sslrootcert: Option<String>,
    pg: tokio_postgres::Config,
}

fn resolve_endpoint(role: &str, url: &str, path: &Path, origin: String, env: Env<'_>) -> Result<Endpoint, ConfigError> {
    let redacted_url = redact_url(url);
    let fail = |reason: String| ConfigError::Url {
        path: path.to_path_buf(),
        origin: origin.clone(),
        redacted_url: redacted_url.clone(),
        reason,
    };
    let parts = parse_pg_url(url).map_err(&fail)?;
    let host = parts.host.ok_or_else(|| fail(NO_HOST.into()))?;
    let port = parts.port.unwrap_or(DEFAULT_PORT);
    let user = match parts.user {
        Some(user) => user,
        None => env_nonempty(env, "USER").ok_or_else(|| {
            fail("no user name, and the USER environment variable (the default) is not set: add one (postgresql://USER@host/db)".into())
        })?,
    };
    let dbname = parts.dbname.unwrap_or_else(|| user.clone());
    let tls = tls_settings(parts.sslmode.as_deref(), parts.sslrootcert.as_deref(), &host).map_err(&fail)?;
    let password = resolve_password(role, parts.password, &host, port, &dbname, &user, env);

    let mut pg = parts.pg;
    // tokio-postgres knows disable / prefer / require; the certificate checks of verify-ca and
    // verify-full are done by the rustls configuration (`crate::source::tls`). Over a unix socket the
    // server never offers TLS (and `tls_settings` refused modes that require it).
    pg.ssl_mode(match tls.mode {
        _ if host.starts_with('/') => tokio_postgres::config::SslMode::Disable,
        SslMode::Disable => tokio_postgres::config::SslMode::Disable,
        SslMode::Prefer => tokio_postgres::config::SslMode::Prefer,
        SslMode::Require | SslMode::VerifyCa | SslMode::VerifyFull => tokio_postgres::config::SslMode::Require,
    });
    if host.starts_with('/') {
        #[cfg(unix)]
        pg.host_path(&host);
        #[cfg(not(unix))]
        return Err(fail("unix socket hosts are not supported on this platform".into()));
    } else {
        pg.host(&host);
    }
    pg.port(port).user(&user).dbname(&dbname);
    if let Some(password) = &password {
        pg.password(password.as_bytes());
    }
    Ok(Endpoint {
        pg,
        redacted_url,
        host,
        port,
        user,
        password,
        dbname,
        tls,
    })
}

/// Validates `sslmode` and `sslrootcert` the libpq way and reads the root certificates.
///
/// Differences from libpq, each refused with a message rather than silently changed:
/// `sslrootcert` with `disable` or `prefer` (libpq would check the certificate only when the
/// connection happens to use TLS, which protects nothing); `verify-ca` / `verify-full` without
/// `sslrootcert` (libpq falls back to `~/.postgresql/root.crt`: we want it written down); and
/// TLS modes over a unix socket (libpq ignores them there).
fn tls_settings(sslmode: Option<&str>, sslrootcert: Option<&str>, host: &str) -> Result<TlsSettings, String> {
    let mode = match sslmode {
        None => None,
        Some(v) => Some(SslMode::parse(v).ok_or_else(|| {
            format!(
                "query parameter sslmode={v:?} is invalid: expected disable, prefer, require, verify-ca or verify-full"
            )
        })?),
    };
    let root_cert = match sslrootcert {
        None => None,
        Some("") => return Err(
            "sslrootcert is empty: give the path of a PEM file holding the CA certificate(s), or sslrootcert=system"
                .into(),
        ),
        Some("system") => Some(RootCert::System),
        Some(path) => Some(read_root_certs(Path::new(path))?),
    };
    // As libpq 16: sslrootcert=system makes verify-full the default.
    let mode = mode.unwrap_or(match root_cert {
        Some(RootCert::System) => SslMode::VerifyFull,
        _ => SslMode::Prefer,
    });
    let tls = TlsSettings { mode, root_cert };
    match (&tls.root_cert, mode) {
        (Some(RootCert::System), SslMode::VerifyFull) => {}
        (Some(RootCert::System), _) => {
            return Err(format!(
                "weak sslmode={mode} may not be used with sslrootcert=system (the public certificate authorities vouch for host names): use sslmode=verify-full"
            ))
        }
        (Some(root), SslMode::Disable | SslMode::Prefer) => {
            return Err(format!(
                "sslrootcert={root} has no effect with sslmode={mode}, which may connect without TLS: use sslmode=verify-full (or verify-ca) to check the server's certificate, or drop sslrootcert"
            ))
        }
        (None, SslMode::VerifyCa | SslMode::VerifyFull) => {
            return Err(format!(
                "sslmode={mode} needs the certificate to verify the server against: add sslrootcert=/path/to/root.crt (PEM: the CA that signed the server's certificate, or the server's self-signed certificate), or sslrootcert=system for the public certificate authorities"
            ))
        }
        _ => {}
    }
    if host.starts_with('/') && tls.requires_tls() {
        return Err(format!(
            "sslmode={mode} needs TLS, which PostgreSQL does not offer over a unix socket ({host}): connect over TCP (a host name or address), or use sslmode=prefer or disable"
        ));
    }
    Ok(tls)
}

/// Reads an `sslrootcert` PEM file. Errors name the key and the file.
fn read_root_certs(path: &Path) -> Result<RootCert, String> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::CertificateDer;
    let bytes = std::fs::read(path).map_err(|e| format!("cannot read sslrootcert file {}: {e}", path.display()))?;
    let certs = CertificateDer::pem_slice_iter(&bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("sslrootcert file {} is not a valid PEM file: {e}", path.display()))?;
    if certs.is_empty() {
        return Err(format!(
            "sslrootcert file {} holds no certificate (expected PEM: -----BEGIN CERTIFICATE-----)",
            path.display()
        ));
    }
    let mut roots = rustls::RootCertStore::empty();
    let (added, _) = roots.add_parsable_certificates(certs);
    if added == 0 {
        return Err(format!(
            "sslrootcert file {}: none of its certificates can be parsed as X.509",
            path.display()
        ));
    }
    Ok(RootCert::File {
        path: path.to_path_buf(),
        roots: Arc::new(roots),
    })
}

/// Parses a `postgresql://` / `postgres://` URL (libpq's URI form, single host). Errors never
/// contain the password.
fn parse_pg_url(text: &str) -> Result<UrlParts, String> {
    let text = text.trim();
    if text.is_empty() {
        return Err("the URL is empty".into());
    }
    let lower = text.to_ascii_lowercase();
    if !(lower.starts_with("postgresql://") || lower.starts_with("postgres://")) {
        return Err(
            "expected a URL starting with postgresql:// or postgres:// (key=value connection strings are not supported here)"
                .into(),
        );
    }
    let url = url::Url::parse(text).map_err(|e| match e {
        url::ParseError::EmptyHost => NO_HOST.to_string(),
        e => format!(
            "{e} (percent-encode special characters in the user name and password, e.g. @ as %40, : as %3A, / as %2F, ? as %3F, # as %23)"
        ),
    })?;
    if url.fragment().is_some() {
        return Err("unexpected `#` fragment (percent-encode # as %23)".into());
    }
    let user = match url.username() {
        "" => None,
        u => Some(decode(u, "user name")?),
    };
    let password = match url.password() {
        None | Some("") => None,
        Some(p) => Some(decode(p, "password")?),
    };
    let mut host = match url.host() {
        None => None,
        Some(url::Host::Domain(d)) => Some(decode(d, "host")?),
        Some(url::Host::Ipv4(a)) => Some(a.to_string()),
        Some(url::Host::Ipv6(a)) => Some(a.to_string()),
    };
    let mut port = url.port();
    if port == Some(0) {
        return Err("port 0 is not a port number (1-65535)".into());
    }
    let path = url.path();
    let mut dbname = match path.strip_prefix('/').unwrap_or(path) {
        "" => None,
        db => Some(decode(db, "database name")?),
    };
    let mut user = user;
    let mut password = password;
    let (mut sslmode, mut sslrootcert) = (None, None);
    let mut pg = tokio_postgres::Config::new();
    for piece in url.query().unwrap_or("").split('&').filter(|p| !p.is_empty()) {
        let Some((key, value)) = piece.split_once('=') else {
            let key = decode(piece, "query parameter name")?;
            return Err(format!("query parameter `{key}` has no value (write {key}=value)"));
        };
        let key = decode(key, "query parameter name")?;
        let value = decode(value, &format!("value of query parameter `{key}`"))?;
        match key.as_str() {
            "host" => host = Some(value),
            "port" => port = Some(parse_port(&value)?),
            "user" => user = Some(value),
            "password" => password = Some(value),
            "dbname" => dbname = Some(value),
            "sslmode" => sslmode = Some(value),
            "sslrootcert" => sslrootcert = Some(value),
            k if TUNING_PARAMS.contains(&k) => apply_param(&mut pg, k, &value)?,
            _ => {
                return Err(format!(
                    "unknown query parameter `{key}`: supported are host, port, user, password, dbname, {}, {}",
                    TLS_PARAMS.join(", "),
                    TUNING_PARAMS.join(", ")
                ))
            }
        }
    }
    let host = host.filter(|h| !h.is_empty());
    if host.as_deref().is_some_and(|h| h.contains(',')) {
        return Err("multiple hosts are not supported: name exactly one host".into());
    }
    Ok(UrlParts {
        host,
        port,
        user: user.filter(|u| !u.is_empty()),
        password: password.filter(|p| !p.is_empty()),
        dbname: dbname.filter(|d| !d.is_empty()),
        sslmode,
        sslrootcert,
        pg,
    })
}

fn parse_port(value: &str) -> Result<u16, String> {
    match value.parse::<u16>() {
        Ok(p) if p > 0 => Ok(p),
        _ => Err(format!("port {value:?} is not a port number (1-65535)")),
    }
}

fn apply_param(pg: &mut tokio_postgres::Config, key: &str, value: &str) -> Result<(), String> {
    use tokio_postgres::config::{ChannelBinding, TargetSessionAttrs};
    let bad = |expected: &str| {
        Err(format!(
            "query parameter {key}={value:?} is invalid: expected {expected}"
        ))
    };
    let secs = |v: &str| v.parse::<u64>().ok().map(Duration::from_secs);
    match key {
        "application_name" => {
            pg.application_name(value);
        }
        "options" => {
            pg.options(value);
        }
        "connect_timeout" | "tcp_user_timeout" | "keepalives_idle" | "keepalives_interval" => {
            let Some(d) = secs(value) else {
                return bad("a number of seconds");
            };
            if !d.is_zero() {
                match key {
                    "connect_timeout" => pg.connect_timeout(d),
                    "tcp_user_timeout" => pg.tcp_user_timeout(d),
                    "keepalives_idle" => pg.keepalives_idle(d),
                    _ => pg.keepalives_interval(d),
                };
            }
        }
        "keepalives" => match value {
            "0" => {
                pg.keepalives(false);
            }
            "1" => {
                pg.keepalives(true);
            }
            _ => return bad("0 or 1"),
        },
        "keepalives_retries" => {
            let Ok(n) = value.parse::<u32>() else {
                return bad("a count");
            };
            pg.keepalives_retries(n);
        }
        "target_session_attrs" => {
            let attrs = match value {
                "any" => TargetSessionAttrs::Any,
                "read-write" => TargetSessionAttrs::ReadWrite,
                "read-only" => TargetSessionAttrs::ReadOnly,
                _ => return bad("any, read-write or read-only"),
            };
            pg.target_session_attrs(attrs);
        }
        "channel_binding" => {
            let binding = match value {
                "disable" => ChannelBinding::Disable,
                "prefer" => ChannelBinding::Prefer,
                "require" => ChannelBinding::Require,
                _ => return bad("disable, prefer or require"),
            };
            pg.channel_binding(binding);
        }
        _ => unreachable!("apply_param called with {key}, which is not in TUNING_PARAMS"),
    }
    Ok(())
}

/// Percent-decodes a URL component the way libpq does (`+` stays `+`). `what` names the
/// component in the error, which never echoes the text (it may be a password).
fn decode(text: &str, what: &str) -> Result<String, String> {
    fn hex(b: u8) -> Option<u8> {
        match b {
            b'0'..=b'9' => Some(b - b'0'),
            b'a'..=b'f' => Some(b - b'a' + 10),
            b'A'..=b'F' => Some(b - b'A' + 10),
            _ => None,
        }
    }
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hi = bytes.get(i + 1).copied().and_then(hex);
            let lo = bytes.get(i + 2).copied().and_then(hex);
            match (hi, lo) {
                (Some(hi), Some(lo)) => out.push(hi << 4 | lo),
                _ => {
                    return Err(format!(
                        "the {what} contains an invalid percent-encoding (write a literal % as %25)"
                    ))
                }
            }
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| format!("the {what} is not valid UTF-8 after percent-decoding"))
}

// ---------------------------------------------------------------------------------------------
// Passwords
// ---------------------------------------------------------------------------------------------

/// libpq's order: the URL, then `PGPASSWORD`, then the password file. Empty values count as
/// absent, as in libpq.
fn resolve_password(
    role: &str,
    url_password: Option<String>,
    host: &str,
    port: u16,
    dbname: &str,
    user: &str,
    env: Env<'_>,
) -> Option<String> {
    if url_password.is_some() {
        tracing::debug!("{role}: password taken from the URL");
        return url_password;
    }
    if let Some(p) = env_nonempty(env, "PGPASSWORD") {
        tracing::debug!("{role}: password taken from PGPASSWORD");
        return Some(p);
    }
    let passfile = match env_nonempty(env, "PGPASSFILE") {
        Some(p) => PathBuf::from(p),
        None => PathBuf::from(env_nonempty(env, "HOME")?).join(".pgpass"),
    };
    let contents = read_passfile(&passfile)?;
    let found = passfile_lookup(&contents, passfile_host(host), &port.to_string(), dbname, user);
    if found.is_some() {
        tracing::debug!("{role}: password taken from {}", passfile.display());
    }
    found
}

/// The host name libpq matches password file entries against: `localhost` for the default
/// unix socket directory (libpq's compile-time DEFAULT_PGSOCKET_DIR: `/tmp` upstream,
/// `/var/run/postgresql` on Debian-family builds), otherwise the host as given.
fn passfile_host(host: &str) -> &str {
    match host.trim_end_matches('/') {
        "/tmp" | "/var/run/postgresql" | "/run/postgresql" => "localhost",
        _ => host,
    }
}

/// Reads the password file if libpq would: it must be a regular file without group or world
/// permissions (otherwise libpq warns and ignores it; so do we). A missing file is silently
/// ignored.
fn read_passfile(path: &Path) -> Option<String> {
    let meta = match std::fs::metadata(path) {
        Ok(meta) => meta,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return None,
        Err(e) => {
            tracing::warn!("cannot read password file {}: {e}; ignoring it", path.display());
            return None;
        }
    };
    if !meta.is_file() {
        tracing::warn!("password file {} is not a plain file; ignoring it", path.display());
        return None;
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        if meta.permissions().mode() & 0o077 != 0 {
            tracing::warn!(
                "password file {} has group or world access; permissions should be u=rw (0600) or less; ignoring it",
                path.display()
            );
            return None;
        }
    }
    match std::fs::read_to_string(path) {
        Ok(contents) => Some(contents),
        Err(e) => {
            tracing::warn!("cannot read password file {}: {e}; ignoring it", path.display());
            None
        }
    }
}

/// Finds the password for a connection in libpq password file text
/// (`hostname:port:database:username:password` lines, `*` matching anything, `\:` and `\\`
/// escapes, `#` comments); the first matching line wins.
///
/// Hand-written because no maintained crate parses this format; it follows libpq's
/// `passwordFromFile` / `pwdfMatchesString`.
fn passfile_lookup(contents: &str, host: &str, port: &str, dbname: &str, user: &str) -> Option<String> {
    for line in contents.lines() {
        let line = line.trim_end_matches('\r');
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let fields = split_passfile_line(line);
        if fields.len() < 5 {
            continue;
        }
        let wanted = [host, port, dbname, user];
        let matches = fields[..4]
            .iter()
            .zip(wanted)
            .all(|((value, wildcard), want)| *wildcard || value == want);
        if matches {
            let password = &fields[4].0;
            return (!password.is_empty()).then(|| password.clone());
        }
    }
    None
}

/// Splits a password file line on unescaped `:` into unescaped fields, each with a flag telling
/// whether it was the `*` wildcard (an escaped `\*` is a literal star). At most five fields are
/// returned: like libpq, anything after the password's terminating `:` is ignored.
fn split_passfile_line(line: &str) -> Vec<(String, bool)> {
    let mut fields = Vec::with_capacity(5);
    let mut field = String::new();
    let mut raw_star = true; // field so far is exactly an unescaped "*"
    let mut chars = line.chars();
    let mut len = 0;
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                if let Some(next) = chars.next() {
                    field.push(next);
                } else {
                    field.push('\\');
                }
                raw_star = false;
                len += 1;
            }
            ':' => {
                fields.push((std::mem::take(&mut field), raw_star && len == 1));
                if fields.len() == 5 {
                    return fields;
                }
                raw_star = true;
                len = 0;
            }
            c => {
                field.push(c);
                raw_star = raw_star && c == '*';
                len += 1;
            }
        }
    }
    fields.push((field, raw_star && len == 1));
    fields
}

// ---------------------------------------------------------------------------------------------
// Redaction
// ---------------------------------------------------------------------------------------------

/// Replaces any password in a PostgreSQL URL (`scheme://user:password@...`, `?password=...`)
/// or key=value connection string (`password=...`) with `***`. Never fails: input that is
/// neither is returned as `<unparseable url>`, since it might be a password itself.
pub fn redact_url(url: &str) -> String {
    let text = url.trim();
    if let Some(scheme_end) = text.find("://") {
        let scheme = &text[..scheme_end];
        if !scheme.is_empty() && scheme.chars().all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c)) {
            return redact_uri(text, scheme_end + 3);
        }
        return "<unparseable url>".into();
    }
    match conninfo_spans(text) {
        Some(pairs) if !pairs.is_empty() => {
            let mut out = String::with_capacity(text.len());
            let mut last = 0;
            for (key, value) in pairs {
                if key == "password" {
                    out.push_str(&text[last..value.start]);
                    out.push_str("***");
                    last = value.end;
                }
            }
            out.push_str(&text[last..]);
            out
        }
        _ => "<unparseable url>".into(),
    }
}

/// Redacts the userinfo password and any `password=` query parameter of `text`, whose
/// authority starts at byte `start`.
fn redact_uri(text: &str, start: usize) -> String {
    let rest = &text[start..];
    let userinfo_end = if url::Url::parse(text).is_ok() {
        // Well-formed: the userinfo is whatever precedes the last `@` of the authority.
        let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
        rest[..authority_end].rfind('@')
    } else {
        // Malformed (e.g. an unencoded `/` or `?` in the password): err on the side of hiding
        // too much. Take the last `@`, unless it sits in a query string that follows an
        // earlier `@`.
        rest.rfind('@').map(|last| {
            let before = &rest[..last];
            before.find('?').and_then(|q| before[..q].rfind('@')).unwrap_or(last)
        })
    };
    let mut out = String::with_capacity(text.len());
    out.push_str(&text[..start]);
    let after = match userinfo_end {
        Some(at) => {
            let userinfo = &rest[..at];
            match userinfo.find(':') {
                Some(colon) => {
                    out.push_str(&userinfo[..colon]);
                    out.push_str(":***");
                }
                None => out.push_str(userinfo),
            }
            &rest[at..]
        }
        None => rest,
    };
    match after.find('?') {
        Some(q) => {
            out.push_str(&after[..=q]);
            let query = &after[q + 1..];
            let redacted: Vec<String> = query
                .split('&')
                .map(|piece| match piece.split_once('=') {
                    Some((key, _)) if decode(key, "").is_ok_and(|k| k.eq_ignore_ascii_case("password")) => {
                        format!("{key}=***")
                    }
                    _ => piece.to_string(),
                })
                .collect();
            out.push_str(&redacted.join("&"));
        }
        None => out.push_str(after),
    }
    out
}

/// Tokenizes a libpq key=value connection string, returning each key with the byte range of
/// its value (quotes included); `None` if it is malformed.
fn conninfo_spans(text: &str) -> Option<Vec<(String, std::ops::Range<usize>)>> {
    let bytes = text.as_bytes();
    let mut i = 0;
    let mut out = Vec::new();
    let skip_ws = |mut i: usize| {
        while i < bytes.len() && bytes[i].is_ascii_whitespace() {
            i += 1;
        }
        i
    };
    loop {
        i = skip_ws(i);
        if i >= bytes.len() {
            return Some(out);
        }
        let key_start = i;
        while i < bytes.len() && !bytes[i].is_ascii_whitespace() && bytes[i] != b'=' {
            i += 1;
        }
        let key = &text[key_start..i];
        if key.is_empty() || !key.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
            return None;
        }
        i = skip_ws(i);
        if bytes.get(i) != Some(&b'=') {
            return None;
        }
        i = skip_ws(i + 1);
        let value_start = i;
        if bytes.get(i) == Some(&b'\'') {
            i += 1;
            loop {
                match bytes.get(i) {
                    None => return None,
                    Some(b'\\') => i += 2,
                    Some(b'\'') => {
                        i += 1;
                        break;
                    }
                    Some(_) => i += 1,
                }
            }
        } else {
            while i < bytes.len() && !bytes[i].is_ascii_whitespace() {
                i += if bytes[i] == b'\\' { 2 } else { 1 };
            }
        }
        let i_clamped = i.min(bytes.len());
        i = i_clamped;
        if !text.is_char_boundary(i) {
            return None;
        }
        out.push((key.to_string(), value_start..i));
    }
}

/// Redacts URLs (and `password=value` words) appearing anywhere in free text, such as a
/// parser message that quotes a value.
fn redact_secrets(text: &str) -> String {
    let is_delim = |c: char| c.is_whitespace() || "\"'`".contains(c);
    let mut out = String::with_capacity(text.len());
    let mut token = String::new();
    let flush = |token: &mut String, out: &mut String| {
        if token.contains("://") {
            out.push_str(&redact_url(token));
        } else if let Some(i) = token.to_ascii_lowercase().find("password=") {
            out.push_str(&token[..i + "password=".len()]);
            out.push_str("***");
        } else {
            out.push_str(token);
        }
        token.clear();
    };
    for c in text.chars() {
        if is_delim(c) {
            flush(&mut token, &mut out);
            out.push(c);
        } else {
            token.push(c);
        }
    }
    flush(&mut token, &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// (case, file text, environment, expected source host or error fragments)
    type EnvCase<'a> = (&'a str, &'a str, Vec<(&'a str, &'a str)>, Result<&'a str, Vec<&'a str>>);
    /// (url, environment, expected password)
    type PasswordCase<'a> = (&'a str, Vec<(&'a str, &'a str)>, Option<&'a str>);

    const SECRET: &str = "s3cr3t-Pa55";

    fn env_from(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let vars: HashMap<String, String> = vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        move |name| vars.get(name).cloned()
    }

    fn no_env(_: &str) -> Option<String> {
        None
    }

    /// A fresh directory under the system temp dir, removed on drop.
    struct TempDir(PathBuf);

    impl TempDir {
        fn new(tag: &str) -> TempDir {
            static COUNTER: AtomicUsize = AtomicUsize::new(0);
            let n = COUNTER.fetch_add(1, Ordering::SeqCst);
            let dir = std::env::temp_dir().join(format!("pgvshift-config-test-{}-{tag}-{n}", std::process::id()));
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir).unwrap();
            TempDir(dir)
        }

        fn file(&self, name: &str, contents: &str, mode: u32) -> PathBuf {
            let path = self.0.join(name);
            std::fs::write(&path, contents).unwrap();
            #[cfg(unix)]
            {
                use std::os::unix::fs::PermissionsExt;
                std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
            }
            #[cfg(not(unix))]
            let _ = mode;
            path
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn config_text(source_url: &str, target_url: &str, extra: &str) -> String {
        format!(
            r#"
[source]
url = "{source_url}"
[target]
url = "{target_url}"
[replication]
slot = "pgvshift"
publication = "pgvshift"
{extra}
[[tables]]
source = "public.items"
"#
        )
    }

    fn parse(text: &str, env: &dyn Fn(&str) -> Option<String>) -> Result<Config, ConfigError> {
        Config::parse_str(text, Path::new("/etc/pgvshift.toml"), env)
    }

    fn parse_err(text: &str) -> ConfigError {
        match parse(text, &no_env) {
            Ok(_) => panic!("expected an error for:\n{text}"),
            Err(e) => e,
        }
    }

    #[test]
    fn profiles_renames_excludes_and_index_settings() {
        let text = config_text(
            "postgresql://u@s/db",
            "postgresql://u@t/db",
            "[indexes]\nmaintenance_work_mem = \"2GB\"\nmax_parallel_maintenance_workers = 3",
        ) + "profile = \"alloydb\"\nindex = \"scann\"\ncolumn_profiles = { small = \"halfvec\" }\ncolumns = { embedding = \"vec\" }\nexclude = [\"secret\"]\nindex_ddl_only = true\n";
        let c = parse(&text, &no_env).unwrap();
        let t = &c.tables[0];
        assert_eq!(t.profile, Profile::Alloydb);
        assert!(t.alloydb_scann && t.index_ddl_only && !t.densify_sparse);
        assert_eq!(t.profile_for("small"), Profile::Halfvec);
        assert_eq!(t.profile_for("embedding"), Profile::Alloydb);
        assert_eq!(t.target_column("embedding"), Some("vec"));
        assert_eq!(t.target_column("secret"), None);
        assert_eq!(t.target_column("other"), Some("other"));
        assert_eq!(c.indexes.maintenance_work_mem.as_deref(), Some("2GB"));
        assert_eq!(c.indexes.max_parallel_maintenance_workers, Some(3));

        let cases = [
            ("profile = \"pgvectors\"\n", "unknown profile \"pgvectors\": choose one of pgvector, halfvec, lantern, pgvecto_rs, vectorchord, alloydb"),
            ("index = \"scann\"\n", "index = \"scann\" needs profile = \"alloydb\""),
            ("columns = { a = \"x\", b = \"x\" }\n", "are both renamed to x"),
            ("columns = { a = \"x\" }\nexclude = [\"a\"]\n", "both excluded and renamed"),
            ("column_profiles = { a = \"nope\" }\n", "unknown profile \"nope\""),
        ];
        for (extra, want) in cases {
            let text = config_text("postgresql://u@s/db", "postgresql://u@t/db", "") + extra;
            let err = parse_err(&text).to_string();
            assert!(err.contains(want), "{extra}: {err}");
            assert!(err.contains("/etc/pgvshift.toml"), "{err}");
        }
        let text = config_text(
            "postgresql://u@s/db",
            "postgresql://u@t/db",
            "[indexes]\nmaintenance_work_mem = \"lots\"",
        );
        assert!(parse_err(&text).to_string().contains("not a memory size"));
    }

    /// A self-signed certificate (parsed only, never used for a connection).
    const TEST_CERT: &str = "-----BEGIN CERTIFICATE-----
MIIBkDCCATegAwIBAgIUEhsAIwgFZpOD9q6IbXcfWUvVhyMwCgYIKoZIzj0EAwIw
HTEbMBkGA1UEAwwScGd2c2hpZnQtdW5pdC10ZXN0MCAXDTI2MTEyMjA3MjY0NFoY
DzIxMjYxMDI5MDcyNjQ0WjAdMRswGQYDVQQDDBJwZ3ZzaGlmdC11bml0LXRlc3Qw
WTATBgcqhkjOPQIBBggqhkjOPQMBBwNCAAQe2nlSiAbTVIz6GzG3fUmJ2dR3ImH6
9t8DrBoD3+MSGKEUS1WJjyMU4np28JSxQ8aCXxuPUky7ByiDDOz/JMfNo1MwUTAd
BgNVHQ4EFgQUrfK9H50lww2pANR1hxNpoykvLtMwHwYDVR0jBBgwFoAUrfK9H50l
ww2pANR1hxNpoykvLtMwDwYDVR0TAQH/BAUwAwEB/zAKBggqhkjOPQQDAgNHADBE
AiA9TlRPxMmE2ZBGPSEduPR8gIgWf0ysa5DV3AA290WNhAIgRtGDLROED9EQsZVU
Qy9zdvPEy3AQ58gvkytQaYgCaLY=
-----END CERTIFICATE-----
";

    #[test]
    fn tls_parameters() {
        use tokio_postgres::config::SslMode as PgSslMode;
        let dir = TempDir::new("tls");
        let cert = dir.file("root.crt", TEST_CERT, 0o644);
        let two = dir.file("two.crt", &format!("{TEST_CERT}{TEST_CERT}"), 0o644);
        let cert = cert.to_str().unwrap();
        let resolve = |url: &str| resolve_endpoint("source", url, Path::new("c.toml"), "source.url".into(), &no_env);
        // (query, configured mode, chain verified, host name verified, tokio-postgres mode)
        let cases = [
            ("", SslMode::Prefer, false, false, PgSslMode::Prefer),
            ("?sslmode=disable", SslMode::Disable, false, false, PgSslMode::Disable),
            ("?sslmode=prefer", SslMode::Prefer, false, false, PgSslMode::Prefer),
            ("?sslmode=require", SslMode::Require, false, false, PgSslMode::Require),
            // libpq: require with a root certificate verifies the chain like verify-ca
            (
                &*format!("?sslmode=require&sslrootcert={cert}"),
                SslMode::Require,
                true,
                false,
                PgSslMode::Require,
            ),
            (
                &*format!("?sslmode=verify-ca&sslrootcert={cert}"),
                SslMode::VerifyCa,
                true,
                false,
                PgSslMode::Require,
            ),
            (
                &*format!("?sslrootcert={cert}&sslmode=verify-full"),
                SslMode::VerifyFull,
                true,
                true,
                PgSslMode::Require,
            ),
            // libpq 16: sslrootcert=system makes verify-full the default
            (
                "?sslrootcert=system",
                SslMode::VerifyFull,
                true,
                true,
                PgSslMode::Require,
            ),
            (
                "?sslmode=verify-full&sslrootcert=system",
                SslMode::VerifyFull,
                true,
                true,
                PgSslMode::Require,
            ),
        ];
        for (query, mode, chain, name, pg_mode) in cases {
            let url = format!("postgresql://u@db.example.com/d{query}");
            let ep = resolve(&url).unwrap_or_else(|e| panic!("{url}: {e}"));
            assert_eq!(ep.tls.mode, mode, "{url}");
            assert_eq!(ep.tls.verifies_chain(), chain, "{url}");
            assert_eq!(ep.tls.verifies_host_name(), name, "{url}");
            assert_eq!(ep.pg.get_ssl_mode(), pg_mode, "{url}");
            assert_eq!(ep.tls.requires_tls(), pg_mode == PgSslMode::Require, "{url}");
        }
        let ep = resolve(&format!(
            "postgresql://u@h/d?sslmode=verify-full&sslrootcert={}",
            two.display()
        ))
        .unwrap();
        match &ep.tls.root_cert {
            Some(RootCert::File { path, roots }) => {
                assert_eq!(path, &two);
                assert_eq!(roots.len(), 2);
            }
            other => panic!("expected the file, got {other:?}"),
        }
        assert_eq!(
            ep.tls.describe(),
            format!("sslmode=verify-full, sslrootcert={}", two.display())
        );
        // prefer over a unix socket: plain (the server never offers TLS there)
        let ep = resolve("postgresql://u@%2Ftmp/d?sslmode=prefer").unwrap();
        assert_eq!(ep.pg.get_ssl_mode(), PgSslMode::Disable);

        let missing = dir.0.join("nope.crt");
        let not_pem = dir.file(
            "key.pem",
            "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIA==\n-----END PRIVATE KEY-----\n",
            0o644,
        );
        let garbage = dir.file(
            "garbage.crt",
            "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
            0o644,
        );
        // (query, fragments of the error)
        let errors: Vec<(String, Vec<String>)> = vec![
            (
                "?sslmode=verify_full".into(),
                vec!["sslmode=\"verify_full\" is invalid".into(), "verify-full".into()],
            ),
            (
                "?sslmode=verify-full".into(),
                vec![
                    "sslmode=verify-full needs".into(),
                    "sslrootcert=".into(),
                    "sslrootcert=system".into(),
                ],
            ),
            ("?sslmode=verify-ca".into(), vec!["sslmode=verify-ca needs".into()]),
            (
                format!("?sslmode=verify-full&sslrootcert={}", missing.display()),
                vec![
                    format!("cannot read sslrootcert file {}", missing.display()),
                    "No such file".into(),
                ],
            ),
            (
                format!("?sslmode=verify-full&sslrootcert={}", dir.0.display()),
                vec![format!("cannot read sslrootcert file {}", dir.0.display())],
            ),
            (
                format!("?sslmode=require&sslrootcert={}", not_pem.display()),
                vec![format!("sslrootcert file {} holds no certificate", not_pem.display())],
            ),
            (
                format!("?sslmode=require&sslrootcert={}", garbage.display()),
                vec![format!("sslrootcert file {}", garbage.display())],
            ),
            (
                "?sslmode=verify-full&sslrootcert=".into(),
                vec!["sslrootcert is empty".into()],
            ),
            (
                "?sslmode=require&sslrootcert=system".into(),
                vec!["weak sslmode=require".into(), "use sslmode=verify-full".into()],
            ),
            (
                "?sslmode=verify-ca&sslrootcert=system".into(),
                vec!["weak sslmode=verify-ca".into()],
            ),
            (
                format!("?sslrootcert={cert}"),
                vec!["has no effect with sslmode=prefer".into(), "sslmode=verify-full".into()],
            ),
            (
                format!("?sslmode=disable&sslrootcert={cert}"),
                vec!["has no effect with sslmode=disable".into()],
            ),
            ("?sslmode=bad&password=pw".into(), vec!["is invalid".into()]),
        ];
        for (query, fragments) in errors {
            let url = format!("postgresql://u@h/d{query}");
            let msg = match resolve(&url) {
                Ok(ep) => panic!("{url}: expected an error, got {ep:?}"),
                Err(e) => e.to_string(),
            };
            assert!(msg.starts_with("source.url: invalid PostgreSQL URL"), "{msg}");
            for f in fragments {
                assert!(msg.contains(&f), "{url}: {msg:?} lacks {f:?}");
            }
            assert!(!msg.contains("pw&") && !msg.contains("password=pw"), "{msg}");
        }
        let e = resolve("postgresql://u@%2Fvar%2Frun%2Fpostgresql/d?sslmode=require").unwrap_err();
        assert!(e.to_string().contains("does not offer over a unix socket"), "{e}");
        assert!(e.to_string().contains("connect over TCP"), "{e}");
    }

    #[test]
    fn example_file_parses() {
        let config = Config::parse_str(
            include_str!("../../config.example.toml"),
            Path::new("config.example.toml"),
            &no_env,
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert!(!config.tables.is_empty());
        assert_eq!(config.source.password, None);
        assert_eq!(config.target.password, None);
        // Every [cutover] key is in the example (with its default value).
        assert_eq!(config.cutover, CutoverSettings::default());
    }

    #[test]
    fn cutover_section() {
        let base = |extra: &str| {
            config_text(
                "postgresql://u@h/s",
                "postgresql://u@h/t",
                &format!("[cutover]\n{extra}"),
            )
        };
        let c = parse(&base("max_lag = \"1MB\"\nwait_timeout_secs = 9\nlock_timeout_secs = 2\nmax_write_pause_secs = 7\nfinal_verify = \"full\"\nsample_percent = 2.5\nhold_fence_secs = 3"), &no_env)
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            c.cutover,
            CutoverSettings {
                max_lag: 1 << 20,
                wait_timeout: Duration::from_secs(9),
                lock_timeout: Duration::from_secs(2),
                max_write_pause: Duration::from_secs(7),
                final_verify: FinalVerify::Full,
                sample_percent: 2.5,
                hold_fence: Duration::from_secs(3),
            }
        );
        let defaults = parse(&config_text("postgresql://u@h/s", "postgresql://u@h/t", ""), &no_env).unwrap();
        assert_eq!(defaults.cutover, CutoverSettings::default());
        for (bad, want) in [
            ("max_lag = \"lots\"", "cutover.max_lag"),
            ("final_verify = \"some\"", "cutover.final_verify"),
            ("sample_percent = 0.0", "cutover.sample_percent"),
            ("lock_timeout_secs = 0", "cutover.lock_timeout_secs"),
            ("fence = \"trigger\"", "unknown field"),
        ] {
            let err = parse(&base(bad), &no_env).unwrap_err().to_string();
            assert!(err.contains(want), "{bad}: {err}");
        }
    }

    #[test]
    fn metrics_listen_address() {
        let text = config_text("postgresql://u@h/s", "postgresql://u@h/t", "")
            .replace("[[tables]]", "[metrics]\nlisten = \"127.0.0.1:9187\"\n[[tables]]");
        let c = parse(&text, &no_env).unwrap();
        assert_eq!(c.metrics_listen, Some("127.0.0.1:9187".parse().unwrap()));
        let bad = parse_err(&text.replace("127.0.0.1:9187", "localhost")).to_string();
        assert!(bad.contains("metrics.listen") && bad.contains("IP:PORT"), "{bad}");
        assert_eq!(
            parse(&config_text("postgresql://u@h/s", "postgresql://u@h/t", ""), &no_env)
                .unwrap()
                .metrics_listen,
            None
        );
    }

    #[test]
    fn langchain_example_file_parses() {
        let config = Config::parse_str(
            include_str!("../../config.langchain.example.toml"),
            Path::new("config.langchain.example.toml"),
            &no_env,
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert!(config.tables.is_empty());
        let lc = config.langchain.clone().expect("[langchain]");
        assert_eq!(lc.table_names["FAQ & Help"], "faq");
        assert_eq!(lc.metadata_columns.len(), 2);
        assert_eq!(
            config.published_tables(),
            [
                QualifiedName::new("public", "langchain_pg_collection"),
                QualifiedName::new("public", "langchain_pg_embedding")
            ]
        );
        // [[tables]] and [langchain] are exclusive.
        let text = format!(
            "{}\n[[tables]]\nsource = \"items\"\n",
            include_str!("../../config.langchain.example.toml")
        );
        let e = parse_err(&text);
        assert!(e.to_string().contains("cannot be combined with [langchain]"), "{e}");
    }

    #[test]
    fn wrong_types_name_their_key() {
        let text = "[replication]\nslot = \"s\"\nbatch_max_changes = \"ten\"\n[[tables]]\nsource = 5\n";
        assert_eq!(
            key_of_value_at(text, text.find("\"ten").unwrap()).as_deref(),
            Some("replication.batch_max_changes")
        );
        assert_eq!(
            key_of_value_at(text, text.find('5').unwrap()).as_deref(),
            Some("[[tables]] source")
        );
        assert_eq!(key_of_value_at(text, 0), None);
        let err = parse_err(&config_text(
            "postgresql://u@h/s",
            "postgresql://u@h/t",
            "batch_max_changes = \"ten\"",
        ))
        .to_string();
        assert!(err.contains("replication.batch_max_changes: invalid type"), "{err}");
    }

    #[test]
    fn retained_wal_sizes_and_replica_identity() {
        let c = parse(
            &config_text(
                "postgresql://u@h/s",
                "postgresql://u@h/t",
                "warn_retained_wal = \"512MB\"\nmax_retained_wal = \"2GB\"",
            )
            .replace(
                "source = \"public.items\"",
                "source = \"public.items\"\nreplica_identity = \"full\"",
            ),
            &no_env,
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(c.replication.warn_retained_wal, Some(512 << 20));
        assert_eq!(c.replication.max_retained_wal, Some(2 << 30));
        assert!(c.tables[0].replica_identity_full);

        let d = parse(&config_text("postgresql://u@h/s", "postgresql://u@h/t", ""), &no_env).unwrap();
        assert_eq!(d.replication.warn_retained_wal, Some(DEFAULT_WARN_RETAINED_WAL));
        assert_eq!(d.replication.max_retained_wal, None);
        assert!(!d.tables[0].replica_identity_full);

        let off = parse(
            &config_text(
                "postgresql://u@h/s",
                "postgresql://u@h/t",
                "warn_retained_wal = \"off\"",
            ),
            &no_env,
        )
        .unwrap();
        assert_eq!(off.replication.warn_retained_wal, None);

        let bad = parse_err(&config_text(
            "postgresql://u@h/s",
            "postgresql://u@h/t",
            "max_retained_wal = \"lots\"",
        ))
        .to_string();
        assert!(
            bad.contains("replication.max_retained_wal") && bad.contains("\"2GB\""),
            "{bad}"
        );
        let bad = parse_err(&config_text("postgresql://u@h/s", "postgresql://u@h/t", "").replace(
            "source = \"public.items\"",
            "source = \"public.items\"\nreplica_identity = \"index\"",
        ))
        .to_string();
        assert!(bad.contains("replica_identity") && bad.contains("\"full\""), "{bad}");
        assert_eq!(parse_size("10GB"), Some(10 << 30));
        assert_eq!(parse_size("1024kB"), Some(1 << 20));
        assert_eq!(parse_size("12"), Some(12));
        assert_eq!(parse_size("1.5GB"), None);
        assert_eq!(parse_size("5 gb"), None);
    }

    #[test]
    fn parses_with_defaults() {
        let text = config_text(
            "postgresql://replicator@127.0.0.1:5432/app",
            "postgres://app@db2/app2",
            "",
        );
        let c = parse(&text, &no_env).unwrap();
        assert_eq!(c.path, Path::new("/etc/pgvshift.toml"));
        assert_eq!(c.replication.slot, "pgvshift");
        assert_eq!(c.replication.publication, "pgvshift");
        assert_eq!(c.replication.batch_max_changes, DEFAULT_BATCH_MAX_CHANGES);
        assert_eq!(c.replication.status_interval, Duration::from_secs(1));
        assert_eq!(c.replication.max_retry_duration, Duration::from_secs(300));
        assert_eq!(c.snapshot.workers, 2);
        assert_eq!(
            c.tables,
            vec![TableConfig::new(
                QualifiedName::new("public", "items"),
                QualifiedName::new("public", "items")
            )]
        );
        assert_eq!(
            (c.source.host.as_str(), c.source.port, c.source.user.as_str()),
            ("127.0.0.1", 5432, "replicator")
        );
        assert_eq!(
            (c.target.host.as_str(), c.target.port, c.target.dbname.as_str()),
            ("db2", 5432, "app2")
        );
        assert_eq!(c.source.pg.get_dbname(), Some("app"));
        assert_eq!(c.source.pg.get_user(), Some("replicator"));
        assert_eq!(c.source.pg.get_ports(), &[5432]);
        assert_eq!(
            c.source.pg.get_hosts(),
            &[tokio_postgres::config::Host::Tcp("127.0.0.1".into())]
        );
    }

    #[test]
    fn parses_tuning_and_table_mapping() {
        let text = r#"
[source]
url = "postgresql://a@h1/db"
[target]
url = "postgresql://a@h2/db"
[replication]
slot = "s_1"
publication = "p2"
batch_max_changes = 1
status_interval_secs = 3
max_retry_duration_secs = 0
[snapshot]
workers = 64
[[tables]]
source = "Items"
target = "archive.\"Items\""
[[tables]]
source = "\"Sch\".t"
"#;
        let c = parse(text, &no_env).unwrap();
        assert_eq!(c.replication.batch_max_changes, 1);
        assert_eq!(c.replication.status_interval, Duration::from_secs(3));
        assert_eq!(c.replication.max_retry_duration, Duration::ZERO);
        assert_eq!(c.snapshot.workers, 64);
        assert_eq!(c.tables[0].source, QualifiedName::new("public", "items"));
        assert_eq!(c.tables[0].target, QualifiedName::new("archive", "Items"));
        assert_eq!(c.tables[1].target, QualifiedName::new("Sch", "t"));
    }

    #[test]
    fn env_overrides() {
        let file_src = "postgresql://file@src/db";
        let file_tgt = "postgresql://file@tgt/db";
        let full = config_text(file_src, file_tgt, "");
        let no_source_url = full.replacen(&format!("url = \"{file_src}\""), "", 1);
        let no_source_section = no_source_url.replacen("[source]", "", 1);
        let cases: Vec<EnvCase<'_>> = vec![
            ("file only", &full, vec![], Ok("src")),
            (
                "env wins over file",
                &full,
                vec![(SOURCE_URL_ENV, "postgresql://env@envhost/db")],
                Ok("envhost"),
            ),
            ("empty env ignored", &full, vec![(SOURCE_URL_ENV, "")], Ok("src")),
            (
                "url key optional with env",
                &no_source_url,
                vec![(SOURCE_URL_ENV, "postgresql://env@envhost/db")],
                Ok("envhost"),
            ),
            (
                "section optional with env",
                &no_source_section,
                vec![(SOURCE_URL_ENV, "postgresql://e@envhost/db")],
                Ok("envhost"),
            ),
            (
                "missing both",
                &no_source_url,
                vec![],
                Err(vec!["source.url", SOURCE_URL_ENV, "/etc/pgvshift.toml"]),
            ),
            (
                "missing section and env",
                &no_source_section,
                vec![],
                Err(vec!["source.url", SOURCE_URL_ENV]),
            ),
            (
                "bad env url names the variable",
                &full,
                vec![(SOURCE_URL_ENV, "postgresql://u:pw@h:99999/db")],
                Err(vec![SOURCE_URL_ENV, "invalid port", "postgresql://u:***@h:99999/db"]),
            ),
        ];
        for (name, text, vars, expected) in cases {
            let result = parse(text, &env_from(&vars));
            match (result, expected) {
                (Ok(c), Ok(host)) => {
                    assert_eq!(c.source.host, host, "{name}");
                    assert_eq!(c.target.host, "tgt", "{name}");
                }
                (Err(e), Err(fragments)) => {
                    for f in fragments {
                        assert!(e.to_string().contains(f), "{name}: {e:?} lacks {f:?}");
                    }
                }
                (r, e) => panic!("{name}: got {r:?}, expected {e:?}"),
            }
        }
        let e = parse(&full.replacen(&format!("url = \"{file_tgt}\""), "", 1), &no_env).unwrap_err();
        assert!(
            matches!(
                e,
                ConfigError::MissingUrl {
                    key: "target.url",
                    env_var: TARGET_URL_ENV,
                    ..
                }
            ),
            "{e:?}"
        );
        let c = parse(&full, &env_from(&[(TARGET_URL_ENV, "postgresql://x@t2/db")])).unwrap();
        assert_eq!((c.source.host.as_str(), c.target.host.as_str()), ("src", "t2"));
    }

    #[test]
    fn url_parsing() {
        use tokio_postgres::config::{Host, SslMode};
        let env = env_from(&[("USER", "osuser")]);
        // (url, host, port, user, dbname)
        let cases = [
            (
                "postgresql://replicator@127.0.0.1:5432/app",
                "127.0.0.1",
                5432,
                "replicator",
                "app",
            ),
            ("postgres://u@h", "h", 5432, "u", "u"),
            ("postgresql://h:6000", "h", 6000, "osuser", "osuser"),
            ("postgresql://h/", "h", 5432, "osuser", "osuser"),
            ("postgresql://us%40er@h/my%20db", "h", 5432, "us@er", "my db"),
            ("postgresql://u@[::1]:5433/d", "::1", 5433, "u", "d"),
            (
                "postgresql://u@%2Fvar%2Frun%2Fpostgresql/d",
                "/var/run/postgresql",
                5432,
                "u",
                "d",
            ),
            ("postgresql:///d?host=/tmp&port=5499", "/tmp", 5499, "osuser", "d"),
            ("postgresql:///?host=h&user=qu&dbname=qd", "h", 5432, "qu", "qd"),
            ("  postgresql://u@h/d  ", "h", 5432, "u", "d"),
        ];
        for (url, host, port, user, dbname) in cases {
            let ep = resolve_endpoint("source", url, Path::new("c.toml"), "o".into(), &env)
                .unwrap_or_else(|e| panic!("{url}: {e}"));
            assert_eq!(
                (ep.host.as_str(), ep.port, ep.user.as_str(), ep.dbname.as_str()),
                (host, port, user, dbname),
                "{url}"
            );
            assert_eq!(ep.pg.get_ports(), &[port], "{url}");
            let expected_host = if host.starts_with('/') {
                Host::Unix(PathBuf::from(host))
            } else {
                Host::Tcp(host.to_string())
            };
            assert_eq!(ep.pg.get_hosts(), &[expected_host], "{url}");
            assert_eq!(ep.is_unix_socket(), host.starts_with('/'));
        }

        let ep = resolve_endpoint(
            "source",
            "postgresql://u@h/d?sslmode=disable&application_name=pgv%20shift&connect_timeout=7&keepalives=0&target_session_attrs=read-write&options=-c%20x%3Dy",
            Path::new("c.toml"),
            "o".into(),
            &no_env,
        )
        .unwrap();
        assert_eq!(ep.pg.get_ssl_mode(), SslMode::Disable);
        assert_eq!(ep.pg.get_application_name(), Some("pgv shift"));
        assert_eq!(ep.pg.get_connect_timeout(), Some(&Duration::from_secs(7)));
        assert!(!ep.pg.get_keepalives());
        assert_eq!(ep.pg.get_options(), Some("-c x=y"));

        // (url, error fragment)
        let errors = [
            ("", "empty"),
            ("host=h user=u", "postgresql://"),
            ("mysql://u@h/d", "postgresql://"),
            ("postgresql://u@h/d?foo=1", "unknown query parameter `foo`"),
            (
                "postgresql://u@h/d?hostaddr=1.2.3.4",
                "unknown query parameter `hostaddr`",
            ),
            ("postgresql://u@h/d?sslmode", "`sslmode` has no value"),
            (
                "postgresql://u@h/d?sslmode=allow",
                "expected disable, prefer, require, verify-ca or verify-full",
            ),
            ("postgresql://u@h/d?connect_timeout=x", "connect_timeout"),
            ("postgresql://u@h:0/d", "port"),
            ("postgresql://u@h:70000/d", "invalid port"),
            ("postgresql://u@h/d?port=abc", "port \"abc\""),
            ("postgresql://u@h1,h2/d", "multiple hosts"),
            ("postgresql://u@/d", "no host"),
            ("postgresql:///d", "no host"),
            ("postgresql://h/d", "USER environment variable"),
            ("postgresql://u@h/d#x", "fragment"),
            ("postgresql://u@h/d%zz", "percent-encoding"),
            ("postgresql://u@h/d%ff", "UTF-8"),
        ];
        for (url, fragment) in errors {
            match resolve_endpoint("source", url, Path::new("c.toml"), "source.url".into(), &no_env) {
                Ok(ep) => panic!("{url}: expected an error, got {ep:?}"),
                Err(e) => {
                    let msg = e.to_string();
                    assert!(msg.contains(fragment), "{url}: {msg:?} lacks {fragment:?}");
                    assert!(msg.starts_with("source.url: "), "{msg}");
                }
            }
        }
    }

    #[test]
    fn password_precedence() {
        let dir = TempDir::new("precedence");
        let passfile = dir.file("pgpass", "*:*:*:*:from-passfile\n", 0o600);
        let passfile = passfile.to_str().unwrap();
        let cases: [PasswordCase<'_>; 7] = [
            (
                "postgresql://u:from-url@h/d",
                vec![("PGPASSWORD", "from-env"), ("PGPASSFILE", passfile)],
                Some("from-url"),
            ),
            ("postgresql://u:p%3Aw%40d@h/d", vec![], Some("p:w@d")),
            (
                "postgresql://u@h/d?password=from-query",
                vec![("PGPASSWORD", "from-env")],
                Some("from-query"),
            ),
            (
                "postgresql://u@h/d",
                vec![("PGPASSWORD", "from-env"), ("PGPASSFILE", passfile)],
                Some("from-env"),
            ),
            (
                "postgresql://u:@h/d",
                vec![("PGPASSWORD", ""), ("PGPASSFILE", passfile)],
                Some("from-passfile"),
            ),
            ("postgresql://u@h/d", vec![("PGPASSFILE", "/nonexistent/pgpass")], None),
            ("postgresql://u@h/d", vec![], None),
        ];
        for (url, vars, expected) in cases {
            let ep = resolve_endpoint("source", url, Path::new("c.toml"), "o".into(), &env_from(&vars)).unwrap();
            assert_eq!(ep.password.as_deref(), expected, "{url} {vars:?}");
            assert_eq!(ep.pg.get_password(), expected.map(str::as_bytes), "{url} {vars:?}");
        }
    }

    #[test]
    fn passfile_from_home_and_pgpassfile() {
        let home = TempDir::new("home");
        home.file(".pgpass", "h:5432:d:u:from-home\n", 0o600);
        let other = TempDir::new("other");
        let explicit = other.file("pass", "h:5432:d:u:from-pgpassfile\n", 0o600);
        let home_str = home.0.to_str().unwrap();
        let url = "postgresql://u@h/d";
        let ep = resolve_endpoint("s", url, Path::new("c"), "o".into(), &env_from(&[("HOME", home_str)])).unwrap();
        assert_eq!(ep.password.as_deref(), Some("from-home"));
        let vars = [("HOME", home_str), ("PGPASSFILE", explicit.to_str().unwrap())];
        let ep = resolve_endpoint("s", url, Path::new("c"), "o".into(), &env_from(&vars)).unwrap();
        assert_eq!(ep.password.as_deref(), Some("from-pgpassfile"));
    }

    #[cfg(unix)]
    #[test]
    fn passfile_permissions() {
        let dir = TempDir::new("perms");
        let url = "postgresql://u@h/d";
        // (mode, used?)
        for (mode, used) in [
            (0o600, true),
            (0o400, true),
            (0o640, false),
            (0o604, false),
            (0o644, false),
            (0o660, false),
        ] {
            let file = dir.file(&format!("pass-{mode:o}"), "*:*:*:*:pw\n", mode);
            let vars = [("PGPASSFILE", file.to_str().unwrap())];
            let ep = resolve_endpoint("s", url, Path::new("c"), "o".into(), &env_from(&vars)).unwrap();
            assert_eq!(ep.password.is_some(), used, "mode {mode:o}");
        }
        // A directory is not a plain file.
        let vars = [("PGPASSFILE", dir.0.to_str().unwrap())];
        let ep = resolve_endpoint("s", url, Path::new("c"), "o".into(), &env_from(&vars)).unwrap();
        assert_eq!(ep.password, None);
    }

    #[test]
    fn passfile_matching() {
        let file = "\
# comment line: *:*:*:*:never
db1.example.com:5432:app:alice:alice-pw
db1.example.com:*:*:bob:bob-pw
*:5433:*:*:port-5433-pw
localhost:5432:app:carol:carol\\:pw\\\\x:ignored-extra-field
weird\\:host:5432:app:dave:dave-pw
\\*:5432:app:erin:literal-star-pw
db1.example.com:5432:app:frank:
*:*:*:*:fallback-pw\r
";
        // (host, port, db, user, expected)
        let cases = [
            ("db1.example.com", "5432", "app", "alice", Some("alice-pw")),
            ("db1.example.com", "5432", "other", "alice", Some("fallback-pw")),
            ("db1.example.com", "9999", "x", "bob", Some("bob-pw")),
            ("anything", "5433", "x", "y", Some("port-5433-pw")),
            ("localhost", "5432", "app", "carol", Some("carol:pw\\x")),
            ("weird:host", "5432", "app", "dave", Some("dave-pw")),
            ("*", "5432", "app", "erin", Some("literal-star-pw")),
            ("elsewhere", "5432", "app", "erin", Some("fallback-pw")),
            ("db1.example.com", "5432", "app", "frank", None),
            ("#", "x", "y", "z", Some("fallback-pw")),
        ];
        for (host, port, db, user, expected) in cases {
            assert_eq!(
                passfile_lookup(file, host, port, db, user).as_deref(),
                expected,
                "{host}:{port}:{db}:{user}"
            );
        }
        assert_eq!(
            passfile_lookup("h:5432:d:u\n", "h", "5432", "d", "u"),
            None,
            "too few fields"
        );
        assert_eq!(passfile_lookup("", "h", "5432", "d", "u"), None);
        assert_eq!(passfile_host("/var/run/postgresql"), "localhost");
        assert_eq!(passfile_host("/tmp/"), "localhost");
        assert_eq!(passfile_host("/srv/sock"), "/srv/sock");
        assert_eq!(passfile_host("db"), "db");
    }

    #[test]
    fn unix_socket_passfile_uses_localhost() {
        let dir = TempDir::new("sock");
        let file = dir.file("pass", "localhost:5432:d:u:sock-pw\n", 0o600);
        let vars = [("PGPASSFILE", file.to_str().unwrap())];
        let ep = resolve_endpoint(
            "s",
            "postgresql://u@%2Ftmp/d",
            Path::new("c"),
            "o".into(),
            &env_from(&vars),
        )
        .unwrap();
        assert_eq!(ep.password.as_deref(), Some("sock-pw"));
    }

    #[test]
    fn redaction() {
        let cases = [
            ("postgresql://u:secret@h:5432/db", "postgresql://u:***@h:5432/db"),
            ("postgres://u@h/db", "postgres://u@h/db"),
            ("postgresql://h/db", "postgresql://h/db"),
            (
                "postgresql://u:p%40ss@h/db?sslmode=require",
                "postgresql://u:***@h/db?sslmode=require",
            ),
            (
                "postgresql://u@h/db?sslmode=require&password=secret&application_name=x",
                "postgresql://u@h/db?sslmode=require&password=***&application_name=x",
            ),
            (
                "postgresql://u@h/db?pass%77ord=secret",
                "postgresql://u@h/db?pass%77ord=***",
            ),
            ("postgresql://u:se/cret@h/db", "postgresql://u:***@h/db"),
            ("postgresql://u:se?cret@h/db", "postgresql://u:***@h/db"),
            ("postgresql://u:se@cret@h/db", "postgresql://u:***@h/db"),
            (
                "postgresql://u:secret@h:x/db?application_name=a@b",
                "postgresql://u:***@h:x/db?application_name=a@b",
            ),
            (
                "postgresql://u@h:5432/db?application_name=a@b",
                "postgresql://u@h:5432/db?application_name=a@b",
            ),
            ("POSTGRESQL://u:secret@h", "POSTGRESQL://u:***@h"),
            (
                "host=h user=u password=secret dbname=d",
                "host=h user=u password=*** dbname=d",
            ),
            (
                "host=h password = 'sec ret\\' x' port=5432",
                "host=h password = *** port=5432",
            ),
            ("password=secret", "password=***"),
            ("host=h", "host=h"),
            ("host=h password='unterminated secret", "<unparseable url>"),
            ("secret", "<unparseable url>"),
            ("user:secret@host", "<unparseable url>"),
            ("://u:secret@h", "<unparseable url>"),
            ("", "<unparseable url>"),
        ];
        for (input, expected) in cases {
            let redacted = redact_url(input);
            assert_eq!(redacted, expected, "{input}");
            assert!(
                !redacted.contains("secret") && !redacted.contains("cret@"),
                "{input} -> {redacted}"
            );
        }
        assert_eq!(
            redact_secrets("invalid type: string \"postgresql://u:secret@h/db\", expected x; password=secret"),
            "invalid type: string \"postgresql://u:***@h/db\", expected x; password=***"
        );
    }

    #[test]
    fn passwords_never_in_debug_or_display() {
        let dir = TempDir::new("debug");
        let passfile = dir.file("pass", &format!("*:*:*:*:{SECRET}-file\n"), 0o600);
        let text = config_text(&format!("postgresql://u:{SECRET}@src/db"), "postgresql://u@tgt/db", "");
        for vars in [
            vec![("PGPASSFILE", passfile.to_str().unwrap())],
            vec![("PGPASSWORD", SECRET)],
        ] {
            let config = parse(&text, &env_from(&vars)).unwrap();
            assert_eq!(config.source.password.as_deref(), Some(SECRET));
            assert!(config.target.password.as_deref().is_some_and(|p| p.starts_with(SECRET)));
            for shown in [
                format!("{config:?}"),
                format!("{config:#?}"),
                format!("{:?}", config.source),
                format!("{}", config.source),
                format!("{}", config.target),
                config.source.redacted_url.clone(),
                format!("{:?}", config.source.pg),
            ] {
                assert!(!shown.contains(SECRET), "password leaked: {shown}");
            }
            assert!(format!("{:?}", config.source).contains("***"));
        }
    }

    #[test]
    fn passwords_never_in_errors() {
        let texts = [
            // invalid URLs of all kinds
            config_text(&format!("postgresql://u:{SECRET}@h:99999/db"), "postgresql://u@t/db", ""),
            config_text(&format!("postgresql://u:{SECRET}@h/db?bogus=1"), "postgresql://u@t/db", ""),
            config_text(&format!("postgresql://u:{SECRET}@h/db#frag"), "postgresql://u@t/db", ""),
            config_text(&format!("postgresql://u:{SECRET}@/db"), "postgresql://u@t/db", ""),
            config_text(&format!("postgresql://u:{SECRET}/x@h/db"), "postgresql://u@t/db", ""),
            config_text(&format!("postgresql://u@h/db?password={SECRET}&sslmode=bad"), "postgresql://u@t/db", ""),
            config_text(&format!("host=h password={SECRET}"), "postgresql://u@t/db", ""),
            config_text(SECRET, "postgresql://u@t/db", ""),
            // TOML errors on a line holding the password
            format!("[source]\nurl = \"postgresql://u:{SECRET}@h/db\n"),
            format!("[source]\npassword = \"{SECRET}\"\n"),
            format!("[source]\nurl = \"postgresql://u:{SECRET}@h/db\" x\n"),
            format!("[replication]\nslot = \"postgresql://u:{SECRET}@h/db\"\npublication = \"p\"\n[[tables]]\nsource = \"t\""),
            format!("[source]\nurl = \"postgresql://u@h/db\"\n[replication]\nslot = \"s\"\npublication = \"p\"\nbatch_max_changes = \"postgresql://u:{SECRET}@h\"\n"),
        ];
        for text in texts {
            let e = parse_err(&text);
            let (shown, debug) = (e.to_string(), format!("{e:?}"));
            assert!(
                !shown.contains(SECRET) && !debug.contains(SECRET),
                "password leaked:\n{shown}\n{debug}"
            );
        }
    }

    #[test]
    fn validation_errors() {
        let base = |replication: &str, rest: &str| {
            format!(
                "[source]\nurl = \"postgresql://u@src/db\"\n[target]\nurl = \"postgresql://u@tgt/db\"\n[replication]\n{replication}\n{rest}"
            )
        };
        let ok_repl = "slot = \"s\"\npublication = \"p\"";
        let one_table = "[[tables]]\nsource = \"public.items\"";
        let long = "a".repeat(64);
        // (case, text, key, fragments that must appear in the message)
        let cases: Vec<(&str, String, &str, Vec<&str>)> = vec![
            ("slot upper case", base("slot = \"My-Slot\"\npublication = \"p\"", one_table), "replication.slot", vec!["\"My-Slot\"", "lowercase", "\"my_slot\"", ":6:8:"]),
            ("slot empty", base("slot = \"\"\npublication = \"p\"", one_table), "replication.slot", vec!["is empty"]),
            ("slot too long", base(&format!("slot = \"{long}\"\npublication = \"p\""), one_table), "replication.slot", vec!["64 bytes", "63"]),
            ("publication dash", base("slot = \"s\"\npublication = \"pub-1\"", one_table), "replication.publication", vec!["\"pub_1\""]),
            ("publication unicode", base("slot = \"s\"\npublication = \"pübl\"", one_table), "replication.publication", vec!["lowercase"]),
            ("batch zero", base(&format!("{ok_repl}\nbatch_max_changes = 0"), one_table), "replication.batch_max_changes", vec!["at least 1", ":8:21:"]),
            ("batch negative", base(&format!("{ok_repl}\nbatch_max_changes = -5"), one_table), "replication.batch_max_changes", vec!["-5"]),
            ("status zero", base(&format!("{ok_repl}\nstatus_interval_secs = 0"), one_table), "replication.status_interval_secs", vec!["between 1 and 3600"]),
            ("retry negative", base(&format!("{ok_repl}\nmax_retry_duration_secs = -1"), one_table), "replication.max_retry_duration_secs", vec!["-1", "between 0 and 604800", "0 never reconnects", "default 300"]),
            ("retry too long", base(&format!("{ok_repl}\nmax_retry_duration_secs = 604801"), one_table), "replication.max_retry_duration_secs", vec!["604801", "between 0 and 604800"]),
            ("workers zero", base(ok_repl, &format!("[snapshot]\nworkers = 0\n{one_table}")), "snapshot.workers", vec!["between 1 and 64"]),
            ("workers too many", base(ok_repl, &format!("[snapshot]\nworkers = 65\n{one_table}")), "snapshot.workers", vec!["65", "between 1 and 64"]),
            ("no tables", base(ok_repl, ""), "tables", vec!["at least one", "[[tables]]"]),
            ("empty tables array", format!("tables = []\n{}", base(ok_repl, "")), "tables", vec!["at least one"]),
            (
                "bad source name",
                base(ok_repl, "[[tables]]\nsource = \"a.b.c\""),
                "[[tables]] #1 source",
                vec!["not a table name"],
            ),
            (
                "bad target name",
                base(ok_repl, "[[tables]]\nsource = \"t\"\ntarget = \"my table\""),
                "[[tables]] #1 target",
                vec!["contains spaces"],
            ),
            (
                "duplicate source after case folding",
                base(ok_repl, "[[tables]]\nsource = \"public.items\"\ntarget = \"a\"\n[[tables]]\nsource = \"Items\"\ntarget = \"b\""),
                "[[tables]] #2 source",
                vec!["public.items", "#1 (line 9)", "once"],
            ),
            (
                "two sources, one target",
                base(ok_repl, "[[tables]]\nsource = \"a\"\ntarget = \"x.t\"\n[[tables]]\nsource = \"b\"\ntarget = \"x.t\""),
                "[[tables]] #2 target",
                vec!["x.t", "#1", "distinct"],
            ),
            (
                "implicit target collides",
                base(ok_repl, "[[tables]]\nsource = \"a\"\ntarget = \"public.b\"\n[[tables]]\nsource = \"b\""),
                "[[tables]] #2 target",
                vec!["public.b"],
            ),
            (
                "same database onto itself",
                base(ok_repl, one_table).replace("u@tgt/db", "u@src:5432/db"),
                "tables",
                vec!["same database", "onto itself", "public.items"],
            ),
        ];
        for (name, text, key, fragments) in cases {
            let e = parse_err(&text);
            let msg = e.to_string();
            match &e {
                ConfigError::Invalid { key: k, path, .. } => {
                    assert_eq!(k, key, "{name}: {msg}");
                    assert_eq!(path, Path::new("/etc/pgvshift.toml"));
                }
                other => panic!("{name}: expected Invalid, got {other:?}"),
            }
            assert!(msg.starts_with("/etc/pgvshift.toml"), "{name}: {msg}");
            for f in fragments {
                assert!(msg.contains(f), "{name}: {msg:?} lacks {f:?}");
            }
        }
        // Same database, but mapped to another table: fine.
        let text =
            base(ok_repl, "[[tables]]\nsource = \"items\"\ntarget = \"items_v2\"").replace("u@tgt/db", "u@src/db");
        parse(&text, &no_env).unwrap();
    }

    #[test]
    fn toml_errors_carry_path_and_position() {
        let valid = config_text("postgresql://u@s/d", "postgresql://u@t/d", "");
        // (case, text, line, column, fragment)
        let cases = [
            (
                "syntax",
                "[source]\nurl = \"postgresql://u@h/db\nx = 1\n".to_string(),
                2,
                27,
                "invalid basic string",
            ),
            (
                "unknown key",
                valid.replace("slot = ", "slott = "),
                7,
                1,
                "unknown field `slott`",
            ),
            (
                "unknown section",
                format!("{valid}\n[snapshots]\nworkers = 1\n"),
                13,
                2,
                "unknown field `snapshots`",
            ),
            (
                "unknown table key",
                valid.replace("source = \"public.items\"", "sourc = \"public.items\""),
                11,
                1,
                "unknown field `sourc`",
            ),
            (
                "wrong type",
                valid.replace("slot = \"pgvshift\"", "slot = 5"),
                7,
                8,
                "invalid type: integer `5`, expected a string",
            ),
            (
                "wrong type for number",
                format!("{valid}\n[snapshot]\nworkers = \"2\""),
                14,
                11,
                "invalid type: string \"2\", expected an integer",
            ),
            (
                "missing key",
                valid.replace("publication = \"pgvshift\"", ""),
                6,
                1,
                "missing field `publication`",
            ),
        ];
        for (name, text, line, column, fragment) in cases {
            let e = parse_err(&text);
            let msg = e.to_string();
            match &e {
                ConfigError::Toml { line: l, column: c, .. } => assert_eq!((*l, *c), (line, column), "{name}: {msg}"),
                other => panic!("{name}: expected Toml, got {other:?}"),
            }
            assert!(
                msg.starts_with("/etc/pgvshift.toml: TOML parse error at line"),
                "{name}: {msg}"
            );
            assert!(msg.contains(&format!("line {line}, column {column}")), "{name}: {msg}");
            assert!(msg.contains(fragment), "{name}: {msg:?} lacks {fragment:?}");
        }
        let e = parse_err("[source]\nurl = \"postgresql://u@h/db\"\n");
        assert!(e.to_string().contains("missing field `replication`"), "{e}");
    }

    #[test]
    fn load_from_disk() {
        let dir = TempDir::new("load");
        let missing = dir.0.join("nope.toml");
        let e = Config::load_with_env(&missing, &no_env).unwrap_err();
        assert!(matches!(e, ConfigError::NotFound { .. }));
        assert_eq!(e.to_string(), format!("config file {} not found", missing.display()));
        assert_eq!(e.path(), missing);

        let path = dir.file(
            "c.toml",
            &config_text("postgresql://u@s/d", "postgresql://u@t/d", ""),
            0o644,
        );
        let c = Config::load_with_env(&path, &no_env).unwrap();
        assert_eq!(c.path, path);
        let e = Config::load_with_env(&dir.0, &no_env).unwrap_err();
        assert!(matches!(e, ConfigError::Read { .. }), "{e:?}");
    }

    #[test]
    fn line_col_counts_characters() {
        let text = "ab\nçd=x\n";
        assert_eq!(line_col(text, 0), (1, 1));
        assert_eq!(line_col(text, 3), (2, 1));
        assert_eq!(line_col(text, 6), (2, 3));
        assert_eq!(line_col(text, 1000), (3, 1));
    }

    #[test]
    fn name_suggestions() {
        for (input, expected) in [
            ("My-Slot", "my_slot"),
            ("", "pgvshift"),
            ("---", "pgvshift"),
            ("ok_1", "ok_1"),
        ] {
            assert_eq!(suggest_name(input), expected);
        }
        assert_eq!(suggest_name(&"x".repeat(100)).len(), MAX_NAME_BYTES);
    }
}
