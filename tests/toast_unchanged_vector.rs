//! An UPDATE that does not touch a TOASTed vector(1536) arrives with that column marked
//! unchanged ('u'); the target must keep its vector, not set it to NULL.

mod support;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn update_leaving_toasted_vector_untouched_keeps_it() {
    let env = support::TestEnv::new(
        "toast",
        "CREATE TABLE docs (id int PRIMARY KEY, title text, embedding vector(1536));
         INSERT INTO docs SELECT g, 'doc ' || g, (SELECT array_agg(g + i * 0.001) FROM generate_series(1, 1536) i)::vector
           FROM generate_series(1, 20) g;",
    );
    // The vector is stored out of line: that is what makes pgoutput send 'u' for it.
    let external = env.source_value("SELECT count(*) FROM docs WHERE pg_column_size(embedding) < 1536 * 4");
    assert_eq!(external, "0", "precondition: values are stored uncompressed");
    let run = env.spawn_run(env.config(&[("public.docs", None)]));
    env.wait_streaming().await;

    let source = env.source_client().await;
    source
        .batch_execute("UPDATE docs SET title = title || ' (edited)' WHERE id <= 10")
        .await
        .unwrap();
    source
        .batch_execute("UPDATE docs SET embedding = (SELECT array_agg(-i::real) FROM generate_series(1, 1536) i)::vector WHERE id = 20")
        .await
        .unwrap();
    env.wait_caught_up().await;

    assert_eq!(
        env.target_value("SELECT count(*) FROM docs WHERE embedding IS NULL"),
        "0"
    );
    assert_eq!(
        env.target_value("SELECT count(*) FROM docs WHERE title LIKE '%(edited)'"),
        "10"
    );
    assert!(run.apply_stats().updates.load(std::sync::atomic::Ordering::Relaxed) >= 11);
    env.assert_same("docs", "id").await;
    run.stop().await;
}
