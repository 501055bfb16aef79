//! Processing paced to what the Pages can send. Answers leave at the Send
//! API's pace (`SEND_RATE_PER_PAGE`), so under a burst bigger than that,
//! processing stored events as fast as they arrive only moves the backlog
//! from the inbox to the outbox, and takes the CPU and commits the webhook
//! needs to store what keeps arriving. While every Page has answers
//! waiting that take `AHEAD` or more to go at its send rate (the answers
//! processing made already keep its sends busy that long), or its sends
//! are cooling down, the committer claims no inbox row (`Feeds::
//! inbox_paced`, asked for its own claims and the worker's); once they
//! drain below it, processing resumes. Only the bot's answers count: a
//! backlog of API messages does not hold processing (and the receipts,
//! handovers and links it records) back. The time to the last answer stays
//! what the send rate makes it. A deployment with some Pages behind and
//! others not is not paced (claims walk the inbox in id order, and
//! stepping over one Page's backlog would cost more than processing it).

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

/// Whether every one of `pages` has answers waiting that go `AHEAD` or
/// more from now.
fn replies_booked_ahead(limiter: &RateLimiter, pages: &[String], now: Instant) -> bool {
    !pages.is_empty()
        && pages
            .iter()
            .all(|page| limiter.replies_booked_ahead(page, now) >= AHEAD)
}

/// The committer's question (`Feeds::inbox_paced`) for these Pages.
pub fn paced(limiter: Arc<RateLimiter>, pages: Vec<String>) -> Paced {
    Arc::new(move || replies_booked_ahead(&limiter, &pages, Instant::now()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn processing_is_held_only_while_every_page_has_a_second_of_answers_waiting() {
        let limiter = RateLimiter::new(100, 1);
        let pages = vec!["A".to_string(), "B".to_string()];
        let now = Instant::now();
        assert!(
            !replies_booked_ahead(&limiter, &pages, now),
            "nothing waits"
        );
        // A backlog of other messages (API, notices) holds nothing.
        for _ in 0..500 {
            limiter.reserve("A", now);
            limiter.reserve("B", now);
        }
        assert!(!replies_booked_ahead(&limiter, &pages, now), "no answers");
        for _ in 0..100 {
            limiter.reserve_for("A", now, true);
        }
        assert!(!replies_booked_ahead(&limiter, &pages, now), "B has none");
        for _ in 0..99 {
            limiter.reserve_for("B", now, true);
        }
        assert!(!replies_booked_ahead(&limiter, &pages, now), "B: 0.99 s");
        limiter.reserve_for("B", now, true);
        assert!(replies_booked_ahead(&limiter, &pages, now), "both behind");
        // As time goes, the answers leave and processing resumes.
        let later = now + Duration::from_secs(10);
        assert!(!replies_booked_ahead(&limiter, &pages, later));
        assert!(
            !replies_booked_ahead(&limiter, &[], now),
            "no Page: never held"
        );
    }
}
