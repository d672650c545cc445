//! `/metrics` (Prometheus / OpenMetrics text) and `/healthz` while `run` is up
//! (`[metrics] listen = "127.0.0.1:9187"`).
//!
//! The numbers live where the pipeline already counts them ([`RunStats`]: copy progress, apply
//! counters, the WAL guard's measurements); each scrape builds a fresh registry from them, so
//! nothing on the hot path knows about Prometheus except the per-table change counters and the
//! batch latency histogram, which are `prometheus-client` types to begin with.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http_body_util::Full;
use hyper::{Method, Request, Response, StatusCode};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

use super::stats::{Phase, RunStats};
use crate::error::{Error, Result};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ChangeLabels {
    table: String,
    kind: String,
}

/// Changes applied by target table and kind.
#[derive(Debug, Default)]
pub struct ChangeCounters(Family<ChangeLabels, Counter>);

impl ChangeCounters {
    pub fn inc(&self, table: &str, kind: &str) {
        self.0
            .get_or_create(&ChangeLabels {
                table: table.to_string(),
                kind: kind.to_string(),
            })
            .inc();
    }

    /// The counter of one table and kind, to keep and increment without a lookup per change.
    pub fn counter(&self, table: &str, kind: &str) -> Counter {
        self.0
            .get_or_create(&ChangeLabels {
                table: table.to_string(),
                kind: kind.to_string(),
            })
            .clone()
    }

    /// The count for one table and kind (tests, status).
    pub fn get(&self, table: &str, kind: &str) -> u64 {
        self.0
            .get_or_create(&ChangeLabels {
                table: table.to_string(),
                kind: kind.to_string(),
            })
            .get()
    }
}

/// Seconds per batch, from opening the target transaction to its COMMIT.
#[derive(Debug)]
pub struct BatchLatency(Histogram);

impl Default for BatchLatency {
    fn default() -> Self {
        // 1 ms .. ~33 s
        BatchLatency(Histogram::new(exponential_buckets(0.001, 2.0, 16)))
    }
}

impl BatchLatency {
    pub fn observe(&self, elapsed: Duration) {
        self.0.observe(elapsed.as_secs_f64());
    }
}

/// The lag in bytes and seconds as the metrics and logs report it: bytes between the source's
/// current WAL position (as the WAL guard last measured it) and what the target has applied;
/// seconds since the source committed the last applied transaction, or since the stream last
/// confirmed it was idle and caught up (so an idle source does not look like a growing lag).
pub fn lag(stats: &RunStats) -> (Option<i64>, Option<f64>) {
    let current = stats.wal.source_current_lsn.load(Ordering::Relaxed);
    let applied = stats.apply.applied_lsn.load(Ordering::Relaxed);
    if current == 0 || applied == 0 {
        return (None, None);
    }
    let bytes = current.saturating_sub(applied) as i64;
    let last = stats.apply.last_commit_micros.load(Ordering::Relaxed);
    let seconds = if bytes == 0 {
        Some(0.0)
    } else if last > 0 {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_micros() as i64;
        Some(((now - last) as f64 / 1e6).max(0.0))
    } else {
        None
    };
    (Some(bytes), seconds)
}

/// The text of one scrape.
pub fn render(stats: &RunStats) -> String {
    let mut reg = Registry::with_prefix("pgvshift");
    let gauge = |reg: &mut Registry, name: &str, help: &str, v: i64| {
        let g: Gauge<i64, AtomicI64> = Gauge::default();
        g.set(v);
        reg.register(name, help, g);
    };
    let fgauge = |reg: &mut Registry, name: &str, help: &str, v: f64| {
        let g: Gauge<f64, AtomicU64> = Gauge::default();
        g.set(v);
        reg.register(name, help, g);
    };
    let counter = |reg: &mut Registry, name: &str, help: &str, v: u64| {
        let c: Counter = Counter::default();
        c.inc_by(v);
        reg.register(name, help, c);
    };
    let phase = stats.phase();
    gauge(
        &mut reg,
        "streaming",
        "1 while changes stream from the slot, else 0 (checks, snapshot, reconnecting, stopped)",
        (phase == Phase::Streaming) as i64,
    );
    gauge(
        &mut reg,
        "snapshot_running",
        "1 while the initial copy runs (its slot and exported snapshot hold back WAL and vacuum on the source)",
        (phase == Phase::Snapshot) as i64,
    );
    let (lag_bytes, lag_seconds) = lag(stats);
    if let Some(b) = lag_bytes {
        gauge(
            &mut reg,
            "lag_bytes",
            "WAL bytes between the source's current position and what the target has committed",
            b,
        );
    }
    if let Some(s) = lag_seconds {
        fgauge(
            &mut reg,
            "lag_seconds",
            "Seconds since the source committed the last transaction applied on the target (0 when caught up)",
            s,
        );
    }
    let retained = stats.wal.retained_bytes.load(Ordering::Relaxed);
    if retained >= 0 {
        gauge(
            &mut reg,
            "retained_wal_bytes",
            "WAL the slot holds back on the source (pg_current_wal_lsn() - restart_lsn)",
            retained,
        );
    }
    gauge(
        &mut reg,
        "applied_lsn",
        "The source position committed on the target, as a number",
        stats.apply.applied_lsn.load(Ordering::Relaxed) as i64,
    );
    counter(
        &mut reg,
        "snapshot_rows_copied",
        "Rows copied by the snapshot (counted when each table's copy commits)",
        stats.copy.rows.load(Ordering::Relaxed),
    );
    counter(
        &mut reg,
        "snapshot_bytes_copied",
        "Bytes of COPY data read from the source by the snapshot",
        stats.copy.bytes.load(Ordering::Relaxed),
    );
    counter(
        &mut reg,
        "snapshot_tables_copied",
        "Tables whose snapshot copy has committed",
        stats.copy.tables_done.load(Ordering::Relaxed),
    );
    counter(
        &mut reg,
        "transactions_applied",
        "Source transactions applied on the target",
        stats.apply.transactions.load(Ordering::Relaxed),
    );
    counter(
        &mut reg,
        "reconnects",
        "Times the run re-established its connections after losing one",
        stats.reconnects.load(Ordering::Relaxed),
    );
    reg.register(
        "changes_applied",
        "Changes applied on the target, by target table and kind",
        stats.apply.by_table.0.clone(),
    );
    reg.register(
        "batch_apply_seconds",
        "Seconds from opening a target transaction to its COMMIT, per batch",
        stats.apply.batch_seconds.0.clone(),
    );
    let mut out = String::new();
    prometheus_client::encoding::text::encode(&mut out, &reg).expect("writing to a String cannot fail");
    out
}

fn respond(req: &Request<hyper::body::Incoming>, stats: &RunStats) -> Response<Full<Bytes>> {
    let (status, content_type, body) = match (req.method(), req.uri().path()) {
        (&Method::GET, "/metrics") => (
            StatusCode::OK,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
            render(stats),
        ),
        (&Method::GET, "/healthz") => {
            let phase = stats.phase();
            let status = if phase == Phase::Streaming {
                StatusCode::OK
            } else {
                StatusCode::SERVICE_UNAVAILABLE
            };
            (status, "text/plain; charset=utf-8", format!("{}\n", phase.name()))
        }
        _ => (
            StatusCode::NOT_FOUND,
            "text/plain; charset=utf-8",
            "not found: GET /metrics or /healthz\n".to_string(),
        ),
    };
    Response::builder()
        .status(status)
        .header("content-type", content_type)
        .body(Full::new(Bytes::from(body)))
        .expect("a valid response")
}

/// A running metrics server; dropping it stops serving.
pub struct MetricsServer {
    pub addr: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for MetricsServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Listen on `addr` (port 0 picks a free port; see [`MetricsServer::addr`]).
pub async fn serve(addr: SocketAddr, stats: Arc<RunStats>) -> Result<MetricsServer> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| Error::Runtime(format!("cannot serve metrics on {addr} ([metrics] listen): {e}")))?;
    let addr = listener
        .local_addr()
        .map_err(|e| Error::Runtime(format!("metrics listener on {addr}: {e}")))?;
    tracing::info!(%addr, "serving /metrics and /healthz");
    let task = tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let stats = stats.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |req| {
                    let stats = stats.clone();
                    async move { Ok::<_, Infallible>(respond(&req, &stats)) }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    Ok(MetricsServer { addr, task })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_by_table_and_the_histogram() {
        let stats = RunStats::default();
        stats.apply.by_table.inc("public.items", "insert");
        stats.apply.by_table.inc("public.items", "insert");
        stats.apply.by_table.inc("public.docs", "delete");
        stats.apply.batch_seconds.observe(Duration::from_millis(3));
        stats.copy.rows.store(42, Ordering::Relaxed);
        stats.wal.source_current_lsn.store(1000, Ordering::Relaxed);
        stats.apply.applied_lsn.store(900, Ordering::Relaxed);
        stats.set_phase(Phase::Streaming);
        let text = render(&stats);
        assert!(
            text.contains("pgvshift_changes_applied_total{table=\"public.items\",kind=\"insert\"} 2"),
            "{text}"
        );
        assert!(text.contains("pgvshift_changes_applied_total{table=\"public.docs\",kind=\"delete\"} 1"));
        assert!(text.contains("pgvshift_snapshot_rows_copied_total 42"), "{text}");
        assert!(text.contains("pgvshift_lag_bytes 100"), "{text}");
        assert!(text.contains("pgvshift_streaming 1"), "{text}");
        assert!(text.contains("pgvshift_batch_apply_seconds_count 1"), "{text}");
        assert!(
            text.contains("pgvshift_batch_apply_seconds_bucket{le=\"0.004\"} 1"),
            "{text}"
        );
        assert!(text.ends_with("# EOF\n"), "{text}");
        assert_eq!(stats.apply.by_table.get("public.items", "insert"), 2);
    }

    #[test]
    fn lag_is_zero_when_caught_up_and_unknown_before_measuring() {
        let stats = RunStats::default();
        assert_eq!(lag(&stats), (None, None));
        stats.wal.source_current_lsn.store(500, Ordering::Relaxed);
        stats.apply.applied_lsn.store(500, Ordering::Relaxed);
        assert_eq!(lag(&stats), (Some(0), Some(0.0)));
        stats.wal.source_current_lsn.store(800, Ordering::Relaxed);
        let commit = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_micros() as i64 - 2_000_000;
        stats.apply.last_commit_micros.store(commit, Ordering::Relaxed);
        let (bytes, secs) = lag(&stats);
        assert_eq!(bytes, Some(300));
        assert!(secs.unwrap() >= 2.0, "{secs:?}");
    }
}
