//! On Postgres the service analyzes a work table that grew since its last
//! analyze, within seconds, so the claims are planned for the table as it
//! is (see `store::planner_stats`).

use crate::helpers::*;

#[tokio::test]
async fn a_grown_outbox_is_analyzed_within_seconds_on_postgres() {
    on_every_backend(|backend| async move {
        let app = spawn_app(&backend).await;
        if !app.store.is_postgres() {
            assert!(app.store.refresh_planner_stats().await.unwrap().is_empty());
            return;
        }
        // Autovacuum would analyze it too, a minute later: off, so only the
        // service can.
        app.exec("ALTER TABLE outbox SET (autovacuum_enabled = false)")
            .await;
        // Sent just now: the retention worker leaves them alone.
        let now = lexbridge::store::now_ms();
        app.exec(&format!(
            "INSERT INTO outbox (page_id, psid, body, messaging_type, origin, state,
                                 next_attempt_at, created_at, sent_at)
             SELECT 'p', 'u' || g, '{{}}', 'RESPONSE', 'reply', 'sent', {now}, {now}, {now}
               FROM generate_series(1, 3000) g"
        ))
        .await;
        wait_until("the outbox analyzed", || async {
            app.count(
                "SELECT COUNT(*) FROM pg_stat_user_tables
                  WHERE relname = 'outbox' AND analyze_count > 0",
            )
            .await
                == 1
        })
        .await;
        assert!(
            app.count("SELECT CAST(reltuples AS BIGINT) FROM pg_class WHERE relname = 'outbox'")
                .await
                >= 3000
        );
        // Nothing changed since: nothing to analyze.
        assert!(app.store.refresh_planner_stats().await.unwrap().is_empty());
        app.stop().await;
    })
    .await;
}

/// A large table's statistics say what share of its rows is open, and a
/// burst changes that share long before it changes a tenth of the table:
/// 1,000 changed rows are enough for an analyze, however large the table.
#[tokio::test]
async fn a_burst_in_a_large_table_is_analyzed_on_postgres() {
    let Some((_db, store)) = postgres_store().await else {
        return;
    };
    let store = &store;
    let insert = |from: u32, to: u32, state: &str| {
        format!(
            "INSERT INTO inbox (page_id, psid, kind, dedupe_key, event, state, next_attempt_at, received_at)
             SELECT 'p', 'u' || g, 'message', 'k' || g, '{{}}', '{state}', 0, 0
               FROM generate_series({from}, {to}) g"
        )
    };
    // Counters reach the statistics a moment after the transaction.
    let changed_at_least = |n: i64| async move {
        let changed: Vec<(i64,)> = rows_on(
            store,
            "SELECT n_mod_since_analyze FROM pg_stat_user_tables WHERE relname = 'inbox'",
        )
        .await;
        changed.first().expect("statistics").0 >= n
    };
    exec_on(store, "ALTER TABLE inbox SET (autovacuum_enabled = false)").await;
    exec_on(store, &insert(1, 30_000, "done")).await;
    wait_until("the rows counted", || changed_at_least(30_000)).await;
    exec_on(store, "ANALYZE inbox").await;
    // A twentieth of the table arrives.
    exec_on(store, &insert(30_001, 31_500, "pending")).await;
    wait_until("the burst counted", || changed_at_least(1_500)).await;
    let analyzed = store.refresh_planner_stats().await.expect("refresh");
    assert_eq!(analyzed, ["inbox"]);
    store.close().await;
}

/// Every column of the work tables keeps the small sample (migration
/// 0019), so the frequent analyzes stay cheap: a column added later needs
/// it too.
#[tokio::test]
async fn the_work_tables_are_analyzed_from_a_small_sample_on_postgres() {
    let Some(backend) = postgres() else {
        return;
    };
    let app = spawn_app(&backend).await;
    let wide = app
        .count(
            "SELECT COUNT(*) FROM pg_attribute
              WHERE attrelid IN (CAST('inbox' AS regclass), CAST('outbox' AS regclass))
                AND attnum > 0 AND NOT attisdropped
                AND (attstattarget IS NULL OR attstattarget < 0 OR attstattarget > 10)",
        )
        .await;
    assert_eq!(wide, 0, "columns analyzed from the default sample");
    app.stop().await;
}
