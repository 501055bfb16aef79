//! Starting and stopping the application.

use std::time::Duration;

use crate::helpers::{on_every_backend, spawn_app, spawn_app_with_settings, text_message, Backend};

/// A stop asked for before the application's task has first run (no await
/// between spawning it and stopping it, on the test's one-thread runtime)
/// must still stop it: before the fix the request was dropped for want of a
/// receiver and the application ran on, so the test hung.
#[tokio::test]
async fn a_stop_asked_before_the_application_runs_still_stops_it() {
    let app = spawn_app(&Backend::Sqlite).await;
    tokio::time::timeout(Duration::from_secs(60), app.stop())
        .await
        .expect("the application stops");
}

/// Stopping an application that has written (its committer and workers
/// have used the database) ends, on both backends. A smoke test: the rare
/// Postgres hang in `pool.close()` that shutdown now bounds did not happen
/// here on demand, so this does not reproduce it.
#[tokio::test]
async fn an_application_that_has_written_stops() {
    on_every_backend(|backend| async move {
        for _ in 0..3 {
            let app = spawn_app(&backend).await;
            let body = text_message("U-STOP", "m.stop", "hello");
            assert_eq!(app.post_signed_webhook(&body).await.status(), 200);
            app.inbox_settled().await;
            tokio::time::timeout(Duration::from_secs(60), app.stop())
                .await
                .expect("the application stops");
        }
    })
    .await;
}

/// `DATABASE_POOL_SIZE` bounds the connections to Postgres.
#[tokio::test]
async fn the_postgres_pool_is_as_large_as_set() {
    on_every_backend(|backend| async move {
        let app = spawn_app_with_settings(&backend, &[("DATABASE_POOL_SIZE", "3")]).await;
        if let lexbridge::store::Store::Postgres(pool) = &app.store {
            assert_eq!(pool.options().get_max_connections(), 3);
        }
        app.stop().await;
    })
    .await;
}
