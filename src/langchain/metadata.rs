//! PURE: `cmetadata` -> typed metadata columns + the JSON column.
//!
//! Casts run here, in Rust, on the decoded JSON, and produce each column's binary (COPY / bind)
//! form, so a value that does not fit is an error that names the row, the key and the column's
//! type, before anything reaches the target. The rules, per column type (a key that is absent
//! or JSON `null` gives SQL NULL, an error when the column is not nullable):
//!
//! | column type | accepted JSON values |
//! |---|---|
//! | text, varchar(n), char(n) | a string; a number or boolean as written; an object or array as its JSON text (LangChain's `json.dumps`). Longer than n characters is an error |
//! | smallint, integer, bigint | an integral number (3 or 3.0), or a string holding one, within the type's range |
//! | real, double precision | a number, or a string holding one (`NaN`, `Infinity` too); beyond real's range is an error |
//! | numeric, numeric(p,s) | a number or a numeric string; rounded to s decimals half away from zero (as PostgreSQL does); more than p - s integer digits is an error |
//! | boolean | true/false, or a string PostgreSQL reads as one (`t`, `yes`, `on`, `1`, ...) |
//! | uuid | a string holding a UUID |
//! | json, jsonb | any value |
//! | date | a string `YYYY-MM-DD` (a timestamp's time part is dropped) |
//! | timestamp | a string `YYYY-MM-DD[ T]HH:MM[:SS[.ffffff]]` or a date; an offset is ignored, as PostgreSQL does |
//! | timestamptz | the same; with an offset (`Z`, `+02:00`) it is that instant, without one it is read as UTC |
//! | text[] | an array; its elements as for text, `null` elements as NULL |
//!
//! Every other key stays in the JSON column (or is dropped with `store_metadata = false`, as
//! LangChain does without a JSON column). Errors describe values by kind and size only
//! ("a string of 5 characters"): values are never printed (invariant 8).

use bytes::{BufMut, Bytes, BytesMut};
use serde_json::{Map, Value};
use tokio_postgres::types::{ToSql, Type};

use super::config::{JsonColumn, MetaType, MetadataColumn};

/// Why a value does not fit its column.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CastError {
    /// The key is absent (or null) and the column is NOT NULL.
    Missing { null: bool },
    /// The value cannot be read as the column's type: `got` describes it, `why` says what fits.
    Mismatch { got: String, why: String },
}

/// The typed values and the JSON column's value of one row.
#[derive(Debug, Clone, PartialEq)]
pub struct Split {
    /// One per metadata column, in configuration order (None = NULL).
    pub typed: Vec<Option<Bytes>>,
    /// The JSON column's value (None = NULL; absent column: always None).
    pub json: Option<Bytes>,
}

/// A metadata column that a row's value does not fit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SplitError {
    /// Index into the metadata columns.
    pub column: usize,
    pub error: CastError,
}

/// The source's `cmetadata` value (binary form: jsonb = version byte 1 + JSON text, json = JSON
/// text) split for the target.
pub fn split(
    raw: Option<&[u8]>,
    source_jsonb: bool,
    columns: &[MetadataColumn],
    json: Option<&JsonColumn>,
) -> Result<Split, SplitError> {
    let text = raw.map(|r| json_text(r, source_jsonb));
    if columns.is_empty() {
        // Nothing to take out: the JSON passes through unparsed.
        return Ok(Split {
            typed: Vec::new(),
            json: match (text, json) {
                (Some(t), Some(j)) => Some(json_value(t, j.jsonb)),
                _ => None,
            },
        });
    }
    let parsed: Option<Value> = match text {
        None => None,
        Some(t) => Some(serde_json::from_slice(t).map_err(|e| SplitError {
            column: 0,
            error: CastError::Mismatch {
                got: format!("cmetadata that is not valid JSON ({e})"),
                why: "the source's cmetadata must be JSON".into(),
            },
        })?),
    };
    let mut object = match parsed {
        Some(Value::Object(map)) => Some(map),
        _ => None,
    };
    let mut typed = Vec::with_capacity(columns.len());
    for (i, c) in columns.iter().enumerate() {
        let value = object.as_mut().and_then(|m| m.remove(&c.name));
        typed.push(cast(value.as_ref(), c).map_err(|error| SplitError { column: i, error })?);
    }
    let json = match (json, object, text) {
        (None, _, _) | (_, _, None) => None,
        (Some(j), Some(rest), _) => Some(json_value(
            serde_json::to_string(&Value::Object(rest))
                .expect("JSON serializes")
                .as_bytes(),
            j.jsonb,
        )),
        // Not an object (an array, a string, null): nothing was taken out of it.
        (Some(j), None, Some(t)) => Some(json_value(t, j.jsonb)),
    };
    Ok(Split { typed, json })
}

/// The JSON text of a json / jsonb binary value.
fn json_text(raw: &[u8], jsonb: bool) -> &[u8] {
    if jsonb && raw.first() == Some(&1) {
        &raw[1..]
    } else {
        raw
    }
}

/// JSON text as a json (text) or jsonb (version 1) binary value.
fn json_value(text: &[u8], jsonb: bool) -> Bytes {
    let mut out = BytesMut::with_capacity(text.len() + 1);
    if jsonb {
        out.put_u8(1);
    }
    out.put_slice(text);
    out.freeze()
}

/// What a value is, without what it says.
pub fn describe(v: &Value) -> String {
    match v {
        Value::Null => "null".into(),
        Value::Bool(_) => "a boolean".into(),
        Value::Number(n) if n.is_f64() => "a number with a fraction or exponent".into(),
        Value::Number(_) => "an integer number".into(),
        Value::String(s) => format!("a string of {} characters", s.chars().count()),
        Value::Array(a) => format!("an array of {} elements", a.len()),
        Value::Object(o) => format!("an object with {} keys", o.len()),
    }
}

/// One metadata value in the binary form of its column's type (None = NULL).
pub fn cast(value: Option<&Value>, column: &MetadataColumn) -> Result<Option<Bytes>, CastError> {
    let v = match value {
        None | Some(Value::Null) if column.nullable => return Ok(None),
        None => return Err(CastError::Missing { null: false }),
        Some(Value::Null) => return Err(CastError::Missing { null: true }),
        Some(v) => v,
    };
    let mismatch = |why: &str| CastError::Mismatch {
        got: describe(v),
        why: why.to_string(),
    };
    let mut out = BytesMut::new();
    match column.data_type {
        MetaType::Text | MetaType::Varchar(_) | MetaType::Char(_) => {
            let s = as_text(v);
            let limit = match column.data_type {
                MetaType::Varchar(Some(n)) | MetaType::Char(n) => Some(n as usize),
                _ => None,
            };
            if let Some(n) = limit {
                let len = s.trim_end_matches(' ').chars().count();
                if len > n {
                    return Err(mismatch(&format!(
                        "its text has {len} characters, more than the {n} the column holds"
                    )));
                }
            }
            if s.contains('\0') {
                return Err(mismatch(
                    "it contains a NUL character, which PostgreSQL text cannot hold",
                ));
            }
            out.put_slice(s.as_bytes());
        }
        MetaType::Int2 | MetaType::Int4 | MetaType::Int8 => {
            let (name, min, max) = match column.data_type {
                MetaType::Int2 => ("smallint", i64::from(i16::MIN), i64::from(i16::MAX)),
                MetaType::Int4 => ("integer", i64::from(i32::MIN), i64::from(i32::MAX)),
                _ => ("bigint", i64::MIN, i64::MAX),
            };
            let why = format!("an integral number (or a string holding one) in {name} range is expected");
            let n = integer(v).ok_or_else(|| mismatch(&why))?;
            if n < min || n > max {
                return Err(mismatch(&format!("{why}; this one is out of range")));
            }
            match column.data_type {
                MetaType::Int2 => out.put_i16(n as i16),
                MetaType::Int4 => out.put_i32(n as i32),
                _ => out.put_i64(n),
            }
        }
        MetaType::Float4 | MetaType::Float8 => {
            let x = float(v).ok_or_else(|| mismatch("a number (or a string holding one) is expected"))?;
            if column.data_type == MetaType::Float4 {
                if x.is_finite() && x.abs() > f64::from(f32::MAX) {
                    return Err(mismatch("a number within real's range (about 3.4e38) is expected"));
                }
                out.put_f32(x as f32);
            } else {
                out.put_f64(x);
            }
        }
        MetaType::Numeric(typmod) => {
            let text = match v {
                Value::Number(n) => n.to_string(),
                Value::String(s) => s.trim().to_string(),
                _ => return Err(mismatch("a number (or a string holding one) is expected")),
            };
            return encode_numeric(&text, typmod).map(Some).map_err(|why| mismatch(&why));
        }
        MetaType::Bool => {
            let b = match v {
                Value::Bool(b) => *b,
                Value::Number(n) if n.as_i64() == Some(0) => false,
                Value::Number(n) if n.as_i64() == Some(1) => true,
                Value::String(s) => parse_bool(s).ok_or_else(|| {
                    mismatch("a boolean, or a string PostgreSQL reads as one (true/false, t/f, yes/no, on/off, 1/0) is expected")
                })?,
                _ => return Err(mismatch("a boolean is expected")),
            };
            out.put_u8(u8::from(b));
        }
        MetaType::Uuid => {
            let u = v
                .as_str()
                .and_then(|s| uuid::Uuid::parse_str(s.trim()).ok())
                .ok_or_else(|| mismatch("a string holding a UUID is expected"))?;
            out.put_slice(u.as_bytes());
        }
        MetaType::Json | MetaType::Jsonb => {
            let text = serde_json::to_string(v).expect("JSON serializes");
            return Ok(Some(json_value(text.as_bytes(), column.data_type == MetaType::Jsonb)));
        }
        MetaType::Date => {
            let d = v
                .as_str()
                .and_then(|s| parse_timestamp(s).map(|(t, _)| t.date()))
                .ok_or_else(|| mismatch("a string holding a date (YYYY-MM-DD) is expected"))?;
            let days = (d - epoch().date()).num_days();
            out.put_i32(i32::try_from(days).map_err(|_| mismatch("a date PostgreSQL can hold is expected"))?);
        }
        MetaType::Timestamp | MetaType::Timestamptz => {
            let (t, offset) = v.as_str().and_then(parse_timestamp).ok_or_else(|| {
                mismatch("a string holding an ISO 8601 timestamp (YYYY-MM-DD HH:MM:SS[.ffffff][+HH:MM]) is expected")
            })?;
            let t = match (column.data_type, offset) {
                (MetaType::Timestamptz, Some(seconds_east)) => t - chrono::Duration::seconds(i64::from(seconds_east)),
                _ => t,
            };
            let micros = (t - epoch())
                .num_microseconds()
                .ok_or_else(|| mismatch("a timestamp PostgreSQL can hold is expected"))?;
            out.put_i64(micros);
        }
        MetaType::TextArray => {
            let Value::Array(items) = v else {
                return Err(mismatch("an array is expected"));
            };
            let texts: Vec<Option<String>> = items
                .iter()
                .map(|i| (!i.is_null()).then(|| as_text(i).into_owned()))
                .collect();
            if texts.iter().flatten().any(|t| t.contains('\0')) {
                return Err(mismatch(
                    "an element contains a NUL character, which PostgreSQL text cannot hold",
                ));
            }
            texts
                .to_sql(&Type::TEXT_ARRAY, &mut out)
                .map_err(|e| mismatch(&format!("it cannot be encoded as text[] ({e})")))?;
        }
    }
    Ok(Some(out.freeze()))
}

/// A value's text: strings as they are, anything else as its JSON text.
fn as_text(v: &Value) -> std::borrow::Cow<'_, str> {
    match v {
        Value::String(s) => std::borrow::Cow::Borrowed(s.as_str()),
        other => std::borrow::Cow::Owned(serde_json::to_string(other).expect("JSON serializes")),
    }
}

fn integer(v: &Value) -> Option<i64> {
    match v {
        Value::Number(n) => n.as_i64().or_else(|| {
            let f = n.as_f64()?;
            (f.fract() == 0.0 && (-9.223_372_036_854_776e18..9.223_372_036_854_776e18).contains(&f)).then_some(f as i64)
        }),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

fn float(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// PostgreSQL's boolean input: unique prefixes of true/false/yes/no, on/off, 1/0.
fn parse_bool(s: &str) -> Option<bool> {
    let s = s.trim().to_lowercase();
    if s.is_empty() {
        return None;
    }
    let prefix = |word: &str| word.starts_with(s.as_str());
    match s.as_str() {
        "1" | "on" => Some(true),
        "0" | "of" | "off" => Some(false),
        _ if prefix("true") || prefix("yes") => Some(true),
        _ if prefix("false") || prefix("no") => Some(false),
        _ => None,
    }
}

/// 2000-01-01 00:00:00, PostgreSQL's epoch for dates and timestamps.
fn epoch() -> chrono::NaiveDateTime {
    chrono::NaiveDate::from_ymd_opt(2000, 1, 1)
        .expect("valid date")
        .and_hms_opt(0, 0, 0)
        .expect("valid time")
}

/// An ISO 8601 date or timestamp, with its offset in seconds east of UTC if it has one.
fn parse_timestamp(s: &str) -> Option<(chrono::NaiveDateTime, Option<i32>)> {
    use chrono::{NaiveDate, NaiveDateTime};
    let s = s.trim();
    if let Ok(d) = NaiveDate::parse_from_str(s, "%Y-%m-%d") {
        return Some((d.and_hms_opt(0, 0, 0)?, None));
    }
    // One separator between date and time; 'Z' is UTC.
    let mut t = s.to_string();
    if t.len() > 10 && matches!(t.as_bytes()[10], b'T' | b't') {
        t.replace_range(10..11, " ");
    }
    if t.ends_with(['Z', 'z']) {
        t.truncate(t.len() - 1);
        t.push_str("+00:00");
    }
    for format in ["%Y-%m-%d %H:%M:%S%.f%#z", "%Y-%m-%d %H:%M%#z"] {
        if let Ok(dt) = chrono::DateTime::parse_from_str(&t, format) {
            return Some((dt.naive_local(), Some(dt.offset().local_minus_utc())));
        }
    }
    for format in ["%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%d %H:%M"] {
        if let Ok(dt) = NaiveDateTime::parse_from_str(&t, format) {
            return Some((dt, None));
        }
    }
    None
}

/// A decimal number (`-12.5`, `1e-7`, `NaN`) in PostgreSQL's binary numeric form, rounded to
/// the typmod's scale (half away from zero) and checked against its precision.
pub fn encode_numeric(text: &str, typmod: Option<(u32, u32)>) -> Result<Bytes, String> {
    let mut out = BytesMut::new();
    if text.eq_ignore_ascii_case("nan") {
        out.put_i16(0);
        out.put_i16(0);
        out.put_u16(0xC000);
        out.put_i16(0);
        return Ok(out.freeze());
    }
    let bad = || "a decimal number is expected".to_string();
    let (negative, rest) = match text.as_bytes().first() {
        Some(b'-') => (true, &text[1..]),
        Some(b'+') => (false, &text[1..]),
        _ => (false, text),
    };
    let (mantissa, exponent) = match rest.find(['e', 'E']) {
        Some(i) => (&rest[..i], rest[i + 1..].parse::<i64>().map_err(|_| bad())?),
        None => (rest, 0),
    };
    let (int_part, frac_part) = match mantissa.find('.') {
        Some(i) => (&mantissa[..i], &mantissa[i + 1..]),
        None => (mantissa, ""),
    };
    if (int_part.is_empty() && frac_part.is_empty())
        || !int_part.bytes().chain(frac_part.bytes()).all(|b| b.is_ascii_digit())
    {
        return Err(bad());
    }
    if exponent.abs() > 1000 {
        return Err("a number within numeric's range is expected".into());
    }
    // Digits and where the decimal point goes among them.
    let digits: Vec<u8> = int_part.bytes().chain(frac_part.bytes()).map(|b| b - b'0').collect();
    let point = int_part.len() as i64 + exponent;
    let (mut int_digits, mut frac_digits): (Vec<u8>, Vec<u8>) = if point <= 0 {
        let mut f = vec![0; (-point) as usize];
        f.extend_from_slice(&digits);
        (vec![], f)
    } else if point as usize >= digits.len() {
        let mut i = digits.clone();
        i.resize(point as usize, 0);
        (i, vec![])
    } else {
        (digits[..point as usize].to_vec(), digits[point as usize..].to_vec())
    };
    if let Some((precision, scale)) = typmod {
        let scale = scale as usize;
        if frac_digits.len() > scale {
            let round_up = frac_digits[scale] >= 5;
            frac_digits.truncate(scale);
            if round_up {
                // Carry through the fraction, then the integer digits.
                let mut carry = true;
                for d in frac_digits.iter_mut().rev().chain(int_digits.iter_mut().rev()) {
                    if !carry {
                        break;
                    }
                    *d += 1;
                    carry = *d == 10;
                    if carry {
                        *d = 0;
                    }
                }
                if carry {
                    int_digits.insert(0, 1);
                }
            }
        }
        frac_digits.resize(scale, 0);
        let significant = int_digits.iter().skip_while(|d| **d == 0).count();
        let allowed = precision as usize - scale;
        if significant > allowed {
            return Err(format!(
                "a number with at most {allowed} digits before the decimal point is expected (numeric({precision},{scale}))"
            ));
        }
    } else if frac_digits.len() > 16383 {
        return Err("a number with at most 16383 decimals is expected".into());
    }
    let dscale = frac_digits.len();
    // Base-10000 groups aligned on the decimal point.
    let lead = (4 - int_digits.len() % 4) % 4;
    let mut padded_int = vec![0u8; lead];
    padded_int.extend_from_slice(&int_digits);
    let mut padded_frac = frac_digits.clone();
    padded_frac.resize(frac_digits.len().div_ceil(4) * 4, 0);
    let group = |c: &[u8]| c.iter().fold(0i16, |acc, d| acc * 10 + i16::from(*d));
    let mut groups: Vec<i16> = padded_int.chunks(4).map(group).collect();
    let mut weight = groups.len() as i64 - 1;
    groups.extend(padded_frac.chunks(4).map(group));
    while groups.first() == Some(&0) {
        groups.remove(0);
        weight -= 1;
    }
    while groups.last() == Some(&0) {
        groups.pop();
    }
    if groups.is_empty() {
        weight = 0;
    }
    if weight > i64::from(i16::MAX) || weight < i64::from(i16::MIN) {
        return Err("a number within numeric's range is expected".into());
    }
    out.put_i16(groups.len() as i16);
    out.put_i16(weight as i16);
    out.put_u16(if negative && !groups.is_empty() { 0x4000 } else { 0 });
    out.put_i16(dscale as i16);
    for g in groups {
        out.put_i16(g);
    }
    Ok(out.freeze())
}

/// `Map` re-exported for callers that build metadata in tests.
pub type Object = Map<String, Value>;

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn col(name: &str, ty: &str, nullable: bool) -> MetadataColumn {
        MetadataColumn {
            name: name.into(),
            data_type: MetaType::parse(ty).unwrap(),
            nullable,
        }
    }

    fn one(v: Value, ty: &str) -> Result<Option<Bytes>, CastError> {
        cast(Some(&v), &col("k", ty, true))
    }

    fn bytes(v: Value, ty: &str) -> Vec<u8> {
        one(v, ty).unwrap().unwrap().to_vec()
    }

    #[test]
    fn splits_typed_keys_from_the_rest() {
        let columns = vec![col("page", "integer", true), col("source", "text", false)];
        let json = JsonColumn {
            name: "langchain_metadata".into(),
            jsonb: false,
        };
        let mut raw = vec![1u8];
        raw.extend_from_slice(br#"{"page": 3, "source": "a.pdf", "nested": {"x": [1, 2]}}"#);
        let s = split(Some(&raw), true, &columns, Some(&json)).unwrap();
        assert_eq!(s.typed[0].as_deref(), Some(&3i32.to_be_bytes()[..]));
        assert_eq!(s.typed[1].as_deref(), Some(&b"a.pdf"[..]));
        let rest: Value = serde_json::from_slice(s.json.as_ref().unwrap()).unwrap();
        assert_eq!(rest, json!({"nested": {"x": [1, 2]}}));
        // jsonb target: version byte in front.
        let s = split(
            Some(&raw),
            true,
            &columns[..1],
            Some(&JsonColumn {
                jsonb: true,
                ..json.clone()
            }),
        )
        .unwrap();
        assert_eq!(s.json.as_ref().unwrap()[0], 1);
        // Without typed columns the JSON passes through (jsonb -> json drops the version byte).
        let s = split(Some(&raw), true, &[], Some(&json)).unwrap();
        assert_eq!(&s.json.unwrap()[..], &raw[1..]);
        // No JSON column: the rest is dropped.
        assert_eq!(split(Some(&raw), true, &columns, None).unwrap().json, None);
        // SQL NULL cmetadata: NULLs, and a NOT NULL column refuses it.
        let e = split(None, true, &columns, Some(&json)).unwrap_err();
        assert_eq!((e.column, e.error), (1, CastError::Missing { null: false }));
        let s = split(None, true, &columns[..1], Some(&json)).unwrap();
        assert_eq!(
            s,
            Split {
                typed: vec![None],
                json: None
            }
        );
        // All keys taken: "{}" remains, as LangChain's migrator writes.
        let s = split(Some(br#"{"page": 1}"#), false, &columns[..1], Some(&json)).unwrap();
        assert_eq!(&s.json.unwrap()[..], b"{}");
        // Not an object: kept whole.
        let s = split(Some(br#"[1, 2]"#), false, &columns[..1], Some(&json)).unwrap();
        assert_eq!(&s.json.unwrap()[..], b"[1, 2]");
    }

    #[test]
    fn casts_follow_the_documented_rules() {
        assert_eq!(bytes(json!("x"), "text"), b"x");
        assert_eq!(bytes(json!(1.5), "text"), b"1.5");
        assert_eq!(bytes(json!({"a": 1}), "text"), br#"{"a":1}"#);
        assert_eq!(bytes(json!(7), "smallint"), 7i16.to_be_bytes());
        assert_eq!(bytes(json!("42"), "bigint"), 42i64.to_be_bytes());
        assert_eq!(bytes(json!(3.0), "integer"), 3i32.to_be_bytes());
        assert_eq!(bytes(json!(0.5), "real"), 0.5f32.to_be_bytes());
        assert_eq!(bytes(json!("1e3"), "float8"), 1000f64.to_be_bytes());
        assert_eq!(bytes(json!(true), "boolean"), [1]);
        assert_eq!(bytes(json!("off"), "boolean"), [0]);
        assert_eq!(bytes(json!("Y"), "boolean"), [1]);
        assert_eq!(
            bytes(json!("A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11"), "uuid"),
            uuid::Uuid::parse_str("a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11")
                .unwrap()
                .as_bytes()
        );
        assert_eq!(bytes(json!({"a": [1]}), "jsonb"), b"\x01{\"a\":[1]}");
        assert_eq!(bytes(json!("2000-01-02"), "date"), 1i32.to_be_bytes());
        assert_eq!(
            bytes(json!("2000-01-01T00:00:01.5"), "timestamp"),
            1_500_000i64.to_be_bytes()
        );
        assert_eq!(
            bytes(json!("2000-01-01 02:00:00+02:00"), "timestamp"),
            7_200_000_000i64.to_be_bytes()
        );
        assert_eq!(
            bytes(json!("2000-01-01T02:00:00+02:00"), "timestamptz"),
            0i64.to_be_bytes()
        );
        assert_eq!(
            bytes(json!("2000-01-01T00:01Z"), "timestamptz"),
            60_000_000i64.to_be_bytes()
        );
        assert_eq!(bytes(json!("2000-01-01 00:00:00"), "timestamptz"), 0i64.to_be_bytes());
        let arr = bytes(json!(["a", null, 3]), "text[]");
        assert_eq!(&arr[..4], &1i32.to_be_bytes()); // one dimension
        assert!(arr.ends_with(b"\0\0\0\x013"));
        assert_eq!(bytes(json!("abc  "), "varchar(3)"), b"abc  ");
    }

    #[test]
    fn values_that_do_not_fit_are_errors_not_nulls() {
        let why = |v: Value, ty: &str| match one(v, ty) {
            Err(CastError::Mismatch { got, why }) => format!("{got}: {why}"),
            other => panic!("{other:?}"),
        };
        assert!(why(json!("three"), "integer").starts_with("a string of 5 characters: an integral number"));
        assert!(why(json!(70000), "smallint").contains("out of range"));
        assert!(why(json!(2.5), "bigint").starts_with("a number with a fraction"));
        assert!(why(json!(1e39), "real").contains("real's range"));
        assert!(why(json!("abcd"), "varchar(3)").contains("4 characters, more than the 3"));
        assert!(why(json!("maybe"), "boolean").contains("t/f"));
        assert!(why(json!("nope"), "uuid").contains("UUID"));
        assert!(why(json!("yesterday"), "date").contains("YYYY-MM-DD"));
        assert!(why(json!(17), "timestamptz").starts_with("an integer number"));
        assert!(why(json!("x"), "text[]").contains("array"));
        assert!(why(json!("a\u{0}b"), "text").contains("NUL"));
        assert!(why(json!(123.456), "numeric(4,2)").contains("at most 2 digits before"));
        let not_null = col("k", "text", false);
        assert_eq!(cast(None, &not_null), Err(CastError::Missing { null: false }));
        assert_eq!(
            cast(Some(&Value::Null), &not_null),
            Err(CastError::Missing { null: true })
        );
        assert_eq!(cast(Some(&Value::Null), &col("k", "integer", true)), Ok(None));
    }

    /// ndigits, weight, sign, dscale, digits.
    fn numeric(text: &str, typmod: Option<(u32, u32)>) -> Vec<i16> {
        let b = encode_numeric(text, typmod).unwrap();
        b.chunks(2).map(|c| i16::from_be_bytes([c[0], c[1]])).collect()
    }

    #[test]
    fn numeric_binary_form() {
        assert_eq!(numeric("0", None), [0, 0, 0, 0]);
        assert_eq!(numeric("12345.678", None), [3, 1, 0, 3, 1, 2345, 6780]);
        assert_eq!(numeric("-0.0001", None), [1, -1, 0x4000, 4, 1]);
        assert_eq!(numeric("1e-7", None), [1, -2, 0, 7, 10]);
        assert_eq!(numeric("1.5E3", None), [1, 0, 0, 0, 1500]);
        assert_eq!(numeric("10000", None), [1, 1, 0, 0, 1]);
        assert_eq!(numeric("9.995", Some((4, 2))), [1, 0, 0, 2, 10]);
        assert_eq!(numeric("-2.5", Some((3, 0))), [1, 0, 0x4000, 0, 3]);
        assert_eq!(numeric("1.2", Some((5, 3))), [2, 0, 0, 3, 1, 2000]);
        assert_eq!(numeric("NaN", None), [0, 0, 0xC000u16 as i16, 0]);
        assert!(encode_numeric("9.995", Some((3, 2))).is_err());
        assert!(encode_numeric("1.2.3", None).is_err());
        assert!(encode_numeric("", None).is_err());
        assert!(encode_numeric("1e5000", None).is_err());
    }
}
