//! Index translation for VectorChord (`vchordrq`, lists sized by the row estimate); the table in the parent module's docs has the rules.

use super::common::*;
use super::parse::IndexDef;

/// lists for a `vchordrq` index from an hnsw source (see the module docs), or `None` for no
/// partitioning (fewer than 100 000 rows, or no estimate).
pub fn vectorchord_lists(estimated_rows: i64) -> Option<i64> {
    if estimated_rows < 100_000 {
        return None;
    }
    let cap = 16 * (estimated_rows as f64).sqrt() as i64;
    Some((estimated_rows / 500).min(cap).max(1))
}

pub(super) fn to_vectorchord(
    def: &IndexDef,
    v: &VecIndex,
    b: &mut Builder,
    ctx: &TranslateContext,
    idx: &str,
) -> Translation {
    let supported = matches!(v.kind, ColumnKind::Vector | ColumnKind::Halfvec)
        && matches!(v.metric, Metric::L2 | Metric::Ip | Metric::Cosine);
    if !supported {
        let what = match v.kind {
            ColumnKind::Sparsevec => "sparsevec",
            ColumnKind::Bit => "bit",
            _ => "L1 distance",
        };
        b.notes.push(format!(
            "index {idx}: VectorChord has no {what} index ({}); the pgvector {} index is kept as it is (vchord requires pgvector, so it builds there)",
            v.opclass_name(),
            def.method
        ));
        return identity(def, b, idx);
    }
    let lists = match v.method {
        VecMethod::Ivfflat => {
            let l = int_option(def, "lists").unwrap_or(100);
            b.notes.push(format!(
                "index {idx}: ivfflat lists={l} -> vchordrq [build.internal] lists = [{l}]"
            ));
            Some(l)
        }
        VecMethod::Hnsw => {
            let l = vectorchord_lists(ctx.estimated_rows);
            match l {
                None => b.notes.push(format!(
                    "index {idx}: hnsw -> vchordrq with lists = [] (no partitioning) below 100k rows (estimate: {})",
                    ctx.estimated_rows
                )),
                Some(l) => b.notes.push(format!(
                    "index {idx}: hnsw -> vchordrq with lists = [{l}] (rows/500 for about {} rows, capped at 16·√rows); tune it for your data",
                    ctx.estimated_rows
                )),
            }
            if !def.options.is_empty() {
                b.notes.push(format!(
                    "index {idx}: hnsw options ({}) have no vchordrq equivalent and are dropped",
                    def.options
                        .iter()
                        .map(|(k, v)| format!("{k}={v}"))
                        .collect::<Vec<_>>()
                        .join(", ")
                ));
            }
            l
        }
    };
    if v.method == VecMethod::Ivfflat {
        note_dropped_options(b, idx, &["lists"], "VectorChord");
    }
    let with = lists.map(|l| {
        b.notes.push(format!(
            "index {idx}: queries need SET vchordrq.probes (one value per lists level, e.g. '{}') instead of hnsw.ef_search / ivfflat.probes",
            (l / 10).clamp(1, 100)
        ));
        if v.metric == Metric::Cosine {
            format!("options = $$residual_quantization = true\n[build.internal]\nlists = [{l}]\nspherical_centroids = true$$")
        } else {
            format!("options = $$[build.internal]\nlists = [{l}]$$")
        }
    });
    let opclass = format!("{}_{}_ops", kind_prefix(v.kind), v.metric.suffix());
    let key = format!("{} {opclass}", b.key_sql(v.key));
    let sql = b.statement("vchordrq", &[key], with);
    b.create(sql, Some("vchord"))
}
