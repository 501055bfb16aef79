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

/// The Send API refused the Page's token (Graph error 190); cleared when a
/// valid token is found (`debug_token`, or a Page admin's login storing a
/// new one).
pub const TOKEN_INVALID: &str = "token_invalid";

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

/// Adds a reason for an event at `$5`, unless an event as late or later was
/// already applied for it (a redelivered `block` after its `unblock`).
const PAUSE_AT_SQL: &str = "INSERT INTO page_pauses (page_id, reason, detail, paused_at)
     SELECT $1, $2, $3, $4 WHERE NOT EXISTS (SELECT 1 FROM page_pause_events e
         WHERE e.page_id = $1 AND e.reason = $2 AND e.event_at > $5)
     ON CONFLICT (page_id, reason) DO NOTHING";
/// Clears a reason for an event at `$3`, unless a later event was applied.
const RESUME_AT_SQL: &str = "DELETE FROM page_pauses WHERE page_id = $1 AND reason = $2
     AND NOT EXISTS (SELECT 1 FROM page_pause_events e
         WHERE e.page_id = $1 AND e.reason = $2 AND e.event_at > $3)";
/// Remembers the latest event applied for a reason (never moves back).
const EVENT_AT_SQL: &str = "INSERT INTO page_pause_events (page_id, reason, event_at)
     VALUES ($1, $2, $3) ON CONFLICT (page_id, reason) DO UPDATE
     SET event_at = excluded.event_at WHERE page_pause_events.event_at < excluded.event_at";

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
/// pausing or resuming a Page while it handles Meta's event): it writes 1
/// when it changed the set, else 0. Made only with a checked reason.
#[derive(Debug, Clone)]
pub struct PauseChange(Change);

#[derive(Debug, Clone)]
enum Change {
    /// Adds the reason for an event at `event_at`, unless a later event
    /// was applied for it.
    Pause {
        page_id: String,
        reason: String,
        detail: Option<String>,
        at: i64,
        event_at: i64,
    },
    /// Clears the reason for an event at `event_at`, unless a later event
    /// was applied for it.
    Resume {
        page_id: String,
        reason: String,
        event_at: i64,
    },
    /// Remembers the event's time as the reason's latest.
    EventAt {
        page_id: String,
        reason: String,
        event_at: i64,
    },
}

impl PauseChange {
    /// Pausing for an event Meta timestamped `event_at` (ms), in order: the
    /// pause (1 when the reason is new, 0 when it was set or the event is
    /// older than the latest one applied for the reason), then the event's
    /// time. Redoing both after a crash between them is harmless.
    pub fn pause(
        page_id: &str,
        reason: &str,
        detail: Option<&str>,
        now: i64,
        event_at: i64,
    ) -> anyhow::Result<[PauseChange; 2]> {
        check_reason(reason)?;
        let pause = PauseChange(Change::Pause {
            page_id: page_id.to_string(),
            reason: reason.to_string(),
            detail: detail.map(str::to_string),
            at: now,
            event_at,
        });
        Ok([pause, PauseChange::event_at(page_id, reason, event_at)])
    }

    /// Resuming for an event timestamped `event_at`: the clearing (1 when
    /// the reason was set and no later event was applied, else 0), then the
    /// event's time.
    pub fn resume(page_id: &str, reason: &str, event_at: i64) -> anyhow::Result<[PauseChange; 2]> {
        check_reason(reason)?;
        let resume = PauseChange(Change::Resume {
            page_id: page_id.to_string(),
            reason: reason.to_string(),
            event_at,
        });
        Ok([resume, PauseChange::event_at(page_id, reason, event_at)])
    }

    fn event_at(page_id: &str, reason: &str, event_at: i64) -> PauseChange {
        PauseChange(Change::EventAt {
            page_id: page_id.to_string(),
            reason: reason.to_string(),
            event_at,
        })
    }

    pub(crate) fn statement(&self) -> Stmt {
        match &self.0 {
            Change::Pause {
                page_id,
                reason,
                detail,
                at,
                event_at,
            } => Stmt::with_args(
                PAUSE_AT_SQL,
                vec![
                    Arg::from(page_id.as_str()),
                    Arg::from(reason.as_str()),
                    Arg::from(detail.as_deref()),
                    Arg::Int(*at),
                    Arg::Int(*event_at),
                ],
            ),
            Change::Resume {
                page_id,
                reason,
                event_at,
            } => Stmt::with_args(
                RESUME_AT_SQL,
                vec![
                    Arg::from(page_id.as_str()),
                    Arg::from(reason.as_str()),
                    Arg::Int(*event_at),
                ],
            ),
            Change::EventAt {
                page_id,
                reason,
                event_at,
            } => Stmt::with_args(
                EVENT_AT_SQL,
                vec![
                    Arg::from(page_id.as_str()),
                    Arg::from(reason.as_str()),
                    Arg::Int(*event_at),
                ],
            ),
        }
    }
}

impl Store {
    /// The time of the latest event applied for the Page's `reason`, if any
    /// (kept after the reason is cleared).
    pub async fn latest_pause_event(
        &self,
        page_id: &str,
        reason: &str,
    ) -> anyhow::Result<Option<i64>> {
        let row: Option<(i64,)> = with_reader!(self, pool => sqlx::query_as(
            "SELECT event_at FROM page_pause_events WHERE page_id = $1 AND reason = $2")
            .bind(page_id)
            .bind(reason)
            .fetch_optional(pool)
            .await)
        .context("reading a pause reason's latest event")?;
        Ok(row.map(|(at,)| at))
    }

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
