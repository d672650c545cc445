//! Configuration: the TOML file, environment overrides and secret resolution.
//!
//! ```text
//!   config.toml ──> raw.rs: Raw* structs (serde, deny_unknown_fields, spans)
//!               ──> raw.rs: validate each section ──> model.rs: Config (what the stages read)
//!   source.url / target.url, PGVSHIFT_SOURCE_URL / PGVSHIFT_TARGET_URL
//!               ──> endpoint.rs: libpq URL ──> Endpoint (tokio_postgres::Config, TLS settings)
//!                      password: URL, PGPASSWORD, then the password file (pgpass.rs)
//! ```
//!
//! The file (see `config.example.toml` at the repository root) is deserialized into private
//! `Raw*` structs with `deny_unknown_fields`, then validated and resolved into [`Config`]:
//! table names are parsed into [`QualifiedName`](crate::sql::QualifiedName)s, URLs into
//! [`Endpoint`]s with a fully resolved `tokio_postgres::Config`, and passwords are looked up
//! the way libpq does (URL, then `PGPASSWORD`, then the password file).
//!
//! # Secrets
//! Secrets never leave this module in readable form: [`Endpoint`] has a hand-written `Debug`,
//! every error that mentions a URL carries its [`redact_url`] form (redact.rs), and TOML
//! errors are rebuilt from the parser's message and position without echoing the offending
//! source line.

mod endpoint;
mod model;
mod pgpass;
pub mod profile;
mod raw;
mod redact;
mod size;
#[cfg(test)]
mod tests;

pub use endpoint::{Endpoint, RootCert, Side, SslMode, TlsSettings, DEFAULT_PORT};
pub use model::{
    Config, ConfigError, CutoverSettings, FinalVerify, IndexSettings, ReplicationSettings, SnapshotSettings,
    TableConfig, DEFAULT_BATCH_MAX_CHANGES, DEFAULT_CUTOVER_MAX_LAG, DEFAULT_MAX_RETRY_DURATION_SECS,
    DEFAULT_STATUS_INTERVAL_SECS, DEFAULT_WARN_RETAINED_WAL, DEFAULT_WORKERS, MAX_MAX_RETRY_DURATION_SECS,
    MAX_NAME_BYTES, MAX_STATUS_INTERVAL_SECS, MAX_WORKERS, SOURCE_URL_ENV, TARGET_URL_ENV,
};
pub use profile::Profile;
pub use redact::redact_url;
pub use size::{human_bytes, parse_size};
