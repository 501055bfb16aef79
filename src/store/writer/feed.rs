//! What the committer hands the workers: the rows it claims on their
//! behalf in the batch that freed them, within each worker's budget.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use tokio::sync::mpsc;

use super::{Claim, Write, WriteOutput, LEASE_MS};
use crate::store::inbox::InboxRow;
use crate::store::outbox::OutboxRow;

/// Most rows one claim takes.
const CLAIM_MAX: i64 = 256;

/// Where the committer hands rows it claimed on a worker's behalf, and how
/// many more that worker can take (claims never exceed it).
pub struct Feed<T> {
    budget: Arc<AtomicI64>,
    rows: mpsc::UnboundedSender<Vec<T>>,
    /// The fewest rows a claim on the worker's behalf takes (see
    /// `piggyback`), from 1 to `CLAIM_MAX`.
    min_claim: i64,
}

/// A worker's end of a `Feed`.
pub struct FeedReceiver<T> {
    /// Rows the worker can still take; it adds one back per finished row.
    pub budget: Arc<AtomicI64>,
    pub rows: mpsc::UnboundedReceiver<Vec<T>>,
    /// The rows it can hold at once, as the feed was made.
    pub capacity: i64,
}

/// A feed for a worker that can hold `capacity` rows at once; the committer
/// claims for it once it has room for `min_claim` rows (see `piggyback`).
pub fn feed<T>(capacity: i64, min_claim: i64) -> (Feed<T>, FeedReceiver<T>) {
    let budget = Arc::new(AtomicI64::new(capacity));
    let (tx, rx) = mpsc::unbounded_channel();
    (
        Feed {
            budget: Arc::clone(&budget),
            rows: tx,
            min_claim: min_claim.clamp(1, CLAIM_MAX),
        },
        FeedReceiver {
            budget,
            rows: rx,
            capacity,
        },
    )
}

/// The workers the committer claims for. After a batch that may have made
/// rows claimable (new events, finished rows, queued replies), it claims in
/// the same transaction and hands the rows over, so a message moves from
/// webhook to NLU to Send API without waiting for a poll or a claim commit.
#[derive(Default, Clone)]
pub struct Feeds {
    pub inbox: Option<Feed<InboxRow>>,
    pub outbox: Option<Feed<OutboxRow>>,
    /// While it says so, no inbox row is claimed on the worker's behalf:
    /// the answers already queued keep the Send API busy (see
    /// `workers::pacing`), and stored events wait their turn.
    pub inbox_paced: Option<Paced>,
}

/// Asked before each inbox claim: `true` holds the claim back.
pub type Paced = Arc<dyn Fn() -> bool + Send + Sync>;

/// Whether inbox claims are held back now.
fn paced(feeds: &Feeds) -> bool {
    feeds.inbox_paced.as_ref().is_some_and(|paced| paced())
}

/// A claim on a worker's behalf, when the batch may have freed rows and the
/// worker has room for at least `min_claim` of them (`startup` sets it: on
/// Postgres an eighth of the room, since a claim walks the waiting rows in
/// order past those whose conversation already has one in hand, and under
/// a backlog that walk, not the rows it takes, is most of its cost). An
/// idle worker has all its room free and gets new rows at once; a busy one
/// still holds most of its capacity meanwhile.
fn piggyback<T>(feed: &Option<Feed<T>>, wanted: bool, now: i64) -> Option<Claim> {
    let feed = feed.as_ref().filter(|_| wanted)?;
    let limit = feed.budget.load(Ordering::Acquire).min(CLAIM_MAX);
    (limit >= feed.min_claim).then_some(Claim {
        now,
        lease_until: now + LEASE_MS,
        limit,
    })
}

/// Rows a worker claimed itself count against its budget.
pub(super) fn charge(feeds: &Feeds, written: &WriteOutput) {
    match written {
        WriteOutput::Inbox(rows) => reserve(&feeds.inbox, rows.len()),
        WriteOutput::Outbox(rows) => reserve(&feeds.outbox, rows.len()),
        WriteOutput::Rows(_) => {}
    }
}

/// Takes the room of `n` rows claimed for a worker, before they are handed
/// over (see `flush` for when), so the next batch's claims see it taken.
pub(super) fn reserve<T>(feed: &Option<Feed<T>>, n: usize) {
    if let Some(feed) = feed {
        feed.budget.fetch_sub(n as i64, Ordering::AcqRel);
    }
}

/// Gives a worker back the room of `n` rows taken by `reserve` that will
/// never reach it (their batch could not be flushed, see `flush`).
pub(super) fn give_back<T>(feed: &Option<Feed<T>>, n: usize) {
    if let Some(feed) = feed {
        feed.budget.fetch_add(n as i64, Ordering::AcqRel);
    }
}

/// Hands rows claimed (and reserved) for a worker over to it.
pub(super) fn hand_over<T>(feed: &Option<Feed<T>>, rows: Vec<T>) {
    if let (Some(feed), false) = (feed, rows.is_empty()) {
        // A closed feed means the worker stopped: the leases run out and
        // the rows are claimed again later.
        let _ = feed.rows.send(rows);
    }
}

// By hand: a derived `Clone` would ask the rows themselves to be `Clone`.
impl<T> Clone for Feed<T> {
    fn clone(&self) -> Self {
        Feed {
            budget: Arc::clone(&self.budget),
            rows: self.rows.clone(),
            min_claim: self.min_claim,
        }
    }
}

/// The job number of a claim made on a worker's behalf.
pub(super) const PIGGYBACK: usize = usize::MAX;

/// How often the claims made on the workers' behalf also look for rows
/// whose lease ran out. A worker claims for itself (lapsed leases
/// included) only when its feed has been quiet for a poll, which a steady
/// load never allows.
pub(super) const LAPSED_EVERY: std::time::Duration = std::time::Duration::from_millis(250);

/// Claims added to a batch on the workers' behalf.
#[derive(Default, Clone, Copy)]
pub(super) struct WorkerClaims {
    pub(super) inbox: Option<Claim>,
    pub(super) outbox: Option<Claim>,
    /// Whether each (inbox, outbox) also takes rows whose lease ran out
    /// (see `claim_statement!`).
    pub(super) lapsed: [bool; 2],
    /// No inbox row is claimed in this batch, not even by the worker's own
    /// claim (see `Feeds::inbox_paced`).
    pub(super) inbox_paced: bool,
    /// Each worker's room (inbox, outbox) as this batch starts, when known:
    /// a worker's own claim asks for the room it saw when it asked, and a
    /// claim made on its behalf in a batch since may have taken that room,
    /// so its claim takes no more than is left (`None`: as asked).
    pub(super) room: [Option<i64>; 2],
}

impl WorkerClaims {
    /// The claims for rows that `writes` may free; those whose table is due
    /// a look at lapsed leases (`lapsed`) look at them too.
    pub(super) fn for_writes(
        feeds: &Feeds,
        writes: &[&Write],
        lapsed: &LapsedLeases,
    ) -> WorkerClaims {
        let now = crate::store::now_ms();
        let inbox = piggyback(&feeds.inbox, writes.iter().any(|w| w.frees_inbox()), now);
        // Asked only when an inbox claim would be made. A paced inbox
        // resumes with the worker's own poll (every `workers::POLL`, well
        // within the second of answers booked ahead).
        let own = writes.iter().any(|w| matches!(w, Write::ClaimInbox(_)));
        let inbox_paced = (inbox.is_some() || own) && paced(feeds);
        WorkerClaims {
            inbox: inbox.filter(|_| !inbox_paced),
            outbox: piggyback(&feeds.outbox, writes.iter().any(|w| w.frees_outbox()), now),
            lapsed: [lapsed.due(INBOX), lapsed.due(OUTBOX)],
            inbox_paced,
            room: [room(&feeds.inbox), room(&feeds.outbox)],
        }
    }
}

/// A worker's room now, if it has a feed.
fn room<T>(feed: &Option<Feed<T>>) -> Option<i64> {
    feed.as_ref().map(|f| f.budget.load(Ordering::Acquire))
}

/// Index of the inbox in per-table pairs.
pub(super) const INBOX: usize = 0;
/// Index of the outbox in per-table pairs.
pub(super) const OUTBOX: usize = 1;

/// When a committer's claims last took every lapsed lease they could see,
/// per table (inbox, outbox). A look that filled its claim may have left
/// some: the next batch looks again, so the rows an instance left behind
/// come back at the pace of the batches, not one look per `LAPSED_EVERY`.
pub(super) struct LapsedLeases([Option<std::time::Instant>; 2]);

impl LapsedLeases {
    pub(super) fn new() -> LapsedLeases {
        LapsedLeases([None, None])
    }

    fn due(&self, table: usize) -> bool {
        self.0[table].is_none_or(|at| at.elapsed() >= LAPSED_EVERY)
    }

    /// After a committed batch: the tables whose claim looked at lapsed
    /// leases and took fewer rows than it could (so none was left).
    pub(super) fn drained(&mut self, tables: [bool; 2]) {
        for (at, drained) in self.0.iter_mut().zip(tables) {
            if drained {
                *at = Some(std::time::Instant::now());
            }
        }
    }
}

impl Write {
    pub(super) fn frees_inbox(&self) -> bool {
        match self {
            Write::InsertInbox(events) => !events.is_empty(),
            Write::FinishInbox(_) | Write::Arrived => true,
            _ => false,
        }
    }

    pub(super) fn frees_outbox(&self) -> bool {
        match self {
            Write::FinishInbox(u) => {
                !u.replies.is_empty() || u.conversation.as_ref().is_some_and(|c| c.release_held)
            }
            // Held messages may be released at once (see `apply`).
            Write::Accept(a) => !a.messages.is_empty(),
            Write::FinishOutbox(_) => true,
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A busy worker is topped up `min_claim` rows at a time at least; an
    /// idle one at once.
    #[test]
    fn claims_on_a_workers_behalf_wait_for_room_for_min_claim_rows() {
        let limit = |capacity: i64, min_claim: i64, free: i64| {
            let (feed, _worker) = feed::<InboxRow>(capacity, min_claim);
            feed.budget.store(free, Ordering::Release);
            piggyback(&Some(feed), true, 0).map(|c| c.limit)
        };
        assert_eq!(limit(512, 64, 63), None, "a few rows free: not yet");
        assert_eq!(limit(512, 64, 64), Some(64));
        assert_eq!(limit(512, 64, 512), Some(CLAIM_MAX), "idle: at once");
        assert_eq!(limit(128, 1, 1), Some(1), "one row at a time");
        assert_eq!(limit(128, 0, 1), Some(1), "at least one");
        assert_eq!(limit(128, 1, 0), None, "no room");
        let most = CLAIM_MAX;
        assert_eq!(
            limit(4 * most, 2 * most, 4 * most),
            Some(most),
            "no more than a claim takes"
        );
        let (feed, _worker) = feed::<InboxRow>(512, 64);
        assert!(piggyback(&Some(feed), false, 0).is_none(), "nothing freed");
    }

    /// Each table has its own clock, and only a look that left no lapsed
    /// lease restarts it.
    #[test]
    fn lapsed_leases_are_looked_for_per_table_until_a_look_leaves_none() {
        let mut lapsed = LapsedLeases::new();
        assert!(lapsed.due(INBOX) && lapsed.due(OUTBOX), "at first, both");
        lapsed.drained([false, false]);
        assert!(
            lapsed.due(INBOX) && lapsed.due(OUTBOX),
            "a full look: again"
        );
        lapsed.drained([true, false]);
        assert!(!lapsed.due(INBOX), "the inbox waits its turn");
        assert!(lapsed.due(OUTBOX), "the outbox's clock is its own");
    }
}
