//! The outbox: every message to send, claimed by the outbox worker, at most
//! the oldest open message of each recipient at a time.

use anyhow::Context;

use super::chunks::chunks;
use super::statement::{Columns, Exec, Sqlx, Stmt, Value};
use super::{claim_statement, with_reader, with_writer, Store};
use crate::domain::window::{OutsideWindow, WindowRule};

pub(crate) use super::outbox_outcome::{apology_statement, outcome_statement};
pub use super::outbox_outcome::{OutboxOutcome, OutboxTurn, SendFailure};

pub use super::outbox_state::OutboxState;

/// A message to queue. `body` is the Send API `message` object (or a
/// `sender_action` object) as JSON.
#[derive(Debug, Clone, PartialEq)]
pub struct NewOutboxMessage {
    pub page_id: String,
    pub psid: String,
    pub body: String,
    pub messaging_type: String,
    pub tag: Option<String>,
    pub origin: &'static str,
    pub inbox_id: Option<i64>,
    /// `Queued`, or `Held` until the person writes again.
    pub state: OutboxState,
    /// The id API callers know the message by.
    pub public_id: Option<String>,
    pub api_key_id: Option<i64>,
    /// A held message expires at this time.
    pub hold_until: Option<i64>,
    /// An API message's rule for a closed messaging window, applied again
    /// before each attempt (`None` for replies, sent inside the window).
    pub window: Option<WindowRule>,
}

impl NewOutboxMessage {
    /// A reply to the inbox event `inbox_id`, inside the conversation.
    pub fn reply(page_id: &str, psid: &str, inbox_id: i64, body: String) -> NewOutboxMessage {
        NewOutboxMessage {
            page_id: page_id.to_string(),
            psid: psid.to_string(),
            body,
            messaging_type: "RESPONSE".to_string(),
            tag: None,
            origin: "reply",
            inbox_id: Some(inbox_id),
            state: OutboxState::Queued,
            public_id: None,
            api_key_id: None,
            hold_until: None,
            window: None,
        }
    }
}

/// A claimed row.
#[derive(Debug, Clone)]
pub struct OutboxRow {
    pub id: i64,
    pub page_id: String,
    pub psid: String,
    pub body: String,
    pub messaging_type: String,
    pub tag: Option<String>,
    pub attempts: i64,
    /// `reply`, `api`, `apology`: says which time budget applies.
    pub origin: String,
    /// When the row became sendable (queued, released from a hold, or put
    /// back by an operator): its time budget runs from here.
    pub since: i64,
    /// When the message was accepted.
    pub created_at: i64,
    pub window: Option<WindowRule>,
    /// The last attempt's error, named when the row's time runs out.
    pub last_error: Option<String>,
    /// The lease this turn holds the row by (`locked_until` as claimed):
    /// what the turn's outcome is recorded against.
    pub lease_until: i64,
}

impl OutboxRow {
    /// A row of the claim statement's `RETURNING` list.
    pub(crate) fn from_columns(row: Vec<Value>) -> anyhow::Result<OutboxRow> {
        let mut c = Columns::new(row);
        Ok(OutboxRow {
            id: c.take()?.int()?,
            page_id: c.take()?.text()?,
            psid: c.take()?.text()?,
            body: c.take()?.text()?,
            messaging_type: c.take()?.text()?,
            tag: c.take()?.opt_text()?,
            attempts: c.take()?.int()?,
            origin: c.take()?.text()?,
            since: c.take()?.int()?,
            created_at: c.take()?.int()?,
            window: {
                let (rule, human_agent, hold_until) = (
                    c.take()?.opt_text()?,
                    c.take()?.int()?,
                    c.take()?.opt_int()?,
                );
                window_rule(rule.as_deref(), human_agent != 0, hold_until)?
            },
            last_error: c.take()?.opt_text()?,
            lease_until: c.take()?.int()?,
        })
    }
}

/// The stored rule (`outside_window`, `human_agent`, `hold_until`).
fn window_rule(
    rule: Option<&str>,
    human_agent: bool,
    hold_until: Option<i64>,
) -> anyhow::Result<Option<WindowRule>> {
    let outside = match (rule, hold_until) {
        (None, _) => return Ok(None),
        (Some("reject"), _) => OutsideWindow::Reject,
        (Some("hold"), Some(until)) => OutsideWindow::Hold { until },
        (Some(other), _) => anyhow::bail!("{other:?} is not an outside-window rule with its end"),
    };
    Ok(Some(WindowRule {
        outside,
        human_agent,
    }))
}

/// A stored row as tests, operators and the status API see it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct OutboxRecord {
    pub id: i64,
    pub public_id: Option<String>,
    pub page_id: String,
    pub psid: String,
    pub body: String,
    pub messaging_type: String,
    pub tag: Option<String>,
    pub origin: String,
    pub state: String,
    pub attempts: i64,
    pub error_code: Option<i64>,
    pub error_subcode: Option<i64>,
    pub error_message: Option<String>,
    pub message_id: Option<String>,
    pub created_at: i64,
    pub sent_at: Option<i64>,
    pub hold_until: Option<i64>,
}

pub(crate) const RECORD_COLUMNS: &str =
    "id, public_id, page_id, psid, body, messaging_type, tag, origin,
     state, attempts, error_code, error_subcode, error_message, message_id, created_at, sent_at,
     hold_until";

/// The claim statement (see `claim_statement!`; `lapsed`: also rows whose
/// lease ran out). Messages of a paused Page
/// (any row in `page_pauses`, see `store::pauses`) stay queued and are
/// passed over. The check costs unpaused Pages nothing while no Page is
/// paused: the uncorrelated `NOT EXISTS` is evaluated once per claim (a
/// 256-row claim among 200,000 queued rows took the same time with it as
/// without). While some Page is paused, the paused Pages are read once per
/// claim into a lookup (SQLite's ephemeral index, Postgres's hashed
/// subplan) that each candidate row is checked against.
pub fn claim_sql(postgres: bool, lapsed: bool) -> &'static str {
    claim_statement!(
        postgres,
        lapsed,
        "outbox",
        "queued",
        "sending",
        "id, page_id, psid, body, messaging_type, tag, attempts, origin,
         COALESCE(retry_since, created_at), created_at, outside_window, human_agent, hold_until,
         error_message, locked_until",
        "AND (NOT EXISTS (SELECT 1 FROM page_pauses)
               OR r.page_id NOT IN (SELECT page_id FROM page_pauses))"
    )
}

/// Receipts move a person's sent messages along. Each statement reads only
/// the rows it changes through the partial index `outbox_receipts` on
/// `(page_id, psid, sent_at) WHERE state IN ('sent', 'delivered')`: SQLite
/// uses a partial index only when the query repeats its condition, hence
/// the `state IN (…)` beside `state = 'sent'` in the first.
pub const DELIVERED_WATERMARK_SQL: &str = "UPDATE outbox SET state = 'delivered'
     WHERE page_id = $1 AND psid = $2 AND state IN ('sent', 'delivered') AND state = 'sent'
       AND sent_at <= $3";
pub const READ_WATERMARK_SQL: &str = "UPDATE outbox SET state = 'read'
     WHERE page_id = $1 AND psid = $2 AND state IN ('sent', 'delivered') AND sent_at <= $3";
/// Instagram's read receipt: the message it names and those sent before.
pub const READ_UP_TO_MID_SQL: &str = "UPDATE outbox SET state = 'read'
     WHERE page_id = $1 AND psid = $2 AND state IN ('sent', 'delivered')
       AND sent_at <= (SELECT MAX(r.sent_at) FROM outbox r
                       WHERE r.page_id = $1 AND r.psid = $2 AND r.message_id = $3)";
/// A delivery receipt's mids (through `outbox_message_id`).
pub const DELIVERED_MID_SQL: &str =
    "UPDATE outbox SET state = 'delivered' WHERE message_id = $1 AND state = 'sent'";

/// `/metrics` counts through partial indexes holding only these rows
/// (`outbox_waiting`, `outbox_leases`, `outbox_hold_expiry`), never the sent history; see
/// `inbox::INBOX_DEPTH_SQL` for why counting beats gauges kept in memory.
pub const OUTBOX_DEPTH_SQL: &str = "SELECT 'queued', COUNT(*) FROM outbox WHERE state = 'queued'
     UNION ALL SELECT 'sending', COUNT(*) FROM outbox WHERE state = 'sending'";
pub const OUTBOX_HELD_SQL: &str = "SELECT COUNT(*) FROM outbox WHERE state = 'held'";

/// The statements inserting `messages` into the outbox.
pub(crate) fn insert_statements(messages: &[&NewOutboxMessage], now: i64) -> Vec<Stmt> {
    chunks(messages)
        .map(|chunk| {
            let mut insert = Stmt::new(
                "INSERT INTO outbox (page_id, psid, body, messaging_type, tag, origin, inbox_id,
                                     state, public_id, api_key_id, hold_until,
                                     outside_window, human_agent, next_attempt_at, created_at) ",
            );
            insert.values(chunk, |row, m| {
                row.bind(m.page_id.as_str())
                    .bind(m.psid.as_str())
                    .bind(m.body.as_str())
                    .bind(m.messaging_type.as_str())
                    .bind(m.tag.as_deref())
                    .bind(m.origin)
                    .bind(m.inbox_id)
                    .bind(m.state.as_str())
                    .bind(m.public_id.as_deref())
                    .bind(m.api_key_id)
                    .bind(m.hold_until.or(m.window.and_then(|w| w.hold_until())))
                    .bind(m.window.map(|w| w.outside.name()))
                    .bind(i64::from(m.window.is_some_and(|w| w.human_agent)))
                    .bind(now)
                    .bind(now);
            });
            insert
        })
        .collect()
}

/// Queues the held messages of a chunk of people, `(page_id, psid)`, who
/// wrote within the standard messaging window and whose thread is this
/// app's (only the thread's owner can send).
pub(crate) fn release_held_statement(people: &[(&str, &str)], now: i64) -> Stmt {
    let mut release = Stmt::new(
        "UPDATE outbox SET state = 'queued', messaging_type = 'UPDATE', tag = NULL, next_attempt_at = ",
    );
    release
        .bind(now)
        .push(", retry_since = ")
        .bind(now)
        .push(" WHERE state = 'held' AND hold_until > ")
        .bind(now)
        .push(
            " AND EXISTS (SELECT 1 FROM conversations c WHERE c.page_id = outbox.page_id
               AND c.psid = outbox.psid AND c.thread_owner IS NULL AND c.last_inbound_at > ",
        )
        .bind(now - crate::domain::window::STANDARD_WINDOW_MS)
        .push(") AND (page_id, psid) IN (")
        .values(people, |row, (page_id, psid)| {
            row.bind(*page_id).bind(*psid);
        })
        .push(")");
    release
}

impl Store {
    /// Queues messages outside any other change (operators, tests).
    pub async fn enqueue(&self, messages: &[NewOutboxMessage], now: i64) -> anyhow::Result<()> {
        let refs: Vec<&NewOutboxMessage> = messages.iter().collect();
        with_writer!(self, pool => async {
            let mut tx = pool.begin().await?;
            for insert in insert_statements(&refs, now) {
                Sqlx(&mut *tx).run(&insert).await?;
            }
            tx.commit().await?;
            anyhow::Ok(())
        }.await)
        .context("queueing outbox messages")
    }

    pub async fn outbox_record(&self, id: i64) -> anyhow::Result<Option<OutboxRecord>> {
        let sql = format!("SELECT {RECORD_COLUMNS} FROM outbox WHERE id = $1");
        let row =
            with_reader!(self, pool => sqlx::query_as(&sql).bind(id).fetch_optional(pool).await)
                .context("reading an outbox row")?;
        Ok(row)
    }

    pub async fn outbox_records(&self) -> anyhow::Result<Vec<OutboxRecord>> {
        let sql = format!("SELECT {RECORD_COLUMNS} FROM outbox ORDER BY id");
        let rows = with_reader!(self, pool => sqlx::query_as(&sql).fetch_all(pool).await)
            .context("listing outbox rows")?;
        Ok(rows)
    }

    /// Open rows by state, for `/metrics`.
    pub async fn outbox_depths(&self) -> anyhow::Result<Vec<(String, i64)>> {
        let open: Vec<(String, i64)> =
            with_reader!(self, pool => sqlx::query_as(OUTBOX_DEPTH_SQL).fetch_all(pool).await)
                .context("counting outbox rows")?;
        let (held,): (i64,) =
            with_reader!(self, pool => sqlx::query_as(OUTBOX_HELD_SQL).fetch_one(pool).await)
                .context("counting held outbox rows")?;
        Ok(super::depths(&["queued", "sending"], open, ("held", held)))
    }
}
