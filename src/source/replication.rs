//! The replication connection, behind a small module of our own so the transport can be
//! swapped (see docs/architecture.md). Today it is `pgwire-replication` (pinned `=0.5.0`):
//! it authenticates, answers keepalives on its own task while we are busy applying, forwards
//! pgoutput payloads raw (we decode them in [`crate::source::pgoutput`]), and confirms to the server
//! only the LSN we hand it through [`Stream::confirm`].

use std::time::Duration;

use pgwire_replication::config::TlsConfig;
use pgwire_replication::{PgWireError, ReplicationClient, ReplicationConfig, ReplicationEvent};

use crate::config::{Endpoint, RootCert, SslMode, TlsSettings};
use crate::error::{Error, Result};
use crate::Lsn;

/// The endpoint's `sslmode` / `sslrootcert` as pgwire-replication's TLS settings, with the
/// same meaning as for the SQL connections (`crate::source::tls`):
/// - `prefer` falls back to plain when the server refuses TLS, and checks no certificate;
/// - `require` with `sslrootcert` verifies the chain (libpq), i.e. its `verify_ca`;
/// - `sslrootcert=system` is its "no CA file" case, which trusts the same Mozilla roots;
/// - `verify-full` against an IP address: the crate refuses an IP host unless an SNI name is
///   set, and uses that name for the check; giving it the IP itself makes rustls check the
///   certificate's IP subjectAltName (and send no SNI, as TLS wants for addresses), which is
///   what the SQL connections do too.
fn tls_config(endpoint: &Endpoint) -> TlsConfig {
    let TlsSettings { mode, root_cert } = &endpoint.tls;
    let ca_file = match root_cert {
        Some(RootCert::File { path, .. }) => Some(path.clone()),
        Some(RootCert::System) | None => None,
    };
    let tls = match mode {
        _ if endpoint.is_unix_socket() => TlsConfig::disabled(),
        SslMode::Disable => TlsConfig::disabled(),
        SslMode::Prefer => TlsConfig {
            mode: pgwire_replication::SslMode::Prefer,
            ..TlsConfig::default()
        },
        SslMode::Require if root_cert.is_none() => TlsConfig::require(),
        SslMode::Require | SslMode::VerifyCa => TlsConfig::verify_ca(ca_file),
        SslMode::VerifyFull => TlsConfig::verify_full(ca_file),
    };
    if *mode == SslMode::VerifyFull && endpoint.host.parse::<std::net::IpAddr>().is_ok() {
        tls.with_sni_hostname(endpoint.host.clone())
    } else {
        tls
    }
}

fn base_config(endpoint: &Endpoint, slot: &str, publication: &str) -> ReplicationConfig {
    ReplicationConfig::new(
        endpoint.host.clone(),
        endpoint.user.clone(),
        endpoint.password.clone().unwrap_or_default(),
        endpoint.dbname.clone(),
        slot,
        publication,
    )
    .with_port(endpoint.port)
    .with_application_name("pgvshift")
    .with_binary(true)
    .with_tls(tls_config(endpoint))
}

fn repl_err(context: impl Into<String>) -> impl FnOnce(PgWireError) -> Error {
    let context = context.into();
    move |source| Error::Replication { context, source }
}

/// Like [`repl_err`], but a failure to open the connection (unreachable, TLS, authentication,
/// pg_hba.conf) becomes the same one-line [`Error::Connect`] as for SQL connections.
fn connect_err(endpoint: &Endpoint, context: impl Into<String>) -> impl FnOnce(PgWireError) -> Error + '_ {
    let context = context.into();
    move |source| {
        crate::error::connect::replication(endpoint, &source).unwrap_or(Error::Replication { context, source })
    }
}

/// A slot just created with an exported snapshot. The snapshot stays importable only while
/// this session is open and idle: keep it alive until every copy worker has imported it.
pub struct SlotSnapshot {
    session: ReplicationClient,
    pub consistent_point: Lsn,
    pub snapshot_name: String,
}

impl SlotSnapshot {
    /// End the session (the slot stays; the snapshot is no longer needed).
    pub async fn close(mut self) {
        self.session.abort();
    }
}

/// `CREATE_REPLICATION_SLOT <slot> LOGICAL pgoutput EXPORT_SNAPSHOT` on a replication
/// connection. The slot name was validated as `[a-z0-9_]+` by the config (the protocol sends
/// it unquoted).
pub async fn create_slot_with_snapshot(endpoint: &Endpoint, slot: &str, publication: &str) -> Result<SlotSnapshot> {
    let cfg = base_config(endpoint, slot, publication);
    let mut session = ReplicationClient::connect_gated(cfg).await.map_err(connect_err(
        endpoint,
        format!(
            "opening a replication connection to the source {}",
            endpoint.redacted_url
        ),
    ))?;
    // The session connects in the background: a failure to connect surfaces here, at the
    // first command.
    let rows = session
        .simple_query(&format!(
            "CREATE_REPLICATION_SLOT {slot} LOGICAL pgoutput EXPORT_SNAPSHOT"
        ))
        .await
        .map_err(connect_err(
            endpoint,
            format!("creating replication slot {slot} on the source"),
        ))?;
    let row = rows
        .first()
        .ok_or_else(|| Error::Runtime(format!("CREATE_REPLICATION_SLOT {slot} returned no row")))?;
    let text = |i: usize| -> Result<String> {
        row.get(i)
            .and_then(|v| v.as_ref())
            .map(|b| String::from_utf8_lossy(b).into_owned())
            .ok_or_else(|| Error::Runtime(format!("CREATE_REPLICATION_SLOT {slot}: column {i} missing")))
    };
    let consistent_point: Lsn = text(1)?.parse().map_err(|e| Error::Runtime(format!("{e}")))?;
    let snapshot_name = text(2)?;
    Ok(SlotSnapshot {
        session,
        consistent_point,
        snapshot_name,
    })
}

/// One event from the stream, in the stream's order.
#[derive(Debug)]
pub enum Event {
    Begin {
        final_lsn: Lsn,
        xid: u32,
        commit_time_micros: i64,
    },
    /// A pgoutput message other than Begin/Commit (Relation, Type, Insert, ..., Origin).
    Data(bytes::Bytes),
    Commit {
        commit_lsn: Lsn,
        end_lsn: Lsn,
        commit_time_micros: i64,
    },
    /// A logical decoding message (`pg_logical_emit_message`); not applied.
    Message {
        transactional: bool,
        lsn: Lsn,
        prefix: String,
    },
    /// The server's WAL end: every transaction that committed before it has been sent.
    KeepAlive { wal_end: Lsn },
}

/// A started logical replication stream (pgoutput, proto_version 1, binary values).
pub struct Stream {
    client: ReplicationClient,
    slot: String,
}

impl Stream {
    /// `START_REPLICATION SLOT <slot> LOGICAL <start>`; reports `start` as flushed until
    /// [`Stream::confirm`] says more.
    pub async fn start(
        endpoint: &Endpoint,
        slot: &str,
        publication: &str,
        start: Lsn,
        status_interval: Duration,
    ) -> Result<Stream> {
        // Right after a crash the previous session's walsender may still hold the slot for a
        // moment (until it notices its client is gone): wait for it rather than fail.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        loop {
            let cfg = base_config(endpoint, slot, publication)
                .with_start_lsn(start.into())
                .with_status_interval(status_interval)
                .with_wakeup_interval(status_interval);
            let mut client = ReplicationClient::connect(cfg).await.map_err(connect_err(
                endpoint,
                format!(
                    "opening a replication connection to the source {}",
                    endpoint.redacted_url
                ),
            ))?;
            match client.wait_started().await {
                Ok(()) => {
                    return Ok(Stream {
                        client,
                        slot: slot.to_string(),
                    })
                }
                Err(e) if e.to_string().contains("is active for PID") && tokio::time::Instant::now() < deadline => {
                    tracing::info!(slot = %slot, "the slot is still held by a previous session; waiting for it to end");
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
                Err(e) => {
                    return Err(connect_err(
                        endpoint,
                        format!("starting replication from slot {slot} at {start}"),
                    )(e))
                }
            }
        }
    }

    /// The next event; `None` when the stream ended after [`Stream::stop`].
    pub async fn next(&mut self) -> Result<Option<Event>> {
        loop {
            let ev = self
                .client
                .recv()
                .await
                .map_err(repl_err(format!("reading from replication slot {}", self.slot)))?;
            let Some(ev) = ev else { return Ok(None) };
            return Ok(Some(match ev {
                ReplicationEvent::Begin {
                    final_lsn,
                    xid,
                    commit_time_micros,
                } => Event::Begin {
                    final_lsn: final_lsn.into(),
                    xid,
                    commit_time_micros,
                },
                ReplicationEvent::XLogData { data, .. } => Event::Data(data),
                ReplicationEvent::Commit {
                    lsn,
                    end_lsn,
                    commit_time_micros,
                } => Event::Commit {
                    commit_lsn: lsn.into(),
                    end_lsn: end_lsn.into(),
                    commit_time_micros,
                },
                ReplicationEvent::Message {
                    transactional,
                    lsn,
                    prefix,
                    ..
                } => Event::Message {
                    transactional,
                    lsn: lsn.into(),
                    prefix,
                },
                ReplicationEvent::KeepAlive { wal_end, .. } => Event::KeepAlive {
                    wal_end: wal_end.into(),
                },
                ReplicationEvent::StoppedAt { .. } => continue,
            }));
        }
    }

    /// The target has durably committed everything up to `lsn`: the server may release it.
    pub fn confirm(&self, lsn: Lsn) {
        self.client.update_applied_lsn(lsn.into());
    }

    /// The last LSN actually reported to the server.
    pub fn reported(&self) -> Lsn {
        self.client.metrics().last_applied_lsn().into()
    }

    /// Wait (up to `timeout`) until `lsn` has been reported to the server, then end the stream.
    pub async fn finish(mut self, lsn: Lsn, timeout: Duration) {
        self.confirm(lsn);
        let deadline = tokio::time::Instant::now() + timeout;
        while self.reported() < lsn && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        if self.reported() < lsn {
            tracing::warn!("the source had not acknowledged {lsn} when the stream stopped; the next run skips what was already applied");
        }
        let _ = self.client.shutdown().await;
    }
}
