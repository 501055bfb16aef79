//! `mark_seen` for each message a person writes, gathered into Graph batch
//! requests: under load the people waiting for one Page go in one HTTP
//! round trip (up to `BATCH_MAX`) rather than a call each, so answering a
//! message costs about one Graph call instead of two. A person waiting
//! alone still gets an ordinary call, at once (`AppState::mark_seen` runs
//! the flushers). Best effort, as before: a mark is skipped when the
//! Page's send budget is spent or too many wait.

use std::sync::{Mutex, MutexGuard};

use crate::facebook::graph::BATCH_MAX;

/// Most marks waiting; past it, new ones are skipped (a late mark is
/// worthless).
const MOST_WAITING: usize = 10_000;
/// Most batches in flight at once.
const FLUSHERS: usize = 4;

/// The marks waiting to go, oldest first.
#[derive(Default)]
pub struct SeenQueue(Mutex<Waiting>);

#[derive(Default)]
struct Waiting {
    /// Page and PSID.
    people: Vec<(String, String)>,
    /// Flushers running (each takes batches until none wait).
    flushers: usize,
}

/// What `push` did with a mark.
#[derive(Debug, PartialEq, Eq)]
pub enum Pushed {
    /// Queued; a flusher is to start (fewer than `FLUSHERS` run).
    StartFlusher,
    /// Queued for a running flusher.
    Queued,
    /// Too many wait: skipped.
    Skipped,
}

/// A running flusher's place: given back if the flusher ends other than
/// by finding nothing to send (a panic in a send), so a later mark starts
/// another.
pub(crate) struct FlusherSlot<'a> {
    queue: &'a SeenQueue,
    held: bool,
}

impl FlusherSlot<'_> {
    /// The next batch for this flusher (see `SeenQueue::next`).
    pub(crate) fn next(&mut self) -> Option<(String, Vec<String>)> {
        let next = self.queue.next();
        self.held = next.is_some();
        next
    }
}

impl Drop for FlusherSlot<'_> {
    fn drop(&mut self) {
        if self.held {
            let mut waiting = self.queue.lock();
            waiting.flushers = waiting.flushers.saturating_sub(1);
        }
    }
}

impl SeenQueue {
    /// The place of a flusher `push` asked to start.
    pub(crate) fn slot(&self) -> FlusherSlot<'_> {
        FlusherSlot {
            queue: self,
            held: true,
        }
    }

    fn lock(&self) -> MutexGuard<'_, Waiting> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queues `mark_seen` for a person of a Page.
    pub fn push(&self, page_id: &str, psid: &str) -> Pushed {
        let mut waiting = self.lock();
        if waiting.people.len() >= MOST_WAITING {
            return Pushed::Skipped;
        }
        waiting.people.push((page_id.to_string(), psid.to_string()));
        if waiting.flushers < FLUSHERS {
            waiting.flushers += 1;
            return Pushed::StartFlusher;
        }
        Pushed::Queued
    }

    /// A flusher's next batch: the Page of the oldest mark waiting and up
    /// to `BATCH_MAX` of its people (each once), oldest first. `None` when
    /// nothing waits, and the flusher asking stops (in the same lock as a
    /// `push` that would start another, so no mark is left behind).
    pub(crate) fn next(&self) -> Option<(String, Vec<String>)> {
        let mut waiting = self.lock();
        let Some((page_id, _)) = waiting.people.first() else {
            waiting.flushers = waiting.flushers.saturating_sub(1);
            return None;
        };
        let page_id = page_id.clone();
        let mut psids: Vec<String> = Vec::new();
        waiting.people.retain(|(page, psid)| {
            if *page != page_id || psids.len() == BATCH_MAX {
                return true;
            }
            // A person with two messages waiting is marked once.
            if !psids.contains(psid) {
                psids.push(psid.clone());
            }
            false
        });
        Some((page_id, psids))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn queue(people: &[(&str, &str)]) -> SeenQueue {
        let queue = SeenQueue::default();
        assert_eq!(queue.push(people[0].0, people[0].1), Pushed::StartFlusher);
        for (page, psid) in &people[1..] {
            queue.push(page, psid);
        }
        queue.lock().flushers = 1;
        queue
    }

    #[test]
    fn a_flusher_that_ends_early_gives_its_place_back() {
        let queue = SeenQueue::default();
        assert_eq!(queue.push("P", "U1"), Pushed::StartFlusher);
        {
            let mut slot = queue.slot();
            assert!(slot.next().is_some());
            // Dropped mid-send (a panic): its place is free again.
        }
        assert_eq!(queue.lock().flushers, 0);
        let mut slot = queue.slot();
        queue.lock().flushers = 1;
        assert_eq!(slot.next(), None, "nothing waits: the flusher stops");
        drop(slot);
        assert_eq!(queue.lock().flushers, 0, "given back once, not twice");
    }

    #[test]
    fn a_few_flushers_start_and_past_the_most_waiting_a_mark_is_skipped() {
        let queue = SeenQueue::default();
        let pushed: Vec<Pushed> = (0..FLUSHERS + 1).map(|_| queue.push("P", "U")).collect();
        assert!(pushed[..FLUSHERS]
            .iter()
            .all(|p| *p == Pushed::StartFlusher));
        assert_eq!(pushed[FLUSHERS], Pushed::Queued);
        for i in FLUSHERS + 1..MOST_WAITING {
            queue.push("P", &format!("U{i}"));
        }
        assert_eq!(queue.push("P", "late"), Pushed::Skipped);
        assert_eq!(queue.lock().people.len(), MOST_WAITING);
    }

    #[test]
    fn a_batch_holds_one_pages_people_each_once_oldest_first_and_at_most_the_graphs_limit() {
        let mut people = vec![("P", "U1"), ("Q", "V1"), ("P", "U2"), ("P", "U1")];
        let many: Vec<String> = (0..BATCH_MAX + 5).map(|i| format!("W{i}")).collect();
        people.extend(many.iter().map(|u| ("P", u.as_str())));
        let queue = queue(&people);
        let (page, first) = queue.next().expect("a batch");
        assert_eq!(page, "P");
        assert_eq!(first.len(), BATCH_MAX);
        assert_eq!(&first[..3], ["U1", "U2", "W0"], "U1 once");
        // The other Page's mark is now the oldest.
        assert_eq!(queue.next(), Some(("Q".into(), vec!["V1".into()])));
        let (_, rest) = queue.next().expect("the rest of P's");
        assert_eq!(rest.len(), 55 + 3 - 1 - BATCH_MAX);
        assert_eq!(queue.next(), None);
        assert_eq!(queue.lock().flushers, 0, "the flusher stopped");
    }
}
