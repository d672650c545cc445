//! Snapshot progress for people watching `pgvshift run`: bars (indicatif) per table and overall
//! on a terminal, or one log line per table every 10 s otherwise (pipes, files, JSON logs).
//! Bytes are exact (COPY data read so far); the totals, and so the percentages, rows and ETA,
//! come from the planner's estimates (`reltuples`, `pg_table_size`) until a table completes.

use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::config::human_bytes;
use crate::observe::stats::{CopyProgress, TableProgress};

/// How progress is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Display {
    /// Bars on stderr (a terminal, human log format).
    Bars,
    /// A log line per table in progress, every `LINE_EVERY`.
    Lines,
}

const LINE_EVERY: Duration = Duration::from_secs(10);

/// The bars' owner, global so that log output can be printed above them
/// ([`suspend_bars`]) instead of through them.
fn multi() -> &'static MultiProgress {
    static MULTI: OnceLock<MultiProgress> = OnceLock::new();
    MULTI.get_or_init(|| MultiProgress::with_draw_target(ProgressDrawTarget::stderr_with_hz(4)))
}

/// Run `f` (which writes to stderr) with the bars cleared, then redraw them.
pub fn suspend_bars<R>(f: impl FnOnce() -> R) -> R {
    multi().suspend(f)
}

/// PURE: (fraction done 0..=1, estimated rows so far, ETA) of one table.
pub fn estimate(t: &TableProgress, now: Instant) -> (f64, u64, Option<Duration>) {
    if let Some(rows) = t.rows {
        return (1.0, rows, Some(Duration::ZERO));
    }
    let total = t.estimated_bytes.max(1) as f64;
    let fraction = (t.bytes as f64 / total).min(0.99);
    let rows = (fraction * t.estimated_rows.max(0) as f64) as u64;
    let eta = t.started.and_then(|s| {
        let elapsed = now.duration_since(s).as_secs_f64();
        (t.bytes > 0 && elapsed > 0.0).then(|| {
            let rate = t.bytes as f64 / elapsed;
            Duration::from_secs_f64(((total - t.bytes as f64).max(0.0)) / rate)
        })
    });
    (fraction, rows, eta)
}

/// PURE: the log line for one table.
pub fn line(t: &TableProgress, now: Instant) -> String {
    let (fraction, rows, eta) = estimate(t, now);
    let rate = t
        .started
        .map(|s| now.duration_since(s).as_secs_f64())
        .filter(|e| *e > 0.0)
        .map(|e| format!(", {}/s", human_bytes((t.bytes as f64 / e) as i64)))
        .unwrap_or_default();
    match t.rows {
        Some(rows) => format!("{}: done, {rows} rows, {}", t.name, human_bytes(t.bytes as i64)),
        None => format!(
            "{}: {:.0}% ({} of ~{}, ~{rows} of ~{} rows{rate}{})",
            t.name,
            fraction * 100.0,
            human_bytes(t.bytes as i64),
            human_bytes(t.estimated_bytes),
            t.estimated_rows,
            eta.map(|d| format!(", ETA {}s", d.as_secs())).unwrap_or_default()
        ),
    }
}

/// Show the snapshot's progress until aborted (drop the handle's task when the run ends).
pub fn spawn(progress: Arc<CopyProgress>, display: Display) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        match display {
            Display::Lines => loop {
                tokio::time::sleep(LINE_EVERY).await;
                let tables = progress.tables.lock().unwrap_or_else(|e| e.into_inner()).clone();
                let now = Instant::now();
                for t in tables.iter().filter(|t| t.started.is_some() && t.finished.is_none()) {
                    tracing::info!("snapshot {}", line(t, now));
                }
            },
            Display::Bars => {
                let style = ProgressStyle::with_template(
                    "{prefix:>24} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} ETA {eta} {msg}",
                )
                .expect("valid template")
                .progress_chars("=> ");
                let mut bars: Vec<(String, ProgressBar)> = Vec::new();
                loop {
                    tokio::time::sleep(Duration::from_millis(250)).await;
                    let tables = progress.tables.lock().unwrap_or_else(|e| e.into_inner()).clone();
                    // A restarted snapshot registers its tables again: start the bars over.
                    if bars.len() != tables.len() || bars.iter().zip(&tables).any(|((n, _), t)| *n != t.name) {
                        for (_, b) in bars.drain(..) {
                            b.finish_and_clear();
                        }
                        for t in &tables {
                            let bar = multi().add(ProgressBar::new(t.estimated_bytes.max(1) as u64));
                            bar.set_style(style.clone());
                            bar.set_prefix(t.name.clone());
                            bars.push((t.name.clone(), bar));
                        }
                    }
                    // All copied: clear the bars (the log says "snapshot copy complete").
                    if !tables.is_empty() && tables.iter().all(|t| t.rows.is_some()) {
                        for (_, b) in &bars {
                            if !b.is_finished() || !b.is_hidden() {
                                b.finish_and_clear();
                            }
                        }
                        continue;
                    }
                    let now = Instant::now();
                    for ((_, bar), t) in bars.iter().zip(&tables) {
                        if bar.is_finished() {
                            continue;
                        }
                        if t.bytes > bar.length().unwrap_or(0) {
                            bar.set_length(t.bytes + 1);
                        }
                        bar.set_position(t.bytes);
                        let (_, rows, _) = estimate(t, now);
                        match t.rows {
                            Some(rows) => {
                                bar.set_length(t.bytes.max(1));
                                bar.set_position(t.bytes.max(1));
                                bar.finish_with_message(format!("{rows} rows"));
                            }
                            None if t.started.is_some() => bar.set_message(format!("~{rows} rows")),
                            None => bar.set_message("waiting"),
                        }
                    }
                }
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(bytes: u64, rows: Option<u64>, started_secs_ago: Option<u64>, now: Instant) -> TableProgress {
        TableProgress {
            name: "public.items".into(),
            estimated_rows: 1000,
            estimated_bytes: 1_000_000,
            bytes,
            rows,
            started: started_secs_ago.map(|s| now - Duration::from_secs(s)),
            finished: None,
        }
    }

    #[test]
    fn estimates_from_bytes_and_planner_totals() {
        let now = Instant::now();
        let (f, rows, eta) = estimate(&table(250_000, None, Some(10), now), now);
        assert!((f - 0.25).abs() < 1e-9);
        assert_eq!(rows, 250);
        // 25 kB/s, 750 kB to go: 30 s.
        assert_eq!(eta.map(|d| d.as_secs()), Some(30));
        let done = estimate(&table(1_200_000, Some(1234), Some(10), now), now);
        assert_eq!(done, (1.0, 1234, Some(Duration::ZERO)));
        // More bytes than estimated: never claims 100% before the table is done.
        assert!(estimate(&table(5_000_000, None, Some(1), now), now).0 < 1.0);
        assert_eq!(estimate(&table(0, None, None, now), now).2, None);
    }

    #[test]
    fn log_line() {
        let now = Instant::now();
        let l = line(&table(500_000, None, Some(5), now), now);
        assert!(
            l.starts_with("public.items: 50% (488.3 kB of ~976.6 kB, ~500 of ~1000 rows, 97.7 kB/s, ETA 5s)"),
            "{l}"
        );
        assert_eq!(
            line(&table(1_000, Some(7), Some(5), now), now),
            "public.items: done, 7 rows, 1000.0 B"
        );
    }
}
