//! Unlinking that sticks: the link goes, a tombstone keeps the reverse
//! lookup from linking the PSID again, the messages still waiting for the
//! person are cancelled, the conversation's NLU state is forgotten and the
//! account's login sessions end (relinking takes a new login), all in one
//! transaction.

use anyhow::Context;

use super::{with_reader, with_writer, Store};

/// What unlinking one Messenger identity did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unlinked {
    /// The account the PSID was linked to, if it was.
    pub account_id: Option<String>,
    /// Queued and held messages to the PSID now `cancelled`.
    pub cancelled: u64,
}

/// The statements that end one PSID's link, in the open transaction `$tx`
/// (`$page_id`, `$psid`: `&str`; `$how`: what unlinked it; `$now`). SQL
/// errors return from the enclosing block; evaluates to `Unlinked`.
macro_rules! unlink_in_tx {
    ($tx:ident, $page_id:expr, $psid:expr, $how:expr, $now:expr) => {{
        let (page_id, psid, how, now): (&str, &str, &str, i64) = ($page_id, $psid, $how, $now);
        let owner: Option<(String,)> = sqlx::query_as(
            "DELETE FROM links WHERE page_id = $1 AND psid = $2 RETURNING account_id",
        )
        .bind(page_id)
        .bind(psid)
        .fetch_optional(&mut *$tx)
        .await?;
        let account_id = owner.map(|(a,)| a);
        sqlx::query(
            "INSERT INTO link_tombstones (page_id, psid, account_id, how, unlinked_at)
             VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (page_id, psid) DO UPDATE SET account_id = excluded.account_id,
                 how = excluded.how, unlinked_at = excluded.unlinked_at",
        )
        .bind(page_id)
        .bind(psid)
        .bind(account_id.as_deref())
        .bind(how)
        .bind(now)
        .execute(&mut *$tx)
        .await?;
        // A message being sent is left to its outcome; the repeated
        // predicate lets the partial index `outbox_open` serve the search.
        let mut cancelled = 0;
        for sql in [
            "UPDATE outbox SET state = 'cancelled', locked_until = NULL, claimed_by = NULL
             WHERE page_id = $1 AND psid = $2 AND state IN ('queued', 'sending')
               AND state = 'queued'",
            "UPDATE outbox SET state = 'cancelled' WHERE page_id = $1 AND psid = $2 AND state = 'held'",
        ] {
            cancelled += sqlx::query(sql)
                .bind(page_id)
                .bind(psid)
                .execute(&mut *$tx)
                .await?
                .rows_affected();
        }
        sqlx::query(
            "UPDATE conversations SET nlu_state = NULL, updated_at = $3
             WHERE page_id = $1 AND psid = $2",
        )
        .bind(page_id)
        .bind(psid)
        .bind(now)
        .execute(&mut *$tx)
        .await?;
        sqlx::query("DELETE FROM pending_links WHERE page_id = $1 AND psid = $2")
            .bind(page_id)
            .bind(psid)
            .execute(&mut *$tx)
            .await?;
        // Relinking takes a new login: the account's sessions end here.
        if let Some(account_id) = account_id.as_deref() {
            sqlx::query("DELETE FROM sessions WHERE account_id = $1")
                .bind(account_id)
                .execute(&mut *$tx)
                .await?;
        }
        $crate::store::unlink::Unlinked {
            account_id,
            cancelled,
        }
    }};
}

impl Store {
    /// Unlinks one Messenger identity (`how`: `messenger`, `postback`, …),
    /// linked or not: the person asked, so the unlink sticks either way.
    pub async fn unlink_psid(
        &self,
        page_id: &str,
        psid: &str,
        how: &str,
        now: i64,
    ) -> anyhow::Result<Unlinked> {
        let begin = self.begin_statement();
        let result = with_writer!(self, pool => async {
            let mut tx = pool.begin_with(begin).await?;
            let unlinked = unlink_in_tx!(tx, page_id, psid, how, now);
            tx.commit().await?;
            Ok::<_, sqlx::Error>(unlinked)
        }.await);
        result.context("unlinking a PSID")
    }

    /// Unlinks one identity of `account_id` (the account page); `None` when
    /// the account has no such link (nothing changes).
    pub async fn unlink_account_psid(
        &self,
        account_id: &str,
        page_id: &str,
        psid: &str,
        now: i64,
    ) -> anyhow::Result<Option<Unlinked>> {
        let begin = self.begin_statement();
        let result = with_writer!(self, pool => async {
            let mut tx = pool.begin_with(begin).await?;
            let owned: Option<(String,)> = sqlx::query_as(
                "SELECT account_id FROM links WHERE page_id = $1 AND psid = $2 AND account_id = $3")
                .bind(page_id)
                .bind(psid)
                .bind(account_id)
                .fetch_optional(&mut *tx)
                .await?;
            if owned.is_none() {
                return Ok::<_, sqlx::Error>(None);
            }
            let unlinked = unlink_in_tx!(tx, page_id, psid, "account_page", now);
            tx.commit().await?;
            Ok(Some(unlinked))
        }.await);
        result.context("unlinking a PSID of an account")
    }

    /// Removes every link of an account (each unlinked as `unlink_psid`
    /// does), its pending links, unused link tokens and login sessions (a
    /// copied cookie stops working too), and forgets its user token;
    /// returns how many links were removed.
    pub async fn unlink_account(&self, account_id: &str, now: i64) -> anyhow::Result<u64> {
        let begin = self.begin_statement();
        let result = with_writer!(self, pool => async {
            let mut tx = pool.begin_with(begin).await?;
            sqlx::query(
                "UPDATE accounts SET user_token = NULL, token_expires_at = NULL, unlinked_at = $2,
                     updated_at = $2
                 WHERE id = $1")
                .bind(account_id)
                .bind(now)
                .execute(&mut *tx)
                .await?;
            let links: Vec<(String, String)> = sqlx::query_as(
                "SELECT page_id, psid FROM links WHERE account_id = $1")
                .bind(account_id)
                .fetch_all(&mut *tx)
                .await?;
            for (page_id, psid) in &links {
                unlink_in_tx!(tx, page_id, psid, "account_page", now);
            }
            for sql in [
                "DELETE FROM link_tokens WHERE account_id = $1 AND used_at IS NULL",
                "DELETE FROM pending_links WHERE account_id = $1",
                "DELETE FROM sessions WHERE account_id = $1",
            ] {
                sqlx::query(sql).bind(account_id).execute(&mut *tx).await?;
            }
            tx.commit().await?;
            Ok::<_, sqlx::Error>(links.len() as u64)
        }.await);
        result.context("unlinking an account")
    }

    /// Whether the person of `psid` unlinked (and no login linked it since).
    pub async fn is_unlinked(&self, page_id: &str, psid: &str) -> anyhow::Result<bool> {
        let row: Option<(i64,)> = with_reader!(self, pool => sqlx::query_as(
            "SELECT unlinked_at FROM link_tombstones WHERE page_id = $1 AND psid = $2")
            .bind(page_id)
            .bind(psid)
            .fetch_optional(pool)
            .await)
        .context("reading a link tombstone")?;
        Ok(row.is_some())
    }
}
