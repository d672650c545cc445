//! PURE: how `verify` compares one column's value on the source with the same column's value
//! on the target, *after the profile's translation*, so a `vector(768)` source column compares
//! with its `real[]` (Lantern), `halfvec(768)` (halfvec) or `vectors.vector` (PGVecto.rs, read
//! as text) target column.
//!
//! | conversion | expected (from the source value) | actual (the target value) | equal when |
//! |---|---|---|---|
//! | passthrough | the bytes | the bytes | bytes equal (binary send forms are canonical) |
//! | lossless (`real[]`, `integer[]`, halfvec -> vector, PGVecto.rs text) | the profile's own conversion of the source value, decoded | decoded | decoded values equal, bit for bit |
//! | `vector`/`sparsevec` -> `halfvec` (lossy) | the source's f32 values | the target's f16 values widened | each element within half an f16 ULP of the source value (what round-to-nearest allows); the largest difference is reported |
//!
//! Decoding goes through [`crate::translate`]'s validated codecs (a `halfvec` or `vector` is
//! decoded by converting it to `real[]`), so nothing here re-implements pgvector's layouts; only
//! PostgreSQL's one-dimensional array form and PGVecto.rs's text forms are parsed here.
//! A value that cannot be decoded compares as different (never as equal), without an error:
//! the key is reported, never the value.

use std::hash::{Hash, Hasher};

use crate::translate::{self, f32_to_f16_bits, Conversion};

/// PostgreSQL's `FLOAT4OID` / `INT4OID` (built-in, the same on every server).
const FLOAT4_OID: u32 = 700;
const INT4_OID: u32 = 23;

/// How close two decoded vectors must be.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Tolerance {
    /// Every element bit for bit.
    Exact,
    /// Each target element within half an ULP of binary16 at the source element's magnitude:
    /// exactly the results round-to-nearest can give (f32 -> f16 is lossy).
    HalfUlpF16,
}

/// How one column is compared (derived from its profile's [`Conversion`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ColumnCompare {
    pub conversion: Conversion,
    pub tolerance: Tolerance,
    /// Read the target column as text (`col::text`): PGVecto.rs's binary form is native-endian
    /// and undocumented, its text form is what pgvshift writes.
    pub target_as_text: bool,
}

impl ColumnCompare {
    pub fn for_conversion(conversion: Conversion) -> ColumnCompare {
        let tolerance = match conversion {
            // PGVecto.rs prints a vecf16 element as the shortest decimal of the *f16*, which
            // parses to a nearby f32, not always the widened value.
            Conversion::VectorToHalfvec | Conversion::SparsevecToHalfvec | Conversion::HalfvecToPgvectorsText => {
                Tolerance::HalfUlpF16
            }
            _ => Tolerance::Exact,
        };
        ColumnCompare {
            conversion,
            tolerance,
            target_as_text: conversion.text_output(),
        }
    }

    /// Whether the profile loses precision on this column (the report then shows the largest
    /// difference seen).
    pub fn lossy(&self) -> bool {
        self.tolerance != Tolerance::Exact
    }

    /// The expected target-side value of a source value, decoded.
    pub fn expected(&self, source: Option<&[u8]>) -> Decoded {
        let Some(b) = source else { return Decoded::Null };
        let decoded = match self.conversion {
            Conversion::Passthrough => return Decoded::Raw(b.to_vec()),
            // Lossy: keep the source's own f32 values, to measure the error against them.
            Conversion::VectorToHalfvec => translate::convert(Conversion::VectorToRealArray, b)
                .ok()
                .and_then(|a| float4_array(&a)),
            Conversion::SparsevecToHalfvec => translate::convert(Conversion::SparsevecToRealArray, b)
                .ok()
                .and_then(|a| float4_array(&a)),
            conversion => translate::convert(conversion, b)
                .ok()
                .and_then(|out| decode_target(conversion, &out)),
        };
        decoded.unwrap_or(Decoded::Undecodable)
    }

    /// A target value, decoded.
    pub fn actual(&self, target: Option<&[u8]>) -> Decoded {
        match target {
            None => Decoded::Null,
            Some(b) if self.conversion == Conversion::Passthrough => Decoded::Raw(b.to_vec()),
            Some(b) => decode_target(self.conversion, b).unwrap_or(Decoded::Undecodable),
        }
    }

    /// Compare an expected (source) and an actual (target) value.
    pub fn compare(&self, expected: &Decoded, actual: &Decoded) -> Outcome {
        compare(expected, actual, self.tolerance)
    }

    /// Feed a decoded value into a hasher in a form that is equal for equal values under this
    /// column's tolerance (for tables compared as multisets): lossy columns hash the binary16
    /// rounding of each element, which is the identity for the target's values.
    pub fn hash_into(&self, value: &Decoded, h: &mut impl Hasher) {
        match (value, self.tolerance) {
            (Decoded::Floats(v), Tolerance::HalfUlpF16) => {
                3u8.hash(h);
                v.len().hash(h);
                for x in v {
                    f32_to_f16_bits(*x).hash(h);
                }
            }
            _ => value.hash(h),
        }
    }
}

/// A value decoded for comparison.
#[derive(Debug, Clone, PartialEq)]
pub enum Decoded {
    Null,
    /// Bytes of a passthrough column.
    Raw(Vec<u8>),
    Floats(Vec<f32>),
    Ints(Vec<i32>),
    /// A sparse vector: dimensions and (0-based index, value) pairs, ascending.
    Sparse {
        dim: u64,
        entries: Vec<(u64, f32)>,
    },
    /// Not a valid value of the expected type: compares unequal to everything.
    Undecodable,
}

impl Hash for Decoded {
    fn hash<H: Hasher>(&self, h: &mut H) {
        match self {
            Decoded::Null => 0u8.hash(h),
            Decoded::Raw(b) => {
                1u8.hash(h);
                b.hash(h);
            }
            Decoded::Floats(v) => {
                2u8.hash(h);
                v.len().hash(h);
                v.iter().for_each(|x| x.to_bits().hash(h));
            }
            Decoded::Ints(v) => {
                4u8.hash(h);
                v.hash(h);
            }
            Decoded::Sparse { dim, entries } => {
                5u8.hash(h);
                dim.hash(h);
                entries.iter().for_each(|(i, x)| (i, x.to_bits()).hash(h));
            }
            Decoded::Undecodable => 6u8.hash(h),
        }
    }
}

/// The result of comparing one value.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Outcome {
    /// Equal within the tolerance; the largest element difference (0 when exact).
    Equal {
        max_abs_error: f32,
    },
    Differs,
}

/// Decode a value of the conversion's *target* type (binary, or text for PGVecto.rs).
fn decode_target(conversion: Conversion, b: &[u8]) -> Option<Decoded> {
    match conversion {
        Conversion::Passthrough => Some(Decoded::Raw(b.to_vec())),
        Conversion::VectorToHalfvec | Conversion::SparsevecToHalfvec => {
            float4_array(&translate::convert(Conversion::HalfvecToRealArray, b).ok()?)
        }
        Conversion::HalfvecToVector => float4_array(&translate::convert(Conversion::VectorToRealArray, b).ok()?),
        Conversion::VectorToRealArray | Conversion::HalfvecToRealArray | Conversion::SparsevecToRealArray => {
            float4_array(b)
        }
        Conversion::BitToIntArray => int4_array(b),
        Conversion::VectorToPgvectorsText | Conversion::HalfvecToPgvectorsText | Conversion::BitToPgvectorsText => {
            dense_text(std::str::from_utf8(b).ok()?)
        }
        Conversion::SparsevecToPgvectorsText => sparse_text(std::str::from_utf8(b).ok()?),
    }
}

/// Half an ULP of binary16 at `x`'s magnitude: the largest error round-to-nearest makes.
pub fn f16_half_ulp(x: f32) -> f32 {
    let a = x.abs();
    if a < 6.103_515_6e-5 {
        // Below the smallest normal binary16 (2^-14): subnormals are 2^-24 apart.
        return 2f32.powi(-25);
    }
    // Unbiased exponent of a (a is a normal f32 here); binary16 keeps 10 fraction bits.
    let e = ((a.to_bits() >> 23) & 0xff) as i32 - 127;
    2f32.powi(e - 11)
}

/// Compare two decoded values under a tolerance.
pub fn compare(expected: &Decoded, actual: &Decoded, tolerance: Tolerance) -> Outcome {
    let equal = Outcome::Equal { max_abs_error: 0.0 };
    match (expected, actual) {
        (Decoded::Undecodable, _) | (_, Decoded::Undecodable) => Outcome::Differs,
        (Decoded::Floats(e), Decoded::Floats(a)) => {
            if e.len() != a.len() {
                return Outcome::Differs;
            }
            let mut max = 0f32;
            for (x, y) in e.iter().zip(a) {
                match tolerance {
                    Tolerance::Exact if x.to_bits() != y.to_bits() => return Outcome::Differs,
                    Tolerance::Exact => {}
                    Tolerance::HalfUlpF16 => {
                        let d = (x - y).abs();
                        // NaN (never valid in pgvector) is a difference too.
                        if d.is_nan() || d > f16_half_ulp(*x) {
                            return Outcome::Differs;
                        }
                        max = max.max(d);
                    }
                }
            }
            Outcome::Equal { max_abs_error: max }
        }
        (Decoded::Sparse { dim: d1, entries: e1 }, Decoded::Sparse { dim: d2, entries: e2 }) => {
            let same = d1 == d2
                && e1.len() == e2.len()
                && e1
                    .iter()
                    .zip(e2)
                    .all(|(a, b)| a.0 == b.0 && a.1.to_bits() == b.1.to_bits());
            if same {
                equal
            } else {
                Outcome::Differs
            }
        }
        (e, a) if e == a => equal,
        _ => Outcome::Differs,
    }
}

/// PostgreSQL's binary array form (`array_send`), one dimension, lower bound 1, no NULLs, of
/// 4-byte elements of type `oid`: the element bytes. An empty array (ndim 0) gives none.
fn array4(b: &[u8], oid: u32) -> Option<Vec<[u8; 4]>> {
    let word = |at: usize| -> Option<[u8; 4]> { b.get(at..at + 4)?.try_into().ok() };
    let ndim = i32::from_be_bytes(word(0)?);
    let elem = u32::from_be_bytes(word(8)?);
    if elem != oid {
        return None;
    }
    if ndim == 0 {
        return (b.len() == 12).then(Vec::new);
    }
    let len = i32::from_be_bytes(word(12)?);
    let lbound = i32::from_be_bytes(word(16)?);
    if ndim != 1 || lbound != 1 || len < 0 || b.len() != 20 + 8 * len as usize {
        return None;
    }
    (0..len as usize)
        .map(|i| {
            let at = 20 + 8 * i;
            (i32::from_be_bytes(word(at)?) == 4).then(|| word(at + 4))?
        })
        .collect()
}

fn float4_array(b: &[u8]) -> Option<Decoded> {
    Some(Decoded::Floats(
        array4(b, FLOAT4_OID)?.into_iter().map(f32::from_be_bytes).collect(),
    ))
}

fn int4_array(b: &[u8]) -> Option<Decoded> {
    Some(Decoded::Ints(
        array4(b, INT4_OID)?.into_iter().map(i32::from_be_bytes).collect(),
    ))
}

/// PGVecto.rs's dense text form `[1, 2.5, -3]` (also bvector's `[0, 1]`).
fn dense_text(s: &str) -> Option<Decoded> {
    let body = s.trim().strip_prefix('[')?.strip_suffix(']')?;
    if body.trim().is_empty() {
        return Some(Decoded::Floats(Vec::new()));
    }
    body.split(',')
        .map(|t| t.trim().parse::<f32>().ok())
        .collect::<Option<Vec<f32>>>()
        .map(Decoded::Floats)
}

/// PGVecto.rs's sparse text form `{0:1.5, 2:-2}/5` (0-based indices).
fn sparse_text(s: &str) -> Option<Decoded> {
    let (entries, dim) = s.trim().rsplit_once('/')?;
    let dim: u64 = dim.trim().parse().ok()?;
    let body = entries.trim().strip_prefix('{')?.strip_suffix('}')?;
    let mut out = Vec::new();
    if !body.trim().is_empty() {
        for pair in body.split(',') {
            let (i, x) = pair.split_once(':')?;
            out.push((i.trim().parse().ok()?, x.trim().parse().ok()?));
        }
    }
    Some(Decoded::Sparse { dim, entries: out })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vector(v: &[f32]) -> Vec<u8> {
        let mut b = Vec::new();
        b.extend_from_slice(&(v.len() as i16).to_be_bytes());
        b.extend_from_slice(&0i16.to_be_bytes());
        v.iter().for_each(|x| b.extend_from_slice(&x.to_be_bytes()));
        b
    }

    fn halfvec(v: &[f32]) -> Vec<u8> {
        translate::convert(Conversion::VectorToHalfvec, &vector(v))
            .unwrap()
            .to_vec()
    }

    fn real_array(v: &[f32]) -> Vec<u8> {
        translate::convert(Conversion::VectorToRealArray, &vector(v))
            .unwrap()
            .to_vec()
    }

    fn check(c: ColumnCompare, source: Option<&[u8]>, target: Option<&[u8]>) -> Outcome {
        c.compare(&c.expected(source), &c.actual(target))
    }

    #[test]
    fn passthrough_compares_bytes() {
        let c = ColumnCompare::for_conversion(Conversion::Passthrough);
        assert_eq!(c.tolerance, Tolerance::Exact);
        assert!(!c.target_as_text);
        let eq = Outcome::Equal { max_abs_error: 0.0 };
        assert_eq!(check(c, Some(b"abc"), Some(b"abc")), eq);
        assert_eq!(check(c, Some(b"abc"), Some(b"abd")), Outcome::Differs);
        assert_eq!(check(c, None, None), eq);
        assert_eq!(check(c, None, Some(b"")), Outcome::Differs);
        assert_eq!(check(c, Some(b""), None), Outcome::Differs);
    }

    #[test]
    fn lantern_real_arrays_compare_exactly_after_translation() {
        let c = ColumnCompare::for_conversion(Conversion::VectorToRealArray);
        let v = [1.5f32, -0.25, 3.0e-7];
        assert_eq!(
            check(c, Some(&vector(&v)), Some(&real_array(&v))),
            Outcome::Equal { max_abs_error: 0.0 }
        );
        // One element off by one ULP is a difference.
        let w = [1.5f32, f32::from_bits((-0.25f32).to_bits() + 1), 3.0e-7];
        assert_eq!(check(c, Some(&vector(&v)), Some(&real_array(&w))), Outcome::Differs);
        // Fewer elements, garbage, or another element type: different, never an error.
        assert_eq!(
            check(c, Some(&vector(&v)), Some(&real_array(&v[..2]))),
            Outcome::Differs
        );
        assert_eq!(check(c, Some(&vector(&v)), Some(b"junk")), Outcome::Differs);
        let ints = translate::convert(Conversion::BitToIntArray, &[0, 0, 0, 8, 0xff]).unwrap();
        assert_eq!(check(c, Some(&vector(&v)), Some(&ints)), Outcome::Differs);
        // A lower bound other than 1 is another value in PostgreSQL.
        let mut shifted = real_array(&v);
        shifted[16..20].copy_from_slice(&0i32.to_be_bytes());
        assert_eq!(check(c, Some(&vector(&v)), Some(&shifted)), Outcome::Differs);

        let bits = ColumnCompare::for_conversion(Conversion::BitToIntArray);
        let b = [0u8, 0, 0, 40, 0xde, 0xad, 0xbe, 0xef, 0x80];
        let words = translate::convert(Conversion::BitToIntArray, &b).unwrap();
        assert_eq!(
            check(bits, Some(&b), Some(&words)),
            Outcome::Equal { max_abs_error: 0.0 }
        );
        let mut other = words.to_vec();
        *other.last_mut().unwrap() ^= 1;
        assert_eq!(check(bits, Some(&b), Some(&other)), Outcome::Differs);
    }

    #[test]
    fn halfvec_is_compared_within_half_an_ulp_and_reports_the_error() {
        let c = ColumnCompare::for_conversion(Conversion::VectorToHalfvec);
        assert!(c.lossy());
        let v = [0.1f32, 1000.3, -3.0e-6, 65504.0, 0.0];
        match check(c, Some(&vector(&v)), Some(&halfvec(&v))) {
            Outcome::Equal { max_abs_error } => {
                // 1000.3 -> 1000.5 (f16 spacing 0.5 there) is the largest error.
                assert!((max_abs_error - 0.2).abs() < 1e-3, "{max_abs_error}");
            }
            Outcome::Differs => panic!("the server's own rounding must compare equal"),
        }
        // The neighbour of the correctly rounded value is a difference.
        let mut off = halfvec(&v);
        let at = 4 + 2; // second element
        let h = u16::from_be_bytes([off[at], off[at + 1]]) + 1;
        off[at..at + 2].copy_from_slice(&h.to_be_bytes());
        assert_eq!(check(c, Some(&vector(&v)), Some(&off)), Outcome::Differs);
        // A different dimension count.
        assert_eq!(check(c, Some(&vector(&v)), Some(&halfvec(&v[..4]))), Outcome::Differs);
    }

    #[test]
    fn half_ulp_bounds() {
        assert_eq!(f16_half_ulp(1.0), 2f32.powi(-11));
        assert_eq!(f16_half_ulp(-1.5), 2f32.powi(-11));
        assert_eq!(f16_half_ulp(1024.0), 0.5);
        assert_eq!(f16_half_ulp(65504.0), 16.0);
        assert_eq!(f16_half_ulp(0.0), 2f32.powi(-25));
        assert_eq!(f16_half_ulp(1e-6), 2f32.powi(-25));
        // Every rounding pgvshift (and pgvector) makes is within the bound.
        for x in [0.1f32, 0.3, 1.0 / 3.0, 2047.9, -77.77, 1e-5, 6.1e-5, 65519.0] {
            let h = translate::f16_bits_to_f32(f32_to_f16_bits(x).unwrap());
            assert!((h - x).abs() <= f16_half_ulp(x), "{x} -> {h}");
        }
    }

    #[test]
    fn pgvecto_rs_text_forms_are_parsed() {
        let c = ColumnCompare::for_conversion(Conversion::VectorToPgvectorsText);
        assert!(c.target_as_text);
        let v = vector(&[1.0, 2.5, -3.0]);
        assert_eq!(
            check(c, Some(&v), Some(b"[1, 2.5, -3]")),
            Outcome::Equal { max_abs_error: 0.0 }
        );
        assert_eq!(check(c, Some(&v), Some(b"[1, 2.5, -3.5]")), Outcome::Differs);
        assert_eq!(check(c, Some(&v), Some(b"1, 2.5, -3")), Outcome::Differs);

        let s = ColumnCompare::for_conversion(Conversion::SparsevecToPgvectorsText);
        // sparsevec binary: dim 5, nnz 2, unused, indices 0 and 2, values 1.5 and -2.
        let mut sv = Vec::new();
        for w in [5i32, 2, 0, 0, 2] {
            sv.extend_from_slice(&w.to_be_bytes());
        }
        for x in [1.5f32, -2.0] {
            sv.extend_from_slice(&x.to_be_bytes());
        }
        assert_eq!(
            check(s, Some(&sv), Some(b"{0:1.5, 2:-2}/5")),
            Outcome::Equal { max_abs_error: 0.0 }
        );
        assert_eq!(check(s, Some(&sv), Some(b"{0:1.5, 3:-2}/5")), Outcome::Differs);
        assert_eq!(check(s, Some(&sv), Some(b"{0:1.5, 2:-2}/6")), Outcome::Differs);

        let b = ColumnCompare::for_conversion(Conversion::BitToPgvectorsText);
        assert_eq!(
            check(b, Some(&[0, 0, 0, 3, 0b1010_0000]), Some(b"[1, 0, 1]")),
            Outcome::Equal { max_abs_error: 0.0 }
        );
        // vecf16's own printing of an f16 parses to a nearby f32: within the tolerance.
        let h = ColumnCompare::for_conversion(Conversion::HalfvecToPgvectorsText);
        assert_eq!(h.tolerance, Tolerance::HalfUlpF16);
        assert!(matches!(
            check(h, Some(&halfvec(&[0.1])), Some(b"[0.1]")),
            Outcome::Equal { .. }
        ));
    }

    #[test]
    fn multiset_hashes_agree_for_equal_values() {
        use std::collections::hash_map::DefaultHasher;
        let digest = |c: &ColumnCompare, d: &Decoded| {
            let mut h = DefaultHasher::new();
            c.hash_into(d, &mut h);
            h.finish()
        };
        let c = ColumnCompare::for_conversion(Conversion::VectorToHalfvec);
        let v = [0.1f32, 1000.3, -3.0e-6];
        assert_eq!(
            digest(&c, &c.expected(Some(&vector(&v)))),
            digest(&c, &c.actual(Some(&halfvec(&v))))
        );
        assert_ne!(
            digest(&c, &c.expected(Some(&vector(&v)))),
            digest(&c, &c.actual(Some(&halfvec(&[0.1, 1000.3, 1.0]))))
        );
        let p = ColumnCompare::for_conversion(Conversion::Passthrough);
        assert_ne!(digest(&p, &Decoded::Null), digest(&p, &Decoded::Raw(Vec::new())));
    }
}
