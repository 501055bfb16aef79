//! The retention worker: shortly after start and then every hour, it prunes
//! what is older than `RETENTION_DAYS` (see `store::retention`) in batches
//! of 500 rows with a pause between them, so the group committer and the
//! other workers are never kept waiting long; each table's pruned rows are
//! counted in `/metrics`. On shutdown it stops between two batches.

use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use tracing::{info, warn};

use crate::state::AppState;
use crate::store::now_ms;
use crate::store::retention::{Pace, Prune, DAY_MS};

/// The first pass waits this long after start (start-up comes first).
const FIRST_PASS_AFTER: Duration = Duration::from_secs(2);
/// How often a pass runs.
const EVERY: Duration = Duration::from_secs(3600);
/// Rows a statement looks at, and the pause between statements.
pub const PACE: Pace = Pace {
    batch: 500,
    pause: Duration::from_millis(50),
};

/// Prunes until shutdown.
pub async fn run(shared: Arc<AppState>, mut shutdown: watch::Receiver<bool>) {
    let mut wait = FIRST_PASS_AFTER;
    loop {
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = shutdown.wait_for(|stop| *stop) => return,
        }
        pass(&shared, &shutdown).await;
        wait = EVERY;
    }
}

/// One pass over every table.
async fn pass(shared: &AppState, shutdown: &watch::Receiver<bool>) {
    let days = i64::from(shared.settings.retention.days);
    let cutoff = now_ms() - days * DAY_MS;
    for what in Prune::ALL {
        let go_on = || !*shutdown.borrow();
        if !go_on() {
            return;
        }
        match shared.store.prune(what, cutoff, PACE, go_on).await {
            Ok(0) => {}
            Ok(n) => {
                shared.metrics.pruned(what.table(), n);
                info!(table = what.table(), rows = n, days, "old rows pruned");
            }
            Err(e) => warn!(table = what.table(), error = %format!("{e:#}"), "pruning failed"),
        }
    }
}
