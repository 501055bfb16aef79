//! What finally failed: dead inbox rows and failed outbox rows, listed with
//! their reason for operators, and put back on request (`lexbridge inbox
//! retry`, `lexbridge outbox retry`). A row put back gets a fresh time
//! budget from now (`retry_since`).

use anyhow::Context;

use super::statement::{Arg, Exec, Sqlx, Stmt};
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
        let mut stmt = Stmt::with_args(
            "UPDATE inbox SET state = 'pending', next_attempt_at = $1, retry_since = $1
             WHERE state = 'dead'",
            vec![Arg::Int(now)],
        );
        if let Retry::One(id) = which {
            let id: i64 = id
                .trim()
                .parse()
                .with_context(|| format!("{id:?} is not an inbox row id (a number)"))?;
            stmt.push(" AND id = ").bind(id);
        }
        self.put_back(&stmt)
            .await
            .context("putting dead inbox rows back")
    }

    /// Queues failed outbox rows again now; returns how many.
    pub async fn retry_outbox(&self, which: &Retry, now: i64) -> anyhow::Result<u64> {
        let mut stmt = Stmt::with_args(
            // Not an API message to a person who unlinked since it was
            // accepted: unlinking cancels those (see `store::unlink`).
            "UPDATE outbox SET state = 'queued', next_attempt_at = $1, retry_since = $1
             WHERE state = 'failed'
               AND NOT (origin IN ('api', 'link_notice') AND EXISTS (
                   SELECT 1 FROM link_tombstones t WHERE t.page_id = outbox.page_id
                      AND t.psid = outbox.psid AND t.unlinked_at >= outbox.created_at))",
            vec![Arg::Int(now)],
        );
        if let Retry::One(id) = which {
            match id.trim().parse::<i64>() {
                Ok(id) => stmt.push(" AND id = ").bind(id),
                Err(_) => stmt.push(" AND public_id = ").bind(id.trim()),
            };
        }
        self.put_back(&stmt)
            .await
            .context("queueing failed outbox rows again")
    }

    /// Runs one statement that puts rows back; the rows it changed.
    async fn put_back(&self, stmt: &Stmt) -> anyhow::Result<u64> {
        with_writer!(self, pool => async {
            let mut conn = pool.acquire().await?;
            Sqlx(&mut *conn).run(stmt).await
        }.await)
    }
}
