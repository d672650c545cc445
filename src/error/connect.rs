//! One-line explanations of connections that could not be opened ([`Error::Connect`]), the
//! same for SQL connections (tokio-postgres) and replication connections (pgwire-replication):
//! the error of either library is first reduced to a [`Failure`], then [`explain`]ed as a cause
//! and a concrete fix. Messages name the host, port, user and TLS settings, never a password
//! (URLs appear in their redacted form).

use std::error::Error as StdError;
use std::io::ErrorKind;

use crate::config::Side;
use crate::config::{Endpoint, RootCert, SslMode};
use crate::error::Error;

/// What went wrong, independent of the client library.
#[derive(Debug, Clone, PartialEq)]
enum Failure {
    /// Nothing listens on the address (TCP refused, or no unix socket file).
    Refused,
    TimedOut,
    /// The host name could not be resolved; the resolver's message.
    Resolve(String),
    /// Another network error.
    Io(String),
    /// An error from the server (during the startup or authentication).
    Server {
        code: String,
        message: String,
    },
    /// `sslmode` needs TLS, and the server answered the SSLRequest with 'N'.
    TlsNotOffered,
    /// The server's certificate was rejected; rustls' description.
    Certificate(String),
    /// Another TLS failure.
    Handshake(String),
    /// The server asked for a password and we have none.
    NoPassword,
    /// The replication client cannot do the authentication method the server asks for.
    UnsupportedAuth(String),
    Other(String),
}

/// The [`Error::Connect`] for a failed tokio-postgres connect.
pub(crate) fn sql(endpoint: &Endpoint, side: Option<Side>, e: &tokio_postgres::Error) -> Error {
    build(endpoint, side, false, &from_tokio_postgres(e))
}

/// The [`Error::Connect`] for a replication connection that failed while being opened, or
/// `None` when `e` is not about opening the connection (e.g. the slot already exists).
pub(crate) fn replication(endpoint: &Endpoint, e: &pgwire_replication::PgWireError) -> Option<Error> {
    from_pgwire(e).map(|failure| build(endpoint, Some(Side::Source), true, &failure))
}

/// An [`Error::Connect`] for a failure found before connecting (the TLS setup).
pub(crate) fn setup(endpoint: &Endpoint, side: Option<Side>, problem: String) -> Error {
    build(endpoint, side, false, &Failure::Other(problem))
}

fn build(endpoint: &Endpoint, side: Option<Side>, replication: bool, failure: &Failure) -> Error {
    let url_name = match side {
        Some(side) => format!("the {side} URL"),
        None => "the URL".to_string(),
    };
    let (cause, fix) = explain(failure, endpoint, replication, &url_name);
    let transient = match failure {
        Failure::Refused | Failure::TimedOut | Failure::Io(_) => true,
        Failure::Server { code, .. } => crate::error::transient_sqlstate(code),
        _ => false,
    };
    Error::Connect {
        transient,
        side,
        replication,
        redacted_url: endpoint.redacted_url.clone(),
        cause: one_line(&cause),
        fix: one_line(&fix),
    }
}

fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn from_tokio_postgres(e: &tokio_postgres::Error) -> Failure {
    if let Some(db) = e.as_db_error() {
        return Failure::Server {
            code: db.code().code().to_string(),
            message: db.message().to_string(),
        };
    }
    // tokio-postgres' own text says only which step failed ("error connecting to server",
    // "error performing TLS handshake", "invalid configuration"); the cause is its source.
    let during_tls = e.to_string() == "error performing TLS handshake";
    let mut cur: Option<&(dyn StdError + 'static)> = e.source();
    while let Some(inner) = cur {
        if let Some(tls) = inner.downcast_ref::<rustls::Error>() {
            return from_rustls(tls);
        }
        if let Some(io) = inner.downcast_ref::<std::io::Error>() {
            if let Some(tls) = io.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>()) {
                return from_rustls(tls);
            }
            if during_tls {
                return Failure::Handshake(io.to_string());
            }
            return from_io(io);
        }
        let text = inner.to_string();
        match text.as_str() {
            "server does not support TLS" => return Failure::TlsNotOffered,
            "password missing" => return Failure::NoPassword,
            _ if during_tls => return Failure::Handshake(text),
            _ => {}
        }
        cur = inner.source();
    }
    Failure::Other(crate::error::describe(e))
}

fn from_rustls(e: &rustls::Error) -> Failure {
    match e {
        rustls::Error::InvalidCertificate(cert) => Failure::Certificate(cert.to_string()),
        other => Failure::Handshake(other.to_string()),
    }
}

fn from_io(e: &std::io::Error) -> Failure {
    let text = e.to_string();
    match e.kind() {
        // A unix socket file that does not exist means no server there, like a refused port.
        ErrorKind::ConnectionRefused | ErrorKind::NotFound => Failure::Refused,
        ErrorKind::TimedOut => Failure::TimedOut,
        _ if text.contains("failed to lookup address") => Failure::Resolve(text),
        _ => Failure::Io(text),
    }
}

fn from_pgwire(e: &pgwire_replication::PgWireError) -> Option<Failure> {
    use pgwire_replication::PgWireError as E;
    Some(match e {
        E::Io(io) => from_io(io),
        E::Tls(text) if text.contains("does not support TLS") => Failure::TlsNotOffered,
        E::Tls(text) => match text.split_once("invalid peer certificate: ") {
            Some((_, cert)) => Failure::Certificate(cert.to_string()),
            None => Failure::Handshake(text.trim_start_matches("TLS handshake failed: ").to_string()),
        },
        E::Auth(text) if text.contains("unsupported auth method") => Failure::UnsupportedAuth(text.clone()),
        E::Auth(text) => Failure::Other(format!("authentication failed: {text}")),
        E::Server(text) => {
            // pgwire-replication formats server errors as "message (SQLSTATE XXXXX)".
            let (message, code) = match text.rsplit_once(" (SQLSTATE ") {
                Some((message, rest)) => (message, rest.trim_end_matches(')')),
                None => (text.as_str(), ""),
            };
            if !is_connect_sqlstate(code, message) {
                return None;
            }
            Failure::Server {
                code: code.to_string(),
                message: message.to_string(),
            }
        }
        _ => return None,
    })
}

/// SQLSTATEs a server sends while refusing a new connection (as opposed to refusing a command
/// on an open one).
fn is_connect_sqlstate(code: &str, message: &str) -> bool {
    code.starts_with("28") // invalid authorization: pg_hba.conf, password, unknown role
        || code.starts_with("08") // connection exceptions
        || matches!(code, "3D000" | "53300" | "57P03")
        || (code == "42501" && message.contains("walsender"))
}

/// (cause, fix) for `failure`; `url_name` is "the source URL" or "the URL".
fn explain(failure: &Failure, ep: &Endpoint, replication: bool, url_name: &str) -> (String, String) {
    let (host, port, user) = (&ep.host, ep.port, &ep.user);
    let address = if ep.is_unix_socket() {
        format!("the unix socket {host}/.s.PGSQL.{port}")
    } else {
        format!("{host}:{port}")
    };
    let password_fix = |failed: bool| {
        if ep.password.is_none() {
            format!("no password was found for user {user}: set PGPASSWORD, add it to the password file, PGPASSFILE or by default ~/.pgpass, or put it in {url_name}")
        } else if failed {
            format!("check the password of user {user}: it is taken from {url_name}, else from PGPASSWORD, else from the password file, PGPASSFILE or by default ~/.pgpass")
        } else {
            format!("check the user name and password in {url_name}")
        }
    };
    let tls = ep.tls.describe();
    match failure {
        Failure::Refused => (
            "connection refused".into(),
            format!("is the server running and listening on {address}?"),
        ),
        Failure::TimedOut => (
            "connection timed out".into(),
            format!("is {address} reachable from here, through any firewall or security group? connect_timeout=SECONDS in {url_name} waits longer"),
        ),
        Failure::Resolve(text) => (
            format!("cannot resolve the host name {host}: {text}"),
            format!("check the host in {url_name}"),
        ),
        Failure::Io(text) => (text.clone(), format!("is the server running and reachable at {address}?")),
        Failure::NoPassword => (
            format!("the server asks for a password for user {user}"),
            password_fix(false),
        ),
        Failure::UnsupportedAuth(text) => (
            format!("the server asks for an authentication method the replication client does not support: {text}"),
            format!("use scram-sha-256 (or password) for user {user}'s replication connections in the server's pg_hba.conf"),
        ),
        Failure::TlsNotOffered => (
            format!("the server does not offer TLS, and sslmode={} requires it", ep.tls.mode),
            "enable ssl on the server: ssl = on, with ssl_cert_file and ssl_key_file; or use sslmode=prefer to connect without TLS if the network is trusted".into(),
        ),
        Failure::Certificate(text) => certificate(text, ep, replication, url_name),
        Failure::Handshake(text) => (
            format!("TLS handshake failed with {tls}: {text}"),
            "check the server's ssl settings; pgvshift speaks TLS 1.2 and 1.3".into(),
        ),
        Failure::Server { code, message } => server(code, message, ep, replication, url_name, password_fix),
        Failure::Other(text) => (text.clone(), "see the server log for details".into()),
    }
}

fn certificate(text: &str, ep: &Endpoint, replication: bool, url_name: &str) -> (String, String) {
    let host = &ep.host;
    let roots = match &ep.tls.root_cert {
        Some(RootCert::System) => "the public certificate authorities (sslrootcert=system)".to_string(),
        Some(RootCert::File { .. }) | None => "the sslrootcert file".to_string(),
    };
    let (problem, fix) = if text.contains("UnknownIssuer") {
        (
            format!("unknown issuer: it was not signed by a certificate in {roots}"),
            "set sslrootcert to the CA certificate that signed the server's certificate, or to the server's certificate itself if it is self-signed".to_string(),
        )
    } else if text.contains("BadSignature") {
        // webpki found a root with the name of the certificate's issuer, but not its key.
        (
            format!("bad signature: a certificate in {roots} has the name of its issuer but did not sign it"),
            "set sslrootcert to the CA certificate that signed the server's certificate, or to the server's certificate itself if it is self-signed".to_string(),
        )
    } else if (text.contains("not valid for name") || text.contains("NotValidForName"))
        && replication
        && !ep.tls.verifies_host_name()
    {
        // pgwire-replication 0.5.0's verify-ca lets only rustls' old `NotValidForName` error
        // through; the rustls in this build reports `NotValidForNameContext`, so the
        // replication connection checks the name even with verify-ca.
        (
            format!("name mismatch: it is not valid for host {host}, and the replication client checks the name even with sslmode={}; {text}", ep.tls.mode),
            format!("connect to a host name the certificate names, in {url_name}; the SQL connections do honour sslmode=verify-ca"),
        )
    } else if text.contains("not valid for name") || text.contains("NotValidForName") {
        (
            format!("name mismatch: it is not valid for host {host}; {text}"),
            format!("connect to a host name the certificate names, in {url_name}, or use sslmode=verify-ca to check the chain but not the name"),
        )
    } else if text.contains("expired") || text.contains("Expired") {
        (
            format!("it has expired: {text}"),
            "renew the server's certificate".to_string(),
        )
    } else if text.contains("not valid yet") || text.contains("NotValidYet") {
        (
            format!("it is not valid yet: {text}"),
            "check the clocks of this machine and of the server".to_string(),
        )
    } else if text.contains("CaUsedAsEndEntity") {
        (
            "it is a CA certificate (basicConstraints CA:TRUE) used as the server's own, which rustls refuses".to_string(),
            "give the server a certificate with CA:FALSE: one signed by that CA, or a self-signed one made with -addext basicConstraints=critical,CA:FALSE".to_string(),
        )
    } else {
        (
            text.to_string(),
            format!("check that {roots} holds the CA of the server's certificate"),
        )
    };
    (
        format!(
            "the server's certificate failed verification with {}: {problem}",
            ep.tls.describe()
        ),
        fix,
    )
}

fn server(
    code: &str,
    message: &str,
    ep: &Endpoint,
    replication: bool,
    url_name: &str,
    password_fix: impl Fn(bool) -> String,
) -> (String, String) {
    let user = &ep.user;
    let hba_line = |ssl: &str| {
        let db = if replication { "replication" } else { ep.dbname.as_str() };
        format!("add a line like `{ssl} {db} {user} <client address>/32 scram-sha-256` to the server's pg_hba.conf and reload it")
    };
    let cause = message.to_string();
    let fix = match code {
        "28P01" => password_fix(true),
        "28000" if message.contains("no encryption") => match ep.tls.mode {
            SslMode::Disable => {
                return (
                    format!("the server accepts only TLS connections from here: {message}"),
                    format!("set sslmode=require, or better sslmode=verify-full with sslrootcert, in {url_name}"),
                )
            }
            _ => {
                return (
                    format!("the server's pg_hba.conf accepts only TLS connections from here, but the server does not offer TLS: {message}"),
                    "enable ssl on the server: ssl = on, with ssl_cert_file and ssl_key_file".into(),
                )
            }
        },
        // "..., SSL encryption": the connection used TLS, so a hostssl line would match it.
        "28000" if message.starts_with("no pg_hba.conf entry") => {
            hba_line(if message.contains("SSL encryption") { "hostssl" } else { "host" })
        }
        "28000" if message.contains("rejects connection") => {
            "the server's pg_hba.conf rejects this connection on purpose: ask its administrator".into()
        }
        "28000" if message.contains("does not exist") => format!("check the user name in {url_name}"),
        "42501" => format!("give the user the REPLICATION attribute: ALTER ROLE {user} REPLICATION"),
        "3D000" => format!("check the database name in {url_name}; the database must exist on the server"),
        "53300" if replication => "the server has no free WAL sender: raise max_wal_senders, or stop unused replication connections".into(),
        "53300" => "the server has no free connection slot: close idle connections or raise max_connections".into(),
        "57P03" => "the server is starting up or shutting down: wait until it accepts connections, then run again".into(),
        c if c.starts_with("28") => format!("check the user and password in {url_name} and the server's pg_hba.conf"),
        _ => "see the server log for details".into(),
    };
    let cause = if code.is_empty() {
        cause
    } else {
        format!("{cause} [SQLSTATE {code}]")
    };
    (cause, fix)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn endpoint(url: &str) -> Endpoint {
        Endpoint::from_url(url).unwrap()
    }

    fn message(url: &str, side: Option<Side>, replication: bool, failure: Failure) -> String {
        build(&endpoint(url), side, replication, &failure).to_string()
    }

    #[test]
    fn messages() {
        let url = "postgresql://alice:Secr3t@db.example.com:5433/app?sslmode=disable";
        let m = message(url, Some(Side::Source), false, Failure::Refused);
        assert_eq!(
            m,
            "cannot connect to the source postgresql://alice:***@db.example.com:5433/app?sslmode=disable: connection refused (is the server running and listening on db.example.com:5433?)"
        );
        let m = message(
            url,
            Some(Side::Source),
            true,
            Failure::Server {
                code: "28000".into(),
                message: "no pg_hba.conf entry for replication connection from host \"10.0.0.1\", user \"alice\", no encryption".into(),
            },
        );
        assert!(
            m.starts_with("cannot open a replication connection to the source postgresql://alice:***@"),
            "{m}"
        );
        assert!(
            m.contains("accepts only TLS") && m.contains("set sslmode=require"),
            "{m}"
        );
        assert!(m.contains("in the source URL"), "{m}");
        let m = message(
            url,
            Some(Side::Target),
            false,
            Failure::Server {
                code: "28P01".into(),
                message: "password authentication failed for user \"alice\"".into(),
            },
        );
        assert!(
            m.contains("check the password of user alice") && m.contains("from the target URL"),
            "{m}"
        );
        let m = message(
            "postgresql://bob@h/d",
            None,
            false,
            Failure::Server {
                code: "28P01".into(),
                message: "password authentication failed for user \"bob\"".into(),
            },
        );
        assert!(m.starts_with("cannot connect to postgresql://bob@h/d: "), "{m}");
        assert!(m.contains("no password was found for user bob"), "{m}");
        let m = message(
            "postgresql://bob@h/d",
            Some(Side::Source),
            true,
            Failure::Server {
                code: "42501".into(),
                message: "must be superuser or replication role to start walsender".into(),
            },
        );
        assert!(m.contains("ALTER ROLE bob REPLICATION"), "{m}");
        for m in [m, message(url, None, false, Failure::TimedOut)] {
            assert!(!m.contains('\n') && !m.contains("Secr3t"), "{m}");
        }
    }

    #[test]
    fn certificate_problems() {
        let mut ep = endpoint("postgresql://u@10.1.2.3/d?sslmode=require");
        ep.tls = crate::config::TlsSettings {
            mode: SslMode::VerifyFull,
            root_cert: Some(RootCert::File {
                path: "/etc/pgvshift/root.crt".into(),
                roots: std::sync::Arc::new(rustls::RootCertStore::empty()),
            }),
        };
        let cases = [
            (
                "UnknownIssuer",
                "unknown issuer: it was not signed by a certificate in the sslrootcert file (",
            ),
            (
                "certificate not valid for name \"10.1.2.3\"; certificate is only valid for DnsName(\"localhost\")",
                "name mismatch: it is not valid for host 10.1.2.3",
            ),
            ("Other(OtherError(CaUsedAsEndEntity))", "CA:FALSE"),
            (
                "BadSignature",
                "bad signature: a certificate in the sslrootcert file has the name",
            ),
            (
                "certificate expired: verification time 2 (UNIX), but certificate is not valid after 1 (1 seconds ago)",
                "renew",
            ),
        ];
        for (text, want) in cases {
            let m = build(&ep, Some(Side::Source), false, &Failure::Certificate(text.into())).to_string();
            assert!(
                m.contains("failed verification with sslmode=verify-full, sslrootcert=/etc/pgvshift/root.crt: "),
                "{m}"
            );
            assert!(m.contains(want), "{text}: {m}");
        }
    }

    #[test]
    fn pgwire_errors() {
        use pgwire_replication::PgWireError as E;
        let cases = [
            (
                E::Server("no pg_hba.conf entry for replication connection from host \"127.0.0.1\", user \"u\", no encryption (SQLSTATE 28000)".into()),
                Some(Failure::Server {
                    code: "28000".into(),
                    message: "no pg_hba.conf entry for replication connection from host \"127.0.0.1\", user \"u\", no encryption".into(),
                }),
            ),
            (E::Server("replication slot \"s\" already exists (SQLSTATE 42710)".into()), None),
            (E::Tls("server does not support TLS (SSLRequest rejected)".into()), Some(Failure::TlsNotOffered)),
            (
                E::Tls("TLS handshake failed: invalid peer certificate: UnknownIssuer".into()),
                Some(Failure::Certificate("UnknownIssuer".into())),
            ),
            (
                E::Io(std::sync::Arc::new(std::io::Error::from(ErrorKind::ConnectionRefused))),
                Some(Failure::Refused),
            ),
            (E::Protocol("x".into()), None),
        ];
        for (e, want) in cases {
            assert_eq!(from_pgwire(&e), want, "{e}");
        }
    }
}
