//! On Postgres, every two seconds, says this instance is alive and shares
//! every Page's send rate among the instances that are (see
//! `store::instances`): N instances together stay within
//! `SEND_RATE_PER_PAGE`, not N times it. A newcomer is counted by the
//! others within one beat; one killed without a word, within
//! `STALE_AFTER_MS` and a beat, and the rows it held become claimable. It
//! beats until the other workers have finished, then the instance removes
//! itself, so the others take its share at once. Not started on SQLite.

use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use tracing::{info, warn};

use crate::state::AppState;

/// How often the instance says it is alive.
const EVERY: Duration = Duration::from_secs(2);

/// Beats until shutdown, then leaves.
pub async fn run(shared: Arc<AppState>, mut shutdown: watch::Receiver<bool>) {
    let id = &shared.instance_id;
    loop {
        match shared.store.instance_alive(id).await {
            Ok(alive) => {
                let before = shared.limiter.shared_among();
                if alive != before {
                    info!(
                        instances = alive,
                        "the Pages' send rates are shared among {alive} instance(s)"
                    );
                    shared.limiter.share_among(alive);
                }
            }
            // The share stays as it was: a database that does not answer
            // sends nothing anyway.
            Err(e) => warn!(error = %format!("{e:#}"), "recording this instance failed"),
        }
        tokio::select! {
            _ = tokio::time::sleep(EVERY) => {}
            _ = shutdown.wait_for(|stop| *stop) => break,
        }
    }
    if let Err(e) = shared.store.instance_gone(id).await {
        warn!(error = %format!("{e:#}"), "removing this instance failed");
    }
}
