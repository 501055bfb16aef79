//! Retention (`RETENTION_DAYS`, pruned by `workers::retention`): what people
//! wrote and what was sent to them is not kept past its use.
//!
//! - `inbox`: rows received before the cutoff that are `done` or `dead`
//!   (pending and processing rows are work, never pruned);
//! - `outbox`: rows created before the cutoff that are finished (`sent`,
//!   `delivered`, `read`, `failed`, `expired`, `cancelled`); `queued`,
//!   `held` and `sending` rows are work, never pruned;
//! - `psid_lookups`: `ids_for_apps` answers older than the cutoff (the next
//!   message of that person asks again);
//! - `conversations`: nothing from the person (`last_inbound_at`) and no
//!   change (`updated_at`) since the cutoff, and nothing open for them: no
//!   pending or processing inbox row, no queued, held or sending message.
//!
//! Idempotency answers (`api_requests`) are the sweeper's: kept 24 hours,
//! less than the shortest retention (two days, longer than Meta redelivers
//! a webhook event), so an answer still replayed never names a pruned
//! message, and a redelivered event is still known.
//!
//! Each batch is one short statement of at most `limit` rows, so a pass
//! never holds SQLite's write lock for long; the worker pauses between
//! batches. No index is added for it (each would cost the webhook's hot
//! inserts): `inbox` and `outbox` are walked in id order (ids grow with
//! time) in windows of `limit` ids, and the walk stops at the first window
//! holding a row younger than the cutoff; `psid_lookups` and
//! `conversations` are walked along their primary key.

use anyhow::Context;

use super::{with_reader, with_writer, Store};

pub const DAY_MS: i64 = 86_400_000;

/// A table retention prunes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Prune {
    Inbox,
    Outbox,
    PsidLookups,
    /// Last: a conversation goes once its rows have.
    Conversations,
}

impl Prune {
    /// Every table, in the order a pass prunes them.
    pub const ALL: [Prune; 4] = [
        Prune::Inbox,
        Prune::Outbox,
        Prune::PsidLookups,
        Prune::Conversations,
    ];

    pub fn table(self) -> &'static str {
        match self {
            Prune::Inbox => "inbox",
            Prune::Outbox => "outbox",
            Prune::PsidLookups => "psid_lookups",
            Prune::Conversations => "conversations",
        }
    }
}

/// Where the walk of a table stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cursor {
    Start,
    /// After this id (`inbox`, `outbox`).
    Id(i64),
    /// After this `(page_id, psid)`.
    Key(String, String),
}

/// One batch's outcome: rows pruned, and where the next batch starts
/// (`None`: the pass of this table is over).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Batch {
    pub pruned: u64,
    pub next: Option<Cursor>,
}

/// How a pass is paced.
#[derive(Debug, Clone, Copy)]
pub struct Pace {
    /// Rows a statement looks at, at most.
    pub batch: i64,
    /// The pause between batches.
    pub pause: std::time::Duration,
}

/// The window of ids and the pruning statement of a table walked by id.
fn by_id(what: Prune) -> (&'static str, &'static str) {
    match what {
        Prune::Inbox => (
            "SELECT id, received_at FROM inbox WHERE id > $1 ORDER BY id LIMIT $2",
            "DELETE FROM inbox WHERE id > $1 AND id <= $2 AND received_at < $3
               AND state IN ('done', 'dead')",
        ),
        Prune::Outbox => (
            "SELECT id, created_at FROM outbox WHERE id > $1 ORDER BY id LIMIT $2",
            "DELETE FROM outbox WHERE id > $1 AND id <= $2 AND created_at < $3
               AND state IN ('sent', 'delivered', 'read', 'failed', 'expired', 'cancelled')",
        ),
        Prune::PsidLookups | Prune::Conversations => unreachable!("walked by key, not by id"),
    }
}

/// The conversations' pruning statement. Its inbox check differs by
/// backend: SQLite indexes by conversation only the rows in hand
/// (`inbox_in_hand`, see `inbox_walk`), so there the waiting rows'
/// conversations are read once per statement, from `inbox_waiting`, as one
/// value each: against a row value, SQLite's `NOT IN` reads the whole
/// subquery again for every conversation it does not find there (its check
/// for nulls), seconds a statement under a backlog.
macro_rules! conversations_delete {
    ($postgres:expr) => {
        match $postgres {
            true => conversations_delete!(@with
                "NOT EXISTS (SELECT 1 FROM inbox i WHERE i.page_id = conversations.page_id
                     AND i.psid = conversations.psid AND i.state IN ('pending', 'processing'))"),
            false => conversations_delete!(@with
                "NOT EXISTS (SELECT 1 FROM inbox i INDEXED BY inbox_in_hand
                     WHERE i.page_id = conversations.page_id AND i.psid = conversations.psid
                       AND i.state = 'processing')
               AND page_id || char(31) || psid NOT IN (
                     SELECT w.page_id || char(31) || w.psid FROM inbox w INDEXED BY inbox_waiting
                      WHERE w.state = 'pending')"),
        }
    };
    (@with $inbox:literal) => {
        concat!(
            "DELETE FROM conversations WHERE (page_id, psid) > ($1, $2) AND (page_id, psid) <= ($3, $4)
               AND updated_at < $5 AND COALESCE(last_inbound_at, 0) < $5
               AND ", $inbox, "
               AND NOT EXISTS (SELECT 1 FROM outbox o WHERE o.page_id = conversations.page_id
                     AND o.psid = conversations.psid AND o.state IN ('queued', 'sending'))
               AND NOT EXISTS (SELECT 1 FROM outbox h WHERE h.page_id = conversations.page_id
                     AND h.psid = conversations.psid AND h.state = 'held')"
        )
    };
}

/// The window of keys and the pruning statement of a table walked by
/// `(page_id, psid)`. The open-row checks repeat the conditions of the
/// partial indexes (`inbox_open` on Postgres, `inbox_in_hand` and
/// `inbox_waiting` on SQLite, `outbox_open`, `outbox_held`), so SQLite uses
/// them.
fn by_key(what: Prune, postgres: bool) -> (&'static str, &'static str) {
    match what {
        Prune::PsidLookups => (
            "SELECT page_id, psid FROM psid_lookups WHERE (page_id, psid) > ($1, $2)
             ORDER BY page_id, psid LIMIT $3",
            "DELETE FROM psid_lookups WHERE (page_id, psid) > ($1, $2) AND (page_id, psid) <= ($3, $4)
               AND looked_up_at < $5",
        ),
        Prune::Conversations => (
            "SELECT page_id, psid FROM conversations WHERE (page_id, psid) > ($1, $2)
             ORDER BY page_id, psid LIMIT $3",
            conversations_delete!(postgres),
        ),
        Prune::Inbox | Prune::Outbox => unreachable!("walked by id, not by key"),
    }
}

impl Store {
    /// Prunes one batch of `what` older than `cutoff` (epoch ms), from
    /// `after`, looking at `limit` rows at most.
    pub async fn prune_batch(
        &self,
        what: Prune,
        cutoff: i64,
        after: &Cursor,
        limit: i64,
    ) -> anyhow::Result<Batch> {
        let batch = match what {
            Prune::Inbox | Prune::Outbox => self.prune_by_id(what, cutoff, after, limit).await,
            Prune::PsidLookups | Prune::Conversations => {
                self.prune_by_key(what, cutoff, after, limit).await
            }
        };
        batch.with_context(|| format!("pruning old {} rows", what.table()))
    }

    async fn prune_by_id(
        &self,
        what: Prune,
        cutoff: i64,
        after: &Cursor,
        limit: i64,
    ) -> Result<Batch, sqlx::Error> {
        let after = match after {
            Cursor::Id(id) => *id,
            _ => 0,
        };
        let (window_sql, delete_sql) = by_id(what);
        let window: Vec<(i64, i64)> = with_reader!(self, pool => sqlx::query_as(window_sql)
            .bind(after)
            .bind(limit)
            .fetch_all(pool)
            .await)?;
        let Some(&(last, _)) = window.last() else {
            return Ok(Batch {
                pruned: 0,
                next: None,
            });
        };
        let pruned = with_writer!(self, pool => sqlx::query(delete_sql)
            .bind(after)
            .bind(last)
            .bind(cutoff)
            .execute(pool)
            .await
            .map(|done| done.rows_affected()))?;
        let young = window.iter().any(|&(_, at)| at >= cutoff);
        let full = window.len() as i64 >= limit;
        Ok(Batch {
            pruned,
            next: (full && !young).then_some(Cursor::Id(last)),
        })
    }

    async fn prune_by_key(
        &self,
        what: Prune,
        cutoff: i64,
        after: &Cursor,
        limit: i64,
    ) -> Result<Batch, sqlx::Error> {
        let (page_id, psid) = match after {
            Cursor::Key(page_id, psid) => (page_id.as_str(), psid.as_str()),
            _ => ("", ""),
        };
        let (window_sql, delete_sql) = by_key(what, self.is_postgres());
        let window: Vec<(String, String)> = with_reader!(self, pool => sqlx::query_as(window_sql)
            .bind(page_id)
            .bind(psid)
            .bind(limit)
            .fetch_all(pool)
            .await)?;
        let Some((last_page, last_psid)) = window.last() else {
            return Ok(Batch {
                pruned: 0,
                next: None,
            });
        };
        let pruned = with_writer!(self, pool => sqlx::query(delete_sql)
            .bind(page_id)
            .bind(psid)
            .bind(last_page)
            .bind(last_psid)
            .bind(cutoff)
            .execute(pool)
            .await
            .map(|done| done.rows_affected()))?;
        let full = window.len() as i64 >= limit;
        Ok(Batch {
            pruned,
            next: full.then(|| Cursor::Key(last_page.clone(), last_psid.clone())),
        })
    }

    /// Prunes `what` older than `cutoff`, batch after batch at `pace`,
    /// while `go_on()` holds (checked between batches); the rows pruned.
    pub async fn prune(
        &self,
        what: Prune,
        cutoff: i64,
        pace: Pace,
        go_on: impl Fn() -> bool,
    ) -> anyhow::Result<u64> {
        let mut cursor = Cursor::Start;
        let mut pruned = 0;
        loop {
            let batch = self.prune_batch(what, cutoff, &cursor, pace.batch).await?;
            pruned += batch.pruned;
            match batch.next {
                Some(next) if go_on() => cursor = next,
                _ => return Ok(pruned),
            }
            tokio::time::sleep(pace.pause).await;
        }
    }
}
