//! The log of in-process runs ([`super::TestEnv::spawn_run`]), captured so a test can assert
//! on what a run said (and read its timestamps). One global subscriber per test binary: the
//! tests of a binary run in parallel, so a test picks its own run's lines by its slot name
//! (`slot=<env.name>`). Lines are also echoed through `eprint!`, which the test harness shows
//! for failing tests and with `--nocapture`.
#![allow(dead_code)]

use std::io::Write;
use std::sync::{Mutex, OnceLock};

static LOG: Mutex<String> = Mutex::new(String::new());

struct Capture;

impl Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let text = String::from_utf8_lossy(buf);
        eprint!("{text}");
        LOG.lock().unwrap_or_else(|e| e.into_inner()).push_str(&text);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Install the capturing subscriber (once per test binary; later calls do nothing). Call it
/// before starting a run.
pub fn capture() {
    static INSTALLED: OnceLock<()> = OnceLock::new();
    INSTALLED.get_or_init(|| {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new("info,pgwire_replication=warn"))
            .with_ansi(false)
            .with_target(false)
            .with_writer(|| Capture)
            .try_init();
    });
}

/// The captured lines that mention `slot=<slot>`, in order.
pub fn lines(slot: &str) -> Vec<String> {
    let needle = format!("slot={slot}");
    let spaced = format!("{needle} ");
    LOG.lock()
        .unwrap_or_else(|e| e.into_inner())
        .lines()
        .filter(|l| l.contains(&spaced) || l.ends_with(&needle))
        .map(str::to_string)
        .collect()
}

/// The captured lines of `slot` that contain `text`.
pub fn matching(slot: &str, text: &str) -> Vec<String> {
    lines(slot).into_iter().filter(|l| l.contains(text)).collect()
}
