//! Target profiles: which engine the target is, and so how vector columns, values and indexes
//! are translated. See docs/targets.md.

use std::fmt;

/// A target engine. Chosen per table (`profile = "lantern"`) and optionally per column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Profile {
    /// Another pgvector database: same types, bytes pass through, same index DDL.
    #[default]
    Pgvector,
    /// pgvector with `vector(n)` stored as `halfvec(n)` (f16; indexable up to 4000 dims).
    Halfvec,
    /// Lantern: `real[]` / `integer[]` columns, `lantern_hnsw` indexes.
    Lantern,
    /// PGVecto.rs: `vectors.vector` / `vecf16` / `svector` / `bvector`, `USING vectors` indexes.
    PgvectoRs,
    /// VectorChord: pgvector's types, `vchordrq` indexes.
    Vectorchord,
    /// AlloyDB / Cloud SQL: pgvector's types; pgvector or ScaNN indexes.
    Alloydb,
}

impl Profile {
    pub const ALL: [Profile; 6] = [
        Profile::Pgvector,
        Profile::Halfvec,
        Profile::Lantern,
        Profile::PgvectoRs,
        Profile::Vectorchord,
        Profile::Alloydb,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Profile::Pgvector => "pgvector",
            Profile::Halfvec => "halfvec",
            Profile::Lantern => "lantern",
            Profile::PgvectoRs => "pgvecto_rs",
            Profile::Vectorchord => "vectorchord",
            Profile::Alloydb => "alloydb",
        }
    }

    pub fn parse(s: &str) -> Option<Profile> {
        Profile::ALL.into_iter().find(|p| p.name() == s)
    }
}

impl fmt::Display for Profile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for p in Profile::ALL {
            assert_eq!(Profile::parse(p.name()), Some(p));
        }
        assert_eq!(Profile::parse("pgvectors"), None);
        assert_eq!(Profile::default(), Profile::Pgvector);
    }
}
