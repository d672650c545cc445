//! `pgvshift demo`: the embedded default. Starts throwaway source and target clusters, loads a
//! demo pgvector table, migrates it live while writing to the source, verifies both sides are
//! equal, and cleans everything up.

use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::watch;
use tokio_postgres::Client;

use crate::config::Config;
use crate::config::Side;
use crate::error::{DbContext, Error, Result};
use crate::observe::stats::RunStats;
use crate::run::run;
use crate::source::connect;
use crate::testkit::localpg::{ClusterOptions, LocalCluster};
use crate::Lsn;

const DIMS: u32 = 768;

async fn start_cluster(name: &str) -> Result<LocalCluster> {
    let name = name.to_string();
    tokio::task::spawn_blocking(move || LocalCluster::start(ClusterOptions::new(name)))
        .await
        .map_err(|e| Error::Runtime(format!("starting a throwaway cluster: {e}")))?
        .map_err(|e| {
            Error::Runtime(format!(
                "starting a throwaway PostgreSQL cluster: {e:#} (run scripts/setup.sh first)"
            ))
        })
}

/// The source's WAL insert position: a transaction that commits after this call ends beyond it.
pub async fn source_lsn(source: &Client) -> Result<Lsn> {
    let text: String = source
        .query_one("SELECT pg_current_wal_insert_lsn()::text", &[])
        .await
        .db(|| "reading the source's WAL position".into())?
        .get(0);
    text.parse().map_err(|e| Error::Runtime(format!("{e}")))
}

/// Wait until the target's progress row for `slot` says `lsn` is applied.
pub async fn wait_applied(target: &Client, slot: &str, lsn: Lsn, timeout: Duration) -> Result<Lsn> {
    let deadline = Instant::now() + timeout;
    loop {
        let row = target
            .query_opt(
                "SELECT applied_lsn::text, phase FROM pgvshift.progress WHERE slot = $1",
                &[&slot],
            )
            .await;
        if let Ok(Some(row)) = row {
            let applied: Option<String> = row.get(0);
            let phase: String = row.get(1);
            if let Some(applied) = applied.and_then(|a| a.parse::<Lsn>().ok()) {
                if phase == "streaming" && applied >= lsn {
                    return Ok(applied);
                }
            }
        }
        if Instant::now() >= deadline {
            return Err(Error::Runtime(format!(
                "the target did not apply the source's changes up to {lsn} within {timeout:?}"
            )));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Order-independent fingerprint of a table's content (`count`, md5 over rows in key order).
/// Only meaningful when both sides have identical column types (the pgvector profile).
pub async fn fingerprint(client: &Client, table: &str, order_by: &str) -> Result<(i64, String)> {
    let row = client
        .query_one(
            &format!("SELECT count(*), coalesce(md5(string_agg(t::text, '|' ORDER BY {order_by})), '') FROM {table} t"),
            &[],
        )
        .await
        .db(|| format!("fingerprinting {table}"))?;
    Ok((row.get(0), row.get(1)))
}

pub async fn demo(rows: u32, mut interrupt: watch::Receiver<bool>) -> Result<()> {
    let t0 = Instant::now();
    println!("pgvshift demo: starting throwaway source and target PostgreSQL clusters");
    let source_cluster = start_cluster("demo-source").await?;
    let target_cluster = start_cluster("demo-target").await?;
    let result = demo_inner(&source_cluster, &target_cluster, rows, &mut interrupt).await;
    println!("stopping the throwaway clusters");
    let _ = tokio::task::spawn_blocking(move || {
        let _ = source_cluster.stop();
        let _ = target_cluster.stop();
    })
    .await;
    if result.is_ok() {
        println!("demo finished in {:.1} s", t0.elapsed().as_secs_f64());
    }
    result
}

async fn demo_inner(
    src: &LocalCluster,
    tgt: &LocalCluster,
    rows: u32,
    interrupt: &mut watch::Receiver<bool>,
) -> Result<()> {
    for (c, db) in [(src, "app"), (tgt, "app")] {
        let c = c.url("postgres");
        let admin = crate::source::connect_url(&c).await?;
        admin
            .batch_execute(&format!("CREATE DATABASE {db}"))
            .await
            .db(|| "creating the demo database".into())?;
    }
    let toml = format!(
        "[source]\nurl = \"{}\"\n[target]\nurl = \"{}\"\n[replication]\nslot = \"pgvshift_demo\"\npublication = \"pgvshift_demo\"\nstatus_interval_secs = 1\n[[tables]]\nsource = \"public.items\"\n",
        src.url("app"),
        tgt.url("app")
    );
    let config = Config::parse_str(&toml, Path::new("<demo>"), &|_| None)?;
    let source = connect(&config.source, Side::Source).await?;
    let target = connect(&config.target, Side::Target).await?;

    println!("loading {rows} rows of vector({DIMS}) with text and jsonb into the source");
    let load = Instant::now();
    source
        .batch_execute(&format!(
            "CREATE EXTENSION vector;
             CREATE TABLE items (id bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY, title text NOT NULL,
                                 meta jsonb, embedding vector({DIMS}));
             INSERT INTO items (title, meta, embedding)
             SELECT 'item ' || g, jsonb_build_object('n', g, 'tag', 'demo'),
                    (SELECT array_agg(random()::real) FROM generate_series(1, {DIMS}) WHERE g > 0)::vector
               FROM generate_series(1, {rows}) g;
             CREATE INDEX items_embedding_idx ON items USING hnsw (embedding vector_cosine_ops) WITH (m = 16, ef_construction = 64);
             CREATE INDEX items_meta_idx ON items USING gin (meta);
             ANALYZE items;"
        ))
        .await
        .db(|| "loading demo data".into())?;
    target
        .batch_execute("CREATE EXTENSION vector")
        .await
        .db(|| "creating pgvector on the target".into())?;
    println!("  loaded in {:.1} s", load.elapsed().as_secs_f64());

    println!("\n$ pgvshift check");
    let findings = crate::check::check(&config, crate::check::Options::default()).await?;
    for line in crate::check::render(&findings).lines() {
        println!("  {line}");
    }

    println!("\n$ pgvshift plan");
    let plan = crate::cli::commands::plan(&config).await?;
    for line in plan.lines() {
        println!("  {line}");
    }

    println!("\n$ pgvshift run   (snapshot, then streaming)");
    let (stop_tx, stop_rx) = watch::channel(false);
    let stats = Arc::new(RunStats::default());
    let run_config = config.clone();
    let run_stats = stats.clone();
    let mut runner = tokio::spawn(async move { run(&run_config, stop_rx, run_stats).await });

    let snap = Instant::now();
    let slot = config.replication.slot.clone();
    let mark = source_lsn(&source).await?;
    tokio::select! {
        r = wait_applied(&target, &slot, mark, Duration::from_secs(300)) => { r?; }
        r = &mut runner => return Err(r.map_err(|e| Error::Runtime(e.to_string()))?.err().unwrap_or_else(|| Error::Runtime("run ended early".into()))),
        _ = interrupt.changed() => return Err(Error::Runtime("interrupted".into())),
    }
    let copied = stats.copy.rows.load(Ordering::Relaxed);
    println!(
        "  snapshot: {copied} rows copied and indexes built in {:.1} s; now streaming",
        snap.elapsed().as_secs_f64()
    );

    println!("\nwriting live changes on the source: inserts, updates (vector and non-vector), deletes");
    let live = Instant::now();
    for round in 0..5 {
        source
            .batch_execute(&format!(
                "BEGIN;
                 INSERT INTO items (title, meta, embedding)
                 SELECT 'live ' || g, jsonb_build_object('round', {round}),
                        (SELECT array_agg(random()::real) FROM generate_series(1, {DIMS}) WHERE g > 0)::vector
                   FROM generate_series(1, 100) g;
                 UPDATE items SET title = title || ' (edited)' WHERE id % 50 = {round};
                 UPDATE items SET embedding = (SELECT array_agg(random()::real) FROM generate_series(1, {DIMS}) WHERE id > 0)::vector
                  WHERE id % 97 = {round};
                 DELETE FROM items WHERE id % 113 = {round};
                 COMMIT;"
            ))
            .await
            .db(|| "writing live changes".into())?;
        let a = &stats.apply;
        println!(
            "  round {}: applied so far: {} inserts, {} updates, {} deletes in {} transactions",
            round + 1,
            a.inserts.load(Ordering::Relaxed),
            a.updates.load(Ordering::Relaxed),
            a.deletes.load(Ordering::Relaxed),
            a.transactions.load(Ordering::Relaxed)
        );
    }
    let mark = source_lsn(&source).await?;
    wait_applied(&target, &slot, mark, Duration::from_secs(120)).await?;
    let a = &stats.apply;
    println!(
        "  caught up in {:.2} s: {} inserts, {} updates (some left the TOASTed vector untouched), {} deletes applied",
        live.elapsed().as_secs_f64(),
        a.inserts.load(Ordering::Relaxed),
        a.updates.load(Ordering::Relaxed),
        a.deletes.load(Ordering::Relaxed)
    );

    println!("\n$ pgvshift status");
    let status = crate::cli::commands::status(&config).await?;
    for line in crate::cli::commands::render_status(&status).lines() {
        println!("  {line}");
    }

    println!("\nverifying: row count and an md5 over every row, in key order, on both sides");
    let s = fingerprint(&source, "items", "id").await?;
    let t = fingerprint(&target, "items", "id").await?;
    let indexes: i64 = target
        .query_one("SELECT count(*) FROM pg_indexes WHERE tablename = 'items'", &[])
        .await
        .db(|| "counting target indexes".into())?
        .get(0);
    println!("  source: {} rows, md5 {}", s.0, s.1);
    println!(
        "  target: {} rows, md5 {} ({indexes} indexes incl. the hnsw index)",
        t.0, t.1
    );
    let mut equal = s == t;

    println!("\n$ pgvshift verify --ann 10,20   (row by row while streaming, then search recall)");
    let opts = crate::verify::Options {
        ann: Some((10, 20)),
        ..Default::default()
    };
    let report = crate::verify::verify(&config, &opts).await?;
    for line in crate::verify::render(&report).lines() {
        println!("  {line}");
    }
    equal &= crate::verify::failure(&report).is_none();

    stop_tx.send(true).ok();
    runner.await.map_err(|e| Error::Runtime(e.to_string()))??;
    println!("\n$ pgvshift cleanup --yes");
    for action in crate::run::cleanup(&config, true).await? {
        println!("  {action}");
    }
    if !equal {
        return Err(Error::Runtime("verification FAILED: source and target differ".into()));
    }
    println!("\nOK: source and target are equal");
    Ok(())
}
