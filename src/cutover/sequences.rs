//! The target's sequences: which to create, and carrying each source sequence's position over
//! under the fence (never moving one backwards).

use serde::Serialize;
use tokio_postgres::Client;

use crate::error::{DbContext, Result};
use crate::sql::{quote_ident, quote_literal, QualifiedName};

use super::steps::*;

/// One sequence carried over.
#[derive(Debug, Clone, Serialize)]
pub struct SequenceCopy {
    pub table: String,
    pub column: String,
    pub source: String,
    pub target: String,
    pub source_last_value: Option<i64>,
    pub source_is_called: Option<bool>,
    pub target_last_value: Option<i64>,
    /// The value set on the target (None: it was already ahead, or a dry run).
    pub set_to: Option<i64>,
    /// The target sequence did not exist and was created (with the column default when
    /// pgvshift created the target table).
    pub created: bool,
    pub note: Option<String>,
}

/// PURE: whether a target sequence must be set to carry the source's position over: not when
/// it is already at or past it (a sequence is never moved backwards).
pub fn needs_setval(source: (i64, bool), target: (i64, bool), increment: i64) -> bool {
    // The value nextval() would return next.
    let next = |(last, called): (i64, bool)| if called { last.saturating_add(increment) } else { last };
    if increment >= 0 {
        next(target) < next(source)
    } else {
        next(target) > next(source)
    }
}

/// A sequence to carry over.
pub(super) struct SeqPlan {
    pub(super) table: String,
    pub(super) column: String,
    pub(super) target_column: String,
    pub(super) target_table: QualifiedName,
    pub(super) source: QualifiedName,
    pub(super) target: QualifiedName,
    pub(super) increment: i64,
    /// `CREATE SEQUENCE` for the target when it has none (None: it exists).
    pub(super) create: Option<String>,
    /// `ALTER TABLE ... SET DEFAULT nextval(...)` when pgvshift created the table.
    pub(super) set_default: Option<String>,
}

/// The sequences feeding the migrated tables' columns (serial, identity, or a column default
/// calling nextval), and where each goes on the target.
pub(super) async fn plan_sequences(
    source: &Client,
    target: &Client,
    tables: &[Migrated],
    problems: &mut Vec<String>,
) -> Result<Vec<SeqPlan>> {
    const SQL: &str = "SELECT DISTINCT a.attname::text, sn.nspname::text, sc.relname::text, s.seqincrement, \
               format_type(s.seqtypid, NULL), s.seqmin, s.seqmax, s.seqstart, s.seqcycle, \
               has_sequence_privilege(sc.oid, 'SELECT') \
          FROM pg_attribute a \
          JOIN pg_depend d ON d.refclassid = 'pg_class'::regclass AND ( \
                 (d.classid = 'pg_class'::regclass AND d.refobjid = a.attrelid AND d.refobjsubid = a.attnum AND d.deptype IN ('a', 'i')) \
              OR (d.classid = 'pg_attrdef'::regclass AND d.objid = (SELECT ad.oid FROM pg_attrdef ad WHERE ad.adrelid = a.attrelid AND ad.adnum = a.attnum))) \
          JOIN pg_class sc ON sc.oid = CASE WHEN d.classid = 'pg_class'::regclass THEN d.objid ELSE d.refobjid END AND sc.relkind = 'S' \
          JOIN pg_namespace sn ON sn.oid = sc.relnamespace \
          JOIN pg_sequence s ON s.seqrelid = sc.oid \
         WHERE a.attrelid = $1 AND a.attnum > 0 AND NOT a.attisdropped \
         ORDER BY 1, 2, 3";
    let mut out = Vec::new();
    for m in tables {
        let rows = source
            .query(SQL, &[&m.table.relid])
            .await
            .db(|| format!("reading the sequences of {}", m.table.name))?;
        let target_exists: bool = target
            .query_one(
                "SELECT EXISTS (SELECT 1 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = $1 AND c.relname = $2)",
                &[&m.map.target.schema, &m.map.target.name],
            )
            .await
            .db(|| format!("looking up target table {}", m.map.target))?
            .get(0);
        if !target_exists {
            problems.push(format!("target table {} does not exist", m.map.target));
            continue;
        }
        for r in rows {
            let column: String = r.get(0);
            let Some(target_column) = m.map.config.target_column(&column).map(str::to_string) else {
                continue; // excluded column
            };
            let seq = QualifiedName::new(r.get::<_, String>(1), r.get::<_, String>(2));
            if !r.get::<_, bool>(9) {
                problems.push(format!(
                    "the source role cannot read sequence {seq}: GRANT SELECT ON SEQUENCE {} TO <role>",
                    seq.quoted()
                ));
            }
            // The target column's own sequence (serial/identity), else one of the same name in
            // the target table's schema, else it is created there.
            let owned: Option<String> = target
                .query_one(
                    "SELECT pg_get_serial_sequence($1, $2)",
                    &[&m.map.target.quoted(), &target_column],
                )
                .await
                .db(|| format!("looking up the sequence of {}.{target_column}", m.map.target))?
                .get(0);
            let named = QualifiedName::new(m.map.target.schema.clone(), seq.name.clone());
            let (tseq, exists) = match owned {
                Some(text) => (parse_regclass_text(&text).unwrap_or(named), true),
                None => {
                    let exists: bool = target
                        .query_one(
                            "SELECT EXISTS (SELECT 1 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = $1 AND c.relname = $2 AND c.relkind = 'S')",
                            &[&named.schema, &named.name],
                        )
                        .await
                        .db(|| format!("looking up sequence {named} on the target"))?
                        .get(0);
                    (named, exists)
                }
            };
            let increment: i64 = r.get(3);
            let create = (!exists).then(|| {
                format!(
                    "CREATE SEQUENCE IF NOT EXISTS {} AS {} INCREMENT BY {increment} MINVALUE {} MAXVALUE {} START WITH {}{}",
                    tseq.quoted(),
                    r.get::<_, String>(4),
                    r.get::<_, i64>(5),
                    r.get::<_, i64>(6),
                    r.get::<_, i64>(7),
                    if r.get::<_, bool>(8) { " CYCLE" } else { "" }
                )
            });
            let set_default = (create.is_some() && m.created_table).then(|| {
                format!(
                    "ALTER TABLE {t} ALTER COLUMN {c} SET DEFAULT nextval({s}::regclass); ALTER SEQUENCE {seq} OWNED BY {t}.{c}",
                    t = m.map.target.quoted(),
                    c = quote_ident(&target_column),
                    s = quote_literal(&tseq.quoted()),
                    seq = tseq.quoted()
                )
            });
            out.push(SeqPlan {
                table: m.table.name.to_string(),
                column,
                target_column,
                target_table: m.map.target.clone(),
                source: seq,
                target: tseq,
                increment,
                create,
                set_default,
            });
        }
    }
    Ok(out)
}

/// `"s"."n"` / `s.n` as `pg_get_serial_sequence` prints it.
fn parse_regclass_text(text: &str) -> Option<QualifiedName> {
    QualifiedName::parse(text).ok()
}

/// Read the source sequence and set the target one (unless it is ahead, or `dry_run`).
pub(super) async fn copy_sequence(
    source: &Client,
    target: &Client,
    s: &SeqPlan,
    dry_run: bool,
) -> Result<SequenceCopy> {
    let row = source
        .query_one(&format!("SELECT last_value, is_called FROM {}", s.source.quoted()), &[])
        .await
        .db(|| format!("reading sequence {} on the source", s.source))?;
    let src: (i64, bool) = (row.get(0), row.get(1));
    let tgt: Option<(i64, bool)> = if s.create.is_some() && dry_run {
        None
    } else {
        let row = target
            .query_one(&format!("SELECT last_value, is_called FROM {}", s.target.quoted()), &[])
            .await
            .db(|| format!("reading sequence {} on the target", s.target))?;
        Some((row.get(0), row.get(1)))
    };
    let mut copy = SequenceCopy {
        table: s.table.clone(),
        column: s.column.clone(),
        source: s.source.to_string(),
        target: s.target.to_string(),
        source_last_value: Some(src.0),
        source_is_called: Some(src.1),
        target_last_value: tgt.map(|t| t.0),
        set_to: None,
        created: s.create.is_some(),
        note: None,
    };
    let needed = tgt.is_none_or(|t| needs_setval(src, t, s.increment));
    if dry_run {
        copy.note = Some(
            match (s.create.is_some(), needed) {
                (true, _) => "would be created, then set",
                (false, true) => "would be set",
                (false, false) => "already ahead",
            }
            .into(),
        );
        return Ok(copy);
    }
    if needed {
        target
            .execute(
                "SELECT setval($1::text::regclass, $2, $3)",
                &[&s.target.quoted(), &src.0, &src.1],
            )
            .await
            .db(|| format!("setting sequence {} on the target", s.target))?;
        copy.set_to = Some(src.0);
    }
    Ok(copy)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sequences_only_move_forward() {
        // Target not called yet at 1, source handed out up to 42: set.
        assert!(needs_setval((42, true), (1, false), 1));
        // Equal positions: nothing to do.
        assert!(!needs_setval((42, true), (42, true), 1));
        assert!(!needs_setval((43, false), (42, true), 1));
        // The target is ahead (e.g. a second cutover attempt after rows were written there).
        assert!(!needs_setval((42, true), (100, true), 1));
        // Source never used (is_called false): the target at its start is fine.
        assert!(!needs_setval((1, false), (1, false), 1));
        // Descending sequences.
        assert!(needs_setval((-42, true), (-1, false), -1));
        assert!(!needs_setval((-42, true), (-50, true), -1));
    }

    #[test]
    fn serial_sequence_names_parse() {
        assert_eq!(
            parse_regclass_text("public.items_id_seq"),
            Some(QualifiedName::new("public", "items_id_seq"))
        );
        assert_eq!(
            parse_regclass_text("\"My S\".\"T_id_seq\""),
            Some(QualifiedName::new("My S", "T_id_seq"))
        );
    }
}
