//! Index translation for Lantern (`lantern_hnsw` on `real[]`); the table in the parent module's docs has the rules.

use super::common::*;
use super::parse::IndexDef;
use crate::config::Profile;

pub(super) fn to_lantern(def: &IndexDef, v: &VecIndex, b: &mut Builder, idx: &str) -> Translation {
    if v.key.expression.is_some() {
        return expression_skip(idx, "Lantern", v.key);
    }
    let src = v.opclass_name();
    let opclass = match (v.kind, v.metric) {
        (ColumnKind::Vector | ColumnKind::Halfvec, Metric::L2) => "dist_l2sq_ops",
        (ColumnKind::Vector | ColumnKind::Halfvec, Metric::Cosine) => "dist_cos_ops",
        (ColumnKind::Vector | ColumnKind::Halfvec, m @ (Metric::Ip | Metric::L1)) => {
            return Translation::Skip {
                reason: format!(
                    "index {idx}: Lantern has no {} operator class: {src} cannot be translated; map it explicitly with index_opclasses = {{ {idx} = \"{}\" }} on the table (a different metric: {}) or query without an index",
                    m.describe(),
                    if m == Metric::Ip { "vector_cosine_ops" } else { "vector_l2_ops" },
                    if m == Metric::Ip { "fine for normalised vectors" } else { "results are ordered by L2 instead" }
                ),
            }
        }
        (ColumnKind::Bit, Metric::Hamming) => "dist_hamming_ops",
        (ColumnKind::Bit, _) => {
            return Translation::Skip {
                reason: format!(
                    "index {idx}: Lantern has no Jaccard operator class: {src} cannot be translated; use dist_hamming_ops on the integer[] column by hand, or query without an index"
                ),
            }
        }
        _ => {
            return Translation::Skip {
                reason: format!(
                    "index {idx}: Lantern cannot index sparse vectors ({src}); densify to real[] and create a lantern_hnsw index by hand if the dimension is ≤ 2000, or query without an index"
                ),
            }
        }
    };
    if let Some((dims, limit)) = too_many_dims(v, Profile::Lantern) {
        return Translation::Skip {
            reason: format!(
                "index {idx}: the column has {dims} dimensions, more than Lantern's index limit ({limit}); query without an index, or reduce the dimensions first"
            ),
        };
    }
    let (m, ef_construction) = match v.method {
        VecMethod::Hnsw => {
            let m = int_option(def, "m").unwrap_or(16).clamp(2, 128);
            let ef = int_option(def, "ef_construction").unwrap_or(64);
            if ef > 400 {
                b.notes.push(format!(
                    "index {idx}: ef_construction {ef} clamped to 400 (Lantern's maximum)"
                ));
            }
            note_dropped_options(b, idx, &["m", "ef_construction"], "Lantern");
            (m, ef.clamp(1, 400))
        }
        VecMethod::Ivfflat => {
            b.notes.push(format!(
                "index {idx}: Lantern has no IVF index; ivfflat{} becomes lantern_hnsw with m=16, ef_construction=128 (Lantern's default)",
                int_option(def, "lists").map(|l| format!(" (lists={l})")).unwrap_or_default()
            ));
            (16, 128)
        }
    };
    let mut with = format!("m={m}, ef_construction={ef_construction}, ef=64");
    match v.dims {
        Some(dims) if v.kind == ColumnKind::Bit => {
            let words = dims.div_ceil(32);
            with.push_str(&format!(", dim={words}"));
            b.notes.push(format!(
                "index {idx}: bit({dims}) is packed into integer[] ({words} × 32 bits), so dim={words}"
            ));
        }
        Some(dims) => with.push_str(&format!(", dim={dims}")),
        None => b.notes.push(format!(
            "index {idx}: the column's dimensions are unknown, so dim is not set; Lantern infers it from the first row and fails on an empty table"
        )),
    }
    if v.metric == Metric::L2 {
        b.notes.push(format!(
            "index {idx}: Lantern's <-> on real[] is squared L2; ORDER BY keeps its order, but distance thresholds in queries change"
        ));
    } else if v.metric == Metric::Hamming {
        b.notes.push(format!(
            "index {idx}: Hamming distance is <+> on Lantern's integer[] (pgvector uses <~>); update queries"
        ));
    }
    let key = format!("{} {opclass}", b.key_sql(v.key));
    let sql = b.statement("lantern_hnsw", &[key], Some(with));
    b.create(sql, Some("lantern"))
}
