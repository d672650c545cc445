//! One result of one check ([`Finding`], its [`Level`]) and the report `pgvshift check` prints.

use serde::Serialize;

/// How serious a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    Ok,
    Warning,
    Blocking,
}

/// One result of one check.
#[derive(Debug, Clone, Serialize)]
pub struct Finding {
    pub level: Level,
    /// Which check (stable identifiers, e.g. `wal_level`, `replica_identity`).
    pub check: &'static str,
    /// What it is about: `source`, `target`, a table, a slot, ...
    pub object: String,
    pub message: String,
    /// The SQL or setting that fixes it (warnings and blocking findings).
    pub fix: Option<String>,
}

impl Finding {
    pub(crate) fn new(
        level: Level,
        check: &'static str,
        object: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        Finding {
            level,
            check,
            object: object.into(),
            message: message.into(),
            fix: None,
        }
    }

    pub(crate) fn fix(mut self, fix: impl Into<String>) -> Self {
        self.fix = Some(fix.into());
        self
    }

    /// One line for `Error::Blocked`: "object: message. Fix: ...".
    pub fn one_line(&self) -> String {
        match &self.fix {
            Some(f) => format!("{}: {}. Fix: {f}", self.object, self.message),
            None => format!("{}: {}", self.object, self.message),
        }
    }
}

/// Human-readable report for `pgvshift check`.
pub fn render(findings: &[Finding]) -> String {
    let mut out = String::new();
    let mut sorted: Vec<&Finding> = findings.iter().collect();
    sorted.sort_by_key(|f| std::cmp::Reverse(f.level));
    for f in &sorted {
        let tag = match f.level {
            Level::Ok => "ok      ",
            Level::Warning => "WARNING ",
            Level::Blocking => "BLOCKING",
        };
        out.push_str(&format!("{tag} [{}] {}: {}\n", f.check, f.object, f.message));
        if let Some(fix) = &f.fix {
            out.push_str(&format!("         fix: {fix}\n"));
        }
    }
    let count = |l: Level| findings.iter().filter(|f| f.level == l).count();
    out.push_str(&format!(
        "\n{} ok, {} warning(s), {} blocking{}\n",
        count(Level::Ok),
        count(Level::Warning),
        count(Level::Blocking),
        if count(Level::Blocking) > 0 {
            ": `pgvshift run` would refuse to start; nothing was changed"
        } else {
            ": ready to run"
        }
    ));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_and_render() {
        let f = Finding::new(Level::Blocking, "wal_level", "source", "wal_level = replica")
            .fix("ALTER SYSTEM SET wal_level = logical");
        assert_eq!(
            f.one_line(),
            "source: wal_level = replica. Fix: ALTER SYSTEM SET wal_level = logical"
        );
        let text = render(&[Finding::new(Level::Ok, "connect", "source", "connected"), f]);
        assert!(
            text.starts_with("BLOCKING [wal_level] source: wal_level = replica\n         fix: ALTER SYSTEM"),
            "{text}"
        );
        assert!(
            text.contains("1 ok, 0 warning(s), 1 blocking: `pgvshift run` would refuse to start"),
            "{text}"
        );
    }
}
