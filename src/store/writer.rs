//! Group commit: one task owns the hot writes and commits everything that
//! arrived while the previous transaction was being flushed in one
//! transaction, so throughput is not capped at one fsync per request while
//! every caller still waits for its own write to be durable.

use anyhow::{anyhow, Context};
use tokio::sync::{mpsc, oneshot};

use super::inbox::{InboxUpdate, NewInboxEvent};
use super::outbox::{OutboxOutcome, SendFailure};
use super::{with_writer, Store};

/// A write the group committer performs.
#[derive(Debug)]
pub enum Write {
    /// Store webhook events; duplicates (same dedupe key) are skipped.
    InsertInbox(Vec<NewInboxEvent>),
    /// Record how a claimed inbox row ended, with the replies it queues.
    FinishInbox(Box<InboxUpdate>),
    /// Record how a send attempt ended.
    FinishOutbox(OutboxOutcome),
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
    write: Write,
    done: oneshot::Sender<anyhow::Result<u64>>,
}

/// Handle to the group-commit task; cheap to clone.
#[derive(Clone)]
pub struct Writer {
    jobs: mpsc::Sender<Job>,
}

const MAX_BATCH: usize = 1024;

impl Writer {
    /// Starts the committer on the current runtime. It stops when every
    /// `Writer` handle is dropped, after finishing what it was given.
    pub fn start(store: Store) -> Writer {
        let (jobs, rx) = mpsc::channel(4096);
        tokio::spawn(run(store, rx));
        Writer { jobs }
    }

    /// Performs `write` durably; returns the rows it changed.
    pub async fn write(&self, write: Write) -> anyhow::Result<u64> {
        let (done, answer) = oneshot::channel();
        self.jobs
            .send(Job { write, done })
            .await
            .map_err(|_| anyhow!("the database writer has stopped"))?;
        answer
            .await
            .map_err(|_| anyhow!("the database writer dropped a write"))?
    }
}

async fn run(store: Store, mut rx: mpsc::Receiver<Job>) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while rx.recv_many(&mut batch, MAX_BATCH).await > 0 {
        let jobs = std::mem::take(&mut batch);
        let writes: Vec<&Write> = jobs.iter().map(|j| &j.write).collect();
        match apply(&store, &writes).await {
            Ok(counts) => {
                for (job, count) in jobs.into_iter().zip(counts) {
                    let _ = job.done.send(Ok(count));
                }
            }
            // One bad write must not fail its neighbours: redo them alone.
            Err(_) if jobs.len() > 1 => {
                for job in jobs {
                    let result = apply(&store, &[&job.write]).await.map(|c| c[0]);
                    let _ = job.done.send(result);
                }
            }
            Err(e) => {
                for job in jobs {
                    let _ = job.done.send(Err(anyhow!("{e:#}")));
                }
            }
        }
    }
}

/// Applies `writes` in one transaction; one count per write.
async fn apply(store: &Store, writes: &[&Write]) -> anyhow::Result<Vec<u64>> {
    let mut counts = Vec::with_capacity(writes.len());
    with_writer!(store, pool => {
        let mut tx = pool.begin().await?;
        for write in writes {
            let count = match write {
                Write::InsertInbox(events) => {
                    let mut inserted = 0;
                    for e in events {
                        inserted += sqlx::query(
                            "INSERT INTO inbox (page_id, psid, kind, standby, dedupe_key, event,
                                                next_attempt_at, received_at)
                             VALUES ($1, $2, $3, $4, $5, $6, $7, $7)
                             ON CONFLICT (dedupe_key) DO NOTHING")
                            .bind(&e.page_id)
                            .bind(&e.psid)
                            .bind(e.kind)
                            .bind(i64::from(e.standby))
                            .bind(&e.dedupe_key)
                            .bind(&e.event)
                            .bind(e.received_at)
                            .execute(&mut *tx)
                            .await?
                            .rows_affected();
                    }
                    inserted
                }
                Write::FinishInbox(u) => {
                    let now = super::now_ms();
                    for reply in &u.replies {
                        insert_outbox!(&mut *tx, reply, now);
                    }
                    if let Some(c) = &u.conversation {
                        sqlx::query(
                            "INSERT INTO conversations (page_id, psid, last_inbound_at, nlu_state, updated_at)
                             VALUES ($1, $2, $3, $4, $5)
                             ON CONFLICT (page_id, psid) DO UPDATE SET
                               last_inbound_at = CASE
                                 WHEN conversations.last_inbound_at IS NULL THEN excluded.last_inbound_at
                                 WHEN excluded.last_inbound_at IS NULL THEN conversations.last_inbound_at
                                 WHEN excluded.last_inbound_at > conversations.last_inbound_at
                                   THEN excluded.last_inbound_at
                                 ELSE conversations.last_inbound_at END,
                               nlu_state = CASE WHEN $6 = 1 THEN excluded.nlu_state
                                                ELSE conversations.nlu_state END,
                               updated_at = excluded.updated_at")
                            .bind(&c.page_id)
                            .bind(&c.psid)
                            .bind(c.inbound_at)
                            .bind(c.nlu_state.clone().flatten())
                            .bind(now)
                            .bind(i64::from(c.nlu_state.is_some()))
                            .execute(&mut *tx)
                            .await?;
                    }
                    if let Some(receipt) = &u.receipt {
                        apply_receipt!(&mut *tx, receipt);
                    }
                    sqlx::query(
                        "UPDATE inbox SET state = $2, outcome = $3, attempts = $4,
                                next_attempt_at = $5, last_error = $6, locked_until = NULL,
                                processed_at = $7
                         WHERE id = $1")
                        .bind(u.id)
                        .bind(u.state.as_str())
                        .bind(&u.outcome)
                        .bind(u.attempts)
                        .bind(u.next_attempt_at)
                        .bind(&u.last_error)
                        .bind(now)
                        .execute(&mut *tx)
                        .await?
                        .rows_affected()
                }
                Write::FinishOutbox(outcome) => {
                    let (id, state, attempts, next, message_id, sent_at, failure) = outcome_columns(outcome);
                    sqlx::query(
                        "UPDATE outbox SET state = $2, attempts = $3, next_attempt_at = $4,
                                message_id = COALESCE($5, message_id), sent_at = COALESCE($6, sent_at),
                                error_code = $7, error_subcode = $8, error_message = $9,
                                locked_until = NULL
                         WHERE id = $1")
                        .bind(id)
                        .bind(state)
                        .bind(attempts)
                        .bind(next)
                        .bind(message_id)
                        .bind(sent_at)
                        .bind(failure.and_then(|f| f.code))
                        .bind(failure.and_then(|f| f.subcode))
                        .bind(failure.map(|f| f.message.as_str()))
                        .execute(&mut *tx)
                        .await?
                        .rows_affected()
                }
            };
            counts.push(count);
        }
        tx.commit().await
    })
    .context("group commit")?;
    Ok(counts)
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
macro_rules! apply_receipt {
    ($conn:expr, $receipt:expr) => {{
        match $receipt {
            Receipt::Delivered { page_id, psid, mids, watermark } => {
                for mid in mids {
                    sqlx::query("UPDATE outbox SET state = 'delivered'
                                 WHERE message_id = $1 AND state = 'sent'")
                        .bind(mid)
                        .execute($conn)
                        .await?;
                }
                if let Some(watermark) = watermark {
                    sqlx::query("UPDATE outbox SET state = 'delivered'
                                 WHERE page_id = $1 AND psid = $2 AND state = 'sent' AND sent_at <= $3")
                        .bind(page_id)
                        .bind(psid)
                        .bind(watermark)
                        .execute($conn)
                        .await?;
                }
            }
            Receipt::Read { page_id, psid, watermark } => {
                sqlx::query("UPDATE outbox SET state = 'read'
                             WHERE page_id = $1 AND psid = $2 AND state IN ('sent', 'delivered')
                               AND sent_at <= $3")
                    .bind(page_id)
                    .bind(psid)
                    .bind(watermark)
                    .execute($conn)
                    .await?;
            }
        }
    }};
}
use apply_receipt;

/// Inserts one `NewOutboxMessage` on `$conn` and evaluates to its id.
macro_rules! insert_outbox {
    ($conn:expr, $m:expr, $now:expr) => {{
        let m: &$crate::store::outbox::NewOutboxMessage = $m;
        let (id,): (i64,) = sqlx::query_as(
            "INSERT INTO outbox (page_id, psid, body, messaging_type, tag, origin, inbox_id,
                                 next_attempt_at, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8) RETURNING id",
        )
        .bind(&m.page_id)
        .bind(&m.psid)
        .bind(&m.body)
        .bind(&m.messaging_type)
        .bind(&m.tag)
        .bind(m.origin)
        .bind(m.inbox_id)
        .bind($now)
        .fetch_one($conn)
        .await?;
        id
    }};
}
pub(crate) use insert_outbox;
