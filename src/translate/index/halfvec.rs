//! Index translation for halfvec (`halfvec_*_ops`, the same access method and options); the table in the parent module's docs has the rules.

use super::common::*;
use super::parse::IndexDef;
use crate::config::Profile;
use crate::sql::display_ident;

pub(super) fn to_halfvec(def: &IndexDef, v: &VecIndex, b: &mut Builder, idx: &str) -> Translation {
    if v.key.expression.is_some() {
        b.notes.push(format!(
            "index {idx}: the key expression {} is copied verbatim, but vector columns are halfvec on the target; check that it still means the same",
            v.key.expression.as_deref().unwrap_or_default()
        ));
        return identity(def, b, idx);
    }
    match v.kind {
        ColumnKind::Vector => {}
        ColumnKind::Sparsevec => {
            return Translation::Skip {
                reason: format!(
                    "index {idx}: {} on a sparsevec column has no halfvec equivalent (the halfvec profile densifies sparsevec to halfvec(n), and pgvector indexes halfvec only up to 4000 dimensions); if n ≤ 4000, create `USING hnsw (... halfvec_{}_ops)` by hand after the migration",
                    v.opclass_name(),
                    v.metric.suffix()
                ),
            }
        }
        ColumnKind::Halfvec | ColumnKind::Bit | ColumnKind::Other => return identity(def, b, idx),
    }
    if let Some((dims, limit)) = too_many_dims(v, Profile::Halfvec) {
        return Translation::Skip {
            reason: format!(
                "index {idx}: the column has {dims} dimensions, more than a halfvec hnsw/ivfflat index can hold ({limit}); query without an index, or index a lower-dimensional expression (e.g. subvector or binary_quantize) by hand"
            ),
        };
    }
    let from = match v.key.opclass.as_ref().and_then(|op| op.schema.as_ref()) {
        Some(schema) => format!("{}.{}", display_ident(schema), v.opclass_name()),
        None => v.opclass_name(),
    };
    let to = format!("halfvec_{}_ops", v.metric.suffix());
    b.notes.push(format!(
        "index {idx}: operator class {} -> {to} (the column is halfvec on the target); WITH options copied",
        if v.key.opclass.is_none() {
            format!("{from} (the ivfflat default)")
        } else {
            from
        }
    ));
    let key = b.full_key_sql(v.key, Some(to));
    let sql = b.statement(&def.method, &[key], source_with(def));
    b.create(sql, Some("vector"))
}
