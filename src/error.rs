//! The library's error type. Each variant maps to one CLI exit code (see [`Error::exit_code`]).

use crate::config::ConfigError;
use crate::pg::Side;

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
    /// A database statement failed: exit code 3.
    #[error("{context}: {}", crate::pg::describe(.source))]
    Db {
        context: String,
        #[source]
        source: tokio_postgres::Error,
    },
    /// A connection (SQL or replication) could not be opened: exit code 3. One line naming the
    /// database (URL redacted), the cause, and a concrete fix in parentheses; built by
    /// `crate::connect_error`.
    #[error("cannot {} {redacted_url}: {cause} ({fix})", connect_phrase(*.side, *.replication))]
    Connect {
        /// `None` for a bare URL (demo, tests).
        side: Option<Side>,
        /// The replication (walsender) connection rather than a SQL one.
        replication: bool,
        redacted_url: String,
        cause: String,
        fix: String,
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
            Error::Blocked(_) => 1,
            Error::Config(_) | Error::Usage(_) => 2,
            _ => 3,
        }
    }
}

fn connect_phrase(side: Option<Side>, replication: bool) -> String {
    match (side, replication) {
        (Some(side), false) => format!("connect to the {side}"),
        (Some(side), true) => format!("open a replication connection to the {side}"),
        (None, false) => "connect to".into(),
        (None, true) => "open a replication connection to".into(),
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
