//! `pgvshift verify`: is the target equal to the source, row by row, while `run` streams?
//!
//! ```text
//!  per table with a primary key:
//!    chunk i:  source  SELECT key, cols ... WHERE key > lo ORDER BY key LIMIT n   (hi = last key)
//!              target  SELECT key, cols ... WHERE key > lo AND key <= hi           (streamed)
//!              compare decoded values after the profile's translation (values.rs)
//!              -> differing keys are candidates (a row may just have changed meanwhile)
//!    re-check each candidate (up to RECHECK_ROUNDS):
//!       S1 = source row;  L = source WAL insert position;  wait target applied_lsn >= L;
//!       T = target row;   S2 = source row again
//!       T == S1 or T == S2      -> equal (the target holds a state the source had)
//!       else S1 == S2           -> DIFFERENT, for sure: the row did not change on the source
//!                                  while the target was read past every commit S1 saw
//!       else (it keeps changing) -> next round; still changing after the last -> "unsettled"
//!  per table without a primary key (REPLICA IDENTITY FULL): multiset hash of the translated
//!    rows on each side (count + sum of 128-bit row hashes), same S1 / T / S2 rule per table
//! ```
//!
//! The consistency point: no pause of the applier and no change to `run`. The target's side of
//! every comparison is an exact prefix of the source's history (its `applied_lsn` commits with
//! the changes), and a row is reported only when the source's value stayed the same across a
//! target read that includes every commit the source read saw. Under `cutover`'s fence the
//! source does not change and the target has applied the fence position, so one pass is exact
//! ([`Consistency::Fenced`]). See docs/operations.md, "Verify".

use std::collections::hash_map::DefaultHasher;
use std::collections::{HashMap, HashSet};
use std::hash::{Hash, Hasher};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::{pin_mut, TryStreamExt};
use serde::Serialize;
use tokio_postgres::types::{FromSql, ToSql, Type};
use tokio_postgres::Client;

use crate::apply::state::{self, applied_lsn, wait_applied, Phase};
use crate::config::Config;
use crate::config::Side;
use crate::error::{DbContext, Error, Result};
use crate::schema::catalog::{self, Table};
use crate::schema::mapping::{self, key_text, TableMap, VectorKind};
use crate::source::slot::{insert_lsn, nudge, slot_active};
use crate::source::{connect, RawValue};
use crate::sql::{display_ident, quote_ident};
use crate::Lsn;

use super::values::{ColumnCompare, Decoded, Outcome};
use super::{ann, keys};

/// Re-check rounds for rows that differed while being read.
pub const RECHECK_ROUNDS: u32 = 5;
/// Differing keys kept per table for re-checking; beyond it they are only counted (and
/// reported as differences: that many rows do not all change in one chunk's time).
pub const CANDIDATE_CAP: usize = 50_000;
/// In sample mode, at least this many rows per table are compared (smaller tables in full).
pub const SAMPLE_MIN_ROWS: i64 = 1000;

/// What to compare and how.
#[derive(Debug, Clone)]
pub struct Options {
    /// `--sample P`: compare about P % of each table's rows (None: every row).
    pub sample_percent: Option<f64>,
    /// `--ann K,Q`: Q top-K queries per vector index.
    pub ann: Option<(usize, usize)>,
    /// Differing keys named per table.
    pub max_keys: usize,
    /// Rows per key-range chunk.
    pub chunk_rows: usize,
    /// How long to wait for the target to apply up to a source position.
    pub catch_up_timeout: Duration,
    /// Wait for the target to catch up with the source before the first read (fewer rows to
    /// re-check). Off only to test the re-check with a target that is behind.
    pub initial_catch_up: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            sample_percent: None,
            ann: None,
            max_keys: 10,
            chunk_rows: 1000,
            catch_up_timeout: Duration::from_secs(120),
            initial_catch_up: true,
        }
    }
}

/// At which point the two sides are compared.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Consistency {
    /// While `run` streams and the source takes writes: differing rows are re-checked.
    Live,
    /// Source writes are fenced and the target has applied `0`: one pass is exact.
    Fenced(Lsn),
}

/// The whole result (`--json` prints it).
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// `live: re-checked ...`, `fenced at <lsn>`, or `not streaming ...`.
    pub consistency: String,
    /// `full` or `sample`.
    pub mode: String,
    pub source_lsn_at_start: String,
    pub applied_lsn_at_start: Option<String>,
    pub tables: Vec<TableReport>,
    pub ok: bool,
    pub seconds: f64,
}

/// One table's result.
#[derive(Debug, Clone, Serialize)]
pub struct TableReport {
    pub source: String,
    pub target: String,
    pub profile: String,
    /// `primary_key` (row by row, in key ranges) or `multiset` (no primary key).
    pub method: String,
    /// `ok`, `mismatch`, or `unsettled` (rows kept changing during every re-check).
    pub status: String,
    /// Rows read on each side (in sample mode: `count(*)`).
    pub source_rows: u64,
    pub target_rows: u64,
    /// Rows compared value by value.
    pub compared_rows: u64,
    /// The sample actually taken, in percent (None: every row).
    pub sample_percent: Option<f64>,
    pub missing_on_target: u64,
    pub extra_on_target: u64,
    pub different: u64,
    pub unsettled: u64,
    /// The first differing keys (keys only, never values).
    pub keys: Vec<KeyDiff>,
    /// Rows that differed on the first read and were read again.
    pub rechecked: u64,
    pub recheck_rounds: u32,
    /// Lossy columns (halfvec): the largest element difference seen between equal rows.
    pub max_abs_error: Option<f64>,
    pub tolerance: Option<String>,
    pub notes: Vec<String>,
    pub seconds: f64,
    pub rows_per_sec: f64,
    pub ann: Vec<ann::AnnReport>,
}

/// One differing row, named by its key.
#[derive(Debug, Clone, Serialize)]
pub struct KeyDiff {
    pub key: String,
    /// `missing_on_target`, `extra_on_target` or `different`.
    pub kind: String,
    /// For `different`: the (target) columns that differ.
    pub columns: Vec<String>,
}

/// A column value exactly as the server sent it (binary, or text for `::text` expressions).
pub(crate) struct RawBytes<'a>(pub &'a [u8]);

impl<'a> FromSql<'a> for RawBytes<'a> {
    fn from_sql(_: &Type, raw: &'a [u8]) -> std::result::Result<Self, Box<dyn std::error::Error + Sync + Send>> {
        Ok(RawBytes(raw))
    }

    fn accepts(_: &Type) -> bool {
        true
    }
}

type Key = Vec<Bytes>;
type Values = Vec<Option<Bytes>>;

/// One table as compared: the SQL of each side and how each value column compares. Built from
/// the table's mapping; a target relation that holds several source tables (a per-collection
/// table) would be another constructor with a target filter and its own expressions.
struct TableSpec {
    source_name: String,
    target_name: String,
    profile: String,
    src: keys::Side,
    tgt: keys::Side,
    /// Key column names (target) and source types, to name keys in the report.
    key_names: Vec<String>,
    key_types: Vec<String>,
    /// Value columns: target name and comparison.
    columns: Vec<(String, ColumnCompare)>,
    notes: Vec<String>,
}

impl TableSpec {
    fn from_map(table: &Table, map: &TableMap) -> TableSpec {
        let key_source: Vec<String> = table.primary_key.clone();
        let values: Vec<&mapping::ColumnMap> = map
            .replicated()
            .filter(|c| !map.primary_key.contains(&c.target))
            .collect();
        let columns: Vec<(String, ColumnCompare)> = values
            .iter()
            .map(|c| (c.target.clone(), ColumnCompare::for_conversion(c.conversion)))
            .collect();
        let key_types = map
            .primary_key
            .iter()
            .map(|k| {
                map.columns
                    .iter()
                    .find(|c| &c.target == k)
                    .map(|c| c.source_type.clone())
                    .unwrap_or_default()
            })
            .collect();
        let mut notes = Vec::new();
        if map.columns.iter().any(|c| c.is_generated()) {
            notes.push("generated columns are not compared (the target computes them)".into());
        }
        TableSpec {
            source_name: table.name.to_string(),
            target_name: map.target.to_string(),
            profile: map.profile.to_string(),
            src: keys::Side {
                relation: table.name.quoted(),
                key: key_source.iter().map(|k| quote_ident(k)).collect(),
                collate_c: vec![false; key_source.len()],
                values: values.iter().map(|c| quote_ident(&c.source)).collect(),
                filter: None,
            },
            tgt: keys::Side {
                relation: map.target.quoted(),
                key: map.primary_key.iter().map(|k| quote_ident(k)).collect(),
                collate_c: vec![false; map.primary_key.len()],
                values: values
                    .iter()
                    .zip(&columns)
                    .map(|(c, (_, cmp))| {
                        if cmp.target_as_text {
                            format!("{}::text", quote_ident(&c.target))
                        } else {
                            quote_ident(&c.target)
                        }
                    })
                    .collect(),
                filter: None,
            },
            key_names: map.primary_key.clone(),
            key_types,
            columns,
            notes,
        }
    }

    fn keyed(&self) -> bool {
        !self.key_names.is_empty()
    }

    fn describe_key(&self, key: &Key) -> String {
        let parts: Vec<(String, String)> = self
            .key_names
            .iter()
            .zip(&self.key_types)
            .zip(key)
            .map(|((n, t), v)| (display_ident(n), key_text(t, v)))
            .collect();
        if parts.len() == 1 {
            format!("{}={}", parts[0].0, parts[0].1)
        } else {
            let (names, values): (Vec<String>, Vec<String>) = parts.into_iter().unzip();
            format!("({})=({})", names.join(", "), values.join(", "))
        }
    }

    /// Compare a source row with a target row (either may be absent). `Ok(max error)` when
    /// equal, else the differing (target) columns (empty: a row is missing on one side).
    fn compare_rows(&self, s: Option<&Values>, t: Option<&Values>) -> std::result::Result<f32, Vec<String>> {
        match (s, t) {
            (None, None) => Ok(0.0),
            (Some(_), None) | (None, Some(_)) => Err(Vec::new()),
            (Some(s), Some(t)) => {
                let mut max = 0f32;
                let mut differing = Vec::new();
                for (i, (name, cmp)) in self.columns.iter().enumerate() {
                    let (sv, tv) = (s.get(i).and_then(|v| v.as_deref()), t.get(i).and_then(|v| v.as_deref()));
                    if cmp.conversion == crate::translate::Conversion::Passthrough {
                        // Same type on both sides: the binary forms compare as they are.
                        if sv != tv {
                            differing.push(name.clone());
                        }
                        continue;
                    }
                    match cmp.compare(&cmp.expected(sv), &cmp.actual(tv)) {
                        Outcome::Equal { max_abs_error } => max = max.max(max_abs_error),
                        Outcome::Differs => differing.push(name.clone()),
                    }
                }
                if differing.is_empty() {
                    Ok(max)
                } else {
                    Err(differing)
                }
            }
        }
    }

    fn lossy(&self) -> bool {
        self.columns.iter().any(|(_, c)| c.lossy())
    }
}

/// Split a row into its key and its values.
fn split_row(row: &tokio_postgres::Row, nkey: usize) -> (Key, Values) {
    let get = |i: usize| row.get::<_, Option<RawBytes>>(i).map(|b| Bytes::copy_from_slice(b.0));
    let key = (0..nkey).map(|i| get(i).unwrap_or_default()).collect();
    let values = (nkey..row.len()).map(get).collect();
    (key, values)
}

fn params_of<'a>(keys: impl IntoIterator<Item = &'a Key>) -> Vec<RawValue> {
    keys.into_iter()
        .flat_map(|k| k.iter().map(|v| RawValue::Binary(v.clone())))
        .collect()
}

fn refs(params: &[RawValue]) -> Vec<&(dyn ToSql + Sync)> {
    params.iter().map(|p| p as &(dyn ToSql + Sync)).collect()
}

/// The two connections and what a comparison needs to know about the stream.
struct Ctx<'a> {
    source: &'a Client,
    target: &'a Client,
    slot: &'a str,
    consistency: Consistency,
    /// A `run` streams: waiting for the target to apply a position makes sense.
    streaming: bool,
    opts: &'a Options,
}

impl Ctx<'_> {
    /// After a source read: make sure the target has applied everything that read saw.
    async fn catch_up(&self) -> Result<()> {
        if self.consistency != Consistency::Live || !self.streaming {
            return Ok(());
        }
        let lsn = insert_lsn(self.source).await?;
        nudge(self.source).await;
        match wait_applied(self.target, self.slot, lsn, self.opts.catch_up_timeout).await? {
            Some(_) => Ok(()),
            None => Err(Error::Runtime(format!(
                "the target did not apply the source's changes up to {lsn} within {} s (applied: {}): is `pgvshift run` streaming and keeping up? (`pgvshift status`)",
                self.opts.catch_up_timeout.as_secs(),
                applied_lsn(self.target, self.slot)
                    .await?
                    .map_or_else(|| "none".to_string(), |a| a.to_string())
            ))),
        }
    }

    async fn rows_by_keys(&self, client: &Client, side: &keys::Side, keys: &[Key]) -> Result<HashMap<Key, Values>> {
        let nkey = side.key.len();
        let mut out = HashMap::with_capacity(keys.len());
        for batch in keys.chunks(keys::keys_per_statement(nkey)) {
            let params = params_of(batch);
            let rows = client
                .query(&side.by_keys(batch.len()), &refs(&params))
                .await
                .db(|| format!("reading rows of {} by key", side.relation))?;
            for r in &rows {
                let (k, v) = split_row(r, nkey);
                out.insert(k, v);
            }
        }
        Ok(out)
    }
}

/// Differences found so far in one table.
#[derive(Default)]
struct Tally {
    source_rows: u64,
    target_rows: u64,
    compared: u64,
    max_err: f32,
    /// Keys that differed on a first read, in the order found, with nothing else known.
    candidates: Vec<Key>,
    /// Differences beyond [`CANDIDATE_CAP`] (counted, not re-checked).
    overflow: u64,
}

impl Tally {
    fn candidate(&mut self, key: Key) {
        if self.candidates.len() < CANDIDATE_CAP {
            self.candidates.push(key);
        } else {
            self.overflow += 1;
        }
    }

    fn equal(&mut self, err: f32) {
        self.compared += 1;
        self.max_err = self.max_err.max(err);
    }
}

/// `pgvshift verify` while `run` streams.
pub async fn verify(config: &Config, opts: &Options) -> Result<Report> {
    verify_at(config, opts, Consistency::Live).await
}

/// Verify every configured table at the given consistency point.
pub async fn verify_at(config: &Config, opts: &Options, consistency: Consistency) -> Result<Report> {
    // LangChain mode has no [[tables]]: an empty comparison must not read as "equal".
    if config.langchain.is_some() {
        return Err(Error::Usage(format!(
            "{}: `pgvshift verify` does not compare LangChain collection tables yet; compare per collection yourself (docs/langchain.md)",
            config.path.display()
        )));
    }
    let started = Instant::now();
    let slot = &config.replication.slot;
    let source = connect(&config.source, Side::Source).await?;
    let target = connect(&config.target, Side::Target).await?;
    catalog::prepare_session(&source)
        .await
        .db(|| "preparing the source session".into())?;
    let progress = state::progress(&target, slot).await?;
    match &progress {
        Some(p) if p.phase == Phase::Streaming => {}
        Some(_) => {
            return Err(Error::Failed(format!(
                "the snapshot of slot {slot} has not completed yet: verify once `pgvshift status` says streaming"
            )))
        }
        None => {
            return Err(Error::Failed(format!(
                "the target has no progress for slot {slot}: nothing was migrated with this configuration yet (`pgvshift run --config {}`)",
                config.path.display()
            )))
        }
    }
    let streaming = slot_active(&source, slot).await?;
    let source_lsn = insert_lsn(&source).await?;
    let mut consistency_text = match consistency {
        Consistency::Fenced(lsn) => {
            format!("fenced at {lsn}: source writes are blocked and the target has applied them all; one exact pass")
        }
        Consistency::Live if streaming => "live: rows that differed while being read were re-checked after the target applied past their source read; only rows that stayed the same on the source are reported".into(),
        Consistency::Live => "not streaming: no `pgvshift run` holds the slot, so the target is compared as it is; changes it has not applied show as differences".into(),
    };
    let ctx = Ctx {
        source: &source,
        target: &target,
        slot,
        consistency,
        streaming,
        opts,
    };
    // Start from a target that has applied everything committed so far (fewer re-checks).
    if consistency == Consistency::Live && streaming && opts.initial_catch_up {
        nudge(&source).await;
        if wait_applied(&target, slot, source_lsn, opts.catch_up_timeout)
            .await?
            .is_none()
        {
            consistency_text.push_str(&format!(
                "; note: the target had not caught up with the source's position {source_lsn} within {} s when verify started",
                opts.catch_up_timeout.as_secs()
            ));
        }
    }
    let applied_at_start = applied_lsn(&target, slot).await?;

    let mut tables = Vec::new();
    for tc in &config.tables {
        let table = catalog::describe_table(&source, &tc.source)
            .await
            .map_err(|e| Error::Runtime(e.to_string()))?;
        let map = mapping::map_table(&table, tc);
        let mut spec = TableSpec::from_map(&table, &map);
        if let Some(problem) = map.problems.first() {
            return Err(Error::Failed(format!("cannot verify: {problem}")));
        }
        if !target_exists(&target, &map).await? {
            tables.push(missing_table(&spec));
            continue;
        }
        collations(&ctx, &table, &map, &mut spec).await?;
        let mut report = compare_table(&ctx, &spec).await?;
        if let Some((k, q)) = opts.ann {
            report.ann = measure_ann(&ctx, &table, &map, &spec, k, q).await?;
        }
        tables.push(report);
    }
    let ok = tables.iter().all(|t| t.status == "ok");
    Ok(Report {
        consistency: consistency_text,
        mode: if opts.sample_percent.is_some() {
            "sample".into()
        } else {
            "full".into()
        },
        source_lsn_at_start: source_lsn.to_string(),
        applied_lsn_at_start: applied_at_start.map(|l| l.to_string()),
        tables,
        ok,
        seconds: started.elapsed().as_secs_f64(),
    })
}

async fn target_exists(target: &Client, map: &TableMap) -> Result<bool> {
    Ok(target
        .query_one(
            "SELECT EXISTS (SELECT 1 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = $1 AND c.relname = $2)",
            &[&map.target.schema, &map.target.name],
        )
        .await
        .db(|| format!("looking up target table {}", map.target))?
        .get(0))
}

fn missing_table(spec: &TableSpec) -> TableReport {
    let mut r = empty_report(spec, "primary_key");
    r.status = "mismatch".into();
    r.notes
        .push(format!("target table {} does not exist", spec.target_name));
    r
}

fn empty_report(spec: &TableSpec, method: &str) -> TableReport {
    TableReport {
        source: spec.source_name.clone(),
        target: spec.target_name.clone(),
        profile: spec.profile.clone(),
        method: method.into(),
        status: "ok".into(),
        source_rows: 0,
        target_rows: 0,
        compared_rows: 0,
        sample_percent: None,
        missing_on_target: 0,
        extra_on_target: 0,
        different: 0,
        unsettled: 0,
        keys: Vec::new(),
        rechecked: 0,
        recheck_rounds: 0,
        max_abs_error: None,
        tolerance: spec
            .lossy()
            .then(|| "half an f16 ULP per element (what round-to-nearest allows)".to_string()),
        notes: spec.notes.clone(),
        seconds: 0.0,
        rows_per_sec: 0.0,
        ann: Vec::new(),
    }
}

/// Key columns whose collation differs between the servers are compared under `COLLATE "C"`
/// on both sides (correct, but not an index range scan).
async fn collations(ctx: &Ctx<'_>, table: &Table, map: &TableMap, spec: &mut TableSpec) -> Result<()> {
    const SQL: &str = "SELECT a.attname::text, CASE WHEN a.attcollation = 0 THEN NULL \
              WHEN co.collname = 'default' THEN 'default ' || (SELECT datcollate FROM pg_database WHERE datname = current_database()) \
              ELSE co.collprovider::text || ' ' || co.collname::text END \
         FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace \
         LEFT JOIN pg_collation co ON co.oid = a.attcollation \
        WHERE n.nspname = $1 AND c.relname = $2 AND a.attnum > 0 AND NOT a.attisdropped";
    let s = key_collations(ctx.source, &table.name.schema, &table.name.name, SQL).await?;
    let t = key_collations(ctx.target, &map.target.schema, &map.target.name, SQL).await?;
    for (i, (src, tgt)) in table.primary_key.iter().zip(&map.primary_key).enumerate() {
        let (a, b) = (s.get(src).cloned().flatten(), t.get(tgt).cloned().flatten());
        if a.is_some() && a != b {
            spec.src.collate_c[i] = true;
            spec.tgt.collate_c[i] = true;
            spec.notes.push(format!(
                "key column {} sorts differently on the two servers ({} vs {}): compared under COLLATE \"C\" (sorts instead of index range scans)",
                display_ident(tgt),
                a.unwrap_or_default(),
                b.unwrap_or_else(|| "none".into())
            ));
        }
    }
    Ok(())
}

async fn key_collations(
    client: &Client,
    schema: &str,
    name: &str,
    sql: &str,
) -> Result<HashMap<String, Option<String>>> {
    let rows = client
        .query(sql, &[&schema, &name])
        .await
        .db(|| format!("reading the key collations of {schema}.{name}"))?;
    Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
}

async fn compare_table(ctx: &Ctx<'_>, spec: &TableSpec) -> Result<TableReport> {
    let started = Instant::now();
    let mut report = if spec.keyed() {
        compare_keyed(ctx, spec).await?
    } else {
        compare_multiset(ctx, spec).await?
    };
    report.seconds = started.elapsed().as_secs_f64();
    report.rows_per_sec = if report.seconds > 0.0 {
        report.compared_rows as f64 / report.seconds
    } else {
        0.0
    };
    tracing::info!(
        table = %spec.source_name,
        status = %report.status,
        compared = report.compared_rows,
        seconds = format!("{:.2}", report.seconds),
        "verified"
    );
    Ok(report)
}

async fn compare_keyed(ctx: &Ctx<'_>, spec: &TableSpec) -> Result<TableReport> {
    let mut report = empty_report(spec, "primary_key");
    let mut tally = Tally::default();
    let sample = match ctx.opts.sample_percent {
        None => None,
        Some(p) => {
            let (s, t) = tokio::try_join!(count(ctx.source, &spec.src), count(ctx.target, &spec.tgt))?;
            tally.source_rows = s;
            tally.target_rows = t;
            keys::effective_sample(p, s as i64, SAMPLE_MIN_ROWS)
        }
    };
    match sample {
        Some(p) => {
            report.sample_percent = Some(p);
            compare_sample(ctx, spec, p, &mut tally).await?;
        }
        None => {
            let counted = ctx.opts.sample_percent.is_some();
            compare_ranges(ctx, spec, &mut tally, counted).await?;
            if counted {
                report.notes.push(format!(
                    "fewer than {SAMPLE_MIN_ROWS} rows to sample from: compared in full"
                ));
            }
        }
    }
    report.source_rows = tally.source_rows;
    report.target_rows = tally.target_rows;
    report.rechecked = tally.candidates.len() as u64;
    let (confirmed, unsettled, equal_on_recheck) = match ctx.consistency {
        Consistency::Fenced(_) => (classify(ctx, spec, &tally.candidates).await?, Vec::new(), 0),
        Consistency::Live => recheck(ctx, spec, std::mem::take(&mut tally.candidates), &mut report).await?,
    };
    // Compared: rows found equal (at once, or on a re-check while present on the source), and
    // the differing ones.
    let differing = confirmed.len() as u64 + unsettled.len() as u64 + tally.overflow;
    report.compared_rows = tally.compared + equal_on_recheck + differing;
    for (key, diff) in &confirmed {
        match diff {
            Diff::Missing => report.missing_on_target += 1,
            Diff::Extra => report.extra_on_target += 1,
            Diff::Different(_) => report.different += 1,
        }
        if report.keys.len() < ctx.opts.max_keys {
            report.keys.push(KeyDiff {
                key: spec.describe_key(key),
                kind: diff.kind().into(),
                columns: match diff {
                    Diff::Different(c) => c.clone(),
                    _ => Vec::new(),
                },
            });
        }
    }
    report.unsettled = unsettled.len() as u64;
    for key in unsettled
        .iter()
        .take(ctx.opts.max_keys.saturating_sub(report.keys.len()))
    {
        report.keys.push(KeyDiff {
            key: spec.describe_key(key),
            kind: "unsettled".into(),
            columns: Vec::new(),
        });
    }
    if tally.overflow > 0 {
        report.notes.push(format!(
            "more than {CANDIDATE_CAP} rows differed on the first read: {} more were counted as different without a re-check",
            tally.overflow
        ));
        report.different += tally.overflow;
    }
    if spec.lossy() {
        report.max_abs_error = Some(f64::from(tally.max_err));
    }
    report.status = if report.missing_on_target + report.extra_on_target + report.different > 0 {
        "mismatch"
    } else if report.unsettled > 0 {
        "unsettled"
    } else {
        "ok"
    }
    .into();
    Ok(report)
}

async fn count(client: &Client, side: &keys::Side) -> Result<u64> {
    let n: i64 = client
        .query_one(&side.count(), &[])
        .await
        .db(|| format!("counting the rows of {}", side.relation))?
        .get(0);
    Ok(n as u64)
}

/// Every row, in key ranges of `chunk_rows` source rows.
async fn compare_ranges(ctx: &Ctx<'_>, spec: &TableSpec, tally: &mut Tally, counted: bool) -> Result<()> {
    let nkey = spec.key_names.len();
    let chunk = ctx.opts.chunk_rows.max(1);
    let first_chunk = ctx
        .source
        .prepare(&spec.src.chunk_after(false, chunk))
        .await
        .db(|| format!("preparing the chunk read on {}", spec.source_name))?;
    let next_chunk = ctx
        .source
        .prepare(&spec.src.chunk_after(true, chunk))
        .await
        .db(|| format!("preparing the chunk read on {}", spec.source_name))?;
    // The source's next chunk is read while the target's current one streams in.
    let read_source = |lo: Option<Key>| {
        let stmt = if lo.is_some() { &next_chunk } else { &first_chunk };
        async move {
            let params = params_of(lo.iter());
            let rows = ctx
                .source
                .query(stmt, &refs(&params))
                .await
                .db(|| format!("reading a chunk of {}", spec.source_name))?;
            let full = rows.len() >= chunk;
            let mut map: HashMap<Key, Values> = HashMap::with_capacity(rows.len());
            let mut last = None;
            for r in &rows {
                let (k, v) = split_row(r, nkey);
                last = Some(k.clone());
                map.insert(k, v);
            }
            // The chunk's upper bound: its last key, unless it is the table's last chunk.
            Ok::<_, Error>((map, if full { last } else { None }))
        }
    };
    let mut lo: Option<Key> = None;
    let mut current = read_source(None).await?;
    loop {
        let (mut source_rows, hi) = current;
        if !counted {
            tally.source_rows += source_rows.len() as u64;
        }
        let next = async {
            match &hi {
                Some(h) => Some(read_source(Some(h.clone())).await),
                None => None,
            }
        };
        let target_part = async {
            let params = params_of(lo.iter().chain(hi.iter()));
            let stream = ctx
                .target
                .query_raw(&spec.tgt.range(lo.is_some(), hi.is_some()), refs(&params))
                .await
                .db(|| format!("reading a chunk of {}", spec.target_name))?;
            pin_mut!(stream);
            while let Some(r) = stream
                .try_next()
                .await
                .db(|| format!("reading a chunk of {}", spec.target_name))?
            {
                if !counted {
                    tally.target_rows += 1;
                }
                let (k, t) = split_row(&r, nkey);
                match source_rows.remove(&k) {
                    Some(s) => match spec.compare_rows(Some(&s), Some(&t)) {
                        Ok(err) => tally.equal(err),
                        Err(_) => tally.candidate(k),
                    },
                    None => tally.candidate(k),
                }
            }
            for k in source_rows.into_keys() {
                tally.candidate(k);
            }
            Ok::<(), Error>(())
        };
        let (next, done) = tokio::join!(next, target_part);
        done?;
        match (hi, next) {
            (Some(h), Some(next)) => {
                current = next?;
                lo = Some(h);
            }
            _ => return Ok(()),
        }
    }
}

/// About `percent` % of the rows: keys sampled on both sides, then read by key.
async fn compare_sample(ctx: &Ctx<'_>, spec: &TableSpec, percent: f64, tally: &mut Tally) -> Result<()> {
    let nkey = spec.key_names.len();
    let mut keys: Vec<Key> = Vec::new();
    let mut seen = HashSet::new();
    for (client, side) in [(ctx.source, &spec.src), (ctx.target, &spec.tgt)] {
        for r in client
            .query(&side.sample_keys(percent), &[])
            .await
            .db(|| format!("sampling keys of {}", side.relation))?
        {
            let (k, _) = split_row(&r, nkey);
            if seen.insert(k.clone()) {
                keys.push(k);
            }
        }
    }
    for batch in keys.chunks(keys::keys_per_statement(nkey)) {
        let (s, t) = tokio::try_join!(
            ctx.rows_by_keys(ctx.source, &spec.src, batch),
            ctx.rows_by_keys(ctx.target, &spec.tgt, batch)
        )?;
        for k in batch {
            match spec.compare_rows(s.get(k), t.get(k)) {
                Ok(err) => tally.equal(err),
                Err(_) => tally.candidate(k.clone()),
            }
        }
    }
    Ok(())
}

/// What is wrong with one row.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Diff {
    Missing,
    Extra,
    Different(Vec<String>),
}

impl Diff {
    fn kind(&self) -> &'static str {
        match self {
            Diff::Missing => "missing_on_target",
            Diff::Extra => "extra_on_target",
            Diff::Different(_) => "different",
        }
    }

    fn of(spec: &TableSpec, s: Option<&Values>, t: Option<&Values>) -> Option<Diff> {
        match (s, t, spec.compare_rows(s, t)) {
            (_, _, Ok(_)) => None,
            (Some(_), None, _) => Some(Diff::Missing),
            (None, Some(_), _) => Some(Diff::Extra),
            (_, _, Err(columns)) => Some(Diff::Different(columns)),
        }
    }
}

/// Fenced: the first read is final; read the candidates once more to say what differs.
async fn classify(ctx: &Ctx<'_>, spec: &TableSpec, keys: &[Key]) -> Result<Vec<(Key, Diff)>> {
    let s = ctx.rows_by_keys(ctx.source, &spec.src, keys).await?;
    let t = ctx.rows_by_keys(ctx.target, &spec.tgt, keys).await?;
    Ok(keys
        .iter()
        .filter_map(|k| Diff::of(spec, s.get(k), t.get(k)).map(|d| (k.clone(), d)))
        .collect())
}

/// The re-check (module docs): returns the confirmed differences, the keys still changing, and
/// how many rows turned out equal while present on the source.
async fn recheck(
    ctx: &Ctx<'_>,
    spec: &TableSpec,
    mut pending: Vec<Key>,
    report: &mut TableReport,
) -> Result<(Vec<(Key, Diff)>, Vec<Key>, u64)> {
    let mut confirmed = Vec::new();
    let mut equal = 0;
    let mut round = 0;
    while !pending.is_empty() && round < RECHECK_ROUNDS {
        round += 1;
        let s1 = ctx.rows_by_keys(ctx.source, &spec.src, &pending).await?;
        ctx.catch_up().await?;
        let t = ctx.rows_by_keys(ctx.target, &spec.tgt, &pending).await?;
        let s2 = ctx.rows_by_keys(ctx.source, &spec.src, &pending).await?;
        let mut next = Vec::new();
        for k in pending {
            let (a, b, c) = (s1.get(&k), t.get(&k), s2.get(&k));
            if spec.compare_rows(a, b).is_ok() || spec.compare_rows(c, b).is_ok() {
                equal += u64::from(b.is_some());
                continue;
            }
            if a == c {
                if let Some(d) = Diff::of(spec, c, b) {
                    confirmed.push((k, d));
                }
            } else {
                next.push(k);
            }
        }
        pending = next;
    }
    report.recheck_rounds = round;
    Ok((confirmed, pending, equal))
}

/// Count and order-independent hash of every row (the compared columns, translated).
async fn multiset(client: &Client, spec: &TableSpec, source_side: bool) -> Result<(u64, u128, f32)> {
    let side = if source_side { &spec.src } else { &spec.tgt };
    let stream = client
        .query_raw(&side.all_values(), Vec::<RawValue>::new())
        .await
        .db(|| format!("reading {}", side.relation))?;
    pin_mut!(stream);
    let (mut n, mut sum, mut max_err) = (0u64, 0u128, 0f32);
    while let Some(r) = stream.try_next().await.db(|| format!("reading {}", side.relation))? {
        let (_, values) = split_row(&r, 0);
        let mut h = [DefaultHasher::new(), DefaultHasher::new()];
        h[1].write_u8(0x5a);
        for (i, (_, cmp)) in spec.columns.iter().enumerate() {
            let raw = values.get(i).and_then(|v| v.as_deref());
            let d = if source_side {
                cmp.expected(raw)
            } else {
                cmp.actual(raw)
            };
            if source_side && cmp.lossy() {
                if let Decoded::Floats(v) = &d {
                    for x in v {
                        if let Some(b) = crate::translate::f32_to_f16_bits(*x) {
                            max_err = max_err.max((crate::translate::f16_bits_to_f32(b) - x).abs());
                        }
                    }
                }
            }
            for hasher in &mut h {
                i.hash(hasher);
                cmp.hash_into(&d, hasher);
            }
        }
        let row = (u128::from(h[0].finish()) << 64) | u128::from(h[1].finish());
        sum = sum.wrapping_add(row);
        n += 1;
    }
    Ok((n, sum, max_err))
}

/// A table without a primary key: both sides as multisets, the same re-check rule per table.
async fn compare_multiset(ctx: &Ctx<'_>, spec: &TableSpec) -> Result<TableReport> {
    let mut report = empty_report(spec, "multiset");
    report.notes.push(
        "no primary key: compared as multisets (row count and a hash of every translated row); differing rows cannot be named"
            .into(),
    );
    if ctx.opts.sample_percent.is_some() {
        report
            .notes
            .push("no primary key to sample by: compared in full".into());
    }
    let rounds = if ctx.consistency == Consistency::Live {
        RECHECK_ROUNDS
    } else {
        1
    };
    let mut status = "unsettled";
    // First as the sides are now (no wait): equal is the common case. Then, if they differ,
    // the re-check rule on the whole table: S1, wait for the target, T, S2.
    let s0 = multiset(ctx.source, spec, true).await?;
    let t0 = multiset(ctx.target, spec, false).await?;
    (report.source_rows, report.target_rows) = (s0.0, t0.0);
    if spec.lossy() {
        report.max_abs_error = Some(f64::from(s0.2));
    }
    if (s0.0, s0.1) == (t0.0, t0.1) {
        status = "ok";
    } else if ctx.consistency != Consistency::Live {
        status = "mismatch";
    } else {
        for round in 1..=rounds {
            report.recheck_rounds = round;
            let s1 = multiset(ctx.source, spec, true).await?;
            ctx.catch_up().await?;
            let t = multiset(ctx.target, spec, false).await?;
            (report.source_rows, report.target_rows) = (s1.0, t.0);
            if (s1.0, s1.1) == (t.0, t.1) {
                status = "ok";
                break;
            }
            let s2 = multiset(ctx.source, spec, true).await?;
            if (s2.0, s2.1) == (t.0, t.1) {
                status = "ok";
                break;
            }
            if (s1.0, s1.1) == (s2.0, s2.1) {
                status = "mismatch";
                break;
            }
        }
    }
    report.compared_rows = report.source_rows;
    report.status = status.into();
    if status == "mismatch" {
        report.different = report.source_rows.abs_diff(report.target_rows).max(1);
        report.notes.push(format!(
            "the multisets differ: {} rows on the source, {} on the target",
            report.source_rows, report.target_rows
        ));
    } else if status == "unsettled" {
        report.notes.push(format!(
            "the table changed on the source during each of {rounds} comparisons: verify it when writes pause (cutover's final verify runs under the fence)"
        ));
    }
    Ok(report)
}

/// `--ann`: the table's vector indexes (column and distance; index_opclasses applied), or L2
/// on each vector column when it has none.
async fn measure_ann(
    ctx: &Ctx<'_>,
    table: &Table,
    map: &TableMap,
    spec: &TableSpec,
    k: usize,
    q: usize,
) -> Result<Vec<ann::AnnReport>> {
    if !spec.keyed() {
        return Ok(Vec::new());
    }
    let mut columns: Vec<(String, Option<String>, ann::Metric)> = Vec::new();
    for index in table.secondary_indexes() {
        let Ok(def) = crate::translate::index::parse(&index.definition, &table.printed_name) else {
            continue;
        };
        if !matches!(def.method.as_str(), "hnsw" | "ivfflat") {
            continue;
        }
        let [key] = def.keys.as_slice() else { continue };
        let Some(column) = &key.column else { continue };
        let opclass = map
            .config
            .index_opclasses
            .get(&index.name)
            .cloned()
            .or_else(|| key.opclass.as_ref().map(|o| o.name.clone()))
            .unwrap_or_else(|| "vector_l2_ops".into());
        if let Some(metric) = ann::classify_opclass(&opclass) {
            if !columns.iter().any(|(c, _, m)| c == column && *m == metric) {
                columns.push((column.clone(), Some(index.name.clone()), metric));
            }
        }
    }
    if columns.is_empty() {
        for c in map.replicated() {
            if matches!(c.kind, VectorKind::Vector | VectorKind::Halfvec) {
                columns.push((c.source.clone(), None, ann::Metric::L2));
            }
        }
    }
    let at = ann::AnnTable {
        source: &map.source,
        target: &map.target,
        source_key: &table.primary_key,
        target_key: &map.primary_key,
        target_filter: spec.tgt.filter.as_deref(),
        estimated_rows: table.estimated_rows,
    };
    let mut out = Vec::new();
    for (column, index, metric) in columns {
        let Some(c) = map.column_by_source(&column) else {
            continue;
        };
        let col = ann::AnnColumn {
            column: c,
            source_index: index,
            metric,
        };
        out.push(ann::measure(ctx.source, ctx.target, &at, &col, k, q).await?);
    }
    Ok(out)
}

/// `--ann K,Q` -> (K, Q).
pub fn parse_ann(text: &str) -> std::result::Result<(usize, usize), String> {
    let (k, q) = text
        .split_once(',')
        .ok_or_else(|| format!("--ann {text:?}: write K,Q (top-K, number of query vectors), e.g. 10,50"))?;
    let parse = |s: &str, what: &str| -> std::result::Result<usize, String> {
        match s.trim().parse::<usize>() {
            Ok(n) if (1..=10_000).contains(&n) => Ok(n),
            _ => Err(format!("--ann {text:?}: {what} must be an integer between 1 and 10000")),
        }
    };
    Ok((parse(k, "K")?, parse(q, "Q")?))
}

/// The human-readable report.
pub fn render(r: &Report) -> String {
    let mut out = format!("verify ({} comparison)\nconsistency: {}\n", r.mode, r.consistency);
    for t in &r.tables {
        out.push_str(&format!(
            "\ntable {} -> {} (profile {}, {}): {}\n",
            t.source,
            t.target,
            t.profile,
            t.method.replace('_', " "),
            t.status.to_uppercase()
        ));
        out.push_str(&format!(
            "  rows: source {}, target {}; compared {}{} in {:.2} s ({:.0} rows/s)\n",
            t.source_rows,
            t.target_rows,
            t.compared_rows,
            t.sample_percent
                .map(|p| format!(" (sample of about {p:.2} %)"))
                .unwrap_or_default(),
            t.seconds,
            t.rows_per_sec
        ));
        if let (Some(e), Some(tol)) = (t.max_abs_error, &t.tolerance) {
            out.push_str(&format!("  lossy columns: max abs error {e:.3e} (tolerance: {tol})\n"));
        }
        if t.rechecked > 0 {
            out.push_str(&format!(
                "  re-checked {} row(s) that differed on the first read, in {} round(s)\n",
                t.rechecked, t.recheck_rounds
            ));
        }
        if t.status != "ok" {
            out.push_str(&format!(
                "  {} different, {} missing on target, {} extra on target, {} still changing\n",
                t.different, t.missing_on_target, t.extra_on_target, t.unsettled
            ));
        }
        for k in &t.keys {
            out.push_str(&format!(
                "  {} {}{}\n",
                k.kind.replace('_', " "),
                k.key,
                if k.columns.is_empty() {
                    String::new()
                } else {
                    format!(" (columns {})", k.columns.join(", "))
                }
            ));
        }
        for n in &t.notes {
            out.push_str(&format!("  note: {n}\n"));
        }
        for a in &t.ann {
            match (a.recall_mean, a.recall_min) {
                (Some(mean), Some(min)) => {
                    out.push_str(&format!(
                    "  ann {} ({:?}{}): recall@{} {:.3} (min {:.3}) over {} queries; source {} exact, target {} {}\n",
                    a.column,
                    a.metric,
                    a.source_index.as_ref().map(|i| format!(", index {i}")).unwrap_or_default(),
                    a.k,
                    mean,
                    min,
                    a.queries,
                    a.source_operator,
                    a.target_operator.as_deref().unwrap_or("-"),
                    a.target_index
                        .as_ref()
                        .map_or_else(|| "without an index (exact)".to_string(), |i| format!("via index {i}"))
                ));
                    if let Some(rule) = &a.search_rule {
                        out.push_str(&format!(
                            "    search settings: {} ({rule})\n",
                            settings_text(&a.search_settings)
                        ));
                    }
                }
                _ => out.push_str(&format!(
                    "  ann {} ({:?}): {}\n",
                    a.column,
                    a.metric,
                    a.note.as_deref().unwrap_or("not measured")
                )),
            }
        }
    }
    let bad = r.tables.iter().filter(|t| t.status != "ok").count();
    out.push_str(&format!(
        "\nresult: {} ({} table(s), {:.1} s)\n",
        if r.ok {
            "OK: the target equals the source".to_string()
        } else {
            format!("{bad} table(s) differ or could not be confirmed")
        },
        r.tables.len(),
        r.seconds
    ));
    out
}

/// `name = 'value', ...`, or `none`.
fn settings_text(settings: &std::collections::BTreeMap<String, String>) -> String {
    if settings.is_empty() {
        return "none".into();
    }
    settings
        .iter()
        .map(|(n, v)| format!("{n} = '{v}'"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The error for a report that is not OK (exit code 1).
pub fn failure(r: &Report) -> Option<Error> {
    if r.ok {
        return None;
    }
    let tables: Vec<String> = r
        .tables
        .iter()
        .filter(|t| t.status != "ok")
        .map(|t| format!("{} ({})", t.source, t.status))
        .collect();
    Some(Error::Failed(format!(
        "verify: the target does not equal the source: {} (details above)",
        tables.join(", ")
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ann_option() {
        assert_eq!(parse_ann("10,50"), Ok((10, 50)));
        assert_eq!(parse_ann(" 5 , 3 "), Ok((5, 3)));
        assert!(parse_ann("10").unwrap_err().contains("K,Q"));
        assert!(parse_ann("0,5").unwrap_err().contains("K must be"));
        assert!(parse_ann("5,x").unwrap_err().contains("Q must be"));
    }
}
