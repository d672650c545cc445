//! The password of a connection, looked up the way libpq does: the URL, then `PGPASSWORD`,
//! then the password file (`PGPASSFILE` or `~/.pgpass`, ignored unless its permissions are
//! 0600 or stricter).

use std::path::{Path, PathBuf};

use super::endpoint::{env_nonempty, Env};

/// libpq's order: the URL, then `PGPASSWORD`, then the password file. Empty values count as
/// absent, as in libpq.
pub(super) fn resolve_password(
    role: &str,
    url_password: Option<String>,
    host: &str,
    port: u16,
    dbname: &str,
    user: &str,
    env: Env<'_>,
) -> Option<String> {
    if url_password.is_some() {
        tracing::debug!("{role}: password taken from the URL");
        return url_password;
    }
    if let Some(p) = env_nonempty(env, "PGPASSWORD") {
        tracing::debug!("{role}: password taken from PGPASSWORD");
        return Some(p);
    }
    let passfile = match env_nonempty(env, "PGPASSFILE") {
        Some(p) => PathBuf::from(p),
        None => PathBuf::from(env_nonempty(env, "HOME")?).join(".pgpass"),
    };
    let contents = read_passfile(&passfile)?;
    let found = passfile_lookup(&contents, passfile_host(host), &port.to_string(), dbname, user);
    if found.is_some() {
        tracing::debug!("{role}: password taken from {}", passfile.display());
    }
    found
}

/// The host name libpq matches password file entries against: `localhost` for the default
/// unix socket directory (libpq's compile-time DEFAULT_PGSOCKET_DIR: `/tmp` upstream,
/// `/var/run/postgresql` on Debian-family builds), otherwise the host as given.
pub(super) fn passfile_host(host: &str) -> &str {
    match host.trim_end_matches('/') {
        "/tmp" | "/var/run/postgresql" | "/run/postgresql" => "localhost",
        _ => host,
    }
}

/// Reads the password file if libpq would: it must be a regular file without group or world
/// permissions (otherwise libpq warns and ignores it; so do we). A missing file is silently
/// ignored.
fn read_passfile(path: &Path) -> Option<String> {
    let meta = match std::fs::metadata(path) {
        Ok(meta) => meta,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return None,
        Err(e) => {
            tracing::warn!("cannot read password file {}: {e}; ignoring it", path.display());
            return None;
        }
    };
    if !meta.is_file() {
        tracing::warn!("password file {} is not a plain file; ignoring it", path.display());
        return None;
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        if meta.permissions().mode() & 0o077 != 0 {
            tracing::warn!(
                "password file {} has group or world access; permissions should be u=rw (0600) or less; ignoring it",
                path.display()
            );
            return None;
        }
    }
    match std::fs::read_to_string(path) {
        Ok(contents) => Some(contents),
        Err(e) => {
            tracing::warn!("cannot read password file {}: {e}; ignoring it", path.display());
            None
        }
    }
}

/// Finds the password for a connection in libpq password file text
/// (`hostname:port:database:username:password` lines, `*` matching anything, `\:` and `\\`
/// escapes, `#` comments); the first matching line wins.
///
/// Hand-written because no maintained crate parses this format; it follows libpq's
/// `passwordFromFile` / `pwdfMatchesString`.
pub(super) fn passfile_lookup(contents: &str, host: &str, port: &str, dbname: &str, user: &str) -> Option<String> {
    for line in contents.lines() {
        let line = line.trim_end_matches('\r');
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let fields = split_passfile_line(line);
        if fields.len() < 5 {
            continue;
        }
        let wanted = [host, port, dbname, user];
        let matches = fields[..4]
            .iter()
            .zip(wanted)
            .all(|((value, wildcard), want)| *wildcard || value == want);
        if matches {
            let password = &fields[4].0;
            return (!password.is_empty()).then(|| password.clone());
        }
    }
    None
}

/// Splits a password file line on unescaped `:` into unescaped fields, each with a flag telling
/// whether it was the `*` wildcard (an escaped `\*` is a literal star). At most five fields are
/// returned: like libpq, anything after the password's terminating `:` is ignored.
fn split_passfile_line(line: &str) -> Vec<(String, bool)> {
    let mut fields = Vec::with_capacity(5);
    let mut field = String::new();
    let mut raw_star = true; // field so far is exactly an unescaped "*"
    let mut chars = line.chars();
    let mut len = 0;
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                if let Some(next) = chars.next() {
                    field.push(next);
                } else {
                    field.push('\\');
                }
                raw_star = false;
                len += 1;
            }
            ':' => {
                fields.push((std::mem::take(&mut field), raw_star && len == 1));
                if fields.len() == 5 {
                    return fields;
                }
                raw_star = true;
                len = 0;
            }
            c => {
                field.push(c);
                raw_star = raw_star && c == '*';
                len += 1;
            }
        }
    }
    fields.push((field, raw_star && len == 1));
    fields
}
