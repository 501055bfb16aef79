//! What finally failed: dead inbox rows and failed outbox rows, listed with
//! their reason for operators, and put back on request (`lexbridge inbox
//! retry`, `lexbridge outbox retry`). A row put back gets a fresh time
//! budget from now (`retry_since`).

use anyhow::Context;

use super::{with_reader, with_writer, Store};

/// A dead inbox row.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct FailedInbox {
    pub id: i64,
    pub page_id: String,
    pub psid: String,
    pub kind: String,
    pub attempts: i64,
    pub last_error: Option<String>,
    pub received_at: i64,
}

/// A failed outbox row.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct FailedOutbox {
    pub id: i64,
    pub public_id: Option<String>,
    pub page_id: String,
    pub psid: String,
    pub origin: String,
    pub attempts: i64,
    pub error_code: Option<i64>,
    pub error_message: Option<String>,
    pub created_at: i64,
}

/// Which failed rows to put back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Retry {
    /// The row with this id (for the outbox, also its `msg_…` public id).
    One(String),
    All,
}

impl Store {
    /// Dead inbox rows, oldest first (through the `inbox_dead` index).
    pub async fn failed_inbox(&self) -> anyhow::Result<Vec<FailedInbox>> {
        with_reader!(self, pool => sqlx::query_as(
            "SELECT id, page_id, psid, kind, attempts, last_error, received_at
             FROM inbox WHERE state = 'dead' ORDER BY id")
            .fetch_all(pool)
            .await)
        .context("listing dead inbox rows")
    }

    /// Failed outbox rows, oldest first (through the `outbox_failed` index).
    pub async fn failed_outbox(&self) -> anyhow::Result<Vec<FailedOutbox>> {
        with_reader!(self, pool => sqlx::query_as(
            "SELECT id, public_id, page_id, psid, origin, attempts, error_code, error_message,
                    created_at
             FROM outbox WHERE state = 'failed' ORDER BY id")
            .fetch_all(pool)
            .await)
        .context("listing failed outbox rows")
    }

    /// Puts dead inbox rows back to be processed now; returns how many.
    pub async fn retry_inbox(&self, which: &Retry, now: i64) -> anyhow::Result<u64> {
        let sql = "UPDATE inbox SET state = 'pending', next_attempt_at = $1, retry_since = $1
                   WHERE state = 'dead'";
        let done = match which {
            Retry::All => with_writer!(self, pool => sqlx::query(sql)
                .bind(now)
                .execute(pool)
                .await
                .map(|r| r.rows_affected())),
            Retry::One(id) => {
                let id: i64 = id
                    .trim()
                    .parse()
                    .with_context(|| format!("{id:?} is not an inbox row id (a number)"))?;
                with_writer!(self, pool => sqlx::query(&format!("{sql} AND id = $2"))
                    .bind(now)
                    .bind(id)
                    .execute(pool)
                    .await
                    .map(|r| r.rows_affected()))
            }
        };
        done.context("putting dead inbox rows back")
    }

    /// Queues failed outbox rows again now; returns how many.
    pub async fn retry_outbox(&self, which: &Retry, now: i64) -> anyhow::Result<u64> {
        let sql = "UPDATE outbox SET state = 'queued', next_attempt_at = $1, retry_since = $1
                   WHERE state = 'failed'";
        let done = match which {
            Retry::All => with_writer!(self, pool => sqlx::query(sql)
                .bind(now)
                .execute(pool)
                .await
                .map(|r| r.rows_affected())),
            Retry::One(id) => match id.trim().parse::<i64>() {
                Ok(id) => with_writer!(self, pool => sqlx::query(&format!("{sql} AND id = $2"))
                    .bind(now)
                    .bind(id)
                    .execute(pool)
                    .await
                    .map(|r| r.rows_affected())),
                Err(_) => with_writer!(self, pool => sqlx::query(
                    &format!("{sql} AND public_id = $2"))
                    .bind(now)
                    .bind(id.trim())
                    .execute(pool)
                    .await
                    .map(|r| r.rows_affected())),
            },
        };
        done.context("queueing failed outbox rows again")
    }
}
