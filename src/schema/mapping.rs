//! PURE: how one source table maps onto its target under its profile: each column's target
//! name, type and value conversion, and what blocks the mapping. Used by `plan` (to show it),
//! the target DDL, the snapshot transcoder and the applier (to convert streamed values).
//!
//! | source column | pgvector / vectorchord / alloydb | halfvec | lantern | pgvecto_rs |
//! |---|---|---|---|---|
//! | `vector(n)` | same, bytes pass through | `halfvec(n)`, f32 -> f16 (RNE, out of range is an error) | `real[]` | `vectors.vector(n)` |
//! | `halfvec(n)` | same | same | `real[]` (exact) | `vectors.vecf16(n)` |
//! | `sparsevec(n)` | same | same | refused, or `real[]` with `densify_sparse` | `vectors.svector(n)` |
//! | `bit(n)` | same | same | `integer[]` (32 bits a word) | `vectors.bvector(n)` |
//! | anything else | same type, bytes pass through |||

use std::collections::HashMap;

use crate::config::profile::Profile;
use crate::config::TableConfig;
use crate::schema::catalog::{Column, Table};
use crate::sql::{display_ident, QualifiedName};
use crate::translate::index::{self as index_translation, ColumnKind, TranslateContext, Translation};
use crate::translate::Conversion;

/// What kind of vector a column holds (by type *name*: pgvector's OIDs differ per database).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum VectorKind {
    Vector,
    Halfvec,
    Sparsevec,
    Bit,
    /// Not a vector type.
    None,
}

impl VectorKind {
    pub fn of(column: &Column) -> VectorKind {
        match column.type_name.as_str() {
            "vector" => VectorKind::Vector,
            "halfvec" => VectorKind::Halfvec,
            "sparsevec" => VectorKind::Sparsevec,
            "bit" | "varbit" => VectorKind::Bit,
            _ => VectorKind::None,
        }
    }
}

/// One column on the target.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ColumnMap {
    pub source: String,
    pub target: String,
    pub source_type: String,
    pub target_type: String,
    pub conversion: Conversion,
    /// How values get there, for `plan` ("binary passthrough", "f32 -> f16, round to nearest even").
    pub how: String,
    pub kind: VectorKind,
    /// Dimensions from the typmod (vector types only).
    pub dims: Option<u32>,
    pub profile: Profile,
    pub not_null: bool,
    /// Stored generated column: the target computes it; never copied or streamed.
    pub generation_expr: Option<String>,
}

impl ColumnMap {
    pub fn is_generated(&self) -> bool {
        self.generation_expr.is_some()
    }
}

/// One table on the target.
#[derive(Debug, Clone, serde::Serialize)]
pub struct TableMap {
    pub source: QualifiedName,
    pub target: QualifiedName,
    pub profile: Profile,
    /// Target columns, in source order (excluded columns are absent).
    pub columns: Vec<ColumnMap>,
    /// The primary key by target column names.
    pub primary_key: Vec<String>,
    pub excluded: Vec<String>,
    /// Problems that block this table, each naming the column and the fix.
    pub problems: Vec<String>,
    /// The table's configuration (index options, renames, ...).
    #[serde(skip)]
    pub config: TableConfig,
}

impl TableMap {
    /// Columns whose values are copied and streamed (not generated).
    pub fn replicated(&self) -> impl Iterator<Item = &ColumnMap> {
        self.columns.iter().filter(|c| !c.is_generated())
    }

    /// Whether any value needs converting (otherwise the snapshot passes bytes straight through).
    pub fn converts(&self) -> bool {
        self.replicated().any(|c| c.conversion != Conversion::Passthrough)
    }

    pub fn column_by_source(&self, source: &str) -> Option<&ColumnMap> {
        self.columns.iter().find(|c| c.source == source)
    }
}

impl TableMap {
    /// "id=42" / "(a, b)=(1, 'x')": how an error names a row, from its key values in binary
    /// form (`key_value(target column name)`). Key values identify rows, they are not the data
    /// the invariant against logging values protects; non-scalar keys print as their size only.
    pub fn describe_key<'a>(&self, key_value: impl Fn(&str) -> Option<&'a [u8]>) -> String {
        if self.primary_key.is_empty() {
            return "(table without a primary key)".into();
        }
        let parts: Vec<(String, String)> = self
            .primary_key
            .iter()
            .map(|k| {
                let ty = self
                    .columns
                    .iter()
                    .find(|c| &c.target == k)
                    .map(|c| c.source_type.as_str())
                    .unwrap_or("");
                let v = key_value(k).map_or_else(|| "NULL".to_string(), |b| key_text(ty, b));
                (display_ident(k), v)
            })
            .collect();
        if parts.len() == 1 {
            format!("{}={}", parts[0].0, parts[0].1)
        } else {
            let (names, values): (Vec<String>, Vec<String>) = parts.into_iter().unzip();
            format!("({})=({})", names.join(", "), values.join(", "))
        }
    }
}

/// A key value in binary send format, as text for an error message.
pub fn key_text(type_sql: &str, b: &[u8]) -> String {
    let int = |b: &[u8]| -> Option<i64> {
        match b.len() {
            2 => Some(i64::from(i16::from_be_bytes(b.try_into().ok()?))),
            4 => Some(i64::from(i32::from_be_bytes(b.try_into().ok()?))),
            8 => Some(i64::from_be_bytes(b.try_into().ok()?)),
            _ => None,
        }
    };
    let base = type_sql.split('(').next().unwrap_or("").trim();
    match base {
        "smallint" | "integer" | "bigint" | "int2" | "int4" | "int8" => {
            int(b).map_or_else(|| format!("<{} bytes>", b.len()), |v| v.to_string())
        }
        "text" | "character varying" | "character" | "name" | "citext" => {
            let s = String::from_utf8_lossy(b);
            let short: String = s.chars().take(64).collect();
            format!(
                "'{}'{}",
                short.replace('\'', "''"),
                if s.chars().count() > 64 { "..." } else { "" }
            )
        }
        "uuid" if b.len() == 16 => {
            let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
            format!(
                "{}-{}-{}-{}-{}",
                &h[0..8],
                &h[8..12],
                &h[12..16],
                &h[16..20],
                &h[20..32]
            )
        }
        _ => format!("<{} bytes>", b.len()),
    }
}

/// Map a source table under its configuration.
pub fn map_table(table: &Table, tc: &TableConfig) -> TableMap {
    let mut problems = Vec::new();
    let names: Vec<&str> = table.columns.iter().map(|c| c.name.as_str()).collect();
    let unknown = |key: &str, col: &str| {
        format!(
            "table {}: {key} names column {} which the source table does not have (its columns: {})",
            table.name,
            display_ident(col),
            names.iter().map(|n| display_ident(n)).collect::<Vec<_>>().join(", ")
        )
    };
    for c in tc.renames.keys() {
        if !names.contains(&c.as_str()) {
            problems.push(unknown("columns", c));
        }
    }
    for c in &tc.exclude {
        if !names.contains(&c.as_str()) {
            problems.push(unknown("exclude", c));
        }
        if table.primary_key.contains(c) {
            problems.push(format!(
                "table {}: column {} is part of the primary key and cannot be excluded",
                table.name,
                display_ident(c)
            ));
        }
    }
    for name in tc.index_opclasses.keys() {
        if !table.indexes.iter().any(|i| &i.name == name) {
            problems.push(format!(
                "table {}: index_opclasses names index {} which the source table does not have (its indexes: {})",
                table.name,
                display_ident(name),
                table
                    .indexes
                    .iter()
                    .map(|i| display_ident(&i.name))
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
    }
    for c in tc.column_profiles.keys() {
        if !names.contains(&c.as_str()) {
            problems.push(unknown("column_profiles", c));
        }
    }
    let mut columns = Vec::new();
    for column in &table.columns {
        let Some(target) = tc.target_column(&column.name) else {
            continue;
        };
        let profile = tc.profile_for(&column.name);
        let kind = VectorKind::of(column);
        let dims = (kind != VectorKind::None && column.type_modifier > 0).then_some(column.type_modifier as u32);
        match target_type(profile, kind, column, dims, tc.densify_sparse) {
            Ok((target_type, conversion, how)) => columns.push(ColumnMap {
                source: column.name.clone(),
                target: target.to_string(),
                source_type: column.type_sql.clone(),
                target_type,
                conversion,
                how,
                kind,
                dims,
                profile,
                not_null: column.not_null,
                generation_expr: column.generation_expr.clone(),
            }),
            Err(problem) => problems.push(format!(
                "table {}, column {}: {problem}",
                table.name,
                display_ident(&column.name)
            )),
        }
    }
    let primary_key = table
        .primary_key
        .iter()
        .map(|k| tc.target_column(k).unwrap_or(k).to_string())
        .collect();
    TableMap {
        source: table.name.clone(),
        target: tc.target.clone(),
        profile: tc.profile,
        columns,
        primary_key,
        excluded: tc.exclude.clone(),
        problems,
        config: tc.clone(),
    }
}

/// A note when a vector column has more dimensions than the target's ANN indexes can hold,
/// with the usual fix (index it as halfvec, which pgvector indexes up to 4000 dimensions).
pub fn index_limit_note(c: &ColumnMap) -> Option<String> {
    let kind = match c.kind {
        VectorKind::Vector => ColumnKind::Vector,
        VectorKind::Halfvec => ColumnKind::Halfvec,
        VectorKind::Bit => ColumnKind::Bit,
        _ => return None,
    };
    let dims = c.dims?;
    let limit = index_translation::index_dim_limit(c.profile, kind)?;
    if dims <= limit {
        return None;
    }
    let fix = match (c.profile, kind) {
        (Profile::Pgvector | Profile::Alloydb | Profile::Vectorchord, ColumnKind::Vector) if dims <= 4000 => {
            format!(": to index it, use profile halfvec (or column_profiles = {{ {} = \"halfvec\" }}), which pgvector indexes up to 4000 dimensions", c.source)
        }
        _ => ": it can be stored and queried, but not indexed by hnsw/ivfflat there".to_string(),
    };
    Some(format!(
        "column {} has {dims} dimensions, more than {} can index as {} ({limit}){fix}",
        display_ident(&c.source),
        c.profile,
        c.target_type
    ))
}

/// One source index on the target: its translation for the profile (DDL to run, or why not).
#[derive(Debug, Clone)]
pub struct IndexPlan {
    pub name: String,
    pub source_definition: String,
    pub translation: Translation,
}

/// Translate every secondary index of the source table for the target. The profile of an
/// index is that of its first plain-column key (per-column profiles), else the table's.
pub fn index_plan(table: &Table, map: &TableMap) -> Vec<IndexPlan> {
    let mut column_types = HashMap::new();
    let mut dims = HashMap::new();
    for c in &table.columns {
        let kind = match VectorKind::of(c) {
            VectorKind::Vector => ColumnKind::Vector,
            VectorKind::Halfvec => ColumnKind::Halfvec,
            VectorKind::Sparsevec => ColumnKind::Sparsevec,
            VectorKind::Bit => ColumnKind::Bit,
            VectorKind::None => ColumnKind::Other,
        };
        column_types.insert(c.name.clone(), kind);
        if kind != ColumnKind::Other && c.type_modifier > 0 {
            dims.insert(c.name.clone(), c.type_modifier as u32);
        }
    }
    table
        .secondary_indexes()
        .map(|index| {
            let translation = match index_translation::parse(&index.definition, &table.printed_name) {
                Err(e) => Translation::Skip { reason: format!("index {}: cannot read its definition ({e}); create it on the target yourself", index.name) },
                Ok(mut def) => {
                    let remapped = map.config.index_opclasses.get(&index.name).and_then(|opclass| {
                        let key = def.keys.first_mut()?;
                        let old = key.opclass.replace(index_translation::Opclass { schema: None, name: opclass.clone() });
                        Some(format!(
                            "index {}: translated as {opclass} instead of {} (index_opclasses): queries must use that operator",
                            index.name,
                            old.map_or_else(|| "the default opclass".to_string(), |o| o.name)
                        ))
                    });
                    let profile = def
                        .keys
                        .first()
                        .and_then(|k| k.column.as_deref())
                        .map_or(map.profile, |c| map.config.profile_for(c));
                    let ctx = TranslateContext {
                        profile,
                        column_types: column_types.clone(),
                        dims: dims.clone(),
                        estimated_rows: table.estimated_rows,
                        alloydb_scann: map.config.alloydb_scann,
                        column_renames: map.config.renames.iter().map(|(a, b)| (a.clone(), b.clone())).collect(),
                    };
                    match (index_translation::translate(&def, &map.target, &ctx), remapped) {
                        (Translation::Create { sql, mut notes, extension }, Some(note)) => {
                            notes.insert(0, note);
                            Translation::Create { sql, notes, extension }
                        }
                        (t, _) => t,
                    }
                }
            };
            IndexPlan { name: index.name.clone(), source_definition: index.definition.clone(), translation }
        })
        .collect()
}

fn target_type(
    profile: Profile,
    kind: VectorKind,
    column: &Column,
    dims: Option<u32>,
    densify: bool,
) -> Result<(String, Conversion, String), String> {
    let same = || {
        Ok((
            column.type_sql.clone(),
            Conversion::Passthrough,
            "binary passthrough".to_string(),
        ))
    };
    let n = dims.map(|d| format!("({d})")).unwrap_or_default();
    if column.generation_expr.is_some()
        && kind != VectorKind::None
        && !matches!(profile, Profile::Pgvector | Profile::Vectorchord | Profile::Alloydb)
    {
        return Err(format!("a generated {} column cannot change type under profile {profile}: exclude it or keep profile pgvector for it", column.type_sql));
    }
    match (profile, kind) {
        (_, VectorKind::None) => same(),
        (Profile::Pgvector | Profile::Vectorchord | Profile::Alloydb, _) => same(),
        (Profile::Halfvec, VectorKind::Vector) => {
            Ok((format!("halfvec{n}"), Conversion::VectorToHalfvec, "f32 -> f16, round to nearest even; |x| > 65504 is an error".into()))
        }
        (Profile::Halfvec, _) => same(),
        (Profile::Lantern, VectorKind::Vector) => {
            Ok(("real[]".into(), Conversion::VectorToRealArray, "vector -> real[] (exact, binary array)".into()))
        }
        (Profile::Lantern, VectorKind::Halfvec) => {
            Ok(("real[]".into(), Conversion::HalfvecToRealArray, "f16 -> f32 (exact widening), binary array".into()))
        }
        (Profile::Lantern, VectorKind::Bit) => Ok((
            "integer[]".into(),
            Conversion::BitToIntArray,
            "bits packed 32 to an integer, first bit in the high bit (for dist_hamming_ops)".into(),
        )),
        (Profile::Lantern, VectorKind::Sparsevec) if densify => Ok((
            "real[]".into(),
            Conversion::SparsevecToRealArray,
            format!("densified to {} floats (densify_sparse = true)", dims.unwrap_or(0)),
        )),
        (Profile::Lantern, VectorKind::Sparsevec) => Err(
            "Lantern has no sparse vector type. Set densify_sparse = true on the table to store it as real[] (every dimension stored), or keep it with column_profiles = { <column> = \"pgvector\" } if pgvector is installed on the target".into(),
        ),
        (Profile::PgvectoRs, kind) => {
            let (ty, conversion) = match kind {
                VectorKind::Vector => (format!("vectors.vector{n}"), Conversion::VectorToPgvectorsText),
                VectorKind::Halfvec => (format!("vectors.vecf16{n}"), Conversion::HalfvecToPgvectorsText),
                VectorKind::Sparsevec => (format!("vectors.svector{n}"), Conversion::SparsevecToPgvectorsText),
                _ => (format!("vectors.bvector{n}"), Conversion::BitToPgvectorsText),
            };
            let how = if kind == VectorKind::Sparsevec {
                "PGVecto.rs text form, indices made 0-based; staged as text and cast on the target"
            } else {
                "PGVecto.rs text form; staged as text and cast on the target"
            };
            Ok((ty, conversion, how.to_string()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::catalog::fixtures::{column as col, table as table_of};

    fn table() -> Table {
        table_of(vec![
            col("id", "int8", -1),
            col("embedding", "vector", 768),
            col("h", "halfvec", 3),
            col("s", "sparsevec", 5),
            col("b", "bit", 40),
            col("note", "text", -1),
        ])
    }

    fn config(profile: Profile) -> TableConfig {
        let mut tc = TableConfig::new(
            QualifiedName::new("public", "items"),
            QualifiedName::new("new", "items"),
        );
        tc.profile = profile;
        tc
    }

    fn types(m: &TableMap) -> Vec<(String, String, Conversion)> {
        m.columns
            .iter()
            .map(|c| (c.target.clone(), c.target_type.clone(), c.conversion))
            .collect()
    }

    #[test]
    fn maps_each_profile() {
        let t = table();
        let m = map_table(&t, &config(Profile::Pgvector));
        assert!(m.problems.is_empty());
        assert!(!m.converts());
        assert_eq!(m.columns[1].target_type, "vector(768)");

        let m = map_table(&t, &config(Profile::Halfvec));
        assert_eq!(
            types(&m)[1],
            ("embedding".into(), "halfvec(768)".into(), Conversion::VectorToHalfvec)
        );
        assert_eq!(types(&m)[2].2, Conversion::Passthrough);
        assert!(m.converts());

        let m = map_table(&t, &config(Profile::Lantern));
        assert_eq!(m.problems.len(), 1, "{:?}", m.problems);
        assert!(m.problems[0].contains("column s") && m.problems[0].contains("densify_sparse = true"));
        let mut tc = config(Profile::Lantern);
        tc.densify_sparse = true;
        let m = map_table(&t, &tc);
        assert!(m.problems.is_empty());
        assert_eq!(
            types(&m)[1..5].to_vec(),
            vec![
                ("embedding".into(), "real[]".into(), Conversion::VectorToRealArray),
                ("h".into(), "real[]".into(), Conversion::HalfvecToRealArray),
                ("s".into(), "real[]".into(), Conversion::SparsevecToRealArray),
                ("b".into(), "integer[]".into(), Conversion::BitToIntArray),
            ]
        );
        for p in [Profile::Vectorchord, Profile::Alloydb] {
            assert!(!map_table(&t, &config(p)).converts());
        }
        let m = map_table(&t, &config(Profile::PgvectoRs));
        assert!(m.problems.is_empty(), "{:?}", m.problems);
        assert!(m.columns[1..5].iter().all(|c| c.conversion.text_output()));
        let types: Vec<&str> = m.columns.iter().map(|c| c.target_type.as_str()).collect();
        assert_eq!(
            types,
            [
                "int8",
                "vectors.vector(768)",
                "vectors.vecf16(3)",
                "vectors.svector(5)",
                "vectors.bvector(40)",
                "text"
            ]
        );
    }

    #[test]
    fn notes_columns_too_wide_to_index() {
        let mut t = table();
        t.columns[1] = col("embedding", "vector", 3072);
        let m = map_table(&t, &config(Profile::Pgvector));
        let note = index_limit_note(&m.columns[1]).unwrap();
        assert!(
            note.contains("3072 dimensions") && note.contains("use profile halfvec"),
            "{note}"
        );
        assert_eq!(
            index_limit_note(&map_table(&t, &config(Profile::Halfvec)).columns[1]),
            None
        );
        assert_eq!(index_limit_note(&m.columns[0]), None);
    }

    #[test]
    fn keys_are_named_readably() {
        assert_eq!(key_text("bigint", &42i64.to_be_bytes()), "42");
        assert_eq!(key_text("integer", &(-7i32).to_be_bytes()), "-7");
        assert_eq!(key_text("character varying(20)", b"it's"), "'it''s'");
        assert_eq!(key_text("uuid", &[0x12; 16]), "12121212-1212-1212-1212-121212121212");
        assert_eq!(key_text("bytea", b"abc"), "<3 bytes>");
        let m = map_table(&table(), &config(Profile::Halfvec));
        let one = 1i64.to_be_bytes();
        assert_eq!(m.describe_key(|k| (k == "id").then_some(&one[..])), "id=1");
    }

    #[test]
    fn renames_excludes_and_per_column_profiles() {
        let t = table();
        let mut tc = config(Profile::Lantern);
        tc.renames.insert("embedding".into(), "vec".into());
        tc.exclude = vec!["s".into()];
        tc.column_profiles.insert("b".into(), Profile::Pgvector);
        let m = map_table(&t, &tc);
        assert!(m.problems.is_empty(), "{:?}", m.problems);
        let names: Vec<&str> = m.columns.iter().map(|c| c.target.as_str()).collect();
        assert_eq!(names, ["id", "vec", "h", "b", "note"]);
        assert_eq!(m.column_by_source("b").unwrap().conversion, Conversion::Passthrough);
        assert_eq!(m.excluded, ["s"]);

        let mut tc = config(Profile::Pgvector);
        tc.renames.insert("id".into(), "item_id".into());
        assert_eq!(map_table(&t, &tc).primary_key, ["item_id"]);
        tc.exclude = vec!["id".into(), "nope".into()];
        let problems = map_table(&t, &tc).problems;
        assert!(
            problems.iter().any(|p| p.contains("part of the primary key")),
            "{problems:?}"
        );
        assert!(
            problems
                .iter()
                .any(|p| p.contains("exclude names column nope") && p.contains("its columns: id, embedding")),
            "{problems:?}"
        );
    }
}
