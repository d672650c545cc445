//! `[metrics] listen`: `/healthz` turns ready once streaming, and `/metrics` is scraped and
//! parsed: rows copied, changes applied by table and kind, batch latency, lag, retained WAL.

mod support;

use std::collections::HashMap;
use std::io::{Read, Write};
use std::time::{Duration, Instant};

use support::TestEnv;

/// GET `path` on 127.0.0.1:`port`: (status code, body), or None when nothing answers.
fn get(port: u16, path: &str) -> Option<(u16, String)> {
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    let status = response.split_whitespace().nth(1)?.parse().ok()?;
    let body = response.split_once("\r\n\r\n").map(|(_, b)| b.to_string())?;
    Some((status, body))
}

/// The samples of an OpenMetrics text body: `name{labels}` -> value, and `name` -> TYPE.
fn parse(body: &str) -> (HashMap<String, f64>, HashMap<String, String>) {
    let mut samples = HashMap::new();
    let mut types = HashMap::new();
    for line in body.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').expect("TYPE line");
            types.insert(name.to_string(), kind.to_string());
        } else if !line.starts_with('#') && !line.is_empty() {
            let (name, value) = line.rsplit_once(' ').expect("sample line");
            samples.insert(
                name.to_string(),
                value.parse().unwrap_or_else(|_| panic!("value in {line}")),
            );
        }
    }
    assert!(body.ends_with("# EOF\n"), "OpenMetrics ends with # EOF:\n{body}");
    (samples, types)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_and_healthz_while_running() {
    let env = TestEnv::new(
        "metrics",
        "CREATE TABLE items (id int PRIMARY KEY, note text, embedding vector(3));
         INSERT INTO items SELECT i, 'n' || i, '[1,2,3]' FROM generate_series(1, 300) i;",
    );
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let path = env.write_config_with(&[("public.items", "")], "");
    let mut text = std::fs::read_to_string(&path).unwrap();
    text = text.replace(
        "[[tables]]",
        &format!("[metrics]\nlisten = \"127.0.0.1:{port}\"\n[[tables]]"),
    );
    std::fs::write(&path, text).unwrap();
    let config = pgvshift::config::Config::load_with_env(&path, &|_| None).unwrap();
    let run = env.spawn_run(config);

    // /healthz is 503 until the stream runs, then 200.
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        match get(port, "/healthz") {
            Some((200, body)) => {
                assert_eq!(body.trim(), "streaming");
                break;
            }
            Some((503, body)) => {
                assert!(["checks", "snapshot"].contains(&body.trim()), "{body}");
            }
            Some(other) => panic!("/healthz answered {other:?}"),
            None => {}
        }
        assert!(Instant::now() < deadline, "/healthz never became ready");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    env.source_value(
        "INSERT INTO items SELECT i, 'x', '[0,0,1]' FROM generate_series(301, 340) i;
         UPDATE items SET note = 'u' WHERE id <= 25;
         DELETE FROM items WHERE id > 330;",
    );
    env.wait_caught_up().await;
    let (status, body) = get(port, "/metrics").expect("metrics answer");
    assert_eq!(status, 200);
    let (samples, types) = parse(&body);
    let value = |k: &str| *samples.get(k).unwrap_or_else(|| panic!("no sample {k} in:\n{body}"));
    assert_eq!(value("pgvshift_snapshot_rows_copied_total"), 300.0);
    assert_eq!(value("pgvshift_snapshot_tables_copied_total"), 1.0);
    assert_eq!(
        value("pgvshift_changes_applied_total{table=\"public.items\",kind=\"insert\"}"),
        40.0
    );
    assert_eq!(
        value("pgvshift_changes_applied_total{table=\"public.items\",kind=\"update\"}"),
        25.0
    );
    assert_eq!(
        value("pgvshift_changes_applied_total{table=\"public.items\",kind=\"delete\"}"),
        10.0
    );
    assert_eq!(value("pgvshift_streaming"), 1.0);
    assert!(value("pgvshift_batch_apply_seconds_count") >= 1.0);
    assert!(value("pgvshift_transactions_applied_total") >= 3.0);
    assert_eq!(value("pgvshift_reconnects_total"), 0.0);
    assert_eq!(
        types.get("pgvshift_changes_applied").map(String::as_str),
        Some("counter")
    );
    assert_eq!(
        types.get("pgvshift_batch_apply_seconds").map(String::as_str),
        Some("histogram")
    );
    // The WAL guard measures the source every few seconds: lag and retained WAL appear then.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (_, body) = get(port, "/metrics").expect("metrics answer");
        let (samples, types) = parse(&body);
        if let (Some(lag), Some(retained)) = (
            samples.get("pgvshift_lag_bytes"),
            samples.get("pgvshift_retained_wal_bytes"),
        ) {
            assert!(*lag >= 0.0 && *retained >= 0.0, "{body}");
            assert!(samples.contains_key("pgvshift_lag_seconds"), "{body}");
            assert_eq!(types.get("pgvshift_lag_bytes").map(String::as_str), Some("gauge"));
            break;
        }
        assert!(Instant::now() < deadline, "no lag / retained WAL in:\n{body}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // status shows the same counts, from the target (committed with the changes).
    let (code, stdout, stderr) = env.run_binary(&["status", "--config", path.to_str().unwrap(), "--json"]);
    assert_eq!(code, 0, "{stderr}");
    let status: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    let table = &status["tables"][0];
    assert_eq!(
        (
            &table["inserts"],
            &table["updates"],
            &table["deletes"],
            &table["rows_copied"]
        ),
        (
            &serde_json::json!(40),
            &serde_json::json!(25),
            &serde_json::json!(10),
            &serde_json::json!(300)
        ),
        "{status}"
    );
    assert!(status["lag_seconds"].as_f64().is_some(), "{status}");
    assert_eq!(get(port, "/nope").map(|r| r.0), Some(404));
    run.stop().await;
    assert!(get(port, "/healthz").is_none(), "the server stops with the run");
}
