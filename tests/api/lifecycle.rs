//! Starting and stopping the application.

use std::time::Duration;

use crate::helpers::{spawn_app, Backend};

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
