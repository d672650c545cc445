//! The library's error type. Each variant maps to one CLI exit code (see [`Error::exit_code`]).

use crate::config::ConfigError;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Bad usage or configuration: exit code 2.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// Bad command-line usage (e.g. a destructive verb without `--yes`): exit code 2.
    #[error("{0}")]
    Usage(String),
    /// A check found problems that must be fixed first; nothing was changed: exit code 1.
    #[error("blocking problems found, nothing was changed:\n{}", .0.iter().map(|p| format!("  - {p}")).collect::<Vec<_>>().join("\n"))]
    Blocked(Vec<String>),
    /// `pgvshift check` printed blocking findings (already shown): exit code 1.
    #[error("{0} blocking problem(s) found (listed above); nothing was changed")]
    CheckFailed(usize),
    /// A database statement failed: exit code 3.
    #[error("{context}: {}", crate::pg::describe(.source))]
    Db {
        context: String,
        #[source]
        source: tokio_postgres::Error,
    },
    /// The replication connection failed: exit code 3.
    #[error("{context}: {source}")]
    Replication {
        context: String,
        #[source]
        source: pgwire_replication::PgWireError,
    },
    /// Anything else at run time (a decoding problem, an unexpected state): exit code 3.
    #[error("{0}")]
    Runtime(String),
}

impl Error {
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Blocked(_) | Error::CheckFailed(_) => 1,
            Error::Config(_) | Error::Usage(_) => 2,
            _ => 3,
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Attach a context to database errors: `client.execute(..).await.db("creating the slot")?`.
pub trait DbContext<T> {
    fn db(self, context: impl FnOnce() -> String) -> Result<T>;
}

impl<T> DbContext<T> for std::result::Result<T, tokio_postgres::Error> {
    fn db(self, context: impl FnOnce() -> String) -> Result<T> {
        self.map_err(|source| Error::Db {
            context: context(),
            source,
        })
    }
}
