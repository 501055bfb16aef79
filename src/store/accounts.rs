//! Accounts and the PSIDs linked to them.

use anyhow::Context;

use super::{with_reader, Store};

/// Who a PSID belongs to, as the NLU and the outbound API need it.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct LinkedAccount {
    pub account_id: String,
    pub name: Option<String>,
    pub fb_uid: String,
}

/// One linked Messenger identity.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct Link {
    pub page_id: String,
    pub psid: String,
    pub account_id: String,
    pub source: String,
    pub linked_at: i64,
    /// The app owning the conversation's thread when not this one
    /// (conversation routing).
    pub thread_owner: Option<String>,
}

/// An account as the account page and the admin CLI show it: never the token.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct AccountSummary {
    pub id: String,
    pub fb_uid: String,
    pub name: Option<String>,
    /// Whether a (encrypted) user token is stored.
    pub has_token: bool,
    pub token_expires_at: Option<i64>,
    pub created_at: i64,
    pub updated_at: i64,
    pub links: i64,
}

const SUMMARY: &str = "SELECT a.id, a.fb_uid, a.name, a.user_token IS NOT NULL AS has_token,
        a.token_expires_at, a.created_at, a.updated_at,
        (SELECT COUNT(*) FROM links l WHERE l.account_id = a.id) AS links
     FROM accounts a";

impl Store {
    /// One account, without its token.
    pub async fn account(&self, account_id: &str) -> anyhow::Result<Option<AccountSummary>> {
        let sql = format!("{SUMMARY} WHERE a.id = $1");
        let row = with_reader!(self, pool => sqlx::query_as(&sql)
            .bind(account_id)
            .fetch_optional(pool)
            .await)
        .context("reading an account")?;
        Ok(row)
    }

    /// Every account, oldest first, without tokens.
    pub async fn accounts(&self) -> anyhow::Result<Vec<AccountSummary>> {
        let sql = format!("{SUMMARY} ORDER BY a.created_at, a.id");
        let rows = with_reader!(self, pool => sqlx::query_as(&sql)
            .fetch_all(pool)
            .await)
        .context("listing accounts")?;
        Ok(rows)
    }

    /// Every PSID linked to an account, oldest link first.
    pub async fn links_for_account(&self, account_id: &str) -> anyhow::Result<Vec<Link>> {
        let rows = with_reader!(self, pool => sqlx::query_as(
            "SELECT l.page_id, l.psid, l.account_id, l.source, l.linked_at, c.thread_owner
             FROM links l
             LEFT JOIN conversations c ON c.page_id = l.page_id AND c.psid = l.psid
             WHERE l.account_id = $1 ORDER BY l.linked_at, l.psid")
            .bind(account_id)
            .fetch_all(pool)
            .await)
        .context("listing the links of an account")?;
        Ok(rows)
    }

    /// The account of a Facebook app-scoped user id that a reverse lookup
    /// (`ids_for_apps`) may link to, if any: not one that unlinked
    /// everything, until its next login.
    pub async fn linkable_account_for_uid(&self, fb_uid: &str) -> anyhow::Result<Option<String>> {
        let row: Option<(String,)> = with_reader!(self, pool => sqlx::query_as(
            "SELECT id FROM accounts WHERE fb_uid = $1 AND unlinked_at IS NULL")
            .bind(fb_uid)
            .fetch_optional(pool)
            .await)
        .context("looking up an account by Facebook user id")?;
        Ok(row.map(|(id,)| id))
    }
}
