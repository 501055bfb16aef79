//! Per-key request rates of the outbound API (`api-key create --rate N`):
//! GCRA, the token bucket as a schedule. Each admitted request books the
//! next slot; a key may run one second's worth of requests ahead, and a
//! refused request books nothing and learns when the next slot frees.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

#[derive(Default)]
pub struct KeyRates {
    /// When each key's next request is due on the steady schedule.
    due: Mutex<HashMap<i64, Instant>>,
}

impl KeyRates {
    /// Admits a request of key `key_id`, allowed `per_second` requests a
    /// second, at `now`; or how long until one would be admitted.
    pub fn admit(&self, key_id: i64, per_second: u32, now: Instant) -> Result<(), Duration> {
        let per_second = per_second.max(1);
        let interval = Duration::from_secs(1) / per_second;
        let burst = interval * (per_second - 1);
        let mut due = self.due.lock().unwrap_or_else(|p| p.into_inner());
        let next = due.get(&key_id).copied().unwrap_or(now).max(now);
        let wait = next.saturating_duration_since(now + burst);
        if !wait.is_zero() {
            return Err(wait);
        }
        due.insert(key_id, next + interval);
        Ok(())
    }
}

/// A `Retry-After` value: whole seconds, at least one.
pub fn retry_after_secs(wait: Duration) -> u64 {
    let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    secs.max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_gets_its_rate_with_a_seconds_burst_and_others_are_apart() {
        let rates = KeyRates::default();
        let t = Instant::now();
        let admitted: Vec<bool> = (0..5).map(|_| rates.admit(1, 3, t).is_ok()).collect();
        assert_eq!(admitted, [true, true, true, false, false]);
        let wait = rates.admit(1, 3, t).unwrap_err();
        assert_eq!(wait, Duration::from_secs(1) / 3);
        assert!(rates.admit(1, 3, t + wait).is_ok(), "the slot it named");
        assert!(rates.admit(2, 3, t).is_ok(), "another key has its own");
    }

    #[test]
    fn over_a_second_a_key_gets_its_rate_and_no_more() {
        let rates = KeyRates::default();
        let t = Instant::now();
        let ok = (0..100)
            .map(|i| t + Duration::from_millis(10 * i))
            .filter(|at| rates.admit(7, 10, *at).is_ok())
            .count();
        // A second's burst of 10, then one each 100 ms over 0.99 s.
        assert_eq!(ok, 19);
    }

    #[test]
    fn retry_after_rounds_up_to_whole_seconds() {
        assert_eq!(retry_after_secs(Duration::from_millis(1)), 1);
        assert_eq!(retry_after_secs(Duration::from_millis(1000)), 1);
        assert_eq!(retry_after_secs(Duration::from_millis(1001)), 2);
        assert_eq!(retry_after_secs(Duration::ZERO), 1);
    }
}
