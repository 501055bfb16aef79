//! Graph calls gathered into batch requests, per Page: under load the
//! calls waiting for one Page go in one HTTP round trip (up to
//! `BATCH_MAX`) rather than one each; a call waiting alone still goes at
//! once, as an ordinary call. A few flushers run at a time, each taking the
//! oldest Page's calls until none wait: no timer, no added wait at low
//! load. A queue that starts each flusher with its own call (`alone_first`)
//! batches only what waits while every flusher is busy; otherwise the
//! calls made together (before a flusher first runs) go together too.
//!
//! Used for `mark_seen` (`AppState::mark_seen`) and the Send API's messages
//! (`AppState::send_message`).

use std::future::Future;
use std::sync::{Arc, Mutex, MutexGuard};

use crate::facebook::graph::BATCH_MAX;

/// Calls waiting to go, oldest first.
pub struct BatchQueue<T> {
    waiting: Mutex<Waiting<T>>,
    /// Past this many waiting, a new call is refused.
    most_waiting: usize,
    /// Most flushers (batches in flight) at once.
    most_flushers: usize,
    /// A flusher's first batch is the call that started it, alone.
    alone_first: bool,
}

struct Waiting<T> {
    /// Each call with its Page.
    calls: Vec<(String, T)>,
    /// Flushers running.
    flushers: usize,
}

/// What `push` did with a call.
#[derive(Debug, PartialEq, Eq)]
pub enum Pushed<T> {
    /// A flusher is to start (fewer than the most run), with this call as
    /// its first batch (`alone_first`), or else to take it from the queue.
    StartFlusher(Option<T>),
    /// Queued for a running flusher.
    Queued,
    /// Too many wait: refused, given back.
    Refused(T),
}

/// A running flusher's place: given back if the flusher ends other than
/// by finding nothing to send (a panic in a send), so a later call starts
/// another.
pub(crate) struct FlusherSlot<'a, T> {
    queue: &'a BatchQueue<T>,
    held: bool,
}

impl<T> FlusherSlot<'_, T> {
    /// The next batch for this flusher (see `BatchQueue::next`).
    pub(crate) fn next(&mut self) -> Option<(String, Vec<T>)> {
        let next = self.queue.next();
        self.held = next.is_some();
        next
    }
}

impl<T> Drop for FlusherSlot<'_, T> {
    fn drop(&mut self) {
        if self.held {
            let mut waiting = self.queue.lock();
            waiting.flushers = waiting.flushers.saturating_sub(1);
        }
    }
}

impl<T> BatchQueue<T> {
    pub fn new(most_waiting: usize, most_flushers: usize, alone_first: bool) -> BatchQueue<T> {
        BatchQueue {
            waiting: Mutex::new(Waiting {
                calls: Vec::new(),
                flushers: 0,
            }),
            most_waiting,
            most_flushers: most_flushers.max(1),
            alone_first,
        }
    }

    /// The place of a flusher `push` asked to start.
    pub(crate) fn slot(&self) -> FlusherSlot<'_, T> {
        FlusherSlot {
            queue: self,
            held: true,
        }
    }

    fn lock(&self) -> MutexGuard<'_, Waiting<T>> {
        self.waiting.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queues a call for a Page.
    pub fn push(&self, page_id: &str, call: T) -> Pushed<T> {
        let mut waiting = self.lock();
        if waiting.flushers < self.most_flushers {
            waiting.flushers += 1;
            if self.alone_first {
                return Pushed::StartFlusher(Some(call));
            }
            waiting.calls.push((page_id.to_string(), call));
            return Pushed::StartFlusher(None);
        }
        if waiting.calls.len() >= self.most_waiting {
            return Pushed::Refused(call);
        }
        waiting.calls.push((page_id.to_string(), call));
        Pushed::Queued
    }

    /// A flusher's next batch: the Page of the oldest call waiting and up
    /// to `BATCH_MAX` of its calls, oldest first. `None` when nothing
    /// waits, and the flusher asking stops (in the same lock as a `push`
    /// that would start another, so no call is left behind).
    pub(crate) fn next(&self) -> Option<(String, Vec<T>)> {
        let mut waiting = self.lock();
        let Some((page_id, _)) = waiting.calls.first() else {
            waiting.flushers = waiting.flushers.saturating_sub(1);
            return None;
        };
        let page_id = page_id.clone();
        let mut batch = Vec::new();
        let mut kept = Vec::with_capacity(waiting.calls.len());
        for (page, call) in waiting.calls.drain(..) {
            if page == page_id && batch.len() < BATCH_MAX {
                batch.push(call);
            } else {
                kept.push((page, call));
            }
        }
        waiting.calls = kept;
        Some((page_id, batch))
    }
}

impl<T: Send + 'static> BatchQueue<T> {
    /// Queues `call` for `page_id`, starting a flusher that hands each
    /// batch to `flush` (the Page and its calls) when one is to start.
    /// `Err` gives the call back when too many wait.
    pub fn submit<F, Fut>(self: &Arc<Self>, page_id: &str, call: T, flush: F) -> Result<(), T>
    where
        F: Fn(String, Vec<T>) -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send,
    {
        match self.push(page_id, call) {
            Pushed::StartFlusher(first) => {
                let queue = Arc::clone(self);
                let page_id = page_id.to_string();
                tokio::spawn(async move {
                    let mut slot = queue.slot();
                    if let Some(call) = first {
                        flush(page_id, vec![call]).await;
                    }
                    while let Some((page_id, calls)) = slot.next() {
                        flush(page_id, calls).await;
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
        let queue = BatchQueue::new(10_000, 4, false);
        for (page, call) in calls {
            queue.push(page, call.to_string());
        }
        queue.lock().flushers = 1;
        queue
    }

    #[test]
    fn a_flusher_that_ends_early_gives_its_place_back() {
        let queue = BatchQueue::new(10, 4, false);
        assert_eq!(queue.push("P", "U1"), Pushed::StartFlusher(None));
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
    fn a_few_flushers_start_and_past_the_most_waiting_a_call_is_given_back() {
        let (most, flushers) = (20, 3);
        let queue = BatchQueue::new(most, flushers, false);
        let pushed: Vec<Pushed<String>> = (0..flushers + 1)
            .map(|i| queue.push("P", format!("U{i}")))
            .collect();
        assert!(pushed[..flushers]
            .iter()
            .all(|p| *p == Pushed::StartFlusher(None)));
        assert_eq!(pushed[flushers], Pushed::Queued);
        for i in flushers + 1..most {
            queue.push("P", format!("U{i}"));
        }
        assert_eq!(
            queue.push("P", "late".into()),
            Pushed::Refused("late".into())
        );
        assert_eq!(queue.lock().calls.len(), most);
    }

    #[test]
    fn a_batch_holds_one_pages_calls_oldest_first_and_at_most_the_graphs_limit() {
        let mut calls = vec![("P", "U1"), ("Q", "V1"), ("P", "U2")];
        let many: Vec<String> = (0..BATCH_MAX + 5).map(|i| format!("W{i}")).collect();
        calls.extend(many.iter().map(|u| ("P", u.as_str())));
        let queue = queue(&calls);
        let (page, first) = queue.next().expect("a batch");
        assert_eq!(page, "P");
        assert_eq!(first.len(), BATCH_MAX);
        assert_eq!(&first[..3], ["U1", "U2", "W0"]);
        // The other Page's call is now the oldest.
        assert_eq!(queue.next(), Some(("Q".into(), vec!["V1".into()])));
        let (_, rest) = queue.next().expect("the rest of P's");
        assert_eq!(rest.len(), BATCH_MAX + 5 + 2 - BATCH_MAX);
        assert_eq!(queue.next(), None);
        assert_eq!(queue.lock().flushers, 0, "the flusher stopped");
    }

    /// Submits calls 0..4 to a queue with one flusher, whose sends wait
    /// for `release`; then call 4 while it is busy. The batches, in order.
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
}
