//! Paused Pages: the one mechanism that stops a Page's sends. A Page
//! carries a set of pause reasons (`page_pauses`, one row per reason); each
//! reason is cleared only by its own event, and the outbox claim takes the
//! Page's messages again once the set is empty. Until then they stay
//! `queued`.

use anyhow::{ensure, Context};

use super::statement::{Arg, Stmt};
use super::{with_reader, with_writer, Store};

/// Meta blocked the Page for a Messenger policy violation
/// (`messaging_policy_enforcement` `block`; cleared by `unblock`).
pub const POLICY_BLOCK: &str = "policy_block";

/// One reason a Page is paused.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct PagePause {
    pub page_id: String,
    pub reason: String,
    /// What the pausing event said (Meta's reason text), if anything.
    pub detail: Option<String>,
    pub paused_at: i64,
}

/// Adds a reason; an existing one keeps its first time and detail.
const PAUSE_SQL: &str = "INSERT INTO page_pauses (page_id, reason, detail, paused_at)
     VALUES ($1, $2, $3, $4) ON CONFLICT (page_id, reason) DO NOTHING";
const RESUME_SQL: &str = "DELETE FROM page_pauses WHERE page_id = $1 AND reason = $2";

/// Reasons are short names (`policy_block`, `invalid_token`…): lowercase
/// letters and underscores.
fn check_reason(reason: &str) -> anyhow::Result<()> {
    ensure!(
        !reason.is_empty() && reason.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'),
        "a pause reason is lowercase letters and underscores, not {reason:?}"
    );
    Ok(())
}

/// A change to a Page's pauses made through the group committer (a worker
/// pausing or resuming a Page while it handles an event): it writes 1 when
/// it changed the set, else 0. Made only with a checked reason.
#[derive(Debug, Clone)]
pub struct PauseChange(Change);

#[derive(Debug, Clone)]
enum Change {
    Pause {
        page_id: String,
        reason: String,
        detail: Option<String>,
        at: i64,
    },
    Resume {
        page_id: String,
        reason: String,
    },
}

impl PauseChange {
    /// `pause_page` as a write (1 when the reason is new).
    pub fn pause(
        page_id: &str,
        reason: &str,
        detail: Option<&str>,
        now: i64,
    ) -> anyhow::Result<PauseChange> {
        check_reason(reason)?;
        Ok(PauseChange(Change::Pause {
            page_id: page_id.to_string(),
            reason: reason.to_string(),
            detail: detail.map(str::to_string),
            at: now,
        }))
    }

    /// `resume_page` as a write (1 when the reason was set).
    pub fn resume(page_id: &str, reason: &str) -> anyhow::Result<PauseChange> {
        check_reason(reason)?;
        Ok(PauseChange(Change::Resume {
            page_id: page_id.to_string(),
            reason: reason.to_string(),
        }))
    }

    pub(crate) fn statement(&self) -> Stmt {
        match &self.0 {
            Change::Pause {
                page_id,
                reason,
                detail,
                at,
            } => Stmt::with_args(
                PAUSE_SQL,
                vec![
                    Arg::from(page_id.as_str()),
                    Arg::from(reason.as_str()),
                    Arg::from(detail.as_deref()),
                    Arg::Int(*at),
                ],
            ),
            Change::Resume { page_id, reason } => Stmt::with_args(
                RESUME_SQL,
                vec![Arg::from(page_id.as_str()), Arg::from(reason.as_str())],
            ),
        }
    }
}

impl Store {
    /// Pauses the Page's sends for `reason`; true when the reason is new.
    pub async fn pause_page(
        &self,
        page_id: &str,
        reason: &str,
        detail: Option<&str>,
        now: i64,
    ) -> anyhow::Result<bool> {
        check_reason(reason)?;
        let done = with_writer!(self, pool => sqlx::query(PAUSE_SQL)
            .bind(page_id)
            .bind(reason)
            .bind(detail)
            .bind(now)
            .execute(pool)
            .await
            .map(|r| r.rows_affected()))
        .context("pausing a page")?;
        Ok(done > 0)
    }

    /// Clears `reason` from the Page's pauses; true when it was set. The
    /// Page sends again when no reason is left.
    pub async fn resume_page(&self, page_id: &str, reason: &str) -> anyhow::Result<bool> {
        check_reason(reason)?;
        let done = with_writer!(self, pool => sqlx::query(RESUME_SQL)
            .bind(page_id)
            .bind(reason)
            .execute(pool)
            .await
            .map(|r| r.rows_affected()))
        .context("resuming a page")?;
        Ok(done > 0)
    }

    /// The reasons the Page is paused for, sorted; empty when it sends.
    pub async fn page_pause_reasons(&self, page_id: &str) -> anyhow::Result<Vec<String>> {
        let rows: Vec<(String,)> = with_reader!(self, pool => sqlx::query_as(
            "SELECT reason FROM page_pauses WHERE page_id = $1 ORDER BY reason")
            .bind(page_id)
            .fetch_all(pool)
            .await)
        .context("reading a page's pauses")?;
        Ok(rows.into_iter().map(|(r,)| r).collect())
    }

    /// Every pause of every Page (a tiny table), for `/metrics` and the
    /// start-up log.
    pub async fn page_pauses(&self) -> anyhow::Result<Vec<PagePause>> {
        let rows = with_reader!(self, pool => sqlx::query_as(
            "SELECT page_id, reason, detail, paused_at FROM page_pauses ORDER BY page_id, reason")
            .fetch_all(pool)
            .await)
        .context("listing paused pages")?;
        Ok(rows)
    }
}
