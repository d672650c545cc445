//! PURE: the target table name of each collection.
//!
//! The rule (docs/langchain.md):
//! 1. `table_names = { "<collection>" = "<table>" }` wins, verbatim.
//! 2. Else the name is derived: transliterated to ASCII (`État` -> `Etat`, `日本` -> `Ri Ben`),
//!    lower-cased, every run of characters other than a-z and 0-9 becomes one `_`, leading and
//!    trailing `_` are dropped; empty -> `collection`. `table_prefix` goes in front; a name that
//!    would start with a digit gets `c_` in front. At most 63 bytes.
//! 3. Collisions: a derived name that is taken (by a `table_names` entry, another collection, or,
//!    for a collection created while streaming, any existing table in the target schema) gets
//!    `_` and the first 8 hex digits of the collection's uuid appended (more digits if that is
//!    taken too). At the snapshot, collections take their names in order of (name, uuid), so
//!    the same collections always get the same names. A name, once given, is recorded on the
//!    target and never changes (renaming a collection keeps its table).

use std::collections::{BTreeMap, HashSet};

use uuid::Uuid;

use crate::config::MAX_NAME_BYTES;

/// The derived name of a collection (rule 2), before collision handling.
pub fn derived_name(prefix: &str, collection: Option<&str>) -> String {
    let ascii = deunicode::deunicode(collection.unwrap_or(""));
    let mut out = String::with_capacity(ascii.len());
    let mut gap = false;
    for c in ascii.chars() {
        if c.is_ascii_alphanumeric() {
            if gap && !out.is_empty() {
                out.push('_');
            }
            gap = false;
            out.push(c.to_ascii_lowercase());
        } else {
            gap = true;
        }
    }
    if out.is_empty() {
        out.push_str("collection");
    }
    let mut name = format!("{prefix}{out}");
    if name.starts_with(|c: char| c.is_ascii_digit()) {
        name.insert_str(0, "c_");
    }
    truncate(&name, MAX_NAME_BYTES).to_string()
}

/// ASCII names only: cut at a byte count.
fn truncate(name: &str, max: usize) -> &str {
    let mut end = name.len().min(max);
    while !name.is_char_boundary(end) {
        end -= 1;
    }
    name[..end].trim_end_matches('_')
}

/// Hands out table names, remembering the ones taken.
#[derive(Debug, Clone, Default)]
pub struct Namer {
    prefix: String,
    overrides: BTreeMap<String, String>,
    taken: HashSet<String>,
}

impl Namer {
    /// `overrides` (collection name -> table) are reserved from the start; `taken` are names
    /// in use already (tables of known collections, other tables to keep clear of).
    pub fn new(prefix: &str, overrides: &BTreeMap<String, String>, taken: impl IntoIterator<Item = String>) -> Namer {
        let mut all: HashSet<String> = taken.into_iter().collect();
        all.extend(overrides.values().cloned());
        Namer {
            prefix: prefix.to_string(),
            overrides: overrides.clone(),
            taken: all,
        }
    }

    /// Mark a name as used.
    pub fn take(&mut self, name: &str) {
        self.taken.insert(name.to_string());
    }

    /// The table for a collection (rules 1 to 3), marked as taken.
    pub fn assign(&mut self, collection: Option<&str>, uuid: Uuid) -> String {
        if let Some(t) = collection.and_then(|c| self.overrides.get(c)) {
            let t = t.clone();
            self.taken.insert(t.clone());
            return t;
        }
        let base = derived_name(&self.prefix, collection);
        let hex = uuid.simple().to_string();
        let mut candidate = base.clone();
        let mut digits = 8;
        while self.taken.contains(&candidate) {
            let suffix = &hex[..digits.min(hex.len())];
            let head = truncate(&base, MAX_NAME_BYTES - suffix.len() - 1);
            candidate = format!("{head}_{suffix}");
            if digits >= hex.len() {
                // 32 hex digits of a uuid are unique among collections; another table with
                // that very name is the only way here: count up.
                let mut n = 2;
                while self.taken.contains(&format!("{candidate}_{n}")) {
                    n += 1;
                }
                candidate = format!("{candidate}_{n}");
                break;
            }
            digits += 8;
        }
        self.taken.insert(candidate.clone());
        candidate
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn u(n: u128) -> Uuid {
        Uuid::from_u128(n)
    }

    #[test]
    fn derives_sql_friendly_names() {
        let cases = [
            ("docs", "docs"),
            ("My Docs 2024", "my_docs_2024"),
            ("  --Weird__Name!!  ", "weird_name"),
            ("État été", "etat_ete"),
            ("日本語", "ri_ben_yu"),
            ("2024 reports", "c_2024_reports"),
            ("", "collection"),
            ("🙂", "slight_smile"),
            ("a.b-c/d", "a_b_c_d"),
        ];
        for (name, want) in cases {
            assert_eq!(derived_name("", Some(name)), want, "{name:?}");
        }
        assert_eq!(derived_name("", None), "collection");
        assert_eq!(derived_name("lc_", Some("Docs")), "lc_docs");
        assert_eq!(derived_name("9_", Some("x")), "c_9_x");
        let long = "x".repeat(100);
        assert_eq!(derived_name("", Some(&long)).len(), 63);
    }

    #[test]
    fn collisions_get_the_uuid_and_overrides_win() {
        let overrides = BTreeMap::from([("Special".to_string(), "docs".to_string())]);
        let mut namer = Namer::new("", &overrides, ["existing".to_string()]);
        // "docs" is reserved by the override, so the collection named "docs" steps aside.
        let a = namer.assign(Some("docs"), u(0xabcdef01_0000_0000_0000_000000000001));
        assert_eq!(a, "docs_abcdef01");
        assert_eq!(namer.assign(Some("Special"), u(2)), "docs");
        // Two names that sanitize alike.
        assert_eq!(namer.assign(Some("My Docs"), u(3)), "my_docs");
        assert_eq!(
            namer.assign(Some("my-docs"), u(0x12345678_9abc_0000_0000_000000000004)),
            "my_docs_12345678"
        );
        // An existing table's name is not reused.
        assert_eq!(
            namer.assign(Some("Existing"), u(0x0000000f_0000_0000_0000_000000000005)),
            "existing_0000000f"
        );
        // Same 8 digits: more digits.
        let mut namer = Namer::new("", &BTreeMap::new(), []);
        let x = u(0x11111111_2222_0000_0000_000000000001);
        let y = u(0x11111111_3333_0000_0000_000000000002);
        assert_eq!(namer.assign(Some("t"), u(9)), "t");
        assert_eq!(namer.assign(Some("t"), x), "t_11111111");
        assert_eq!(namer.assign(Some("t"), y), "t_1111111133330000");
        // Long names keep 63 bytes with their suffix.
        let long = "y".repeat(80);
        assert_eq!(namer.assign(Some(&long), u(7)).len(), 63);
        let second = namer.assign(Some(&long), u(0xdeadbeef_0000_0000_0000_000000000008));
        assert!(second.ends_with("_deadbeef") && second.len() == 63, "{second}");
    }
}
