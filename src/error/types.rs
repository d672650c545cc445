//! The library's error type. Each variant maps to one CLI exit code (see [`Error::exit_code`]).

use crate::config::ConfigError;
use crate::config::Side;

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
    /// `verify` found differences, or a `cutover` step did not complete (its fence, if any,
    /// was lifted): exit code 1. The message says what and what to do.
    #[error("{0}")]
    Failed(String),
    /// A database statement failed: exit code 3.
    #[error("{context}: {}", describe(.source))]
    Db {
        context: String,
        #[source]
        source: tokio_postgres::Error,
    },
    /// A connection (SQL or replication) could not be opened: exit code 3. One line naming the
    /// database (URL redacted), the cause, and a concrete fix in parentheses; built by
    /// `crate::error::connect`.
    #[error("cannot {} {redacted_url}: {cause} ({fix})", connect_phrase(*.side, *.replication))]
    Connect {
        /// `None` for a bare URL (demo, tests).
        side: Option<Side>,
        /// The replication (walsender) connection rather than a SQL one.
        replication: bool,
        redacted_url: String,
        cause: String,
        fix: String,
        /// Refused, timed out, a network error, or a server starting up / out of connections:
        /// reconnecting later can work (used by the retry loop; a wrong password cannot).
        transient: bool,
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
            Error::Blocked(_) | Error::CheckFailed(_) | Error::Failed(_) => 1,
            Error::Config(_) | Error::Usage(_) => 2,
            _ => 3,
        }
    }

    /// Whether the error is a lost or refused connection, or a server shutting down or not
    /// accepting connections yet: something that reconnecting later can fix. False for
    /// everything else (constraint violations, decoding errors, configuration, blocking
    /// problems, failed authentication, a missing slot, ...).
    pub fn is_transient(&self) -> bool {
        match self {
            Error::Db { source, .. } => {
                source.is_closed()
                    || source.code().is_some_and(|c| transient_sqlstate(c.code()))
                    || caused_by_io(source)
            }
            Error::Replication { source, .. } => transient_replication(source),
            Error::Runtime(message) => message == SOURCE_ENDED_STREAM || message.starts_with(SNAPSHOT_SESSION_LOST),
            Error::Connect { transient, .. } => *transient,
            Error::Config(_) | Error::Usage(_) | Error::Blocked(_) | Error::CheckFailed(_) | Error::Failed(_) => false,
        }
    }
}

/// The replication stream ended without being asked to: the source is shutting down (a
/// walsender told to stop finishes the stream cleanly before the server goes away).
pub const SOURCE_ENDED_STREAM: &str = "the source ended the replication stream";

/// Start of the error when the copy workers cannot import the exported snapshot because the
/// session that exported it (the slot's replication connection) is gone.
pub const SNAPSHOT_SESSION_LOST: &str = "the source closed the replication session holding the exported snapshot";

/// SQLSTATEs meaning "the connection is gone or cannot be had right now": class 08
/// (connection exception), 57P01 admin_shutdown, 57P02 crash_shutdown, 57P03
/// cannot_connect_now (starting up or shutting down), 53300 too_many_connections.
pub fn transient_sqlstate(code: &str) -> bool {
    code.starts_with("08") || matches!(code, "57P01" | "57P02" | "57P03" | "53300")
}

/// Whether `e` or any error in its `source()` chain is an I/O error.
fn caused_by_io(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut cur = Some(e);
    while let Some(err) = cur {
        if err.is::<std::io::Error>() {
            return true;
        }
        cur = err.source();
    }
    false
}

/// pgwire-replication reports I/O failures as `Io`, and the server's ErrorResponse as
/// `Server("<message> (SQLSTATE <code>)")`.
fn transient_replication(e: &pgwire_replication::PgWireError) -> bool {
    use pgwire_replication::PgWireError;
    match e {
        PgWireError::Io(_) => true,
        PgWireError::Server(message) => server_message_sqlstate(message).is_some_and(transient_sqlstate),
        _ => false,
    }
}

/// The SQLSTATE at the end of a pgwire-replication server error message.
fn server_message_sqlstate(message: &str) -> Option<&str> {
    let start = message.rfind("(SQLSTATE ")? + "(SQLSTATE ".len();
    let code = message[start..].strip_suffix(')')?;
    (code.len() == 5 && code.bytes().all(|b| b.is_ascii_alphanumeric())).then_some(code)
}

fn connect_phrase(side: Option<Side>, replication: bool) -> String {
    match (side, replication) {
        (Some(side), false) => format!("connect to the {side}"),
        (Some(side), true) => format!("open a replication connection to the {side}"),
        (None, false) => "connect to".into(),
        (None, true) => "open a replication connection to".into(),
    }
}

/// A one-line description of a tokio-postgres error that keeps the server's message, detail
/// and hint (its `Display` alone says only "db error").
pub fn describe(e: &tokio_postgres::Error) -> String {
    if let Some(db) = e.as_db_error() {
        let mut s = format!("{} ({})", db.message(), db.code().code());
        // pgrx extensions (VectorChord) put a Rust backtrace ("0: ...", one frame a line) in
        // DETAIL: noise in a one-line message.
        if let Some(d) = db.detail().filter(|d| !d.trim_start().starts_with("0:")) {
            s.push_str(&format!("; detail: {d}"));
        }
        if let Some(h) = db.hint() {
            s.push_str(&format!("; hint: {h}"));
        }
        if let Some(t) = db.table() {
            s.push_str(&format!("; table: {t}"));
        }
        if let Some(c) = db.column() {
            s.push_str(&format!("; column: {c}"));
        }
        s
    } else {
        let mut s = e.to_string();
        let mut cur: Option<&dyn std::error::Error> = std::error::Error::source(e);
        while let Some(inner) = cur {
            s.push_str(&format!(": {inner}"));
            cur = inner.source();
        }
        s
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

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use pgwire_replication::PgWireError;

    use super::*;

    fn replication(source: PgWireError) -> Error {
        Error::Replication {
            context: "reading from replication slot s".into(),
            source,
        }
    }

    #[test]
    fn sqlstates() {
        for code in ["08000", "08003", "08006", "08P01", "57P01", "57P02", "57P03", "53300"] {
            assert!(transient_sqlstate(code), "{code}");
        }
        for code in ["23505", "28P01", "42704", "40001", "57014", "53200", "55006", "0A000"] {
            assert!(!transient_sqlstate(code), "{code}");
        }
    }

    #[test]
    fn replication_errors() {
        let io = |kind| replication(PgWireError::Io(Arc::new(std::io::Error::new(kind, "boom"))));
        assert!(io(std::io::ErrorKind::ConnectionReset).is_transient());
        assert!(io(std::io::ErrorKind::UnexpectedEof).is_transient());
        assert!(io(std::io::ErrorKind::ConnectionRefused).is_transient());
        let server = |m: &str| replication(PgWireError::Server(m.into()));
        // The forms pgwire-replication gives the server's ErrorResponse.
        assert!(server("terminating connection due to administrator command (SQLSTATE 57P01)").is_transient());
        assert!(server("the database system is shutting down (SQLSTATE 57P03)").is_transient());
        assert!(server("the database system is starting up (SQLSTATE 57P03)").is_transient());
        assert!(server("sorry, too many clients already (SQLSTATE 53300)").is_transient());
        assert!(server("error (SQLSTATE 08006)").is_transient());
        assert!(!server("replication slot \"s\" does not exist (SQLSTATE 42704)").is_transient());
        assert!(!server("replication slot \"s\" is active for PID 42 (SQLSTATE 55006)").is_transient());
        assert!(!server("password authentication failed for user \"u\" (SQLSTATE 28P01)").is_transient());
        assert!(!server("terminating connection due to administrator command").is_transient());
        assert!(!server("unknown server error").is_transient());
        assert!(!replication(PgWireError::Auth("SCRAM server error: invalid-proof".into())).is_transient());
        assert!(!replication(PgWireError::Protocol("malformed DataRow".into())).is_transient());
        assert!(!replication(PgWireError::Task("replication worker panicked".into())).is_transient());
        assert_eq!(
            server_message_sqlstate("x (SQLSTATE 57P01)"),
            Some("57P01"),
            "the code is read from the end of the message"
        );
        assert_eq!(server_message_sqlstate("x (SQLSTATE 57P01) trailing"), None);
    }

    #[test]
    fn runtime_and_other_errors() {
        assert!(Error::Runtime(SOURCE_ENDED_STREAM.into()).is_transient());
        assert!(Error::Runtime(format!("{SNAPSHOT_SESSION_LOST} (importing it failed: ...)")).is_transient());
        assert!(!Error::Runtime("decoding a pgoutput message after 0/10: truncated".into()).is_transient());
        assert!(!Error::Runtime(format!("{SOURCE_ENDED_STREAM} unexpectedly")).is_transient());
        assert!(!Error::Blocked(vec!["target table t already exists and is not empty".into()]).is_transient());
        assert!(!Error::Usage("cleanup needs --yes".into()).is_transient());
    }

    #[derive(Debug, thiserror::Error)]
    #[error("outer")]
    struct Outer(#[source] Middle);
    #[derive(Debug, thiserror::Error)]
    #[error("middle")]
    struct Middle(#[source] std::io::Error);

    #[test]
    fn io_anywhere_in_the_chain() {
        let nested = Outer(Middle(std::io::Error::from(std::io::ErrorKind::BrokenPipe)));
        assert!(caused_by_io(&nested));
        assert!(caused_by_io(&std::io::Error::from(std::io::ErrorKind::TimedOut)));
        assert!(!caused_by_io(&std::fmt::Error));
    }

    /// A real tokio-postgres error: connecting to a port nobody listens on.
    #[tokio::test]
    async fn refused_connection_is_transient() {
        let port = {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            listener.local_addr().unwrap().port()
        }; // closed again: nothing listens there now
        let err = tokio_postgres::connect(
            &format!("host=127.0.0.1 port={port} user=u dbname=d connect_timeout=5"),
            tokio_postgres::NoTls,
        )
        .await
        .err()
        .expect("nothing listens on the port");
        let err = Error::Db {
            context: "connecting to the target".into(),
            source: err,
        };
        assert!(err.is_transient(), "{err}");
    }
}
