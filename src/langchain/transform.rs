//! PURE: one `langchain_pg_embedding` row -> one row of its collection's table, for the
//! snapshot (COPY rows) and the stream (pgoutput tuples) alike.
//!
//! ```text
//!  source (key[, custom_id], collection_id, document, embedding, cmetadata)
//!     -> route key (id, or uuid)      collection_id      target id (id / custom_id, as id_type)
//!     -> target (id, content, embedding[, typed metadata...][, JSON rest])
//! ```
//! Unchanged TOASTed values ('u') stay unchanged: `document` -> `content`, `embedding` ->
//! `embedding`, `cmetadata` -> every metadata column and the JSON column.

use bytes::Bytes;
use uuid::Uuid;

use super::config::{IdType, LangchainConfig};
use super::layout::SourceLayout;
use super::metadata::{self, CastError};
use crate::source::pgoutput::{Tuple, TupleValue};
use crate::translate::{self, Conversion, VectorKind};

/// Where each source column sits in a tuple.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Positions {
    pub key: usize,
    pub user_id: Option<usize>,
    pub collection: usize,
    pub document: usize,
    pub embedding: usize,
    pub cmetadata: usize,
    /// Columns in the tuple.
    pub width: usize,
}

impl Positions {
    /// Positions by column name (a pgoutput Relation's columns, or the copier's column list).
    pub fn find(layout: &SourceLayout, names: &[&str]) -> Result<Positions, String> {
        let at = |n: &str| {
            names
                .iter()
                .position(|c| *c == n)
                .ok_or_else(|| format!("the source table has no column {n} any more"))
        };
        Ok(Positions {
            key: at(&layout.key_column)?,
            user_id: match &layout.user_id_column {
                Some(c) => Some(at(c)?),
                None => None,
            },
            collection: at("collection_id")?,
            document: at("document")?,
            embedding: at("embedding")?,
            cmetadata: at("cmetadata")?,
            width: names.len(),
        })
    }
}

/// A transformed row.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    /// The routing key: the source primary key's text (`id`, or the `uuid`'s text).
    pub key: String,
    pub collection: Option<Uuid>,
    /// The target id as text (what the routing table stores).
    pub target_id: String,
    /// Values in the collection table's column order ([`super::ddl::columns`]).
    pub tuple: Tuple,
}

impl Row {
    /// No unchanged TOASTed value: the row can be written whole (an upsert).
    pub fn complete(&self) -> bool {
        !self.tuple.0.iter().any(|v| matches!(v, TupleValue::Unchanged))
    }
}

/// Why a row cannot be written; `row` names it (`id 'doc-17'`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowError {
    pub row: String,
    pub message: String,
}

/// Turns source rows into collection-table rows under one configuration.
#[derive(Debug, Clone)]
pub struct Transformer {
    pub layout: SourceLayout,
    pub pos: Positions,
    config: LangchainConfig,
    conversion: Conversion,
    /// Dimensions every embedding must have (the target column's), when the source column's
    /// typmod does not guarantee it.
    check_dims: Option<u32>,
}

impl Transformer {
    pub fn new(config: &LangchainConfig, layout: &SourceLayout, pos: Positions) -> Transformer {
        Transformer {
            layout: layout.clone(),
            pos,
            config: config.clone(),
            conversion: super::ddl::embedding_conversion(config),
            check_dims: if layout.dims.is_none() {
                config.vector_size
            } else {
                None
            },
        }
    }

    /// The routing key of a tuple (a new row, or an old row's key from an Update or Delete).
    pub fn key(&self, values: &[TupleValue]) -> Result<String, RowError> {
        let unnamed = || RowError {
            row: "(unknown id)".into(),
            message: format!("its key column {} arrived without a value", self.layout.key_column),
        };
        match values.get(self.pos.key) {
            Some(TupleValue::Binary(b)) => self.key_text(b).ok_or_else(|| RowError {
                row: "(unreadable id)".into(),
                message: format!("its key column {} holds an unreadable value", self.layout.key_column),
            }),
            _ => Err(unnamed()),
        }
    }

    fn key_text(&self, b: &[u8]) -> Option<String> {
        if self.layout.key_is_uuid {
            Uuid::from_slice(b).ok().map(|u| u.hyphenated().to_string())
        } else {
            String::from_utf8(b.to_vec()).ok()
        }
    }

    /// The row's collection (None: NULL).
    pub fn collection(&self, values: &[TupleValue]) -> Result<Option<Uuid>, String> {
        match values.get(self.pos.collection) {
            Some(TupleValue::Null) => Ok(None),
            Some(TupleValue::Binary(b)) => Uuid::from_slice(b)
                .map(Some)
                .map_err(|_| "collection_id is not a 16-byte uuid".into()),
            _ => Err("collection_id arrived without a value".into()),
        }
    }

    /// Transform one source row. `values` has one entry per source column (see [`Positions`]).
    pub fn transform(&self, values: &[TupleValue]) -> Result<Row, RowError> {
        let key = self.key(values)?;
        let row_name = format!("{} {}", self.layout.key_column, quoted(&key));
        let fail = |message: String| RowError {
            row: row_name.clone(),
            message,
        };
        if values.len() != self.pos.width {
            return Err(fail(format!(
                "it has {} columns where {} were expected",
                values.len(),
                self.pos.width
            )));
        }
        let collection = self.collection(values).map_err(&fail)?;
        // The user's id: `id`, or `custom_id` (the uuid's text when NULL) in the community layout.
        let user_id = match self.pos.user_id.map(|i| &values[i]) {
            None | Some(TupleValue::Null) => key.clone(),
            Some(TupleValue::Binary(b)) => {
                String::from_utf8(b.to_vec()).map_err(|_| fail("custom_id is not valid UTF-8".into()))?
            }
            Some(_) => return Err(fail("custom_id arrived without a value".into())),
        };
        let row_name = match self.pos.user_id {
            Some(_) => format!("{row_name} (custom_id {})", quoted(&user_id)),
            None => row_name,
        };
        let fail = |message: String| RowError {
            row: row_name.clone(),
            message,
        };
        let id = self.target_id(&user_id).map_err(&fail)?;
        let mut out = Vec::with_capacity(4 + self.config.metadata_columns.len());
        out.push(TupleValue::Binary(id));
        // content TEXT NOT NULL
        out.push(match &values[self.pos.document] {
            TupleValue::Null => {
                return Err(fail(format!(
                    "its document is NULL but {} is TEXT NOT NULL in LangChain's layout: give the row a document (e.g. UPDATE ... SET document = '' WHERE {} = ...)",
                    self.config.content_column, self.layout.key_column
                )))
            }
            TupleValue::Text(_) => return Err(fail("document arrived in text form".into())),
            v => v.clone(),
        });
        // embedding vector(n) NOT NULL
        out.push(match &values[self.pos.embedding] {
            TupleValue::Null => {
                return Err(fail(format!(
                    "its embedding is NULL but {} is NOT NULL in LangChain's layout: delete the row or give it an embedding",
                    self.config.embedding_column
                )))
            }
            TupleValue::Binary(b) => {
                if let Some(want) = self.check_dims {
                    let got = translate::dims(VectorKind::Vector, b).map_err(|e| fail(e.to_string()))?;
                    if got != want {
                        return Err(fail(format!(
                            "its embedding has {got} dimensions but the collection tables hold vector({want}) (langchain.vector_size): fix the row, or migrate collections of different sizes with separate configurations"
                        )));
                    }
                }
                match self.conversion {
                    Conversion::Passthrough => TupleValue::Binary(b.clone()),
                    c => TupleValue::Binary(
                        translate::convert(c, b).map_err(|e| fail(format!("its embedding: {e}")))?,
                    ),
                }
            }
            TupleValue::Unchanged => TupleValue::Unchanged,
            TupleValue::Text(_) => return Err(fail("embedding arrived in text form".into())),
        });
        // typed metadata columns, then the JSON column
        let json_col = self.config.metadata_json.as_ref();
        match &values[self.pos.cmetadata] {
            TupleValue::Unchanged => {
                let n = self.config.metadata_columns.len() + usize::from(json_col.is_some());
                out.extend(std::iter::repeat_n(TupleValue::Unchanged, n));
            }
            TupleValue::Text(_) => return Err(fail("cmetadata arrived in text form".into())),
            v => {
                let raw = match v {
                    TupleValue::Binary(b) => Some(&b[..]),
                    _ => None,
                };
                let split = metadata::split(
                    raw,
                    self.layout.cmetadata_jsonb,
                    &self.config.metadata_columns,
                    json_col,
                )
                .map_err(|e| {
                    let c = &self.config.metadata_columns[e.column];
                    let what = match e.error {
                        CastError::Missing { null } => format!(
                            "its cmetadata {} key {:?} but metadata column {:?} is NOT NULL: set nullable = true for it in [langchain] metadata_columns",
                            if null { "has null for" } else { "has no" },
                            c.name,
                            c.name
                        ),
                        CastError::Mismatch { got, why } => format!(
                            "cmetadata key {:?} holds {got}, which does not fit metadata column {:?} {}: {why}. Change the column's type in [langchain] metadata_columns (e.g. type = \"text\" or \"jsonb\"), or remove {:?} from metadata_columns to keep the key in the JSON column",
                            c.name,
                            c.name,
                            c.data_type.sql(),
                            c.name
                        ),
                    };
                    fail(what)
                })?;
                out.extend(split.typed.into_iter().map(value));
                if json_col.is_some() {
                    out.push(value(split.json));
                }
            }
        }
        Ok(Row {
            key,
            collection,
            target_id: user_id,
            tuple: Tuple(out),
        })
    }

    /// The user's id in the id column's binary form.
    fn target_id(&self, id: &str) -> Result<Bytes, String> {
        match self.config.id_type {
            IdType::Uuid => Uuid::parse_str(id)
                .map(|u| Bytes::copy_from_slice(u.as_bytes()))
                .map_err(|_| {
                    format!(
                        "the id is not a UUID but {} is uuid (langchain.id_type): set id_type = \"text\" to keep LangChain's arbitrary string ids",
                        self.config.id_column
                    )
                }),
            IdType::Varchar(Some(n)) if id.chars().count() > n as usize => Err(format!(
                "the id has {} characters but {} is varchar({n}) (langchain.id_type): use a longer varchar or \"text\"",
                id.chars().count(),
                self.config.id_column
            )),
            IdType::Text | IdType::Varchar(_) => Ok(Bytes::copy_from_slice(id.as_bytes())),
        }
    }

    /// The target id's binary form from its text (for the routing table's moves).
    pub fn target_id_bytes(&self, id: &str) -> Result<Bytes, String> {
        self.target_id(id)
    }
}

fn value(v: Option<Bytes>) -> TupleValue {
    match v {
        Some(b) => TupleValue::Binary(b),
        None => TupleValue::Null,
    }
}

/// `'text'` for a message, at most 64 characters.
pub fn quoted(s: &str) -> String {
    let short: String = s.chars().take(64).collect();
    format!(
        "'{}'{}",
        short.replace('\'', "''"),
        if s.chars().count() > 64 { "..." } else { "" }
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::langchain::layout::Layout;

    fn config(extra: &str) -> LangchainConfig {
        let raw = toml::from_str(extra).unwrap();
        crate::langchain::config::validate(&raw, 0..0).unwrap()
    }

    fn v1() -> SourceLayout {
        SourceLayout {
            layout: Layout::LangchainPostgres,
            key_column: "id".into(),
            key_is_uuid: false,
            user_id_column: None,
            cmetadata_jsonb: true,
            dims: Some(3),
            names_nullable: false,
        }
    }

    fn b(bytes: &[u8]) -> TupleValue {
        TupleValue::Binary(Bytes::copy_from_slice(bytes))
    }

    fn vector(xs: &[f32]) -> Vec<u8> {
        let mut v = (xs.len() as i16).to_be_bytes().to_vec();
        v.extend_from_slice(&[0, 0]);
        for x in xs {
            v.extend_from_slice(&x.to_be_bytes());
        }
        v
    }

    const C: Uuid = Uuid::from_u128(0x0123_4567_89ab_cdef_0123_4567_89ab_cdef);

    fn source(id: &str, meta: &[u8]) -> Vec<TupleValue> {
        let mut m = vec![1u8];
        m.extend_from_slice(meta);
        vec![
            b(id.as_bytes()),
            b(C.as_bytes()),
            b(b"hello"),
            b(&vector(&[1.0, 2.0, 3.0])),
            b(&m),
        ]
    }

    fn names() -> Vec<&'static str> {
        vec!["id", "collection_id", "document", "embedding", "cmetadata"]
    }

    #[test]
    fn transforms_rows_into_the_collection_layout() {
        let cfg = config("id_type = \"text\"\nmetadata_columns = [{ name = \"page\", type = \"int\" }]");
        let t = Transformer::new(&cfg, &v1(), Positions::find(&v1(), &names()).unwrap());
        let row = t.transform(&source("doc-1", br#"{"page": 2, "a": {"b": 1}}"#)).unwrap();
        assert_eq!(row.key, "doc-1");
        assert_eq!(row.target_id, "doc-1");
        assert_eq!(row.collection, Some(C));
        assert_eq!(
            row.tuple.0,
            vec![
                b(b"doc-1"),
                b(b"hello"),
                b(&vector(&[1.0, 2.0, 3.0])),
                b(&2i32.to_be_bytes()),
                b(br#"{"a":{"b":1}}"#),
            ]
        );
        assert!(row.complete());
        // Unchanged TOAST stays unchanged, for every column cmetadata feeds.
        let mut s = source("doc-1", b"{}");
        s[3] = TupleValue::Unchanged;
        s[4] = TupleValue::Unchanged;
        let row = t.transform(&s).unwrap();
        assert_eq!(
            &row.tuple.0[2..],
            &[TupleValue::Unchanged, TupleValue::Unchanged, TupleValue::Unchanged]
        );
        assert!(!row.complete());
    }

    #[test]
    fn ids_embeddings_and_metadata_that_do_not_fit_name_the_row() {
        let cfg = config("metadata_columns = [{ name = \"page\", type = \"integer\" }]");
        let t = Transformer::new(&cfg, &v1(), Positions::find(&v1(), &names()).unwrap());
        let e = t.transform(&source("doc-1", b"{}")).unwrap_err();
        assert_eq!(e.row, "id 'doc-1'");
        assert!(
            e.message.contains("not a UUID") && e.message.contains("id_type = \"text\""),
            "{}",
            e.message
        );
        let id = "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11";
        let row = t.transform(&source(id, b"{}")).unwrap();
        assert_eq!(row.tuple.0[0], b(Uuid::parse_str(id).unwrap().as_bytes()));
        let e = t.transform(&source(id, br#"{"page": "three"}"#)).unwrap_err();
        assert!(
            e.message.starts_with("cmetadata key \"page\" holds a string of 5 characters, which does not fit metadata column \"page\" integer"),
            "{}",
            e.message
        );
        assert!(
            e.message.contains("remove \"page\" from metadata_columns"),
            "{}",
            e.message
        );
        let mut s = source(id, b"{}");
        s[2] = TupleValue::Null;
        assert!(t.transform(&s).unwrap_err().message.contains("document is NULL"));
        // An untyped source column: the configured size is enforced.
        let mut l = v1();
        l.dims = None;
        let cfg = config("vector_size = 2");
        let t = Transformer::new(&cfg, &l, Positions::find(&l, &names()).unwrap());
        let e = t.transform(&source(id, b"{}")).unwrap_err();
        assert!(
            e.message
                .contains("3 dimensions but the collection tables hold vector(2)"),
            "{}",
            e.message
        );
    }

    #[test]
    fn community_layout_uses_custom_id_and_halfvec_converts() {
        let l = SourceLayout {
            layout: Layout::LangchainCommunity,
            key_column: "uuid".into(),
            key_is_uuid: true,
            user_id_column: Some("custom_id".into()),
            cmetadata_jsonb: false,
            dims: Some(3),
            names_nullable: true,
        };
        let cfg = config("id_type = \"varchar(8)\"\nprofile = \"halfvec\"\nstore_metadata = false");
        let names = [
            "uuid",
            "collection_id",
            "embedding",
            "document",
            "cmetadata",
            "custom_id",
        ];
        let t = Transformer::new(&cfg, &l, Positions::find(&l, &names).unwrap());
        let key = Uuid::from_u128(7);
        let mut s = vec![
            b(key.as_bytes()),
            b(C.as_bytes()),
            b(&vector(&[1.0, 2.0, 3.0])),
            b(b"doc"),
            b(b"{\"a\": 1}"),
            b(b"mine"),
        ];
        let row = t.transform(&s).unwrap();
        assert_eq!(row.key, key.hyphenated().to_string());
        assert_eq!(row.target_id, "mine");
        assert_eq!(row.tuple.0.len(), 3);
        assert_eq!(row.tuple.0[0], b(b"mine"));
        let TupleValue::Binary(h) = &row.tuple.0[2] else {
            panic!()
        };
        assert_eq!(h.len(), 4 + 3 * 2, "halfvec");
        // NULL custom_id: the uuid's text.
        s[5] = TupleValue::Null;
        let e = t.transform(&s).unwrap_err();
        assert!(
            e.message.contains("36 characters but langchain_id is varchar(8)"),
            "{}",
            e.message
        );
    }
}
