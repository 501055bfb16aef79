//! How many inbox rows an instance holds at once when several share one
//! Postgres database. Each instance's inbox worker holding the whole
//! allowance (512 rows) put twice as many conversations in hand with two
//! instances, and every claim of either stepped over the other's: a
//! conversation with a row in hand anywhere is passed over. An instance
//! keeps its share of the allowance instead, the way it keeps its share of
//! each Page's send rate (`facebook::rate_limit`). In alternate runs of
//! `bash docs/bench_postgres.sh 30000 2`, 256 rows each processed
//! 4,766–5,514 events/s together against 4,460–4,890 with 512 each.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

use crate::state::AppState;

/// The fewest rows an instance holds, however many share the database.
const LEAST: i64 = 64;
/// How often the share follows the number of instances alive.
const EVERY: Duration = Duration::from_secs(1);

/// One instance's share of `allowance` rows among `instances`.
pub fn share(allowance: i64, instances: u32) -> i64 {
    (allowance / i64::from(instances.max(1)))
        .max(LEAST)
        .min(allowance)
}

/// Moves `budget` (rows a worker can still take) from a capacity of `from`
/// rows to `to`: rows in hand beyond a smaller capacity finish before the
/// worker takes more.
pub fn resize(budget: &AtomicI64, from: i64, to: i64) {
    budget.fetch_add(to - from, Ordering::AcqRel);
}

/// Keeps the inbox worker's capacity (its `budget` out of `allowance`) at
/// this instance's share until `stop`; runs beside the worker and ends
/// with it.
pub async fn follow_instances(
    shared: Arc<AppState>,
    budget: Arc<AtomicI64>,
    allowance: i64,
    mut stop: watch::Receiver<bool>,
) {
    let mut held = allowance;
    while !*stop.borrow() {
        let want = share(allowance, shared.limiter.shared_among());
        resize(&budget, held, want);
        held = want;
        tokio::select! {
            _ = tokio::time::sleep(EVERY) => {}
            // Stopping, or nobody left to say so.
            changed = stop.changed() => if changed.is_err() { break },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_instance_holds_its_share_of_the_rows_in_flight() {
        assert_eq!(share(512, 1), 512);
        assert_eq!(share(512, 2), 256);
        assert_eq!(share(512, 3), 170);
        assert_eq!(share(512, 100), LEAST, "never fewer than a few");
        assert_eq!(share(32, 2), 32, "never more than the whole");
        assert_eq!(share(512, 0), 512, "alone when none is counted");
    }

    #[test]
    fn a_smaller_share_waits_for_the_rows_in_hand() {
        // 512 rows of room, 300 in hand.
        let budget = AtomicI64::new(212);
        resize(&budget, 512, 256);
        assert_eq!(budget.load(Ordering::Acquire), -44, "44 must finish first");
        resize(&budget, 256, 512);
        assert_eq!(budget.load(Ordering::Acquire), 212);
    }
}
