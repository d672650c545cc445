//! Logging on stderr (human or JSON, filtered by `PGVSHIFT_LOG`), kept clear of the snapshot's
//! progress bars.

use std::io::Write;

use super::args::LogFormat;

pub(super) fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("PGVSHIFT_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,pgwire_replication=warn"));
    // Colours only on a terminal: log files and pipes get plain text.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(|| BarAwareStderr(Vec::new()));
    match format {
        LogFormat::Human => builder.with_target(false).init(),
        LogFormat::Json => builder.json().init(),
    }
}

/// One log event for stderr, written when dropped with the snapshot's progress bars (if any)
/// cleared, so log lines appear above the bars instead of through them.
struct BarAwareStderr(Vec<u8>);

impl std::io::Write for BarAwareStderr {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for BarAwareStderr {
    fn drop(&mut self) {
        if !self.0.is_empty() {
            let event = std::mem::take(&mut self.0);
            crate::observe::progress::suspend_bars(|| {
                let _ = std::io::stderr().write_all(&event);
            });
        }
    }
}
