//! Index translation for AlloyDB (ScaNN with `alloydb_scann`, else the pgvector index kept); the table in the parent module's docs has the rules.

use super::common::*;
use super::parse::IndexDef;

pub(super) fn to_alloydb(
    def: &IndexDef,
    v: &VecIndex,
    b: &mut Builder,
    ctx: &TranslateContext,
    idx: &str,
) -> Translation {
    if !ctx.alloydb_scann {
        return identity(def, b, idx);
    }
    let distance = match v.metric {
        Metric::L2 => "l2",
        Metric::Ip => "dot_product",
        Metric::Cosine => "cosine",
        _ => "",
    };
    let why_not = if distance.is_empty() || !matches!(v.kind, ColumnKind::Vector | ColumnKind::Halfvec) {
        Some(format!("no ScaNN equivalent for {}", v.opclass_name()))
    } else if v.kind == ColumnKind::Halfvec {
        Some("ScaNN support for halfvec is unverified".to_string())
    } else if v.key.expression.is_some() {
        Some("ScaNN on an expression is unverified".to_string())
    } else {
        None
    };
    if let Some(why) = why_not {
        b.notes.push(format!(
            "index {idx}: {why}; the pgvector {} index is kept as it is",
            def.method
        ));
        return identity(def, b, idx);
    }
    let num_leaves = match v.method {
        VecMethod::Ivfflat => {
            let l = int_option(def, "lists").unwrap_or(100);
            b.notes
                .push(format!("index {idx}: ivfflat lists={l} -> ScaNN num_leaves = {l}"));
            l
        }
        VecMethod::Hnsw => {
            let n = if ctx.estimated_rows > 0 {
                ((ctx.estimated_rows as f64).sqrt().round() as i64).max(1)
            } else {
                1
            };
            b.notes.push(format!(
                "index {idx}: hnsw -> ScaNN with num_leaves = {n} (√rows for about {} rows{}); hnsw options are dropped",
                ctx.estimated_rows,
                if ctx.estimated_rows > 0 { "" } else { ": no estimate, ANALYZE the source and re-plan" }
            ));
            n
        }
    };
    b.notes.push(format!(
        "index {idx}: queries tune ScaNN with scann.num_leaves_to_search instead of hnsw.ef_search / ivfflat.probes"
    ));
    let key = format!("{} {distance}", b.key_sql(v.key));
    let sql = b.statement(
        "scann",
        &[key],
        Some(format!("num_leaves = {num_leaves}, quantizer = 'sq8'")),
    );
    b.create(sql, Some("alloydb_scann"))
}
