//! SQL connections (tokio-postgres, TLS per the endpoint's `sslmode` through `crate::tls`)
//! and the raw value type used to pass column values through as the bytes the source sent.

use bytes::{Bytes, BytesMut};
use tokio_postgres::types::{Format, IsNull, ToSql, Type};
use tokio_postgres::Client;

use crate::config::Endpoint;
use crate::error::Result;

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

/// Open a SQL connection, with TLS as the endpoint's `sslmode` / `sslrootcert` say; its driver
/// runs on a spawned task. `application_name` is `pgvshift`. A failure is an
/// [`crate::error::Error::Connect`]: one line with the cause and the fix.
pub async fn connect(endpoint: &Endpoint, side: Side) -> Result<Client> {
    let mut pg = endpoint.pg.clone();
    pg.application_name("pgvshift");
    open(endpoint, &pg, Some(side)).await
}

async fn open(endpoint: &Endpoint, pg: &tokio_postgres::Config, side: Option<Side>) -> Result<Client> {
    let tls =
        crate::tls::connector(&endpoint.tls).map_err(|problem| crate::connect_error::setup(endpoint, side, problem))?;
    let (client, connection) = pg
        .connect(tls)
        .await
        .map_err(|e| crate::connect_error::sql(endpoint, side, &e))?;
    let what = side.map_or_else(|| "SQL".to_string(), |s| s.to_string());
    tokio::spawn(async move {
        if let Err(e) = connection.await {
            tracing::debug!("{what} connection ended: {}", describe(&e));
        }
    });
    Ok(client)
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

/// A column value exactly as the source sent it (pgoutput tuple data or COPY field), bound as
/// a parameter without being parsed: binary values in the type's send/recv format, text values
/// in its output/input format. The parameter's type comes from the prepared statement, so
/// extension types (pgvector) need no OID knowledge here.
#[derive(Debug, Clone, PartialEq)]
pub enum RawValue {
    Null,
    Binary(Bytes),
    Text(Bytes),
}

impl ToSql for RawValue {
    fn to_sql(&self, _ty: &Type, out: &mut BytesMut) -> Result<IsNull, Box<dyn std::error::Error + Sync + Send>> {
        match self {
            RawValue::Null => Ok(IsNull::Yes),
            RawValue::Binary(b) | RawValue::Text(b) => {
                out.extend_from_slice(b);
                Ok(IsNull::No)
            }
        }
    }

    fn accepts(_ty: &Type) -> bool {
        true
    }

    fn encode_format(&self, _ty: &Type) -> Format {
        match self {
            RawValue::Text(_) => Format::Text,
            _ => Format::Binary,
        }
    }

    tokio_postgres::types::to_sql_checked!();
}

/// Connect with a plain URL (demo and tests), read like a configured one: the same
/// parameters (`sslmode`, `sslrootcert`, ...) and the same password lookup.
pub async fn connect_url(url: &str) -> Result<Client> {
    let endpoint = Endpoint::from_url(url)?;
    open(&endpoint, &endpoint.pg, None).await
}
