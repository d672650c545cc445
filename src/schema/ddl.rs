//! PURE: target table DDL from a [`TableMap`] (no I/O, unit-tested). Index DDL is translated
//! per profile in [`crate::translate::index`].

use crate::schema::mapping::TableMap;
use crate::sql::{quote_ident, QualifiedName};

/// `CREATE TABLE IF NOT EXISTS` for the target: every mapped column with its target type
/// (typmod included, so `vector(768)` stays `vector(768)`, or becomes `halfvec(768)` / `real[]`
/// under a profile), NOT NULL, stored generated columns, and the primary key. Secondary indexes
/// are built separately, after the copy.
pub fn create_table_sql(map: &TableMap) -> String {
    let mut items: Vec<String> = map
        .columns
        .iter()
        .map(|c| {
            let mut item = format!("{} {}", quote_ident(&c.target), c.target_type);
            if let Some(expr) = &c.generation_expr {
                item.push_str(&format!(" GENERATED ALWAYS AS ({expr}) STORED"));
            }
            if c.not_null {
                item.push_str(" NOT NULL");
            }
            item
        })
        .collect();
    if !map.primary_key.is_empty() {
        let cols: Vec<String> = map.primary_key.iter().map(|c| quote_ident(c)).collect();
        items.push(format!("PRIMARY KEY ({})", cols.join(", ")));
    }
    format!(
        "CREATE TABLE IF NOT EXISTS {} (\n    {}\n)",
        map.target.quoted(),
        items.join(",\n    ")
    )
}

/// `CREATE SCHEMA IF NOT EXISTS` for a target schema other than `public`.
pub fn create_schema_sql(target: &QualifiedName) -> Option<String> {
    (target.schema != "public").then(|| format!("CREATE SCHEMA IF NOT EXISTS {}", quote_ident(&target.schema)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::catalog::fixtures::{column, table as table_of};
    use crate::schema::catalog::Table;

    fn table() -> Table {
        let mut id = column("id", "bigint", -1);
        id.not_null = true;
        let mut gen = column("n", "integer", -1);
        gen.generation_expr = Some("(id * 2)".into());
        table_of(vec![id, column("Emb \"x\"", "vector", 768), gen])
    }

    #[test]
    fn renders_create_table_with_typmods_keys_and_generated_columns() {
        let mut tc =
            crate::config::TableConfig::new(QualifiedName::new("public", "items"), QualifiedName::new("My S", "T"));
        tc.profile = crate::config::profile::Profile::Halfvec;
        let sql = create_table_sql(&crate::schema::mapping::map_table(&table(), &tc));
        assert_eq!(
            sql,
            "CREATE TABLE IF NOT EXISTS \"My S\".\"T\" (\n    \"id\" bigint NOT NULL,\n    \"Emb \"\"x\"\"\" halfvec(768),\n    \"n\" integer GENERATED ALWAYS AS ((id * 2)) STORED,\n    PRIMARY KEY (\"id\")\n)"
        );
        assert_eq!(create_schema_sql(&QualifiedName::new("public", "t")), None);
        assert_eq!(
            create_schema_sql(&QualifiedName::new("My S", "t")).unwrap(),
            "CREATE SCHEMA IF NOT EXISTS \"My S\""
        );
    }
}
