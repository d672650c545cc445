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

use std::collections::HashMap;

use crate::sql::{display_ident, quote_ident, quote_literal, QualifiedName};

/// One parsed `pg_get_indexdef` line. Names are unquoted; expressions and the predicate are kept
/// exactly as PostgreSQL printed them (ready to splice back into SQL).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexDef {
    pub unique: bool,
    /// Unquoted index name.
    pub name: String,
    /// Access method: `btree`, `hnsw`, `ivfflat`, `gin`, ...
    pub method: String,
    /// Key items inside `USING am ( ... )`.
    pub keys: Vec<IndexKey>,
    /// `INCLUDE (...)` columns, unquoted.
    pub include: Vec<String>,
    /// `NULLS NOT DISTINCT` (PostgreSQL 15+, unique indexes).
    pub nulls_not_distinct: bool,
    /// `WITH (m='16', ef_construction='64')` -> `[("m","16"),("ef_construction","64")]`, unquoted.
    pub options: Vec<(String, String)>,
    /// `WHERE (...)`: the text after `WHERE `, verbatim (e.g. `((cat = 1) AND (x IS NOT NULL))`).
    pub predicate: Option<String>,
}

/// One key item: a plain column or an expression, an optional operator class, and the rest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexKey {
    /// Unquoted column name, when the key is a plain column.
    pub column: Option<String>,
    /// Expression text as printed, when the key is an expression: either a function call
    /// (`lower(title)`, `COALESCE(n, 0)`) or a parenthesised expression including its outer
    /// parentheses (`((embedding)::halfvec(3000))`).
    pub expression: Option<String>,
    /// The operator class, when PostgreSQL printed one (it omits the type's default for the AM).
    pub opclass: Option<Opclass>,
    /// Everything else, verbatim and single-space separated, in this order: `COLLATE <name>`,
    /// operator class parameters `(siglen='32')`, ordering `DESC NULLS LAST`. Empty when none.
    pub rest: String,
}

/// An operator class, possibly schema-qualified (`extensions.vector_ip_ops`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Opclass {
    pub schema: Option<String>,
    pub name: String,
}

/// The target profile (one definition for the whole crate).
pub use crate::config::profile::Profile;

/// What a source column holds (pgvector types by name; everything else is `Other`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColumnKind {
    Vector,
    Halfvec,
    Sparsevec,
    Bit,
    Other,
}

/// Everything [`translate`] needs to know about the table besides the index itself.
#[derive(Debug, Clone)]
pub struct TranslateContext {
    pub profile: Profile,
    /// Source column name -> kind. Columns not listed are `Other`.
    pub column_types: HashMap<String, ColumnKind>,
    /// Source column name -> dimensions (typmod; bits for `bit(n)`).
    pub dims: HashMap<String, u32>,
    /// `pg_class.reltuples` of the source table (-1 when never analysed).
    pub estimated_rows: i64,
    /// AlloyDB only: build ScaNN indexes instead of keeping the pgvector ones.
    pub alloydb_scann: bool,
    /// Source column name -> target column name, for renamed columns.
    pub column_renames: HashMap<String, String>,
}

/// The result of translating one index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Translation {
    /// DDL to run after the copy, plus notes for `plan` (clamped options, renamed opclass...).
    Create {
        sql: String,
        notes: Vec<String>,
        /// The extension that provides the index's access method or operator class (`vector`,
        /// `lantern`, `vectors`, `vchord`, `alloydb_scann`); `None` for core access methods.
        extension: Option<String>,
    },
    /// No equivalent on the target: skipped, with the reason and what the user can do.
    Skip { reason: String },
}

// ------------------------------------------------------------------------------------------------
// Parsing
// ------------------------------------------------------------------------------------------------

/// Parse `pg_get_indexdef` output. `table_printed` is how the table's name appears after `ON`
/// (e.g. `public.items` or `"My S"."T"`); it must match exactly.
pub fn parse(def: &str, table_printed: &str) -> Result<IndexDef, String> {
    let text = def.trim().trim_end_matches(';').trim_end();
    let err = |what: &str| format!("cannot parse index definition `{text}`: {what}");
    let mut c = Cursor::new(text);
    if !c.eat("CREATE ") {
        return Err(err("expected it to start with CREATE"));
    }
    let unique = c.eat("UNIQUE ");
    if !c.eat("INDEX ") {
        return Err(err("expected INDEX after CREATE [UNIQUE]"));
    }
    // Never printed by pg_get_indexdef, but harmless to accept in hand-written definitions.
    c.eat("CONCURRENTLY ");
    c.eat("IF NOT EXISTS ");
    let name = c.ident().map_err(|e| err(&e))?;
    if !c.eat(" ON ") {
        return Err(err("expected ON after the index name"));
    }
    c.eat("ONLY ");
    if !c.eat(table_printed) {
        return Err(err(&format!("expected the table {table_printed} after ON")));
    }
    if !c.eat(" USING ") {
        return Err(err("expected USING <access method> after the table"));
    }
    let method = c.ident().map_err(|e| err(&e))?;
    c.skip_ws();
    let keys_text = c.paren_group().map_err(|e| err(&e))?;
    let keys = split_top_level(keys_text)
        .map_err(|e| err(&e))?
        .into_iter()
        .map(parse_key)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| err(&e))?;
    if keys.is_empty() {
        return Err(err("no key columns"));
    }

    let mut include = Vec::new();
    if c.eat(" INCLUDE ") {
        let inner = c.paren_group().map_err(|e| err(&e))?;
        for item in split_top_level(inner).map_err(|e| err(&e))? {
            let mut ic = Cursor::new(item.trim());
            let col = ic.ident().map_err(|e| err(&e))?;
            if !ic.at_end() {
                return Err(err(&format!("INCLUDE item `{item}` is not a column name")));
            }
            include.push(col);
        }
    }
    let nulls_not_distinct = c.eat(" NULLS NOT DISTINCT");
    let mut options = Vec::new();
    if c.eat(" WITH ") {
        let inner = c.paren_group().map_err(|e| err(&e))?;
        for item in split_top_level(inner).map_err(|e| err(&e))? {
            options.push(parse_option(item.trim()).map_err(|e| err(&e))?);
        }
    }
    if c.eat(" TABLESPACE ") {
        c.ident().map_err(|e| err(&e))?;
    }
    let mut predicate = None;
    if c.eat(" WHERE ") {
        let p = c.rest().trim();
        if p.is_empty() {
            return Err(err("empty WHERE clause"));
        }
        predicate = Some(p.to_string());
        c.pos = c.s.len();
    }
    if !c.at_end() {
        return Err(err(&format!("unexpected `{}`", c.rest())));
    }
    Ok(IndexDef {
        unique,
        name,
        method,
        keys,
        include,
        nulls_not_distinct,
        options,
        predicate,
    })
}

fn parse_key(text: &str) -> Result<IndexKey, String> {
    let t = text.trim();
    let mut c = Cursor::new(t);
    let (column, expression) = if t.starts_with('(') {
        let end = scan_balanced(t, 0)?;
        c.pos = end;
        (None, Some(t[..end].to_string()))
    } else {
        let first = c.ident()?;
        let mut parts = 1;
        while c.peek() == Some('.') {
            c.pos += 1;
            c.ident()?;
            parts += 1;
        }
        if c.peek() == Some('(') {
            let end = scan_balanced(t, c.pos)?;
            c.pos = end;
            (None, Some(t[..end].to_string()))
        } else if parts == 1 {
            (Some(first), None)
        } else {
            return Err(format!("key `{t}` is neither a column nor an expression"));
        }
    };
    let mut rest = Vec::new();
    c.skip_ws();
    if c.eat_word("COLLATE") {
        c.skip_ws();
        let start = c.pos;
        c.ident_chain()?;
        rest.push(format!("COLLATE {}", &t[start..c.pos]));
        c.skip_ws();
    }
    let mut opclass = None;
    if c.at_ident_start() && !["ASC", "DESC", "NULLS"].iter().any(|w| c.at_word(w)) {
        let mut parts = c.ident_chain()?;
        let name = parts.pop().unwrap_or_default();
        let schema = parts.pop();
        if !parts.is_empty() {
            return Err(format!("operator class in key `{t}` has too many name parts"));
        }
        opclass = Some(Opclass { schema, name });
        c.skip_ws();
    }
    if c.peek() == Some('(') {
        rest.push(c.paren_group_with_parens()?.to_string());
        c.skip_ws();
    }
    let tail = c.rest().trim();
    if !tail.is_empty() {
        rest.push(tail.to_string());
    }
    Ok(IndexKey {
        column,
        expression,
        opclass,
        rest: rest.join(" "),
    })
}

fn parse_option(item: &str) -> Result<(String, String), String> {
    let mut c = Cursor::new(item);
    let name = c.ident_chain()?.join(".");
    c.skip_ws();
    if !c.eat("=") {
        return Err(format!("option `{item}` has no `=`"));
    }
    c.skip_ws();
    let value = if c.peek() == Some('\'') {
        let v = c.string_literal()?;
        if !c.at_end() {
            return Err(format!("unexpected text after the value of option `{item}`"));
        }
        v
    } else {
        c.rest().trim().to_string()
    };
    if value.is_empty() {
        return Err(format!("option `{item}` has an empty value"));
    }
    Ok((name, value))
}

/// Split `COLLATE <name>` off the front of [`IndexKey::rest`]: (collate clause, the remainder).
fn split_rest(rest: &str) -> (Option<&str>, &str) {
    let rest = rest.trim();
    let mut c = Cursor::new(rest);
    if c.eat_word("COLLATE") {
        c.skip_ws();
        if c.ident_chain().is_ok() {
            return (Some(&rest[..c.pos]), rest[c.pos..].trim());
        }
    }
    (None, rest)
}

/// A byte cursor over ASCII-structured SQL text (identifiers may hold any UTF-8).
struct Cursor<'a> {
    s: &'a str,
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn new(s: &'a str) -> Self {
        Cursor { s, pos: 0 }
    }

    fn rest(&self) -> &'a str {
        &self.s[self.pos..]
    }

    fn at_end(&self) -> bool {
        self.rest().trim().is_empty()
    }

    fn peek(&self) -> Option<char> {
        self.rest().chars().next()
    }

    fn eat(&mut self, lit: &str) -> bool {
        if self.rest().starts_with(lit) {
            self.pos += lit.len();
            true
        } else {
            false
        }
    }

    fn skip_ws(&mut self) {
        let rest = self.rest();
        self.pos += rest.len() - rest.trim_start().len();
    }

    /// At the bare keyword `word` (case-sensitive, as ruleutils prints it), followed by a non-identifier char.
    fn at_word(&self, word: &str) -> bool {
        let rest = self.rest();
        rest.starts_with(word) && !rest[word.len()..].chars().next().is_some_and(is_ident_char)
    }

    fn eat_word(&mut self, word: &str) -> bool {
        if self.at_word(word) {
            self.pos += word.len();
            true
        } else {
            false
        }
    }

    fn at_ident_start(&self) -> bool {
        self.peek()
            .is_some_and(|ch| ch == '"' || ch == '_' || ch.is_alphabetic())
    }

    /// One identifier: `"quoted ""x"""` (kept verbatim) or bare (folded to lower case).
    fn ident(&mut self) -> Result<String, String> {
        let rest = self.rest();
        if let Some(body) = rest.strip_prefix('"') {
            let mut out = String::new();
            let mut chars = body.char_indices().peekable();
            while let Some((i, ch)) = chars.next() {
                if ch == '"' {
                    if chars.peek().is_some_and(|&(_, n)| n == '"') {
                        chars.next();
                        out.push('"');
                    } else {
                        self.pos += 1 + i + 1;
                        if out.is_empty() {
                            return Err("empty quoted identifier".into());
                        }
                        return Ok(out);
                    }
                } else {
                    out.push(ch);
                }
            }
            return Err(format!("unterminated quoted identifier at `{rest}`"));
        }
        if !self.at_ident_start() {
            return Err(format!("expected an identifier at `{rest}`"));
        }
        let len = rest.find(|ch: char| !is_ident_char(ch)).unwrap_or(rest.len());
        self.pos += len;
        Ok(rest[..len].to_lowercase())
    }

    /// `a`, `a.b`, `"A"."b"`: the unquoted parts.
    fn ident_chain(&mut self) -> Result<Vec<String>, String> {
        let mut parts = vec![self.ident()?];
        while self.peek() == Some('.') {
            self.pos += 1;
            parts.push(self.ident()?);
        }
        Ok(parts)
    }

    /// `'it''s'` -> `it's` (standard-conforming strings, as ruleutils prints them).
    fn string_literal(&mut self) -> Result<String, String> {
        let rest = self.rest();
        let body = rest
            .strip_prefix('\'')
            .ok_or_else(|| format!("expected a string literal at `{rest}`"))?;
        let mut out = String::new();
        let mut chars = body.char_indices().peekable();
        while let Some((i, ch)) = chars.next() {
            if ch == '\'' {
                if chars.peek().is_some_and(|&(_, n)| n == '\'') {
                    chars.next();
                    out.push('\'');
                } else {
                    self.pos += 1 + i + 1;
                    return Ok(out);
                }
            } else {
                out.push(ch);
            }
        }
        Err(format!("unterminated string literal at `{rest}`"))
    }

    /// `( ... )` at the cursor: returns the inside and moves past the closing parenthesis.
    fn paren_group(&mut self) -> Result<&'a str, String> {
        let whole = self.paren_group_with_parens()?;
        Ok(&whole[1..whole.len() - 1])
    }

    fn paren_group_with_parens(&mut self) -> Result<&'a str, String> {
        if self.peek() != Some('(') {
            return Err(format!("expected `(` at `{}`", self.rest()));
        }
        let start = self.pos;
        let end = scan_balanced(self.s, start)?;
        self.pos = end;
        Ok(&self.s[start..end])
    }
}

fn is_ident_char(ch: char) -> bool {
    ch == '_' || ch == '$' || ch.is_alphanumeric()
}

/// `s[open]` is `(`: the byte index just past its matching `)`. String literals (`'..'`, `E'..'`)
/// and quoted identifiers (`".."`) are skipped, so parentheses and commas inside them don't count.
fn scan_balanced(s: &str, open: usize) -> Result<usize, String> {
    let bytes = s.as_bytes();
    let mut depth = 0usize;
    let mut i = open;
    while i < bytes.len() {
        match bytes[i] {
            b'(' => depth += 1,
            b')' => {
                depth = depth.saturating_sub(1);
                if depth == 0 {
                    return Ok(i + 1);
                }
            }
            b'\'' | b'"' => i = skip_quoted(s, i)?,
            _ => {}
        }
        i += 1;
    }
    Err(format!("unbalanced parentheses in `{}`", &s[open..]))
}

/// `s[at]` is a quote: the index of the closing quote. A doubled quote is part of the text; in an
/// `E'...'` literal a backslash escapes the next character.
fn skip_quoted(s: &str, at: usize) -> Result<usize, String> {
    let bytes = s.as_bytes();
    let q = bytes[at];
    let escapes = q == b'\''
        && at > 0
        && matches!(bytes[at - 1], b'E' | b'e')
        && (at < 2 || !is_ident_char(bytes[at - 2] as char));
    let mut i = at + 1;
    while i < bytes.len() {
        if escapes && bytes[i] == b'\\' {
            i += 2;
            continue;
        }
        if bytes[i] == q {
            if bytes.get(i + 1) == Some(&q) {
                i += 2;
                continue;
            }
            return Ok(i);
        }
        i += 1;
    }
    Err(format!("unterminated quote in `{}`", &s[at..]))
}

/// Split at commas that are outside parentheses, string literals and quoted identifiers.
fn split_top_level(s: &str) -> Result<Vec<&str>, String> {
    let bytes = s.as_bytes();
    let mut parts = Vec::new();
    let mut depth = 0usize;
    let mut start = 0;
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'(' => depth += 1,
            b')' => depth = depth.checked_sub(1).ok_or_else(|| format!("unbalanced `)` in `{s}`"))?,
            b'\'' | b'"' => i = skip_quoted(s, i)?,
            b',' if depth == 0 => {
                parts.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
        i += 1;
    }
    if depth != 0 {
        return Err(format!("unbalanced `(` in `{s}`"));
    }
    if !s[start..].trim().is_empty() || !parts.is_empty() {
        parts.push(&s[start..]);
    }
    Ok(parts)
}

/// Identifiers an expression mentions (quoted ones verbatim, bare lower-case ones); string
/// literals and upper-case keywords are skipped. Over-approximates (function and type names are
/// included).
fn referenced_identifiers(expr: &str) -> Vec<String> {
    identifier_positions(expr).into_iter().map(|(id, _)| id).collect()
}

/// [`referenced_identifiers`] with the byte offset just past each one.
fn identifier_positions(expr: &str) -> Vec<(String, usize)> {
    let mut out = Vec::new();
    let mut c = Cursor::new(expr);
    while !c.at_end() {
        let Some(ch) = c.peek() else { break };
        if ch == '\'' {
            match skip_quoted(expr, c.pos) {
                Ok(end) => c.pos = end + 1,
                Err(_) => break,
            }
        } else if ch == '"' || ch == '_' || ch.is_alphabetic() {
            let start = c.pos;
            match c.ident() {
                // ruleutils prints keywords (AND, IS NULL, CASE, COALESCE) in upper case and column
                // names bare only when they are lower case: a bare token with capitals is not a column.
                Ok(_) if ch != '"' && c.s[start..c.pos].chars().any(|x| x.is_uppercase()) => {}
                Ok(id) => out.push((id, c.pos)),
                Err(_) => break,
            }
        } else if ch.is_ascii_digit() || ch == '$' {
            // Skip numbers (and `$1`) whole, so `1e5` does not read as an identifier `e5`.
            let rest = c.rest();
            c.pos += rest.find(|x: char| !is_ident_char(x) && x != '.').unwrap_or(rest.len());
        } else {
            c.pos += ch.len_utf8();
        }
    }
    out
}

// ------------------------------------------------------------------------------------------------
// Translation
// ------------------------------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Metric {
    L2,
    Ip,
    Cosine,
    L1,
    Hamming,
    Jaccard,
}

impl Metric {
    fn suffix(self) -> &'static str {
        match self {
            Metric::L2 => "l2",
            Metric::Ip => "ip",
            Metric::Cosine => "cosine",
            Metric::L1 => "l1",
            Metric::Hamming => "hamming",
            Metric::Jaccard => "jaccard",
        }
    }

    fn describe(self) -> &'static str {
        match self {
            Metric::L2 => "L2",
            Metric::Ip => "inner-product",
            Metric::Cosine => "cosine",
            Metric::L1 => "L1",
            Metric::Hamming => "Hamming",
            Metric::Jaccard => "Jaccard",
        }
    }
}

fn kind_prefix(kind: ColumnKind) -> &'static str {
    match kind {
        ColumnKind::Vector => "vector",
        ColumnKind::Halfvec => "halfvec",
        ColumnKind::Sparsevec => "sparsevec",
        ColumnKind::Bit => "bit",
        ColumnKind::Other => "other",
    }
}

/// `vector_cosine_ops` -> (Vector, Cosine). Only pgvector's operator classes are recognised.
fn classify_opclass(name: &str) -> Option<(ColumnKind, Metric)> {
    let body = name.strip_suffix("_ops")?;
    let (prefix, metric) = body.rsplit_once('_')?;
    let kind = match prefix {
        "vector" => ColumnKind::Vector,
        "halfvec" => ColumnKind::Halfvec,
        "sparsevec" => ColumnKind::Sparsevec,
        "bit" => ColumnKind::Bit,
        _ => return None,
    };
    let metric = match metric {
        "l2" => Metric::L2,
        "ip" => Metric::Ip,
        "cosine" => Metric::Cosine,
        "l1" => Metric::L1,
        "hamming" => Metric::Hamming,
        "jaccard" => Metric::Jaccard,
        _ => return None,
    };
    let bit_metric = matches!(metric, Metric::Hamming | Metric::Jaccard);
    ((kind == ColumnKind::Bit) == bit_metric).then_some((kind, metric))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum VecMethod {
    Hnsw,
    Ivfflat,
}

/// A pgvector index: one key, hnsw or ivfflat, a pgvector operator class.
struct VecIndex<'a> {
    key: &'a IndexKey,
    method: VecMethod,
    kind: ColumnKind,
    metric: Metric,
    /// Source dimensions of a plain column key, when known.
    dims: Option<u32>,
}

impl VecIndex<'_> {
    fn opclass_name(&self) -> String {
        format!("{}_{}_ops", kind_prefix(self.kind), self.metric.suffix())
    }
}

fn vector_index<'a>(def: &'a IndexDef, ctx: &TranslateContext) -> Option<VecIndex<'a>> {
    let method = match def.method.as_str() {
        "hnsw" => VecMethod::Hnsw,
        "ivfflat" => VecMethod::Ivfflat,
        _ => return None,
    };
    let [key] = def.keys.as_slice() else { return None };
    let (kind, metric) = match (&key.opclass, method) {
        (Some(op), _) => classify_opclass(&op.name)?,
        // ivfflat's only DEFAULT operator class is vector_l2_ops (pg_get_indexdef omits it).
        (None, VecMethod::Ivfflat) => (ColumnKind::Vector, Metric::L2),
        (None, VecMethod::Hnsw) => return None,
    };
    let dims = key.column.as_ref().and_then(|c| ctx.dims.get(c).copied());
    Some(VecIndex {
        key,
        method,
        kind,
        metric,
        dims,
    })
}

/// The maximum dimensions an index of this column kind can hold on the target (for `plan`'s
/// "dims beyond the target's index limit" report). `None`: no dimension limit applies, or the
/// target has no such index at all (see [`translate`]'s skip reasons).
///
/// pgvector (and AlloyDB, and VectorChord's kept pgvector indexes): hnsw/ivfflat vector 2000,
/// halfvec 4000, bit 64000 (sparsevec is limited by non-zeros, 1000, not dimensions). halfvec:
/// vector and halfvec 4000. Lantern: 2000 (bit: 2000 int4 words = 64000 bits). PGVecto.rs:
/// 65535 (svector 1 048 575). VectorChord `vchordrq`: 16000 (pgvector's storage cap; vchord's own
/// check allows 60000).
pub fn index_dim_limit(profile: Profile, kind: ColumnKind) -> Option<u32> {
    use ColumnKind as K;
    match (profile, kind) {
        (_, K::Other) => None,
        (Profile::Pgvector | Profile::Alloydb, K::Vector) => Some(2000),
        (Profile::Pgvector | Profile::Alloydb, K::Halfvec) => Some(4000),
        (Profile::Pgvector | Profile::Alloydb | Profile::Halfvec | Profile::Vectorchord, K::Bit) => Some(64000),
        (Profile::Pgvector | Profile::Alloydb | Profile::Vectorchord, K::Sparsevec) => None,
        (Profile::Halfvec, K::Vector | K::Halfvec) => Some(4000),
        (Profile::Halfvec, K::Sparsevec) => None,
        (Profile::Lantern, K::Vector | K::Halfvec) => Some(2000),
        (Profile::Lantern, K::Bit) => Some(64000),
        (Profile::Lantern, K::Sparsevec) => None,
        (Profile::PgvectoRs, K::Vector | K::Halfvec | K::Bit) => Some(65535),
        (Profile::PgvectoRs, K::Sparsevec) => Some(1_048_575),
        (Profile::Vectorchord, K::Vector | K::Halfvec) => Some(16000),
    }
}

/// Translate one source index for the target table. Pure; see the module docs for the rules.
pub fn translate(def: &IndexDef, target_table: &QualifiedName, ctx: &TranslateContext) -> Translation {
    let idx = display_ident(&def.name);
    // Expressions and predicates are copied verbatim, so they must not mention renamed columns.
    let mut texts: Vec<&str> = def.keys.iter().filter_map(|k| k.expression.as_deref()).collect();
    texts.extend(def.predicate.as_deref());
    for text in &texts {
        for id in referenced_identifiers(text) {
            if let Some(to) = ctx.column_renames.get(&id).filter(|to| **to != id) {
                return Translation::Skip {
                    reason: format!(
                        "index {idx}: its expression or WHERE clause `{text}` reads column {} which is renamed to {} on the target, and pgvshift does not rewrite SQL expressions; create the index by hand with the new column name after the migration",
                        display_ident(&id),
                        display_ident(to)
                    ),
                };
            }
        }
    }
    let vector = vector_index(def, ctx);
    if let Some(reason) = reads_retyped_column(def, vector.is_none(), ctx, &idx) {
        return Translation::Skip { reason };
    }
    let mut b = Builder::new(def, target_table, ctx);
    match vector {
        None => plain(def, &mut b),
        Some(v) => match ctx.profile {
            Profile::Pgvector => identity(def, &mut b, &idx),
            Profile::Halfvec => to_halfvec(def, &v, &mut b, &idx),
            Profile::Lantern => to_lantern(def, &v, &mut b, &idx),
            Profile::PgvectoRs => to_pgvecto_rs(def, &v, &mut b, &idx),
            Profile::Vectorchord => to_vectorchord(def, &v, &mut b, ctx, &idx),
            Profile::Alloydb => to_alloydb(def, &v, &mut b, ctx, &idx),
        },
    }
}

/// Collects the pieces of the target statement.
struct Builder<'a> {
    def: &'a IndexDef,
    target: &'a QualifiedName,
    ctx: &'a TranslateContext,
    notes: Vec<String>,
}

impl<'a> Builder<'a> {
    fn new(def: &'a IndexDef, target: &'a QualifiedName, ctx: &'a TranslateContext) -> Self {
        Builder {
            def,
            target,
            ctx,
            notes: Vec::new(),
        }
    }

    fn target_column(&self, source: &str) -> String {
        quote_ident(
            self.ctx
                .column_renames
                .get(source)
                .map(String::as_str)
                .unwrap_or(source),
        )
    }

    /// The key's column (renamed, quoted) or expression (verbatim).
    fn key_sql(&self, key: &IndexKey) -> String {
        match (&key.column, &key.expression) {
            (Some(col), _) => self.target_column(col),
            (None, Some(expr)) => expr.clone(),
            (None, None) => String::new(),
        }
    }

    /// A key with an operator class written as given (or none) and the rest kept in place.
    fn full_key_sql(&self, key: &IndexKey, opclass: Option<String>) -> String {
        let (collate, tail) = split_rest(&key.rest);
        let mut parts = vec![self.key_sql(key)];
        parts.extend(collate.map(str::to_string));
        parts.extend(opclass);
        if !tail.is_empty() {
            parts.push(tail.to_string());
        }
        parts.join(" ")
    }

    /// `CREATE [UNIQUE] INDEX IF NOT EXISTS "name" ON "s"."t" USING am (keys) [INCLUDE] [NULLS NOT
    /// DISTINCT] [WITH (with)] [WHERE predicate]`.
    fn statement(&self, method: &str, keys: &[String], with: Option<String>) -> String {
        let d = self.def;
        let mut sql = format!(
            "CREATE {}INDEX IF NOT EXISTS {} ON {} USING {method} ({})",
            if d.unique { "UNIQUE " } else { "" },
            quote_ident(&d.name),
            self.target.quoted(),
            keys.join(", ")
        );
        if !d.include.is_empty() {
            let cols: Vec<String> = d.include.iter().map(|c| self.target_column(c)).collect();
            sql.push_str(&format!(" INCLUDE ({})", cols.join(", ")));
        }
        if d.nulls_not_distinct {
            sql.push_str(" NULLS NOT DISTINCT");
        }
        if let Some(with) = with {
            sql.push_str(&format!(" WITH ({with})"));
        }
        if let Some(pred) = &d.predicate {
            sql.push_str(&format!(" WHERE {pred}"));
        }
        sql
    }

    fn create(&mut self, sql: String, extension: Option<&str>) -> Translation {
        Translation::Create {
            sql,
            notes: std::mem::take(&mut self.notes),
            extension: extension.map(str::to_string),
        }
    }
}

/// The source's WITH options as they were: `m='16', ef_construction='64'`.
fn source_with(def: &IndexDef) -> Option<String> {
    (!def.options.is_empty()).then(|| {
        def.options
            .iter()
            .map(|(k, v)| format!("{}={}", option_name(k), quote_literal(v)))
            .collect::<Vec<_>>()
            .join(", ")
    })
}

fn option_name(name: &str) -> String {
    let bare = name.chars().next().is_some_and(|c| c.is_ascii_lowercase() || c == '_')
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '.');
    if bare {
        name.to_string()
    } else {
        quote_ident(name)
    }
}

/// An operator class as SQL: bare when that reads back the same (names ending in `_ops` are never
/// keywords), quoted otherwise; the schema is always quoted.
fn opclass_sql(op: &Opclass, keep_schema: bool) -> String {
    let name = if display_ident(&op.name) == op.name && op.name.ends_with("_ops") {
        op.name.clone()
    } else {
        quote_ident(&op.name)
    };
    match (&op.schema, keep_schema) {
        (Some(schema), true) => format!("{}.{name}", quote_ident(schema)),
        _ => name,
    }
}

fn int_option(def: &IndexDef, name: &str) -> Option<i64> {
    def.options
        .iter()
        .find(|(k, _)| k == name)
        .and_then(|(_, v)| v.trim().parse().ok())
}

/// Notes for WITH options a translation does not carry over.
fn note_dropped_options(b: &mut Builder, idx: &str, used: &[&str], target: &str) {
    for (k, v) in &b.def.options {
        if !used.contains(&k.as_str()) {
            b.notes.push(format!(
                "index {idx}: option {k}={v} has no {target} equivalent and is dropped"
            ));
        }
    }
}

fn plain(def: &IndexDef, b: &mut Builder) -> Translation {
    let keys: Vec<String> = def
        .keys
        .iter()
        .map(|k| b.full_key_sql(k, k.opclass.as_ref().map(|op| opclass_sql(op, true))))
        .collect();
    let sql = b.statement(&def.method, &keys, source_with(def));
    b.create(sql, vector_index_extension(def))
}

/// On Lantern and PGVecto.rs vector columns change type (real[], vectors.*), so pgvector's
/// functions, casts and operators no longer apply to them: an expression key (of a plain index)
/// or a predicate that reads a vector column is skipped, unless every use is `IS [NOT] NULL`.
fn reads_retyped_column(def: &IndexDef, plain: bool, ctx: &TranslateContext, idx: &str) -> Option<String> {
    if !matches!(ctx.profile, Profile::Lantern | Profile::PgvectoRs) {
        return None;
    }
    let (engine, becomes) = match ctx.profile {
        Profile::Lantern => ("Lantern", "real[] (or integer[] for bit)"),
        _ => ("PGVecto.rs", "a vectors.* type"),
    };
    let mut texts: Vec<&str> = Vec::new();
    if plain {
        texts.extend(def.keys.iter().filter_map(|k| k.expression.as_deref()));
    }
    texts.extend(def.predicate.as_deref());
    for text in texts {
        for (col, end) in identifier_positions(text) {
            let retyped = ctx.column_types.get(&col).is_some_and(|k| *k != ColumnKind::Other);
            let after = text[end..].trim_start();
            if retyped && !(after.starts_with("IS NOT NULL") || after.starts_with("IS NULL")) {
                return Some(format!(
                    "index {idx}: its expression or WHERE clause `{text}` reads the vector column {}, which becomes {becomes} on {engine}, where pgvector's functions, casts and operators do not apply; re-create the index by hand in {engine}'s terms after the migration, or do without it",
                    display_ident(&col)
                ));
            }
        }
    }
    None
}

/// A plain hnsw/ivfflat index (non-pgvector opclass) still needs pgvector's AM.
fn vector_index_extension(def: &IndexDef) -> Option<&'static str> {
    matches!(def.method.as_str(), "hnsw" | "ivfflat").then_some("vector")
}

/// The pgvector index as it was (operator class unqualified: the target's pgvector may live in
/// another schema, and is found through its search_path).
fn identity(def: &IndexDef, b: &mut Builder, idx: &str) -> Translation {
    let keys: Vec<String> = def
        .keys
        .iter()
        .map(|k| {
            let op = k.opclass.as_ref().map(|op| {
                if let Some(schema) = &op.schema {
                    b.notes.push(format!(
                        "index {idx}: operator class {}.{} is written unqualified, as {}; the target resolves it through its search_path, so pgvector's schema must be on it when the index is built",
                        display_ident(schema),
                        display_ident(&op.name),
                        display_ident(&op.name)
                    ));
                }
                opclass_sql(op, false)
            });
            b.full_key_sql(k, op)
        })
        .collect();
    let sql = b.statement(&def.method, &keys, source_with(def));
    b.create(sql, Some("vector"))
}

fn too_many_dims(v: &VecIndex, profile: Profile) -> Option<(u32, u32)> {
    let dims = v.dims?;
    let limit = index_dim_limit(profile, v.kind)?;
    (dims > limit).then_some((dims, limit))
}

fn to_halfvec(def: &IndexDef, v: &VecIndex, b: &mut Builder, idx: &str) -> Translation {
    if v.key.expression.is_some() {
        b.notes.push(format!(
            "index {idx}: the key expression {} is copied verbatim, but vector columns are halfvec on the target; check that it still means the same",
            v.key.expression.as_deref().unwrap_or_default()
        ));
        return identity(def, b, idx);
    }
    match v.kind {
        ColumnKind::Vector => {}
        ColumnKind::Sparsevec => {
            return Translation::Skip {
                reason: format!(
                    "index {idx}: {} on a sparsevec column has no halfvec equivalent (the halfvec profile densifies sparsevec to halfvec(n), and pgvector indexes halfvec only up to 4000 dimensions); if n ≤ 4000, create `USING hnsw (... halfvec_{}_ops)` by hand after the migration",
                    v.opclass_name(),
                    v.metric.suffix()
                ),
            }
        }
        ColumnKind::Halfvec | ColumnKind::Bit | ColumnKind::Other => return identity(def, b, idx),
    }
    if let Some((dims, limit)) = too_many_dims(v, Profile::Halfvec) {
        return Translation::Skip {
            reason: format!(
                "index {idx}: the column has {dims} dimensions, more than a halfvec hnsw/ivfflat index can hold ({limit}); query without an index, or index a lower-dimensional expression (e.g. subvector or binary_quantize) by hand"
            ),
        };
    }
    let from = match v.key.opclass.as_ref().and_then(|op| op.schema.as_ref()) {
        Some(schema) => format!("{}.{}", display_ident(schema), v.opclass_name()),
        None => v.opclass_name(),
    };
    let to = format!("halfvec_{}_ops", v.metric.suffix());
    b.notes.push(format!(
        "index {idx}: operator class {} -> {to} (the column is halfvec on the target); WITH options copied",
        if v.key.opclass.is_none() {
            format!("{from} (the ivfflat default)")
        } else {
            from
        }
    ));
    let key = b.full_key_sql(v.key, Some(to));
    let sql = b.statement(&def.method, &[key], source_with(def));
    b.create(sql, Some("vector"))
}

fn expression_skip(idx: &str, engine: &str, key: &IndexKey) -> Translation {
    Translation::Skip {
        reason: format!(
            "index {idx}: the key is an expression ({}) over pgvector functions or casts, which {engine} does not have; create an equivalent index by hand after the migration, or query without an index",
            key.expression.as_deref().unwrap_or_default()
        ),
    }
}

fn to_lantern(def: &IndexDef, v: &VecIndex, b: &mut Builder, idx: &str) -> Translation {
    if v.key.expression.is_some() {
        return expression_skip(idx, "Lantern", v.key);
    }
    let src = v.opclass_name();
    let opclass = match (v.kind, v.metric) {
        (ColumnKind::Vector | ColumnKind::Halfvec, Metric::L2) => "dist_l2sq_ops",
        (ColumnKind::Vector | ColumnKind::Halfvec, Metric::Cosine) => "dist_cos_ops",
        (ColumnKind::Vector | ColumnKind::Halfvec, m @ (Metric::Ip | Metric::L1)) => {
            return Translation::Skip {
                reason: format!(
                    "index {idx}: Lantern has no {} operator class: {src} cannot be translated; map it explicitly with index_opclasses = {{ {idx} = \"{}\" }} on the table (a different metric: {}) or query without an index",
                    m.describe(),
                    if m == Metric::Ip { "vector_cosine_ops" } else { "vector_l2_ops" },
                    if m == Metric::Ip { "fine for normalised vectors" } else { "results are ordered by L2 instead" }
                ),
            }
        }
        (ColumnKind::Bit, Metric::Hamming) => "dist_hamming_ops",
        (ColumnKind::Bit, _) => {
            return Translation::Skip {
                reason: format!(
                    "index {idx}: Lantern has no Jaccard operator class: {src} cannot be translated; use dist_hamming_ops on the integer[] column by hand, or query without an index"
                ),
            }
        }
        _ => {
            return Translation::Skip {
                reason: format!(
                    "index {idx}: Lantern cannot index sparse vectors ({src}); densify to real[] and create a lantern_hnsw index by hand if the dimension is ≤ 2000, or query without an index"
                ),
            }
        }
    };
    if let Some((dims, limit)) = too_many_dims(v, Profile::Lantern) {
        return Translation::Skip {
            reason: format!(
                "index {idx}: the column has {dims} dimensions, more than Lantern's index limit ({limit}); query without an index, or reduce the dimensions first"
            ),
        };
    }
    let (m, ef_construction) = match v.method {
        VecMethod::Hnsw => {
            let m = int_option(def, "m").unwrap_or(16).clamp(2, 128);
            let ef = int_option(def, "ef_construction").unwrap_or(64);
            if ef > 400 {
                b.notes.push(format!(
                    "index {idx}: ef_construction {ef} clamped to 400 (Lantern's maximum)"
                ));
            }
            note_dropped_options(b, idx, &["m", "ef_construction"], "Lantern");
            (m, ef.clamp(1, 400))
        }
        VecMethod::Ivfflat => {
            b.notes.push(format!(
                "index {idx}: Lantern has no IVF index; ivfflat{} becomes lantern_hnsw with m=16, ef_construction=128 (Lantern's default)",
                int_option(def, "lists").map(|l| format!(" (lists={l})")).unwrap_or_default()
            ));
            (16, 128)
        }
    };
    let mut with = format!("m={m}, ef_construction={ef_construction}, ef=64");
    match v.dims {
        Some(dims) if v.kind == ColumnKind::Bit => {
            let words = dims.div_ceil(32);
            with.push_str(&format!(", dim={words}"));
            b.notes.push(format!(
                "index {idx}: bit({dims}) is packed into integer[] ({words} × 32 bits), so dim={words}"
            ));
        }
        Some(dims) => with.push_str(&format!(", dim={dims}")),
        None => b.notes.push(format!(
            "index {idx}: the column's dimensions are unknown, so dim is not set; Lantern infers it from the first row and fails on an empty table"
        )),
    }
    if v.metric == Metric::L2 {
        b.notes.push(format!(
            "index {idx}: Lantern's <-> on real[] is squared L2; ORDER BY keeps its order, but distance thresholds in queries change"
        ));
    } else if v.metric == Metric::Hamming {
        b.notes.push(format!(
            "index {idx}: Hamming distance is <+> on Lantern's integer[] (pgvector uses <~>); update queries"
        ));
    }
    let key = format!("{} {opclass}", b.key_sql(v.key));
    let sql = b.statement("lantern_hnsw", &[key], Some(with));
    b.create(sql, Some("lantern"))
}

fn to_pgvecto_rs(def: &IndexDef, v: &VecIndex, b: &mut Builder, idx: &str) -> Translation {
    if v.key.expression.is_some() {
        return expression_skip(idx, "PGVecto.rs", v.key);
    }
    let src = v.opclass_name();
    let prefix = match v.kind {
        ColumnKind::Vector => "vector",
        ColumnKind::Halfvec => "vecf16",
        ColumnKind::Sparsevec => "svector",
        ColumnKind::Bit | ColumnKind::Other => "bvector",
    };
    let metric = match v.metric {
        Metric::L2 => "l2",
        Metric::Ip => "dot",
        Metric::Cosine => "cos",
        Metric::Hamming => "hamming",
        Metric::Jaccard => "jaccard",
        Metric::L1 => {
            return Translation::Skip {
                reason: format!(
                    "index {idx}: PGVecto.rs has no L1 operator class: {src} cannot be translated; map it explicitly with index_opclasses = {{ {idx} = \"vector_l2_ops\" }} on the table (a different metric), or query without an index"
                ),
            }
        }
    };
    let options = match v.method {
        VecMethod::Hnsw => {
            let m = int_option(def, "m").unwrap_or(16);
            let ef = int_option(def, "ef_construction").unwrap_or(64);
            let (m2, ef2) = (m.clamp(4, 128), ef.clamp(10, 2000));
            if m2 != m {
                b.notes
                    .push(format!("index {idx}: m {m} clamped to {m2} (PGVecto.rs allows 4..128)"));
            }
            if ef2 != ef {
                b.notes.push(format!(
                    "index {idx}: ef_construction {ef} clamped to {ef2} (PGVecto.rs allows 10..2000)"
                ));
            }
            note_dropped_options(b, idx, &["m", "ef_construction"], "PGVecto.rs");
            format!("[indexing.hnsw]\nm = {m2}\nef_construction = {ef2}")
        }
        VecMethod::Ivfflat => {
            if !matches!(v.kind, ColumnKind::Vector | ColumnKind::Halfvec) {
                return Translation::Skip {
                    reason: format!(
                        "index {idx}: PGVecto.rs rejects ivf here (\"ivf is only supported for dense vectors\"): {src} on ivfflat cannot be translated; create an hnsw index (USING vectors (... vectors.{prefix}_{metric}_ops) WITH (options = $$[indexing.hnsw]$$)) by hand, or query without an index"
                    ),
                };
            }
            let lists = int_option(def, "lists").unwrap_or(100).clamp(1, 1_000_000);
            note_dropped_options(b, idx, &["lists"], "PGVecto.rs");
            format!("[indexing.ivf]\nnlist = {lists}")
        }
    };
    match v.kind {
        ColumnKind::Vector | ColumnKind::Halfvec | ColumnKind::Sparsevec if v.metric == Metric::L2 => {
            b.notes.push(format!(
                "index {idx}: PGVecto.rs's <-> is squared L2; ORDER BY keeps its order, but distance thresholds in queries change"
            ))
        }
        ColumnKind::Bit => b.notes.push(format!(
            "index {idx}: on bvector, Hamming is <-> and Jaccard is <~> (pgvector: Hamming <~>, Jaccard <%>); update queries"
        )),
        _ => {}
    }
    let key = format!("{} vectors.{prefix}_{metric}_ops", b.key_sql(v.key));
    let sql = b.statement("vectors", &[key], Some(format!("options = $${options}$$")));
    b.create(sql, Some("vectors"))
}

/// lists for a `vchordrq` index from an hnsw source (see the module docs), or `None` for no
/// partitioning (fewer than 100 000 rows, or no estimate).
pub fn vectorchord_lists(estimated_rows: i64) -> Option<i64> {
    if estimated_rows < 100_000 {
        return None;
    }
    let cap = 16 * (estimated_rows as f64).sqrt() as i64;
    Some((estimated_rows / 500).min(cap).max(1))
}

fn to_vectorchord(def: &IndexDef, v: &VecIndex, b: &mut Builder, ctx: &TranslateContext, idx: &str) -> Translation {
    let supported = matches!(v.kind, ColumnKind::Vector | ColumnKind::Halfvec)
        && matches!(v.metric, Metric::L2 | Metric::Ip | Metric::Cosine);
    if !supported {
        let what = match v.kind {
            ColumnKind::Sparsevec => "sparsevec",
            ColumnKind::Bit => "bit",
            _ => "L1 distance",
        };
        b.notes.push(format!(
            "index {idx}: VectorChord has no {what} index ({}); the pgvector {} index is kept as it is (vchord requires pgvector, so it builds there)",
            v.opclass_name(),
            def.method
        ));
        return identity(def, b, idx);
    }
    let lists = match v.method {
        VecMethod::Ivfflat => {
            let l = int_option(def, "lists").unwrap_or(100);
            b.notes.push(format!(
                "index {idx}: ivfflat lists={l} -> vchordrq [build.internal] lists = [{l}]"
            ));
            Some(l)
        }
        VecMethod::Hnsw => {
            let l = vectorchord_lists(ctx.estimated_rows);
            match l {
                None => b.notes.push(format!(
                    "index {idx}: hnsw -> vchordrq with lists = [] (no partitioning) below 100k rows (estimate: {})",
                    ctx.estimated_rows
                )),
                Some(l) => b.notes.push(format!(
                    "index {idx}: hnsw -> vchordrq with lists = [{l}] (rows/500 for about {} rows, capped at 16·√rows); tune it for your data",
                    ctx.estimated_rows
                )),
            }
            if !def.options.is_empty() {
                b.notes.push(format!(
                    "index {idx}: hnsw options ({}) have no vchordrq equivalent and are dropped",
                    def.options
                        .iter()
                        .map(|(k, v)| format!("{k}={v}"))
                        .collect::<Vec<_>>()
                        .join(", ")
                ));
            }
            l
        }
    };
    if v.method == VecMethod::Ivfflat {
        note_dropped_options(b, idx, &["lists"], "VectorChord");
    }
    let with = lists.map(|l| {
        b.notes.push(format!(
            "index {idx}: queries need SET vchordrq.probes (one value per lists level, e.g. '{}') instead of hnsw.ef_search / ivfflat.probes",
            (l / 10).clamp(1, 100)
        ));
        if v.metric == Metric::Cosine {
            format!("options = $$residual_quantization = true\n[build.internal]\nlists = [{l}]\nspherical_centroids = true$$")
        } else {
            format!("options = $$[build.internal]\nlists = [{l}]$$")
        }
    });
    let opclass = format!("{}_{}_ops", kind_prefix(v.kind), v.metric.suffix());
    let key = format!("{} {opclass}", b.key_sql(v.key));
    let sql = b.statement("vchordrq", &[key], with);
    b.create(sql, Some("vchord"))
}

fn to_alloydb(def: &IndexDef, v: &VecIndex, b: &mut Builder, ctx: &TranslateContext, idx: &str) -> Translation {
    if !ctx.alloydb_scann {
        return identity(def, b, idx);
    }
    let distance = match v.metric {
        Metric::L2 => "l2",
        Metric::Ip => "dot_product",
        Metric::Cosine => "cosine",
        _ => "",
    };
    let why_not = if distance.is_empty() || !matches!(v.kind, ColumnKind::Vector | ColumnKind::Halfvec) {
        Some(format!("no ScaNN equivalent for {}", v.opclass_name()))
    } else if v.kind == ColumnKind::Halfvec {
        Some("ScaNN support for halfvec is unverified".to_string())
    } else if v.key.expression.is_some() {
        Some("ScaNN on an expression is unverified".to_string())
    } else {
        None
    };
    if let Some(why) = why_not {
        b.notes.push(format!(
            "index {idx}: {why}; the pgvector {} index is kept as it is",
            def.method
        ));
        return identity(def, b, idx);
    }
    let num_leaves = match v.method {
        VecMethod::Ivfflat => {
            let l = int_option(def, "lists").unwrap_or(100);
            b.notes
                .push(format!("index {idx}: ivfflat lists={l} -> ScaNN num_leaves = {l}"));
            l
        }
        VecMethod::Hnsw => {
            let n = if ctx.estimated_rows > 0 {
                ((ctx.estimated_rows as f64).sqrt().round() as i64).max(1)
            } else {
                1
            };
            b.notes.push(format!(
                "index {idx}: hnsw -> ScaNN with num_leaves = {n} (√rows for about {} rows{}); hnsw options are dropped",
                ctx.estimated_rows,
                if ctx.estimated_rows > 0 { "" } else { ": no estimate, ANALYZE the source and re-plan" }
            ));
            n
        }
    };
    b.notes.push(format!(
        "index {idx}: queries tune ScaNN with scann.num_leaves_to_search instead of hnsw.ef_search / ivfflat.probes"
    ));
    let key = format!("{} {distance}", b.key_sql(v.key));
    let sql = b.statement(
        "scann",
        &[key],
        Some(format!("num_leaves = {num_leaves}, quantizer = 'sq8'")),
    );
    b.create(sql, Some("alloydb_scann"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn op(qualified: &str) -> Option<Opclass> {
        if qualified.is_empty() {
            return None;
        }
        Some(match qualified.split_once('|') {
            Some((schema, name)) => Opclass {
                schema: Some(schema.into()),
                name: name.into(),
            },
            None => Opclass {
                schema: None,
                name: qualified.into(),
            },
        })
    }

    /// A plain-column key; `opclass` is `name` or `schema|name` (unquoted), "" for none.
    fn col(name: &str, opclass: &str, rest: &str) -> IndexKey {
        IndexKey {
            column: Some(name.into()),
            expression: None,
            opclass: op(opclass),
            rest: rest.into(),
        }
    }

    fn expr(text: &str, opclass: &str, rest: &str) -> IndexKey {
        IndexKey {
            column: None,
            expression: Some(text.into()),
            opclass: op(opclass),
            rest: rest.into(),
        }
    }

    fn def(name: &str, method: &str, keys: Vec<IndexKey>) -> IndexDef {
        IndexDef {
            unique: false,
            name: name.into(),
            method: method.into(),
            keys,
            include: vec![],
            nulls_not_distinct: false,
            options: vec![],
            predicate: None,
        }
    }

    fn with(mut d: IndexDef, options: &[(&str, &str)]) -> IndexDef {
        d.options = options.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        d
    }

    fn pred(mut d: IndexDef, predicate: &str) -> IndexDef {
        d.predicate = Some(predicate.into());
        d
    }

    /// Definitions captured from PostgreSQL 15.20 + pgvector 0.8.0 (`pg_indexes.indexdef`), plus
    /// a few hand-written ones for quoting corner cases (marked).
    fn parse_cases() -> Vec<(&'static str, &'static str, IndexDef)> {
        let mut unique_u = pred(
            def(
                "items_title_u",
                "btree",
                vec![expr("lower(title)", "", ""), col("cat", "", "DESC NULLS LAST")],
            ),
            "(title IS NOT NULL)",
        );
        unique_u.unique = true;
        unique_u.include = vec!["id".into()];
        let mut nnd = pred(def("misc_nnd", "btree", vec![col("Cap", "", "")]), "(n > 0)");
        nnd.unique = true;
        nnd.include = vec!["order".into(), "n".into()];
        nnd.nulls_not_distinct = true;
        vec![
            (
                r#"CREATE INDEX items_embedding_idx ON public.items USING hnsw (embedding vector_l2_ops)"#,
                "public.items",
                def("items_embedding_idx", "hnsw", vec![col("embedding", "vector_l2_ops", "")]),
            ),
            (
                r#"CREATE INDEX items_cos ON public.items USING hnsw (embedding vector_cosine_ops) WITH (m='24', ef_construction='100')"#,
                "public.items",
                with(
                    def("items_cos", "hnsw", vec![col("embedding", "vector_cosine_ops", "")]),
                    &[("m", "24"), ("ef_construction", "100")],
                ),
            ),
            (
                r#"CREATE INDEX items_ivf ON public.items USING ivfflat (embedding) WITH (lists='100')"#,
                "public.items",
                with(def("items_ivf", "ivfflat", vec![col("embedding", "", "")]), &[("lists", "100")]),
            ),
            (
                r#"CREATE INDEX "Weird ""Idx""" ON "My S"."T" USING hnsw ("Emb ""x""" vector_cosine_ops) WITH (m='16', ef_construction='64')"#,
                r#""My S"."T""#,
                with(
                    def("Weird \"Idx\"", "hnsw", vec![col("Emb \"x\"", "vector_cosine_ops", "")]),
                    &[("m", "16"), ("ef_construction", "64")],
                ),
            ),
            (
                r#"CREATE INDEX "T_Title_idx" ON "My S"."T" USING btree ("Title")"#,
                r#""My S"."T""#,
                def("T_Title_idx", "btree", vec![col("Title", "", "")]),
            ),
            (
                r#"CREATE INDEX t_sub ON "My S"."T" USING hnsw (((subvector("Emb ""x""", 1, 2))::vector(2)) vector_l2_ops)"#,
                r#""My S"."T""#,
                def("t_sub", "hnsw", vec![expr(r#"((subvector("Emb ""x""", 1, 2))::vector(2))"#, "vector_l2_ops", "")]),
            ),
            (
                r#"CREATE INDEX items_big_expr ON public.items USING hnsw (((big)::halfvec(3000)) halfvec_cosine_ops)"#,
                "public.items",
                def("items_big_expr", "hnsw", vec![expr("((big)::halfvec(3000))", "halfvec_cosine_ops", "")]),
            ),
            (
                r#"CREATE INDEX items_bq ON public.items USING hnsw (((binary_quantize(embedding))::bit(3)) bit_hamming_ops)"#,
                "public.items",
                def("items_bq", "hnsw", vec![expr("((binary_quantize(embedding))::bit(3))", "bit_hamming_ops", "")]),
            ),
            (
                r#"CREATE INDEX items_partial ON public.items USING hnsw (embedding vector_l2_ops) WHERE ((cat = 1) AND (title <> 'a, (b)'::text))"#,
                "public.items",
                pred(
                    def("items_partial", "hnsw", vec![col("embedding", "vector_l2_ops", "")]),
                    "((cat = 1) AND (title <> 'a, (b)'::text))",
                ),
            ),
            (
                r#"CREATE UNIQUE INDEX items_title_u ON public.items USING btree (lower(title), cat DESC NULLS LAST) INCLUDE (id) WHERE (title IS NOT NULL)"#,
                "public.items",
                unique_u,
            ),
            (
                r#"CREATE INDEX items_title_coll ON public.items USING btree (title COLLATE "C" text_pattern_ops)"#,
                "public.items",
                def("items_title_coll", "btree", vec![col("title", "text_pattern_ops", r#"COLLATE "C""#)]),
            ),
            (
                r#"CREATE INDEX items_gin ON public.items USING gin (to_tsvector('english'::regconfig, title))"#,
                "public.items",
                def("items_gin", "gin", vec![expr("to_tsvector('english'::regconfig, title)", "", "")]),
            ),
            (
                r#"CREATE INDEX parted_e ON ONLY public.parted USING hnsw (e vector_l2_ops)"#,
                "public.parted",
                def("parted_e", "hnsw", vec![col("e", "vector_l2_ops", "")]),
            ),
            // pgvector installed in schema `extensions`, not on search_path (Supabase style).
            (
                r#"CREATE INDEX docs_ip ON public.docs USING hnsw (embedding extensions.vector_ip_ops)"#,
                "public.docs",
                def("docs_ip", "hnsw", vec![col("embedding", "extensions|vector_ip_ops", "")]),
            ),
            (
                r#"CREATE INDEX docs_b ON public.docs USING ivfflat (b extensions.bit_hamming_ops) WITH (lists='1')"#,
                "public.docs",
                with(def("docs_b", "ivfflat", vec![col("b", "extensions|bit_hamming_ops", "")]), &[("lists", "1")]),
            ),
            // An explicit vector_l2_ops on ivfflat is the default, so it is not printed even when qualified.
            (
                r#"CREATE INDEX docs_ivf2 ON public.docs USING ivfflat (embedding)"#,
                "public.docs",
                def("docs_ivf2", "ivfflat", vec![col("embedding", "", "")]),
            ),
            (
                r#"CREATE INDEX "Docs idx" ON "Src"."Docs" USING hnsw ("Vec" "My Ext".vector_l1_ops) WITH (ef_construction='40', m='4')"#,
                r#""Src"."Docs""#,
                with(
                    def("Docs idx", "hnsw", vec![col("Vec", "My Ext|vector_l1_ops", "")]),
                    &[("ef_construction", "40"), ("m", "4")],
                ),
            ),
            (
                r#"CREATE INDEX "Docs_Vec_idx" ON "Src"."Docs" USING ivfflat ("Vec") WHERE ("select" IS NOT NULL)"#,
                r#""Src"."Docs""#,
                pred(def("Docs_Vec_idx", "ivfflat", vec![col("Vec", "", "")]), r#"("select" IS NOT NULL)"#),
            ),
            // Bare option values: PostgreSQL prints a value bare when quote_ident leaves it unchanged.
            (
                r#"CREATE INDEX docs_btree ON public.docs USING btree (id) WITH (fillfactor='70', deduplicate_items=off)"#,
                "public.docs",
                with(def("docs_btree", "btree", vec![col("id", "", "")]), &[("fillfactor", "70"), ("deduplicate_items", "off")]),
            ),
            (
                r#"CREATE INDEX misc_brin ON public.misc USING brin (n) WITH (pages_per_range='32', autosummarize='on')"#,
                "public.misc",
                with(def("misc_brin", "brin", vec![col("n", "", "")]), &[("pages_per_range", "32"), ("autosummarize", "on")]),
            ),
            (
                r#"CREATE INDEX misc_trgm ON public.misc USING gist ("order" gist_trgm_ops (siglen='32'))"#,
                "public.misc",
                def("misc_trgm", "gist", vec![col("order", "gist_trgm_ops", "(siglen='32')")]),
            ),
            (
                r#"CREATE UNIQUE INDEX misc_nnd ON public.misc USING btree ("Cap") INCLUDE ("order", n) NULLS NOT DISTINCT WHERE (n > 0)"#,
                "public.misc",
                nnd,
            ),
            (
                r#"CREATE INDEX misc_coal ON public.misc USING btree (COALESCE(n, 0), ((n + 1)) DESC, "Cap" COLLATE "C" DESC NULLS LAST)"#,
                "public.misc",
                def(
                    "misc_coal",
                    "btree",
                    vec![expr("COALESCE(n, 0)", "", ""), expr("((n + 1))", "", "DESC"), col("Cap", "", r#"COLLATE "C" DESC NULLS LAST"#)],
                ),
            ),
            (
                r#"CREATE INDEX misc_str ON public.misc USING btree ((("order" || ', )x''y'::text))) WHERE ("Cap" <> ')('::text)"#,
                "public.misc",
                pred(def("misc_str", "btree", vec![expr(r#"(("order" || ', )x''y'::text))"#, "", "")]), r#"("Cap" <> ')('::text)"#),
            ),
            // Hand-written: a bare option value, a quoted one with a newline and a quote, an E'' literal,
            // a schema-qualified function, a trailing semicolon.
            (
                "CREATE INDEX s ON public.t USING scann (e cosine) WITH (num_leaves='5', quantizer=sq8, options='a\nb''c');",
                "public.t",
                with(def("s", "scann", vec![col("e", "cosine", "")]), &[("num_leaves", "5"), ("quantizer", "sq8"), ("options", "a\nb'c")]),
            ),
            (
                r#"CREATE INDEX e ON "a.b"."c,d" USING btree (((x || E'it\'s ) ('::text)), "My F".f("a,b", ')'))"#,
                r#""a.b"."c,d""#,
                def(
                    "e",
                    "btree",
                    vec![expr(r#"((x || E'it\'s ) ('::text))"#, "", ""), expr(r#""My F".f("a,b", ')')"#, "", "")],
                ),
            ),
        ]
    }

    #[test]
    fn parses_real_indexdefs() {
        let cases = parse_cases();
        assert!(cases.len() >= 15);
        for (text, table, want) in cases {
            assert_eq!(parse(text, table).unwrap_or_else(|e| panic!("{e}")), want, "{text}");
        }
    }

    #[test]
    fn rejects_malformed_definitions() {
        let bad = [
            ("CREATE INDEX x ON other.t USING btree (a)", "public.items"),
            ("CREATE INDEX x ON public.items USING btree (a", "public.items"),
            ("CREATE INDEX x ON public.items (a)", "public.items"),
            ("CREATE TABLE x (a int)", "public.items"),
            ("CREATE INDEX x ON public.items USING btree ()", "public.items"),
            (
                "CREATE INDEX x ON public.items USING btree (a) WITH (m)",
                "public.items",
            ),
            ("CREATE INDEX x ON public.items USING btree (a) garbage", "public.items"),
            ("CREATE INDEX \"x ON public.items USING btree (a)", "public.items"),
            ("CREATE INDEX x ON public.items USING btree ('a)", "public.items"),
            ("CREATE INDEX x ON public.items USING btree (a.b)", "public.items"),
        ];
        for (text, table) in bad {
            let err = parse(text, table).unwrap_err();
            assert!(err.contains("cannot parse index definition"), "{text}: {err}");
        }
    }

    #[test]
    fn rest_splits_collation_from_ordering() {
        assert_eq!(
            split_rest(r#"COLLATE "C" DESC NULLS LAST"#),
            (Some(r#"COLLATE "C""#), "DESC NULLS LAST")
        );
        assert_eq!(
            split_rest(r#"COLLATE pg_catalog."default""#),
            (Some(r#"COLLATE pg_catalog."default""#), "")
        );
        assert_eq!(split_rest("(siglen='32') DESC"), (None, "(siglen='32') DESC"));
        assert_eq!(split_rest(""), (None, ""));
    }

    #[test]
    fn finds_identifiers_outside_literals() {
        assert_eq!(
            referenced_identifiers(r#"(("Emb ""x""" || 'title, cat')::text) AND (1e5 > n)"#),
            vec!["Emb \"x\"", "text", "n"]
        );
    }

    // ---------------------------------------------------------------------------------------------
    // Translation

    fn ctx(profile: Profile) -> TranslateContext {
        let kinds = [
            ("embedding", ColumnKind::Vector),
            ("b", ColumnKind::Bit),
            ("s", ColumnKind::Sparsevec),
            ("h", ColumnKind::Halfvec),
            ("title", ColumnKind::Other),
            ("cat", ColumnKind::Other),
        ];
        let dims = [("embedding", 1536), ("b", 64), ("s", 30000), ("h", 3000)];
        TranslateContext {
            profile,
            column_types: kinds.iter().map(|(k, v)| (k.to_string(), *v)).collect(),
            dims: dims.iter().map(|(k, v)| (k.to_string(), *v)).collect(),
            estimated_rows: 1_000_000,
            alloydb_scann: false,
            column_renames: HashMap::new(),
        }
    }

    fn scann() -> TranslateContext {
        TranslateContext {
            alloydb_scann: true,
            ..ctx(Profile::Alloydb)
        }
    }

    fn run(text: &str, ctx: &TranslateContext) -> Translation {
        let def = parse(text, "public.items").unwrap_or_else(|e| panic!("{e}"));
        translate(&def, &QualifiedName::new("app", "items"), ctx)
    }

    fn sql_of(t: &Translation) -> &str {
        match t {
            Translation::Create { sql, .. } => sql,
            Translation::Skip { reason } => panic!("skipped: {reason}"),
        }
    }

    fn notes_of(t: &Translation) -> &[String] {
        match t {
            Translation::Create { notes, .. } => notes,
            Translation::Skip { reason } => panic!("skipped: {reason}"),
        }
    }

    fn reason_of(t: &Translation) -> &str {
        match t {
            Translation::Skip { reason } => reason,
            Translation::Create { sql, .. } => panic!("created: {sql}"),
        }
    }

    const HNSW16: &str = "WITH (options = $$[indexing.hnsw]\nm = 16\nef_construction = 64$$)";

    /// (source definition, expected per profile: pgvector, halfvec, lantern, pgvecto_rs,
    /// vectorchord, alloydb, alloydb with ScaNN). `SKIP:` expects a skip whose reason contains the
    /// rest; otherwise the statement after `CREATE INDEX IF NOT EXISTS "<name>" ON "app"."items" USING `.
    fn golden() -> Vec<(&'static str, [String; 7])> {
        let s = |x: &str| x.to_string();
        let same = |x: &str| [s(x), s(x), s(x), s(x), s(x), s(x), s(x)];
        vec![
            (
                "CREATE INDEX items_l2 ON public.items USING hnsw (embedding vector_l2_ops) WITH (m='16', ef_construction='64')",
                [
                    s(r#"hnsw ("embedding" vector_l2_ops) WITH (m='16', ef_construction='64')"#),
                    s(r#"hnsw ("embedding" halfvec_l2_ops) WITH (m='16', ef_construction='64')"#),
                    s(r#"lantern_hnsw ("embedding" dist_l2sq_ops) WITH (m=16, ef_construction=64, ef=64, dim=1536)"#),
                    format!(r#"vectors ("embedding" vectors.vector_l2_ops) {HNSW16}"#),
                    s("vchordrq (\"embedding\" vector_l2_ops) WITH (options = $$[build.internal]\nlists = [2000]$$)"),
                    s(r#"hnsw ("embedding" vector_l2_ops) WITH (m='16', ef_construction='64')"#),
                    s(r#"scann ("embedding" l2) WITH (num_leaves = 1000, quantizer = 'sq8')"#),
                ],
            ),
            (
                "CREATE INDEX items_cos ON public.items USING hnsw (embedding vector_cosine_ops) WITH (m='24', ef_construction='500')",
                [
                    s(r#"hnsw ("embedding" vector_cosine_ops) WITH (m='24', ef_construction='500')"#),
                    s(r#"hnsw ("embedding" halfvec_cosine_ops) WITH (m='24', ef_construction='500')"#),
                    s(r#"lantern_hnsw ("embedding" dist_cos_ops) WITH (m=24, ef_construction=400, ef=64, dim=1536)"#),
                    s("vectors (\"embedding\" vectors.vector_cos_ops) WITH (options = $$[indexing.hnsw]\nm = 24\nef_construction = 500$$)"),
                    s("vchordrq (\"embedding\" vector_cosine_ops) WITH (options = $$residual_quantization = true\n[build.internal]\nlists = [2000]\nspherical_centroids = true$$)"),
                    s(r#"hnsw ("embedding" vector_cosine_ops) WITH (m='24', ef_construction='500')"#),
                    s(r#"scann ("embedding" cosine) WITH (num_leaves = 1000, quantizer = 'sq8')"#),
                ],
            ),
            (
                "CREATE INDEX items_ip ON public.items USING hnsw (embedding vector_ip_ops)",
                [
                    s(r#"hnsw ("embedding" vector_ip_ops)"#),
                    s(r#"hnsw ("embedding" halfvec_ip_ops)"#),
                    s("SKIP:Lantern has no inner-product operator class: vector_ip_ops cannot be translated; map it explicitly with index_opclasses"),
                    format!(r#"vectors ("embedding" vectors.vector_dot_ops) {HNSW16}"#),
                    s("vchordrq (\"embedding\" vector_ip_ops) WITH (options = $$[build.internal]\nlists = [2000]$$)"),
                    s(r#"hnsw ("embedding" vector_ip_ops)"#),
                    s(r#"scann ("embedding" dot_product) WITH (num_leaves = 1000, quantizer = 'sq8')"#),
                ],
            ),
            (
                "CREATE INDEX items_l1 ON public.items USING hnsw (embedding vector_l1_ops)",
                [
                    s(r#"hnsw ("embedding" vector_l1_ops)"#),
                    s(r#"hnsw ("embedding" halfvec_l1_ops)"#),
                    s("SKIP:Lantern has no L1 operator class: vector_l1_ops cannot be translated; map it explicitly with index_opclasses"),
                    s("SKIP:PGVecto.rs has no L1 operator class"),
                    s(r#"hnsw ("embedding" vector_l1_ops)"#),
                    s(r#"hnsw ("embedding" vector_l1_ops)"#),
                    s(r#"hnsw ("embedding" vector_l1_ops)"#),
                ],
            ),
            (
                "CREATE INDEX items_ivf ON public.items USING ivfflat (embedding) WITH (lists='1000')",
                [
                    s(r#"ivfflat ("embedding") WITH (lists='1000')"#),
                    s(r#"ivfflat ("embedding" halfvec_l2_ops) WITH (lists='1000')"#),
                    s(r#"lantern_hnsw ("embedding" dist_l2sq_ops) WITH (m=16, ef_construction=128, ef=64, dim=1536)"#),
                    s("vectors (\"embedding\" vectors.vector_l2_ops) WITH (options = $$[indexing.ivf]\nnlist = 1000$$)"),
                    s("vchordrq (\"embedding\" vector_l2_ops) WITH (options = $$[build.internal]\nlists = [1000]$$)"),
                    s(r#"ivfflat ("embedding") WITH (lists='1000')"#),
                    s(r#"scann ("embedding" l2) WITH (num_leaves = 1000, quantizer = 'sq8')"#),
                ],
            ),
            (
                "CREATE INDEX items_ivf_cos ON public.items USING ivfflat (embedding vector_cosine_ops) WITH (lists='50')",
                [
                    s(r#"ivfflat ("embedding" vector_cosine_ops) WITH (lists='50')"#),
                    s(r#"ivfflat ("embedding" halfvec_cosine_ops) WITH (lists='50')"#),
                    s(r#"lantern_hnsw ("embedding" dist_cos_ops) WITH (m=16, ef_construction=128, ef=64, dim=1536)"#),
                    s("vectors (\"embedding\" vectors.vector_cos_ops) WITH (options = $$[indexing.ivf]\nnlist = 50$$)"),
                    s("vchordrq (\"embedding\" vector_cosine_ops) WITH (options = $$residual_quantization = true\n[build.internal]\nlists = [50]\nspherical_centroids = true$$)"),
                    s(r#"ivfflat ("embedding" vector_cosine_ops) WITH (lists='50')"#),
                    s(r#"scann ("embedding" cosine) WITH (num_leaves = 50, quantizer = 'sq8')"#),
                ],
            ),
            (
                "CREATE INDEX items_bits ON public.items USING hnsw (b bit_hamming_ops)",
                [
                    s(r#"hnsw ("b" bit_hamming_ops)"#),
                    s(r#"hnsw ("b" bit_hamming_ops)"#),
                    s(r#"lantern_hnsw ("b" dist_hamming_ops) WITH (m=16, ef_construction=64, ef=64, dim=2)"#),
                    format!(r#"vectors ("b" vectors.bvector_hamming_ops) {HNSW16}"#),
                    s(r#"hnsw ("b" bit_hamming_ops)"#),
                    s(r#"hnsw ("b" bit_hamming_ops)"#),
                    s(r#"hnsw ("b" bit_hamming_ops)"#),
                ],
            ),
            (
                "CREATE INDEX items_sparse ON public.items USING hnsw (s sparsevec_l2_ops)",
                [
                    s(r#"hnsw ("s" sparsevec_l2_ops)"#),
                    s("SKIP:sparsevec_l2_ops on a sparsevec column has no halfvec equivalent"),
                    s("SKIP:Lantern cannot index sparse vectors"),
                    format!(r#"vectors ("s" vectors.svector_l2_ops) {HNSW16}"#),
                    s(r#"hnsw ("s" sparsevec_l2_ops)"#),
                    s(r#"hnsw ("s" sparsevec_l2_ops)"#),
                    s(r#"hnsw ("s" sparsevec_l2_ops)"#),
                ],
            ),
            ("CREATE INDEX items_title ON public.items USING btree (title)", same(r#"btree ("title")"#)),
            (
                "CREATE INDEX items_half ON public.items USING hnsw (((embedding)::halfvec(1536)) halfvec_cosine_ops)",
                [
                    s("hnsw (((embedding)::halfvec(1536)) halfvec_cosine_ops)"),
                    s("hnsw (((embedding)::halfvec(1536)) halfvec_cosine_ops)"),
                    s("SKIP:the key is an expression (((embedding)::halfvec(1536))) over pgvector functions or casts, which Lantern does not have"),
                    s("SKIP:which PGVecto.rs does not have"),
                    s("vchordrq (((embedding)::halfvec(1536)) halfvec_cosine_ops) WITH (options = $$residual_quantization = true\n[build.internal]\nlists = [2000]\nspherical_centroids = true$$)"),
                    s("hnsw (((embedding)::halfvec(1536)) halfvec_cosine_ops)"),
                    s("hnsw (((embedding)::halfvec(1536)) halfvec_cosine_ops)"),
                ],
            ),
            (
                "CREATE INDEX items_cat ON public.items USING hnsw (embedding vector_l2_ops) WHERE (cat = 1)",
                [
                    s(r#"hnsw ("embedding" vector_l2_ops) WHERE (cat = 1)"#),
                    s(r#"hnsw ("embedding" halfvec_l2_ops) WHERE (cat = 1)"#),
                    s(r#"lantern_hnsw ("embedding" dist_l2sq_ops) WITH (m=16, ef_construction=64, ef=64, dim=1536) WHERE (cat = 1)"#),
                    format!(r#"vectors ("embedding" vectors.vector_l2_ops) {HNSW16} WHERE (cat = 1)"#),
                    s("vchordrq (\"embedding\" vector_l2_ops) WITH (options = $$[build.internal]\nlists = [2000]$$) WHERE (cat = 1)"),
                    s(r#"hnsw ("embedding" vector_l2_ops) WHERE (cat = 1)"#),
                    s(r#"scann ("embedding" l2) WITH (num_leaves = 1000, quantizer = 'sq8') WHERE (cat = 1)"#),
                ],
            ),
        ]
    }

    fn profiles() -> [TranslateContext; 7] {
        [
            ctx(Profile::Pgvector),
            ctx(Profile::Halfvec),
            ctx(Profile::Lantern),
            ctx(Profile::PgvectoRs),
            ctx(Profile::Vectorchord),
            ctx(Profile::Alloydb),
            scann(),
        ]
    }

    #[test]
    fn translates_golden_strings_per_profile() {
        for (text, expected) in golden() {
            let name = parse(text, "public.items").unwrap().name;
            for (ctx, want) in profiles().iter().zip(expected) {
                let got = run(text, ctx);
                let label = format!(
                    "{:?}{} / {text}",
                    ctx.profile,
                    if ctx.alloydb_scann { "+scann" } else { "" }
                );
                match want.strip_prefix("SKIP:") {
                    Some(fragment) => {
                        let reason = reason_of(&got);
                        assert!(reason.contains(fragment), "{label}: {reason}");
                        assert!(reason.starts_with(&format!("index {name}: ")), "{label}: {reason}");
                    }
                    None => {
                        let prefix = format!("CREATE INDEX IF NOT EXISTS \"{name}\" ON \"app\".\"items\" USING ");
                        assert_eq!(sql_of(&got), format!("{prefix}{want}"), "{label}");
                        for note in notes_of(&got) {
                            assert!(note.starts_with(&format!("index {name}: ")), "{label}: {note}");
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn names_the_extension_each_index_needs() {
        let l2 = "CREATE INDEX i ON public.items USING hnsw (embedding vector_l2_ops)";
        let ext = |t: Translation| match t {
            Translation::Create { extension, .. } => extension,
            Translation::Skip { reason } => panic!("{reason}"),
        };
        let want = [
            "vector",
            "vector",
            "lantern",
            "vectors",
            "vchord",
            "vector",
            "alloydb_scann",
        ];
        for (ctx, want) in profiles().iter().zip(want) {
            assert_eq!(ext(run(l2, ctx)).as_deref(), Some(want), "{:?}", ctx.profile);
        }
        assert_eq!(
            ext(run(
                "CREATE INDEX i ON public.items USING btree (title)",
                &ctx(Profile::Lantern)
            )),
            None
        );
        // A kept pgvector index on VectorChord / AlloyDB needs pgvector, not the engine's extension.
        let l1 = "CREATE INDEX i ON public.items USING hnsw (embedding vector_l1_ops)";
        assert_eq!(ext(run(l1, &ctx(Profile::Vectorchord))).as_deref(), Some("vector"));
        assert_eq!(ext(run(l1, &scann())).as_deref(), Some("vector"));
    }

    #[test]
    fn plain_indexes_keep_everything_and_follow_renames() {
        let mut c = ctx(Profile::Lantern);
        c.column_renames.insert("title".into(), "Title".into());
        c.column_renames.insert("id".into(), "doc id".into());
        let t = run(
            r#"CREATE UNIQUE INDEX items_u ON public.items USING btree (title COLLATE "C" text_pattern_ops DESC NULLS LAST, cat) INCLUDE (id) NULLS NOT DISTINCT WITH (fillfactor='70', deduplicate_items=off) WHERE (cat > 0)"#,
            &c,
        );
        assert_eq!(
            sql_of(&t),
            r#"CREATE UNIQUE INDEX IF NOT EXISTS "items_u" ON "app"."items" USING btree ("Title" COLLATE "C" text_pattern_ops DESC NULLS LAST, "cat") INCLUDE ("doc id") NULLS NOT DISTINCT WITH (fillfactor='70', deduplicate_items='off') WHERE (cat > 0)"#
        );
        assert!(notes_of(&t).is_empty());
        // Qualified opclasses of plain indexes are kept (only pgvector's are re-resolved).
        let t = run(
            "CREATE INDEX trgm ON public.items USING gin (title extensions.gin_trgm_ops)",
            &c,
        );
        assert_eq!(
            sql_of(&t),
            r#"CREATE INDEX IF NOT EXISTS "trgm" ON "app"."items" USING gin ("Title" "extensions".gin_trgm_ops)"#
        );
        // A renamed vector column is followed too.
        c.column_renames.insert("embedding".into(), "Vec".into());
        let t = run(
            "CREATE INDEX v ON public.items USING hnsw (embedding vector_cosine_ops)",
            &c,
        );
        assert!(
            sql_of(&t).contains(r#"USING lantern_hnsw ("Vec" dist_cos_ops)"#),
            "{t:?}"
        );
    }

    #[test]
    fn skips_expressions_and_predicates_over_renamed_columns() {
        let mut c = ctx(Profile::Pgvector);
        c.column_renames.insert("title".into(), "Title".into());
        let r = run(
            "CREATE INDEX lower_title ON public.items USING btree (lower(title))",
            &c,
        );
        assert!(
            reason_of(&r).contains("reads column title which is renamed to \"Title\""),
            "{r:?}"
        );
        let r = run(
            "CREATE INDEX p ON public.items USING hnsw (embedding vector_l2_ops) WHERE (title IS NOT NULL)",
            &c,
        );
        assert!(reason_of(&r).starts_with("index p: "), "{r:?}");
        // A string literal that happens to spell the column is not a reference.
        let t = run(
            "CREATE INDEX q ON public.items USING btree (cat) WHERE ((cat)::text <> 'title'::text)",
            &c,
        );
        assert!(matches!(t, Translation::Create { .. }), "{t:?}");
    }

    #[test]
    fn lantern_and_pgvecto_rs_skip_pgvector_expressions_over_vector_columns() {
        for profile in [Profile::Lantern, Profile::PgvectoRs] {
            let c = ctx(profile);
            let r = run(
                "CREATE INDEX dims ON public.items USING btree (vector_dims(embedding))",
                &c,
            );
            assert!(reason_of(&r).contains("reads the vector column embedding"), "{r:?}");
            let r = run(
                "CREATE INDEX p ON public.items USING hnsw (embedding vector_cosine_ops) WHERE (vector_norm(embedding) > (0)::double precision)",
                &c,
            );
            assert!(reason_of(&r).starts_with("index p: "), "{r:?}");
            // IS [NOT] NULL works on any type.
            let t = run("CREATE INDEX nn ON public.items USING hnsw (embedding vector_cosine_ops) WHERE (embedding IS NOT NULL)", &c);
            assert!(sql_of(&t).ends_with(" WHERE (embedding IS NOT NULL)"), "{t:?}");
        }
        let t = run(
            "CREATE INDEX dims ON public.items USING btree (vector_dims(embedding))",
            &ctx(Profile::Halfvec),
        );
        assert!(sql_of(&t).ends_with("USING btree (vector_dims(embedding))"));
    }

    #[test]
    fn pgvector_opclass_schema_is_dropped_with_a_note() {
        let text = "CREATE INDEX docs_ip ON public.items USING hnsw (embedding extensions.vector_ip_ops)";
        for c in [ctx(Profile::Pgvector), ctx(Profile::Alloydb), ctx(Profile::Halfvec)] {
            let t = run(text, &c);
            assert!(
                sql_of(&t).ends_with(r#"_ip_ops)"#) && !sql_of(&t).contains("extensions"),
                "{t:?}"
            );
            assert!(
                notes_of(&t).iter().any(|n| n.contains("extensions.vector_ip_ops")),
                "{t:?}"
            );
        }
    }

    #[test]
    fn dimension_limits_skip_with_the_limit() {
        let mut c = ctx(Profile::Halfvec);
        c.dims.insert("embedding".into(), 4001);
        let r = run(
            "CREATE INDEX big ON public.items USING hnsw (embedding vector_l2_ops)",
            &c,
        );
        assert!(
            reason_of(&r).contains("4001 dimensions, more than a halfvec hnsw/ivfflat index can hold (4000)"),
            "{r:?}"
        );
        c.dims.insert("embedding".into(), 4000);
        assert!(matches!(
            run(
                "CREATE INDEX ok ON public.items USING hnsw (embedding vector_l2_ops)",
                &c
            ),
            Translation::Create { .. }
        ));
        // Lantern: 2000, also for a halfvec source (real[] on the target).
        let r = run(
            "CREATE INDEX h ON public.items USING hnsw (h halfvec_l2_ops)",
            &ctx(Profile::Lantern),
        );
        assert!(
            reason_of(&r).contains("3000 dimensions, more than Lantern's index limit (2000)"),
            "{r:?}"
        );
    }

    #[test]
    fn clamps_options_and_says_so() {
        let text =
            "CREATE INDEX c ON public.items USING hnsw (embedding vector_l2_ops) WITH (m='2', ef_construction='1000')";
        let t = run(text, &ctx(Profile::PgvectoRs));
        assert!(
            sql_of(&t).contains("$$[indexing.hnsw]\nm = 4\nef_construction = 1000$$"),
            "{t:?}"
        );
        assert!(notes_of(&t).iter().any(|n| n.contains("m 2 clamped to 4")), "{t:?}");
        let t = run(text, &ctx(Profile::Lantern));
        assert!(
            sql_of(&t).contains("WITH (m=2, ef_construction=400, ef=64, dim=1536)"),
            "{t:?}"
        );
        assert!(
            notes_of(&t)
                .iter()
                .any(|n| n.contains("ef_construction 1000 clamped to 400")),
            "{t:?}"
        );
        let t = run(
            "CREATE INDEX c ON public.items USING hnsw (embedding vector_l2_ops) WITH (ef_construction='5')",
            &ctx(Profile::PgvectoRs),
        );
        assert!(sql_of(&t).contains("m = 16\nef_construction = 10$$"), "{t:?}");
    }

    #[test]
    fn lantern_without_known_dims_leaves_dim_out() {
        let mut c = ctx(Profile::Lantern);
        c.dims.clear();
        let t = run(
            "CREATE INDEX d ON public.items USING hnsw (embedding vector_l2_ops)",
            &c,
        );
        assert!(sql_of(&t).ends_with("WITH (m=16, ef_construction=64, ef=64)"), "{t:?}");
        assert!(
            notes_of(&t).iter().any(|n| n.contains("fails on an empty table")),
            "{t:?}"
        );
        let r = run("CREATE INDEX j ON public.items USING hnsw (b bit_jaccard_ops)", &c);
        assert!(reason_of(&r).contains("Lantern has no Jaccard operator class"), "{r:?}");
    }

    #[test]
    fn pgvecto_rs_maps_types_and_rejects_sparse_or_binary_ivf() {
        let c = ctx(Profile::PgvectoRs);
        let t = run("CREATE INDEX h ON public.items USING hnsw (h halfvec_ip_ops)", &c);
        assert!(
            sql_of(&t).contains(r#"USING vectors ("h" vectors.vecf16_dot_ops)"#),
            "{t:?}"
        );
        let t = run("CREATE INDEX j ON public.items USING hnsw (b bit_jaccard_ops)", &c);
        assert!(sql_of(&t).contains(r#"("b" vectors.bvector_jaccard_ops)"#), "{t:?}");
        let t = run(
            "CREATE INDEX sc ON public.items USING hnsw (s sparsevec_cosine_ops)",
            &c,
        );
        assert!(sql_of(&t).contains(r#"("s" vectors.svector_cos_ops)"#), "{t:?}");
        let r = run(
            "CREATE INDEX bi ON public.items USING ivfflat (b bit_hamming_ops) WITH (lists='10')",
            &c,
        );
        assert!(
            reason_of(&r).contains("ivf is only supported for dense vectors"),
            "{r:?}"
        );
        let t = run("CREATE INDEX hi ON public.items USING ivfflat (h halfvec_l2_ops)", &c);
        assert!(
            sql_of(&t).ends_with("(\"h\" vectors.vecf16_l2_ops) WITH (options = $$[indexing.ivf]\nnlist = 100$$)"),
            "{t:?}"
        );
    }

    #[test]
    fn vectorchord_lists_follow_the_row_estimate() {
        assert_eq!(vectorchord_lists(-1), None);
        assert_eq!(vectorchord_lists(99_999), None);
        assert_eq!(vectorchord_lists(100_000), Some(200));
        assert_eq!(vectorchord_lists(2_000_000), Some(4000));
        assert_eq!(vectorchord_lists(1_000_000_000), Some(16 * 31_622));
        let mut c = ctx(Profile::Vectorchord);
        c.estimated_rows = 5000;
        let t = run(
            "CREATE INDEX small ON public.items USING hnsw (embedding vector_cosine_ops) WITH (m='32')",
            &c,
        );
        assert_eq!(
            sql_of(&t),
            r#"CREATE INDEX IF NOT EXISTS "small" ON "app"."items" USING vchordrq ("embedding" vector_cosine_ops)"#
        );
        let notes = notes_of(&t).join("\n");
        assert!(
            notes.contains("lists = [] (no partitioning) below 100k rows"),
            "{notes}"
        );
        assert!(notes.contains("(m=32) have no vchordrq equivalent"), "{notes}");
        let t = run(
            "CREATE INDEX h ON public.items USING hnsw (h halfvec_l2_ops)",
            &ctx(Profile::Vectorchord),
        );
        assert!(sql_of(&t).contains(r#"USING vchordrq ("h" halfvec_l2_ops)"#), "{t:?}");
        let t = run(
            "CREATE INDEX l ON public.items USING hnsw (embedding vector_l2_ops)",
            &ctx(Profile::Vectorchord),
        );
        assert!(notes_of(&t).iter().any(|n| n.contains("vchordrq.probes")), "{t:?}");
    }

    #[test]
    fn alloydb_scann_sizes_leaves_and_keeps_what_it_cannot_map() {
        let mut c = scann();
        c.estimated_rows = -1;
        let t = run(
            "CREATE INDEX e ON public.items USING hnsw (embedding vector_l2_ops)",
            &c,
        );
        assert!(
            sql_of(&t).ends_with("WITH (num_leaves = 1, quantizer = 'sq8')"),
            "{t:?}"
        );
        assert!(notes_of(&t).iter().any(|n| n.contains("ANALYZE the source")), "{t:?}");
        c.estimated_rows = 2_250_000;
        let t = run(
            "CREATE INDEX e ON public.items USING hnsw (embedding vector_l2_ops)",
            &c,
        );
        assert!(
            sql_of(&t).ends_with("WITH (num_leaves = 1500, quantizer = 'sq8')"),
            "{t:?}"
        );
        let t = run("CREATE INDEX b ON public.items USING hnsw (b bit_hamming_ops)", &c);
        assert!(
            notes_of(&t)
                .iter()
                .any(|n| n.contains("no ScaNN equivalent for bit_hamming_ops")),
            "{t:?}"
        );
    }

    #[test]
    fn dim_limits_per_profile() {
        use ColumnKind as K;
        let cases = [
            (Profile::Pgvector, K::Vector, Some(2000)),
            (Profile::Pgvector, K::Halfvec, Some(4000)),
            (Profile::Pgvector, K::Bit, Some(64000)),
            (Profile::Pgvector, K::Sparsevec, None),
            (Profile::Halfvec, K::Vector, Some(4000)),
            (Profile::Lantern, K::Vector, Some(2000)),
            (Profile::Lantern, K::Halfvec, Some(2000)),
            (Profile::PgvectoRs, K::Vector, Some(65535)),
            (Profile::PgvectoRs, K::Sparsevec, Some(1_048_575)),
            (Profile::Vectorchord, K::Vector, Some(16000)),
            (Profile::Alloydb, K::Vector, Some(2000)),
            (Profile::Alloydb, K::Other, None),
        ];
        for (profile, kind, want) in cases {
            assert_eq!(index_dim_limit(profile, kind), want, "{profile:?} {kind:?}");
        }
    }

    #[test]
    fn profile_names_are_snake_case() {
        assert_eq!(serde_json::to_string(&Profile::PgvectoRs).unwrap(), "\"pgvecto_rs\"");
        assert_eq!(
            serde_json::from_str::<Profile>("\"vectorchord\"").unwrap(),
            Profile::Vectorchord
        );
    }

    #[test]
    fn classifies_only_pgvector_opclasses() {
        assert_eq!(
            classify_opclass("vector_cosine_ops"),
            Some((ColumnKind::Vector, Metric::Cosine))
        );
        assert_eq!(
            classify_opclass("bit_jaccard_ops"),
            Some((ColumnKind::Bit, Metric::Jaccard))
        );
        for other in [
            "bit_l2_ops",
            "vector_hamming_ops",
            "vector_ops",
            "dist_l2sq_ops",
            "text_pattern_ops",
        ] {
            assert_eq!(classify_opclass(other), None, "{other}");
        }
        // hnsw with a non-pgvector opclass is a plain index: re-targeted unchanged everywhere.
        let t = run(
            "CREATE INDEX o ON public.items USING hnsw (embedding my_ops)",
            &ctx(Profile::Lantern),
        );
        assert_eq!(
            sql_of(&t),
            r#"CREATE INDEX IF NOT EXISTS "o" ON "app"."items" USING hnsw ("embedding" my_ops)"#
        );
    }
}
