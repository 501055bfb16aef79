//! The outbox: every message to send, claimed by the outbox worker, at most
//! the oldest open message of each recipient at a time.

use anyhow::Context;

use super::statement::{Columns, Exec, Sqlx, Value};
use super::{claim_statement, with_reader, with_writer, Store};

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
    /// `queued`, or `held` until the person writes again.
    pub state: &'static str,
    /// The id API callers know the message by.
    pub public_id: Option<String>,
    pub api_key_id: Option<i64>,
    /// A held message expires at this time.
    pub hold_until: Option<i64>,
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
            state: "queued",
            public_id: None,
            api_key_id: None,
            hold_until: None,
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
        })
    }
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

/// What the Send API said, as the outbox keeps it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SendFailure {
    pub code: Option<i64>,
    pub subcode: Option<i64>,
    pub message: String,
}

/// The end of one send attempt.
#[derive(Debug, Clone, PartialEq)]
pub enum OutboxOutcome {
    Sent {
        id: i64,
        attempts: i64,
        message_id: Option<String>,
        at: i64,
    },
    Retry {
        id: i64,
        attempts: i64,
        next_attempt_at: i64,
        failure: SendFailure,
    },
    Failed {
        id: i64,
        attempts: i64,
        failure: SendFailure,
    },
}

pub(crate) const RECORD_COLUMNS: &str =
    "id, public_id, page_id, psid, body, messaging_type, tag, origin,
     state, attempts, error_code, error_subcode, error_message, message_id, created_at, sent_at,
     hold_until";

/// The claim statement (see `claim_statement!`).
pub(crate) fn claim_sql(postgres: bool) -> &'static str {
    claim_statement!(
        postgres,
        "outbox",
        "queued",
        "sending",
        "id, page_id, psid, body, messaging_type, tag, attempts"
    )
}

impl Store {
    /// Queues messages outside any other change (operators, tests).
    pub async fn enqueue(&self, messages: &[NewOutboxMessage], now: i64) -> anyhow::Result<()> {
        let refs: Vec<&NewOutboxMessage> = messages.iter().collect();
        with_writer!(self, pool => async {
            let mut tx = pool.begin().await?;
            for insert in super::writer::insert_outbox(&refs, now) {
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

    /// Rows by state, for `/metrics`.
    pub async fn outbox_depths(&self) -> anyhow::Result<Vec<(String, i64)>> {
        let rows = with_reader!(self, pool => sqlx::query_as(
            "SELECT state, COUNT(*) FROM outbox WHERE state IN ('queued', 'sending', 'held') GROUP BY state")
            .fetch_all(pool)
            .await)
        .context("counting outbox rows")?;
        Ok(rows)
    }
}
