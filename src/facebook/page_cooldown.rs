//! Slowing a whole Page down when Graph says it is sending too much (rate
//! limit codes 4, 32, 613, or HTTP 429) or keeps failing (a burst of 5xx
//! answers or calls with no answer): the Page's sends stop for a cool-down,
//! doubling while the trouble recurs (up to a ceiling), instead of every
//! queued message hammering Graph on its own backoff. One success ends it.
//!
//! Kept in memory, and on Postgres shared with the other instances on the
//! database: the instance that starts a cool-down records it
//! (`store::cooldowns`), the others adopt it with their next heartbeat
//! (`workers::instances`), so N instances do not go on hammering a Page
//! one of them was told to leave alone. A restart forgets the doubling,
//! and each failure brings it back.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use super::GraphError;

/// Server failures in a row that make a burst.
pub const SERVER_BURST: u32 = 3;

/// How much later than its own a shared cool-down must end to be adopted:
/// times pass through the database's clock, which adds a few ms.
const ADOPT_SLOP_MS: i64 = 1_000;

/// What a failed send says about its Page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trouble {
    RateLimited,
    /// 5xx, or no answer at all.
    ServerFailure,
    /// About this message alone (bad recipient, window closed, ...).
    None,
}

impl Trouble {
    pub fn of(e: &GraphError) -> Trouble {
        if e.is_page_rate_limit() {
            Trouble::RateLimited
        } else if e.http_status.is_none_or(|s| s >= 500) {
            Trouble::ServerFailure
        } else {
            Trouble::None
        }
    }
}

#[derive(Debug, Default)]
struct PageState {
    /// Sends wait until then (epoch ms).
    until: i64,
    /// Cool-downs in a row, for the doubling.
    strikes: u32,
    /// Server failures since the last success or cool-down.
    server_failures: u32,
    /// The cool-down in force came from another instance (`adopt`).
    adopted: bool,
}

pub struct PageCooldowns {
    base: Duration,
    max: Duration,
    pages: Mutex<HashMap<String, PageState>>,
}

impl PageCooldowns {
    /// Cool-downs of `base`, doubling while the trouble recurs, up to `max`.
    pub fn new(base: Duration, max: Duration) -> PageCooldowns {
        PageCooldowns {
            base,
            max: max.max(base),
            pages: Mutex::new(HashMap::new()),
        }
    }

    fn pages(&self) -> std::sync::MutexGuard<'_, HashMap<String, PageState>> {
        self.pages.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Until when `page` must not be sent to, if it is cooling down at `now`.
    pub fn cooling_until(&self, page: &str, now: i64) -> Option<i64> {
        self.pages()
            .get(page)
            .map(|s| s.until)
            .filter(|until| *until > now)
    }

    /// Notes a failed send; returns the end of the cool-down it started.
    pub fn failed(&self, page: &str, trouble: Trouble, now: i64) -> Option<i64> {
        let server_failure = match trouble {
            // Not the Page's trouble: nothing to remember of it.
            Trouble::None => return None,
            Trouble::ServerFailure => true,
            Trouble::RateLimited => false,
        };
        let mut pages = self.pages();
        let state = pages.entry(page.to_string()).or_default();
        if server_failure {
            state.server_failures += 1;
            if state.server_failures < SERVER_BURST {
                return None;
            }
        }
        if state.until > now {
            // Sends already in flight when it began: no extra strike.
            return Some(state.until);
        }
        state.server_failures = 0;
        state.adopted = false;
        state.strikes = state.strikes.saturating_add(1);
        let exp = (state.strikes - 1).min(30);
        let pause = self.base.saturating_mul(1u32 << exp).min(self.max);
        state.until = now.saturating_add(pause.as_millis() as i64);
        Some(state.until)
    }

    /// Takes on a cool-down another instance started, ending at `until`
    /// (this instance's clock); true when it makes this instance's own
    /// last longer than by clock slop (a second), so reading back one's
    /// own cool-down changes nothing.
    pub fn adopt(&self, page: &str, until: i64) -> bool {
        let mut pages = self.pages();
        let state = pages.entry(page.to_string()).or_default();
        if until <= state.until + ADOPT_SLOP_MS {
            return false;
        }
        state.until = until;
        state.adopted = true;
        true
    }

    /// Ends the adopted cool-downs (`adopt`) still in force at `now` whose
    /// Page is no longer among the `shared` ones: a send got through on
    /// some instance, which ended it for all. Returns their Pages.
    pub fn end_unshared(&self, shared: &[&str], now: i64) -> Vec<String> {
        let mut pages = self.pages();
        let ended: Vec<String> = pages
            .iter()
            .filter(|(page, s)| s.adopted && s.until > now && !shared.contains(&page.as_str()))
            .map(|(page, _)| page.clone())
            .collect();
        for page in &ended {
            pages.remove(page);
        }
        ended
    }

    /// A send got through at `now`: the Page is healthy again. True when
    /// that ends a cool-down still in force (one another instance may share).
    pub fn succeeded(&self, page: &str, now: i64) -> bool {
        self.pages()
            .remove(page)
            .is_some_and(|state| state.until > now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn error(http_status: Option<u16>, code: Option<i64>) -> GraphError {
        GraphError {
            http_status,
            code,
            subcode: None,
            message: "test".into(),
            fbtrace_id: None,
        }
    }

    #[test]
    fn rate_limits_and_server_failures_are_told_from_a_messages_own_errors() {
        for code in [4, 32, 613, 80001, 80002, 80006] {
            assert_eq!(
                Trouble::of(&error(Some(400), Some(code))),
                Trouble::RateLimited
            );
        }
        assert_eq!(Trouble::of(&error(Some(429), None)), Trouble::RateLimited);
        assert_eq!(
            Trouble::of(&error(Some(500), Some(2))),
            Trouble::ServerFailure
        );
        assert_eq!(Trouble::of(&error(Some(503), None)), Trouble::ServerFailure);
        assert_eq!(Trouble::of(&error(None, None)), Trouble::ServerFailure);
        assert_eq!(Trouble::of(&error(Some(400), Some(100))), Trouble::None);
        assert_eq!(Trouble::of(&error(Some(400), Some(10))), Trouble::None);
    }

    #[test]
    fn a_rate_limit_cools_the_page_at_once_doubling_up_to_the_ceiling() {
        let pages = PageCooldowns::new(Duration::from_secs(30), Duration::from_secs(100));
        let now = 1_000_000;
        assert_eq!(pages.cooling_until("P", now), None);
        assert_eq!(
            pages.failed("P", Trouble::RateLimited, now),
            Some(now + 30_000)
        );
        assert_eq!(pages.cooling_until("P", now + 1), Some(now + 30_000));
        assert_eq!(pages.cooling_until("Q", now + 1), None, "pages apart");
        // Failures of sends already in flight add nothing.
        assert_eq!(
            pages.failed("P", Trouble::RateLimited, now + 5),
            Some(now + 30_000)
        );
        let later = now + 30_000;
        assert_eq!(pages.cooling_until("P", later), None);
        assert_eq!(
            pages.failed("P", Trouble::RateLimited, later),
            Some(later + 60_000)
        );
        let later = later + 60_000;
        assert_eq!(
            pages.failed("P", Trouble::RateLimited, later),
            Some(later + 100_000),
            "capped"
        );
        assert!(pages.succeeded("P", later + 1), "a cool-down in force ends");
        assert_eq!(pages.cooling_until("P", later + 1), None);
        assert_eq!(
            pages.failed("P", Trouble::RateLimited, later + 1),
            Some(later + 1 + 30_000),
            "a success starts the doubling over"
        );
    }

    #[test]
    fn an_adopted_cool_down_ends_when_no_instance_shares_it_any_more() {
        let pages = PageCooldowns::new(Duration::from_secs(10), Duration::from_secs(60));
        let now = 1_000_000;
        assert!(pages.adopt("P", now + 20_000));
        pages.failed("Q", Trouble::RateLimited, now);
        assert!(pages.end_unshared(&["P"], now).is_empty(), "still shared");
        // Its own cool-down is this instance's to end, not the table's.
        assert_eq!(pages.end_unshared(&[], now), vec!["P".to_string()]);
        assert_eq!(pages.cooling_until("P", now), None);
        assert!(pages.cooling_until("Q", now).is_some());
    }

    #[test]
    fn another_instances_cool_down_is_adopted_only_when_it_lasts_longer() {
        let pages = PageCooldowns::new(Duration::from_secs(30), Duration::from_secs(300));
        let now = 1_000_000;
        assert!(pages.adopt("P", now + 20_000));
        assert_eq!(pages.cooling_until("P", now), Some(now + 20_000));
        assert_eq!(pages.cooling_until("Q", now), None, "pages apart");
        // Its own cool-down read back, a few ms off: nothing changes.
        assert!(!pages.adopt("P", now + 20_005));
        assert!(!pages.adopt("P", now + 10_000), "never shortened");
        assert_eq!(pages.cooling_until("P", now), Some(now + 20_000));
        assert!(pages.adopt("P", now + 60_000));
        assert_eq!(pages.cooling_until("P", now), Some(now + 60_000));
        // A send in flight when it began gets through: the cool-down ends,
        // and the caller ends it for the others too.
        assert!(pages.succeeded("P", now));
        assert_eq!(pages.cooling_until("P", now), None);
        assert!(pages.adopt("P", now + 60_000));
        // A failure while cooling adds no strike; the next one doubles from
        // this instance's own count.
        assert_eq!(
            pages.failed("P", Trouble::RateLimited, now + 1),
            Some(now + 60_000)
        );
        let later = now + 60_000;
        assert_eq!(
            pages.failed("P", Trouble::RateLimited, later),
            Some(later + 30_000)
        );
    }

    #[test]
    fn a_messages_own_error_leaves_no_trace_of_its_page() {
        let pages = PageCooldowns::new(Duration::from_secs(30), Duration::from_secs(300));
        for n in 0..100 {
            assert_eq!(pages.failed(&format!("P{n}"), Trouble::None, 1), None);
        }
        assert!(pages.pages().is_empty());
    }

    #[test]
    fn only_a_burst_of_server_failures_cools_the_page() {
        let pages = PageCooldowns::new(Duration::from_secs(30), Duration::from_secs(300));
        let now = 1_000_000;
        assert_eq!(pages.failed("P", Trouble::ServerFailure, now), None);
        assert_eq!(pages.failed("P", Trouble::ServerFailure, now), None);
        assert_eq!(pages.failed("P", Trouble::None, now), None);
        assert_eq!(
            pages.failed("P", Trouble::ServerFailure, now),
            Some(now + 30_000)
        );
        // A success between failures breaks the burst.
        let pages = PageCooldowns::new(Duration::from_secs(30), Duration::from_secs(300));
        pages.failed("P", Trouble::ServerFailure, now);
        pages.failed("P", Trouble::ServerFailure, now);
        assert!(!pages.succeeded("P", now), "no cool-down had begun");
        assert_eq!(pages.failed("P", Trouble::ServerFailure, now), None);
        assert_eq!(pages.cooling_until("P", now), None);
    }
}
