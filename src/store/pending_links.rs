//! Links waiting for the account owner: a Messenger identity Meta did not
//! vouch for is linked only once the owner confirms it on the website.

use anyhow::Context;

use super::linking::{link_in_tx, Announcement, LinkChange, NewLink, OnOtherOwner};
use super::{with_reader, with_writer, Store};

/// How long the owner has to confirm.
pub const PENDING_LINK_TTL_MS: i64 = 24 * 3_600_000;

/// A link the owner has not confirmed yet, with the Page-scoped profile
/// Meta gave for the identity (if it gave one).
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct PendingLink {
    pub id: String,
    pub page_id: String,
    pub psid: String,
    pub account_id: String,
    /// `account_link` (Messenger's Log in button) or `ref` (an m.me link).
    pub source: String,
    pub name: Option<String>,
    pub profile_pic: Option<String>,
    pub redirect_uri: Option<String>,
    pub created_at: i64,
    pub expires_at: i64,
}

/// A pending link to store.
#[derive(Debug, Clone)]
pub struct NewPendingLink<'a> {
    pub page_id: &'a str,
    pub psid: &'a str,
    pub account_id: &'a str,
    pub source: &'a str,
    pub name: Option<&'a str>,
    pub profile_pic: Option<&'a str>,
    pub redirect_uri: Option<&'a str>,
    pub now: i64,
}

/// What the owner's decision did.
#[derive(Debug, Clone, PartialEq)]
pub struct Decided {
    pub link: PendingLink,
    /// For a confirmation, what linking did (`None` for a decline).
    pub change: Option<LinkChange>,
}

const COLUMNS: &str = "id, page_id, psid, account_id, source, name, profile_pic, redirect_uri,
     created_at, expires_at";

impl Store {
    /// Stores a pending link (replacing one for the same identity and
    /// account, whose expiry starts again); returns its id.
    pub async fn create_pending_link(&self, p: &NewPendingLink<'_>) -> anyhow::Result<String> {
        let id = format!("pl_{}", hex::encode(rand::random::<[u8; 16]>()));
        let (id,): (String,) = with_writer!(self, pool => sqlx::query_as(
            "INSERT INTO pending_links (id, page_id, psid, account_id, source, name, profile_pic,
                 redirect_uri, created_at, expires_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
             ON CONFLICT (page_id, psid, account_id) DO UPDATE SET source = excluded.source,
                 name = excluded.name, profile_pic = excluded.profile_pic,
                 redirect_uri = excluded.redirect_uri, created_at = excluded.created_at,
                 expires_at = excluded.expires_at
             RETURNING id")
            .bind(&id)
            .bind(p.page_id)
            .bind(p.psid)
            .bind(p.account_id)
            .bind(p.source)
            .bind(p.name)
            .bind(p.profile_pic)
            .bind(p.redirect_uri)
            .bind(p.now)
            .bind(p.now + PENDING_LINK_TTL_MS)
            .fetch_one(pool)
            .await)
        .context("storing a pending link")?;
        Ok(id)
    }

    /// The account's pending links that have not expired, newest first.
    pub async fn pending_links(
        &self,
        account_id: &str,
        now: i64,
    ) -> anyhow::Result<Vec<PendingLink>> {
        let sql = format!(
            "SELECT {COLUMNS} FROM pending_links WHERE account_id = $1 AND expires_at > $2
             ORDER BY created_at DESC, id"
        );
        let rows = with_reader!(self, pool => sqlx::query_as(&sql)
            .bind(account_id)
            .bind(now)
            .fetch_all(pool)
            .await)
        .context("listing pending links")?;
        Ok(rows)
    }

    /// The owner's decision on pending link `id`: confirmed, it becomes a
    /// link (never moving a PSID from another account) announced in the
    /// thread; either way the pending link is gone. `None` when `account_id`
    /// has no such unexpired pending link, or asks to confirm one whose
    /// person Meta would not name (the owner could not recognise it; only
    /// declining it is offered): nothing changes.
    pub async fn decide_pending_link(
        &self,
        id: &str,
        account_id: &str,
        confirm: bool,
        now: i64,
        announcement: Announcement<'_>,
    ) -> anyhow::Result<Option<Decided>> {
        let begin = self.begin_statement();
        let named = if confirm { "AND name IS NOT NULL" } else { "" };
        let sql = format!(
            "DELETE FROM pending_links WHERE id = $1 AND account_id = $2 AND expires_at > $3
             {named} RETURNING {COLUMNS}"
        );
        let result = with_writer!(self, pool => async {
            let mut tx = pool.begin_with(begin).await?;
            let taken: Option<PendingLink> = sqlx::query_as(&sql)
                .bind(id)
                .bind(account_id)
                .bind(now)
                .fetch_optional(&mut *tx)
                .await?;
            let Some(link) = taken else {
                return Ok::<_, sqlx::Error>(None);
            };
            let change = if confirm {
                let source = format!("{}, confirmed", link.source);
                let new = NewLink {
                    page_id: &link.page_id,
                    psid: &link.psid,
                    account_id,
                    source: &source,
                    now,
                    announcement,
                };
                Some(link_in_tx!(tx, new, OnOtherOwner::Keep))
            } else {
                None
            };
            tx.commit().await?;
            Ok(Some(Decided { link, change }))
        }.await);
        result.context("deciding on a pending link")
    }
}
