//! PURE: index definitions. [`parse`] reads what `pg_get_indexdef` prints; [`translate`] re-creates
//! the index on the target table in the target engine's dialect (TARGETS.md section 9).
//!
//! Every statement is `CREATE INDEX IF NOT EXISTS "<name>" ON "<schema>"."<table>" ...`, built after
//! the snapshot copy. `ON ONLY` (an index on a partitioned parent) is dropped, because target
//! tables are plain tables. A `WHERE` predicate is carried over verbatim and `INCLUDE` columns and
//! plain key columns follow `column_renames`. An expression or predicate that mentions a renamed
//! column is skipped: pgvshift does not rewrite SQL expressions.
//!
//! A *vector index* is `hnsw`/`ivfflat` with one key and a pgvector operator class (an `ivfflat`
//! key with no printed operator class is `vector_l2_ops`, the only DEFAULT one). Anything else
//! (btree, gin, gist, hash, brin, ...) is a *plain index* and is re-targeted unchanged on every
//! profile. Lantern and PGVecto.rs change the vector columns' type, so there an index is skipped
//! when its predicate (or a plain index's expression key) reads a vector column other than as
//! `IS [NOT] NULL`.
//!
//! Every note and skip reason starts with `index <name>: ` and says what the user can do.
//!
//! | source (opclass, AM) | `pgvector` | `halfvec` | `lantern` | `pgvecto_rs` | `vectorchord` | `alloydb` (`alloydb_scann`) |
//! |---|---|---|---|---|---|---|
//! | vector l2/ip/cosine, hnsw | same | `halfvec_*_ops`, same WITH | `lantern_hnsw` `dist_l2sq_ops`/`dist_cos_ops`, `m`, `ef_construction` ≤ 400, `ef=64`, `dim=n`; ip: skip | `vectors` `vector_{l2,dot,cos}_ops`, `[indexing.hnsw]` `m` in 4..=128, `ef_construction` in 10..=2000 | `vchordrq`, lists by rows (below) | same (`scann` l2/dot_product/cosine, `num_leaves` = round(√rows)) |
//! | vector l2/ip/cosine, ivfflat | same | `halfvec_*_ops` (default → `halfvec_l2_ops` written out) | `lantern_hnsw` m=16, ef_construction=128; ip: skip | `[indexing.ivf]` `nlist = lists` | `vchordrq` `[build.internal] lists = [lists]` | same (`scann`, `num_leaves = lists`) |
//! | vector/halfvec l1 | same | `halfvec_l1_ops` | skip | skip | pgvector index kept | same |
//! | halfvec_* | same | same | as vector (real[]) | `vecf16_*_ops` | `vchordrq` `halfvec_*_ops` | same |
//! | sparsevec_* | same | skip | skip | `svector_*_ops` (hnsw only) | pgvector index kept | same |
//! | bit_hamming/jaccard | same | same | hamming: `dist_hamming_ops`, `dim` = ⌈n/32⌉; jaccard: skip | `bvector_{hamming,jaccard}_ops` (hnsw only) | pgvector index kept | same |
//! | expression key | same | same | skip | skip | `vchordrq` on the same expression | same (kept as pgvector) |
//! | plain index | same | same | same | same | same | same |
//!
//! Dimension limits ([`index_dim_limit`]): a vector index whose column has more dimensions than
//! the target can index is skipped (halfvec 4000, Lantern 2000).
//!
//! VectorChord lists rule (`vchordrq` from `hnsw`): below 100 000 estimated rows no options at all
//! (`lists = []`, no partitioning); otherwise `lists = [max(1, rows / 500)]`, capped at `16·√rows`
//! (the vendor's sizing guide: N/500 up to 2M rows, then 4–16·√N). Cosine adds
//! `residual_quantization = true` and `spherical_centroids = true`.
//!
//! "pgvector index kept" on VectorChord: `vchord` requires pgvector (`requires = 'vector'`), so the
//! original `hnsw`/`ivfflat` index is always valid there; it is kept with a note rather than lost.
//!
//! ```text
//!   pg_get_indexdef text ──> parse.rs ──> IndexDef
//!        ──> common.rs: translate(): a vector index? renamed columns? retyped columns?
//!            ──> plain index: re-targeted unchanged
//!            ──> vector index: per profile: pgvector (as it was), halfvec.rs, lantern.rs,
//!                pgvecto_rs.rs, vectorchord.rs, alloydb.rs ──> Translation (SQL + notes, or Skip)
//! ```

mod alloydb;
mod common;
mod halfvec;
mod lantern;
mod parse;
mod pgvecto_rs;
#[cfg(test)]
mod tests;
mod vectorchord;

pub use common::{index_dim_limit, translate, ColumnKind, TranslateContext, Translation};
pub use parse::{parse, IndexDef, IndexKey, Opclass};
pub use vectorchord::vectorchord_lists;
