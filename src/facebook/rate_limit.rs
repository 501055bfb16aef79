//! Per-Page send rate limit (GCRA, the token bucket as a schedule): each
//! call reserves the next free slot, so the rate holds over any window and
//! callers wait without polling. Instances sharing a database share the
//! rate: each keeps `1 / share` of it (`workers::instances` sets the share
//! to the number of live instances).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Mutex;
use std::time::Duration;
use tokio::time::Instant;

pub struct RateLimiter {
    /// Between two calls at the whole rate.
    interval: Duration,
    burst: u32,
    /// How many instances the rate is shared among (at least 1).
    share: AtomicU32,
    slots: Mutex<HashMap<String, Instant>>,
    /// When the last bot answer that waited for each key's rate goes.
    replies: Mutex<HashMap<String, Instant>>,
    /// Keys with a rate of their own (a Page added with `--rate`).
    own_intervals: Mutex<HashMap<String, Duration>>,
    /// The next turn handed to a call refused for waiting too long
    /// (`reserve_within`), for each key.
    later: Mutex<HashMap<String, Instant>>,
}

impl RateLimiter {
    /// `per_second` calls per second per key, with bursts of `burst` calls.
    pub fn new(per_second: u32, burst: u32) -> RateLimiter {
        RateLimiter {
            interval: Duration::from_secs(1) / per_second.max(1),
            burst,
            share: AtomicU32::new(1),
            slots: Mutex::new(HashMap::new()),
            replies: Mutex::new(HashMap::new()),
            own_intervals: Mutex::new(HashMap::new()),
            later: Mutex::new(HashMap::new()),
        }
    }

    /// `key` gets `per_second` calls per second instead of the common rate.
    pub fn set_rate(&self, key: &str, per_second: u32) {
        self.own_intervals
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(key.to_string(), Duration::from_secs(1) / per_second.max(1));
    }

    /// This instance keeps `1 / instances` of the rate from now on.
    pub fn share_among(&self, instances: u32) {
        self.share.store(instances.max(1), Ordering::Relaxed);
    }

    /// How many instances the rate is shared among.
    pub fn shared_among(&self) -> u32 {
        self.share.load(Ordering::Relaxed)
    }

    /// How long the caller must wait before its call to `key`; the slot is
    /// reserved, so the caller then goes ahead.
    pub fn reserve(&self, key: &str, now: Instant) -> Duration {
        self.try_reserve(key, now, Duration::MAX)
            .unwrap_or_default()
    }

    /// Like `reserve`, but only when the wait would be at most `max_wait`;
    /// otherwise nothing is reserved and `None` says so.
    pub fn try_reserve(&self, key: &str, now: Instant, max_wait: Duration) -> Option<Duration> {
        self.book(key, now, max_wait).ok()
    }

    /// A turn at least `wait` from `now`, after the one handed out before.
    fn later_turn(&self, key: &str, now: Instant, wait: Duration) -> Duration {
        let interval = self.interval_of(key);
        let mut later = self.later.lock().unwrap_or_else(|p| p.into_inner());
        let turn = later.get(key).copied().unwrap_or(now).max(now + wait);
        later.insert(key.to_string(), turn + interval);
        turn.saturating_duration_since(now)
    }

    /// Reserves the next free slot when its wait is at most `max_wait`;
    /// `Err` holds the wait it would have cost, nothing reserved.
    fn book(&self, key: &str, now: Instant, max_wait: Duration) -> Result<Duration, Duration> {
        // Each instance keeps its share of the rate and of the burst.
        let share = self.shared_among();
        let interval = self.interval_of(key);
        let tolerance = interval * self.burst.div_ceil(share).saturating_sub(1);
        let mut slots = self.slots.lock().unwrap_or_else(|p| p.into_inner());
        let theoretical = slots.get(key).copied().unwrap_or(now).max(now);
        let wait = theoretical.saturating_duration_since(now + tolerance);
        if wait > max_wait {
            return Err(wait);
        }
        slots.insert(key.to_string(), theoretical + interval);
        Ok(wait)
    }

    /// `reserve`; a bot's answer (`reply`) also adds its turn to the
    /// key's schedule of answers (see `replies_booked_ahead`).
    pub fn reserve_for(&self, key: &str, now: Instant, reply: bool) -> Duration {
        self.reserve_within(key, now, reply, Duration::MAX)
            .unwrap_or_default()
    }

    /// `reserve_for` when the wait is at most `max_wait`; otherwise nothing
    /// is reserved and `Err` says when to come back: at the next free slot
    /// or later, each refused call a turn after the one before (a backlog
    /// comes back spread at the rate, not all at once to be refused again).
    pub fn reserve_within(
        &self,
        key: &str,
        now: Instant,
        reply: bool,
        max_wait: Duration,
    ) -> Result<Duration, Duration> {
        let wait = self
            .book(key, now, max_wait)
            .map_err(|wait| self.later_turn(key, now, wait))?;
        if reply {
            let turn = self.interval_of(key);
            let mut replies = self.replies.lock().unwrap_or_else(|p| p.into_inner());
            let last = replies.entry(key.to_string()).or_insert(now);
            *last = (*last).max(now) + turn;
        }
        Ok(wait)
    }

    /// No answer for `key` goes before `until` (its sends are cooling
    /// down): answers waiting count as booked until then.
    pub fn hold_replies_until(&self, key: &str, until: Instant) {
        let mut replies = self.replies.lock().unwrap_or_else(|p| p.into_inner());
        let last = replies.entry(key.to_string()).or_insert(until);
        *last = (*last).max(until);
    }

    /// Between two calls to `key` at this instance's share of its rate.
    fn interval_of(&self, key: &str) -> Duration {
        let own = self
            .own_intervals
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(key)
            .copied();
        own.unwrap_or(self.interval) * self.shared_among()
    }

    /// Waits for a call to `key`.
    pub async fn acquire(&self, key: &str) {
        let wait = self.reserve(key, Instant::now());
        if !wait.is_zero() {
            tokio::time::sleep(wait).await;
        }
    }

    /// How long the bot answers waiting for `key`'s rate take to go at
    /// that rate, other calls aside (zero when none waits): the answers
    /// processing made keep the key's sends busy that long.
    pub fn replies_booked_ahead(&self, key: &str, now: Instant) -> Duration {
        let replies = self.replies.lock().unwrap_or_else(|p| p.into_inner());
        replies
            .get(key)
            .map_or(Duration::ZERO, |goes| goes.saturating_duration_since(now))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calls_beyond_the_burst_are_spaced_at_the_rate() {
        let limiter = RateLimiter::new(100, 5);
        let now = Instant::now();
        let waits: Vec<_> = (0..8).map(|_| limiter.reserve("p", now)).collect();
        assert!(waits[..5].iter().all(|w| w.is_zero()), "{waits:?}");
        assert_eq!(waits[5], Duration::from_millis(10));
        assert_eq!(waits[7], Duration::from_millis(30));
    }

    #[test]
    fn a_call_whose_turn_is_too_far_off_books_nothing_and_says_how_far() {
        let limiter = RateLimiter::new(1, 1);
        let now = Instant::now();
        let most = Duration::from_secs(2);
        let waits: Vec<_> = (0..3)
            .map(|_| limiter.reserve_within("p", now, true, most))
            .collect();
        let secs = Duration::from_secs;
        assert_eq!(waits, [Ok(secs(0)), Ok(secs(1)), Ok(secs(2))]);
        // The fourth would wait 3 s: refused, the schedule as it was, and
        // each refused call told a turn of its own to come back at.
        assert_eq!(limiter.reserve_within("p", now, true, most), Err(secs(3)));
        assert_eq!(limiter.reserve_within("p", now, true, most), Err(secs(4)));
        assert_eq!(limiter.replies_booked_ahead("p", now), secs(3));
        assert_eq!(limiter.reserve("p", now), secs(3));
        // Past the turns handed out, the next refusal counts from its wait.
        let later = now + secs(10);
        assert_eq!(
            limiter.reserve_within("p", later, false, Duration::ZERO),
            Ok(secs(0))
        );
        assert_eq!(
            limiter.reserve_within("p", later, false, Duration::ZERO),
            Err(secs(1))
        );
    }

    #[test]
    fn the_answers_waiting_for_a_key_say_how_long_they_take_at_its_rate() {
        let limiter = RateLimiter::new(100, 5);
        limiter.set_rate("slow", 10);
        let now = Instant::now();
        assert_eq!(limiter.replies_booked_ahead("p", now), Duration::ZERO);
        // Other calls book the rate but are no answers.
        for _ in 0..20 {
            limiter.reserve("p", now);
        }
        assert_eq!(limiter.replies_booked_ahead("p", now), Duration::ZERO);
        for _ in 0..3 {
            limiter.reserve_for("p", now, true);
            limiter.reserve_for("slow", now, true);
        }
        assert_eq!(
            limiter.replies_booked_ahead("p", now),
            Duration::from_millis(30)
        );
        assert_eq!(
            limiter.replies_booked_ahead("slow", now),
            Duration::from_millis(300)
        );
        assert_eq!(limiter.replies_booked_ahead("q", now), Duration::ZERO);
        let later = now + Duration::from_millis(20);
        assert_eq!(
            limiter.replies_booked_ahead("p", later),
            Duration::from_millis(10)
        );
        // An answer after a quiet spell counts from then.
        let quiet = now + Duration::from_secs(1);
        limiter.reserve_for("p", quiet, true);
        assert_eq!(
            limiter.replies_booked_ahead("p", quiet),
            Duration::from_millis(10)
        );
        // A cool-down holds the answers until it ends.
        limiter.hold_replies_until("p", quiet + Duration::from_secs(30));
        assert_eq!(
            limiter.replies_booked_ahead("p", quiet),
            Duration::from_secs(30)
        );
    }

    #[test]
    fn a_key_with_its_own_rate_is_spaced_at_it() {
        let limiter = RateLimiter::new(100, 1);
        limiter.set_rate("slow", 10);
        let now = Instant::now();
        let slow: Vec<_> = (0..3).map(|_| limiter.reserve("slow", now)).collect();
        let fast: Vec<_> = (0..3).map(|_| limiter.reserve("fast", now)).collect();
        assert_eq!(slow[2], Duration::from_millis(200));
        assert_eq!(fast[2], Duration::from_millis(20));
    }

    #[test]
    fn optional_calls_are_refused_rather_than_queued() {
        let limiter = RateLimiter::new(100, 1);
        let now = Instant::now();
        assert_eq!(
            limiter.try_reserve("p", now, Duration::ZERO),
            Some(Duration::ZERO)
        );
        assert_eq!(
            limiter.try_reserve("p", now, Duration::from_millis(5)),
            None
        );
        assert_eq!(
            limiter.try_reserve("p", now, Duration::from_millis(10)),
            Some(Duration::from_millis(10))
        );
    }

    #[test]
    fn one_second_admits_the_rate_plus_the_burst_and_pages_are_independent() {
        let limiter = RateLimiter::new(300, 10);
        let start = Instant::now();
        let admitted = (0..1000)
            .filter(|_| limiter.reserve("a", start) <= Duration::from_secs(1))
            .count();
        assert_eq!(admitted, 310);
        assert!(limiter.reserve("b", start).is_zero());
    }

    #[test]
    fn an_instance_among_three_keeps_a_third_of_the_rate() {
        let limiter = RateLimiter::new(300, 10);
        limiter.share_among(3);
        let start = Instant::now();
        let admitted = (0..1000)
            .filter(|_| limiter.reserve("a", start) <= Duration::from_secs(1))
            .count();
        // 100 a second, and a burst of 4 (10 shared by 3, rounded up):
        // three instances together stay within 300 and a burst of 12.
        assert_eq!(admitted, 104);
        // Back alone: the whole rate again.
        limiter.share_among(1);
        let later = start + Duration::from_secs(60);
        let admitted = (0..1000)
            .filter(|_| limiter.reserve("a", later) <= Duration::from_secs(1))
            .count();
        assert_eq!(admitted, 310);
        // Never below one instance.
        limiter.share_among(0);
        assert_eq!(limiter.shared_among(), 1);
    }
}
