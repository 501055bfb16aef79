//! The sweeper: once a second, through the group committer, it expires held
//! messages whose time ran out and forgets what is kept only for a while
//! (idempotency keys, spent or expired link tokens, used login states,
//! expired sessions), so no request path pays for the clean-up.

use std::sync::Arc;
use tokio::sync::watch;
use tracing::{info, warn};

use crate::state::AppState;
use crate::store::now_ms;
use crate::store::writer::{Arg, Write};

const HOUR_MS: i64 = 3_600_000;
/// How often the sweeper runs.
const EVERY: std::time::Duration = std::time::Duration::from_secs(1);

/// One clean-up: a statement over rows older than `age_ms`.
struct Sweep {
    what: &'static str,
    sql: &'static str,
    age_ms: i64,
}

const SWEEPS: [Sweep; 6] = [
    Sweep {
        what: "held messages expired",
        sql: "UPDATE outbox SET state = 'expired' WHERE state = 'held' AND hold_until <= $1",
        age_ms: 0,
    },
    Sweep {
        what: "idempotency keys forgotten",
        sql: "DELETE FROM api_requests WHERE created_at < $1",
        age_ms: 24 * HOUR_MS,
    },
    // A day's grace keeps "expired" distinguishable from "unknown".
    Sweep {
        what: "old link tokens dropped",
        sql: "DELETE FROM link_tokens WHERE expires_at < $1",
        age_ms: 24 * HOUR_MS,
    },
    // Login states live ten minutes; a day of history is plenty.
    Sweep {
        what: "old login states dropped",
        sql: "DELETE FROM login_states WHERE used_at < $1",
        age_ms: 24 * HOUR_MS,
    },
    // A link the owner did not confirm in time is no link.
    Sweep {
        what: "expired pending links dropped",
        sql: "DELETE FROM pending_links WHERE expires_at < $1",
        age_ms: 0,
    },
    // Past its idle timeout or lifetime a session signs nobody in.
    Sweep {
        what: "expired sessions dropped",
        sql: "DELETE FROM sessions WHERE expires_at <= $1",
        age_ms: 0,
    },
];

/// Sweeps until shutdown.
pub async fn run(shared: Arc<AppState>, mut shutdown: watch::Receiver<bool>) {
    while !*shutdown.borrow() {
        // Submitted together, the sweeps share one commit.
        let now = now_ms();
        let writes = SWEEPS.iter().map(|sweep| {
            shared.writer.write(Write::Sql {
                sql: sweep.sql,
                args: vec![Arg::Int(now - sweep.age_ms)],
            })
        });
        let results = futures_util::future::join_all(writes).await;
        for (sweep, result) in SWEEPS.iter().zip(results) {
            match result {
                Ok(0) => {}
                Ok(n) => info!(rows = n, "{}", sweep.what),
                Err(e) => warn!(error = %format!("{e:#}"), "sweep failed: {}", sweep.what),
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(EVERY) => {}
            _ = shutdown.changed() => {}
        }
    }
}
