//! Writes of account linking: a login's account and links in one
//! transaction, single links from Messenger, unlinking, single-use link
//! tokens, remembered reverse lookups and spent login states.

use anyhow::Context;

use super::{with_writer, Store};

/// What a login stores: the account (token already encrypted) and the PSIDs
/// Meta says belong to this person on `page_id`.
#[derive(Debug, Clone)]
pub struct LoginRecord<'a> {
    pub fb_uid: &'a str,
    pub name: Option<&'a str>,
    pub encrypted_token: &'a [u8],
    pub token_expires_at: Option<i64>,
    pub page_id: &'a str,
    pub psids: &'a [String],
    pub now: i64,
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
    fn begin_statement(&self) -> &'static str {
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
                     user_token = excluded.user_token,
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
                let owner: Option<(String,)> = sqlx::query_as(
                    "SELECT account_id FROM links WHERE page_id = $1 AND psid = $2")
                    .bind(record.page_id)
                    .bind(psid)
                    .fetch_optional(&mut *tx)
                    .await?;
                let change = decide(owner.map(|(o,)| o), &account_id, OnOtherOwner::Move);
                if matches!(change, LinkChange::Linked | LinkChange::Moved { .. }) {
                    sqlx::query(UPSERT_LINK)
                        .bind(record.page_id)
                        .bind(psid)
                        .bind(&account_id)
                        .bind("ids_for_pages")
                        .bind(record.now)
                        .execute(&mut *tx)
                        .await?;
                }
                changes.push((psid.clone(), change));
            }
            tx.commit().await?;
            Ok::<_, sqlx::Error>((account_id, changes))
        }.await);
        result.context("storing a login")
    }

    /// Links one PSID to an account (`source`: ref, account_link, ids_for_apps).
    pub async fn link_psid(
        &self,
        page_id: &str,
        psid: &str,
        account_id: &str,
        source: &str,
        other_owner: OnOtherOwner,
        now: i64,
    ) -> anyhow::Result<LinkChange> {
        let begin = self.begin_statement();
        let result = with_writer!(self, pool => async {
            let mut tx = pool.begin_with(begin).await?;
            let owner: Option<(String,)> = sqlx::query_as(
                "SELECT account_id FROM links WHERE page_id = $1 AND psid = $2")
                .bind(page_id)
                .bind(psid)
                .fetch_optional(&mut *tx)
                .await?;
            let change = decide(owner.map(|(o,)| o), account_id, other_owner);
            if matches!(change, LinkChange::Linked | LinkChange::Moved { .. }) {
                sqlx::query(UPSERT_LINK)
                    .bind(page_id)
                    .bind(psid)
                    .bind(account_id)
                    .bind(source)
                    .bind(now)
                    .execute(&mut *tx)
                    .await?;
            }
            tx.commit().await?;
            Ok::<_, sqlx::Error>(change)
        }.await);
        result.context("linking a PSID")
    }

    /// Removes the link of one PSID; returns the account it belonged to.
    pub async fn unlink_psid(&self, page_id: &str, psid: &str) -> anyhow::Result<Option<String>> {
        let row: Option<(String,)> = with_writer!(self, pool => sqlx::query_as(
            "DELETE FROM links WHERE page_id = $1 AND psid = $2 RETURNING account_id")
            .bind(page_id)
            .bind(psid)
            .fetch_optional(pool)
            .await)
        .context("unlinking a PSID")?;
        Ok(row.map(|(a,)| a))
    }

    /// Removes every link of an account and forgets its user token; returns
    /// how many links were removed.
    pub async fn unlink_account(&self, account_id: &str, now: i64) -> anyhow::Result<u64> {
        let begin = self.begin_statement();
        let result = with_writer!(self, pool => async {
            let mut tx = pool.begin_with(begin).await?;
            sqlx::query(
                "UPDATE accounts SET user_token = NULL, token_expires_at = NULL, updated_at = $2
                 WHERE id = $1")
                .bind(account_id)
                .bind(now)
                .execute(&mut *tx)
                .await?;
            // An unlinked PSID stays unlinked: the `ids_for_apps` lookup
            // would link it to the account again on the person's next message.
            sqlx::query(
                "INSERT INTO psid_lookups (page_id, psid, looked_up_at, account_id)
                 SELECT page_id, psid, $2, NULL FROM links WHERE account_id = $1
                 ON CONFLICT (page_id, psid) DO UPDATE
                 SET looked_up_at = excluded.looked_up_at, account_id = NULL")
                .bind(account_id)
                .bind(now)
                .execute(&mut *tx)
                .await?;
            let removed = sqlx::query("DELETE FROM links WHERE account_id = $1")
                .bind(account_id)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            sqlx::query("DELETE FROM link_tokens WHERE account_id = $1 AND used_at IS NULL")
                .bind(account_id)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            Ok::<_, sqlx::Error>(removed)
        }.await);
        result.context("unlinking an account")
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

const UPSERT_LINK: &str = "INSERT INTO links (page_id, psid, account_id, source, linked_at)
     VALUES ($1, $2, $3, $4, $5)
     ON CONFLICT (page_id, psid) DO UPDATE SET account_id = excluded.account_id,
         source = excluded.source, linked_at = excluded.linked_at";

fn decide(owner: Option<String>, account_id: &str, other_owner: OnOtherOwner) -> LinkChange {
    match owner {
        None => LinkChange::Linked,
        Some(o) if o == account_id => LinkChange::Unchanged,
        Some(o) => match other_owner {
            OnOtherOwner::Move => LinkChange::Moved { from: o },
            OnOtherOwner::Keep => LinkChange::Refused { owner: o },
        },
    }
}
