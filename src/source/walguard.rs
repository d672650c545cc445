//! Protects the source while `run` is up: watches the WAL the slot holds back
//! (`pg_current_wal_lsn() - restart_lsn`), logs it, warns past `warn_retained_wal`, and asks
//! the run to stop past `max_retained_wal` or when the source invalidated the slot.
//!
//! Stopping does not release WAL by itself (only dropping the slot or letting it catch up
//! does): during the snapshot `run` therefore also drops its slot (the next run starts the
//! snapshot over anyway, so nothing is lost); while streaming it keeps the slot so the next
//! `run` can resume, and the message explains the choice.

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::watch;
use tokio_postgres::Client;

use crate::config::human_bytes;
use crate::config::Config;
use crate::config::Side;
use crate::error::Result;
use crate::source::connect;
use crate::source::slot::{current_lsn, slot_info, SlotInfo};
use crate::Lsn;

/// What the guard saw last, shared with `status`-like readers (metrics).
#[derive(Debug, Default)]
pub struct WalStats {
    /// Bytes of WAL the slot retains on the source (-1 until first measured).
    pub retained_bytes: AtomicI64,
    /// The source's `pg_current_wal_lsn()` at the last measurement (0 until then), for the lag.
    pub source_current_lsn: AtomicU64,
}

/// Why the guard stopped the run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StopReason {
    /// Retained WAL passed `max_retained_wal`.
    RetainedWal { retained: i64, limit: u64 },
    /// The source invalidated the slot (`wal_status = 'lost'`).
    SlotLost,
}

/// A running guard; dropping it stops the watching.
pub struct WalGuard {
    reason: Arc<Mutex<Option<StopReason>>>,
    task: tokio::task::JoinHandle<()>,
}

impl WalGuard {
    /// Start watching. Returns the guard and a stop channel that becomes true when `user_stop`
    /// does or when the guard decides to stop the run.
    pub fn spawn(
        config: &Config,
        mut user_stop: watch::Receiver<bool>,
        stats: Arc<WalStats>,
    ) -> (WalGuard, watch::Receiver<bool>) {
        let (tx, rx) = watch::channel(*user_stop.borrow());
        let tx = Arc::new(tx);
        let reason = Arc::new(Mutex::new(None));
        let forward = tx.clone();
        tokio::spawn(async move {
            while user_stop.changed().await.is_ok() {
                if *user_stop.borrow() {
                    let _ = forward.send(true);
                    return;
                }
            }
        });
        let config = config.clone();
        let r = reason.clone();
        let task = tokio::spawn(async move { watch_loop(config, tx, r, stats).await });
        (WalGuard { reason, task }, rx)
    }

    /// Why the guard stopped the run, if it did.
    pub fn reason(&self) -> Option<StopReason> {
        self.reason.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

impl Drop for WalGuard {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// How often the slot is measured: every 5 status intervals, between 1 and 10 seconds.
fn check_every(config: &Config) -> Duration {
    (config.replication.status_interval * 5).clamp(Duration::from_secs(1), Duration::from_secs(10))
}

async fn watch_loop(
    config: Config,
    stop: Arc<watch::Sender<bool>>,
    reason: Arc<Mutex<Option<StopReason>>>,
    stats: Arc<WalStats>,
) {
    stats.retained_bytes.store(-1, Ordering::Relaxed);
    let slot = config.replication.slot.clone();
    let every = check_every(&config);
    let mut last_log: Option<Instant> = None;
    let mut client = None;
    loop {
        if client.is_none() {
            client = connect(&config.source, Side::Source).await.ok();
        }
        if let Some(c) = &client {
            match measure(c, &slot).await {
                Ok((current, slot_info)) => {
                    stats.source_current_lsn.store(current.0, Ordering::Relaxed);
                    let retained = slot_info.as_ref().and_then(|s| s.retained_bytes);
                    let wal_status = slot_info.and_then(|s| s.wal_status);
                    if wal_status.as_deref() == Some("lost") {
                        *reason.lock().unwrap_or_else(|e| e.into_inner()) = Some(StopReason::SlotLost);
                        let _ = stop.send(true);
                        return;
                    }
                    if let Some(bytes) = retained {
                        stats.retained_bytes.store(bytes, Ordering::Relaxed);
                        if let Some(limit) = config.replication.max_retained_wal {
                            if bytes as u64 > limit {
                                tracing::error!(slot = %slot, retained = %human_bytes(bytes), limit = %human_bytes(limit as i64), "the slot retains more WAL on the source than max_retained_wal: stopping");
                                *reason.lock().unwrap_or_else(|e| e.into_inner()) =
                                    Some(StopReason::RetainedWal { retained: bytes, limit });
                                let _ = stop.send(true);
                                return;
                            }
                        }
                        let over_warn = config.replication.warn_retained_wal.is_some_and(|w| bytes as u64 > w);
                        if last_log.is_none_or(|t| t.elapsed() >= Duration::from_secs(60)) {
                            last_log = Some(Instant::now());
                            if over_warn {
                                tracing::warn!(slot = %slot, retained = %human_bytes(bytes), wal_status = wal_status.as_deref().unwrap_or("-"), "the slot retains more WAL on the source than warn_retained_wal: check that pgvshift keeps up and that no long transaction is open on the source");
                            } else {
                                tracing::info!(slot = %slot, retained = %human_bytes(bytes), "WAL retained by the slot on the source");
                            }
                        }
                    }
                }
                Err(e) => {
                    tracing::debug!("measuring the slot's retained WAL: {e}");
                    client = None;
                }
            }
        }
        tokio::time::sleep(every).await;
    }
}

/// The source's WAL position and the slot, as one measurement.
async fn measure(source: &Client, slot: &str) -> Result<(Lsn, Option<SlotInfo>)> {
    Ok((current_lsn(source).await?, slot_info(source, slot).await?))
}

/// The message `run` ends with after the guard stopped it.
pub fn explain(reason: &StopReason, config: &Config, during_snapshot: bool) -> String {
    let slot = &config.replication.slot;
    let path = config.path.display();
    match reason {
        StopReason::SlotLost => format!(
            "the source invalidated replication slot {slot} (wal_status = lost: it fell behind more than max_slot_wal_keep_size), so the changes it held are gone: a fresh snapshot is required. Run `pgvshift cleanup --config {path} --yes`, then `pgvshift run --config {path} --truncate-target`"
        ),
        StopReason::RetainedWal { retained, limit } if during_snapshot => format!(
            "replication slot {slot} retained {} of WAL on the source during the snapshot, more than max_retained_wal ({}): stopped and dropped the slot to release that WAL. The next `pgvshift run --config {path}` starts the snapshot over; run it when the source has room or raise max_retained_wal",
            human_bytes(*retained),
            human_bytes(*limit as i64)
        ),
        StopReason::RetainedWal { retained, limit } => format!(
            "replication slot {slot} retains {} of WAL on the source, more than max_retained_wal ({}): streaming stopped with everything applied so far committed on the target. The slot still holds that WAL: either raise max_retained_wal and run `pgvshift run --config {path}` again to catch up (check first that the target keeps up and that no long transaction is open on the source), or give up on this migration with `pgvshift cleanup --config {path} --yes`, which drops the slot and releases the WAL (a fresh snapshot is then required)",
            human_bytes(*retained),
            human_bytes(*limit as i64)
        ),
    }
}
