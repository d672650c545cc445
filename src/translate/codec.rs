//! Value conversions between vector representations: PostgreSQL binary in, binary (or text) out.
//!
//! Every function here is pure: it takes one non-NULL column value exactly as the source server's
//! binary send function produced it (from `COPY … (FORMAT binary)` or pgoutput with
//! `binary 'true'`) and returns what the *target* type's binary recv function (or text input
//! function) accepts. Nothing here panics on any input: malformed lengths, negative dimensions,
//! out-of-range or unsorted sparse indices and NaN/±Inf elements are all [`ConvertError`]s. The
//! caller adds the table and row key to the message. Errors never carry more than one element
//! value, and their `Display` prints no element value at all (values are private data).
//!
//! # Input layouts (network byte order, as pgvector 0.8 / PostgreSQL send them)
//!
//! ```text
//! vector     vector_send    i16 dim (1..16000) | i16 unused = 0 | dim × f32             4 + 4·dim bytes
//! halfvec    halfvec_send   i16 dim (1..16000) | i16 unused = 0 | dim × u16 binary16    4 + 2·dim bytes
//! sparsevec  sparsevec_send i32 dim (1..1e9) | i32 nnz (0..min(dim,16000)) | i32 unused = 0
//!                           | nnz × i32 index (0-based, strictly ascending, < dim)
//!                           | nnz × f32 value (finite, non-zero)                      12 + 8·nnz bytes
//! bit/varbit varbit_send    i32 bitlen (>= 0) | ceil(bitlen/8) bytes, first bit = MSB of byte 0
//! ```
//! NaN and ±Inf are rejected everywhere, as pgvector's own recv functions do. Pad bits of a bit
//! string are ignored (PostgreSQL's `varbit_recv` clears them too).
//!
//! # Output layouts
//!
//! `real[]` and `integer[]` are what PostgreSQL's `array_recv` accepts (and `array_send` produces,
//! checked byte for byte against a PostgreSQL 15 server):
//!
//! ```text
//! i32 ndim = 1 | i32 has_nulls = 0 | u32 element type OID (700 float4, 23 int4)
//! | i32 length | i32 lower bound = 1 | length × (i32 4 | 4 bytes big-endian element)
//! ```
//! An empty array (only from a zero-length bit string) is `i32 ndim = 0 | i32 0 | u32 OID`.
//!
//! | [`Conversion`] | input | output |
//! |---|---|---|
//! | `Passthrough` | any | the same bytes |
//! | `VectorToHalfvec` | vector | halfvec: same header, each f32 rounded to binary16 (nearest, ties to even); \|x\| ≥ 65520 is an error |
//! | `VectorToRealArray` | vector | real[] of dim float4 (bit-exact) |
//! | `HalfvecToRealArray` | halfvec | real[] of dim float4 (exact widening) |
//! | `HalfvecToVector` | halfvec | vector: same header, each binary16 widened exactly to f32 |
//! | `BitToIntArray` | bit/varbit | integer[] of ceil(bitlen/32) int4: bit i → word i/32, bit 31 − i%32 (MSB-first), tail bits zero |
//! | `SparsevecToRealArray` | sparsevec | real[] of dim float4, zeros where no entry (dim ≤ 16000) |
//! | `SparsevecToHalfvec` | sparsevec | halfvec of dim, densified and rounded as above (dim ≤ 16000) |
//!
//! These match the server's own casts: `convert(VectorToHalfvec, vector_send(v)) ==
//! halfvec_send(v::halfvec)`, `VectorToRealArray` == `array_send(v::real[])`, `HalfvecToRealArray`
//! == `array_send(h::real[])`, `HalfvecToVector` == `vector_send(h::vector)`, `SparsevecToHalfvec`
//! == `halfvec_send(s::halfvec)`, `SparsevecToRealArray` == `array_send(s::vector::real[])` and
//! `BitToIntArray` == the words PostgreSQL's own `bit(32)::int4` cast gives for each zero-padded
//! 32-bit slice. The golden tests at the bottom hold bytes captured from PostgreSQL 15 +
//! pgvector 0.8.0.
//!
//! # PGVecto.rs text forms
//!
//! PGVecto.rs's binary format is native-endian and not pgvector's, so its values go as text:
//!
//! ```text
//! vectors.vector / vecf16   [1, 2.5, -3]          (", " separated)
//! vectors.svector           {0:1.5, 2:-2}/5       (0-based indices, like pgvector's *binary* form)
//! vectors.bvector           [1, 0, 1]
//! ```
//! Each number is Rust's shortest round-trip `Display` of the f32 (for halfvec: of the exactly
//! widened f32, which parses back to the same binary16), switching to exponent form (`1e-45`)
//! when the plain form would be longer than [`PGVECTORS_TOKEN_MAX`] characters: pgvecto.rs reads
//! a number into a 48-byte buffer that some releases also put a sentinel byte in.

use std::fmt::{self, Write as _};

use bytes::{BufMut, Bytes, BytesMut};

/// pgvector's `VECTOR_MAX_DIM` (and `HALFVEC_MAX_DIM`): the most dimensions a vector or halfvec holds.
pub const VECTOR_MAX_DIM: u32 = 16_000;
/// pgvector's `SPARSEVEC_MAX_DIM`.
pub const SPARSEVEC_MAX_DIM: u32 = 1_000_000_000;
/// pgvector's `SPARSEVEC_MAX_NNZ`.
pub const SPARSEVEC_MAX_NNZ: u32 = 16_000;
/// The largest finite binary16 value; anything with |x| ≥ 65520 rounds to infinity.
pub const HALF_MAX: f32 = 65504.0;
/// The longest number token written into PGVecto.rs text (its parser's buffer is 48 bytes, one
/// of which is a sentinel in some releases).
pub const PGVECTORS_TOKEN_MAX: usize = 47;
/// Most dimensions of a PGVecto.rs `svector`.
pub const PGVECTORS_SVECTOR_MAX_DIM: u64 = 1_048_575;
/// Most dimensions of a PGVecto.rs `bvector` (and `vector`/`vecf16`).
pub const PGVECTORS_DENSE_MAX_DIM: u64 = 65_535;

/// PostgreSQL's `FLOAT4OID`.
const FLOAT4_OID: u32 = 700;
/// PostgreSQL's `INT4OID`.
const INT4_OID: u32 = 23;
/// `array_send` header for a one-dimensional array: ndim, has_nulls, element OID, length, lower bound.
const ARRAY_HEADER_LEN: usize = 20;

/// The pgvector-side types a value can arrive as.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum VectorKind {
    Vector,
    Halfvec,
    Sparsevec,
    /// `bit(n)` or `varbit` (same binary form).
    Bit,
}

impl fmt::Display for VectorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            VectorKind::Vector => "vector",
            VectorKind::Halfvec => "halfvec",
            VectorKind::Sparsevec => "sparsevec",
            VectorKind::Bit => "bit",
        })
    }
}

/// How one column's values are rewritten on the way to the target. See the module docs for the
/// byte layouts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum Conversion {
    /// Same type on both sides: bytes unchanged (not even validated).
    Passthrough,
    /// vector(n) -> halfvec(n): f32 -> f16 round-to-nearest-even; |x| beyond half range is an error (never inf).
    VectorToHalfvec,
    /// vector(n) -> real[] (Lantern).
    VectorToRealArray,
    /// halfvec(n) -> real[] (exact widening).
    HalfvecToRealArray,
    /// bit(n) / varbit -> integer[] of ceil(n/32) words for Lantern's dist_hamming_ops: bit i of the
    /// input goes to word i/32, bit position 31 - (i % 32) (MSB-first, like the input), tail bits
    /// zero; each word is an i32 (two's complement of the u32).
    BitToIntArray,
    /// sparsevec(n) -> real[] of n elements (densify; only when the user set densify_sparse).
    SparsevecToRealArray,
    /// sparsevec(n) -> halfvec(n) densified (pgvector has this cast).
    SparsevecToHalfvec,
    /// halfvec -> vector (exact widening).
    HalfvecToVector,
    /// vector -> PGVecto.rs `vectors.vector` TEXT form (`[1, 2.5, -3]`). Text output: bound as a
    /// text parameter, or staged in a text column and cast on the target.
    VectorToPgvectorsText,
    /// halfvec -> `vectors.vecf16` text form.
    HalfvecToPgvectorsText,
    /// sparsevec -> `vectors.svector` text form (0-based indices: `{0:1.5, 2:-2}/5`).
    SparsevecToPgvectorsText,
    /// bit -> `vectors.bvector` text form (`[0, 1, 1]`).
    BitToPgvectorsText,
}

impl Conversion {
    /// The source type this conversion reads, or `None` for [`Conversion::Passthrough`] (any type).
    pub fn input_kind(self) -> Option<VectorKind> {
        match self {
            Conversion::Passthrough => None,
            Conversion::VectorToHalfvec | Conversion::VectorToRealArray => Some(VectorKind::Vector),
            Conversion::HalfvecToRealArray | Conversion::HalfvecToVector => Some(VectorKind::Halfvec),
            Conversion::BitToIntArray => Some(VectorKind::Bit),
            Conversion::SparsevecToRealArray | Conversion::SparsevecToHalfvec => Some(VectorKind::Sparsevec),
            Conversion::VectorToPgvectorsText => Some(VectorKind::Vector),
            Conversion::HalfvecToPgvectorsText => Some(VectorKind::Halfvec),
            Conversion::SparsevecToPgvectorsText => Some(VectorKind::Sparsevec),
            Conversion::BitToPgvectorsText => Some(VectorKind::Bit),
        }
    }

    /// Whether the output is the target type's TEXT input form (not its binary recv form).
    pub fn text_output(self) -> bool {
        matches!(
            self,
            Conversion::VectorToPgvectorsText
                | Conversion::HalfvecToPgvectorsText
                | Conversion::SparsevecToPgvectorsText
                | Conversion::BitToPgvectorsText
        )
    }

    /// The target column type's name as it would appear in DDL (without typmod), or `None` for
    /// [`Conversion::Passthrough`] (the source type).
    pub fn output_type(self) -> Option<&'static str> {
        match self {
            Conversion::Passthrough => None,
            Conversion::VectorToHalfvec | Conversion::SparsevecToHalfvec => Some("halfvec"),
            Conversion::VectorToRealArray | Conversion::HalfvecToRealArray | Conversion::SparsevecToRealArray => {
                Some("real[]")
            }
            Conversion::BitToIntArray => Some("integer[]"),
            Conversion::HalfvecToVector => Some("vector"),
            Conversion::VectorToPgvectorsText => Some("vectors.vector"),
            Conversion::HalfvecToPgvectorsText => Some("vectors.vecf16"),
            Conversion::SparsevecToPgvectorsText => Some("vectors.svector"),
            Conversion::BitToPgvectorsText => Some("vectors.bvector"),
        }
    }
}

/// NaN or an infinity, where pgvector allows neither.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NonFiniteValue {
    Nan,
    Infinity,
}

impl fmt::Display for NonFiniteValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            NonFiniteValue::Nan => "NaN",
            NonFiniteValue::Infinity => "infinite value",
        })
    }
}

/// Why one value could not be converted. The caller adds the table, column and row key.
#[derive(Debug, Clone, thiserror::Error, PartialEq)]
pub enum ConvertError {
    /// Shorter than the fixed header of its type.
    #[error("malformed {kind} value: {len} bytes, shorter than its {header}-byte header")]
    ShortHeader {
        kind: VectorKind,
        len: usize,
        header: usize,
    },
    /// The total length does not match what the header announces.
    #[error("malformed {kind} value: {len} bytes for {count} {unit} (expected {expected} bytes)")]
    Length {
        kind: VectorKind,
        len: usize,
        count: u64,
        unit: &'static str,
        expected: u64,
    },
    /// A dimension count outside what pgvector allows.
    #[error("malformed {kind} value: {dims} dimensions (pgvector allows 1 to {max})")]
    Dims { kind: VectorKind, dims: i64, max: u32 },
    /// A non-zero "unused" header field (pgvector's recv rejects these).
    #[error("malformed {kind} value: unused header field is {unused}, expected 0")]
    Unused { kind: VectorKind, unused: i32 },
    /// NaN or ±Inf, which pgvector never stores.
    #[error("{what} in {kind} value (element {index}, 0-based)")]
    NonFinite {
        kind: VectorKind,
        index: u64,
        what: NonFiniteValue,
    },
    /// An element whose magnitude rounds to infinity in binary16. `value` is kept for callers;
    /// it is deliberately not part of the message (values stay out of logs).
    #[error(
        "element {index} (0-based) is beyond halfvec's range (largest finite 65504, |x| >= 65520 rounds to \
         infinity): use profile pgvector, or scale the embedding"
    )]
    HalfvecOverflow { index: u64, value: f32 },
    /// A sparsevec whose non-zero count is negative, above the dimension count or above 16000.
    #[error("malformed sparsevec value: {nnz} non-zero elements for {dims} dimensions (pgvector allows 0 to min(dimensions, 16000))")]
    SparseNnz { nnz: i64, dims: i64 },
    /// A sparsevec index outside `0..dims` (binary indices are 0-based).
    #[error("sparsevec index {index} out of range for {dims} dimensions")]
    SparseIndexOutOfRange { index: i64, dims: i64 },
    /// Sparsevec indices must be strictly ascending (this also rules out duplicates).
    #[error("malformed sparsevec value: indices not strictly ascending at entry {position} ({previous} then {index})")]
    SparseUnsorted { position: u64, previous: i64, index: i64 },
    /// pgvector's sparsevec binary form never holds an explicit zero.
    #[error("malformed sparsevec value: explicit zero value at entry {position}")]
    SparseZero { position: u64 },
    /// A bit string with a negative length.
    #[error("malformed bit value: negative bit length {bits}")]
    BitLength { bits: i64 },
    /// A well-formed value whose size the target type cannot hold.
    #[error("{kind} value of {dims} dimensions cannot become {target}, which holds {min} to {max} dimensions")]
    DimsOutOfRange {
        kind: VectorKind,
        dims: u64,
        target: &'static str,
        min: u64,
        max: u64,
    },
}

// ------------------------------------------------------------------------------------------------
// binary16

/// f32 -> IEEE binary16 bits, round to nearest, ties to even; `None` when the result would be ±inf
/// (|x| >= 65520) or `x` is NaN. Subnormal halves and signed zeros come out as IEEE says
/// (`-0.0` and tiny negatives give `0x8000`).
pub fn f32_to_f16_bits(x: f32) -> Option<u16> {
    let bits = x.to_bits();
    let sign = ((bits >> 16) & 0x8000) as u16;
    let abs = bits & 0x7fff_ffff;
    // 0x477f_f000 is 65520.0, the midpoint between 65504 (odd significand) and 65536 (= inf in
    // binary16): ties go to even, i.e. to inf. NaN and inf bit patterns are above it too.
    if abs >= 0x477f_f000 {
        return None;
    }
    let exp = abs >> 23; // biased f32 exponent, 0..=142 here
    let man = abs & 0x007f_ffff;
    if exp >= 113 {
        // Normal binary16 (unbiased exponent -14..=15): rebias by 127 - 15 = 112, keep the top
        // 10 mantissa bits, round on the 13 dropped ones. A carry out of the mantissa bumps the
        // exponent, which is the right result; it cannot reach inf below 65520.
        let h = ((exp - 112) << 10) | (man >> 13);
        let rest = man & 0x1fff;
        let h = if rest > 0x1000 || (rest == 0x1000 && h & 1 == 1) {
            h + 1
        } else {
            h
        };
        return Some(sign | h as u16);
    }
    if exp < 102 {
        // |x| < 2^-25, half the smallest subnormal: rounds to a (signed) zero. This includes
        // every f32 subnormal (exp == 0).
        return Some(sign);
    }
    // Subnormal binary16, counted in units of 2^-24. |x| = sig · 2^(exp-150), so the unit count
    // is sig · 2^(exp-126) = sig >> (126 - exp), with shift in 14..=24. A carry to 0x400 gives the
    // smallest normal, which is again right.
    let sig = man | 0x0080_0000;
    let shift = 126 - exp;
    let m = sig >> shift;
    let rest = sig & ((1 << shift) - 1);
    let halfway = 1 << (shift - 1);
    let m = if rest > halfway || (rest == halfway && m & 1 == 1) {
        m + 1
    } else {
        m
    };
    Some(sign | m as u16)
}

/// IEEE binary16 bits -> f32 (exact: every binary16 value, subnormals included, is an f32).
/// Infinities stay infinities and NaNs stay NaNs (payload shifted into place).
pub fn f16_bits_to_f32(h: u16) -> f32 {
    let sign = u32::from(h & 0x8000) << 16;
    let exp = u32::from((h >> 10) & 0x1f);
    let man = u32::from(h & 0x03ff);
    let bits = match exp {
        0 if man == 0 => sign,
        0 => {
            // man · 2^-24 with man in 1..1024: normalise on its highest set bit p (0..=9).
            let p = 31 - man.leading_zeros();
            sign | ((p + 103) << 23) | ((man << (23 - p)) & 0x007f_ffff)
        }
        31 => sign | 0x7f80_0000 | (man << 13),
        _ => sign | ((exp + 112) << 23) | (man << 13),
    };
    f32::from_bits(bits)
}

// ------------------------------------------------------------------------------------------------
// Input parsing (validates everything pgvector's recv functions validate)

fn be_i16(b: &[u8], at: usize) -> i16 {
    i16::from_be_bytes([b[at], b[at + 1]])
}

fn be_i32(b: &[u8], at: usize) -> i32 {
    i32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

fn be_f32(b: &[u8]) -> f32 {
    f32::from_be_bytes([b[0], b[1], b[2], b[3]])
}

fn check_finite(kind: VectorKind, index: usize, x: f32) -> Result<f32, ConvertError> {
    if x.is_nan() {
        Err(ConvertError::NonFinite {
            kind,
            index: index as u64,
            what: NonFiniteValue::Nan,
        })
    } else if x.is_infinite() {
        Err(ConvertError::NonFinite {
            kind,
            index: index as u64,
            what: NonFiniteValue::Infinity,
        })
    } else {
        Ok(x)
    }
}

/// A structurally valid vector or halfvec: `dim` elements of `elem_size` bytes each in `body`.
struct Dense<'a> {
    kind: VectorKind,
    dim: usize,
    body: &'a [u8],
}

impl<'a> Dense<'a> {
    /// Header and length checks (`dim` in 1..=16000, unused = 0, exact length).
    fn parse(kind: VectorKind, input: &'a [u8]) -> Result<Self, ConvertError> {
        let elem_size: usize = if kind == VectorKind::Halfvec { 2 } else { 4 };
        if input.len() < 4 {
            return Err(ConvertError::ShortHeader {
                kind,
                len: input.len(),
                header: 4,
            });
        }
        let dim = be_i16(input, 0);
        let unused = be_i16(input, 2);
        if dim < 1 || dim as u32 > VECTOR_MAX_DIM {
            return Err(ConvertError::Dims {
                kind,
                dims: dim.into(),
                max: VECTOR_MAX_DIM,
            });
        }
        if unused != 0 {
            return Err(ConvertError::Unused {
                kind,
                unused: unused.into(),
            });
        }
        let dim = dim as usize;
        let expected = 4 + elem_size * dim;
        if input.len() != expected {
            return Err(ConvertError::Length {
                kind,
                len: input.len(),
                count: dim as u64,
                unit: "dimensions",
                expected: expected as u64,
            });
        }
        Ok(Dense {
            kind,
            dim,
            body: &input[4..],
        })
    }

    /// The elements as f32 (halfvec widened exactly), each checked finite.
    fn values(&self) -> impl Iterator<Item = Result<f32, ConvertError>> + 'a {
        let kind = self.kind;
        let elem_size = if kind == VectorKind::Halfvec { 2 } else { 4 };
        self.body.chunks_exact(elem_size).enumerate().map(move |(i, c)| {
            let x = if elem_size == 2 {
                f16_bits_to_f32(u16::from_be_bytes([c[0], c[1]]))
            } else {
                be_f32(c)
            };
            check_finite(kind, i, x)
        })
    }
}

/// A structurally valid sparsevec.
struct Sparse<'a> {
    dim: usize,
    nnz: usize,
    indices: &'a [u8],
    values: &'a [u8],
}

impl<'a> Sparse<'a> {
    /// Header and length checks only (see [`Sparse::entries`] for the rest).
    fn parse(input: &'a [u8]) -> Result<Self, ConvertError> {
        let kind = VectorKind::Sparsevec;
        if input.len() < 12 {
            return Err(ConvertError::ShortHeader {
                kind,
                len: input.len(),
                header: 12,
            });
        }
        let dim = be_i32(input, 0);
        let nnz = be_i32(input, 4);
        let unused = be_i32(input, 8);
        if dim < 1 || dim as u32 > SPARSEVEC_MAX_DIM {
            return Err(ConvertError::Dims {
                kind,
                dims: dim.into(),
                max: SPARSEVEC_MAX_DIM,
            });
        }
        if nnz < 0 || nnz > dim || nnz as u32 > SPARSEVEC_MAX_NNZ {
            return Err(ConvertError::SparseNnz {
                nnz: nnz.into(),
                dims: dim.into(),
            });
        }
        if unused != 0 {
            return Err(ConvertError::Unused { kind, unused });
        }
        let nnz = nnz as usize;
        let expected = 12 + 8 * nnz;
        if input.len() != expected {
            return Err(ConvertError::Length {
                kind,
                len: input.len(),
                count: nnz as u64,
                unit: "non-zero elements",
                expected: expected as u64,
            });
        }
        Ok(Sparse {
            dim: dim as usize,
            nnz,
            indices: &input[12..12 + 4 * nnz],
            values: &input[12 + 4 * nnz..],
        })
    }

    /// `(0-based index, value)` pairs, each checked: index in range and strictly above the
    /// previous one, value finite and non-zero.
    fn entries(&self) -> impl Iterator<Item = Result<(usize, f32), ConvertError>> + 'a {
        let dim = self.dim as i64;
        let mut previous: Option<i64> = None;
        self.indices
            .chunks_exact(4)
            .zip(self.values.chunks_exact(4))
            .enumerate()
            .map(move |(pos, (ib, vb))| {
                let index = i64::from(be_i32(ib, 0));
                if index < 0 || index >= dim {
                    return Err(ConvertError::SparseIndexOutOfRange { index, dims: dim });
                }
                if let Some(prev) = previous {
                    if index <= prev {
                        return Err(ConvertError::SparseUnsorted {
                            position: pos as u64,
                            previous: prev,
                            index,
                        });
                    }
                }
                previous = Some(index);
                let value = check_finite(VectorKind::Sparsevec, index as usize, be_f32(vb))?;
                if value == 0.0 {
                    return Err(ConvertError::SparseZero { position: pos as u64 });
                }
                Ok((index as usize, value))
            })
    }

    /// Refuse to densify more than pgvector's own sparsevec -> vector/halfvec casts would.
    fn check_densify(&self, target: &'static str) -> Result<(), ConvertError> {
        if self.dim as u64 > u64::from(VECTOR_MAX_DIM) {
            return Err(ConvertError::DimsOutOfRange {
                kind: VectorKind::Sparsevec,
                dims: self.dim as u64,
                target,
                min: 1,
                max: u64::from(VECTOR_MAX_DIM),
            });
        }
        Ok(())
    }
}

/// A structurally valid bit string.
struct Bits<'a> {
    len: usize,
    bytes: &'a [u8],
}

impl<'a> Bits<'a> {
    fn parse(input: &'a [u8]) -> Result<Self, ConvertError> {
        let kind = VectorKind::Bit;
        if input.len() < 4 {
            return Err(ConvertError::ShortHeader {
                kind,
                len: input.len(),
                header: 4,
            });
        }
        let bits = be_i32(input, 0);
        if bits < 0 {
            return Err(ConvertError::BitLength { bits: bits.into() });
        }
        let len = bits as usize;
        let expected = 4 + len.div_ceil(8);
        if input.len() != expected {
            return Err(ConvertError::Length {
                kind,
                len: input.len(),
                count: len as u64,
                unit: "bits",
                expected: expected as u64,
            });
        }
        Ok(Bits {
            len,
            bytes: &input[4..],
        })
    }

    /// Bit `i` (0-based, `i < len`): the MSB of byte 0 is bit 0.
    fn get(&self, i: usize) -> bool {
        self.bytes[i / 8] & (0x80 >> (i % 8)) != 0
    }
}

// ------------------------------------------------------------------------------------------------
// Output helpers

fn put_array_header(out: &mut BytesMut, elem_oid: u32, len: usize) {
    if len == 0 {
        out.put_i32(0); // ndim
        out.put_i32(0); // has_nulls
        out.put_u32(elem_oid);
        return;
    }
    out.put_i32(1); // ndim
    out.put_i32(0); // has_nulls
    out.put_u32(elem_oid);
    out.put_i32(len as i32); // dimension length (len <= 16000 or a bit count / 32)
    out.put_i32(1); // lower bound
}

fn to_half(index: usize, x: f32) -> Result<u16, ConvertError> {
    f32_to_f16_bits(x).ok_or(ConvertError::HalfvecOverflow {
        index: index as u64,
        value: x,
    })
}

// ------------------------------------------------------------------------------------------------
// Public conversions

/// Convert one non-NULL value. See the module docs for the layouts.
pub fn convert(conversion: Conversion, input: &[u8]) -> Result<Bytes, ConvertError> {
    let mut out = BytesMut::new();
    convert_into(conversion, input, &mut out)?;
    Ok(out.freeze())
}

/// Like [`convert`], appending the result to `out` (for building a COPY buffer without one
/// allocation per value). On error `out` is left as it was.
pub fn convert_into(conversion: Conversion, input: &[u8], out: &mut BytesMut) -> Result<(), ConvertError> {
    let start = out.len();
    let result = write_conversion(conversion, input, out);
    if result.is_err() {
        out.truncate(start);
    }
    result
}

fn write_conversion(conversion: Conversion, input: &[u8], out: &mut BytesMut) -> Result<(), ConvertError> {
    match conversion {
        Conversion::Passthrough => out.extend_from_slice(input),
        Conversion::VectorToPgvectorsText => out.extend_from_slice(vector_to_pgvectors_text(input)?.as_bytes()),
        Conversion::HalfvecToPgvectorsText => out.extend_from_slice(halfvec_to_pgvectors_text(input)?.as_bytes()),
        Conversion::SparsevecToPgvectorsText => out.extend_from_slice(sparsevec_to_pgvectors_text(input)?.as_bytes()),
        Conversion::BitToPgvectorsText => out.extend_from_slice(bit_to_pgvectors_text(input)?.as_bytes()),
        Conversion::VectorToHalfvec => {
            let v = Dense::parse(VectorKind::Vector, input)?;
            out.reserve(4 + 2 * v.dim);
            out.put_i16(v.dim as i16);
            out.put_i16(0);
            for (i, x) in v.values().enumerate() {
                out.put_u16(to_half(i, x?)?);
            }
        }
        Conversion::HalfvecToVector => {
            let v = Dense::parse(VectorKind::Halfvec, input)?;
            out.reserve(4 + 4 * v.dim);
            out.put_i16(v.dim as i16);
            out.put_i16(0);
            for x in v.values() {
                out.put_f32(x?);
            }
        }
        Conversion::VectorToRealArray | Conversion::HalfvecToRealArray => {
            let kind = conversion.input_kind().unwrap_or(VectorKind::Vector);
            let v = Dense::parse(kind, input)?;
            out.reserve(ARRAY_HEADER_LEN + 8 * v.dim);
            put_array_header(out, FLOAT4_OID, v.dim);
            for x in v.values() {
                out.put_i32(4);
                out.put_f32(x?);
            }
        }
        Conversion::BitToIntArray => {
            let b = Bits::parse(input)?;
            let words = b.len.div_ceil(32);
            out.reserve(ARRAY_HEADER_LEN + 8 * words);
            put_array_header(out, INT4_OID, words);
            for w in 0..words {
                let mut word = [0u8; 4];
                let from = (4 * w).min(b.bytes.len());
                let to = (4 * w + 4).min(b.bytes.len());
                word[..to - from].copy_from_slice(&b.bytes[from..to]);
                let valid = (b.len - 32 * w).min(32) as u32; // 1..=32 bits of this word are real
                let mask = u32::MAX << (32 - valid);
                out.put_i32(4);
                out.put_u32(u32::from_be_bytes(word) & mask);
            }
        }
        Conversion::SparsevecToRealArray => {
            let s = Sparse::parse(input)?;
            s.check_densify("real[] (densified, like pgvector's sparsevec -> vector cast)")?;
            out.reserve(ARRAY_HEADER_LEN + 8 * s.dim);
            put_array_header(out, FLOAT4_OID, s.dim);
            let body = out.len();
            for _ in 0..s.dim {
                out.put_i32(4);
                out.put_f32(0.0);
            }
            for e in s.entries() {
                let (i, x) = e?;
                let at = body + 8 * i + 4;
                out[at..at + 4].copy_from_slice(&x.to_be_bytes());
            }
        }
        Conversion::SparsevecToHalfvec => {
            let s = Sparse::parse(input)?;
            s.check_densify("halfvec")?;
            out.reserve(4 + 2 * s.dim);
            out.put_i16(s.dim as i16);
            out.put_i16(0);
            let body = out.len();
            out.put_bytes(0, 2 * s.dim);
            for e in s.entries() {
                let (i, x) = e?;
                let h = to_half(i, x)?;
                out[body + 2 * i..body + 2 * i + 2].copy_from_slice(&h.to_be_bytes());
            }
        }
    }
    Ok(())
}

/// Dimensions of a vector/halfvec/sparsevec value, or the bit length of a bit/varbit value (for
/// checks against typmods). Checks the header and the total length, not the elements
/// (see [`validate`] for that).
pub fn dims(kind: VectorKind, input: &[u8]) -> Result<u32, ConvertError> {
    Ok(match kind {
        VectorKind::Vector | VectorKind::Halfvec => Dense::parse(kind, input)?.dim as u32,
        VectorKind::Sparsevec => Sparse::parse(input)?.dim as u32,
        VectorKind::Bit => Bits::parse(input)?.len as u32,
    })
}

/// Check a value the way pgvector's recv function would (header, length, every element; sparse
/// indices in range and strictly ascending, no explicit zeros). Bit strings only have a header
/// and a length to check.
pub fn validate(kind: VectorKind, input: &[u8]) -> Result<(), ConvertError> {
    match kind {
        VectorKind::Vector | VectorKind::Halfvec => Dense::parse(kind, input)?.values().try_for_each(|x| x.map(drop)),
        VectorKind::Sparsevec => Sparse::parse(input)?.entries().try_for_each(|e| e.map(drop)),
        VectorKind::Bit => Bits::parse(input).map(drop),
    }
}

// ------------------------------------------------------------------------------------------------
// PGVecto.rs text forms

/// Append one number as PGVecto.rs reads it: shortest round-trip decimal, exponent form when the
/// plain form is longer than [`PGVECTORS_TOKEN_MAX`].
fn push_pgvectors_number(out: &mut String, x: f32) {
    let start = out.len();
    let _ = write!(out, "{x}");
    if out.len() - start > PGVECTORS_TOKEN_MAX {
        out.truncate(start);
        let _ = write!(out, "{x:e}");
    }
}

fn dense_to_pgvectors_text(kind: VectorKind, input: &[u8]) -> Result<String, ConvertError> {
    let v = Dense::parse(kind, input)?;
    let mut out = String::with_capacity(2 + 12 * v.dim);
    out.push('[');
    for (i, x) in v.values().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        push_pgvectors_number(&mut out, x?);
    }
    out.push(']');
    Ok(out)
}

/// pgvector `vector` binary -> PGVecto.rs `vectors.vector` text input form: `[1, 2.5, -3]`.
pub fn vector_to_pgvectors_text(input: &[u8]) -> Result<String, ConvertError> {
    dense_to_pgvectors_text(VectorKind::Vector, input)
}

/// pgvector `halfvec` binary -> PGVecto.rs `vectors.vecf16` text: `[1, 0.099975586]`. Each element
/// is printed as its exact f32 value, which PGVecto.rs parses back to the same binary16.
pub fn halfvec_to_pgvectors_text(input: &[u8]) -> Result<String, ConvertError> {
    dense_to_pgvectors_text(VectorKind::Halfvec, input)
}

/// pgvector `sparsevec` binary -> PGVecto.rs `vectors.svector` text `{0:1.5, 2:3}/5`, with the
/// 0-based indices PGVecto.rs expects (pgvector's binary form is 0-based too; its text form is
/// 1-based). A sparsevec with no entries becomes `{}/5`.
pub fn sparsevec_to_pgvectors_text(input: &[u8]) -> Result<String, ConvertError> {
    let s = Sparse::parse(input)?;
    if s.dim as u64 > PGVECTORS_SVECTOR_MAX_DIM {
        return Err(ConvertError::DimsOutOfRange {
            kind: VectorKind::Sparsevec,
            dims: s.dim as u64,
            target: "a PGVecto.rs svector",
            min: 1,
            max: PGVECTORS_SVECTOR_MAX_DIM,
        });
    }
    let mut out = String::with_capacity(8 + 20 * s.nnz);
    out.push('{');
    for (pos, e) in s.entries().enumerate() {
        let (i, x) = e?;
        if pos > 0 {
            out.push_str(", ");
        }
        let _ = write!(out, "{i}:");
        push_pgvectors_number(&mut out, x);
    }
    let _ = write!(out, "}}/{}", s.dim);
    Ok(out)
}

/// `bit`/`varbit` binary -> PGVecto.rs `vectors.bvector` text `[0, 1, 1]` (first bit first).
pub fn bit_to_pgvectors_text(input: &[u8]) -> Result<String, ConvertError> {
    let b = Bits::parse(input)?;
    if b.len == 0 || b.len as u64 > PGVECTORS_DENSE_MAX_DIM {
        return Err(ConvertError::DimsOutOfRange {
            kind: VectorKind::Bit,
            dims: b.len as u64,
            target: "a PGVecto.rs bvector",
            min: 1,
            max: PGVECTORS_DENSE_MAX_DIM,
        });
    }
    let mut out = String::with_capacity(3 * b.len + 1);
    out.push('[');
    for i in 0..b.len {
        if i > 0 {
            out.push_str(", ");
        }
        out.push(if b.get(i) { '1' } else { '0' });
    }
    out.push(']');
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    // --------------------------------------------------------------------------------------------
    // helpers

    fn hex(s: &str) -> Vec<u8> {
        assert!(s.len().is_multiple_of(2), "odd hex length");
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    fn vector_bin(xs: &[f32]) -> Vec<u8> {
        let mut v = Vec::new();
        v.extend_from_slice(&(xs.len() as i16).to_be_bytes());
        v.extend_from_slice(&0i16.to_be_bytes());
        for x in xs {
            v.extend_from_slice(&x.to_be_bytes());
        }
        v
    }

    fn halfvec_bin(hs: &[u16]) -> Vec<u8> {
        let mut v = Vec::new();
        v.extend_from_slice(&(hs.len() as i16).to_be_bytes());
        v.extend_from_slice(&0i16.to_be_bytes());
        for h in hs {
            v.extend_from_slice(&h.to_be_bytes());
        }
        v
    }

    fn sparse_bin(dim: i32, entries: &[(i32, f32)]) -> Vec<u8> {
        let mut v = Vec::new();
        v.extend_from_slice(&dim.to_be_bytes());
        v.extend_from_slice(&(entries.len() as i32).to_be_bytes());
        v.extend_from_slice(&0i32.to_be_bytes());
        for (i, _) in entries {
            v.extend_from_slice(&i.to_be_bytes());
        }
        for (_, x) in entries {
            v.extend_from_slice(&x.to_be_bytes());
        }
        v
    }

    fn bit_bin(bits: &[bool]) -> Vec<u8> {
        let mut v = (bits.len() as i32).to_be_bytes().to_vec();
        let mut bytes = vec![0u8; bits.len().div_ceil(8)];
        for (i, &b) in bits.iter().enumerate() {
            if b {
                bytes[i / 8] |= 0x80 >> (i % 8);
            }
        }
        v.extend_from_slice(&bytes);
        v
    }

    fn real_array(xs: &[f32]) -> Vec<u8> {
        let mut v = Vec::new();
        for w in [1i32, 0, 700, xs.len() as i32, 1] {
            v.extend_from_slice(&w.to_be_bytes());
        }
        for x in xs {
            v.extend_from_slice(&4i32.to_be_bytes());
            v.extend_from_slice(&x.to_be_bytes());
        }
        v
    }

    fn int_array(ws: &[u32]) -> Vec<u8> {
        let mut v = Vec::new();
        if ws.is_empty() {
            for w in [0i32, 0, 23] {
                v.extend_from_slice(&w.to_be_bytes());
            }
            return v;
        }
        for w in [1i32, 0, 23, ws.len() as i32, 1] {
            v.extend_from_slice(&w.to_be_bytes());
        }
        for w in ws {
            v.extend_from_slice(&4i32.to_be_bytes());
            v.extend_from_slice(&w.to_be_bytes());
        }
        v
    }

    /// Straightforward reference packer for BitToIntArray.
    fn pack_words(bits: &[bool]) -> Vec<u32> {
        let mut words = vec![0u32; bits.len().div_ceil(32)];
        for (i, &b) in bits.iter().enumerate() {
            if b {
                words[i / 32] |= 1 << (31 - i % 32);
            }
        }
        words
    }

    /// Tiny deterministic PRNG (xorshift64*), so tests need no extra crate.
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
        }
        fn below(&mut self, n: u64) -> u64 {
            self.next() % n
        }
    }

    const ALL: [Conversion; 8] = [
        Conversion::Passthrough,
        Conversion::VectorToHalfvec,
        Conversion::VectorToRealArray,
        Conversion::HalfvecToRealArray,
        Conversion::BitToIntArray,
        Conversion::SparsevecToRealArray,
        Conversion::SparsevecToHalfvec,
        Conversion::HalfvecToVector,
    ];

    fn h(x: f32) -> u16 {
        f32_to_f16_bits(x).unwrap()
    }

    // --------------------------------------------------------------------------------------------
    // binary16

    #[test]
    fn f32_to_f16_edge_values() {
        let two = |e: i32| 2f32.powi(e);
        let cases: &[(f32, Option<u16>)] = &[
            (0.0, Some(0x0000)),
            (-0.0, Some(0x8000)),
            (1.0, Some(0x3c00)),
            (-2.0, Some(0xc000)),
            (3.5, Some(0x4300)),
            (0.1, Some(0x2e66)),
            (65504.0, Some(0x7bff)),
            (-65504.0, Some(0xfbff)),
            (65519.99, Some(0x7bff)),
            (-65519.99, Some(0xfbff)),
            (f32::from_bits(0x477f_efff), Some(0x7bff)), // largest f32 below 65520
            (65520.0, None),
            (-65520.0, None),
            (70000.0, None),
            (f32::MAX, None),
            (f32::MIN, None),
            (f32::INFINITY, None),
            (f32::NEG_INFINITY, None),
            (f32::NAN, None),
            (-f32::NAN, None),
            // ties to even in the normal range
            (1.0 + two(-11), Some(0x3c00)),
            (1.0 + 3.0 * two(-11), Some(0x3c02)),
            (1.0 + two(-11) + two(-20), Some(0x3c01)),
            (2049.0, Some(0x6800)),
            (2051.0, Some(0x6802)),
            (1024.5, Some(0x6400)),
            (1025.5, Some(0x6402)),
            // carry out of the mantissa into the exponent
            (2.0 - two(-12), Some(0x4000)),
            (2.0 - two(-11), Some(0x4000)), // tie between 0x3fff (odd) and 0x4000
            (2.0 - two(-11) - two(-20), Some(0x3fff)),
            (2.0 - two(-10), Some(0x3fff)),
            // normal/subnormal boundary
            (two(-14), Some(0x0400)),
            (6.1e-5, Some(0x03ff)),
            (-6.1e-5, Some(0x83ff)),
            (two(-14) - two(-25), Some(0x0400)), // tie between 0x3ff and 0x400: even wins
            // subnormal halves and underflow
            (two(-24), Some(0x0001)),
            (-two(-24), Some(0x8001)),
            (1.5 * two(-24), Some(0x0002)), // tie 1|2 -> 2
            (2.5 * two(-24), Some(0x0002)), // tie 2|3 -> 2
            (two(-25), Some(0x0000)),       // tie 0|1 -> 0
            (-two(-25), Some(0x8000)),
            (f32::from_bits(0x3300_0001), Some(0x0001)), // just above 2^-25
            (2.98e-8, Some(0x0000)),
            (1e-10, Some(0x0000)),
            (-1e-10, Some(0x8000)),
            (f32::MIN_POSITIVE, Some(0x0000)),
            (f32::from_bits(1), Some(0x0000)), // smallest f32 denormal
            (-f32::from_bits(1), Some(0x8000)),
            (f32::from_bits(0x007f_ffff), Some(0x0000)), // largest f32 denormal
        ];
        for &(x, want) in cases {
            assert_eq!(f32_to_f16_bits(x), want, "x = {x:e} ({:#010x})", x.to_bits());
        }
    }

    #[test]
    fn f16_to_f32_matches_the_ieee_formula_for_every_pattern() {
        for bits in 0..=u16::MAX {
            let sign = if bits & 0x8000 != 0 { -1.0 } else { 1.0 };
            let exp = i32::from((bits >> 10) & 0x1f);
            let man = f64::from(bits & 0x3ff);
            let got = f16_bits_to_f32(bits);
            match exp {
                31 if man == 0.0 => assert_eq!(got, sign as f32 * f32::INFINITY),
                31 => assert!(got.is_nan()),
                0 => assert_eq!(f64::from(got), sign * man * 2f64.powi(-24), "{bits:#06x}"),
                _ => assert_eq!(
                    f64::from(got),
                    sign * (1.0 + man / 1024.0) * 2f64.powi(exp - 15),
                    "{bits:#06x}"
                ),
            }
            if exp != 31 {
                assert_eq!(got.is_sign_negative(), bits & 0x8000 != 0);
                // every finite half survives the round trip, signed zero included
                assert_eq!(f32_to_f16_bits(got), Some(bits), "{bits:#06x}");
            }
        }
    }

    #[test]
    fn f32_to_f16_rounds_to_nearest_even_around_every_midpoint() {
        // Between each pair of adjacent finite halves (both signs), the f32 midpoint (exact: 12
        // significant bits) goes to the even one, and its f32 neighbours to the nearer one.
        for lo in 0u16..0x7bff {
            for sign in [0u16, 0x8000] {
                let (a, b) = (lo | sign, (lo + 1) | sign);
                let (fa, fb) = (f16_bits_to_f32(a), f16_bits_to_f32(b));
                let mid = ((f64::from(fa) + f64::from(fb)) / 2.0) as f32;
                assert_eq!(f64::from(mid), (f64::from(fa) + f64::from(fb)) / 2.0);
                let even = if a & 1 == 0 { a } else { b };
                assert_eq!(f32_to_f16_bits(mid), Some(even), "midpoint of {a:#06x} and {b:#06x}");
                let toward_a = f32::from_bits(mid.to_bits() - 1);
                let toward_b = f32::from_bits(mid.to_bits() + 1);
                assert_eq!(f32_to_f16_bits(toward_a), Some(a), "just toward {a:#06x}");
                assert_eq!(f32_to_f16_bits(toward_b), Some(b), "just toward {b:#06x}");
            }
        }
    }

    #[test]
    fn f32_to_f16_is_monotonic_and_never_off_by_more_than_half_an_ulp() {
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        for _ in 0..200_000 {
            // uniform over bit patterns below 65520, so every binade is hit
            let bits = (rng.next() as u32) % 0x477f_f000;
            let x = f32::from_bits(bits | ((rng.below(2) as u32) << 31));
            let got = f32_to_f16_bits(x).unwrap();
            let y = f64::from(f16_bits_to_f32(got));
            let err = (y - f64::from(x)).abs();
            // the neighbours of the result are not closer
            for n in [got.wrapping_sub(1), got.wrapping_add(1)] {
                if n & 0x7fff < 0x7c00 && (n ^ got) & 0x8000 == 0 {
                    assert!(err <= (f64::from(f16_bits_to_f32(n)) - f64::from(x)).abs(), "x = {x:e}");
                }
            }
            assert_eq!(got & 0x8000 != 0, x.is_sign_negative());
        }
    }

    // --------------------------------------------------------------------------------------------
    // conversions, table-driven

    #[test]
    fn conversions_table() {
        let two = |e: i32| 2f32.powi(e);
        let cases: Vec<(Conversion, Vec<u8>, Vec<u8>)> = vec![
            (Conversion::Passthrough, vec![1, 2, 3], vec![1, 2, 3]),
            (Conversion::Passthrough, vec![], vec![]),
            (Conversion::VectorToHalfvec, vector_bin(&[1.0]), halfvec_bin(&[0x3c00])),
            (
                Conversion::VectorToHalfvec,
                vector_bin(&[
                    -0.0,
                    65504.0,
                    65519.99,
                    1.0 + two(-11),
                    1.0 + 3.0 * two(-11),
                    two(-24),
                    1e-10,
                    -1e-10,
                ]),
                halfvec_bin(&[0x8000, 0x7bff, 0x7bff, 0x3c00, 0x3c02, 0x0001, 0x0000, 0x8000]),
            ),
            (
                Conversion::VectorToHalfvec,
                vector_bin(&[f32::from_bits(1), f32::MIN_POSITIVE, -f32::from_bits(0x007f_ffff)]),
                halfvec_bin(&[0, 0, 0x8000]),
            ),
            (Conversion::VectorToRealArray, vector_bin(&[1.0]), real_array(&[1.0])),
            (
                Conversion::VectorToRealArray,
                vector_bin(&[f32::MAX, f32::MIN, f32::from_bits(1), -0.0, f32::MIN_POSITIVE]),
                real_array(&[f32::MAX, f32::MIN, f32::from_bits(1), -0.0, f32::MIN_POSITIVE]),
            ),
            (
                Conversion::HalfvecToRealArray,
                halfvec_bin(&[0x3c00, 0x8000, 0x7bff, 0xfbff, 0x0001, 0x03ff, 0x2e66]),
                real_array(&[1.0, -0.0, 65504.0, -65504.0, two(-24), 1023.0 * two(-24), 0.099975586]),
            ),
            (
                Conversion::HalfvecToVector,
                halfvec_bin(&[0x3c00, 0x8001]),
                vector_bin(&[1.0, -two(-24)]),
            ),
            (
                Conversion::SparsevecToRealArray,
                sparse_bin(5, &[(0, 1.5), (2, -2.0)]),
                real_array(&[1.5, 0.0, -2.0, 0.0, 0.0]),
            ),
            (
                Conversion::SparsevecToRealArray,
                sparse_bin(3, &[]),
                real_array(&[0.0, 0.0, 0.0]),
            ),
            (
                Conversion::SparsevecToRealArray,
                sparse_bin(1, &[(0, f32::MAX)]),
                real_array(&[f32::MAX]),
            ),
            (
                Conversion::SparsevecToHalfvec,
                sparse_bin(5, &[(0, 1.5), (4, -1e-10)]),
                halfvec_bin(&[h(1.5), 0, 0, 0, 0x8000]),
            ),
            (Conversion::SparsevecToHalfvec, sparse_bin(2, &[]), halfvec_bin(&[0, 0])),
            (Conversion::BitToIntArray, bit_bin(&[]), int_array(&[])),
            (Conversion::BitToIntArray, bit_bin(&[true]), int_array(&[0x8000_0000])),
        ];
        for (conversion, input, want) in cases {
            assert_eq!(
                convert(conversion, &input).as_deref(),
                Ok(&want[..]),
                "{conversion:?} {input:02x?}"
            );
        }
    }

    #[test]
    fn one_and_16000_dimensions() {
        for dim in [1usize, 2, 15_999, 16_000] {
            let xs: Vec<f32> = (0..dim).map(|i| (i as f32 - 8000.0) / 7.0).collect();
            let halves: Vec<u16> = xs.iter().map(|&x| h(x)).collect();
            let widened: Vec<f32> = halves.iter().map(|&b| f16_bits_to_f32(b)).collect();
            let v = vector_bin(&xs);
            let hv = halfvec_bin(&halves);
            assert_eq!(convert(Conversion::VectorToHalfvec, &v).unwrap(), hv);
            assert_eq!(convert(Conversion::VectorToRealArray, &v).unwrap(), real_array(&xs));
            assert_eq!(
                convert(Conversion::HalfvecToRealArray, &hv).unwrap(),
                real_array(&widened)
            );
            assert_eq!(convert(Conversion::HalfvecToVector, &hv).unwrap(), vector_bin(&widened));
            assert_eq!(dims(VectorKind::Vector, &v), Ok(dim as u32));
            assert_eq!(dims(VectorKind::Halfvec, &hv), Ok(dim as u32));
            // many non-zeros: every element set
            let entries: Vec<(i32, f32)> = (0..dim).map(|i| (i as i32, i as f32 + 1.0)).collect();
            let dense: Vec<f32> = entries.iter().map(|e| e.1).collect();
            let s = sparse_bin(dim as i32, &entries);
            assert_eq!(
                convert(Conversion::SparsevecToRealArray, &s).unwrap(),
                real_array(&dense)
            );
            let s_halves: Vec<u16> = dense.iter().map(|&x| h(x)).collect();
            assert_eq!(
                convert(Conversion::SparsevecToHalfvec, &s).unwrap(),
                halfvec_bin(&s_halves)
            );
            // no non-zeros
            let empty = sparse_bin(dim as i32, &[]);
            assert_eq!(
                convert(Conversion::SparsevecToRealArray, &empty).unwrap(),
                real_array(&vec![0.0; dim])
            );
            assert_eq!(
                convert(Conversion::SparsevecToHalfvec, &empty).unwrap(),
                halfvec_bin(&vec![0; dim])
            );
            assert_eq!(dims(VectorKind::Sparsevec, &s), Ok(dim as u32));
        }
    }

    #[test]
    fn sparse_values_land_at_their_index() {
        let s = sparse_bin(10, &[(1, 1.0), (3, 2.0), (9, -3.0)]);
        let want = [0.0, 1.0, 0.0, 2.0, 0.0, 0.0, 0.0, 0.0, 0.0, -3.0];
        assert_eq!(
            convert(Conversion::SparsevecToRealArray, &s).unwrap(),
            real_array(&want)
        );
        let halves: Vec<u16> = want.iter().map(|&x| h(x)).collect();
        assert_eq!(
            convert(Conversion::SparsevecToHalfvec, &s).unwrap(),
            halfvec_bin(&halves)
        );
    }

    #[test]
    fn bit_lengths() {
        let mut rng = Rng(42);
        for len in [0usize, 1, 7, 8, 9, 31, 32, 33, 63, 64, 65, 96, 1000, 64_000] {
            for pattern in 0..4 {
                let bits: Vec<bool> = (0..len)
                    .map(|i| match pattern {
                        0 => true,
                        1 => false,
                        2 => i % 3 == 0,
                        _ => rng.below(2) == 1,
                    })
                    .collect();
                let input = bit_bin(&bits);
                assert_eq!(dims(VectorKind::Bit, &input), Ok(len as u32));
                assert_eq!(
                    convert(Conversion::BitToIntArray, &input).unwrap(),
                    int_array(&pack_words(&bits)),
                    "len {len} pattern {pattern}"
                );
                if len > 0 && len <= 65_535 {
                    let text = bit_to_pgvectors_text(&input).unwrap();
                    let want: Vec<&str> = bits.iter().map(|&b| if b { "1" } else { "0" }).collect();
                    assert_eq!(text, format!("[{}]", want.join(", ")));
                }
            }
        }
    }

    #[test]
    fn bit_tail_and_pad_bits_are_zeroed() {
        // 33 bits whose pad bits in the last byte are (illegally) set: varbit_recv would clear them.
        let mut input = bit_bin(&[true; 33]);
        *input.last_mut().unwrap() = 0xff;
        assert_eq!(
            convert(Conversion::BitToIntArray, &input).unwrap(),
            int_array(&[u32::MAX, 0x8000_0000])
        );
        let mut one = bit_bin(&[false]);
        one[4] = 0x7f;
        assert_eq!(convert(Conversion::BitToIntArray, &one).unwrap(), int_array(&[0]));
        assert_eq!(bit_to_pgvectors_text(&one).unwrap(), "[0]");
        // a word with the top bit set is a negative int4, sent as its two's complement bytes
        let out = convert(Conversion::BitToIntArray, &bit_bin(&[true; 32])).unwrap();
        assert_eq!(i32::from_be_bytes(out[24..28].try_into().unwrap()), -1);
    }

    // --------------------------------------------------------------------------------------------
    // errors

    #[test]
    fn halfvec_overflow_is_an_error_naming_the_element() {
        for x in [65520.0f32, -65520.0, 70000.0, f32::MAX, -3e38] {
            let err = convert(Conversion::VectorToHalfvec, &vector_bin(&[1.0, 2.0, 3.0, x])).unwrap_err();
            assert_eq!(err, ConvertError::HalfvecOverflow { index: 3, value: x });
            let s = sparse_bin(9, &[(1, 1.0), (7, x)]);
            let err = convert(Conversion::SparsevecToHalfvec, &s).unwrap_err();
            assert_eq!(err, ConvertError::HalfvecOverflow { index: 7, value: x });
            // beyond halfvec, but fine as real[]
            assert!(convert(Conversion::VectorToRealArray, &vector_bin(&[x])).is_ok());
            assert!(convert(Conversion::SparsevecToRealArray, &s).is_ok());
        }
        let msg = ConvertError::HalfvecOverflow {
            index: 3,
            value: 70000.0,
        }
        .to_string();
        assert!(
            msg.starts_with("element 3 (0-based) is beyond halfvec's range (largest finite 65504"),
            "{msg}"
        );
        assert!(msg.ends_with("use profile pgvector, or scale the embedding"), "{msg}");
        assert!(!msg.contains("70000"), "values stay out of messages: {msg}");
    }

    #[test]
    fn nan_and_infinity_are_rejected() {
        let nan = ConvertError::NonFinite {
            kind: VectorKind::Vector,
            index: 1,
            what: NonFiniteValue::Nan,
        };
        let inf = ConvertError::NonFinite {
            kind: VectorKind::Vector,
            index: 1,
            what: NonFiniteValue::Infinity,
        };
        for conversion in [Conversion::VectorToHalfvec, Conversion::VectorToRealArray] {
            assert_eq!(convert(conversion, &vector_bin(&[0.0, f32::NAN])), Err(nan.clone()));
            assert_eq!(
                convert(conversion, &vector_bin(&[0.0, f32::NEG_INFINITY])),
                Err(inf.clone())
            );
        }
        assert_eq!(
            vector_to_pgvectors_text(&vector_bin(&[0.0, f32::NAN])),
            Err(nan.clone())
        );
        assert_eq!(nan.to_string(), "NaN in vector value (element 1, 0-based)");
        assert_eq!(
            validate(VectorKind::Vector, &vector_bin(&[0.0, f32::INFINITY])),
            Err(inf)
        );

        for bits in [0x7c00u16, 0xfc00, 0x7e00, 0x7c01, 0xffff] {
            let hv = halfvec_bin(&[0x3c00, 0x3c00, bits]);
            for conversion in [Conversion::HalfvecToRealArray, Conversion::HalfvecToVector] {
                assert!(
                    matches!(
                        convert(conversion, &hv),
                        Err(ConvertError::NonFinite {
                            kind: VectorKind::Halfvec,
                            index: 2,
                            ..
                        })
                    ),
                    "{bits:#06x}"
                );
            }
            assert!(halfvec_to_pgvectors_text(&hv).is_err());
        }

        let s = sparse_bin(5, &[(3, f32::NAN)]);
        let want = ConvertError::NonFinite {
            kind: VectorKind::Sparsevec,
            index: 3,
            what: NonFiniteValue::Nan,
        };
        for conversion in [Conversion::SparsevecToRealArray, Conversion::SparsevecToHalfvec] {
            assert_eq!(convert(conversion, &s), Err(want.clone()));
        }
        assert_eq!(sparsevec_to_pgvectors_text(&s), Err(want));
    }

    #[test]
    fn malformed_headers() {
        let vk = VectorKind::Vector;
        let mut bad_len = vector_bin(&[1.0, 2.0]);
        bad_len[1] = 3; // claims 3 dimensions, holds 2
        assert_eq!(
            convert(Conversion::VectorToHalfvec, &bad_len),
            Err(ConvertError::Length {
                kind: vk,
                len: 12,
                count: 3,
                unit: "dimensions",
                expected: 16
            })
        );
        assert_eq!(
            ConvertError::Length {
                kind: vk,
                len: 10,
                count: 3,
                unit: "dimensions",
                expected: 16
            }
            .to_string(),
            "malformed vector value: 10 bytes for 3 dimensions (expected 16 bytes)"
        );
        for dim in [0i16, -1, i16::MIN, 16_001, i16::MAX] {
            let mut v = dim.to_be_bytes().to_vec();
            v.extend_from_slice(&[0, 0]);
            v.extend(std::iter::repeat_n(0, 64));
            assert_eq!(
                convert(Conversion::VectorToRealArray, &v),
                Err(ConvertError::Dims {
                    kind: vk,
                    dims: dim.into(),
                    max: 16_000
                })
            );
            assert!(dims(VectorKind::Halfvec, &v).is_err());
        }
        let mut unused = vector_bin(&[1.0]);
        unused[3] = 1;
        assert_eq!(
            convert(Conversion::VectorToHalfvec, &unused),
            Err(ConvertError::Unused { kind: vk, unused: 1 })
        );
        assert_eq!(
            convert(Conversion::HalfvecToVector, &[0, 1]),
            Err(ConvertError::ShortHeader {
                kind: VectorKind::Halfvec,
                len: 2,
                header: 4
            })
        );
        // a vector is not a halfvec: 4 + 4·n bytes read as halfvec has the wrong length
        assert!(matches!(
            convert(Conversion::HalfvecToRealArray, &vector_bin(&[1.0, 2.0])),
            Err(ConvertError::Length { expected: 8, .. })
        ));
        // bit
        let mut neg = (-1i32).to_be_bytes().to_vec();
        neg.push(0);
        assert_eq!(
            convert(Conversion::BitToIntArray, &neg),
            Err(ConvertError::BitLength { bits: -1 })
        );
        assert!(matches!(
            convert(Conversion::BitToIntArray, &[0, 0, 0, 9, 0xff]),
            Err(ConvertError::Length { .. })
        ));
    }

    #[test]
    fn malformed_sparsevecs() {
        let sk = VectorKind::Sparsevec;
        let cases: Vec<(Vec<u8>, ConvertError)> = vec![
            (
                sparse_bin(5, &[(7, 1.0)]),
                ConvertError::SparseIndexOutOfRange { index: 7, dims: 5 },
            ),
            (
                sparse_bin(5, &[(5, 1.0)]),
                ConvertError::SparseIndexOutOfRange { index: 5, dims: 5 },
            ),
            (
                sparse_bin(5, &[(-1, 1.0)]),
                ConvertError::SparseIndexOutOfRange { index: -1, dims: 5 },
            ),
            (
                sparse_bin(5, &[(3, 1.0), (1, 2.0)]),
                ConvertError::SparseUnsorted {
                    position: 1,
                    previous: 3,
                    index: 1,
                },
            ),
            (
                sparse_bin(5, &[(1, 1.0), (1, 2.0)]),
                ConvertError::SparseUnsorted {
                    position: 1,
                    previous: 1,
                    index: 1,
                },
            ),
            (
                sparse_bin(5, &[(1, 1.0), (2, 0.0)]),
                ConvertError::SparseZero { position: 1 },
            ),
            (sparse_bin(5, &[(1, -0.0)]), ConvertError::SparseZero { position: 0 }),
            (
                sparse_bin(2, &[(0, 1.0), (1, 1.0), (1, 1.0)]),
                ConvertError::SparseNnz { nnz: 3, dims: 2 },
            ),
            (
                sparse_bin(0, &[]),
                ConvertError::Dims {
                    kind: sk,
                    dims: 0,
                    max: SPARSEVEC_MAX_DIM,
                },
            ),
            (
                sparse_bin(-5, &[]),
                ConvertError::Dims {
                    kind: sk,
                    dims: -5,
                    max: SPARSEVEC_MAX_DIM,
                },
            ),
            (
                sparse_bin(1_000_000_001, &[]),
                ConvertError::Dims {
                    kind: sk,
                    dims: 1_000_000_001,
                    max: SPARSEVEC_MAX_DIM,
                },
            ),
        ];
        for (input, want) in cases {
            for conversion in [Conversion::SparsevecToRealArray, Conversion::SparsevecToHalfvec] {
                assert_eq!(
                    convert(conversion, &input),
                    Err(want.clone()),
                    "{conversion:?} {input:02x?}"
                );
            }
            assert_eq!(sparsevec_to_pgvectors_text(&input), Err(want.clone()));
            assert_eq!(validate(sk, &input), Err(want));
        }
        assert_eq!(
            ConvertError::SparseIndexOutOfRange { index: 7, dims: 5 }.to_string(),
            "sparsevec index 7 out of range for 5 dimensions"
        );
        // negative nnz, and an nnz that would need far more bytes than given
        let mut neg = sparse_bin(5, &[]);
        neg[4..8].copy_from_slice(&(-1i32).to_be_bytes());
        assert_eq!(
            convert(Conversion::SparsevecToRealArray, &neg),
            Err(ConvertError::SparseNnz { nnz: -1, dims: 5 })
        );
        let mut huge = sparse_bin(SPARSEVEC_MAX_DIM as i32, &[]);
        huge[4..8].copy_from_slice(&16_000i32.to_be_bytes());
        assert!(matches!(
            convert(Conversion::SparsevecToHalfvec, &huge),
            Err(ConvertError::Length { .. })
        ));
        huge[4..8].copy_from_slice(&16_001i32.to_be_bytes());
        assert!(matches!(
            convert(Conversion::SparsevecToHalfvec, &huge),
            Err(ConvertError::SparseNnz { .. })
        ));
        let mut unused = sparse_bin(5, &[]);
        unused[11] = 2;
        assert_eq!(
            convert(Conversion::SparsevecToHalfvec, &unused),
            Err(ConvertError::Unused { kind: sk, unused: 2 })
        );
    }

    #[test]
    fn densify_is_bounded_like_pgvectors_casts() {
        // 1e9 dimensions is a valid sparsevec; densifying it is refused without allocating
        let s = sparse_bin(1_000_000_000, &[(999_999_999, 1.0)]);
        assert_eq!(dims(VectorKind::Sparsevec, &s), Ok(1_000_000_000));
        assert!(validate(VectorKind::Sparsevec, &s).is_ok());
        for conversion in [Conversion::SparsevecToRealArray, Conversion::SparsevecToHalfvec] {
            assert!(
                matches!(
                    convert(conversion, &s),
                    Err(ConvertError::DimsOutOfRange {
                        dims: 1_000_000_000,
                        max: 16_000,
                        ..
                    })
                ),
                "{conversion:?}"
            );
            assert!(matches!(
                convert(conversion, &sparse_bin(16_001, &[])),
                Err(ConvertError::DimsOutOfRange { .. })
            ));
        }
        // and as PGVecto.rs text it is too large for svector
        assert!(matches!(
            sparsevec_to_pgvectors_text(&s),
            Err(ConvertError::DimsOutOfRange { max: 1_048_575, .. })
        ));
        assert_eq!(
            sparsevec_to_pgvectors_text(&sparse_bin(1_048_575, &[(1_048_574, 2.0)])).unwrap(),
            "{1048574:2}/1048575"
        );
    }

    /// Every valid input of every kind, for the truncation and fuzz tests.
    fn valid_inputs() -> Vec<(VectorKind, Vec<u8>)> {
        vec![
            (VectorKind::Vector, vector_bin(&[1.0])),
            (VectorKind::Vector, vector_bin(&[1.0, -2.5, 3e-5, 65504.0])),
            (VectorKind::Halfvec, halfvec_bin(&[0x3c00])),
            (VectorKind::Halfvec, halfvec_bin(&[0x3c00, 0x8000, 0x7bff])),
            (VectorKind::Sparsevec, sparse_bin(5, &[])),
            (VectorKind::Sparsevec, sparse_bin(5, &[(0, 1.5), (4, -2.0)])),
            (VectorKind::Bit, bit_bin(&[])),
            (VectorKind::Bit, bit_bin(&[true, false, true])),
            (VectorKind::Bit, bit_bin(&[true; 65])),
        ]
    }

    fn run_everything(input: &[u8]) -> Vec<bool> {
        let mut ok = Vec::new();
        for conversion in ALL {
            let mut out = BytesMut::from(&b"prefix"[..]);
            let r = convert_into(conversion, input, &mut out);
            if r.is_err() {
                assert_eq!(&out[..], b"prefix", "convert_into must leave the buffer alone on error");
            }
            ok.push(r.is_ok());
        }
        for kind in [
            VectorKind::Vector,
            VectorKind::Halfvec,
            VectorKind::Sparsevec,
            VectorKind::Bit,
        ] {
            ok.push(dims(kind, input).is_ok());
            ok.push(validate(kind, input).is_ok());
        }
        ok.push(vector_to_pgvectors_text(input).is_ok());
        ok.push(halfvec_to_pgvectors_text(input).is_ok());
        ok.push(sparsevec_to_pgvectors_text(input).is_ok());
        ok.push(bit_to_pgvectors_text(input).is_ok());
        ok
    }

    #[test]
    fn truncation_at_every_length_is_an_error() {
        for (kind, input) in valid_inputs() {
            assert!(validate(kind, &input).is_ok(), "{kind} {input:02x?}");
            for conversion in ALL.into_iter().filter(|c| c.input_kind() == Some(kind)) {
                assert!(convert(conversion, &input).is_ok(), "{conversion:?} {input:02x?}");
                for cut in 0..input.len() {
                    assert!(
                        convert(conversion, &input[..cut]).is_err(),
                        "{conversion:?} cut at {cut} of {input:02x?}"
                    );
                }
                let mut longer = input.clone();
                longer.push(0);
                assert!(
                    convert(conversion, &longer).is_err(),
                    "{conversion:?} one byte too many"
                );
            }
            for cut in 0..input.len() {
                assert!(dims(kind, &input[..cut]).is_err());
                assert!(validate(kind, &input[..cut]).is_err());
                run_everything(&input[..cut]);
            }
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic() {
        let mut rng = Rng(7);
        let seeds: Vec<Vec<u8>> = valid_inputs().into_iter().map(|(_, v)| v).collect();
        for round in 0..20_000 {
            let mut input = if round % 2 == 0 {
                // mutate a valid input
                let mut v = seeds[rng.below(seeds.len() as u64) as usize].clone();
                for _ in 0..=rng.below(3) {
                    if !v.is_empty() {
                        let at = rng.below(v.len() as u64) as usize;
                        v[at] = rng.next() as u8;
                    }
                }
                v
            } else {
                (0..rng.below(40)).map(|_| rng.next() as u8).collect()
            };
            if round % 7 == 0 {
                input.truncate(rng.below(input.len() as u64 + 1) as usize);
            }
            run_everything(&input);
        }
        // headers that claim the maximum sizes, with few bytes behind them
        for header in [
            vec![0x7f, 0xff, 0, 0],
            vec![0x3e, 0x80, 0, 0],
            vec![0x3b, 0x9a, 0xca, 0x00, 0x00, 0x00, 0x3e, 0x80, 0, 0, 0, 0],
            vec![0x7f, 0xff, 0xff, 0xff, 0x7f, 0xff, 0xff, 0xff, 0, 0, 0, 0],
            vec![0x7f, 0xff, 0xff, 0xff],
            vec![0x80, 0, 0, 0],
        ] {
            run_everything(&header);
        }
    }

    // --------------------------------------------------------------------------------------------
    // Golden bytes captured from PostgreSQL 15.x + pgvector 0.8.0 (`SELECT encode(…_send(…), 'hex')`).
    // The right-hand sides are the server's own casts, so these pin our conversions to the server's.

    /// `(vector_send(v), halfvec_send(v::halfvec), array_send(v::real[]))` for
    /// `[1,-0,3.5]`;
    /// `[0.1,-0.2,0.33333334,1.00048828125,1.00146484375,65519.99,-65504,6e-8,-1e-10,3e-5,-6.1e-5,6.1035156e-05,1e-45,-1.1754942e-38]`
    /// (rounding, ties, subnormal halves, signed underflow, f32 denormals);
    /// `[2049,2051,4097,-4099,1024.5,1025.5,0.5,-1,2.9802322e-08,2.9802326e-08,5.9604645e-08,8.940697e-08]`
    /// (ties to even at several scales); `[7]`.
    const GOLDEN_VECTOR: &[(&str, &str, &str)] = &[
        ("000300003f8000008000000040600000", "000300003c0080004300", "0000000100000000000002bc0000000300000001000000043f80000000000004800000000000000440600000"),
        ("000e00003dcccccdbe4ccccd3eaaaaab3f8010003f803000477feffdc77fe0003380d959aedbe6ff37fba882b87fda403880000000000001807fffff", "000e00002e66b26635553c003c027bfffbff0001800001f783ff040000008000", "0000000100000000000002bc0000000e00000001000000043dcccccd00000004be4ccccd000000043eaaaaab000000043f801000000000043f80300000000004477feffd00000004c77fe000000000043380d95900000004aedbe6ff0000000437fba88200000004b87fda400000000438800000000000040000000100000004807fffff"),
        ("000c0000450010004500300045800800c580180044801000448030003f000000bf80000033000000330000013380000033c00000", "000c0000680068026c00ec01640064023800bc000000000100010002", "0000000100000000000002bc0000000c0000000100000004450010000000000445003000000000044580080000000004c580180000000004448010000000000444803000000000043f00000000000004bf8000000000000433000000000000043300000100000004338000000000000433c00000"),
        ("0001000040e00000", "000100004700", "0000000100000000000002bc00000001000000010000000440e00000"),
    ];

    /// `(vector_send(v), array_send(v::real[]))` for `[3.4028235e38,-3.4028235e38,1e-45,65520,-1e30]`:
    /// fine as real[], while `v::halfvec` fails on the server with `"65520" is out of range for type halfvec`.
    const GOLDEN_VECTOR_WIDE: (&str, &str) = (
        "000500007f7fffffff7fffff00000001477ff000f149f2ca",
        "0000000100000000000002bc0000000500000001000000047f7fffff00000004ff7fffff000000040000000100000004477ff00000000004f149f2ca",
    );

    /// `(halfvec_send(h), array_send(h::real[]), vector_send(h::vector))` for `[1,-0,3.5,65504]` and
    /// `[-65504,5.96e-8,-6.1e-5,0.1,1e-7,3.1415927]`.
    const GOLDEN_HALFVEC: &[(&str, &str, &str)] = &[
        ("000400003c00800043007bff", "0000000100000000000002bc0000000400000001000000043f8000000000000480000000000000044060000000000004477fe000", "000400003f8000008000000040600000477fe000"),
        ("00060000fbff000183ff2e6600024248", "0000000100000000000002bc000000060000000100000004c77fe000000000043380000000000004b87fc000000000043dccc00000000004340000000000000440490000", "00060000c77fe00033800000b87fc0003dccc0003400000040490000"),
    ];

    /// `(sparsevec_send(s), halfvec_send(s::halfvec), array_send(s::vector::real[]))` for
    /// `{1:1.5,3:-2}/5`, `{}/3`, `{1:0.1,4:-1e-10,6:65504,7:2049}/8`, `{1:1}/1` (text indices are 1-based).
    const GOLDEN_SPARSEVEC: &[(&str, &str, &str)] = &[
        ("00000005000000020000000000000000000000023fc00000c0000000", "000500003e000000c00000000000", "0000000100000000000002bc0000000500000001000000043fc00000000000040000000000000004c000000000000004000000000000000400000000"),
        ("000000030000000000000000", "00030000000000000000", "0000000100000000000002bc0000000300000001000000040000000000000004000000000000000400000000"),
        ("000000080000000400000000000000000000000300000005000000063dcccccdaedbe6ff477fe00045001000", "000800002e6600000000800000007bff68000000", "0000000100000000000002bc0000000800000001000000043dcccccd0000000400000000000000040000000000000004aedbe6ff000000040000000000000004477fe00000000004450010000000000400000000"),
        ("000000010000000100000000000000003f800000", "000100003c00", "0000000100000000000002bc0000000100000001000000043f800000"),
    ];

    /// `(sparsevec_send(s), array_send(s::vector::real[]))` for `{2:70000,3:-3.4028235e38}/4` (not a halfvec).
    const GOLDEN_SPARSEVEC_WIDE: (&str, &str) = (
        "00000004000000020000000000000001000000024788b800ff7fffff",
        "0000000100000000000002bc00000004000000010000000400000000000000044788b80000000004ff7fffff0000000400000000",
    );

    /// `(varbit_send(b), array_send(words))` where the words come from the server itself:
    /// `array_agg(rpad(substring(b::text from i*32+1 for 32), 32, '0')::bit(32)::int4)`, i.e.
    /// PostgreSQL's own MSB-first bit(32) -> int4 cast on each zero-padded 32-bit slice. Lengths
    /// 9, 1, 31, 32, 33, 64, 65 and 0 (`'{}'::int4[]`). `bit_send(B'101100101'::bit(9))` is the same
    /// bytes as `varbit_send`.
    const GOLDEN_BIT: &[(&str, &str)] = &[
        (
            "00000009b280",
            "000000010000000000000017000000010000000100000004b2800000",
        ),
        ("0000000180", "00000001000000000000001700000001000000010000000480000000"),
        (
            "0000001fbffffffa",
            "000000010000000000000017000000010000000100000004bffffffa",
        ),
        (
            "0000002080000001",
            "00000001000000000000001700000001000000010000000480000001",
        ),
        (
            "000000218000000180",
            "000000010000000000000017000000020000000100000004800000010000000480000000",
        ),
        (
            "00000040ffffffffffffffff",
            "000000010000000000000017000000020000000100000004ffffffff00000004ffffffff",
        ),
        (
            "00000041c00000008000000080",
            "000000010000000000000017000000030000000100000004c000000000000004800000000000000480000000",
        ),
        ("00000000", "000000000000000000000017"),
    ];

    fn golden(conversion: Conversion, input: &str, want: &str) {
        assert_eq!(
            convert(conversion, &hex(input)).unwrap(),
            hex(want),
            "{conversion:?} of {input}"
        );
    }

    #[test]
    fn golden_vector_casts_match_the_server() {
        for &(v, half, real) in GOLDEN_VECTOR {
            golden(Conversion::VectorToHalfvec, v, half);
            golden(Conversion::VectorToRealArray, v, real);
            assert!(validate(VectorKind::Vector, &hex(v)).is_ok());
            assert!(validate(VectorKind::Halfvec, &hex(half)).is_ok());
        }
        let (v, real) = GOLDEN_VECTOR_WIDE;
        golden(Conversion::VectorToRealArray, v, real);
        // the server refuses this cast on the 65520 (element 3); so do we
        assert!(matches!(
            convert(Conversion::VectorToHalfvec, &hex(v)),
            Err(ConvertError::HalfvecOverflow { index: 0, .. })
        ));
        let mut only_65520 = hex(v);
        only_65520[4..12].copy_from_slice(&[0, 0, 0, 0, 0, 0, 0, 0]);
        assert_eq!(
            convert(Conversion::VectorToHalfvec, &only_65520),
            Err(ConvertError::HalfvecOverflow {
                index: 3,
                value: 65520.0
            })
        );
    }

    #[test]
    fn golden_halfvec_casts_match_the_server() {
        for &(half, real, vector) in GOLDEN_HALFVEC {
            golden(Conversion::HalfvecToRealArray, half, real);
            golden(Conversion::HalfvecToVector, half, vector);
            // and narrowing the widened vector gives the halfvec back
            golden(Conversion::VectorToHalfvec, vector, half);
        }
    }

    #[test]
    fn golden_sparsevec_casts_match_the_server() {
        for &(sparse, half, real) in GOLDEN_SPARSEVEC {
            golden(Conversion::SparsevecToHalfvec, sparse, half);
            golden(Conversion::SparsevecToRealArray, sparse, real);
        }
        let (sparse, real) = GOLDEN_SPARSEVEC_WIDE;
        golden(Conversion::SparsevecToRealArray, sparse, real);
        assert!(matches!(
            convert(Conversion::SparsevecToHalfvec, &hex(sparse)),
            Err(ConvertError::HalfvecOverflow { index: 1, .. })
        ));
        assert_eq!(
            sparsevec_to_pgvectors_text(&hex(GOLDEN_SPARSEVEC[0].0)).unwrap(),
            "{0:1.5, 2:-2}/5"
        );
    }

    #[test]
    fn golden_bit_packing_matches_the_servers_bit32_to_int4() {
        for &(bits, words) in GOLDEN_BIT {
            golden(Conversion::BitToIntArray, bits, words);
        }
        assert_eq!(
            bit_to_pgvectors_text(&hex(GOLDEN_BIT[0].0)).unwrap(),
            "[1, 0, 1, 1, 0, 0, 1, 0, 1]"
        );
        assert_eq!(dims(VectorKind::Bit, &hex(GOLDEN_BIT[0].0)), Ok(9));
    }

    // --------------------------------------------------------------------------------------------
    // PGVecto.rs text

    #[test]
    fn pgvectors_text_forms() {
        assert_eq!(
            vector_to_pgvectors_text(&vector_bin(&[1.0, 2.5, -3.0])).unwrap(),
            "[1, 2.5, -3]"
        );
        assert_eq!(vector_to_pgvectors_text(&vector_bin(&[-0.0])).unwrap(), "[-0]");
        assert_eq!(
            vector_to_pgvectors_text(&vector_bin(&[f32::MAX, 1e-5])).unwrap(),
            "[340282350000000000000000000000000000000, 0.00001]"
        );
        // the plain form of the smallest denormal is 47 characters: kept; with a sign it is 48: exponent
        assert_eq!(
            vector_to_pgvectors_text(&vector_bin(&[f32::from_bits(1)])).unwrap(),
            "[0.000000000000000000000000000000000000000000001]"
        );
        assert_eq!(
            vector_to_pgvectors_text(&vector_bin(&[-f32::from_bits(1)])).unwrap(),
            "[-1e-45]"
        );
        assert_eq!(
            vector_to_pgvectors_text(&vector_bin(&[-1.1754942e-38])).unwrap(),
            "[-1.1754942e-38]"
        );
        assert_eq!(
            halfvec_to_pgvectors_text(&halfvec_bin(&[0x3c00, 0x8000, 0x4300, 0x7bff, 0x2e66, 0x0001])).unwrap(),
            "[1, -0, 3.5, 65504, 0.099975586, 0.000000059604645]"
        );
        assert_eq!(
            sparsevec_to_pgvectors_text(&sparse_bin(5, &[(0, 1.5), (2, -2.0)])).unwrap(),
            "{0:1.5, 2:-2}/5"
        );
        assert_eq!(sparsevec_to_pgvectors_text(&sparse_bin(5, &[])).unwrap(), "{}/5");
        assert_eq!(
            sparsevec_to_pgvectors_text(&sparse_bin(1, &[(0, 1.0)])).unwrap(),
            "{0:1}/1"
        );
        assert_eq!(
            bit_to_pgvectors_text(&bit_bin(&[false, true, true])).unwrap(),
            "[0, 1, 1]"
        );
        assert!(matches!(
            bit_to_pgvectors_text(&bit_bin(&[])),
            Err(ConvertError::DimsOutOfRange { dims: 0, .. })
        ));
        assert!(matches!(
            bit_to_pgvectors_text(&bit_bin(&[true; 65_536])),
            Err(ConvertError::DimsOutOfRange {
                dims: 65_536,
                max: 65_535,
                ..
            })
        ));
    }

    #[test]
    fn pgvectors_tokens_round_trip_and_fit_the_parser() {
        // every token parses back to the same bits, is short enough, and uses only the
        // characters pgvecto.rs accepts in a number
        let mut rng = Rng(99);
        let mut xs: Vec<f32> = (0..20_000)
            .map(|_| f32::from_bits(rng.next() as u32))
            .filter(|x| x.is_finite())
            .collect();
        xs.extend([
            f32::MAX,
            f32::MIN,
            f32::MIN_POSITIVE,
            -f32::MIN_POSITIVE,
            f32::EPSILON,
            0.0,
            -0.0,
        ]);
        xs.extend(
            (1..=0x7f_ffff)
                .step_by(4093)
                .flat_map(|b| [f32::from_bits(b), -f32::from_bits(b)]),
        );
        for chunk in xs.chunks(500) {
            let text = vector_to_pgvectors_text(&vector_bin(chunk)).unwrap();
            let inner = text.strip_prefix('[').and_then(|t| t.strip_suffix(']')).unwrap();
            for (token, x) in inner.split(", ").zip(chunk) {
                assert!(token.len() <= PGVECTORS_TOKEN_MAX, "{token}");
                assert!(
                    token.bytes().all(|c| c.is_ascii_alphanumeric() || b".+-".contains(&c)),
                    "{token}"
                );
                assert_eq!(token.parse::<f32>().unwrap().to_bits(), x.to_bits(), "{token}");
            }
        }
        // halfvec: the printed f32 parses and rounds back to the same binary16, for every finite half
        let all: Vec<u16> = (0..=u16::MAX).filter(|b| b & 0x7c00 != 0x7c00).collect();
        for chunk in all.chunks(4000) {
            let text = halfvec_to_pgvectors_text(&halfvec_bin(chunk)).unwrap();
            let inner = &text[1..text.len() - 1];
            for (token, &bits) in inner.split(", ").zip(chunk) {
                assert!(token.len() <= PGVECTORS_TOKEN_MAX, "{token}");
                assert_eq!(f32_to_f16_bits(token.parse::<f32>().unwrap()), Some(bits), "{token}");
            }
        }
    }

    #[test]
    fn conversion_metadata() {
        assert_eq!(Conversion::Passthrough.input_kind(), None);
        assert_eq!(Conversion::BitToIntArray.input_kind(), Some(VectorKind::Bit));
        assert_eq!(Conversion::SparsevecToHalfvec.output_type(), Some("halfvec"));
        assert_eq!(Conversion::HalfvecToRealArray.output_type(), Some("real[]"));
        assert_eq!(
            serde_json::to_string(&Conversion::VectorToHalfvec).unwrap(),
            "\"VectorToHalfvec\""
        );
        assert_eq!(serde_json::to_string(&VectorKind::Sparsevec).unwrap(), "\"sparsevec\"");
        assert_eq!(VectorKind::Halfvec.to_string(), "halfvec");
    }
}
