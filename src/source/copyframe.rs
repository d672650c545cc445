//! PURE: a streaming transcoder for `COPY ... (FORMAT binary)` data.
//!
//! ```text
//!   header:  "PGCOPY\n\xff\r\n\0" | i32 flags | i32 extension length | extension bytes
//!   tuple:   i16 field count | per field: i32 length (-1 = NULL) | length bytes
//!   trailer: i16 -1
//! ```
//! Chunks from the source's COPY OUT arrive at arbitrary boundaries. [`Transcoder::push`]
//! buffers what it needs, rewrites every complete tuple through a per-field function (which may
//! convert a value, e.g. vector -> halfvec), and emits a valid COPY binary stream for the target.
//! Fields the function leaves alone are copied as bytes.

use bytes::{Buf, BufMut, Bytes, BytesMut};

const SIGNATURE: &[u8; 11] = b"PGCOPY\n\xff\r\n\0";

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum FrameError {
    #[error("the source's COPY data does not start with the binary COPY signature")]
    BadSignature,
    #[error("the source's COPY data has a negative length ({0}) where a field length was expected")]
    BadLength(i32),
    #[error("the source's COPY data has {got} fields in a row, expected {want}")]
    FieldCount { got: i16, want: usize },
    #[error("the source's COPY data ended in the middle of a row")]
    Truncated,
    /// The field function refused a value (e.g. out of halfvec range); `row` counts from 1.
    #[error("row {row}: {message}")]
    Convert { row: u64, field: usize, message: String },
}

#[derive(Debug, PartialEq)]
enum State {
    Header,
    Tuples,
    Done,
}

/// Rewrites a binary COPY stream tuple by tuple. See the module docs.
#[derive(Debug)]
pub struct Transcoder {
    fields: usize,
    state: State,
    buf: BytesMut,
    rows: u64,
}

impl Transcoder {
    pub fn new(fields: usize) -> Transcoder {
        Transcoder {
            fields,
            state: State::Header,
            buf: BytesMut::new(),
            rows: 0,
        }
    }

    pub fn rows(&self) -> u64 {
        self.rows
    }

    /// Feed a chunk; complete tuples are rewritten into `out`. `convert(field, value, row)`
    /// returns `Ok(None)` to keep the value's bytes, `Ok(Some(bytes))` to replace them; it is
    /// called for non-NULL values only. The row slice lets it name the row (e.g. its key).
    pub fn push<F>(&mut self, chunk: &[u8], out: &mut BytesMut, mut convert: F) -> Result<(), FrameError>
    where
        F: FnMut(usize, &[u8], &RowView<'_>) -> Result<Option<Bytes>, String>,
    {
        self.buf.extend_from_slice(chunk);
        loop {
            match self.state {
                State::Done => {
                    self.buf.clear();
                    return Ok(());
                }
                State::Header => {
                    if self.buf.len() < 19 {
                        return Ok(());
                    }
                    if &self.buf[..11] != SIGNATURE {
                        return Err(FrameError::BadSignature);
                    }
                    let ext = i32::from_be_bytes(self.buf[15..19].try_into().expect("4 bytes"));
                    if ext < 0 {
                        return Err(FrameError::BadLength(ext));
                    }
                    let total = 19 + ext as usize;
                    if self.buf.len() < total {
                        return Ok(());
                    }
                    // The target gets a plain header (flags 0, no extension).
                    out.put_slice(SIGNATURE);
                    out.put_i32(0);
                    out.put_i32(0);
                    self.buf.advance(total);
                    self.state = State::Tuples;
                }
                State::Tuples => {
                    let Some(spans) = self.complete_tuple()? else {
                        return Ok(());
                    };
                    let Some(spans) = spans else {
                        out.put_i16(-1);
                        self.buf.advance(2);
                        self.state = State::Done;
                        continue;
                    };
                    self.rows += 1;
                    let row = RowView {
                        data: &self.buf,
                        spans: &spans,
                    };
                    out.put_i16(self.fields as i16);
                    for (i, span) in spans.iter().enumerate() {
                        match span {
                            None => out.put_i32(-1),
                            Some((start, end)) => {
                                let value = &self.buf[*start..*end];
                                match convert(i, value, &row).map_err(|message| FrameError::Convert {
                                    row: self.rows,
                                    field: i,
                                    message,
                                })? {
                                    None => {
                                        out.put_i32(value.len() as i32);
                                        out.put_slice(value);
                                    }
                                    Some(new) => {
                                        out.put_i32(new.len() as i32);
                                        out.put_slice(&new);
                                    }
                                }
                            }
                        }
                    }
                    let end = tuple_end(&self.buf, self.fields).ok_or(FrameError::Truncated)?;
                    self.buf.advance(end);
                }
            }
        }
    }

    /// Whether the stream ended with its trailer.
    pub fn finish(&self) -> Result<(), FrameError> {
        if self.state == State::Done {
            Ok(())
        } else {
            Err(FrameError::Truncated)
        }
    }

    #[allow(clippy::type_complexity)]
    fn complete_tuple(&self) -> Result<Option<Option<Vec<Option<(usize, usize)>>>>, FrameError> {
        complete_tuple(&self.buf, self.fields)
    }
}

/// `Ok(None)`: incomplete. `Ok(Some(None))`: the trailer. `Ok(Some(Some(spans)))`: one
/// complete tuple with each field's byte range (None = NULL).
#[allow(clippy::type_complexity)]
fn complete_tuple(buf: &[u8], fields: usize) -> Result<Option<Option<Vec<Option<(usize, usize)>>>>, FrameError> {
    if buf.len() < 2 {
        return Ok(None);
    }
    let count = i16::from_be_bytes([buf[0], buf[1]]);
    if count == -1 {
        return Ok(Some(None));
    }
    if count < 0 || count as usize != fields {
        return Err(FrameError::FieldCount {
            got: count,
            want: fields,
        });
    }
    let mut at = 2;
    let mut spans = Vec::with_capacity(fields);
    for _ in 0..fields {
        if buf.len() < at + 4 {
            return Ok(None);
        }
        let len = i32::from_be_bytes(buf[at..at + 4].try_into().expect("4 bytes"));
        at += 4;
        if len == -1 {
            spans.push(None);
            continue;
        }
        if len < 0 {
            return Err(FrameError::BadLength(len));
        }
        let end = at + len as usize;
        if buf.len() < end {
            return Ok(None);
        }
        spans.push(Some((at, end)));
        at = end;
    }
    Ok(Some(Some(spans)))
}

/// Splits a binary COPY stream into rows, for readers that route rows rather than rewrite
/// them (LangChain mode's snapshot). Values are slices of the received chunks, not copies.
#[derive(Debug)]
pub struct RowReader {
    fields: usize,
    state: State,
    buf: BytesMut,
    rows: u64,
}

impl RowReader {
    pub fn new(fields: usize) -> RowReader {
        RowReader {
            fields,
            state: State::Header,
            buf: BytesMut::new(),
            rows: 0,
        }
    }

    /// Rows read so far.
    pub fn rows(&self) -> u64 {
        self.rows
    }

    /// Feed a chunk; `row` gets each complete row's values (None = NULL). An error from `row`
    /// stops the reading and comes back as [`FrameError::Convert`].
    pub fn push<F>(&mut self, chunk: &[u8], mut row: F) -> Result<(), FrameError>
    where
        F: FnMut(Vec<Option<Bytes>>) -> Result<(), String>,
    {
        self.buf.extend_from_slice(chunk);
        loop {
            match self.state {
                State::Done => {
                    self.buf.clear();
                    return Ok(());
                }
                State::Header => {
                    if self.buf.len() < 19 {
                        return Ok(());
                    }
                    if &self.buf[..11] != SIGNATURE {
                        return Err(FrameError::BadSignature);
                    }
                    let ext = i32::from_be_bytes(self.buf[15..19].try_into().expect("4 bytes"));
                    if ext < 0 {
                        return Err(FrameError::BadLength(ext));
                    }
                    let total = 19 + ext as usize;
                    if self.buf.len() < total {
                        return Ok(());
                    }
                    self.buf.advance(total);
                    self.state = State::Tuples;
                }
                State::Tuples => {
                    let Some(spans) = complete_tuple(&self.buf, self.fields)? else {
                        return Ok(());
                    };
                    let Some(spans) = spans else {
                        self.buf.advance(2);
                        self.state = State::Done;
                        continue;
                    };
                    self.rows += 1;
                    let end = tuple_end(&self.buf, self.fields).ok_or(FrameError::Truncated)?;
                    let bytes = self.buf.split_to(end).freeze();
                    let values = spans.iter().map(|s| s.map(|(a, b)| bytes.slice(a..b))).collect();
                    row(values).map_err(|message| FrameError::Convert {
                        row: self.rows,
                        field: 0,
                        message,
                    })?;
                }
            }
        }
    }

    /// Whether the stream ended with its trailer.
    pub fn finish(&self) -> Result<(), FrameError> {
        if self.state == State::Done {
            Ok(())
        } else {
            Err(FrameError::Truncated)
        }
    }
}

fn tuple_end(buf: &[u8], fields: usize) -> Option<usize> {
    let mut at = 2;
    for _ in 0..fields {
        let len = i32::from_be_bytes(buf.get(at..at + 4)?.try_into().ok()?);
        at += 4;
        if len > 0 {
            at += len as usize;
        }
    }
    (at <= buf.len()).then_some(at)
}

/// The current row, for naming it in an error (e.g. by its key column).
pub struct RowView<'a> {
    data: &'a [u8],
    spans: &'a [Option<(usize, usize)>],
}

impl RowView<'_> {
    /// Field `i`'s bytes (None = NULL or out of range).
    pub fn field(&self, i: usize) -> Option<&[u8]> {
        self.spans.get(i).copied().flatten().map(|(s, e)| &self.data[s..e])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stream(rows: &[Vec<Option<&[u8]>>], ext: &[u8]) -> Vec<u8> {
        let mut v = SIGNATURE.to_vec();
        v.extend_from_slice(&0i32.to_be_bytes());
        v.extend_from_slice(&(ext.len() as i32).to_be_bytes());
        v.extend_from_slice(ext);
        for row in rows {
            v.extend_from_slice(&(row.len() as i16).to_be_bytes());
            for f in row {
                match f {
                    None => v.extend_from_slice(&(-1i32).to_be_bytes()),
                    Some(b) => {
                        v.extend_from_slice(&(b.len() as i32).to_be_bytes());
                        v.extend_from_slice(b);
                    }
                }
            }
        }
        v.extend_from_slice(&(-1i16).to_be_bytes());
        v
    }

    #[test]
    fn identity_at_every_chunk_size_and_conversion_of_one_field() {
        let rows: Vec<Vec<Option<&[u8]>>> = vec![
            vec![Some(b"\x00\x00\x00\x01"), Some(b"abc"), None],
            vec![Some(b"\x00\x00\x00\x02"), Some(b""), Some(b"xy")],
        ];
        let input = stream(&rows, b"");
        for chunk in 1..=input.len() {
            let mut t = Transcoder::new(3);
            let mut out = BytesMut::new();
            for c in input.chunks(chunk) {
                t.push(c, &mut out, |_, _, _| Ok(None)).unwrap();
            }
            t.finish().unwrap();
            assert_eq!(&out[..], &input[..], "chunk size {chunk}");
            assert_eq!(t.rows(), 2);
        }
        // Field 1 upper-cased; NULLs stay NULL; the header extension is dropped.
        let input = stream(&rows, b"ext!");
        let mut t = Transcoder::new(3);
        let mut out = BytesMut::new();
        t.push(&input, &mut out, |i, v, _| {
            Ok((i == 1).then(|| Bytes::from(v.to_ascii_uppercase())))
        })
        .unwrap();
        let want = stream(
            &[
                vec![Some(b"\x00\x00\x00\x01"), Some(b"ABC"), None],
                vec![Some(b"\x00\x00\x00\x02"), Some(b""), Some(b"xy")],
            ],
            b"",
        );
        assert_eq!(&out[..], &want[..]);
    }

    #[test]
    fn errors_name_the_row_and_reject_malformed_input() {
        let rows: Vec<Vec<Option<&[u8]>>> = vec![vec![Some(b"k1"), Some(b"ok")], vec![Some(b"k2"), Some(b"bad")]];
        let input = stream(&rows, b"");
        let mut t = Transcoder::new(2);
        let err = t
            .push(&input, &mut BytesMut::new(), |i, v, row| {
                if v == b"bad" {
                    Err(format!(
                        "field {i} of key {}",
                        String::from_utf8_lossy(row.field(0).unwrap())
                    ))
                } else {
                    Ok(None)
                }
            })
            .unwrap_err();
        assert_eq!(
            err,
            FrameError::Convert {
                row: 2,
                field: 1,
                message: "field 1 of key k2".into()
            }
        );

        assert_eq!(
            Transcoder::new(2).push(b"NOTPGCOPY\n\0\0\0\0\0\0\0\0\0", &mut BytesMut::new(), |_, _, _| Ok(
                None
            )),
            Err(FrameError::BadSignature)
        );
        let mut wrong = Transcoder::new(3);
        assert!(matches!(
            wrong.push(&input, &mut BytesMut::new(), |_, _, _| Ok(None)),
            Err(FrameError::FieldCount { got: 2, want: 3 })
        ));
        // Every truncation is incomplete (never a panic), and finish says so.
        for cut in 0..input.len() - 1 {
            let mut t = Transcoder::new(2);
            let _ = t.push(&input[..cut], &mut BytesMut::new(), |_, _, _| Ok(None));
            assert_eq!(t.finish(), Err(FrameError::Truncated), "cut at {cut}");
        }
    }

    #[test]
    fn row_reader_splits_rows_across_chunks() {
        let data = stream(
            &[
                vec![Some(b"abc".as_slice()), None],
                vec![Some(b"".as_slice()), Some(b"xy".as_slice())],
            ],
            b"ext",
        );
        for split in 1..data.len() {
            let mut r = RowReader::new(2);
            let mut rows = Vec::new();
            for chunk in [&data[..split], &data[split..]] {
                r.push(chunk, |v| {
                    rows.push(v);
                    Ok(())
                })
                .unwrap();
            }
            r.finish().unwrap();
            assert_eq!(r.rows(), 2);
            assert_eq!(
                rows,
                vec![
                    vec![Some(Bytes::from_static(b"abc")), None],
                    vec![Some(Bytes::from_static(b"")), Some(Bytes::from_static(b"xy"))],
                ],
                "split at {split}"
            );
        }
        let mut r = RowReader::new(3);
        assert!(matches!(r.push(&data, |_| Ok(())), Err(FrameError::FieldCount { .. })));
    }
}
