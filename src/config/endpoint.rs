//! One database to connect to ([`Endpoint`]), resolved from a libpq connection URL the way
//! libpq reads it: host (or unix socket directory), port, user, database, the TLS parameters
//! (`sslmode`, `sslrootcert`) and the tuning parameters passed on to `tokio_postgres::Config`;
//! the password comes from [`super::pgpass`].

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use super::model::ConfigError;
use super::pgpass::resolve_password;
use super::redact::redact_url;

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

    pub(super) fn same_database_as(&self, other: &Endpoint) -> bool {
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

pub(super) type Env<'a> = &'a dyn Fn(&str) -> Option<String>;

/// Reads a variable through `env`, treating an empty value as unset (as libpq does for
/// `PGPASSWORD`, and as shells make it easy to do by accident).
pub(super) fn env_nonempty(env: Env<'_>, name: &str) -> Option<String> {
    env(name).filter(|v| !v.is_empty())
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

pub(super) fn resolve_endpoint(
    role: &str,
    url: &str,
    path: &Path,
    origin: String,
    env: Env<'_>,
) -> Result<Endpoint, ConfigError> {
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
pub(super) fn decode(text: &str, what: &str) -> Result<String, String> {
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
