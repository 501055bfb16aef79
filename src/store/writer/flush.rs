//! Answers of committed batches, given once they are on disk.
//!
//! On SQLite the committer commits without waiting for the disk
//! (`synchronous = NORMAL`: the write-ahead log is written, not flushed) and
//! goes on with the next batch, while this thread flushes the log
//! (`fdatasync`) and only then answers the batch's writes. So no caller is
//! told a write is stored before it is on disk, yet the committer's thread
//! no longer sits out every flush (about half its time under load).
//! A crash of the machine loses at most commits nobody was answered for:
//! SQLite recovers the log up to its last whole, checksummed commit. On
//! Postgres a commit is on disk when it returns, and answers go at once.
//!
//! The inbox rows a batch claims on the worker's behalf go at commit, not
//! after the flush (see `Answers::send`): the worker's NLU turn runs while
//! the log is flushed. What the worker does at once is no reply: the NLU
//! turn (Lex, a fulfillment hook), `mark_seen` and `typing_on`, and the
//! linking writes, whose own flushed commits (the pool's `synchronous =
//! FULL`) cover the event as well. So those may happen for an event not
//! yet on disk and not yet acknowledged: should the machine crash before
//! the flush, Meta redelivers the event and it is processed again (a second
//! NLU turn, a second `mark_seen`).
//!
//! The outbox rows a batch claims on the outbox worker's behalf go once
//! every batch this process committed before it is on disk, not waiting for
//! the flush of their own: at commit if that is so already, else as soon as
//! the flush under way ends (`Outlets::outbox_early`). A reply is committed
//! behind the event it answers, so it never leaves for an event that is not
//! on disk. What it may leave ahead of is its own batch: should the machine
//! (not the process: the log written is in the kernel's hands) crash before
//! that batch is flushed, what it recorded is lost, the event is processed
//! again after the restart, and the rows the batch claimed may be sent a
//! second time, as a send in flight at a crash already could be, its
//! outcome lost. Two kinds of row always wait for their batch's flush:
//! messages the outbound API accepted (`origin = 'api'`), whose caller may
//! have no answer yet (`lexbridge send` commits them through a committer
//! of its own, which this process's count of batches knows nothing of),
//! and every row of the first batch after a start, which may be claiming
//! what the process before left unflushed.

use std::fs::File;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc as std_mpsc, Arc};

use anyhow::anyhow;
use tokio::sync::{mpsc, oneshot};

use super::feed::{give_back, hand_over};
use super::windows::{Arrivals, Opened};
use super::{CommitStats, Feeds, Job, Write, WriteOutput};
use crate::store::inbox::InboxRow;
use crate::store::outbox::OutboxRow;

/// What one committed batch (or a write redone alone) answers.
#[derive(Default)]
pub(super) struct Answer {
    pub(super) jobs: Vec<(
        oneshot::Sender<anyhow::Result<WriteOutput>>,
        anyhow::Result<WriteOutput>,
    )>,
    /// Rows claimed for the workers; their budget is already taken.
    pub(super) inbox: Vec<InboxRow>,
    pub(super) outbox: Vec<OutboxRow>,
    /// New webhook events were stored (the intake tells the committer).
    pub(super) stored: bool,
    /// The windows they open, for the main committer to write (the
    /// intake's).
    pub(super) windows: Vec<Opened>,
    /// Its place in the order of commits, from 1 (`Answers::send` sets it).
    pub(super) batch: u64,
}

/// Where answers go: the workers' feeds and, for the intake, the main
/// committer.
#[derive(Clone)]
pub(super) struct Outlets {
    feeds: Feeds,
    nudge: Option<Nudge>,
}

/// The intake's way to the main committer: the windows its events open,
/// and a job that wakes it.
#[derive(Clone)]
pub(super) struct Nudge {
    pub(super) jobs: mpsc::Sender<Job>,
    pub(super) arrivals: Arc<Arrivals>,
}

impl Outlets {
    pub(super) fn new(feeds: &Feeds, nudge: Option<Nudge>) -> Outlets {
        Outlets {
            feeds: feeds.clone(),
            nudge,
        }
    }

    /// Answers every write of `answer` and hands its rows over.
    pub(super) fn deliver(&self, answer: Answer) {
        hand_over(&self.feeds.inbox, answer.inbox);
        hand_over(&self.feeds.outbox, answer.outbox);
        // The windows before any answer: a write submitted to the main
        // committer once a webhook is answered goes with them (or after).
        if let Some(nudge) = &self.nudge {
            nudge.arrivals.add(answer.windows);
        }
        for (done, result) in answer.jobs {
            let _ = done.send(result);
        }
        if let (Some(nudge), true) = (&self.nudge, answer.stored) {
            tell_stored(&nudge.jobs);
        }
    }

    /// The log holding `answer` could not be flushed: its writes are
    /// committed but perhaps not on disk, so each caller gets the error (a
    /// webhook answers 500 and Meta redelivers), and its rows stay with
    /// their lease, to be claimed again once it runs out; the workers get
    /// their room back.
    fn refuse(&self, answer: Answer, why: &io::Error) {
        let feeds = &self.feeds;
        give_back(&feeds.inbox, answer.inbox.len());
        give_back(&feeds.outbox, answer.outbox.len());
        for (done, result) in answer.jobs {
            // A worker's own claim was charged too.
            match result {
                Ok(WriteOutput::Inbox(rows)) => give_back(&feeds.inbox, rows.len()),
                Ok(WriteOutput::Outbox(rows)) => give_back(&feeds.outbox, rows.len()),
                _ => {}
            }
            let _ = done.send(Err(anyhow!(
                "the database log could not be flushed to disk: {why}"
            )));
        }
    }
}

/// Asks the main committer to claim the events the intake just stored
/// (`Write::Arrived`). When its queue is full the ask is dropped: those
/// events then wait for the next finish or arrival that claims, or at the
/// latest for the inbox worker's own poll.
fn tell_stored(nudge: &mpsc::Sender<Job>) {
    let (done, _) = oneshot::channel();
    let _ = nudge.try_send(Job {
        write: Arc::new(Write::Arrived),
        done,
    });
}

/// The committer's side: answers at once, or after the flusher's next
/// flush.
pub(super) enum Answers {
    Now(Outlets),
    AfterFlush {
        flusher: std_mpsc::Sender<Answer>,
        outlets: Outlets,
        stats: Arc<CommitStats>,
        /// Batches committed so far.
        committed: AtomicU64,
    },
}

impl Answers {
    pub(super) fn send(&self, mut answer: Answer) {
        match self {
            Answers::Now(outlets) => outlets.deliver(answer),
            Answers::AfterFlush {
                flusher,
                outlets,
                stats,
                committed,
            } => {
                answer.batch = committed.fetch_add(1, Ordering::Relaxed) + 1;
                // The inbox worker starts on its rows at once, and the
                // outbox worker on its rows once every earlier batch is on
                // disk (see the module's documentation), unless a flush
                // has already failed: then every write is refused, its
                // results included, and the rows wait out their lease
                // (`Outlets::refuse`). Rows of batches committed while the
                // failing flush ran are handed over; their results are
                // refused all the same.
                if !stats.log_flush_failed.load(Ordering::Acquire) {
                    hand_over(&outlets.feeds.inbox, std::mem::take(&mut answer.inbox));
                    outlets.outbox_early(&mut answer, stats);
                }
                if let Err(std_mpsc::SendError(answer)) = flusher.send(answer) {
                    // The flusher is gone (it could not start): nothing
                    // can say these writes reached the disk.
                    outlets.refuse(answer, &io::Error::other("the log flusher has stopped"));
                }
            }
        }
    }
}

impl Outlets {
    /// Hands over `answer`'s outbox rows that may go before its flush (all
    /// but API messages, see the module's documentation), if every batch
    /// committed before it, and at least the first, is on disk. Its callers
    /// have made sure no flush has failed.
    fn outbox_early(&self, answer: &mut Answer, stats: &CommitStats) {
        let before = answer.batch.saturating_sub(1).max(1);
        if answer.outbox.is_empty() || stats.log_flushed_batches.load(Ordering::Acquire) < before {
            return;
        }
        let (early, later) = std::mem::take(&mut answer.outbox)
            .into_iter()
            .partition(|row| row.origin != "api");
        answer.outbox = later;
        hand_over(&self.feeds.outbox, early);
    }
}

/// Starts the flusher of the SQLite database at `database` (its log is
/// beside it: `-wal` after the path with its links resolved, as SQLite
/// resolves them) on a thread of its own.
pub(super) fn start(database: &Path, outlets: Outlets, stats: Arc<CommitStats>) -> Answers {
    let (tx, rx) = std_mpsc::channel();
    let theirs = outlets.clone();
    let wal = wal_path(database);
    let flusher_stats = Arc::clone(&stats);
    let spawned = std::thread::Builder::new()
        .name("lexbridge-flush".into())
        .spawn(move || {
            let mut log = WalFile::new(wal);
            flush_loop(&rx, &theirs, &flusher_stats, || log.sync());
        });
    if let Err(e) = spawned {
        tracing::error!(error = %e, "the log flusher thread cannot start");
        // Nothing can flush: every write is refused (`Answers::send`).
        stats.log_flush_failed.store(true, Ordering::Release);
    }
    Answers::AfterFlush {
        flusher: tx,
        outlets,
        stats,
        committed: AtomicU64::new(0),
    }
}

/// Where SQLite keeps the log of the database at `database`: beside the
/// file its path leads to, once every link on the way is followed.
fn wal_path(database: &Path) -> PathBuf {
    let real = std::fs::canonicalize(database).unwrap_or_else(|_| database.to_path_buf());
    let mut wal = real.into_os_string();
    wal.push("-wal");
    wal.into()
}

/// Until the committer stops: takes every answer waiting, hands over the
/// outbox rows that need only the batches already flushed, flushes once,
/// then answers them all in the order they were committed (one flush
/// covers every commit written before it). A failed flush is final: the
/// kernel may have dropped the pages it could not write and a later flush
/// would succeed without them, so from then on every write is refused
/// (each caller gets the error) until the service is restarted and SQLite
/// recovers the log up to its last whole commit.
fn flush_loop(
    rx: &std_mpsc::Receiver<Answer>,
    outlets: &Outlets,
    stats: &CommitStats,
    mut sync: impl FnMut() -> io::Result<()>,
) {
    let mut failed: Option<io::Error> = None;
    while let Ok(first) = rx.recv() {
        let mut waiting = vec![first];
        waiting.extend(rx.try_iter());
        if failed.is_none() {
            // Committed while the last flush ran: the first may need only
            // what it covered.
            if let Some(first) = waiting.first_mut() {
                outlets.outbox_early(first, stats);
            }
            match sync() {
                Ok(()) => {
                    stats.log_flushes.fetch_add(1, Ordering::Relaxed);
                    let last = waiting.last().map_or(0, |a| a.batch);
                    stats.log_flushed_batches.fetch_max(last, Ordering::AcqRel);
                }
                Err(e) => {
                    tracing::error!(
                        error = %e,
                        "the database log could not be flushed to disk: every write is refused \
                         from now on; restart the service"
                    );
                    stats.log_flush_failed.store(true, Ordering::Release);
                    failed = Some(e);
                }
            }
        }
        match &failed {
            None => waiting.into_iter().for_each(|a| outlets.deliver(a)),
            Some(e) => waiting.into_iter().for_each(|a| outlets.refuse(a, e)),
        }
    }
}

/// The write-ahead log, opened once and again whenever the file at its
/// path is another one (the last connection closing removes it, the next
/// creates it): a flush through a stale descriptor would flush nothing.
struct WalFile {
    path: PathBuf,
    open: Option<(File, u64)>,
}

impl WalFile {
    fn new(path: PathBuf) -> WalFile {
        WalFile { path, open: None }
    }

    fn sync(&mut self) -> io::Result<()> {
        let current = std::fs::metadata(&self.path)?.ino();
        if !matches!(&self.open, Some((_, ino)) if *ino == current) {
            // Never created here: the committer's connection made it.
            let file = File::options().write(true).open(&self.path)?;
            let ino = file.metadata()?.ino();
            self.open = Some((file, ino));
        }
        match &self.open {
            Some((file, _)) => file.sync_data(),
            None => Err(io::Error::other("the log is not open")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::writer::{feed, FeedReceiver};

    fn answer(inbox_rows: usize) -> (Answer, oneshot::Receiver<anyhow::Result<WriteOutput>>) {
        let (done, answered) = oneshot::channel();
        let row = |id| InboxRow {
            id,
            object: "page".into(),
            page_id: "P".into(),
            psid: "U".into(),
            kind: "message".into(),
            thread: crate::store::inbox::ThreadOwner::ThisApp,
            event: "{}".into(),
            attempts: 0,
            since: 0,
            dedupe_key: format!("m.{id}"),
            context: Default::default(),
        };
        let answer = Answer {
            jobs: vec![(done, Ok(WriteOutput::Rows(1)))],
            inbox: (0..inbox_rows as i64).map(row).collect(),
            outbox: Vec::new(),
            stored: true,
            windows: Vec::new(),
            batch: 0,
        };
        (answer, answered)
    }

    fn reply(id: i64) -> OutboxRow {
        row(id, "reply")
    }

    fn row(id: i64, origin: &str) -> OutboxRow {
        OutboxRow {
            id,
            page_id: "P".into(),
            psid: "U".into(),
            body: "{}".into(),
            messaging_type: "RESPONSE".into(),
            tag: None,
            attempts: 0,
            origin: origin.into(),
            since: 0,
            created_at: 0,
            window: None,
            last_error: None,
            lease_until: 0,
        }
    }

    /// The committer's side of a flusher that has not run yet: what it
    /// was given waits in the receiver.
    fn after_flush(
        feeds: &Feeds,
        stats: Arc<CommitStats>,
    ) -> (Answers, std_mpsc::Receiver<Answer>) {
        let (flusher, waiting) = std_mpsc::channel();
        let outlets = Outlets::new(feeds, None);
        let answers = Answers::AfterFlush {
            flusher,
            outlets,
            stats,
            committed: AtomicU64::new(0),
        };
        (answers, waiting)
    }

    /// The rule: nobody hears a write is stored, and the inbox worker gets
    /// no row the flusher holds (the rows a batch claims for it never reach
    /// the flusher, see the next test), before the log holding it is
    /// flushed.
    #[test]
    fn no_write_is_answered_before_the_log_is_flushed() {
        let (inbox, mut inbox_rx) = feed::<InboxRow>(8, 1);
        let feeds = Feeds {
            inbox: Some(inbox),
            ..Feeds::default()
        };
        let outlets = Outlets::new(&feeds, None);
        let (tx, rx) = std_mpsc::channel();
        let (entered_tx, entered) = std_mpsc::channel();
        let (release, released) = std_mpsc::channel::<()>();
        let flusher = std::thread::spawn(move || {
            flush_loop(&rx, &outlets, &CommitStats::default(), || {
                entered_tx.send(()).unwrap();
                released.recv().unwrap();
                Ok(())
            })
        });
        let (first, mut answered) = answer(2);
        tx.send(first).unwrap();
        entered.recv().unwrap();
        // The flush is under way: nothing answered, nothing handed over.
        assert!(answered.try_recv().is_err(), "answered before the flush");
        assert!(inbox_rx.rows.try_recv().is_err(), "rows before the flush");
        release.send(()).unwrap();
        drop(tx);
        flusher.join().unwrap();
        assert!(matches!(answered.try_recv(), Ok(Ok(WriteOutput::Rows(1)))));
        assert_eq!(inbox_rx.rows.try_recv().unwrap().len(), 2);
    }

    /// The rule's first exception: the inbox worker gets the rows claimed
    /// for it at commit (its NLU turn overlaps the flush); the batch's
    /// writes are answered only by the flusher, and so are the outbox rows
    /// of the first batch after a start (which may claim what the process
    /// before left unflushed).
    #[test]
    fn inbox_rows_go_at_commit_and_answers_wait_for_the_flush() {
        let (inbox, mut inbox_rx) = feed::<InboxRow>(8, 1);
        let (outbox, mut outbox_rx) = feed::<OutboxRow>(8, 1);
        let feeds = Feeds {
            inbox: Some(inbox),
            outbox: Some(outbox),
            ..Feeds::default()
        };
        let (answers, rx) = after_flush(&feeds, Arc::new(CommitStats::default()));
        let (mut batch, mut answered) = answer(2);
        batch.outbox.push(reply(7));
        answers.send(batch);
        assert_eq!(inbox_rx.rows.try_recv().expect("rows at commit").len(), 2);
        assert!(answered.try_recv().is_err(), "answered before the flush");
        assert!(
            outbox_rx.rows.try_recv().is_err(),
            "a row of the first batch before the flush"
        );
        let waiting = rx.try_recv().expect("the answer waits for the flusher");
        assert_eq!(waiting.jobs.len(), 1);
        assert_eq!(waiting.outbox.len(), 1, "the row waits for the flusher");
        assert!(waiting.inbox.is_empty(), "the rows would go twice");
    }

    /// A feed for the outbox worker alone, and the committer's counts.
    fn outbox_only() -> (Feeds, FeedReceiver<OutboxRow>, Arc<CommitStats>) {
        let (outbox, outbox_rx) = feed::<OutboxRow>(8, 1);
        let feeds = Feeds {
            outbox: Some(outbox),
            ..Feeds::default()
        };
        (feeds, outbox_rx, Arc::new(CommitStats::default()))
    }

    /// The second: a batch's outbox rows go at commit once every batch
    /// before it is on disk (the event a reply answers among them), without
    /// waiting for the flush of their own; messages the outbound API
    /// accepted wait for it all the same.
    #[test]
    fn a_reply_goes_at_commit_once_every_earlier_batch_is_on_disk() {
        let (feeds, mut outbox_rx, stats) = outbox_only();
        let (answers, rx) = after_flush(&feeds, Arc::clone(&stats));
        let with = |rows: Vec<OutboxRow>| {
            let (mut batch, _) = answer(0);
            batch.outbox = rows;
            batch
        };
        answers.send(with(Vec::new()));
        answers.send(with(vec![reply(1)]));
        assert!(
            outbox_rx.rows.try_recv().is_err(),
            "before batch 1 is on disk"
        );
        // The flusher is through batch 1 of 2: the third batch waits.
        stats.log_flushed_batches.store(1, Ordering::Release);
        answers.send(with(vec![reply(2)]));
        assert!(
            outbox_rx.rows.try_recv().is_err(),
            "before batch 2 is on disk"
        );
        // Through batch 3: the fourth batch's reply goes at commit, its API
        // message with the flusher.
        stats.log_flushed_batches.store(3, Ordering::Release);
        answers.send(with(vec![row(3, "api"), reply(4), row(5, "apology")]));
        let early: Vec<i64> = outbox_rx
            .rows
            .try_recv()
            .expect("at commit")
            .iter()
            .map(|r| r.id)
            .collect();
        assert_eq!(early, [4, 5]);
        let waiting: Vec<Vec<i64>> = rx
            .try_iter()
            .map(|a| a.outbox.iter().map(|r| r.id).collect())
            .collect();
        assert_eq!(waiting, [vec![], vec![1], vec![2], vec![3]]);
    }

    /// Rows committed while a flush ran go as it ends, before the next one
    /// (which covers their own batch) starts.
    #[test]
    fn a_reply_committed_during_a_flush_goes_as_that_flush_ends() {
        let (feeds, mut outbox_rx, stats) = outbox_only();
        let (answers, rx) = after_flush(&feeds, Arc::clone(&stats));
        let (first, _) = answer(0);
        answers.send(first);
        // The event, committed but not flushed: the reply behind it waits.
        let (event, mut event_answered) = answer(1);
        answers.send(event);
        let (mut second, mut second_answered) = answer(0);
        second.outbox.push(reply(2));
        let (entered_tx, entered) = std_mpsc::channel();
        let (release, released) = std_mpsc::channel::<()>();
        let outlets = Outlets::new(&feeds, None);
        let flusher_stats = Arc::clone(&stats);
        let flusher = std::thread::spawn(move || {
            flush_loop(&rx, &outlets, &flusher_stats, || {
                entered_tx.send(()).unwrap();
                released.recv().unwrap();
                Ok(())
            })
        });
        // The flush of the first two batches is under way.
        entered.recv().unwrap();
        answers.send(second);
        assert!(
            outbox_rx.rows.try_recv().is_err(),
            "a reply before its event is on disk"
        );
        release.send(()).unwrap();
        // That flush ended: the reply goes before its own batch's flush.
        entered.recv().unwrap();
        assert!(matches!(event_answered.try_recv(), Ok(Ok(_))));
        let early = outbox_rx.rows.try_recv().expect("after the event's flush");
        assert_eq!(early[0].id, 2);
        assert!(
            second_answered.try_recv().is_err(),
            "answered before its flush"
        );
        release.send(()).unwrap();
        drop(answers);
        flusher.join().unwrap();
        assert!(matches!(second_answered.try_recv(), Ok(Ok(_))));
        assert_eq!(stats.log_flushed_batches.load(Ordering::Acquire), 3);
        assert!(
            outbox_rx.rows.try_recv().is_err(),
            "a reply handed over twice"
        );
    }

    /// Once a flush has failed, the rows' results would be refused: the
    /// rows are not handed over to be processed or sent for nothing.
    #[test]
    fn after_a_failed_flush_no_row_goes_at_commit() {
        let (inbox, mut inbox_rx) = feed::<InboxRow>(8, 1);
        let (outbox, mut outbox_rx) = feed::<OutboxRow>(8, 1);
        inbox_rx.budget.fetch_sub(2, Ordering::AcqRel);
        outbox_rx.budget.fetch_sub(1, Ordering::AcqRel);
        let feeds = Feeds {
            inbox: Some(inbox),
            outbox: Some(outbox),
            ..Feeds::default()
        };
        let stats = Arc::new(CommitStats::default());
        stats.log_flush_failed.store(true, Ordering::Release);
        // Flushed through the batch before, but since then a flush failed.
        stats.log_flushed_batches.store(1, Ordering::Release);
        let (answers, rx) = after_flush(&feeds, Arc::clone(&stats));
        answers.send(answer(0).0);
        let (mut batch, mut answered) = answer(2);
        batch.outbox.push(reply(1));
        answers.send(batch);
        drop(answers);
        assert!(inbox_rx.rows.try_recv().is_err(), "rows at commit");
        assert!(outbox_rx.rows.try_recv().is_err(), "a reply at commit");
        // The flusher refuses the batch and gives the room back.
        let outlets = Outlets::new(&feeds, None);
        flush_loop(&rx, &outlets, &stats, || Err(io::Error::other("disk gone")));
        assert!(answered.try_recv().expect("answered").is_err());
        assert!(inbox_rx.rows.try_recv().is_err(), "rows after the flush");
        assert!(
            outbox_rx.rows.try_recv().is_err(),
            "a reply after the flush"
        );
        assert_eq!(inbox_rx.budget.load(Ordering::Acquire), 8);
        assert_eq!(outbox_rx.budget.load(Ordering::Acquire), 8);
    }

    #[test]
    fn a_failed_flush_answers_an_error_and_gives_the_workers_their_room_back() {
        let (inbox, mut inbox_rx) = feed::<InboxRow>(8, 1);
        // The committer took the budget for the 3 rows it claimed.
        inbox_rx.budget.fetch_sub(3, Ordering::AcqRel);
        let feeds = Feeds {
            inbox: Some(inbox),
            ..Feeds::default()
        };
        let outlets = Outlets::new(&feeds, None);
        let (tx, rx) = std_mpsc::channel();
        let (refused, mut answered) = answer(3);
        tx.send(refused).unwrap();
        // A worker's own claim of 2 rows, charged when it was committed.
        inbox_rx.budget.fetch_sub(2, Ordering::AcqRel);
        let (own, mut own_answered) = answer(0);
        let (claimed, _) = answer(2);
        let own = Answer {
            jobs: vec![(
                own.jobs.into_iter().next().unwrap().0,
                Ok(WriteOutput::Inbox(claimed.inbox)),
            )],
            ..own
        };
        tx.send(own).unwrap();
        drop(tx);
        let mut flushes = 0;
        let stats = CommitStats::default();
        flush_loop(&rx, &outlets, &stats, || {
            flushes += 1;
            Err(io::Error::other("disk gone"))
        });
        assert!(
            stats.log_flush_failed.load(Ordering::Acquire),
            "told /readyz"
        );
        assert_eq!(stats.log_flushes.load(Ordering::Acquire), 0);
        let result = answered.try_recv().expect("answered");
        let error = result.expect_err("a failed flush is an error").to_string();
        assert!(error.contains("disk gone"), "{error}");
        assert!(own_answered.try_recv().expect("answered").is_err());
        assert!(inbox_rx.rows.try_recv().is_err(), "rows handed over");
        assert_eq!(inbox_rx.budget.load(Ordering::Acquire), 8);
        assert_eq!(flushes, 1);
    }

    /// After a failed flush a later one may succeed without the pages the
    /// first could not write: no write is answered as stored again.
    #[test]
    fn after_a_failed_flush_every_later_write_is_refused_without_flushing_again() {
        let feeds = Feeds::default();
        let outlets = Outlets::new(&feeds, None);
        let (tx, rx) = std_mpsc::channel();
        let (go, gone) = std_mpsc::channel::<()>();
        let (first, mut first_answered) = answer(0);
        tx.send(first).unwrap();
        let flusher = std::thread::spawn(move || {
            let mut calls = 0;
            flush_loop(&rx, &outlets, &CommitStats::default(), || {
                calls += 1;
                go.send(()).unwrap();
                match calls {
                    1 => Err(io::Error::other("I/O error")),
                    _ => Ok(()),
                }
            });
            calls
        });
        gone.recv().unwrap();
        let (later, mut later_answered) = answer(0);
        tx.send(later).unwrap();
        drop(tx);
        assert_eq!(flusher.join().unwrap(), 1, "flushed again after a failure");
        assert!(first_answered.try_recv().unwrap().is_err());
        let later = later_answered.try_recv().expect("answered");
        assert!(later
            .expect_err("refused")
            .to_string()
            .contains("I/O error"));
    }

    /// SQLite keeps the log beside the file a linked path leads to; the
    /// flusher flushes that one.
    #[test]
    fn the_log_flushed_is_the_one_sqlite_writes_beside_a_linked_database() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("volume")).unwrap();
        let real = dir.path().join("volume/app.db");
        let link = dir.path().join("app.db");
        std::os::unix::fs::symlink(&real, &link).unwrap();
        let conn = rusqlite::Connection::open(&real).unwrap();
        drop(conn);
        let conn = rusqlite::Connection::open(&link).unwrap();
        conn.execute_batch(
            "PRAGMA journal_mode = WAL; CREATE TABLE t (x); INSERT INTO t VALUES (1);",
        )
        .unwrap();
        let wal = wal_path(&link);
        assert!(wal.exists(), "{wal:?} is not SQLite's log");
        assert_eq!(
            wal,
            dir.path().canonicalize().unwrap().join("volume/app.db-wal")
        );
        assert!(WalFile::new(wal).sync().is_ok());
        drop(conn);
    }

    #[test]
    fn the_log_is_reopened_when_the_file_at_its_path_is_another() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db-wal");
        std::fs::write(&path, b"first").unwrap();
        let mut log = WalFile::new(path.clone());
        log.sync().unwrap();
        let first = log.open.as_ref().unwrap().1;
        // Another file takes its path (the first stays open here, so its
        // inode number is not reused).
        let other = dir.path().join("other");
        std::fs::write(&other, b"second").unwrap();
        std::fs::rename(&other, &path).unwrap();
        log.sync().unwrap();
        let second = log.open.as_ref().unwrap().1;
        assert_ne!(first, second);
        assert_eq!(second, std::fs::metadata(&path).unwrap().ino());
        // A log that is gone is an error, never a file made here.
        std::fs::remove_file(&path).unwrap();
        assert!(log.sync().is_err());
        assert!(!path.exists());
    }
}
