//! `verify --ann K,Q`: does the target *answer* like the source? For each vector index of a
//! table (its column and distance), Q vectors sampled from the source are searched top-K on
//! both sides: exactly on the source (index scans off: a sequential scan and a sort), and on
//! the target the way an application would (its own index, its own operator and type: Lantern's
//! `<->` on `real[]` is squared L2, which orders like L2). Recall@K of the target against the
//! exact source answer is reported, tie-aware: a target result that is not in the exact list
//! but lies exactly as far as the K-th exact result counts as a hit.

use std::collections::HashSet;

use bytes::Bytes;
use serde::Serialize;
use tokio_postgres::Client;

use crate::config::profile::Profile;
use crate::error::{DbContext, Result};
use crate::schema::mapping::{ColumnMap, VectorKind};
use crate::source::RawValue;
use crate::sql::{quote_ident, QualifiedName};
use crate::translate;

/// A distance, as pgvector's operator classes name them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Metric {
    L2,
    Ip,
    Cosine,
    L1,
    Hamming,
    Jaccard,
}

/// `vector_cosine_ops` -> Cosine (pgvector's operator classes of every vector type).
pub fn classify_opclass(name: &str) -> Option<Metric> {
    let body = name.strip_suffix("_ops")?;
    let (prefix, metric) = body.rsplit_once('_')?;
    if !matches!(prefix, "vector" | "halfvec" | "sparsevec" | "bit") {
        return None;
    }
    Some(match metric {
        "l2" => Metric::L2,
        "ip" => Metric::Ip,
        "cosine" => Metric::Cosine,
        "l1" => Metric::L1,
        "hamming" => Metric::Hamming,
        "jaccard" => Metric::Jaccard,
        _ => return None,
    })
}

/// pgvector's operator for a distance (the source side, and pgvector-typed targets).
pub fn pgvector_operator(metric: Metric) -> &'static str {
    match metric {
        Metric::L2 => "<->",
        Metric::Ip => "<#>",
        Metric::Cosine => "<=>",
        Metric::L1 => "<+>",
        Metric::Hamming => "<~>",
        Metric::Jaccard => "<%>",
    }
}

/// The operator an application uses on the target for this distance, or why there is none.
pub fn target_operator(
    profile: Profile,
    kind: VectorKind,
    metric: Metric,
) -> std::result::Result<&'static str, String> {
    match profile {
        Profile::Pgvector | Profile::Halfvec | Profile::Vectorchord | Profile::Alloydb => Ok(pgvector_operator(metric)),
        // Lantern: `<->` on real[] is l2sq_dist (squared L2: the same order), `<=>` cos_dist,
        // `<+>` hamming_dist on integer[].
        Profile::Lantern => match (kind, metric) {
            (VectorKind::Bit, Metric::Hamming) => Ok("<+>"),
            (VectorKind::Bit, _) => Err(format!("Lantern has no {metric:?} operator for integer[]")),
            (_, Metric::L2) => Ok("<->"),
            (_, Metric::Cosine) => Ok("<=>"),
            (_, m) => Err(format!("Lantern has no {m:?} operator for real[]")),
        },
        // PGVecto.rs: `<->` squared L2 (Hamming on bvector), `<#>` negative dot, `<=>` cosine,
        // `<~>` Jaccard on bvector.
        Profile::PgvectoRs => match (kind, metric) {
            (VectorKind::Bit, Metric::Hamming) => Ok("<->"),
            (VectorKind::Bit, Metric::Jaccard) => Ok("<~>"),
            (_, Metric::L2) => Ok("<->"),
            (_, Metric::Ip) => Ok("<#>"),
            (_, Metric::Cosine) => Ok("<=>"),
            (_, m) => Err(format!("PGVecto.rs has no {m:?} operator")),
        },
    }
}

/// Tie-aware recall@K of `found` (the target's answer, each with its distance on the source if
/// known) against `exact` (the source's exact answer, nearest first). The denominator is the
/// number of exact results (fewer than K when the table is smaller); 1.0 when there are none.
pub fn recall_at_k<K: Eq + std::hash::Hash>(exact: &[(K, f64)], found: &[(K, Option<f64>)], k: usize) -> f64 {
    let exact = &exact[..exact.len().min(k)];
    if exact.is_empty() {
        return 1.0;
    }
    let kth = exact[exact.len() - 1].1;
    let keys: HashSet<&K> = exact.iter().map(|(key, _)| key).collect();
    let mut seen = HashSet::new();
    let hits = found
        .iter()
        .take(k)
        .filter(|(key, d)| seen.insert(key) && (keys.contains(key) || d.is_some_and(|d| d <= kth)))
        .count();
    hits.min(exact.len()) as f64 / exact.len() as f64
}

/// What was measured for one indexed column.
#[derive(Debug, Clone, Serialize)]
pub struct AnnReport {
    pub column: String,
    /// The source index the distance comes from (None: the column has no vector index; L2).
    pub source_index: Option<String>,
    pub metric: Metric,
    pub source_operator: String,
    pub target_operator: Option<String>,
    pub k: usize,
    pub queries: usize,
    pub recall_mean: Option<f64>,
    pub recall_min: Option<f64>,
    /// The index the target's plan uses for the query (None: a sequential scan, exact).
    pub target_index: Option<String>,
    pub note: Option<String>,
}

/// One column to search: its source and target names, types and distance.
pub struct AnnColumn<'a> {
    pub column: &'a ColumnMap,
    pub source_index: Option<String>,
    pub metric: Metric,
}

/// Where the rows are and how keys are read (from the table's comparison set-up).
pub struct AnnTable<'a> {
    pub source: &'a QualifiedName,
    pub target: &'a QualifiedName,
    pub source_key: &'a [String],
    pub target_key: &'a [String],
    pub target_filter: Option<&'a str>,
    pub estimated_rows: i64,
}

type Key = Vec<Option<Bytes>>;

fn key_of(row: &tokio_postgres::Row, n: usize) -> Key {
    (0..n)
        .map(|i| {
            row.get::<_, Option<super::compare::RawBytes>>(i)
                .map(|b| Bytes::copy_from_slice(b.0))
        })
        .collect()
}

fn key_list(cols: &[String]) -> String {
    cols.iter().map(|c| quote_ident(c)).collect::<Vec<_>>().join(", ")
}

/// Run Q top-K queries for one column and measure recall.
pub async fn measure(
    source: &Client,
    target: &Client,
    table: &AnnTable<'_>,
    col: &AnnColumn<'_>,
    k: usize,
    queries: usize,
) -> Result<AnnReport> {
    let c = col.column;
    let source_op = pgvector_operator(col.metric);
    let mut report = AnnReport {
        column: c.source.clone(),
        source_index: col.source_index.clone(),
        metric: col.metric,
        source_operator: source_op.to_string(),
        target_operator: None,
        k,
        queries: 0,
        recall_mean: None,
        recall_min: None,
        target_index: None,
        note: None,
    };
    let target_op = match target_operator(c.profile, c.kind, col.metric) {
        Ok(op) => op,
        Err(why) => {
            report.note = Some(format!("{why}: not measured"));
            return Ok(report);
        }
    };
    report.target_operator = Some(target_op.to_string());
    let nkey = table.source_key.len();
    let scol = quote_ident(&c.source);
    let tcol = quote_ident(&c.target);
    // Query vectors: random rows of the source (a Bernoulli sample first on big tables).
    let wanted = (queries * 10).max(1000) as f64;
    let sample = if table.estimated_rows as f64 > wanted {
        format!(
            " TABLESAMPLE BERNOULLI ({})",
            (100.0 * wanted / table.estimated_rows as f64).min(100.0)
        )
    } else {
        String::new()
    };
    let rows = source
        .query(
            &format!(
                "SELECT {scol} FROM {}{sample} WHERE {scol} IS NOT NULL ORDER BY random() LIMIT {queries}",
                table.source.quoted()
            ),
            &[],
        )
        .await
        .db(|| format!("sampling query vectors from {}", table.source))?;
    let vectors: Vec<Bytes> = rows
        .iter()
        .filter_map(|r| {
            r.get::<_, Option<super::compare::RawBytes>>(0)
                .map(|b| Bytes::copy_from_slice(b.0))
        })
        .collect();
    let exact_sql = format!(
        "SELECT {keys}, {scol} {source_op} $1::{ty} FROM {} WHERE {scol} IS NOT NULL ORDER BY {scol} {source_op} $1::{ty} LIMIT {k}",
        table.source.quoted(),
        keys = key_list(table.source_key),
        ty = c.source_type,
    );
    let filter = table.target_filter.map(|f| format!(" WHERE ({f})")).unwrap_or_default();
    let ann_sql = format!(
        "SELECT {} FROM {}{filter} ORDER BY {tcol} {target_op} $1::{} LIMIT {k}",
        key_list(table.target_key),
        table.target.quoted(),
        c.target_type
    );
    let mut recalls = Vec::new();
    for q in &vectors {
        let target_q = match translate::convert(c.conversion, q) {
            Ok(b) if c.conversion.text_output() => RawValue::Text(b),
            Ok(b) => RawValue::Binary(b),
            Err(_) => continue,
        };
        let source_q = RawValue::Binary(q.clone());
        // Exact on the source: no index, a sequential scan and a sort.
        let exact: Vec<(Key, f64)> = {
            source
                .batch_execute("BEGIN; SET LOCAL enable_indexscan = off; SET LOCAL enable_bitmapscan = off")
                .await
                .db(|| "starting the exact search on the source".into())?;
            let rows = source.query(&exact_sql, &[&source_q]).await;
            source
                .batch_execute("COMMIT")
                .await
                .db(|| "ending the exact search on the source".into())?;
            rows.db(|| format!("exact top-{k} search on {}", table.source))?
                .iter()
                .map(|r| (key_of(r, nkey), r.get::<_, Option<f64>>(nkey).unwrap_or(f64::NAN)))
                .collect()
        };
        if report.target_index.is_none() && recalls.is_empty() {
            let plan = target
                .query(&format!("EXPLAIN {ann_sql}"), &[&target_q])
                .await
                .db(|| format!("explaining the top-{k} search on {}", table.target))?;
            report.target_index = plan.iter().find_map(|r| {
                let line: String = r.get(0);
                let (_, rest) = line.split_once(" using ")?;
                Some(rest.split_whitespace().next()?.trim_matches('"').to_string())
            });
        }
        let found: Vec<Key> = target
            .query(&ann_sql, &[&target_q])
            .await
            .db(|| format!("top-{k} search on {}", table.target))?
            .iter()
            .map(|r| key_of(r, nkey))
            .collect();
        // Source distances of the target's results that are not in the exact answer (ties).
        let exact_keys: HashSet<&Key> = exact.iter().map(|(key, _)| key).collect();
        let others: Vec<&Key> = found.iter().filter(|key| !exact_keys.contains(key)).collect();
        let mut distances = std::collections::HashMap::new();
        if !others.is_empty() {
            let side = super::keys::Side {
                relation: table.source.quoted(),
                key: table.source_key.iter().map(|c| quote_ident(c)).collect(),
                collate_c: vec![false; nkey],
                values: vec![format!(
                    "{scol} {source_op} ${}::{}",
                    others.len() * nkey + 1,
                    c.source_type
                )],
                filter: None,
            };
            let mut params: Vec<RawValue> = others
                .iter()
                .flat_map(|key| key.iter().map(|v| v.clone().map_or(RawValue::Null, RawValue::Binary)))
                .collect();
            params.push(source_q.clone());
            let refs: Vec<&(dyn tokio_postgres::types::ToSql + Sync)> = params
                .iter()
                .map(|p| p as &(dyn tokio_postgres::types::ToSql + Sync))
                .collect();
            for r in source
                .query(&side.by_keys(others.len()), &refs)
                .await
                .db(|| format!("distances on {}", table.source))?
            {
                distances.insert(key_of(&r, nkey), r.get::<_, Option<f64>>(nkey));
            }
        }
        let found: Vec<(Key, Option<f64>)> = found
            .into_iter()
            .map(|key| {
                let d = distances.get(&key).copied().flatten();
                (key, d)
            })
            .collect();
        recalls.push(recall_at_k(&exact, &found, k));
    }
    report.queries = recalls.len();
    if !recalls.is_empty() {
        report.recall_mean = Some(recalls.iter().sum::<f64>() / recalls.len() as f64);
        report.recall_min = recalls.iter().copied().reduce(f64::min);
    } else {
        report.note = Some("no non-NULL vectors to query with".into());
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opclasses_name_their_distance() {
        assert_eq!(classify_opclass("vector_l2_ops"), Some(Metric::L2));
        assert_eq!(classify_opclass("halfvec_cosine_ops"), Some(Metric::Cosine));
        assert_eq!(classify_opclass("vector_ip_ops"), Some(Metric::Ip));
        assert_eq!(classify_opclass("bit_hamming_ops"), Some(Metric::Hamming));
        assert_eq!(classify_opclass("sparsevec_l1_ops"), Some(Metric::L1));
        assert_eq!(classify_opclass("text_pattern_ops"), None);
        assert_eq!(classify_opclass("vector_foo_ops"), None);
    }

    #[test]
    fn each_profile_has_its_operators() {
        use Metric::*;
        assert_eq!(target_operator(Profile::Pgvector, VectorKind::Vector, Ip), Ok("<#>"));
        assert_eq!(target_operator(Profile::Halfvec, VectorKind::Vector, Cosine), Ok("<=>"));
        // Lantern: squared L2 under the same `<->`, cosine, Hamming on integer[].
        assert_eq!(target_operator(Profile::Lantern, VectorKind::Vector, L2), Ok("<->"));
        assert_eq!(
            target_operator(Profile::Lantern, VectorKind::Halfvec, Cosine),
            Ok("<=>")
        );
        assert_eq!(target_operator(Profile::Lantern, VectorKind::Bit, Hamming), Ok("<+>"));
        assert!(target_operator(Profile::Lantern, VectorKind::Vector, Ip).is_err());
        assert!(target_operator(Profile::Lantern, VectorKind::Vector, L1).is_err());
        assert_eq!(target_operator(Profile::PgvectoRs, VectorKind::Vector, Ip), Ok("<#>"));
        assert_eq!(target_operator(Profile::PgvectoRs, VectorKind::Bit, Hamming), Ok("<->"));
        assert!(target_operator(Profile::PgvectoRs, VectorKind::Vector, L1).is_err());
    }

    #[test]
    fn recall_counts_hits_and_ties() {
        let exact = [(1, 0.0), (2, 0.5), (3, 0.7)];
        assert_eq!(recall_at_k(&exact, &[(1, None), (2, None), (3, None)], 3), 1.0);
        assert_eq!(recall_at_k(&exact, &[(3, None), (1, None), (2, None)], 3), 1.0);
        assert!((recall_at_k(&exact, &[(1, None), (2, None), (9, Some(0.9))], 3) - 2.0 / 3.0).abs() < 1e-12);
        // 9 is exactly as far as the 3rd exact result: an equally right answer.
        assert_eq!(recall_at_k(&exact, &[(1, None), (2, None), (9, Some(0.7))], 3), 1.0);
        // Duplicates and results past K do not count.
        assert!((recall_at_k(&exact, &[(1, None), (1, None), (2, None), (3, None)], 3) - 2.0 / 3.0).abs() < 1e-12);
        // Fewer rows than K: the denominator is what exists.
        assert_eq!(recall_at_k(&exact, &[(1, None), (2, None), (3, None)], 10), 1.0);
        assert_eq!(recall_at_k(&exact[..0], &[(1, None)], 10), 1.0);
        assert_eq!(recall_at_k(&exact, &[], 3), 0.0);
    }
}
