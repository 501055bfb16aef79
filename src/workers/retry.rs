//! Exponential backoff with jitter, within a time budget.

use rand::Rng;
use std::time::Duration;

/// Delay before attempt `attempts + 1`: base * 2^(attempts-1), capped at
/// `max`, then drawn uniformly from its upper half so retries of many rows
/// that failed together spread out.
pub fn retry_delay(base: Duration, max: Duration, attempts: u32) -> Duration {
    let exp = attempts.saturating_sub(1).min(30);
    let full = base.saturating_mul(1u32 << exp).min(max);
    let half = full / 2;
    half + rand::thread_rng().gen_range(Duration::ZERO..=half)
}

/// When to try again after a failed attempt at `now`, or `None` when the
/// next try would fall at or past `deadline`: the row has used its time
/// budget and fails (however many attempts that took).
pub fn next_attempt_within(
    now: i64,
    deadline: i64,
    base: Duration,
    max: Duration,
    attempts: u32,
) -> Option<i64> {
    let at = now.saturating_add(retry_delay(base, max, attempts).as_millis() as i64);
    (at < deadline).then_some(at)
}

/// `since + budget`, in epoch milliseconds.
pub fn deadline(since: i64, budget: Duration) -> i64 {
    since.saturating_add(i64::try_from(budget.as_millis()).unwrap_or(i64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_budget_bounds_retries_by_time_not_by_count() {
        let (base, max) = (Duration::from_millis(500), Duration::from_secs(300));
        let budget = Duration::from_secs(600);
        let since = 1_000_000;
        let end = deadline(since, budget);
        assert_eq!(end, since + 600_000);
        // Walk a row through an outage that never ends: it keeps being tried
        // for the whole budget, well past eight attempts, never after it.
        let (mut now, mut attempts) = (since, 0u32);
        while let Some(at) = next_attempt_within(now, end, base, max, attempts + 1) {
            assert!(at > now && at < end, "{at} after {now}, before {end}");
            assert!(at - now <= 300_000, "a delay is capped at RETRY_MAX_MS");
            attempts += 1;
            now = at;
        }
        assert!(attempts > 8, "{attempts} tries in 10 minutes");
        assert!(end - now <= 300_000, "gave up {}ms early", end - now);
        // Past the deadline, nothing more.
        assert_eq!(next_attempt_within(end, end, base, max, 1), None);
        // A budget beyond what epoch milliseconds hold saturates.
        assert_eq!(deadline(since, Duration::MAX), i64::MAX);
    }

    #[test]
    fn delays_double_within_jitter_and_stop_at_the_ceiling() {
        let base = Duration::from_millis(100);
        let max = Duration::from_secs(10);
        for _ in 0..100 {
            let d1 = retry_delay(base, max, 1);
            assert!((50..=100).contains(&d1.as_millis()), "{d1:?}");
            let d3 = retry_delay(base, max, 3);
            assert!((200..=400).contains(&d3.as_millis()), "{d3:?}");
            let d20 = retry_delay(base, max, 20);
            assert!((5000..=10000).contains(&d20.as_millis()), "{d20:?}");
        }
    }
}
