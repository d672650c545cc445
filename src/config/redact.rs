//! Secrets never leave the configuration in readable form: every URL in a message or a log
//! line goes through [`redact_url`], and values echoed in validation errors through
//! [`redact_secrets`].

use super::endpoint::decode;

/// Replaces any password in a PostgreSQL URL (`scheme://user:password@...`, `?password=...`)
/// or key=value connection string (`password=...`) with `***`. Never fails: input that is
/// neither is returned as `<unparseable url>`, since it might be a password itself.
pub fn redact_url(url: &str) -> String {
    let text = url.trim();
    if let Some(scheme_end) = text.find("://") {
        let scheme = &text[..scheme_end];
        if !scheme.is_empty() && scheme.chars().all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c)) {
            return redact_uri(text, scheme_end + 3);
        }
        return "<unparseable url>".into();
    }
    match conninfo_spans(text) {
        Some(pairs) if !pairs.is_empty() => {
            let mut out = String::with_capacity(text.len());
            let mut last = 0;
            for (key, value) in pairs {
                if key == "password" {
                    out.push_str(&text[last..value.start]);
                    out.push_str("***");
                    last = value.end;
                }
            }
            out.push_str(&text[last..]);
            out
        }
        _ => "<unparseable url>".into(),
    }
}

/// Redacts the userinfo password and any `password=` query parameter of `text`, whose
/// authority starts at byte `start`.
fn redact_uri(text: &str, start: usize) -> String {
    let rest = &text[start..];
    let userinfo_end = if url::Url::parse(text).is_ok() {
        // Well-formed: the userinfo is whatever precedes the last `@` of the authority.
        let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
        rest[..authority_end].rfind('@')
    } else {
        // Malformed (e.g. an unencoded `/` or `?` in the password): err on the side of hiding
        // too much. Take the last `@`, unless it sits in a query string that follows an
        // earlier `@`.
        rest.rfind('@').map(|last| {
            let before = &rest[..last];
            before.find('?').and_then(|q| before[..q].rfind('@')).unwrap_or(last)
        })
    };
    let mut out = String::with_capacity(text.len());
    out.push_str(&text[..start]);
    let after = match userinfo_end {
        Some(at) => {
            let userinfo = &rest[..at];
            match userinfo.find(':') {
                Some(colon) => {
                    out.push_str(&userinfo[..colon]);
                    out.push_str(":***");
                }
                None => out.push_str(userinfo),
            }
            &rest[at..]
        }
        None => rest,
    };
    match after.find('?') {
        Some(q) => {
            out.push_str(&after[..=q]);
            let query = &after[q + 1..];
            let redacted: Vec<String> = query
                .split('&')
                .map(|piece| match piece.split_once('=') {
                    Some((key, _)) if decode(key, "").is_ok_and(|k| k.eq_ignore_ascii_case("password")) => {
                        format!("{key}=***")
                    }
                    _ => piece.to_string(),
                })
                .collect();
            out.push_str(&redacted.join("&"));
        }
        None => out.push_str(after),
    }
    out
}

/// Tokenizes a libpq key=value connection string, returning each key with the byte range of
/// its value (quotes included); `None` if it is malformed.
fn conninfo_spans(text: &str) -> Option<Vec<(String, std::ops::Range<usize>)>> {
    let bytes = text.as_bytes();
    let mut i = 0;
    let mut out = Vec::new();
    let skip_ws = |mut i: usize| {
        while i < bytes.len() && bytes[i].is_ascii_whitespace() {
            i += 1;
        }
        i
    };
    loop {
        i = skip_ws(i);
        if i >= bytes.len() {
            return Some(out);
        }
        let key_start = i;
        while i < bytes.len() && !bytes[i].is_ascii_whitespace() && bytes[i] != b'=' {
            i += 1;
        }
        let key = &text[key_start..i];
        if key.is_empty() || !key.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
            return None;
        }
        i = skip_ws(i);
        if bytes.get(i) != Some(&b'=') {
            return None;
        }
        i = skip_ws(i + 1);
        let value_start = i;
        if bytes.get(i) == Some(&b'\'') {
            i += 1;
            loop {
                match bytes.get(i) {
                    None => return None,
                    Some(b'\\') => i += 2,
                    Some(b'\'') => {
                        i += 1;
                        break;
                    }
                    Some(_) => i += 1,
                }
            }
        } else {
            while i < bytes.len() && !bytes[i].is_ascii_whitespace() {
                i += if bytes[i] == b'\\' { 2 } else { 1 };
            }
        }
        let i_clamped = i.min(bytes.len());
        i = i_clamped;
        if !text.is_char_boundary(i) {
            return None;
        }
        out.push((key.to_string(), value_start..i));
    }
}

/// Redacts URLs (and `password=value` words) appearing anywhere in free text, such as a
/// parser message that quotes a value.
pub(super) fn redact_secrets(text: &str) -> String {
    let is_delim = |c: char| c.is_whitespace() || "\"'`".contains(c);
    let mut out = String::with_capacity(text.len());
    let mut token = String::new();
    let flush = |token: &mut String, out: &mut String| {
        if token.contains("://") {
            out.push_str(&redact_url(token));
        } else if let Some(i) = token.to_ascii_lowercase().find("password=") {
            out.push_str(&token[..i + "password=".len()]);
            out.push_str("***");
        } else {
            out.push_str(token);
        }
        token.clear();
    };
    for c in text.chars() {
        if is_delim(c) {
            flush(&mut token, &mut out);
            out.push(c);
        } else {
            token.push(c);
        }
    }
    flush(&mut token, &mut out);
    out
}
