//! Translate: PURE conversions from the source's representation to the target's.
//!
//! ```text
//!   codec.rs   one value: pgvector binary (vector, halfvec, sparsevec, bit) ──> the target
//!              type's binary or text form (halfvec f16, real[], PGVecto.rs), validated
//!   index/     one index: pg_get_indexdef text ──> parse ──> the profile's CREATE INDEX, or a
//!              reason to skip it (one file per profile)
//! ```
//!
//! No I/O and no panics on any input: every malformed value is an error the caller names with
//! the table and the row's key.

mod codec;
pub mod index;

pub use codec::{
    bit_to_pgvectors_text, convert, convert_into, dims, f16_bits_to_f32, f32_to_f16_bits, halfvec_to_pgvectors_text,
    sparsevec_to_pgvectors_text, validate, vector_to_pgvectors_text, Conversion, ConvertError, NonFiniteValue,
    VectorKind, HALF_MAX, PGVECTORS_DENSE_MAX_DIM, PGVECTORS_SVECTOR_MAX_DIM, PGVECTORS_TOKEN_MAX, SPARSEVEC_MAX_DIM,
    SPARSEVEC_MAX_NNZ, VECTOR_MAX_DIM,
};
