//! Group commit: one task owns the hot writes and commits everything that
//! arrived while the previous transaction was being flushed in one
//! transaction, so throughput is not capped at one fsync per request while
//! every caller still waits for its own write to be durable. On Postgres a
//! second such loop, the intake, stores new webhook events on a connection
//! of its own, so a webhook's answer never waits behind the claims and
//! results of a batch (measured: acknowledged events/s 2,700-3,000 to
//! 6,300-7,400, README Benchmarks); SQLite has one writer at a time.
//!
//! The committer's parts: `feed` hands claimed rows to the workers, `run`
//! is the commit loop on its own thread and connection, `flush` answers a
//! committed batch once it is on disk (on SQLite, a thread flushing the log
//! while the next batch is applied), `apply` turns a
//! batch of writes into each table's statements (built by the table modules,
//! which know nothing of the committer).

mod apply;
mod checkpoint;
mod feed;
mod flush;
mod run;
mod windows;

use anyhow::anyhow;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot};

use checkpoint::Cadence;

use super::conversations::ThreadChange;
use super::idempotency::Remember;
use super::inbox::{InboxRow, InboxUpdate, NewInboxEvent};
use super::outbox::{NewOutboxMessage, OutboxRow, OutboxTurn};
use super::pauses::PauseChange;
use super::sweeps::Sweep;
use super::{Store, StoreError};

pub use checkpoint::{CheckpointStats, CHECKPOINT_BACKSTOP};
pub use feed::{feed, Feed, FeedReceiver, Feeds, Paced};

/// A write the group committer performs.
#[derive(Debug)]
pub enum Write {
    /// Store webhook events; duplicates (same dedupe key) are skipped.
    InsertInbox(Vec<NewInboxEvent>),
    /// Record how a claimed inbox row ended, with the replies it queues.
    FinishInbox(Box<InboxUpdate>),
    /// Record how a send attempt ended.
    FinishOutbox(OutboxTurn),
    /// Claim due inbox rows (in the same transaction as the rest of the
    /// batch, so finished rows free their conversation's next one at once).
    ClaimInbox(Claim),
    /// Claim due outbox rows.
    ClaimOutbox(Claim),
    /// Queue or hold messages the outbound API accepted.
    Accept(Box<Acceptance>),
    /// Note when an API key was last used.
    ApiKeyUsed { id: i64, at: i64 },
    /// One of the sweeper's clean-ups, as of `now`; the rows it touched.
    Sweep { sweep: Sweep, now: i64 },
    /// Pause or resume a Page's sends (small writes that should not queue
    /// for SQLite's write lock outside the committer).
    Pause(PauseChange),
    /// A conversation's thread changing hands (conversation routing).
    Thread(ThreadChange),
    /// The intake committer stored new events (Postgres): claim them for
    /// the inbox worker. Writes nothing itself.
    Arrived,
    /// Writes nothing; answered once every write committed before it is on
    /// disk and every row claimed before it handed over (see `flush`).
    Barrier,
}

/// Messages the outbound API accepted, committed together with the answer
/// their `Idempotency-Key` replays. When the key turns out to be taken (a
/// concurrent request with the same key won), nothing is stored and the
/// write reports 0 rows.
#[derive(Debug, Clone)]
pub struct Acceptance {
    pub messages: Vec<NewOutboxMessage>,
    pub remember: Option<Remember>,
}

/// Which rows a claim may take: due at `now`, leased until `lease_until`.
#[derive(Debug, Clone, Copy)]
pub struct Claim {
    pub now: i64,
    pub lease_until: i64,
    pub limit: i64,
}

/// What a write produced.
#[derive(Debug)]
pub enum WriteOutput {
    /// Rows inserted (`InsertInbox`) or 1.
    Rows(u64),
    Inbox(Vec<InboxRow>),
    Outbox(Vec<OutboxRow>),
}

struct Job {
    write: Arc<Write>,
    done: oneshot::Sender<anyhow::Result<WriteOutput>>,
}

/// A lease longer than any processing or send should take; past it, a row
/// is presumed abandoned by a stopped instance and claimed again.
pub const LEASE_MS: i64 = 120_000;

/// Handle to the group-commit task; cheap to clone.
#[derive(Clone)]
pub struct Writer {
    jobs: mpsc::Sender<Job>,
    /// On Postgres, new webhook events go to a committer of their own (see
    /// `start`).
    intake: Option<mpsc::Sender<Job>>,
    stats: Arc<CommitStats>,
    /// On SQLite, the checkpoints made off the committer's thread.
    checkpoints: Option<Arc<CheckpointStats>>,
}

/// The committer's committed transactions, for `/metrics` (the slowest,
/// since start, shows what a stalled disk flush cost).
#[derive(Default, Debug)]
pub struct CommitStats {
    pub commits: AtomicU64,
    pub micros: AtomicU64,
    pub slowest_micros: AtomicU64,
    /// SQLite: flushes of the log after which committed batches were
    /// answered (see `flush`; none on Postgres, whose commits flush).
    pub log_flushes: AtomicU64,
    /// SQLite: a flush of the log failed, and every write since is refused
    /// until a restart (see `flush`); `/readyz` says so.
    pub log_flush_failed: AtomicBool,
    /// SQLite: how many of the committer's batches (counted in the order
    /// they were committed) are known to be on disk (see `flush`).
    pub log_flushed_batches: AtomicU64,
}

impl CommitStats {
    fn record(&self, took: std::time::Duration) {
        let micros = took.as_micros() as u64;
        self.commits.fetch_add(1, Ordering::Relaxed);
        self.micros.fetch_add(micros, Ordering::Relaxed);
        self.slowest_micros.fetch_max(micros, Ordering::Relaxed);
    }
}

impl Writer {
    /// Starts the committer (on Postgres also the intake committer, which
    /// stores new webhook events) on threads of their own. It stops when every
    /// `Writer` handle is dropped, after finishing what it was given. Rows
    /// it claims on Postgres name `holder` (this instance, see
    /// `store::instances`).
    pub fn start(store: Store, feeds: Feeds, holder: String) -> Writer {
        let (jobs, rx) = mpsc::channel(4096);
        let stats = Arc::new(CommitStats::default());
        // On Postgres, storing new events (what a webhook's answer waits for)
        // does not queue behind the claims and results of the same batch:
        // an intake committer on a connection of its own stores them, and
        // tells the main one to claim them. SQLite has one writer at a time.
        let (intake, arrivals) = match store {
            Store::Postgres(_) => {
                let (intake, intake_rx) = mpsc::channel(4096);
                let arrivals = Arc::new(windows::Arrivals::default());
                let nudge = flush::Nudge {
                    jobs: jobs.clone(),
                    arrivals: Arc::clone(&arrivals),
                };
                let store = store.clone();
                let recorder = Arc::clone(&stats);
                spawn_committer("lexbridge-intake", move || {
                    run::run(
                        store,
                        Feeds::default(),
                        // It claims nothing, so its rows name no holder.
                        String::new(),
                        intake_rx,
                        recorder,
                        run::Role::Intake(nudge),
                        None,
                    )
                });
                (Some(intake), Some(arrivals))
            }
            Store::Sqlite { .. } => (None, None),
        };
        let checkpoints = match &store {
            Store::Sqlite { writer, .. } => {
                let checkpoints = Arc::new(CheckpointStats::default());
                let path = writer.connect_options().get_filename().to_path_buf();
                let commits = Arc::clone(&stats);
                checkpoint::start(path, Cadence::default(), Arc::clone(&checkpoints), commits);
                Some(checkpoints)
            }
            Store::Postgres(_) => None,
        };
        let recorder = Arc::clone(&stats);
        let committed = checkpoints.clone();
        spawn_committer("lexbridge-writer", move || {
            run::run(
                store,
                feeds,
                holder,
                rx,
                recorder,
                run::Role::Main(arrivals),
                committed,
            )
        });
        Writer {
            jobs,
            intake,
            stats,
            checkpoints,
        }
    }

    pub fn stats(&self) -> &CommitStats {
        &self.stats
    }

    /// SQLite's checkpoints (none on Postgres).
    pub fn checkpoints(&self) -> Option<&CheckpointStats> {
        self.checkpoints.as_deref()
    }

    async fn submit(&self, write: impl Into<Arc<Write>>) -> Result<WriteOutput, StoreError> {
        let (done, answer) = oneshot::channel();
        let write = write.into();
        let unavailable = |why: &str| StoreError::Unavailable(anyhow!("{why}"));
        let jobs = match (&self.intake, &*write) {
            (Some(intake), Write::InsertInbox(_)) => intake,
            _ => &self.jobs,
        };
        jobs.send(Job { write, done })
            .await
            .map_err(|_| unavailable("the database writer has stopped"))?;
        answer
            .await
            .map_err(|_| unavailable("the database writer dropped a write"))?
            .map_err(StoreError::classify)
    }

    /// Performs `write` durably; returns the rows it inserted, or 1. A
    /// write given as an `Arc` can be submitted again (a retry) uncopied.
    pub async fn write(&self, write: impl Into<Arc<Write>>) -> Result<u64, StoreError> {
        match self.submit(write).await? {
            WriteOutput::Rows(n) => Ok(n),
            WriteOutput::Inbox(rows) => Ok(rows.len() as u64),
            WriteOutput::Outbox(rows) => Ok(rows.len() as u64),
        }
    }

    /// Returns once every write committed before it is on disk and every
    /// row claimed for a worker before it handed over: before something
    /// read outside the committer (an earlier request's remembered answer)
    /// is repeated to a caller, or before a stopping worker's last look at
    /// its feed.
    pub async fn barrier(&self) -> Result<(), StoreError> {
        self.submit(Write::Barrier).await.map(|_| ())
    }

    /// Claims due inbox rows: at most the oldest open row per conversation.
    pub async fn claim_inbox(&self, claim: Claim) -> Result<Vec<InboxRow>, StoreError> {
        match self.submit(Write::ClaimInbox(claim)).await? {
            WriteOutput::Inbox(rows) => Ok(rows),
            other => Err(StoreError::Unavailable(anyhow!(
                "unexpected claim result {other:?}"
            ))),
        }
    }

    /// Claims due outbox rows: at most the oldest open message per recipient.
    pub async fn claim_outbox(&self, claim: Claim) -> Result<Vec<OutboxRow>, StoreError> {
        match self.submit(Write::ClaimOutbox(claim)).await? {
            WriteOutput::Outbox(rows) => Ok(rows),
            other => Err(StoreError::Unavailable(anyhow!(
                "unexpected claim result {other:?}"
            ))),
        }
    }
}

/// Runs a committer on a thread of its own: its many short waits on the
/// database must not queue behind request handling and worker tasks.
fn spawn_committer<F, Fut>(name: &str, committer: F)
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()>,
{
    let spawned = std::thread::Builder::new()
        .name(name.into())
        .spawn(move || {
            match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(runtime) => runtime.block_on(committer()),
                Err(e) => tracing::error!(error = %e, "the database writer cannot start"),
            }
        });
    if let Err(e) = spawned {
        tracing::error!(error = %e, "the database writer thread cannot start");
    }
}
