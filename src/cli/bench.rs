//! `pgvshift bench`: throughput against baselines measured in the same run, on throwaway
//! clusters (see docs/benchmarks.md).
//!
//! - snapshot: pgvshift's copy (slot + exported snapshot + COPY binary passthrough) vs
//!   `psql -c "COPY t TO STDOUT (FORMAT binary)" | psql -c "COPY t FROM STDIN (FORMAT binary)"`.
//! - streaming: the same workload (inserts and updates in 1000-row transactions) applied by
//!   pgvshift vs by native logical replication (`CREATE SUBSCRIPTION ... WITH (binary = true)`).
//!   The workload is written while the consumer is stopped; the clock runs from the consumer's
//!   start until a marker row written last is visible on the target (same rule for both).

use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::watch;
use tokio_postgres::Client;

use crate::config::Config;
use crate::error::{DbContext, Error, Result};
use crate::observe::stats::RunStats;
use crate::run::run;
use crate::source::connect_url;
use crate::testkit::localpg::{ClusterOptions, LocalCluster};

const TABLE_DDL: &str = "CREATE TABLE items (id bigint PRIMARY KEY, title text NOT NULL, embedding vector(DIMS))";

/// Results of one benchmark run.
#[derive(Debug, serde::Serialize)]
pub struct BenchReport {
    pub rows: u32,
    pub dims: u32,
    pub snapshot_pgvshift_secs: f64,
    pub snapshot_baseline_secs: f64,
    pub stream_changes: u64,
    pub stream_pgvshift_secs: f64,
    pub stream_native_secs: f64,
}

impl BenchReport {
    pub fn render(&self) -> String {
        let r = f64::from(self.rows);
        let c = self.stream_changes as f64;
        format!(
            "benchmark: {} rows of vector({}) + text, on this machine\n\
             snapshot   pgvshift {:>7.2} s {:>9.0} rows/s | psql COPY binary pipe {:>7.2} s {:>9.0} rows/s | ratio {:.2}x\n\
             streaming  pgvshift {:>7.2} s {:>9.0} changes/s | native logical repl. {:>7.2} s {:>9.0} changes/s | ratio {:.2}x\n\
             (ratio = baseline time / pgvshift time: above 1 means pgvshift is faster)\n",
            self.rows,
            self.dims,
            self.snapshot_pgvshift_secs,
            r / self.snapshot_pgvshift_secs,
            self.snapshot_baseline_secs,
            r / self.snapshot_baseline_secs,
            self.snapshot_baseline_secs / self.snapshot_pgvshift_secs,
            self.stream_pgvshift_secs,
            c / self.stream_pgvshift_secs,
            self.stream_native_secs,
            c / self.stream_native_secs,
            self.stream_native_secs / self.stream_pgvshift_secs,
        )
    }
}

async fn start(name: &str) -> Result<LocalCluster> {
    let name = name.to_string();
    tokio::task::spawn_blocking(move || LocalCluster::start(ClusterOptions::new(name)))
        .await
        .map_err(|e| Error::Runtime(e.to_string()))?
        .map_err(|e| {
            Error::Runtime(format!(
                "starting a throwaway cluster: {e:#} (run scripts/setup.sh first)"
            ))
        })
}

async fn exec(client: &Client, sql: &str) -> Result<()> {
    client
        .batch_execute(sql)
        .await
        .db(|| format!("bench: `{}`", sql.lines().next().unwrap_or("")))
}

/// Write `rows` inserts (ids from `first_id`) and `rows` updates of non-vector columns, in
/// 1000-row transactions, then the marker row. Returns the number of changes.
async fn workload(source: &Client, first_id: i64, rows: u32, dims: u32, marker: i64) -> Result<u64> {
    let rows = i64::from(rows);
    let mut start = first_id;
    while start < first_id + rows {
        let end = (start + 999).min(first_id + rows - 1);
        exec(
            source,
            &format!(
                "INSERT INTO items SELECT g, 'row ' || g, (SELECT array_agg(random()::real) FROM generate_series(1, {dims}) WHERE g > 0)::vector FROM generate_series({start}, {end}) g"
            ),
        )
        .await?;
        start = end + 1;
    }
    let mut start = first_id;
    while start < first_id + rows {
        let end = (start + 999).min(first_id + rows - 1);
        exec(
            source,
            &format!("UPDATE items SET title = title || ' updated' WHERE id BETWEEN {start} AND {end}"),
        )
        .await?;
        start = end + 1;
    }
    exec(source, &format!("INSERT INTO items VALUES ({marker}, 'marker', NULL)")).await?;
    Ok(2 * rows as u64 + 1)
}

async fn wait_marker(target: &Client, marker: i64, timeout: Duration) -> Result<()> {
    let deadline = Instant::now() + timeout;
    loop {
        let found = target
            .query_opt("SELECT 1 FROM items WHERE id = $1", &[&marker])
            .await
            .db(|| "bench: polling".into())?;
        if found.is_some() {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(Error::Runtime("bench: the target did not catch up in time".into()));
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

pub async fn bench(rows: u32, dims: u32) -> Result<BenchReport> {
    let src = start("bench-source").await?;
    let tgt = start("bench-target").await?;
    let result = bench_inner(&src, &tgt, rows, dims).await;
    let _ = tokio::task::spawn_blocking(move || {
        let _ = src.stop();
        let _ = tgt.stop();
    })
    .await;
    result
}

async fn bench_inner(src: &LocalCluster, tgt: &LocalCluster, rows: u32, dims: u32) -> Result<BenchReport> {
    let ddl = TABLE_DDL.replace("DIMS", &dims.to_string());
    let admin_s = connect_url(&src.url("postgres")).await?;
    let admin_t = connect_url(&tgt.url("postgres")).await?;
    exec(&admin_s, "CREATE DATABASE app").await?;
    for db in ["app", "baseline", "native"] {
        exec(&admin_t, &format!("CREATE DATABASE {db}")).await?;
        let c = connect_url(&tgt.url(db)).await?;
        exec(&c, "CREATE EXTENSION vector").await?;
        if db != "app" {
            exec(&c, &ddl).await?;
        }
    }
    let source = connect_url(&src.url("app")).await?;
    exec(&source, "CREATE EXTENSION vector").await?;
    exec(&source, &ddl).await?;
    eprintln!("bench: loading {rows} rows of vector({dims})");
    exec(
        &source,
        &format!(
            "INSERT INTO items SELECT g, 'row ' || g, (SELECT array_agg(random()::real) FROM generate_series(1, {dims}) WHERE g > 0)::vector FROM generate_series(1, {rows}) g; CHECKPOINT; ANALYZE items"
        ),
    )
    .await?;

    // Snapshot baseline: COPY binary piped through psql.
    eprintln!("bench: snapshot baseline (psql COPY binary pipe)");
    let psql = src.bindir().join("psql");
    let pipe = format!(
        "{psql} -X -q -h 127.0.0.1 -p {} -U postgres -d app -c 'COPY items TO STDOUT (FORMAT binary)' | {psql} -X -q -h 127.0.0.1 -p {} -U postgres -d baseline -c 'COPY items FROM STDIN (FORMAT binary)'",
        src.port(),
        tgt.port(),
        psql = psql.display()
    );
    let t = Instant::now();
    let status = Command::new("sh")
        .arg("-c")
        .arg(&pipe)
        .status()
        .map_err(|e| Error::Runtime(format!("bench: {e}")))?;
    let snapshot_baseline_secs = t.elapsed().as_secs_f64();
    if !status.success() {
        return Err(Error::Runtime("bench: the psql COPY pipe failed".into()));
    }

    // pgvshift snapshot, then streaming.
    eprintln!("bench: pgvshift snapshot");
    let toml = format!(
        "[source]\nurl = \"{}\"\n[target]\nurl = \"{}\"\n[replication]\nslot = \"bench\"\npublication = \"bench\"\nstatus_interval_secs = 1\n[[tables]]\nsource = \"public.items\"\n",
        src.url("app"),
        tgt.url("app")
    );
    let config = Config::parse_str(&toml, Path::new("<bench>"), &|_| None)?;
    let target = connect_url(&tgt.url("app")).await?;
    let (stop_tx, stop_rx) = watch::channel(false);
    let stats = Arc::new(RunStats::default());
    let t = Instant::now();
    let run_config = config.clone();
    let run_stats = stats.clone();
    let runner = tokio::spawn(async move { run(&run_config, stop_rx, run_stats).await });
    crate::cli::demo::wait_applied(&target, "bench", crate::Lsn::ZERO, Duration::from_secs(1800)).await?;
    let snapshot_pgvshift_secs = t.elapsed().as_secs_f64();

    // Streaming: the workload is written while the consumer is stopped, so it waits in the
    // slot; then the consumer starts and we time the drain (decoding + apply), not the writes.
    stop_tx.send(true).ok();
    runner.await.map_err(|e| Error::Runtime(e.to_string()))??;
    eprintln!("bench: pgvshift streaming");
    let first = i64::from(rows) + 1;
    let stream_changes = workload(&source, first, rows, dims, -1).await?;
    let (stop_tx, stop_rx) = watch::channel(false);
    let t = Instant::now();
    let run_config = config.clone();
    let runner = tokio::spawn(async move { run(&run_config, stop_rx, Arc::default()).await });
    wait_marker(&target, -1, Duration::from_secs(1800)).await?;
    let stream_pgvshift_secs = t.elapsed().as_secs_f64();
    stop_tx.send(true).ok();
    runner.await.map_err(|e| Error::Runtime(e.to_string()))??;

    // Native logical replication: same workload on fresh ids, subscription enabled afterwards.
    eprintln!("bench: native logical replication");
    exec(&source, "CREATE PUBLICATION native_pub FOR TABLE items").await?;
    let native = connect_url(&tgt.url("native")).await?;
    exec(
        &native,
        &format!(
            "CREATE SUBSCRIPTION native_sub CONNECTION 'host=127.0.0.1 port={} user=postgres dbname=app' PUBLICATION native_pub WITH (copy_data = false, binary = true, enabled = false)",
            src.port()
        ),
    )
    .await?;
    workload(&source, 2 * i64::from(rows) + 1, rows, dims, -2).await?;
    let t = Instant::now();
    exec(&native, "ALTER SUBSCRIPTION native_sub ENABLE").await?;
    wait_marker(&native, -2, Duration::from_secs(1800)).await?;
    let stream_native_secs = t.elapsed().as_secs_f64();
    exec(&native, "DROP SUBSCRIPTION native_sub").await?;

    Ok(BenchReport {
        rows,
        dims,
        snapshot_pgvshift_secs,
        snapshot_baseline_secs,
        stream_changes,
        stream_pgvshift_secs,
        stream_native_secs,
    })
}
