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
