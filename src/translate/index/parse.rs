//! PURE: reads what `pg_get_indexdef` prints into an [`IndexDef`] (names unquoted,
//! expressions and the predicate verbatim), and finds the identifiers an expression mentions.

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
pub(super) fn split_rest(rest: &str) -> (Option<&str>, &str) {
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
pub(super) fn referenced_identifiers(expr: &str) -> Vec<String> {
    identifier_positions(expr).into_iter().map(|(id, _)| id).collect()
}

/// [`referenced_identifiers`] with the byte offset just past each one.
pub(super) fn identifier_positions(expr: &str) -> Vec<(String, usize)> {
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
}
