//! On Postgres, every two seconds, analyzes a work table whose statistics
//! have fallen behind its growth (see `store::planner_stats`), so the
//! claims' plans follow the tables from the first seconds of a new
//! database on. Not started on SQLite.

use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use tracing::{debug, warn};

use crate::state::AppState;

/// How often the statistics are looked at.
const EVERY: Duration = Duration::from_secs(2);

/// Keeps the statistics fresh until shutdown.
pub async fn run(shared: Arc<AppState>, mut shutdown: watch::Receiver<bool>) {
    loop {
        tokio::select! {
            _ = tokio::time::sleep(EVERY) => {}
            _ = shutdown.wait_for(|stop| *stop) => return,
        }
        match shared.store.refresh_planner_stats().await {
            Ok(tables) if tables.is_empty() => {}
            Ok(tables) => debug!(?tables, "planner statistics refreshed"),
            Err(e) => warn!(error = %format!("{e:#}"), "refreshing planner statistics failed"),
        }
    }
}
