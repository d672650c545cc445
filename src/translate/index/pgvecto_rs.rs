//! Index translation for PGVecto.rs (`vectors` with a TOML `WITH (options = ...)`); the table in the parent module's docs has the rules.

use super::common::*;
use super::parse::IndexDef;

pub(super) fn to_pgvecto_rs(def: &IndexDef, v: &VecIndex, b: &mut Builder, idx: &str) -> Translation {
    if v.key.expression.is_some() {
        return expression_skip(idx, "PGVecto.rs", v.key);
    }
    let src = v.opclass_name();
    let prefix = match v.kind {
        ColumnKind::Vector => "vector",
        ColumnKind::Halfvec => "vecf16",
        ColumnKind::Sparsevec => "svector",
        ColumnKind::Bit | ColumnKind::Other => "bvector",
    };
    let metric = match v.metric {
        Metric::L2 => "l2",
        Metric::Ip => "dot",
        Metric::Cosine => "cos",
        Metric::Hamming => "hamming",
        Metric::Jaccard => "jaccard",
        Metric::L1 => {
            return Translation::Skip {
                reason: format!(
                    "index {idx}: PGVecto.rs has no L1 operator class: {src} cannot be translated; map it explicitly with index_opclasses = {{ {idx} = \"vector_l2_ops\" }} on the table (a different metric), or query without an index"
                ),
            }
        }
    };
    let options = match v.method {
        VecMethod::Hnsw => {
            let m = int_option(def, "m").unwrap_or(16);
            let ef = int_option(def, "ef_construction").unwrap_or(64);
            let (m2, ef2) = (m.clamp(4, 128), ef.clamp(10, 2000));
            if m2 != m {
                b.notes
                    .push(format!("index {idx}: m {m} clamped to {m2} (PGVecto.rs allows 4..128)"));
            }
            if ef2 != ef {
                b.notes.push(format!(
                    "index {idx}: ef_construction {ef} clamped to {ef2} (PGVecto.rs allows 10..2000)"
                ));
            }
            note_dropped_options(b, idx, &["m", "ef_construction"], "PGVecto.rs");
            format!("[indexing.hnsw]\nm = {m2}\nef_construction = {ef2}")
        }
        VecMethod::Ivfflat => {
            if !matches!(v.kind, ColumnKind::Vector | ColumnKind::Halfvec) {
                return Translation::Skip {
                    reason: format!(
                        "index {idx}: PGVecto.rs rejects ivf here (\"ivf is only supported for dense vectors\"): {src} on ivfflat cannot be translated; create an hnsw index (USING vectors (... vectors.{prefix}_{metric}_ops) WITH (options = $$[indexing.hnsw]$$)) by hand, or query without an index"
                    ),
                };
            }
            let lists = int_option(def, "lists").unwrap_or(100).clamp(1, 1_000_000);
            note_dropped_options(b, idx, &["lists"], "PGVecto.rs");
            format!("[indexing.ivf]\nnlist = {lists}")
        }
    };
    match v.kind {
        ColumnKind::Vector | ColumnKind::Halfvec | ColumnKind::Sparsevec if v.metric == Metric::L2 => {
            b.notes.push(format!(
                "index {idx}: PGVecto.rs's <-> is squared L2; ORDER BY keeps its order, but distance thresholds in queries change"
            ))
        }
        ColumnKind::Bit => b.notes.push(format!(
            "index {idx}: on bvector, Hamming is <-> and Jaccard is <~> (pgvector: Hamming <~>, Jaccard <%>); update queries"
        )),
        _ => {}
    }
    let key = format!("{} vectors.{prefix}_{metric}_ops", b.key_sql(v.key));
    let sql = b.statement("vectors", &[key], Some(format!("options = $${options}$$")));
    b.create(sql, Some("vectors"))
}
