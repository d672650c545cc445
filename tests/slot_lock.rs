//! One applier per slot: while another session holds the slot's lock on the target (as the
//! backend of a killed pgvshift does until it has finished its last COMMIT), a new run waits,
//! and reads the applied position only once the lock is its own.

mod support;

use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_run_waits_for_the_previous_holder_of_the_slot_lock() {
    let env = support::TestEnv::new(
        "slotlock",
        "CREATE TABLE items (id int PRIMARY KEY, n int); INSERT INTO items VALUES (1, 0);",
    );
    let config = env.config(&[("public.items", None)]);
    let first = env.spawn_run(config.clone());
    env.wait_streaming().await;
    first.stop().await;

    // A lingering session holds the lock and, like a crashed run's backend finishing its COMMIT,
    // moves applied_lsn forward before releasing it.
    let holder = env.target_client().await;
    holder
        .execute("SELECT pg_advisory_lock(1886809715, hashtext($1))", &[&env.name])
        .await
        .unwrap();
    let source = env.source_client().await;
    source.batch_execute("UPDATE items SET n = 1").await.unwrap();
    let second = env.spawn_run(config);
    let target = env.target_client().await;
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let waiting: i64 = target
            .query_one(
                "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted",
                &[],
            )
            .await
            .unwrap()
            .get(0);
        if waiting == 1 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the second run never waited for the lock"
        );
        assert!(!second.handle.is_finished(), "the second run ended instead of waiting");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        env.target_value("SELECT n FROM items"),
        "0",
        "nothing may be applied while the lock is held"
    );
    holder
        .execute("SELECT pg_advisory_unlock(1886809715, hashtext($1))", &[&env.name])
        .await
        .unwrap();
    env.wait_caught_up().await;
    env.assert_same("items", "id").await;
    second.stop().await;
}
