//! PURE: the SQL `verify` reads rows with, on either side. A table with a primary key is read
//! in key ranges: chunk i is `key > lo AND key <= hi`, where `hi` is the last key of the
//! source's chunk (`ORDER BY key LIMIT chunk_rows`), so both sides read exactly the same key
//! range through their primary key index, and memory holds one chunk of the source at a time.
//! Differing keys are read again by key (`(k) IN (...)`), and samples come from `TABLESAMPLE`.
//!
//! Every statement is built from a [`Side`]: the relation, the key and column expressions, and
//! an optional filter. A table maps onto one side each; a target that holds several source
//! tables in one relation (a per-collection table) would add its filter and expressions here.

/// One side of a comparison, as SQL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Side {
    /// The relation, quoted (`"public"."items"`).
    pub relation: String,
    /// Key expressions (quoted column names), in key order.
    pub key: Vec<String>,
    /// Whether each key expression needs `COLLATE "C"` (a collatable key column whose
    /// collation differs between the two servers: both sides must order keys the same way).
    pub collate_c: Vec<bool>,
    /// The compared value expressions, in order (e.g. `"emb"`, or `"emb"::text`).
    pub values: Vec<String>,
    /// Rows of this relation that belong to the compared table (None: all).
    pub filter: Option<String>,
}

impl Side {
    fn key_expr(&self, i: usize) -> String {
        if self.collate_c.get(i).copied().unwrap_or(false) {
            format!("{} COLLATE \"C\"", self.key[i])
        } else {
            self.key[i].clone()
        }
    }

    /// `(k1, k2)` or `k1`, with collations applied.
    fn key_tuple(&self) -> String {
        let parts: Vec<String> = (0..self.key.len()).map(|i| self.key_expr(i)).collect();
        tuple(&parts)
    }

    /// Parameters `$first..` for one key, with collations applied.
    fn key_params(&self, first: usize) -> String {
        let parts: Vec<String> = (0..self.key.len())
            .map(|i| {
                let p = format!("${}", first + i);
                if self.collate_c.get(i).copied().unwrap_or(false) {
                    format!("{p} COLLATE \"C\"")
                } else {
                    p
                }
            })
            .collect();
        tuple(&parts)
    }

    fn order_by(&self) -> String {
        (0..self.key.len())
            .map(|i| self.key_expr(i))
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// Key columns first, then the values.
    fn select_list(&self) -> String {
        self.key
            .iter()
            .chain(&self.values)
            .cloned()
            .collect::<Vec<_>>()
            .join(", ")
    }

    fn conditions(&self, mut extra: Vec<String>) -> String {
        if let Some(f) = &self.filter {
            extra.insert(0, format!("({f})"));
        }
        if extra.is_empty() {
            String::new()
        } else {
            format!(" WHERE {}", extra.join(" AND "))
        }
    }

    /// The first `limit` rows after key `lo` ($1.. when `has_lo`), in key order: the source's
    /// chunk, whose last key becomes the chunk's upper bound.
    pub fn chunk_after(&self, has_lo: bool, limit: usize) -> String {
        let cond = if has_lo {
            vec![format!("{} > {}", self.key_tuple(), self.key_params(1))]
        } else {
            vec![]
        };
        format!(
            "SELECT {} FROM {}{} ORDER BY {} LIMIT {limit}",
            self.select_list(),
            self.relation,
            self.conditions(cond),
            self.order_by()
        )
    }

    /// Every row with `lo < key <= hi` (bounds optional; `lo` binds first), unordered: the
    /// target's side of a chunk.
    pub fn range(&self, has_lo: bool, has_hi: bool) -> String {
        let n = self.key.len();
        let mut cond = Vec::new();
        if has_lo {
            cond.push(format!("{} > {}", self.key_tuple(), self.key_params(1)));
        }
        if has_hi {
            let first = if has_lo { n + 1 } else { 1 };
            cond.push(format!("{} <= {}", self.key_tuple(), self.key_params(first)));
        }
        format!(
            "SELECT {} FROM {}{}",
            self.select_list(),
            self.relation,
            self.conditions(cond)
        )
    }

    /// The rows with the given `keys` keys ($1.. in key order, one key after the other).
    pub fn by_keys(&self, keys: usize) -> String {
        let n = self.key.len();
        let list: Vec<String> = (0..keys).map(|k| self.key_params(1 + k * n)).collect();
        format!(
            "SELECT {} FROM {}{}",
            self.select_list(),
            self.relation,
            self.conditions(vec![format!("{} IN ({})", self.key_tuple(), list.join(", "))])
        )
    }

    /// Keys of a random sample of about `percent` % of the rows (whole pages: `SYSTEM`).
    pub fn sample_keys(&self, percent: f64) -> String {
        format!(
            "SELECT {} FROM {} TABLESAMPLE SYSTEM ({percent}){}",
            self.key.join(", "),
            self.relation,
            self.conditions(vec![])
        )
    }

    /// Every row's values (no key: tables compared as multisets).
    pub fn all_values(&self) -> String {
        format!(
            "SELECT {} FROM {}{}",
            self.values.join(", "),
            self.relation,
            self.conditions(vec![])
        )
    }

    /// Row count.
    pub fn count(&self) -> String {
        format!("SELECT count(*) FROM {}{}", self.relation, self.conditions(vec![]))
    }
}

fn tuple(parts: &[String]) -> String {
    if parts.len() == 1 {
        parts[0].clone()
    } else {
        format!("({})", parts.join(", "))
    }
}

/// How many keys one `IN (...)` statement carries (bounded by PostgreSQL's 65535 parameters
/// for any key width, and small enough to stay quick).
pub fn keys_per_statement(key_columns: usize) -> usize {
    (4096 / key_columns.max(1)).clamp(1, 500)
}

/// The sample percentage actually used: at least enough for about `min_rows` rows (small
/// tables are then compared in full: `None`), at most 100.
pub fn effective_sample(percent: f64, estimated_rows: i64, min_rows: i64) -> Option<f64> {
    if estimated_rows <= min_rows {
        return None;
    }
    let needed = 100.0 * min_rows as f64 / estimated_rows as f64;
    let p = percent.max(needed);
    (p < 100.0).then_some(p)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn side(keys: &[&str]) -> Side {
        Side {
            relation: "\"public\".\"items\"".into(),
            key: keys.iter().map(|k| format!("\"{k}\"")).collect(),
            collate_c: vec![false; keys.len()],
            values: vec!["\"emb\"".into(), "\"note\"".into()],
            filter: None,
        }
    }

    #[test]
    fn chunks_are_key_ranges() {
        let s = side(&["id"]);
        assert_eq!(
            s.chunk_after(false, 1000),
            "SELECT \"id\", \"emb\", \"note\" FROM \"public\".\"items\" ORDER BY \"id\" LIMIT 1000"
        );
        assert_eq!(
            s.chunk_after(true, 10),
            "SELECT \"id\", \"emb\", \"note\" FROM \"public\".\"items\" WHERE \"id\" > $1 ORDER BY \"id\" LIMIT 10"
        );
        assert_eq!(
            s.range(true, true),
            "SELECT \"id\", \"emb\", \"note\" FROM \"public\".\"items\" WHERE \"id\" > $1 AND \"id\" <= $2"
        );
        assert_eq!(
            s.range(false, true),
            "SELECT \"id\", \"emb\", \"note\" FROM \"public\".\"items\" WHERE \"id\" <= $1"
        );
        assert_eq!(
            s.range(false, false),
            "SELECT \"id\", \"emb\", \"note\" FROM \"public\".\"items\""
        );
    }

    #[test]
    fn composite_keys_use_row_comparisons() {
        let s = side(&["a", "b"]);
        assert_eq!(
            s.range(true, true),
            "SELECT \"a\", \"b\", \"emb\", \"note\" FROM \"public\".\"items\" WHERE (\"a\", \"b\") > ($1, $2) AND (\"a\", \"b\") <= ($3, $4)"
        );
        assert_eq!(
            s.by_keys(2),
            "SELECT \"a\", \"b\", \"emb\", \"note\" FROM \"public\".\"items\" WHERE (\"a\", \"b\") IN (($1, $2), ($3, $4))"
        );
        assert_eq!(
            side(&["id"]).by_keys(3),
            "SELECT \"id\", \"emb\", \"note\" FROM \"public\".\"items\" WHERE \"id\" IN ($1, $2, $3)"
        );
    }

    #[test]
    fn collations_and_filters() {
        let mut s = side(&["name", "n"]);
        s.collate_c = vec![true, false];
        s.filter = Some("collection_id = 'x'".into());
        assert_eq!(
            s.chunk_after(true, 5),
            "SELECT \"name\", \"n\", \"emb\", \"note\" FROM \"public\".\"items\" WHERE (collection_id = 'x') AND (\"name\" COLLATE \"C\", \"n\") > ($1 COLLATE \"C\", $2) ORDER BY \"name\" COLLATE \"C\", \"n\" LIMIT 5"
        );
        assert_eq!(
            s.count(),
            "SELECT count(*) FROM \"public\".\"items\" WHERE (collection_id = 'x')"
        );
        assert_eq!(
            s.sample_keys(2.5),
            "SELECT \"name\", \"n\" FROM \"public\".\"items\" TABLESAMPLE SYSTEM (2.5) WHERE (collection_id = 'x')"
        );
        assert_eq!(
            s.all_values(),
            "SELECT \"emb\", \"note\" FROM \"public\".\"items\" WHERE (collection_id = 'x')"
        );
    }

    #[test]
    fn statement_sizes_and_samples() {
        assert_eq!(keys_per_statement(1), 500);
        assert_eq!(keys_per_statement(16), 256);
        assert!(keys_per_statement(10_000) >= 1);
        assert_eq!(effective_sample(1.0, 500, 1000), None);
        assert_eq!(effective_sample(1.0, 1_000_000, 1000), Some(1.0));
        assert_eq!(effective_sample(1.0, 50_000, 1000), Some(2.0));
        assert_eq!(effective_sample(0.5, 1001, 1000), Some(100.0 * 1000.0 / 1001.0));
        assert_eq!(effective_sample(50.0, 1500, 1000), Some(66.66666666666667));
        assert_eq!(effective_sample(1.0, -1, 1000), None);
    }
}
