//! Graph calls gathered into batch requests, per Page: under load the
//! calls waiting for one Page go in one HTTP round trip (up to
//! `BATCH_MAX`) rather than one each; a call waiting alone still goes at
//! once, as an ordinary call. Each Page has its own few flushers, each
//! taking that Page's waiting calls until none wait: no timer, no added
//! wait at low load, and one Page's slow calls hold up only its own. A
//! queue that starts each flusher with its own call (`alone_first`)
//! batches only what waits while all of the Page's flushers are busy;
//! otherwise the calls made together (before a flusher first runs) go
//! together too.
//!
//! Used for `mark_seen` (`AppState::mark_seen`) and the Send API's messages
//! (`AppState::send_message`).

use futures_util::FutureExt;
use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Mutex, MutexGuard};

use crate::facebook::graph::BATCH_MAX;

/// Calls waiting to go, per Page, oldest first.
pub struct BatchQueue<T> {
    waiting: Mutex<Waiting<T>>,
    /// Past this many waiting (all Pages), a new call is refused.
    most_waiting: usize,
    /// Most flushers (batches in flight) at once for one Page.
    most_flushers: usize,
    /// A flusher's first batch is the call that started it, alone.
    alone_first: bool,
}

struct Waiting<T> {
    /// Each Page's calls waiting, and its flushers running.
    pages: HashMap<String, Page<T>>,
    /// Calls waiting, all Pages.
    count: usize,
}

struct Page<T> {
    calls: VecDeque<T>,
    flushers: usize,
}

/// What `push` did with a call.
#[derive(Debug, PartialEq, Eq)]
pub enum Pushed<T> {
    /// A flusher is to start for the Page (fewer than the most run), with
    /// this call as its first batch (`alone_first`), or else to take it
    /// from the queue.
    StartFlusher(Option<T>),
    /// Queued for a running flusher.
    Queued,
    /// Too many wait: refused, given back.
    Refused(T),
}

/// A running flusher's place, for one Page: given back when the flusher
/// finds nothing more to send, or if it ends otherwise.
pub(crate) struct FlusherSlot<'a, T> {
    queue: &'a BatchQueue<T>,
    page_id: String,
    held: bool,
}

impl<T> FlusherSlot<'_, T> {
    /// The next batch for this flusher (see `BatchQueue::next`).
    pub(crate) fn next(&mut self) -> Option<Vec<T>> {
        let next = self.queue.next(&self.page_id);
        self.held = next.is_some();
        next
    }
}

impl<T> Drop for FlusherSlot<'_, T> {
    fn drop(&mut self) {
        if self.held {
            self.queue
                .stop_flusher(&mut self.queue.lock(), &self.page_id);
        }
    }
}

impl<T> BatchQueue<T> {
    pub fn new(most_waiting: usize, most_flushers: usize, alone_first: bool) -> BatchQueue<T> {
        BatchQueue {
            waiting: Mutex::new(Waiting {
                pages: HashMap::new(),
                count: 0,
            }),
            most_waiting,
            most_flushers: most_flushers.max(1),
            alone_first,
        }
    }

    /// The place of a flusher `push` asked to start for `page_id`.
    pub(crate) fn slot(&self, page_id: &str) -> FlusherSlot<'_, T> {
        FlusherSlot {
            queue: self,
            page_id: page_id.to_string(),
            held: true,
        }
    }

    fn lock(&self) -> MutexGuard<'_, Waiting<T>> {
        self.waiting.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queues a call for a Page.
    pub fn push(&self, page_id: &str, call: T) -> Pushed<T> {
        let mut waiting = self.lock();
        let full = waiting.count >= self.most_waiting;
        let page = waiting
            .pages
            .entry(page_id.to_string())
            .or_insert_with(|| Page {
                calls: VecDeque::new(),
                flushers: 0,
            });
        if page.flushers < self.most_flushers {
            page.flushers += 1;
            if self.alone_first {
                return Pushed::StartFlusher(Some(call));
            }
            page.calls.push_back(call);
            waiting.count += 1;
            return Pushed::StartFlusher(None);
        }
        if full {
            return Pushed::Refused(call);
        }
        page.calls.push_back(call);
        waiting.count += 1;
        Pushed::Queued
    }

    /// A flusher's next batch for its Page: up to `BATCH_MAX` of the
    /// Page's calls, oldest first. `None` when none wait, and the flusher
    /// asking stops (in the same lock as a `push` that would start
    /// another, so no call is left behind).
    pub(crate) fn next(&self, page_id: &str) -> Option<Vec<T>> {
        let mut waiting = self.lock();
        let page = waiting.pages.get_mut(page_id)?;
        let take = page.calls.len().min(BATCH_MAX);
        if take == 0 {
            self.stop_flusher(&mut waiting, page_id);
            return None;
        }
        let batch: Vec<T> = page.calls.drain(..take).collect();
        waiting.count -= take;
        Some(batch)
    }

    /// One flusher of `page_id` stopped; a Page with none and nothing
    /// waiting is forgotten.
    fn stop_flusher(&self, waiting: &mut Waiting<T>, page_id: &str) {
        if let Some(page) = waiting.pages.get_mut(page_id) {
            page.flushers = page.flushers.saturating_sub(1);
            if page.flushers == 0 && page.calls.is_empty() {
                waiting.pages.remove(page_id);
            }
        }
    }
}

impl<T: Send + 'static> BatchQueue<T> {
    /// Queues `call` for `page_id`, starting a flusher that hands each
    /// batch to `flush` (the Page and its calls) when one is to start. A
    /// flush that panics loses only its own calls (their answers are
    /// dropped); the flusher goes on. `Err` gives the call back when too
    /// many wait.
    pub fn submit<F, Fut>(self: &Arc<Self>, page_id: &str, call: T, flush: F) -> Result<(), T>
    where
        F: Fn(String, Vec<T>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send,
    {
        match self.push(page_id, call) {
            Pushed::StartFlusher(first) => {
                let queue = Arc::clone(self);
                let page_id = page_id.to_string();
                tokio::spawn(async move {
                    let mut slot = queue.slot(&page_id);
                    let mut batch = first.map(|call| vec![call]).or_else(|| slot.next());
                    while let Some(calls) = batch {
                        let flushed =
                            AssertUnwindSafe(async { flush(page_id.clone(), calls).await });
                        if flushed.catch_unwind().await.is_err() {
                            tracing::error!(page_id = %page_id, "a Graph batch's flush panicked: its calls are lost to their callers");
                        }
                        batch = slot.next();
                    }
                });
                Ok(())
            }
            Pushed::Queued => Ok(()),
            Pushed::Refused(call) => Err(call),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn queue(calls: &[(&str, &str)]) -> BatchQueue<String> {
        let queue = BatchQueue::new(10_000, 1, false);
        for (page, call) in calls {
            queue.push(page, call.to_string());
        }
        queue
    }

    #[test]
    fn a_flusher_that_ends_early_gives_its_place_back() {
        let queue = BatchQueue::new(10, 1, false);
        assert_eq!(queue.push("P", "U1"), Pushed::StartFlusher(None));
        {
            let mut slot = queue.slot("P");
            assert!(slot.next().is_some());
            // Dropped mid-send (a panic): its place is free again.
        }
        assert!(queue.lock().pages.is_empty(), "the Page is forgotten");
        assert_eq!(queue.push("P", "U2"), Pushed::StartFlusher(None));
        let mut slot = queue.slot("P");
        assert_eq!(slot.next(), Some(vec!["U2"]));
        assert_eq!(slot.next(), None, "nothing waits: the flusher stops");
        drop(slot);
        assert!(queue.lock().pages.is_empty(), "given back once, not twice");
    }

    #[test]
    fn each_page_has_its_own_flushers_and_past_the_most_waiting_a_call_is_given_back() {
        let (most, flushers) = (20, 3);
        let queue = BatchQueue::new(most, flushers, true);
        let pushed: Vec<Pushed<String>> = (0..flushers + 1)
            .map(|i| queue.push("P", format!("U{i}")))
            .collect();
        assert_eq!(pushed[0], Pushed::StartFlusher(Some("U0".into())));
        assert_eq!(pushed[flushers], Pushed::Queued);
        // Another Page's calls do not wait for P's flushers.
        assert_eq!(
            queue.push("Q", "V0".into()),
            Pushed::StartFlusher(Some("V0".into()))
        );
        // The first `flushers` went to their flushers, not the queue.
        for i in flushers + 1..most + flushers {
            queue.push("P", format!("U{i}"));
        }
        assert_eq!(
            queue.push("P", "late".into()),
            Pushed::Refused("late".into())
        );
        assert_eq!(queue.lock().count, most);
    }

    #[test]
    fn a_batch_holds_its_pages_calls_oldest_first_and_at_most_the_graphs_limit() {
        let mut calls = vec![("P", "U1"), ("Q", "V1"), ("P", "U2")];
        let many: Vec<String> = (0..BATCH_MAX + 5).map(|i| format!("W{i}")).collect();
        calls.extend(many.iter().map(|u| ("P", u.as_str())));
        let queue = queue(&calls);
        let first = queue.next("P").expect("a batch");
        assert_eq!(first.len(), BATCH_MAX);
        assert_eq!(&first[..3], ["U1", "U2", "W0"]);
        let rest = queue.next("P").expect("the rest of P's");
        assert_eq!(rest.len(), BATCH_MAX + 5 + 2 - BATCH_MAX);
        assert_eq!(queue.next("P"), None, "P's flusher stops");
        assert_eq!(queue.next("Q"), Some(vec!["V1".into()]), "Q's is its own");
        assert_eq!(queue.next("Q"), None);
        assert!(queue.lock().pages.is_empty());
    }

    /// Submits calls 0..4 to a queue with one flusher a Page, whose sends
    /// wait for `release`; then call 4 while it is busy. The batches, in
    /// order.
    async fn batches_of(alone_first: bool) -> Vec<Vec<u32>> {
        let queue = Arc::new(BatchQueue::new(100, 1, alone_first));
        let (batches, mut received) = tokio::sync::mpsc::unbounded_channel();
        let (release, hold) = tokio::sync::watch::channel(false);
        let flush = move |page: String, calls: Vec<u32>| {
            let (batches, mut hold) = (batches.clone(), hold.clone());
            async move {
                assert_eq!(page, "P");
                let _ = batches.send(calls);
                let _ = hold.wait_for(|go| *go).await;
            }
        };
        for call in 0..4 {
            assert!(queue.submit("P", call, flush.clone()).is_ok());
        }
        let mut sent = vec![received.recv().await.expect("a first batch")];
        assert!(queue.submit("P", 4, flush.clone()).is_ok());
        tokio::task::yield_now().await;
        assert!(
            received.try_recv().is_err(),
            "nothing more while the flusher is busy"
        );
        release.send(true).expect("released");
        while sent.iter().map(Vec::len).sum::<usize>() < 5 {
            sent.push(received.recv().await.expect("the rest"));
        }
        sent
    }

    #[tokio::test]
    async fn calls_made_together_go_together_unless_each_flusher_starts_alone() {
        // The flusher first runs once all four wait (one thread).
        assert_eq!(batches_of(false).await, [vec![0, 1, 2, 3], vec![4]]);
        // Its own call first, alone; then all that waited meanwhile.
        assert_eq!(batches_of(true).await, [vec![0], vec![1, 2, 3, 4]]);
    }

    #[tokio::test]
    async fn a_flush_that_panics_loses_only_its_own_calls() {
        let queue = Arc::new(BatchQueue::new(100, 1, true));
        let (batches, mut received) = tokio::sync::mpsc::unbounded_channel();
        let flush = move |_page: String, calls: Vec<u32>| {
            let batches = batches.clone();
            async move {
                if calls == [0] {
                    panic!("a send went wrong");
                }
                let _ = batches.send(calls);
            }
        };
        for call in 0..3 {
            assert!(queue.submit("P", call, flush.clone()).is_ok());
        }
        assert_eq!(received.recv().await, Some(vec![1, 2]), "the rest still go");
    }
}
