//! The 24-hour windows the committer opened from stored events (see
//! `NewInboxEvent::inbound_at`). A person writing several times a minute
//! would otherwise cost a conversation write with each event; within
//! `COARSE_MS` of the time last written for them, the stored event
//! changes nothing, and the exact time is written when it is processed.
//! Only committed batches are remembered; another instance's writes only
//! move the stored time later, so what is remembered never overstates it.
//!
//! On Postgres the intake committer writes no window: it hands them to the
//! main committer (`Arrivals`), which writes them with its own batch, so
//! storing an event takes no lock on a conversation row (the main
//! committer's results write the same rows, and now its windows with them,
//! in one key order).

use std::collections::HashMap;
use std::sync::Mutex;

/// How much later than the last time written an event must be to be
/// written again when stored.
pub(crate) const COARSE_MS: i64 = 10_000;

/// Most people remembered; past it, the memory starts over.
const MOST: usize = 100_000;

/// When each person (by Page, then PSID) was last written as having
/// written, by this committer.
#[derive(Default)]
pub(crate) struct Windows {
    people: HashMap<String, HashMap<String, i64>>,
    count: usize,
}

/// A window opened in a batch: Page, PSID and time.
pub(crate) type Opened = (String, String, i64);

/// The windows the intake committer's stored events open, waiting for the
/// main committer's next batch.
#[derive(Default)]
pub(crate) struct Arrivals(Mutex<Vec<Opened>>);

impl Arrivals {
    pub(crate) fn add(&self, waiting: Vec<Opened>) {
        if waiting.is_empty() {
            return;
        }
        let mut held = self.0.lock().unwrap_or_else(|e| e.into_inner());
        held.extend(waiting);
    }

    /// Everything added since the last take.
    pub(crate) fn take(&self) -> Vec<Opened> {
        std::mem::take(&mut *self.0.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

/// How a batch treats the windows its stored events open.
pub(crate) struct WindowPlan<'a> {
    /// What this committer already wrote.
    pub(crate) known: &'a Windows,
    /// Windows the intake committer handed over, to write with this batch.
    pub(crate) arrived: &'a [Opened],
    /// The intake's batch: hand the windows over rather than write them.
    pub(crate) hand_over: bool,
}

impl WindowPlan<'_> {
    /// A batch that writes its windows and has none handed over.
    pub(crate) fn writing(known: &Windows) -> WindowPlan<'_> {
        WindowPlan {
            known,
            arrived: &[],
            hand_over: false,
        }
    }
}

impl Windows {
    /// Whether an event of `at` should write the person's window.
    pub(crate) fn needs(&self, page_id: &str, psid: &str, at: i64) -> bool {
        let known = self.people.get(page_id).and_then(|p| p.get(psid));
        known.is_none_or(|&written| at > written + COARSE_MS)
    }

    /// Remembers the windows of a committed batch.
    pub(crate) fn record(&mut self, opened: Vec<Opened>) {
        if self.count + opened.len() > MOST {
            self.people.clear();
            self.count = 0;
        }
        for (page_id, psid, at) in opened {
            let page = self.people.entry(page_id).or_default();
            match page.get_mut(&psid) {
                Some(written) => *written = (*written).max(at),
                None => {
                    page.insert(psid, at);
                    self.count += 1;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_window_is_written_again_only_when_it_moves_by_more_than_the_coarseness() {
        let mut windows = Windows::default();
        assert!(windows.needs("P", "U", 1_000), "never written");
        windows.record(vec![("P".into(), "U".into(), 1_000)]);
        assert!(!windows.needs("P", "U", 1_000));
        assert!(!windows.needs("P", "U", 1_000 + COARSE_MS));
        assert!(windows.needs("P", "U", 1_001 + COARSE_MS));
        assert!(!windows.needs("P", "U", 500), "an older event");
        assert!(windows.needs("P", "V", 1_000), "another person");
        assert!(windows.needs("Q", "U", 1_000), "another Page");
        // A later record never moves a window back.
        windows.record(vec![("P".into(), "U".into(), 900)]);
        assert!(windows.needs("P", "U", 1_001 + COARSE_MS));
    }
}
