//! SQL text helpers: identifier quoting and qualified names.
//!
//! Every identifier that reaches SQL text goes through [`quote_ident`] (invariant 6 in
//! docs/architecture.md); values are always bound or COPY-encoded, never spliced.

use std::fmt;

/// Quote an identifier the way PostgreSQL's `quote_ident` does, but always (simpler, and
/// never wrong): `Weird "Name"` -> `"Weird ""Name"""`.
pub fn quote_ident(ident: &str) -> String {
    let mut out = String::with_capacity(ident.len() + 2);
    out.push('"');
    for c in ident.chars() {
        if c == '"' {
            out.push('"');
        }
        out.push(c);
    }
    out.push('"');
    out
}

/// Quote a string literal (for the rare DDL spots where a bind parameter is impossible,
/// e.g. `COMMENT ON`). Standard-conforming strings are assumed (the default since 9.1).
pub fn quote_literal(value: &str) -> String {
    format!("'{}'", value.replace('\'', "''"))
}

/// A schema-qualified relation name, stored unquoted (as in `pg_class.relname`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
pub struct QualifiedName {
    pub schema: String,
    pub name: String,
}

impl QualifiedName {
    pub fn new(schema: impl Into<String>, name: impl Into<String>) -> Self {
        QualifiedName {
            schema: schema.into(),
            name: name.into(),
        }
    }

    /// `"schema"."name"`, ready for SQL text.
    pub fn quoted(&self) -> String {
        format!("{}.{}", quote_ident(&self.schema), quote_ident(&self.name))
    }

    /// Parse `schema.name` the way PostgreSQL reads an identifier chain: unquoted parts are
    /// folded to lower case, `"quoted"` parts are kept verbatim (`""` is a quote), and a
    /// missing schema means `public`.
    pub fn parse(text: &str) -> Result<Self, String> {
        let parts = split_identifier_chain(text)?;
        match parts.as_slice() {
            [name] => Ok(QualifiedName::new("public", name.clone())),
            [schema, name] => Ok(QualifiedName::new(schema.clone(), name.clone())),
            _ => Err(format!(
                "{text:?} is not a table name: expected `table` or `schema.table` (quote parts that contain dots, e.g. \"my.schema\".\"t\")"
            )),
        }
    }
}

impl fmt::Display for QualifiedName {
    /// Displays the SQL form (quoted only where needed) so messages can be pasted into psql.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", display_ident(&self.schema), display_ident(&self.name))
    }
}

/// An identifier as a human would type it: bare when that reads back the same, quoted otherwise.
pub fn display_ident(ident: &str) -> String {
    let bare = !ident.is_empty()
        && ident.chars().next().is_some_and(|c| c.is_ascii_lowercase() || c == '_')
        && ident
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if bare {
        ident.to_string()
    } else {
        quote_ident(ident)
    }
}

fn split_identifier_chain(text: &str) -> Result<Vec<String>, String> {
    let mut parts = Vec::new();
    let mut chars = text.trim().chars().peekable();
    loop {
        let mut part = String::new();
        match chars.peek() {
            Some('"') => {
                chars.next();
                loop {
                    match chars.next() {
                        Some('"') if chars.peek() == Some(&'"') => {
                            chars.next();
                            part.push('"');
                        }
                        Some('"') => break,
                        Some(c) => part.push(c),
                        None => return Err(format!("{text:?}: unterminated quoted identifier")),
                    }
                }
                if part.is_empty() {
                    return Err(format!("{text:?}: empty quoted identifier"));
                }
            }
            _ => {
                while let Some(&c) = chars.peek() {
                    if c == '.' || c == '"' {
                        break;
                    }
                    part.push(c.to_ascii_lowercase());
                    chars.next();
                }
                let trimmed = part.trim();
                if trimmed.is_empty() {
                    return Err(format!("{text:?}: empty name part"));
                }
                if trimmed.chars().any(char::is_whitespace) {
                    return Err(format!(
                        "{text:?}: unquoted name part {trimmed:?} contains spaces; quote it: \"{trimmed}\""
                    ));
                }
                part = trimmed.to_string();
            }
        }
        parts.push(part);
        match chars.next() {
            None => return Ok(parts),
            Some('.') => continue,
            Some(c) => return Err(format!("{text:?}: unexpected {c:?} after a name part")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_identifiers() {
        assert_eq!(quote_ident("items"), "\"items\"");
        assert_eq!(quote_ident("Weird \"Name\""), "\"Weird \"\"Name\"\"\"");
        assert_eq!(quote_literal("it's"), "'it''s'");
    }

    #[test]
    fn parses_qualified_names() {
        let cases = [
            ("items", ("public", "items")),
            ("public.Items", ("public", "items")),
            ("\"My Schema\".\"Weird \"\"Name\"\"\"", ("My Schema", "Weird \"Name\"")),
            ("\"a.b\".c", ("a.b", "c")),
        ];
        for (text, (schema, name)) in cases {
            assert_eq!(
                QualifiedName::parse(text).unwrap(),
                QualifiedName::new(schema, name),
                "{text}"
            );
        }
        for bad in ["", "a.b.c", "\"unterminated", "a..b", "my table", "\"\".x"] {
            assert!(QualifiedName::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn displays_as_typed() {
        assert_eq!(QualifiedName::new("public", "items").to_string(), "public.items");
        assert_eq!(QualifiedName::new("My", "a b").to_string(), "\"My\".\"a b\"");
    }
}
