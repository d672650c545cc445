//! When to reconnect after a lost connection, and what to say about it: the backoff delays
//! (`backon`'s exponential iterator with jitter), the outage clock that gives up after
//! `replication.max_retry_duration_secs`, and the messages. The loop itself is in
//! [`crate::run::run`]; see docs/architecture.md ("Failure handling").
//!
//! ```text
//!   attempt fails (transient) ──> outage clock starts, unless one is running
//!      time left? no ──> give up (Error::Runtime, exit code 3)
//!                 yes ─> wait min(next backoff delay, time left) ──> reconnect ──> attempt
//!   an attempt that committed on the target, or got past its checks and ran 30 s,
//!   ends the outage: the next failure starts a new clock and the delays start small again
//! ```

use std::fmt;
use std::path::Path;
use std::time::{Duration, Instant};

use backon::{BackoffBuilder, ExponentialBackoff, ExponentialBuilder};

use crate::Lsn;

/// The first delay before jitter; each next one doubles.
pub const MIN_DELAY: Duration = Duration::from_millis(250);
/// The longest delay before jitter. Jitter adds a random part of up to as much again, so
/// delays grow 0.25-0.5 s, 0.5-1 s, ... up to 7.5-15 s.
pub const MAX_DELAY: Duration = Duration::from_millis(7500);
/// An attempt past its checks that lasted this long counts as recovered even if the idle
/// stream had nothing to commit.
pub const HEALTHY_AFTER: Duration = Duration::from_secs(30);

/// Which connection was lost.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lost {
    Source,
    Target,
    /// The error does not say, and both answer again by the time we look.
    Either,
}

impl fmt::Display for Lost {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Lost::Source => "source",
            Lost::Target => "target",
            Lost::Either => "source or target",
        })
    }
}

impl From<crate::config::Side> for Lost {
    fn from(side: crate::config::Side) -> Lost {
        match side {
            crate::config::Side::Source => Lost::Source,
            crate::config::Side::Target => Lost::Target,
        }
    }
}

/// The next wait before a reconnection attempt.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Wait {
    pub delay: Duration,
    /// 1 for the first reconnection attempt of this outage.
    pub attempt: u32,
    /// Time left before giving up (counted from now, before the delay).
    pub left: Duration,
}

struct Outage {
    started: Instant,
    attempts: u32,
    delays: ExponentialBackoff,
}

/// The outage clock and backoff of one `run`.
pub struct Reconnects {
    limit: Duration,
    outage: Option<Outage>,
}

fn delays() -> ExponentialBackoff {
    ExponentialBuilder::default()
        .with_min_delay(MIN_DELAY)
        .with_max_delay(MAX_DELAY)
        .with_factor(2.0)
        .with_jitter()
        .without_max_times()
        .build()
}

impl Reconnects {
    /// Give up once an outage has lasted `limit` (zero: at the first failure).
    pub fn new(limit: Duration) -> Reconnects {
        Reconnects { limit, outage: None }
    }

    /// The connection works again: the next failure starts a new outage.
    pub fn recovered(&mut self) {
        self.outage = None;
    }

    /// An attempt (or a reconnection) failed at `now`: how long to wait before the next
    /// attempt, or `None` when the outage has used up the limit.
    pub fn next(&mut self, now: Instant) -> Option<Wait> {
        let outage = self.outage.get_or_insert_with(|| Outage {
            started: now,
            attempts: 0,
            delays: delays(),
        });
        let left = self.limit.saturating_sub(now.saturating_duration_since(outage.started));
        if left.is_zero() {
            return None;
        }
        let delay = outage.delays.next().unwrap_or(MAX_DELAY * 2).min(left);
        outage.attempts += 1;
        Some(Wait {
            delay,
            attempt: outage.attempts,
            left,
        })
    }

    /// Reconnection attempts made in the current outage.
    pub fn attempts(&self) -> u32 {
        self.outage.as_ref().map_or(0, |o| o.attempts)
    }

    /// How long the current outage has lasted at `now`.
    pub fn elapsed(&self, now: Instant) -> Duration {
        self.outage
            .as_ref()
            .map_or(Duration::ZERO, |o| now.saturating_duration_since(o.started))
    }
}

/// How far the target got, for messages: everything up to the position when streaming, or
/// an unfinished snapshot (`None`).
pub fn target_holds(applied: Option<Lsn>) -> String {
    match applied {
        Some(lsn) => format!("the target holds everything up to {lsn}"),
        None => "the snapshot did not complete, so the next run starts it over".to_string(),
    }
}

/// The error `run` ends with when an outage outlasts the limit.
pub fn give_up_message(
    attempts: u32,
    over: Duration,
    lost: Lost,
    cause: &str,
    applied: Option<Lsn>,
    config_path: &Path,
    limit: Duration,
) -> String {
    let reachable = match lost {
        Lost::Either => "the source and the target are".to_string(),
        side => format!("the {side} is"),
    };
    format!(
        "gave up after {attempts} reconnection attempt{s} over {over:.1}s without the {lost}: {cause}; {holds}: run `pgvshift run --config {path}` again once {reachable} reachable (replication.max_retry_duration_secs = {limit} sets how long to keep trying)",
        s = if attempts == 1 { "" } else { "s" },
        over = over.as_secs_f64(),
        holds = target_holds(applied),
        path = config_path.display(),
        limit = limit.as_secs(),
    )
}

/// An error's message on one line (for the retry warnings and the give-up message).
pub fn one_line(message: &str) -> String {
    message.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_grow_with_jitter_up_to_the_cap() {
        let mut r = Reconnects::new(Duration::from_secs(100_000));
        let t0 = Instant::now();
        let mut base = MIN_DELAY;
        for n in 1..=20 {
            let w = r.next(t0).unwrap();
            assert_eq!(w.attempt, n);
            assert!(
                w.delay >= base && w.delay <= base * 2,
                "attempt {n}: {:?} for base {base:?}",
                w.delay
            );
            base = (base * 2).min(MAX_DELAY);
        }
        assert_eq!(r.attempts(), 20);
    }

    #[test]
    fn gives_up_when_the_outage_outlasts_the_limit() {
        let limit = Duration::from_secs(3);
        let mut r = Reconnects::new(limit);
        let t0 = Instant::now();
        let first = r.next(t0).unwrap();
        assert_eq!(first.left, limit);
        // Delays never reach past the limit.
        let late = r.next(t0 + Duration::from_millis(2900)).unwrap();
        assert_eq!(late.left, Duration::from_millis(100));
        assert!(late.delay <= late.left);
        assert_eq!(r.next(t0 + limit), None);
        assert_eq!(r.attempts(), 2);
        assert_eq!(r.elapsed(t0 + limit), limit);
    }

    #[test]
    fn zero_never_reconnects() {
        let mut r = Reconnects::new(Duration::ZERO);
        assert_eq!(r.next(Instant::now()), None);
        assert_eq!(r.attempts(), 0);
    }

    #[test]
    fn recovery_starts_a_new_outage() {
        let mut r = Reconnects::new(Duration::from_secs(10));
        let t0 = Instant::now();
        for _ in 0..6 {
            r.next(t0).unwrap();
        }
        assert_eq!(r.next(t0 + Duration::from_secs(10)), None);
        r.recovered();
        assert_eq!(r.attempts(), 0);
        let w = r.next(t0 + Duration::from_secs(3600)).unwrap();
        assert_eq!(w.attempt, 1);
        assert!(w.delay <= MIN_DELAY * 2, "delays start small again: {:?}", w.delay);
        assert_eq!(w.left, Duration::from_secs(10));
    }

    #[test]
    fn give_up_messages() {
        let m = give_up_message(
            7,
            Duration::from_millis(3140),
            Lost::Target,
            "connecting to the target postgresql://u@db:5432/app: error connecting to server: Connection refused (os error 111)",
            Some(Lsn(0x3_0000_0060)),
            Path::new("/etc/pgvshift.toml"),
            Duration::from_secs(3),
        );
        assert_eq!(
            m,
            "gave up after 7 reconnection attempts over 3.1s without the target: connecting to the target postgresql://u@db:5432/app: error connecting to server: Connection refused (os error 111); \
             the target holds everything up to 3/60: run `pgvshift run --config /etc/pgvshift.toml` again once the target is reachable \
             (replication.max_retry_duration_secs = 3 sets how long to keep trying)"
        );
        let m = give_up_message(
            1,
            Duration::ZERO,
            Lost::Either,
            "x",
            None,
            Path::new("c.toml"),
            Duration::ZERO,
        );
        assert!(m.starts_with("gave up after 1 reconnection attempt over 0.0s without the source or target: x; the snapshot did not complete"), "{m}");
        assert!(m.contains("once the source and the target are reachable"), "{m}");
    }

    #[test]
    fn one_line_messages() {
        assert_eq!(one_line("blocking:\n  - a\n  - b"), "blocking: - a - b");
    }
}
