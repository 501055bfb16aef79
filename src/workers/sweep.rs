//! The sweeper: once a second, through the group committer, it expires held
//! messages whose time ran out and forgets what is kept only for a while
//! (idempotency keys, spent or expired link tokens, used login states,
//! expired sessions), so no request path pays for the clean-up.

use std::sync::Arc;
use tokio::sync::watch;
use tracing::{info, warn};

use crate::state::AppState;
use crate::store::now_ms;
use crate::store::sweeps::Sweep;
use crate::store::writer::Write;

/// How often the sweeper runs.
const EVERY: std::time::Duration = std::time::Duration::from_secs(1);

/// Sweeps until shutdown.
pub async fn run(shared: Arc<AppState>, mut shutdown: watch::Receiver<bool>) {
    while !*shutdown.borrow() {
        // Submitted together, the sweeps share one commit.
        let now = now_ms();
        let writes = Sweep::ALL
            .iter()
            .map(|&sweep| shared.writer.write(Write::Sweep { sweep, now }));
        let results = futures_util::future::join_all(writes).await;
        for (sweep, result) in Sweep::ALL.iter().zip(results) {
            match result {
                Ok(0) => {}
                Ok(n) => info!(rows = n, "{}", sweep.what()),
                Err(e) => warn!(error = %format!("{e:#}"), "sweep failed: {}", sweep.what()),
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(EVERY) => {}
            _ = shutdown.changed() => {}
        }
    }
}
