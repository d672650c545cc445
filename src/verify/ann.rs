//! `verify --ann K,Q`: does the target *answer* like the source? For each vector index of a
//! table (its column and distance), Q vectors sampled from the source are searched top-K on
//! both sides: exactly on the source (index scans off: a sequential scan and a sort), and on
//! the target the way an application would (its own index, its own operator and type: Lantern's
//! `<->` on `real[]` is squared L2, which orders like L2). Recall@K of the target against the
//! exact source answer is reported, tie-aware: a target result that is not in the exact list
//! but lies exactly as far as the K-th exact result counts as a hit.
//!
//! The target is searched with its engine's search knobs set per index ([`search_settings`]:
//! `hnsw.ef_search`, `ivfflat.probes`, `lantern_hnsw.ef`, `vchordrq.probes` matching the index's
//! levels of lists, `vchordg.ef_search`), and the report says which. A column that cannot be
//! searched on the target (e.g. Lantern's operators missing there) is reported with the reason;
//! the other columns and tables are still measured.

use std::collections::{BTreeMap, HashSet};

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
    /// The engine settings the target's searches ran with (GUC name -> value; empty: none).
    pub search_settings: BTreeMap<String, String>,
    /// How those settings were chosen, per target index (e.g. `vchordrq.probes = ⌈√lists⌉ per
    /// level (lists = [20]) (index items_emb)`); None: the column has no such index.
    pub search_rule: Option<String>,
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
        search_settings: BTreeMap::new(),
        search_rule: None,
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
    // The engine's search knobs for the target's indexes on this column, set for this
    // session while its queries run, then reset.
    let outcome = match target_indexes(target, table, &c.target, target_op, col.source_index.as_deref()).await {
        Ok(indexes) => {
            let (settings, rules) = search_settings_for(&indexes, k);
            report.search_settings = settings.iter().cloned().collect();
            report.search_rule = (!rules.is_empty()).then(|| rules.join("; "));
            let mut outcome = apply_settings(target, &settings).await;
            if outcome.is_ok() {
                outcome = search(source, target, table, col, target_op, k, queries, &mut report).await;
            }
            for (name, _) in &settings {
                // Best effort: the session is verify's own; a failed RESET changes no result.
                let _ = target.batch_execute(&format!("RESET {name}")).await;
            }
            outcome
        }
        Err(e) => Err(e),
    };
    match outcome {
        Ok(()) => {}
        Err(e) if e.is_transient() => return Err(e),
        Err(e) => {
            let hint = if c.profile == Profile::Lantern && e.to_string().contains("operator does not exist") {
                " (Lantern's operators are missing on the target: CREATE EXTENSION vector; CREATE EXTENSION lantern; in the target database)"
            } else {
                ""
            };
            report.recall_mean = None;
            report.recall_min = None;
            report.note = Some(format!("not measured: {e}{hint}"));
        }
    }
    Ok(report)
}

/// A vector index on the target column: name, access method, `reloptions` (`name=value`).
#[derive(Debug, Clone)]
pub struct TargetIndex {
    pub name: String,
    pub method: String,
    pub reloptions: Vec<String>,
}

/// The target's single-column indexes on `column` that can order by `operator` (the ones the
/// planner may use for the search), the one named like the source index first.
async fn target_indexes(
    target: &Client,
    table: &AnnTable<'_>,
    column: &str,
    operator: &str,
    source_index: Option<&str>,
) -> Result<Vec<TargetIndex>> {
    let rows = target
        .query(
            "SELECT c.relname::text, am.amname::text, coalesce(c.reloptions, '{}')::text[] \
               FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_am am ON am.oid = c.relam \
               JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = i.indkey[0] \
               JOIN pg_opclass opc ON opc.oid = i.indclass[0] \
              WHERE i.indrelid = $1::text::regclass AND i.indnkeyatts = 1 AND a.attname = $2 \
                AND EXISTS (SELECT 1 FROM pg_amop ao JOIN pg_operator o ON o.oid = ao.amopopr \
                             WHERE ao.amopfamily = opc.opcfamily AND ao.amoppurpose = 'o' AND o.oprname = $3) \
              ORDER BY c.relname::text = $4 DESC, c.relname",
            &[&table.target.quoted(), &column, &operator, &source_index.unwrap_or("")],
        )
        .await
        .db(|| format!("reading the indexes of {} on the target", table.target))?;
    Ok(rows
        .iter()
        .map(|r| TargetIndex {
            name: r.get(0),
            method: r.get(1),
            reloptions: r.get(2),
        })
        .collect())
}

/// PURE: the settings for a column's target indexes, with the rule used for each. The
/// settings are per access method, so only the first index of each method counts (the one
/// named like the source index comes first): e.g. a second vchordrq index with other lists
/// cannot be served by the same `vchordrq.probes`.
pub fn search_settings_for(indexes: &[TargetIndex], k: usize) -> (Vec<(String, String)>, Vec<String>) {
    let mut settings: Vec<(String, String)> = Vec::new();
    let mut rules = Vec::new();
    let mut methods = HashSet::new();
    for index in indexes {
        if !methods.insert(index.method.as_str()) {
            continue;
        }
        let Some((these, rule)) = search_settings(&index.method, &index.reloptions, k) else {
            continue;
        };
        rules.push(format!("{rule} (index {})", index.name));
        settings.extend(these);
    }
    (settings, rules)
}

async fn apply_settings(target: &Client, settings: &[(String, String)]) -> Result<()> {
    for (name, value) in settings {
        target
            .execute("SELECT set_config($1, $2, false)", &[name, value])
            .await
            .db(|| format!("setting {name} = '{value}' on the target"))?;
    }
    Ok(())
}

/// PURE: the search settings for top-`k` queries on a target index with access method
/// `method` and `reloptions` (as pg_class stores them, `name=value`), and how they were
/// chosen; `None` for an access method without search knobs (btree, ...). The values follow
/// each engine's own guidance, raised where K needs more:
/// - pgvector `hnsw`: `hnsw.ef_search` = max(40 (its default), K): it returns at most
///   ef_search rows;
/// - pgvector `ivfflat`: `ivfflat.probes` = ⌈√lists⌉ (pgvector's suggested starting point);
/// - Lantern `lantern_hnsw`: `lantern_hnsw.ef` = max(the index's `ef` (default 64), K);
/// - VectorChord `vchordrq`: `vchordrq.probes` needs exactly one value per level of `lists`
///   (its search fails otherwise, in both directions): ⌈√n⌉ for each level of n lists; an
///   index without lists gets none; an index with its own `probes` option keeps it;
/// - VectorChord `vchordg`: `vchordg.ef_search` = max(the index's `ef_search` (default 64), K).
pub fn search_settings(method: &str, reloptions: &[String], k: usize) -> Option<(Vec<(String, String)>, String)> {
    let option = |name: &str| {
        reloptions.iter().find_map(|o| {
            o.split_once('=')
                .filter(|(n, _)| *n == name)
                .map(|(_, v)| v.to_string())
        })
    };
    let int_option = |name: &str, default: usize| option(name).and_then(|v| v.trim().parse().ok()).unwrap_or(default);
    let one = |name: &str, value: usize, rule: String| Some((vec![(name.to_string(), value.to_string())], rule));
    let sqrt_ceil = |n: usize| ((n as f64).sqrt().ceil() as usize).clamp(1, n.max(1));
    match method {
        "hnsw" => one(
            "hnsw.ef_search",
            k.clamp(40, 1000),
            "hnsw.ef_search = max(40, K)".into(),
        ),
        "ivfflat" => {
            let lists = int_option("lists", 100);
            one(
                "ivfflat.probes",
                sqrt_ceil(lists),
                format!("ivfflat.probes = ⌈√lists⌉ (lists = {lists})"),
            )
        }
        "lantern_hnsw" => {
            let ef = int_option("ef", 64);
            one(
                "lantern_hnsw.ef",
                k.max(ef).clamp(1, 400),
                format!("lantern_hnsw.ef = max(index ef {ef}, K)"),
            )
        }
        "vchordg" => {
            let ef = int_option("ef_search", 64);
            one(
                "vchordg.ef_search",
                k.max(ef).clamp(1, 65535),
                format!("vchordg.ef_search = max(index ef_search {ef}, K)"),
            )
        }
        "vchordrq" => {
            if let Some(probes) = option("probes") {
                return Some((
                    Vec::new(),
                    format!("vchordrq.probes from the index's own probes = '{probes}'"),
                ));
            }
            let lists = vchordrq_lists(option("options").as_deref().unwrap_or(""));
            if lists.is_empty() {
                return Some((
                    Vec::new(),
                    "no vchordrq.probes: the index has no lists (setting probes would fail)".into(),
                ));
            }
            let probes: Vec<String> = lists.iter().map(|&n| sqrt_ceil(n).to_string()).collect();
            Some((
                vec![("vchordrq.probes".to_string(), probes.join(","))],
                format!("vchordrq.probes = ⌈√lists⌉ per level (lists = {lists:?})"),
            ))
        }
        _ => None,
    }
}

/// PURE: the levels of `lists` in a vchordrq `options` TOML string (`[build.internal] lists
/// = [..]`); empty for no partitioning (`[build.default]`, no options, or `lists = []`).
pub fn vchordrq_lists(options: &str) -> Vec<usize> {
    let Ok(table) = options.parse::<toml::Table>() else {
        return Vec::new();
    };
    table
        .get("build")
        .and_then(|b| b.get("internal"))
        .and_then(|i| i.get("lists"))
        .and_then(|l| l.as_array())
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_integer())
                .map(|n| n.max(0) as usize)
                .collect()
        })
        .unwrap_or_default()
}

/// Q top-K queries for one column, the target's search settings already in place: fills the
/// report's recall, query count and the index the target's plan uses.
#[allow(clippy::too_many_arguments)]
async fn search(
    source: &Client,
    target: &Client,
    table: &AnnTable<'_>,
    col: &AnnColumn<'_>,
    target_op: &str,
    k: usize,
    queries: usize,
    report: &mut AnnReport,
) -> Result<()> {
    let c = col.column;
    let source_op = pgvector_operator(col.metric);
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
    Ok(())
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

    fn settings(method: &str, reloptions: &[&str], k: usize) -> (Vec<(String, String)>, String) {
        let reloptions: Vec<String> = reloptions.iter().map(|s| s.to_string()).collect();
        search_settings(method, &reloptions, k).expect("a vector index")
    }

    fn set(name: &str, value: &str) -> Vec<(String, String)> {
        vec![(name.to_string(), value.to_string())]
    }

    #[test]
    fn search_knobs_follow_each_index() {
        assert_eq!(settings("hnsw", &["m=16"], 10).0, set("hnsw.ef_search", "40"));
        assert_eq!(settings("hnsw", &[], 100).0, set("hnsw.ef_search", "100"));
        assert_eq!(settings("ivfflat", &["lists=20"], 10).0, set("ivfflat.probes", "5"));
        assert_eq!(settings("ivfflat", &[], 10).0, set("ivfflat.probes", "10"));
        assert_eq!(
            settings("lantern_hnsw", &["m=16", "ef_construction=64", "ef=64", "dim=32"], 10).0,
            set("lantern_hnsw.ef", "64")
        );
        assert_eq!(settings("lantern_hnsw", &["ef=8"], 30).0, set("lantern_hnsw.ef", "30"));
        assert_eq!(settings("vchordg", &[], 10).0, set("vchordg.ef_search", "64"));
        assert!(search_settings("btree", &[], 10).is_none());
    }

    #[test]
    fn vchordrq_probes_match_the_levels_of_lists() {
        // As pg_class.reloptions stores them (the TOML string after `options=`).
        let one = "options=residual_quantization = true\n[build.internal]\nlists = [20]\nspherical_centroids = true";
        assert_eq!(settings("vchordrq", &[one], 10).0, set("vchordrq.probes", "5"));
        let two = "options=[build.internal]\nlists = [40, 1600]\n";
        let (s, rule) = settings("vchordrq", &[two], 10);
        assert_eq!(s, set("vchordrq.probes", "7,40"));
        assert!(rule.contains("[40, 1600]"), "{rule}");
        // No lists: no probes at all ("need 0 probes, but 1 probes provided" otherwise).
        for none in [
            vec![],
            vec!["options=residual_quantization = true"],
            vec!["options=[build.default]"],
        ] {
            let (s, rule) = settings("vchordrq", &none, 10);
            assert!(s.is_empty(), "{none:?}: {s:?}");
            assert!(rule.contains("no lists"), "{rule}");
        }
        // The index's own probes option is what the search uses.
        let (s, rule) = settings("vchordrq", &[one, "probes=3"], 10);
        assert!(s.is_empty() && rule.contains("'3'"), "{s:?} {rule}");
        assert_eq!(vchordrq_lists("[build.internal]\nlists = []"), Vec::<usize>::new());
        assert_eq!(vchordrq_lists("not toml ["), Vec::<usize>::new());
    }

    #[test]
    fn only_the_first_index_of_a_method_sets_its_knobs() {
        let index = |name: &str, method: &str, reloptions: &[&str]| TargetIndex {
            name: name.into(),
            method: method.into(),
            reloptions: reloptions.iter().map(|s| s.to_string()).collect(),
        };
        let (s, rules) = search_settings_for(
            &[
                index("a", "vchordrq", &[]),
                index("b", "vchordrq", &["options=[build.internal]\nlists = [100]"]),
                index("c", "hnsw", &[]),
            ],
            10,
        );
        assert_eq!(s, set("hnsw.ef_search", "40"), "index a (no lists) decides vchordrq");
        assert_eq!(rules.len(), 2, "{rules:?}");
        assert!(rules[0].ends_with("(index a)"), "{rules:?}");
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
