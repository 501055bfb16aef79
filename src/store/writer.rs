//! Group commit: one task owns the hot writes and commits everything that
//! arrived while the previous transaction was being flushed in one
//! transaction, so throughput is not capped at one fsync per request while
//! every caller still waits for its own write to be durable.

use anyhow::{anyhow, Context};
use std::collections::{BTreeMap, HashSet};
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot};

use super::conversations::{context_from, ConversationContext, INBOX_CONTEXT_SQL};
use super::inbox::{InboxRow, InboxUpdate, NewInboxEvent};
use super::outbox::{NewOutboxMessage, OutboxOutcome, OutboxRow, SendFailure};
use super::statement::{Columns, Exec, Sqlx, Stmt};
use super::Store;

/// A write the group committer performs.
#[derive(Debug)]
pub enum Write {
    /// Store webhook events; duplicates (same dedupe key) are skipped.
    InsertInbox(Vec<NewInboxEvent>),
    /// Record how a claimed inbox row ended, with the replies it queues.
    FinishInbox(Box<InboxUpdate>),
    /// Record how a send attempt ended.
    FinishOutbox(OutboxOutcome),
    /// One statement with its arguments: a small write that should not
    /// queue for SQLite's write lock outside the committer.
    Sql { sql: &'static str, args: Vec<Arg> },
    /// Claim due inbox rows (in the same transaction as the rest of the
    /// batch, so finished rows free their conversation's next one at once).
    ClaimInbox(Claim),
    /// Claim due outbox rows.
    ClaimOutbox(Claim),
    /// Queue or hold messages the outbound API accepted.
    Accept(Box<Acceptance>),
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

/// The answer to keep for an `Idempotency-Key`.
#[derive(Debug, Clone)]
pub struct Remember {
    pub api_key_id: i64,
    pub idempotency_key: String,
    pub request_hash: String,
    pub status: i64,
    pub answer: String,
}

/// An argument of `Write::Sql`.
pub use super::statement::Arg;

/// Which rows a claim may take: due at `now`, leased until `lease_until`.
#[derive(Debug, Clone, Copy)]
pub struct Claim {
    pub now: i64,
    pub lease_until: i64,
    pub limit: i64,
}

/// What a write produced.
#[derive(Debug)]
pub enum Written {
    /// Rows inserted (`InsertInbox`) or 1.
    Rows(u64),
    Inbox(Vec<InboxRow>),
    Outbox(Vec<OutboxRow>),
}

/// Receipts that move sent messages to `delivered` / `read`.
#[derive(Debug, Clone, PartialEq)]
pub enum Receipt {
    Delivered {
        page_id: String,
        psid: String,
        mids: Vec<String>,
        watermark: Option<i64>,
    },
    Read {
        page_id: String,
        psid: String,
        watermark: i64,
    },
}

struct Job {
    write: Arc<Write>,
    done: oneshot::Sender<anyhow::Result<Written>>,
}

/// Where the committer hands rows it claimed on a worker's behalf, and how
/// many more that worker can take (claims never exceed it).
pub struct Feed<T> {
    budget: Arc<AtomicI64>,
    rows: mpsc::UnboundedSender<Vec<T>>,
}

/// A worker's end of a `Feed`.
pub struct FeedReceiver<T> {
    /// Rows the worker can still take; it adds one back per finished row.
    pub budget: Arc<AtomicI64>,
    pub rows: mpsc::UnboundedReceiver<Vec<T>>,
}

/// A feed for a worker that can hold `capacity` rows at once.
pub fn feed<T>(capacity: i64) -> (Feed<T>, FeedReceiver<T>) {
    let budget = Arc::new(AtomicI64::new(capacity));
    let (tx, rx) = mpsc::unbounded_channel();
    (
        Feed {
            budget: Arc::clone(&budget),
            rows: tx,
        },
        FeedReceiver { budget, rows: rx },
    )
}

/// The workers the committer claims for. After a batch that may have made
/// rows claimable (new events, finished rows, queued replies), it claims in
/// the same transaction and hands the rows over, so a message moves from
/// webhook to NLU to Send API without waiting for a poll or a claim commit.
#[derive(Default)]
pub struct Feeds {
    pub inbox: Option<Feed<InboxRow>>,
    pub outbox: Option<Feed<OutboxRow>>,
}

/// Most rows one claim takes.
const CLAIM_MAX: i64 = 256;
/// A lease longer than any processing or send should take; past it, a row
/// is presumed abandoned by a stopped instance and claimed again.
pub const LEASE_MS: i64 = 120_000;

/// Handle to the group-commit task; cheap to clone.
#[derive(Clone)]
pub struct Writer {
    jobs: mpsc::Sender<Job>,
    stats: Arc<CommitStats>,
}

/// The committer's committed transactions, for `/metrics` (the slowest,
/// since start, shows what a stalled disk flush cost).
#[derive(Default, Debug)]
pub struct CommitStats {
    pub commits: AtomicU64,
    pub micros: AtomicU64,
    pub slowest_micros: AtomicU64,
}

impl CommitStats {
    fn record(&self, took: std::time::Duration) {
        let micros = took.as_micros() as u64;
        self.commits.fetch_add(1, Ordering::Relaxed);
        self.micros.fetch_add(micros, Ordering::Relaxed);
        self.slowest_micros.fetch_max(micros, Ordering::Relaxed);
    }
}

const MAX_BATCH: usize = 1024;

impl Writer {
    /// Starts the committer on the current runtime. It stops when every
    /// `Writer` handle is dropped, after finishing what it was given.
    pub fn start(store: Store, feeds: Feeds) -> Writer {
        let (jobs, rx) = mpsc::channel(4096);
        let stats = Arc::new(CommitStats::default());
        let recorder = Arc::clone(&stats);
        // The committer gets a thread of its own: its many short waits on the
        // database must not queue behind request handling and worker tasks.
        let spawned = std::thread::Builder::new()
            .name("lexbridge-writer".into())
            .spawn(move || {
                match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(runtime) => runtime.block_on(run(store, feeds, rx, &recorder)),
                    Err(e) => tracing::error!(error = %e, "the database writer cannot start"),
                }
            });
        if let Err(e) = spawned {
            tracing::error!(error = %e, "the database writer thread cannot start");
        }
        Writer { jobs, stats }
    }

    pub fn stats(&self) -> &CommitStats {
        &self.stats
    }

    async fn submit(&self, write: impl Into<Arc<Write>>) -> anyhow::Result<Written> {
        let (done, answer) = oneshot::channel();
        let write = write.into();
        self.jobs
            .send(Job { write, done })
            .await
            .map_err(|_| anyhow!("the database writer has stopped"))?;
        answer
            .await
            .map_err(|_| anyhow!("the database writer dropped a write"))?
    }

    /// Performs `write` durably; returns the rows it inserted, or 1. A
    /// write given as an `Arc` can be submitted again (a retry) uncopied.
    pub async fn write(&self, write: impl Into<Arc<Write>>) -> anyhow::Result<u64> {
        match self.submit(write).await? {
            Written::Rows(n) => Ok(n),
            Written::Inbox(rows) => Ok(rows.len() as u64),
            Written::Outbox(rows) => Ok(rows.len() as u64),
        }
    }

    /// Claims due inbox rows: at most the oldest open row per conversation.
    pub async fn claim_inbox(&self, claim: Claim) -> anyhow::Result<Vec<InboxRow>> {
        match self.submit(Write::ClaimInbox(claim)).await? {
            Written::Inbox(rows) => Ok(rows),
            other => Err(anyhow!("unexpected claim result {other:?}")),
        }
    }

    /// Claims due outbox rows: at most the oldest open message per recipient.
    pub async fn claim_outbox(&self, claim: Claim) -> anyhow::Result<Vec<OutboxRow>> {
        match self.submit(Write::ClaimOutbox(claim)).await? {
            Written::Outbox(rows) => Ok(rows),
            other => Err(anyhow!("unexpected claim result {other:?}")),
        }
    }
}

async fn run(store: Store, feeds: Feeds, mut rx: mpsc::Receiver<Job>, stats: &CommitStats) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    // The committer keeps its own connection: no pool round trip per batch.
    let mut held: Option<Held> = None;
    while rx.recv_many(&mut batch, MAX_BATCH).await > 0 {
        let jobs = std::mem::take(&mut batch);
        let writes: Vec<&Write> = jobs.iter().map(|j| &*j.write).collect();
        let extra = Extra::for_writes(&feeds, &writes);
        match apply_held(&store, &mut held, &writes, extra, stats).await {
            Ok(applied) => {
                for written in &applied.written {
                    charge(&feeds, written);
                }
                hand_over(&feeds.inbox, applied.inbox);
                hand_over(&feeds.outbox, applied.outbox);
                for (job, written) in jobs.into_iter().zip(applied.written) {
                    let _ = job.done.send(Ok(written));
                }
            }
            // One bad write must not fail its neighbours: redo them alone.
            Err(_) if jobs.len() > 1 => {
                for job in jobs {
                    // Each still claims what it frees for the workers.
                    let extra = Extra::for_writes(&feeds, &[&*job.write]);
                    let mut applied =
                        apply_held(&store, &mut held, &[&*job.write], extra, stats).await;
                    if applied.is_err() && (extra.inbox.is_some() || extra.outbox.is_some()) {
                        // The claim may be what failed.
                        applied =
                            apply_held(&store, &mut held, &[&*job.write], Extra::default(), stats)
                                .await;
                    }
                    let result = applied.and_then(|mut applied| {
                        let written = applied.written.pop().context("no result")?;
                        charge(&feeds, &written);
                        hand_over(&feeds.inbox, applied.inbox);
                        hand_over(&feeds.outbox, applied.outbox);
                        Ok(written)
                    });
                    let _ = job.done.send(result);
                }
            }
            // A write alone: its caller gets the error itself (see
            // `refused`).
            Err(e) => {
                if let Some(job) = jobs.into_iter().next() {
                    let _ = job.done.send(Err(e));
                }
            }
        }
    }
    // Hand the connection back while this runtime still runs, so closing
    // the pool does not wait for it.
    if let Some(Held::Postgres(conn)) = held {
        let _ = conn.close().await;
    }
}

/// A claim on a worker's behalf, when the batch may have freed rows and the
/// worker has room.
fn piggyback<T>(feed: &Option<Feed<T>>, wanted: bool, now: i64) -> Option<Claim> {
    let feed = feed.as_ref().filter(|_| wanted)?;
    let limit = feed.budget.load(Ordering::Acquire).min(CLAIM_MAX);
    (limit > 0).then_some(Claim {
        now,
        lease_until: now + LEASE_MS,
        limit,
    })
}

/// Rows a worker claimed itself count against its budget.
fn charge(feeds: &Feeds, written: &Written) {
    match written {
        Written::Inbox(rows) => take_budget(&feeds.inbox, rows.len()),
        Written::Outbox(rows) => take_budget(&feeds.outbox, rows.len()),
        Written::Rows(_) => {}
    }
}

fn take_budget<T>(feed: &Option<Feed<T>>, n: usize) {
    if let Some(feed) = feed {
        feed.budget.fetch_sub(n as i64, Ordering::AcqRel);
    }
}

fn hand_over<T>(feed: &Option<Feed<T>>, rows: Vec<T>) {
    if let (Some(feed), false) = (feed, rows.is_empty()) {
        feed.budget.fetch_sub(rows.len() as i64, Ordering::AcqRel);
        // A closed feed means the worker stopped: the leases run out and
        // the rows are claimed again later.
        let _ = feed.rows.send(rows);
    }
}

impl Write {
    fn frees_inbox(&self) -> bool {
        match self {
            Write::InsertInbox(events) => !events.is_empty(),
            Write::FinishInbox(_) => true,
            _ => false,
        }
    }

    fn frees_outbox(&self) -> bool {
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

/// The job number of a claim made on a worker's behalf.
const PIGGYBACK: usize = usize::MAX;

/// Claims added to a batch on the workers' behalf.
#[derive(Default, Clone, Copy)]
struct Extra {
    inbox: Option<Claim>,
    outbox: Option<Claim>,
}

impl Extra {
    /// The claims for rows that `writes` may free.
    fn for_writes(feeds: &Feeds, writes: &[&Write]) -> Extra {
        let now = super::now_ms();
        Extra {
            inbox: piggyback(&feeds.inbox, writes.iter().any(|w| w.frees_inbox()), now),
            outbox: piggyback(&feeds.outbox, writes.iter().any(|w| w.frees_outbox()), now),
        }
    }
}

/// What one batch produced.
struct Applied {
    written: Vec<Written>,
    inbox: Vec<InboxRow>,
    outbox: Vec<OutboxRow>,
}

/// The committer's connection: SQLite's its own, run on this thread.
enum Held {
    Sqlite(Box<rusqlite::Connection>),
    Postgres(sqlx::pool::PoolConnection<sqlx::Postgres>),
}

/// `apply` on the held connection, (re)opening it as needed; a failed batch
/// gives the connection up in case it is the connection that broke, unless
/// SQLite rolled it back cleanly.
async fn apply_held(
    store: &Store,
    held: &mut Option<Held>,
    writes: &[&Write],
    extra: Extra,
    stats: &CommitStats,
) -> anyhow::Result<Applied> {
    let started = std::time::Instant::now();
    let mut conn = match held.take() {
        Some(conn) => conn,
        None => match store {
            Store::Sqlite { writer, .. } => Held::Sqlite(Box::new(open_sqlite(writer)?)),
            Store::Postgres(pool) => Held::Postgres(pool.acquire().await?),
        },
    };
    let mut intact = false;
    let result = match &mut conn {
        Held::Sqlite(conn) => {
            conn.execute_batch("BEGIN IMMEDIATE")?;
            let applied = apply(&mut **conn, false, writes, extra).await;
            let outcome = applied.and_then(|applied| {
                conn.execute_batch("COMMIT")?;
                Ok(applied)
            });
            if outcome.is_err() {
                // A clean rollback shows the connection still works (a
                // statement failed, not the connection): keep it and its
                // prepared statements.
                intact = conn.execute_batch("ROLLBACK").is_ok();
            }
            outcome
        }
        Held::Postgres(conn) => {
            let mut tx = sqlx::Connection::begin(&mut **conn).await?;
            let applied = apply(&mut Sqlx(&mut *tx), true, writes, extra).await?;
            tx.commit().await?;
            Ok(applied)
        }
    }
    .context("group commit");
    if result.is_ok() {
        stats.record(started.elapsed());
    }
    if result.is_ok() || intact {
        *held = Some(conn);
    }
    result
}

/// The committer's SQLite connection, on the file of the pools and with
/// their settings: every acknowledged write is flushed (`synchronous=FULL`).
fn open_sqlite(pool: &sqlx::SqlitePool) -> anyhow::Result<rusqlite::Connection> {
    let options = pool.connect_options();
    // The file exists (`Store::connect` made sure): never create another.
    let flags =
        rusqlite::OpenFlags::SQLITE_OPEN_READ_WRITE | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = rusqlite::Connection::open_with_flags(options.get_filename(), flags)
        .context("opening the SQLite database for the group committer")?;
    conn.execute_batch(
        "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON;",
    )?;
    conn.busy_timeout(std::time::Duration::from_secs(10))?;
    conn.set_prepared_statement_cache_capacity(256);
    Ok(conn)
}

/// Most rows in one multi-row statement (well under SQLite's 32766 variables).
const MAX_ROWS_PER_STATEMENT: usize = 256;

/// Splits `rows` into chunks whose sizes are powers of two, so a handful of
/// statement shapes serve every batch size and stay in the prepared
/// statement cache instead of being parsed anew for each batch.
pub(crate) fn chunks<T>(mut rows: &[T]) -> impl Iterator<Item = &[T]> {
    std::iter::from_fn(move || {
        if rows.is_empty() {
            return None;
        }
        let n = rows.len().min(MAX_ROWS_PER_STATEMENT);
        let size = 1 << n.ilog2();
        let (head, tail) = rows.split_at(size);
        rows = tail;
        Some(head)
    })
}

/// Applies `writes` in the open transaction of `exec` with set-based
/// statements (a statement per kind of change rather than per row); for
/// each write, the rows it inserted (`InsertInbox`) or 1.
async fn apply<E: Exec>(
    exec: &mut E,
    postgres: bool,
    writes: &[&Write],
    extra: Extra,
) -> anyhow::Result<Applied> {
    let mut counts = vec![0u64; writes.len()];
    let mut claimed: BTreeMap<usize, Written> = BTreeMap::new();
    let mut claims = Vec::new();
    let mut statements = Vec::new();
    let mut events = Vec::new();
    let mut replies = Vec::new();
    let mut inbox_updates = Vec::new();
    let mut outcomes = Vec::new();
    let mut receipts = Vec::new();
    let mut lookups = Vec::new();
    let mut acceptances = Vec::new();
    let mut touches: BTreeMap<(&str, &str), Touch> = BTreeMap::new();
    for (job, write) in writes.iter().enumerate() {
        match write {
            Write::InsertInbox(rows) => events.extend(rows.iter().map(|e| (job, e))),
            Write::FinishInbox(u) => inbox_updates.push((job, u.as_ref())),
            Write::FinishOutbox(outcome) => {
                counts[job] = 1;
                outcomes.push(outcome);
            }
            Write::Sql { sql, args } => statements.push((job, Stmt::with_args(sql, args.clone()))),
            Write::ClaimInbox(c) => claims.push((job, true, *c)),
            Write::ClaimOutbox(c) => claims.push((job, false, *c)),
            Write::Accept(a) => acceptances.push((job, a.as_ref())),
        }
    }
    let mut piggybacked_inbox = Vec::new();
    let mut piggybacked_outbox = Vec::new();
    // Piggybacked claims go last, after the changes that freed rows.
    claims.extend(extra.inbox.map(|c| (PIGGYBACK, true, c)));
    claims.extend(extra.outbox.map(|c| (PIGGYBACK, false, c)));
    let now = super::now_ms();
    for chunk in chunks(&events) {
        let mut insert = Stmt::new(
            "INSERT INTO inbox (object, page_id, psid, kind, standby, dedupe_key, event, next_attempt_at, received_at) ",
        );
        insert.values(chunk, |row, (_, e)| {
            row.bind(&*e.object)
                .bind(e.page_id.as_str())
                .bind(e.psid.as_str())
                .bind(e.kind)
                .bind(i64::from(e.standby))
                .bind(e.dedupe_key.as_str())
                .bind(e.event.as_str())
                .bind(e.received_at)
                .bind(e.received_at);
        });
        insert.push(" ON CONFLICT (dedupe_key) DO NOTHING RETURNING dedupe_key");
        let mut inserted = HashSet::new();
        for row in exec.rows(&insert).await? {
            inserted.insert(Columns::new(row).take()?.text()?);
        }
        for (job, e) in chunk {
            if inserted.remove(&e.dedupe_key) {
                counts[*job] += 1;
            }
        }
    }
    // A result counts only for the attempt in hand (a claim leaves
    // `attempts` alone and a result counts its attempt): one written twice
    // (a retry after a commit whose outcome was lost) queues its replies
    // once, cannot put back an older dialog state, and cannot land on a
    // later attempt of the same row.
    // Two results for one row in a batch (two workers after a lease ran
    // out): the first counts.
    let mut seen = HashSet::new();
    inbox_updates.retain(|(_, u)| seen.insert(u.id));
    let mut live = HashSet::new();
    for chunk in chunks(&inbox_updates) {
        let mut update = Stmt::new(
            "UPDATE inbox SET state = v.column2, outcome = v.column3, attempts = v.column4,
                    next_attempt_at = v.column5, last_error = v.column6, processed_at = v.column7,
                    locked_until = NULL
             FROM (",
        );
        update.values(chunk, |row, (_, u)| {
            row.bind_bigint(u.id)
                .bind(u.state.as_str())
                .bind(u.outcome.as_deref())
                .bind_bigint(u.attempts)
                .bind_bigint(u.next_attempt_at)
                .bind(u.last_error.as_deref())
                .bind_bigint(now);
        });
        update.push(
            ") AS v WHERE inbox.id = v.column1 AND inbox.state = 'processing'
                AND inbox.attempts = v.column4 - 1 RETURNING inbox.id",
        );
        for row in exec.rows(&update).await? {
            live.insert(Columns::new(row).take()?.int()?);
        }
    }
    for (job, u) in inbox_updates.iter().filter(|(_, u)| live.contains(&u.id)) {
        counts[*job] = 1;
        replies.extend(u.replies.iter().map(|m| (*job, m)));
        receipts.extend(u.receipt.iter());
        lookups.extend(u.lookup.iter());
        if let Some(c) = &u.conversation {
            touches
                .entry((c.page_id.as_str(), c.psid.as_str()))
                .or_default()
                .merge(c);
        }
    }
    let mut releases: Vec<(&str, &str)> = touches
        .iter()
        .filter(|(_, t)| t.release_held)
        .map(|(key, _)| *key)
        .collect();
    // A key already answered (by a concurrent request) stores nothing.
    for (job, acceptance) in &acceptances {
        let fresh = match &acceptance.remember {
            None => true,
            Some(r) => {
                let mut remember = Stmt::new(
                    "INSERT INTO api_requests (api_key_id, idempotency_key, request_hash, status, answer, created_at) ",
                );
                remember.values(&[r], |row, r| {
                    row.bind(r.api_key_id)
                        .bind(r.idempotency_key.as_str())
                        .bind(r.request_hash.as_str())
                        .bind(r.status)
                        .bind(r.answer.as_str())
                        .bind(now);
                });
                remember.push(
                    " ON CONFLICT (api_key_id, idempotency_key) DO NOTHING RETURNING api_key_id",
                );
                !exec.rows(&remember).await?.is_empty()
            }
        };
        if fresh {
            counts[*job] = 1;
            replies.extend(acceptance.messages.iter().map(|m| (*job, m)));
            // The person may have written since the message was judged
            // outside the window.
            releases.extend(
                acceptance
                    .messages
                    .iter()
                    .filter(|m| m.state == "held")
                    .map(|m| (m.page_id.as_str(), m.psid.as_str())),
            );
        }
    }
    // In the order of the writes, so each person's messages keep theirs.
    replies.sort_by_key(|(job, _)| *job);
    let replies: Vec<&NewOutboxMessage> = replies.into_iter().map(|(_, m)| m).collect();
    for insert in insert_outbox(&replies, now) {
        exec.run(&insert).await?;
    }
    let (with_state, without_state): (Vec<_>, Vec<_>) =
        touches.iter().partition(|(_, t)| t.nlu_state.is_some());
    for (rows, sets_state) in [(&with_state, true), (&without_state, false)] {
        for chunk in chunks(rows) {
            let mut upsert =
                Stmt::new("INSERT INTO conversations (page_id, psid, last_inbound_at, nlu_state, updated_at) ");
            upsert.values(chunk, |row, ((page_id, psid), t)| {
                row.bind(*page_id)
                    .bind(*psid)
                    .bind(t.inbound_at)
                    .bind(t.nlu_state.clone().flatten().as_deref())
                    .bind(now);
            });
            upsert.push(
                " ON CONFLICT (page_id, psid) DO UPDATE SET
                   last_inbound_at = CASE
                     WHEN conversations.last_inbound_at IS NULL THEN excluded.last_inbound_at
                     WHEN excluded.last_inbound_at > conversations.last_inbound_at
                       THEN excluded.last_inbound_at
                     ELSE conversations.last_inbound_at END,
                   updated_at = excluded.updated_at",
            );
            if sets_state {
                upsert.push(", nlu_state = excluded.nlu_state");
            }
            exec.run(&upsert).await?;
        }
    }
    // Held messages of people who wrote within 24 hours go now: those who
    // wrote in this batch (their held messages have older ids than the
    // replies, so they are sent first), and those newly held whose message
    // arrived while the hold was being decided.
    for chunk in chunks(&releases) {
        let mut release = Stmt::new(
            "UPDATE outbox SET state = 'queued', messaging_type = 'UPDATE', tag = NULL, next_attempt_at = ",
        );
        release
            .bind(now)
            .push(" WHERE state = 'held' AND hold_until > ")
            .bind(now)
            .push(
                " AND EXISTS (SELECT 1 FROM conversations c WHERE c.page_id = outbox.page_id
                   AND c.psid = outbox.psid AND c.last_inbound_at > ",
            )
            .bind(now - crate::domain::window::STANDARD_WINDOW_MS)
            .push(") AND (page_id, psid) IN (")
            .values(chunk, |row, (page_id, psid)| {
                row.bind(*page_id).bind(*psid);
            })
            .push(")");
        exec.run(&release).await?;
    }
    // Likewise a send's outcome applies only to the attempt in hand:
    // written twice, it cannot undo a delivery receipt recorded between, nor
    // land on the message's next attempt.
    for chunk in chunks(&outcomes) {
        let mut update = Stmt::new(
            "UPDATE outbox SET state = v.column2, attempts = v.column3, next_attempt_at = v.column4,
                    message_id = COALESCE(v.column5, outbox.message_id),
                    sent_at = COALESCE(v.column6, outbox.sent_at),
                    error_code = v.column7, error_subcode = v.column8, error_message = v.column9,
                    locked_until = NULL
             FROM (",
        );
        update.values(chunk, |row, outcome| {
            let (id, state, attempts, next, message_id, sent_at, failure) =
                outcome_columns(outcome);
            row.bind_bigint(id)
                .bind(state)
                .bind_bigint(attempts)
                .bind_bigint(next)
                .bind(message_id)
                .bind_bigint(sent_at)
                .bind_bigint(failure.and_then(|f| f.code))
                .bind_bigint(failure.and_then(|f| f.subcode))
                .bind(failure.map(|f| f.message.as_str()));
        });
        update.push(
            ") AS v WHERE outbox.id = v.column1 AND outbox.state = 'sending'
                AND outbox.attempts = v.column3 - 1",
        );
        exec.run(&update).await?;
    }
    for (job, stmt) in &statements {
        counts[*job] = exec.run(stmt).await?;
    }
    for receipt in &receipts {
        for stmt in receipt_statements(receipt) {
            exec.run(&stmt).await?;
        }
    }
    for lookup in &lookups {
        let mut remember =
            Stmt::new("INSERT INTO psid_lookups (page_id, psid, looked_up_at, account_id) ");
        remember.values(&[lookup], |row, l| {
            row.bind(l.page_id.as_str())
                .bind(l.psid.as_str())
                .bind(l.at)
                .bind(l.account_id.as_deref());
        });
        remember.push(
            " ON CONFLICT (page_id, psid) DO UPDATE SET looked_up_at = excluded.looked_up_at,
                 account_id = excluded.account_id",
        );
        exec.run(&remember).await?;
    }
    // A piggybacked claim fills the room a worker's own claim in this batch
    // left: both were sized to the same budget.
    let mut taken = [0i64; 2];
    for (job, inbox, c) in &claims {
        let kind = usize::from(!*inbox);
        let limit = match *job == PIGGYBACK {
            true => c.limit - taken[kind],
            false => c.limit,
        };
        if *job == PIGGYBACK && limit <= 0 {
            continue;
        }
        let args = vec![Arg::Int(c.lease_until), Arg::Int(c.now), Arg::Int(limit)];
        let sql = match inbox {
            true => super::inbox::claim_sql(postgres),
            false => super::outbox::claim_sql(postgres),
        };
        let mut found = exec.rows(&Stmt::with_args(sql, args)).await?;
        // `RETURNING` has no order; rows go out oldest (lowest id) first.
        found.sort_by_key(|row| row.first().and_then(|id| id.int().ok()));
        let written = if *inbox {
            let mut rows = found
                .into_iter()
                .map(InboxRow::from_columns)
                .collect::<anyhow::Result<Vec<_>>>()?;
            attach_contexts(exec, &mut rows).await?;
            Written::Inbox(rows)
        } else {
            let rows = found.into_iter().map(OutboxRow::from_columns);
            Written::Outbox(rows.collect::<anyhow::Result<_>>()?)
        };
        if *job != PIGGYBACK {
            taken[kind] += match &written {
                Written::Inbox(rows) => rows.len(),
                Written::Outbox(rows) => rows.len(),
                Written::Rows(_) => 0,
            } as i64;
        }
        match (written, *job == PIGGYBACK) {
            (Written::Inbox(rows), true) => piggybacked_inbox = rows,
            (Written::Outbox(rows), true) => piggybacked_outbox = rows,
            (written, _) => {
                claimed.insert(*job, written);
            }
        }
    }
    let (inbox, outbox) = (piggybacked_inbox, piggybacked_outbox);
    Ok(Applied {
        written: counts
            .into_iter()
            .enumerate()
            .map(|(job, n)| claimed.remove(&job).unwrap_or(Written::Rows(n)))
            .collect(),
        inbox,
        outbox,
    })
}

/// Each claimed row's conversation, read with the claim.
async fn attach_contexts<E: Exec>(exec: &mut E, rows: &mut [InboxRow]) -> anyhow::Result<()> {
    let ids: Vec<i64> = rows.iter().map(|r| r.id).collect();
    let mut contexts = std::collections::HashMap::new();
    for chunk in chunks(&ids) {
        let mut read = Stmt::new(INBOX_CONTEXT_SQL);
        read.push(" WHERE k.id IN ")
            .list(chunk.iter().map(|id| Arg::Int(*id)));
        for row in exec.rows(&read).await? {
            let mut c = Columns::new(row);
            let id = c.take()?.int()?;
            let page_paused = c.take()?.int()? != 0;
            let columns = (
                c.take()?.opt_text()?,
                c.take()?.opt_text()?,
                c.take()?.opt_text()?,
                c.take()?.opt_text()?,
                c.take()?.opt_int()?,
            );
            let context = ConversationContext {
                page_paused,
                ..context_from(columns)
            };
            contexts.insert(id, context);
        }
    }
    for row in rows {
        row.context = contexts
            .remove(&row.id)
            .ok_or_else(|| anyhow!("no conversation was read for inbox row {}", row.id))?;
    }
    Ok(())
}

/// The conversation changes of one batch, merged per conversation.
#[derive(Default)]
struct Touch {
    inbound_at: Option<i64>,
    nlu_state: Option<Option<String>>,
    release_held: bool,
}

impl Touch {
    fn merge(&mut self, c: &super::inbox::ConversationTouch) {
        self.inbound_at = self.inbound_at.max(c.inbound_at);
        self.release_held |= c.release_held;
        if c.nlu_state.is_some() {
            self.nlu_state = c.nlu_state.clone();
        }
    }
}

type OutcomeColumns<'a> = (
    i64,
    &'static str,
    i64,
    i64,
    Option<&'a str>,
    Option<i64>,
    Option<&'a SendFailure>,
);

fn outcome_columns(outcome: &OutboxOutcome) -> OutcomeColumns<'_> {
    match outcome {
        OutboxOutcome::Sent {
            id,
            attempts,
            message_id,
            at,
        } => (
            *id,
            "sent",
            *attempts,
            *at,
            message_id.as_deref(),
            Some(*at),
            None,
        ),
        OutboxOutcome::Retry {
            id,
            attempts,
            next_attempt_at,
            failure,
        } => (
            *id,
            "queued",
            *attempts,
            *next_attempt_at,
            None,
            None,
            Some(failure),
        ),
        OutboxOutcome::Failed {
            id,
            attempts,
            failure,
        } => (*id, "failed", *attempts, 0, None, None, Some(failure)),
    }
}

/// Moves sent messages to `delivered` / `read`. `sent_at` is taken when a
/// send starts, so it never exceeds Meta's own timestamp of the message and
/// a watermark covers exactly the messages it names.
fn receipt_statements(receipt: &Receipt) -> Vec<Stmt> {
    match receipt {
        Receipt::Delivered {
            page_id,
            psid,
            mids,
            watermark,
        } => {
            let mut statements: Vec<Stmt> = mids
                .iter()
                .map(|mid| {
                    Stmt::with_args(
                        super::outbox::DELIVERED_MID_SQL,
                        vec![Arg::from(mid.as_str())],
                    )
                })
                .collect();
            statements.extend(watermark.map(|watermark| {
                Stmt::with_args(
                    super::outbox::DELIVERED_WATERMARK_SQL,
                    vec![
                        Arg::from(page_id.as_str()),
                        Arg::from(psid.as_str()),
                        Arg::Int(watermark),
                    ],
                )
            }));
            statements
        }
        Receipt::Read {
            page_id,
            psid,
            watermark,
        } => vec![Stmt::with_args(
            super::outbox::READ_WATERMARK_SQL,
            vec![
                Arg::from(page_id.as_str()),
                Arg::from(psid.as_str()),
                Arg::Int(*watermark),
            ],
        )],
    }
}

/// The statements inserting `messages` into the outbox.
pub(crate) fn insert_outbox(messages: &[&NewOutboxMessage], now: i64) -> Vec<Stmt> {
    chunks(messages)
        .map(|chunk| {
            let mut insert = Stmt::new(
                "INSERT INTO outbox (page_id, psid, body, messaging_type, tag, origin, inbox_id,
                                     state, public_id, api_key_id, hold_until,
                                     next_attempt_at, created_at) ",
            );
            insert.values(chunk, |row, m| {
                row.bind(m.page_id.as_str())
                    .bind(m.psid.as_str())
                    .bind(m.body.as_str())
                    .bind(m.messaging_type.as_str())
                    .bind(m.tag.as_deref())
                    .bind(m.origin)
                    .bind(m.inbox_id)
                    .bind(m.state)
                    .bind(m.public_id.as_deref())
                    .bind(m.api_key_id)
                    .bind(m.hold_until)
                    .bind(now)
                    .bind(now);
            });
            insert
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An in-memory database with the SQLite schema, for `apply` itself.
    fn schema() -> rusqlite::Connection {
        let conn = rusqlite::Connection::open_in_memory().expect("in-memory SQLite");
        for migration in super::super::SQLITE_MIGRATIONS.iter() {
            conn.execute_batch(&migration.sql).expect("migration");
        }
        conn
    }

    #[tokio::test]
    async fn a_worker_never_gets_more_rows_than_its_budget_in_one_batch() {
        let mut conn = schema();
        for psid in 0..10 {
            conn.execute(
                "INSERT INTO inbox (page_id, psid, kind, dedupe_key, event, next_attempt_at, received_at)
                 VALUES ('P', ?1, 'message', ?1, '{}', 0, 0)",
                [psid.to_string()],
            )
            .expect("a pending row");
        }
        // The worker claims its room (4) while the committer, seeing the
        // same budget, piggybacks a claim for it.
        let claim = Claim {
            now: 1,
            lease_until: 1 + LEASE_MS,
            limit: 4,
        };
        let extra = Extra {
            inbox: Some(claim),
            outbox: None,
        };
        let own = Write::ClaimInbox(claim);
        let applied = apply(&mut conn, false, &[&own], extra)
            .await
            .expect("applied");
        let Some(Written::Inbox(claimed)) = applied.written.first() else {
            panic!("the worker's claim answers with rows");
        };
        assert_eq!(claimed.len(), 4);
        assert!(
            applied.inbox.is_empty(),
            "no room left for a piggybacked claim"
        );

        // With room left over, the piggybacked claim takes only that.
        let own = Write::ClaimInbox(Claim { limit: 1, ..claim });
        let applied = apply(&mut conn, false, &[&own], extra)
            .await
            .expect("applied");
        assert_eq!(applied.inbox.len(), 3);
    }

    #[tokio::test]
    async fn a_batch_queues_each_persons_messages_in_the_order_of_its_writes() {
        use super::super::inbox::{InboxState, InboxUpdate};
        let mut conn = schema();
        conn.execute_batch(
            "INSERT INTO inbox (page_id, psid, kind, dedupe_key, event, state, next_attempt_at, received_at)
             VALUES ('P', 'U1', 'message', 'm.1', '{}', 'processing', 0, 0)",
        )
        .expect("a row in hand");
        let message = |body: &str| NewOutboxMessage {
            public_id: Some(format!("msg_{body}")),
            origin: "api",
            inbox_id: None,
            ..NewOutboxMessage::reply("P", "U1", 1, body.into())
        };
        // The API message is written first, the reply second; the batch
        // gathers replies and accepted messages separately.
        let accepted = Write::Accept(Box::new(Acceptance {
            messages: vec![message("api")],
            remember: None,
        }));
        let finished = Write::FinishInbox(Box::new(InboxUpdate {
            id: 1,
            state: InboxState::Done,
            outcome: None,
            attempts: 1,
            next_attempt_at: 0,
            last_error: None,
            replies: vec![NewOutboxMessage::reply("P", "U1", 1, "reply".into())],
            conversation: None,
            receipt: None,
            lookup: None,
        }));
        apply(&mut conn, false, &[&accepted, &finished], Extra::default())
            .await
            .expect("applied");
        let order: Vec<String> = conn
            .prepare("SELECT body FROM outbox ORDER BY id")
            .and_then(|mut q| q.query_map([], |r| r.get(0))?.collect())
            .expect("outbox rows");
        assert_eq!(order, ["api", "reply"]);
    }

    #[test]
    fn batches_split_into_power_of_two_chunks() {
        let rows: Vec<u32> = (0..300).collect();
        let sizes: Vec<usize> = chunks(&rows).map(<[u32]>::len).collect();
        assert_eq!(sizes, [256, 32, 8, 4]);
        let rebuilt: Vec<u32> = chunks(&rows).flatten().copied().collect();
        assert_eq!(rebuilt, rows);
        assert_eq!(chunks::<u32>(&[]).count(), 0);
    }
}
