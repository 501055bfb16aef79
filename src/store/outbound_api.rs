//! What the outbound API reads and keeps: API keys, remembered answers to
//! idempotent requests, recipients with their messaging window, and the
//! status of the messages it accepted.

use anyhow::Context;

use super::outbox::OutboxState;
use super::statement::{Arg, Stmt};
use super::{with_reader, with_writer, Store};

/// An API key as operators see it (the key itself is never stored).
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct ApiKeyRecord {
    pub id: i64,
    pub name: String,
    pub key_hash: String,
    pub created_at: i64,
    pub revoked_at: Option<i64>,
    pub last_used_at: Option<i64>,
    /// The Pages the key may message, comma-separated; `None`: every Page.
    pub pages: Option<String>,
    /// Requests per second; `None`: unlimited.
    pub rate_per_second: Option<i64>,
}

/// What a key may do: message only some Pages, at most so many requests a
/// second. The default may do everything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeyScope {
    pub pages: Option<Vec<String>>,
    pub rate_per_second: Option<u32>,
}

impl ApiKeyRecord {
    pub fn scope(&self) -> KeyScope {
        KeyScope {
            pages: self
                .pages
                .as_deref()
                .map(|p| p.split(',').map(str::to_string).collect()),
            rate_per_second: self
                .rate_per_second
                .and_then(|r| u32::try_from(r).ok())
                .filter(|r| *r > 0),
        }
    }
}

/// The first answer given to an `Idempotency-Key`.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct RememberedAnswer {
    pub request_hash: String,
    pub status: i64,
    pub answer: String,
}

/// Where a message to a recipient goes, and when that person last wrote.
#[derive(Debug, Clone, PartialEq)]
pub enum Recipient {
    Found {
        page_id: String,
        psid: String,
        last_inbound_at: Option<i64>,
        /// Another app owns the thread (conversation routing): only it may
        /// send.
        thread_owner: Option<String>,
    },
    /// No such account, Facebook user or PSID.
    Unknown,
    /// The account exists but no Messenger identity is linked to it.
    Unlinked,
}

/// An accepted message's state, as `GET /api/v1/messages/{id}` shows it.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct MessageStatus {
    pub public_id: String,
    pub page_id: String,
    pub psid: String,
    pub messaging_type: String,
    pub tag: Option<String>,
    #[sqlx(try_from = "String")]
    pub state: OutboxState,
    pub attempts: i64,
    pub message_id: Option<String>,
    pub error_code: Option<i64>,
    pub error_subcode: Option<i64>,
    pub error_message: Option<String>,
    pub hold_until: Option<i64>,
    pub created_at: i64,
    pub sent_at: Option<i64>,
}

/// Why a key could not be created.
#[derive(Debug, thiserror::Error)]
pub enum CreateKeyError {
    #[error("an API key named {0:?} exists already")]
    NameTaken(String),
    #[error(transparent)]
    Store(#[from] anyhow::Error),
}

type RecipientRow = (Option<String>, Option<String>, Option<i64>, Option<String>);

/// What the status of a message is read from.
/// Records when a key was last used (the key check notes uses in memory
/// and writes them through the group committer when it refreshes).
pub(crate) fn touch_key_statement(id: i64, at: i64) -> Stmt {
    Stmt::with_args(
        "UPDATE api_keys SET last_used_at = $1 WHERE id = $2",
        vec![Arg::Int(at), Arg::Int(id)],
    )
}

const STATUS: &str = "SELECT public_id, page_id, psid, messaging_type, tag, state, attempts,
        message_id, error_code, error_subcode, error_message, hold_until, created_at, sent_at
    FROM outbox";

/// Whether a looked-up link is on a Page the deployment answers for (a
/// row without a link is the account alone).
fn on_answered(row: &RecipientRow, answered: &[String]) -> bool {
    row.0.as_ref().is_none_or(|page| answered.contains(page))
}

impl Store {
    /// A key that may do everything.
    pub async fn create_api_key(
        &self,
        name: &str,
        key_hash: &str,
        now: i64,
    ) -> Result<(), CreateKeyError> {
        self.create_scoped_api_key(name, key_hash, &KeyScope::default(), now)
            .await
    }

    pub async fn create_scoped_api_key(
        &self,
        name: &str,
        key_hash: &str,
        scope: &KeyScope,
        now: i64,
    ) -> Result<(), CreateKeyError> {
        let inserted = with_writer!(self, pool => sqlx::query(
            "INSERT INTO api_keys (name, key_hash, created_at, pages, rate_per_second)
             VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (name) DO NOTHING")
            .bind(name)
            .bind(key_hash)
            .bind(now)
            .bind(scope.pages.as_ref().map(|p| p.join(",")))
            .bind(scope.rate_per_second.map(i64::from))
            .execute(pool)
            .await
            .map(|r| r.rows_affected()))
        .context("storing an API key")?;
        match inserted {
            0 => Err(CreateKeyError::NameTaken(name.to_string())),
            _ => Ok(()),
        }
    }

    /// Every key, oldest first.
    pub async fn api_keys(&self) -> anyhow::Result<Vec<ApiKeyRecord>> {
        let rows = with_reader!(self, pool => sqlx::query_as(
            "SELECT id, name, key_hash, created_at, revoked_at, last_used_at, pages,
                    rate_per_second
             FROM api_keys ORDER BY id")
            .fetch_all(pool)
            .await)
        .context("listing API keys")?;
        Ok(rows)
    }

    /// Revokes the key named `name`; false when there is no such key. A
    /// key revoked before keeps its first revocation time.
    pub async fn revoke_api_key(&self, name: &str, now: i64) -> anyhow::Result<bool> {
        let found = with_writer!(self, pool => sqlx::query(
            "UPDATE api_keys SET revoked_at = COALESCE(revoked_at, $2) WHERE name = $1")
            .bind(name)
            .bind(now)
            .execute(pool)
            .await
            .map(|r| r.rows_affected()))
        .context("revoking an API key")?;
        Ok(found > 0)
    }

    pub async fn remembered_answer(
        &self,
        api_key_id: i64,
        idempotency_key: &str,
    ) -> anyhow::Result<Option<RememberedAnswer>> {
        let row = with_reader!(self, pool => sqlx::query_as(
            "SELECT request_hash, status, answer FROM api_requests
             WHERE api_key_id = $1 AND idempotency_key = $2")
            .bind(api_key_id)
            .bind(idempotency_key)
            .fetch_optional(pool)
            .await)
        .context("reading a remembered answer")?;
        Ok(row)
    }

    /// The PSID an account is reached at: its link on `on_page` when one
    /// is named (no link there: unlinked); else the link on the Page the
    /// person last wrote to, then the one on `page_id` (the default Page),
    /// then the newest. With `within` (a key's Pages), a link on one of
    /// those Pages comes first. Links on Pages not in `answered` (the
    /// deployment's) do not count: a removed Page sends nothing.
    pub async fn recipient_for_account(
        &self,
        account_id: &str,
        page_id: &str,
        on_page: Option<&str>,
        within: Option<&[String]>,
        answered: &[String],
    ) -> anyhow::Result<Recipient> {
        self.linked_recipient("a.id = $1", account_id, page_id, on_page, within, answered)
            .await
    }

    /// Like `recipient_for_account`, by the person's app-scoped user id.
    pub async fn recipient_for_uid(
        &self,
        uid: &str,
        page_id: &str,
        on_page: Option<&str>,
        within: Option<&[String]>,
        answered: &[String],
    ) -> anyhow::Result<Recipient> {
        self.linked_recipient("a.fb_uid = $1", uid, page_id, on_page, within, answered)
            .await
    }

    async fn linked_recipient(
        &self,
        which: &str,
        id: &str,
        page_id: &str,
        on_page: Option<&str>,
        within: Option<&[String]>,
        answered: &[String],
    ) -> anyhow::Result<Recipient> {
        let sql = format!(
            "SELECT l.page_id, l.psid, c.last_inbound_at, c.thread_owner FROM accounts a
             LEFT JOIN links l ON l.account_id = a.id
             LEFT JOIN conversations c ON c.page_id = l.page_id AND c.psid = l.psid
             WHERE {which}
             ORDER BY COALESCE(c.last_inbound_at, 0) DESC,
                      CASE WHEN l.page_id = $2 THEN 0 ELSE 1 END, l.linked_at DESC"
        );
        let rows: Vec<RecipientRow> = with_reader!(self, pool => sqlx::query_as(&sql)
            .bind(id)
            .bind(page_id)
            .fetch_all(pool)
            .await)
        .context("looking up a recipient")?;
        // A link on a Page no longer answered for is no link: an account
        // left with none keeps a row (as the LEFT JOIN gives one without
        // links) so it stays known, unlinked.
        let known = !rows.is_empty();
        let mut rows = rows;
        rows.retain(|r| on_answered(r, answered));
        if known && rows.is_empty() {
            rows.push((None, None, None, None));
        }
        let allowed = |row: &&RecipientRow| match (within, &row.0) {
            (Some(pages), Some(page)) => pages.contains(page),
            _ => true,
        };
        // A key limited to some Pages learns nothing of links elsewhere: an
        // account it sees no link of (or one with no link at all) is
        // unknown to it, or its answer would tell which accounts exist.
        let unknown = match within {
            Some(_) => !rows.iter().any(|r| r.0.is_some() && allowed(&r)),
            None => rows.is_empty(),
        };
        if unknown {
            return Ok(Recipient::Unknown);
        }
        let row = match on_page {
            Some(on_page) => rows.iter().find(|r| r.0.as_deref() == Some(on_page)),
            None => rows.iter().find(allowed).or(rows.first()),
        };
        Ok(match row.cloned() {
            Some((Some(page_id), Some(psid), last_inbound_at, thread_owner)) => Recipient::Found {
                page_id,
                psid,
                last_inbound_at,
                thread_owner,
            },
            _ => Recipient::Unlinked,
        })
    }

    /// A PSID is a recipient once it wrote to the Page or was linked.
    pub async fn recipient_for_psid(&self, page_id: &str, psid: &str) -> anyhow::Result<Recipient> {
        let row: Option<RecipientRow> = with_reader!(self, pool => sqlx::query_as(
            "SELECT c.psid, l.psid, c.last_inbound_at, c.thread_owner
             FROM (SELECT 1 AS one) k
             LEFT JOIN conversations c ON c.page_id = $1 AND c.psid = $2
             LEFT JOIN links l ON l.page_id = $1 AND l.psid = $2")
            .bind(page_id)
            .bind(psid)
            .fetch_optional(pool)
            .await)
        .context("looking up a recipient")?;
        Ok(match row {
            Some((None, None, _, _)) | None => Recipient::Unknown,
            Some((_, _, last_inbound_at, thread_owner)) => Recipient::Found {
                page_id: page_id.to_string(),
                psid: psid.to_string(),
                last_inbound_at,
                thread_owner,
            },
        })
    }

    /// A message accepted with API key `api_key_id`: not one another key or
    /// an operator sent.
    pub async fn message_status(
        &self,
        public_id: &str,
        api_key_id: i64,
    ) -> anyhow::Result<Option<MessageStatus>> {
        let sql = format!("{STATUS} WHERE public_id = $1 AND api_key_id = $2");
        let row = with_reader!(self, pool => sqlx::query_as(&sql)
            .bind(public_id)
            .bind(api_key_id)
            .fetch_optional(pool)
            .await)
        .context("reading a message status")?;
        Ok(row)
    }

    /// Any message with this id, whoever sent it (`lexbridge outbox show`).
    pub async fn any_message_status(
        &self,
        public_id: &str,
    ) -> anyhow::Result<Option<MessageStatus>> {
        let sql = format!("{STATUS} WHERE public_id = $1");
        let row = with_reader!(self, pool => sqlx::query_as(&sql)
            .bind(public_id)
            .fetch_optional(pool)
            .await)
        .context("reading a message status")?;
        Ok(row)
    }
}
