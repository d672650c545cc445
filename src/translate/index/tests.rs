use std::collections::HashMap;

use super::common::*;
use super::vectorchord::*;
use super::*;
use crate::config::Profile;
use crate::sql::QualifiedName;

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
        let t = run(
            "CREATE INDEX nn ON public.items USING hnsw (embedding vector_cosine_ops) WHERE (embedding IS NOT NULL)",
            &c,
        );
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
