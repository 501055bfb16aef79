//! Processing paced to what the Pages can send. Answers leave at the Send
//! API's pace (`SEND_RATE_PER_PAGE`), so under a burst bigger than that,
//! processing stored events as fast as they arrive only moves the backlog
//! from the inbox to the outbox, and takes the CPU and commits the webhook
//! needs to store what keeps arriving. While every Page's sends are booked
//! `AHEAD` or more (the outbox worker already holds that much to send),
//! no inbox row is claimed; once the queued answers drain below it,
//! processing resumes. The time to the last answer stays what the send
//! rate makes it. A deployment with some Pages behind and others not is
//! not paced (claims walk the inbox in id order, and stepping over one
//! Page's backlog would cost more than processing it).

use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;

use crate::facebook::rate_limit::RateLimiter;
use crate::store::writer::Paced;

/// How much sending already booked holds processing back: long enough
/// that the queued answers outlast the processing that refills them
/// (milliseconds), short enough that an answer is produced close to when
/// it can leave.
pub const AHEAD: Duration = Duration::from_secs(1);

/// Whether every one of `pages` has its sends booked `AHEAD` or more.
pub fn sends_booked_ahead(limiter: &RateLimiter, pages: &[String], now: Instant) -> bool {
    !pages.is_empty()
        && pages
            .iter()
            .all(|page| limiter.booked_ahead(page, now) >= AHEAD)
}

/// The committer's question (`Feeds::inbox_paced`) for these Pages.
pub fn paced(limiter: Arc<RateLimiter>, pages: Vec<String>) -> Paced {
    Arc::new(move || sends_booked_ahead(&limiter, &pages, Instant::now()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn book(limiter: &RateLimiter, page: &str, calls: u32, now: Instant) {
        for _ in 0..calls {
            limiter.reserve(page, now);
        }
    }

    #[test]
    fn processing_is_held_only_while_every_page_has_a_second_of_sends_booked() {
        let limiter = RateLimiter::new(100, 1);
        let pages = vec!["A".to_string(), "B".to_string()];
        let now = Instant::now();
        assert!(!sends_booked_ahead(&limiter, &pages, now), "nothing booked");
        book(&limiter, "A", 150, now);
        assert!(
            !sends_booked_ahead(&limiter, &pages, now),
            "B has room: nothing held"
        );
        book(&limiter, "B", 99, now);
        assert!(!sends_booked_ahead(&limiter, &pages, now), "B: 0.99 s");
        book(&limiter, "B", 1, now);
        assert!(sends_booked_ahead(&limiter, &pages, now), "both a second");
        // As the sends go, the booking drains and processing resumes.
        let later = now + Duration::from_millis(10);
        assert!(!sends_booked_ahead(&limiter, &pages, later));
        assert!(
            !sends_booked_ahead(&limiter, &[], now),
            "no Page: never held"
        );
    }
}
