//! Readiness: whether this instance can do its work now. `/readyz` answers
//! from `check`; `/healthz` only says the process serves.
//!
//! Workers register their liveness here: each holds a `Running` guard
//! while it runs, and the guard marks it stopped when the worker returns or
//! panics.

use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::state::AppState;
use crate::store::now_ms;
use crate::store::pauses::TOKEN_INVALID;

/// The longest a readiness check waits for the database.
const DATABASE_TIMEOUT: Duration = Duration::from_secs(2);

/// One reason the instance is not ready.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Failing {
    /// `database`, `migrations`, `workers` or `page_token_invalid`.
    pub reason: &'static str,
    pub detail: String,
}

/// The background workers of this instance and whether each runs.
#[derive(Default)]
pub struct WorkerLiveness {
    workers: Arc<Mutex<BTreeMap<&'static str, bool>>>,
}

/// Held by a running worker; dropping it (the worker returned or
/// panicked) marks the worker stopped.
pub struct Running {
    name: &'static str,
    workers: Arc<Mutex<BTreeMap<&'static str, bool>>>,
}

impl Drop for Running {
    fn drop(&mut self) {
        let mut workers = self.workers.lock().unwrap_or_else(|p| p.into_inner());
        workers.insert(self.name, false);
    }
}

impl WorkerLiveness {
    /// Marks `name` running until the returned guard is dropped.
    pub fn running(&self, name: &'static str) -> Running {
        let mut workers = self.workers.lock().unwrap_or_else(|p| p.into_inner());
        workers.insert(name, true);
        Running {
            name,
            workers: Arc::clone(&self.workers),
        }
    }

    /// What is wrong with the workers: none started, or those that stopped.
    pub fn failing(&self) -> Option<String> {
        let workers = self.workers.lock().unwrap_or_else(|p| p.into_inner());
        if workers.is_empty() {
            return Some("no worker is running".into());
        }
        let stopped: Vec<&str> = workers
            .iter()
            .filter(|(_, running)| !**running)
            .map(|(name, _)| *name)
            .collect();
        (!stopped.is_empty()).then(|| format!("stopped: {}", stopped.join(", ")))
    }
}

/// What the database says is not ready: migrations not applied, Pages whose
/// token was refused. An error is the database's own failure.
async fn database(store: &crate::store::Store) -> anyhow::Result<Vec<Failing>> {
    store.ping().await?;
    let mut failing = Vec::new();
    match store.pending_migrations().await {
        Ok(pending) if pending.is_empty() => {}
        Ok(pending) => failing.push(Failing {
            reason: "migrations",
            detail: format!("not applied: {pending:?}"),
        }),
        Err(e) => failing.push(unreadable("migrations", "the applied migrations", &e)),
    }
    let pauses = store.page_pauses().await?;
    failing.extend(
        pauses
            .into_iter()
            .filter(|p| p.reason == TOKEN_INVALID)
            .map(|p| Failing {
                reason: "page_token_invalid",
                detail: format!(
                    "page {}: its token was refused {} s ago; its messages stay queued",
                    p.page_id,
                    (now_ms() - p.paused_at).max(0) / 1000
                ),
            }),
    );
    Ok(failing)
}

/// A failure to read `what`: the database's own words (which may name
/// hosts, users, databases) go to the log, not to whoever asks `/readyz`.
fn unreadable(reason: &'static str, what: &str, e: &anyhow::Error) -> Failing {
    tracing::warn!(error = %format!("{e:#}"), "readiness: {what} could not be read");
    Failing {
        reason,
        detail: format!("{what} could not be read (the service's log says why)"),
    }
}

/// Every reason the instance is not ready; empty when it is.
pub async fn check(shared: &AppState) -> Vec<Failing> {
    let mut failing = Vec::new();
    // One deadline for every read: a stalled pool cannot hold the probe.
    let checked = tokio::time::timeout(DATABASE_TIMEOUT, database(&shared.store)).await;
    match checked {
        Ok(Ok(found)) => failing.extend(found),
        Ok(Err(e)) => failing.push(unreadable("database", "the database", &e)),
        Err(_) => failing.push(Failing {
            reason: "database",
            detail: format!("no answer within {DATABASE_TIMEOUT:?}"),
        }),
    }
    if shared
        .writer
        .stats()
        .log_flush_failed
        .load(std::sync::atomic::Ordering::Acquire)
    {
        failing.push(Failing {
            reason: "database",
            detail: "the database log could not be flushed to disk: every write is refused \
                     until the service is restarted"
                .into(),
        });
    }
    if let Some(detail) = shared.workers.failing() {
        failing.push(Failing {
            reason: "workers",
            detail,
        });
    }
    failing
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_worker_that_returns_or_panics_is_reported_stopped() {
        let liveness = WorkerLiveness::default();
        assert_eq!(liveness.failing().as_deref(), Some("no worker is running"));
        let inbox = liveness.running("inbox worker");
        let outbox = liveness.running("outbox worker");
        assert_eq!(liveness.failing(), None);
        drop(inbox);
        assert_eq!(liveness.failing().as_deref(), Some("stopped: inbox worker"));
        let panicked = std::thread::spawn(move || {
            let _guard = outbox;
            panic!("a worker panics");
        })
        .join();
        assert!(panicked.is_err());
        assert_eq!(
            liveness.failing().as_deref(),
            Some("stopped: inbox worker, outbox worker")
        );
    }
}
