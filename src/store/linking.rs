//! Writes of account linking: a login's account and links in one
//! transaction, single links from Messenger, unlinking, single-use link
//! tokens, remembered reverse lookups and spent login states.

use anyhow::Context;

use super::{with_writer, Store};

/// The account a PSID is linked to, read in the open transaction `$tx`;
/// SQL errors return from the enclosing block.
macro_rules! link_owner {
    ($tx:ident, $page_id:expr, $psid:expr) => {{
        let owner: Option<(String,)> =
            sqlx::query_as("SELECT account_id FROM links WHERE page_id = $1 AND psid = $2")
                .bind($page_id)
                .bind($psid)
                .fetch_optional(&mut *$tx)
                .await?;
        owner.map(|(o,)| o)
    }};
}
pub(crate) use link_owner;

/// In the open transaction `$tx`: links `$link` (a `NewLink`) unless
/// `decide` says otherwise, clears the PSID's tombstone and pending links,
/// and queues the link's announcement in its Messenger thread. Evaluates to
/// the `LinkChange`; SQL errors return from the enclosing block.
macro_rules! link_in_tx {
    ($tx:ident, $link:expr, $other_owner:expr) => {{
        let link: $crate::store::linking::NewLink<'_> = $link;
        let owner = $crate::store::linking::link_owner!($tx, link.page_id, link.psid);
        let mut change = $crate::store::linking::decide(owner, link.account_id, $other_owner);
        if change == $crate::store::linking::LinkChange::Linked && link.source == "ids_for_apps" {
            let tombstone: Option<(i64,)> = sqlx::query_as(
                "SELECT unlinked_at FROM link_tombstones WHERE page_id = $1 AND psid = $2",
            )
            .bind(link.page_id)
            .bind(link.psid)
            .fetch_optional(&mut *$tx)
            .await?;
            if tombstone.is_some() {
                change = $crate::store::linking::LinkChange::Tombstoned;
            }
        }
        if change == $crate::store::linking::LinkChange::Linked {
            let inserted = sqlx::query($crate::store::linking::INSERT_LINK)
                .bind(link.page_id)
                .bind(link.psid)
                .bind(link.account_id)
                .bind(link.source)
                .bind(link.now)
                .execute(&mut *$tx)
                .await?
                .rows_affected();
            if inserted == 0 {
                // Linked by a concurrent transaction since the read above
                // (Postgres reads committed rows only): decide again on what
                // it wrote, so "keep another account's PSID" holds.
                let owner = $crate::store::linking::link_owner!($tx, link.page_id, link.psid);
                change = $crate::store::linking::decide(owner, link.account_id, $other_owner);
            }
        }
        if matches!(change, $crate::store::linking::LinkChange::Moved { .. }) {
            sqlx::query($crate::store::linking::UPSERT_LINK)
                .bind(link.page_id)
                .bind(link.psid)
                .bind(link.account_id)
                .bind(link.source)
                .bind(link.now)
                .execute(&mut *$tx)
                .await?;
        }
        if matches!(
            change,
            $crate::store::linking::LinkChange::Linked
                | $crate::store::linking::LinkChange::Moved { .. }
        ) {
            for sql in [
                "DELETE FROM link_tombstones WHERE page_id = $1 AND psid = $2",
                "DELETE FROM pending_links WHERE page_id = $1 AND psid = $2",
            ] {
                sqlx::query(sql)
                    .bind(link.page_id)
                    .bind(link.psid)
                    .execute(&mut *$tx)
                    .await?;
            }
            let name: Option<(Option<String>,)> =
                sqlx::query_as("SELECT name FROM accounts WHERE id = $1")
                    .bind(link.account_id)
                    .fetch_optional(&mut *$tx)
                    .await?;
            let body =
                (link.announcement)(link.page_id, link.psid, name.and_then(|(n,)| n).as_deref());
            sqlx::query($crate::store::linking::ANNOUNCE)
                .bind(link.page_id)
                .bind(link.psid)
                .bind(body)
                .bind(link.now - crate::domain::window::STANDARD_WINDOW_MS)
                .bind(link.now + crate::domain::window::DEFAULT_HOLD_MS)
                .bind(link.now)
                .execute(&mut *$tx)
                .await?;
        }
        change
    }};
}
pub(crate) use link_in_tx;

/// What a login stores: the account (token already encrypted) and the PSIDs
/// Meta says belong to this person on `page_id`.
#[derive(Clone)]
pub struct LoginRecord<'a> {
    pub fb_uid: &'a str,
    pub name: Option<&'a str>,
    pub encrypted_token: &'a [u8],
    pub token_expires_at: Option<i64>,
    pub page_id: &'a str,
    pub psids: &'a [String],
    pub now: i64,
    /// The Messenger announcement of a new link, for the account's name.
    pub announcement: Announcement<'a>,
}

/// Builds the outbox `body` announcing a new link in the Messenger thread
/// of (`page_id`, `psid`), from the name of the account it was linked to.
pub type Announcement<'a> = &'a (dyn Fn(&str, &str, Option<&str>) -> String + Sync);

/// One link to make: who, to which account, how, and what to announce.
#[derive(Clone, Copy)]
pub struct NewLink<'a> {
    pub page_id: &'a str,
    pub psid: &'a str,
    pub account_id: &'a str,
    /// ids_for_pages, account_link, ref, ids_for_apps, confirmed.
    pub source: &'a str,
    pub now: i64,
    pub announcement: Announcement<'a>,
}

/// What linking one PSID did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LinkChange {
    /// A new link.
    Linked,
    /// Already linked to this account.
    Unchanged,
    /// Moved from another account (only when Meta vouches for the person).
    Moved { from: String },
    /// Linked to another account and left there.
    Refused { owner: String },
    /// The person unlinked this PSID: only a login links it again, never
    /// the `ids_for_apps` reverse lookup.
    Tombstoned,
}

/// Why a link token could or could not be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenUse {
    /// Spent now, for this account.
    Spent {
        account_id: String,
    },
    /// Spent earlier by the same PSID (a redelivered event).
    AlreadySpentBySame {
        account_id: String,
    },
    /// Spent earlier by someone else.
    Reused,
    Expired,
    Unknown,
}

/// How a link-changing statement should treat a PSID owned by another account.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnOtherOwner {
    Move,
    Keep,
}

impl Store {
    /// `BEGIN IMMEDIATE` on SQLite: these transactions read before they
    /// write, and a deferred one could not upgrade once the group committer
    /// has written in between.
    pub(crate) fn begin_statement(&self) -> &'static str {
        if self.is_postgres() {
            "BEGIN"
        } else {
            "BEGIN IMMEDIATE"
        }
    }

    /// Creates or updates the account of `fb_uid` and links the PSIDs Meta
    /// named, moving one from another account (Meta says it is this person's
    /// now). Returns the account id and what happened to each PSID.
    pub async fn save_login(
        &self,
        record: &LoginRecord<'_>,
    ) -> anyhow::Result<(String, Vec<(String, LinkChange)>)> {
        let new_id = format!("acc_{:016x}", rand::random::<u64>());
        let begin = self.begin_statement();
        let result = with_writer!(self, pool => async {
            let mut tx = pool.begin_with(begin).await?;
            let (account_id,): (String,) = sqlx::query_as(
                "INSERT INTO accounts (id, fb_uid, name, user_token, token_expires_at, created_at, updated_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $6)
                 ON CONFLICT (fb_uid) DO UPDATE SET name = excluded.name,
                     user_token = excluded.user_token, unlinked_at = NULL,
                     token_expires_at = excluded.token_expires_at,
                     updated_at = excluded.updated_at
                 RETURNING id")
                .bind(&new_id)
                .bind(record.fb_uid)
                .bind(record.name)
                .bind(record.encrypted_token)
                .bind(record.token_expires_at)
                .bind(record.now)
                .fetch_one(&mut *tx)
                .await?;
            let mut changes = Vec::new();
            for psid in record.psids {
                let link = NewLink {
                    page_id: record.page_id,
                    psid,
                    account_id: &account_id,
                    source: "ids_for_pages",
                    now: record.now,
                    announcement: record.announcement,
                };
                let change = link_in_tx!(tx, link, OnOtherOwner::Move);
                changes.push((psid.clone(), change));
            }
            tx.commit().await?;
            Ok::<_, sqlx::Error>((account_id, changes))
        }.await);
        result.context("storing a login")
    }

    /// Links one PSID to an account, announcing a new link in its thread.
    /// A PSID whose person unlinked is not linked by `ids_for_apps`.
    pub async fn link_psid(
        &self,
        link: NewLink<'_>,
        other_owner: OnOtherOwner,
    ) -> anyhow::Result<LinkChange> {
        let begin = self.begin_statement();
        let result = with_writer!(self, pool => async {
            let mut tx = pool.begin_with(begin).await?;
            let change = link_in_tx!(tx, link, other_owner);
            tx.commit().await?;
            Ok::<_, sqlx::Error>(change)
        }.await);
        result.context("linking a PSID")
    }

    /// Records a link token issued to an account (the sweeper drops old ones).
    pub async fn store_link_token(
        &self,
        nonce: &str,
        purpose: &str,
        account_id: &str,
        expires_at: i64,
    ) -> anyhow::Result<()> {
        with_writer!(self, pool => sqlx::query(
            "INSERT INTO link_tokens (nonce, purpose, account_id, expires_at) VALUES ($1, $2, $3, $4)")
            .bind(nonce)
            .bind(purpose)
            .bind(account_id)
            .bind(expires_at)
            .execute(pool)
            .await
            .map(|_| ()))
        .context("storing a link token")
    }

    /// Spends a link token for `psid`, at most once.
    pub async fn spend_link_token(
        &self,
        nonce: &str,
        purpose: &str,
        psid: &str,
        now: i64,
    ) -> anyhow::Result<TokenUse> {
        let spent: Option<(String,)> = with_writer!(self, pool => sqlx::query_as(
            "UPDATE link_tokens SET used_at = $4, used_psid = $3
             WHERE nonce = $1 AND purpose = $2 AND used_at IS NULL AND expires_at > $4
             RETURNING account_id")
            .bind(nonce)
            .bind(purpose)
            .bind(psid)
            .bind(now)
            .fetch_optional(pool)
            .await)
        .context("spending a link token")?;
        if let Some((account_id,)) = spent {
            return Ok(TokenUse::Spent { account_id });
        }
        let row: Option<(String, Option<String>, i64)> = with_writer!(self, pool => sqlx::query_as(
            "SELECT account_id, used_psid, expires_at FROM link_tokens
             WHERE nonce = $1 AND purpose = $2")
            .bind(nonce)
            .bind(purpose)
            .fetch_optional(pool)
            .await)
        .context("reading a link token")?;
        Ok(match row {
            None => TokenUse::Unknown,
            Some((account_id, Some(used), _)) if used == psid => {
                TokenUse::AlreadySpentBySame { account_id }
            }
            Some((_, Some(_), _)) => TokenUse::Reused,
            Some(_) => TokenUse::Expired,
        })
    }

    /// Spends a login state; `false` when it was spent before (a replay).
    pub async fn spend_login_state(&self, state_hash: &str, now: i64) -> anyhow::Result<bool> {
        let inserted = with_writer!(self, pool => sqlx::query(
            "INSERT INTO login_states (state_hash, used_at) VALUES ($1, $2)
             ON CONFLICT (state_hash) DO NOTHING")
            .bind(state_hash)
            .bind(now)
            .execute(pool)
            .await
            .map(|r| r.rows_affected()))
        .context("spending a login state")?;
        Ok(inserted == 1)
    }
}

/// Queues a link's announcement: at once when the person wrote within 24
/// hours, else held until they write again (or for a week).
pub(crate) const ANNOUNCE: &str =
    "INSERT INTO outbox (page_id, psid, body, messaging_type, origin, state,
         hold_until, next_attempt_at, created_at)
     SELECT k.page_id, k.psid, CAST($3 AS TEXT), 'UPDATE', 'link_notice',
         CASE WHEN c.last_inbound_at > $4 THEN 'queued' ELSE 'held' END,
         CAST($5 AS BIGINT), CAST($6 AS BIGINT), CAST($6 AS BIGINT)
     FROM (SELECT CAST($1 AS TEXT) AS page_id, CAST($2 AS TEXT) AS psid) k
     LEFT JOIN conversations c ON c.page_id = k.page_id AND c.psid = k.psid";

/// A new link, unless the PSID was linked meanwhile.
pub(crate) const INSERT_LINK: &str =
    "INSERT INTO links (page_id, psid, account_id, source, linked_at)
     VALUES ($1, $2, $3, $4, $5)
     ON CONFLICT (page_id, psid) DO NOTHING";

pub(crate) const UPSERT_LINK: &str =
    "INSERT INTO links (page_id, psid, account_id, source, linked_at)
     VALUES ($1, $2, $3, $4, $5)
     ON CONFLICT (page_id, psid) DO UPDATE SET account_id = excluded.account_id,
         source = excluded.source, linked_at = excluded.linked_at";

pub(crate) fn decide(
    owner: Option<String>,
    account_id: &str,
    other_owner: OnOtherOwner,
) -> LinkChange {
    match owner {
        None => LinkChange::Linked,
        Some(o) if o == account_id => LinkChange::Unchanged,
        Some(o) => match other_owner {
            OnOtherOwner::Move => LinkChange::Moved { from: o },
            OnOtherOwner::Keep => LinkChange::Refused { owner: o },
        },
    }
}
