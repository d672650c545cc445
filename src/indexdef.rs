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
//! profile, except that Lantern and PGVecto.rs skip plain indexes whose expression or predicate
//! reads a vector column (its type changes there).
//!
//! | source (opclass, AM) | `pgvector` | `halfvec` | `lantern` | `pgvecto_rs` | `vectorchord` | `alloydb` (`alloydb_scann`) |
//! |---|---|---|---|---|---|---|
//! | vector l2/ip/cosine, hnsw | same | `halfvec_*_ops`, same WITH | `lantern_hnsw` `dist_l2sq_ops`/`dist_cos_ops`, `m`, `ef_construction` ≤ 400, `ef=64`, `dim=n`; ip: skip | `vectors` `vector_{l2,dot,cos}_ops`, `[indexing.hnsw]` m∈[4,128], ef_construction∈[10,2000] | `vchordrq`, lists by rows (below) | same (`scann` l2/dot_product/cosine, `num_leaves` = round(√rows)) |
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

/// The target profile (how vector columns and indexes look on the target).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Profile {
    Pgvector,
    Halfvec,
    Lantern,
    PgvectoRs,
    Vectorchord,
    Alloydb,
}

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
    Ok(IndexDef { unique, name, method, keys, include, nulls_not_distinct, options, predicate })
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
    Ok(IndexKey { column, expression, opclass, rest: rest.join(" ") })
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
        self.peek().is_some_and(|ch| ch == '"' || ch == '_' || ch.is_alphabetic())
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
        let body = rest.strip_prefix('\'').ok_or_else(|| format!("expected a string literal at `{rest}`"))?;
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

/// Identifiers an expression mentions (quoted ones verbatim, bare ones lower-cased); string
/// literals are skipped. Over-approximates (function and type names are included).
fn referenced_identifiers(expr: &str) -> Vec<String> {
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
            match c.ident() {
                Ok(id) => out.push(id),
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
    Some(VecIndex { key, method, kind, metric, dims })
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
    let mut b = Builder::new(def, target_table, ctx);
    match vector_index(def, ctx) {
        None => plain(def, &mut b, ctx, &idx),
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
        Builder { def, target, ctx, notes: Vec::new() }
    }

    fn target_column(&self, source: &str) -> String {
        quote_ident(self.ctx.column_renames.get(source).map(String::as_str).unwrap_or(source))
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

    fn create(self, sql: String, extension: Option<&str>) -> Translation {
        Translation::Create { sql, notes: self.notes, extension: extension.map(str::to_string) }
    }
}

/// The source's WITH options as they were: `m='16', ef_construction='64'`.
fn source_with(def: &IndexDef) -> Option<String> {
    (!def.options.is_empty()).then(|| {
        def.options.iter().map(|(k, v)| format!("{}={}", option_name(k), quote_literal(v))).collect::<Vec<_>>().join(", ")
    })
}

fn option_name(name: &str) -> String {
    let bare = name.chars().next().is_some_and(|c| c.is_ascii_lowercase() || c == '_')
        && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '.');
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
    def.options.iter().find(|(k, _)| k == name).and_then(|(_, v)| v.trim().parse().ok())
}

/// Notes for WITH options a translation does not carry over.
fn note_dropped_options(b: &mut Builder, idx: &str, used: &[&str], target: &str) {
    for (k, v) in &b.def.options {
        if !used.contains(&k.as_str()) {
            b.notes.push(format!("index {idx}: option {k}={v} has no {target} equivalent and is dropped"));
        }
    }
}

fn plain(def: &IndexDef, b: &mut Builder, ctx: &TranslateContext, idx: &str) -> Translation {
    if matches!(ctx.profile, Profile::Lantern | Profile::PgvectoRs) {
        let (engine, becomes) = engine_names(ctx.profile);
        let mut texts: Vec<&str> = def.keys.iter().filter_map(|k| k.expression.as_deref()).collect();
        texts.extend(def.predicate.as_deref());
        for text in texts {
            let vector_col = referenced_identifiers(text).into_iter().find(|id| {
                ctx.column_types.get(id).is_some_and(|k| *k != ColumnKind::Other)
            });
            if let Some(col) = vector_col {
                return Translation::Skip {
                    reason: format!(
                        "index {idx}: its expression or WHERE clause `{text}` reads the vector column {}, which becomes {becomes} on {engine}, where pgvector's functions and casts do not apply; re-create the index by hand in {engine}'s terms, or drop it",
                        display_ident(&col)
                    ),
                };
            }
        }
    }
    let keys: Vec<String> =
        def.keys.iter().map(|k| b.full_key_sql(k, k.opclass.as_ref().map(|op| opclass_sql(op, true)))).collect();
    let sql = b.statement(&def.method, &keys, source_with(def));
    take(b).create(sql, vector_index_extension(def))
}

/// A plain hnsw/ivfflat index (non-pgvector opclass) still needs pgvector's AM.
fn vector_index_extension(def: &IndexDef) -> Option<&'static str> {
    matches!(def.method.as_str(), "hnsw" | "ivfflat").then_some("vector")
}

fn engine_names(profile: Profile) -> (&'static str, &'static str) {
    match profile {
        Profile::Lantern => ("Lantern", "real[] (or integer[] for bit)"),
        Profile::PgvectoRs => ("PGVecto.rs", "a vectors.* type"),
        Profile::Halfvec => ("the halfvec target", "halfvec"),
        Profile::Vectorchord => ("VectorChord", "the same pgvector type"),
        Profile::Alloydb => ("AlloyDB", "the same pgvector type"),
        Profile::Pgvector => ("pgvector", "the same pgvector type"),
    }
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
    take(b).create(sql, Some("vector"))
}

fn take<'a>(b: &mut Builder<'a>) -> Builder<'a> {
    std::mem::replace(b, Builder::new(b.def, b.target, b.ctx))
}

fn too_many_dims(v: &VecIndex, profile: Profile) -> Option<(u32, u32)> {
    let dims = v.dims?;
    let limit = index_dim_limit(profile, v.kind)?;
    (dims > limit).then_some((dims, limit))
}

fn to_halfvec(def: &IndexDef, v: &VecIndex, b: &mut Builder, idx: &str) -> Translation {
    if v.key.expression.is_some() {
        b.notes.push(format!(
            "index {idx}: the key expression {} is copied verbatim and now reads the halfvec column; check that it still means the same",
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
    let from = v.opclass_name();
    let to = format!("halfvec_{}_ops", v.metric.suffix());
    b.notes.push(format!(
        "index {idx}: operator class {} -> {to} (the column is halfvec on the target); WITH options copied",
        if v.key.opclass.is_none() { format!("{from} (the ivfflat default)") } else { from }
    ));
    let key = b.full_key_sql(v.key, Some(to));
    let sql = b.statement(&def.method, &[key], source_with(def));
    take(b).create(sql, Some("vector"))
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
                    "index {idx}: Lantern has no {} operator class: {src} cannot be translated; map it explicitly (e.g. normalise the vectors and use dist_cos_ops) or query without an index",
                    m.describe()
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
                "index {idx}: bit({dims}) is stored as integer[] of {words} words; dim={words}"
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
    take(b).create(sql, Some("lantern"))
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
                    "index {idx}: PGVecto.rs has no L1 operator class: {src} cannot be translated; map it explicitly to vector_l2_ops by hand, or query without an index"
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
                b.notes.push(format!("index {idx}: m {m} clamped to {m2} (PGVecto.rs allows 4..128)"));
            }
            if ef2 != ef {
                b.notes.push(format!("index {idx}: ef_construction {ef} clamped to {ef2} (PGVecto.rs allows 10..2000)"));
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
    take(b).create(sql, Some("vectors"))
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
            b.notes.push(format!("index {idx}: ivfflat lists={l} -> vchordrq [build.internal] lists = [{l}]"));
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
                    def.options.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(", ")
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
    take(b).create(sql, Some("vchord"))
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
        b.notes.push(format!("index {idx}: {why}; the pgvector {} index is kept as it is", def.method));
        return identity(def, b, idx);
    }
    let num_leaves = match v.method {
        VecMethod::Ivfflat => {
            let l = int_option(def, "lists").unwrap_or(100);
            b.notes.push(format!("index {idx}: ivfflat lists={l} -> ScaNN num_leaves = {l}"));
            l
        }
        VecMethod::Hnsw => {
            let n = if ctx.estimated_rows > 0 { ((ctx.estimated_rows as f64).sqrt().round() as i64).max(1) } else { 1 };
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
    let sql = b.statement("scann", &[key], Some(format!("num_leaves = {num_leaves}, quantizer = 'sq8'")));
    take(b).create(sql, Some("alloydb_scann"))
}
