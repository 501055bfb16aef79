//! On Postgres, every two seconds, says this instance is alive and shares
//! every Page's send rate among the instances that are (see
//! `store::instances`): N instances together stay within
//! `SEND_RATE_PER_PAGE`, not N times it. A newcomer is counted by the
//! others within one beat; one killed without a word, within
//! `STALE_AFTER_MS` and a beat, and the rows it held become claimable. It
//! beats until the other workers have finished, then the instance removes
//! itself, so the others take its share at once. Not started on SQLite.
//!
//! With each beat it also takes on the Page cool-downs the others started
//! (`store::cooldowns`).
//!
//! Taking a silent instance's rows is safe only if it sends nothing more:
//! an instance judges the others only after reaching the database itself
//! for `STALE_AFTER_MS` without a break (after an outage everyone was
//! silent), and one whose beats fail stops starting sends after half that
//! time (`Heartbeat::may_send`), well before anyone may judge it.

use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::watch;
use tracing::{info, warn};

use crate::state::AppState;
use crate::store::instances::STALE_AFTER_MS;
use crate::store::now_ms;

/// How often the instance says it is alive.
const EVERY: Duration = Duration::from_secs(2);

/// Beats until shutdown, then leaves.
pub async fn run(shared: Arc<AppState>, mut shutdown: watch::Receiver<bool>) {
    let id = &shared.instance_id;
    let judge_after = Duration::from_millis(STALE_AFTER_MS as u64);
    // Since when every beat has reached the database.
    let mut reachable_since = Some(Instant::now());
    loop {
        let judge = reachable_since.is_some_and(|since| since.elapsed() >= judge_after);
        match within_a_beat(shared.store.instance_alive(id, judge)).await {
            Ok(alive) => {
                shared.heartbeat.beat(now_ms());
                reachable_since.get_or_insert_with(Instant::now);
                let before = shared.limiter.shared_among();
                if alive != before {
                    info!(
                        instances = alive,
                        "the Pages' send rates are shared among {alive} instance(s)"
                    );
                    shared.limiter.share_among(alive);
                }
                adopt_cooldowns(&shared).await;
            }
            // The share stays as it was; sends stop once the last beat is
            // half the staleness limit old.
            Err(e) => {
                reachable_since = None;
                warn!(error = %format!("{e:#}"), "recording this instance failed");
            }
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

/// A database call of the heartbeat, given up after one beat: a database
/// that stops answering must not hold the next beat up.
async fn within_a_beat<T>(
    call: impl std::future::Future<Output = anyhow::Result<T>>,
) -> anyhow::Result<T> {
    tokio::time::timeout(EVERY, call)
        .await
        .map_err(|_| anyhow::anyhow!("no answer within {EVERY:?}"))
        .and_then(|r| r)
}

/// Takes on the Page cool-downs other instances started, and ends those a
/// send that got through somewhere has ended (see `facebook::page_cooldown`).
async fn adopt_cooldowns(shared: &AppState) {
    match within_a_beat(shared.store.shared_cooldowns()).await {
        Ok(pages) => {
            let now = now_ms();
            for (page_id, left_ms) in &pages {
                if shared.cooldowns.adopt(page_id, now + left_ms) {
                    warn!(page_id = %page_id, cooling_for_ms = left_ms,
                        "another instance was told to slow this Page down: its sends pause here too");
                }
            }
            let cooling: Vec<&str> = pages.iter().map(|(page, _)| page.as_str()).collect();
            for page_id in shared.cooldowns.end_unshared(&cooling, now) {
                info!(page_id = %page_id, "a send got through on another instance: this Page's sends resume here too");
            }
        }
        Err(e) => warn!(error = %format!("{e:#}"), "reading the Pages' cool-downs failed"),
    }
}
