//! Exponential backoff with jitter.

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

#[cfg(test)]
mod tests {
    use super::*;

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
