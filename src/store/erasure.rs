//! Erasing a person (Meta's data-deletion callback, `lexbridge accounts
//! delete`): the account found by its Facebook user id or its id, with its
//! links, tokens, sessions and pending links, and for each Messenger
//! identity (PSID) that was the person's (linked now, linked once and
//! unlinked, or named theirs by Meta's `ids_for_apps`): every inbox and
//! outbox row (what they wrote and what was sent to them, whatever its
//! state; a send in flight is not recorded), the conversation (its NLU
//! state, its window), the `ids_for_apps` answer and the unlink tombstone.
//! All of it in one transaction, with the record the status page shows: a
//! row that names nobody (the SHA-256 of its confirmation code, how the
//! request came, when, and how many rows of each kind went).
//!
//! A PSID only waiting on a pending link is not the person's (Meta never
//! vouched for it; it may be someone else's): only the pending link goes.
//! Without an account nothing ties a Facebook user id to a PSID (the
//! `ids_for_apps` answer is kept as an account id), so nothing is found.
//!
//! Neither the inbox nor the outbox has an index of a person's finished
//! rows (one would cost every webhook event a write): their ids are found
//! first by reading, outside the transaction, so the transaction — which
//! holds SQLite's write lock — deletes by primary key; rows that arrived
//! since are caught by a range over the ids above the highest one read.

use anyhow::Context;
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::{with_reader, with_writer, Store};

/// Whose data to erase.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Subject<'a> {
    /// Meta's app-scoped user id (an account's `fb_uid`).
    FacebookUser(&'a str),
    /// An account id, as `accounts list` prints it.
    Account(&'a str),
}

/// How many rows of each kind an erasure removed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErasedCounts {
    pub accounts: u64,
    /// The person's Messenger identities (PSIDs) whose data went.
    pub messenger_identities: u64,
    pub links: u64,
    pub inbox: u64,
    pub outbox: u64,
    pub conversations: u64,
    pub psid_lookups: u64,
    pub link_tombstones: u64,
    pub pending_links: u64,
    pub link_tokens: u64,
    pub sessions: u64,
}

impl ErasedCounts {
    pub fn total(&self) -> u64 {
        self.accounts
            + self.links
            + self.inbox
            + self.outbox
            + self.conversations
            + self.psid_lookups
            + self.link_tombstones
            + self.pending_links
            + self.link_tokens
            + self.sessions
    }
}

/// A finished erasure: the confirmation code (shown once; only its
/// SHA-256 is kept) and what went.
#[derive(Debug, Clone)]
pub struct Erasure {
    pub code: String,
    pub erased: ErasedCounts,
    pub completed_at: i64,
}

impl Erasure {
    /// The status page of this erasure (`GET
    /// /facebook/data-deletion/status?id=<code>`) under `public_url`.
    pub fn status_url(&self, public_url: &url::Url) -> String {
        format!(
            "{}/facebook/data-deletion/status?id={}",
            public_url.as_str().trim_end_matches('/'),
            self.code
        )
    }
}

/// What the status page shows of an erasure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeletionRecord {
    /// `facebook` (Meta's callback) or `operator` (`accounts delete`).
    pub source: String,
    pub erased: ErasedCounts,
    pub completed_at: i64,
}

/// A confirmation code: 128 random bits from the OS, as 32 hex digits.
fn new_code() -> String {
    let mut bytes = [0u8; 16];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    hex::encode(bytes)
}

/// Whether `code` has the shape of a confirmation code.
fn is_code(code: &str) -> bool {
    code.len() == 32 && code.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

fn code_hash(code: &str) -> String {
    hex::encode(Sha256::digest(code.as_bytes()))
}

/// Most ids one `DELETE … WHERE id IN (…)` names.
const IDS_PER_STATEMENT: usize = 500;

/// `DELETE FROM {table} WHERE id IN ($1, …)` for `n` ids.
fn delete_ids_sql(table: &str, n: usize) -> String {
    let list: Vec<String> = (1..=n).map(|i| format!("${i}")).collect();
    format!("DELETE FROM {table} WHERE id IN ({})", list.join(", "))
}

/// A person's Messenger identity, and the ids of its inbox and outbox rows
/// read before the transaction.
#[derive(Debug, Default)]
struct Identity {
    page_id: String,
    psid: String,
    inbox_ids: Vec<i64>,
    outbox_ids: Vec<i64>,
}

impl Store {
    /// Erases the person of `subject` (see the module's note) and records
    /// the erasure under `code`, or a new random confirmation code. `None`
    /// only for an account id that names no account (nothing changes); a
    /// Facebook user id with no account still gets a code (nothing is found
    /// to erase). A `code` already recorded (the same signed request again:
    /// Meta retrying, or whoever holds it replaying it) erases nothing
    /// more: the first erasure is answered.
    pub async fn erase_person(
        &self,
        subject: Subject<'_>,
        source: &str,
        now: i64,
        code: Option<&str>,
    ) -> anyhow::Result<Option<Erasure>> {
        let (account_sql, key) = match subject {
            Subject::FacebookUser(uid) => ("SELECT id FROM accounts WHERE fb_uid = $1", uid),
            Subject::Account(id) => ("SELECT id FROM accounts WHERE id = $1", id),
        };
        let account: Option<(String,)> = with_reader!(self, pool => sqlx::query_as(account_sql)
            .bind(key)
            .fetch_optional(pool)
            .await)
        .context("finding the account to erase")?;
        let account_id = account.map(|(id,)| id);
        if account_id.is_none() && matches!(subject, Subject::Account(_)) {
            return Ok(None);
        }
        let (identities, inbox_hi, outbox_hi) = match &account_id {
            Some(id) => self.identities_of(id).await?,
            None => (Vec::new(), 0, 0),
        };
        let code = code.map_or_else(new_code, str::to_string);
        let mut erased = ErasedCounts::default();
        let begin = self.begin_statement();
        // `false`: the code is recorded already (the same request again, or
        // at the same time): nothing is erased twice.
        let result: Result<bool, sqlx::Error> = with_writer!(self, pool => async {
            let mut tx = pool.begin_with(begin).await?;
            // The record first, counts to come: a second transaction with
            // the same code waits here for this one, then finds it.
            let recorded = sqlx::query(
                "INSERT INTO data_deletions (code_hash, source, erased, completed_at)
                 VALUES ($1, $2, '{}', $3) ON CONFLICT (code_hash) DO NOTHING",
            )
            .bind(code_hash(&code))
            .bind(source)
            .bind(now)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if recorded == 0 {
                tx.rollback().await?;
                return Ok(false);
            }
            let mut identities = identities;
            if let Some(account_id) = account_id.as_deref() {
                // A link made since the identities were read: its rows are
                // found the slow way, inside the transaction.
                let linked: Vec<(String, String)> =
                    sqlx::query_as("SELECT page_id, psid FROM links WHERE account_id = $1")
                        .bind(account_id)
                        .fetch_all(&mut *tx)
                        .await?;
                for (page_id, psid) in linked {
                    if !identities.iter().any(|i| i.page_id == page_id && i.psid == psid) {
                        identities.push(Identity { page_id, psid, ..Identity::default() });
                    }
                }
            }
            for identity in &identities {
                let (page_id, psid) = (identity.page_id.as_str(), identity.psid.as_str());
                for (table, ids, hi, count) in [
                    ("inbox", &identity.inbox_ids, inbox_hi, &mut erased.inbox),
                    ("outbox", &identity.outbox_ids, outbox_hi, &mut erased.outbox),
                ] {
                    for chunk in ids.chunks(IDS_PER_STATEMENT) {
                        let sql = delete_ids_sql(table, chunk.len());
                        let mut delete = sqlx::query(&sql);
                        for id in chunk {
                            delete = delete.bind(*id);
                        }
                        *count += delete.execute(&mut *tx).await?.rows_affected();
                    }
                    let rest = format!(
                        "DELETE FROM {table} WHERE id > $1 AND {}",
                        person_rows(table)
                    );
                    *count += sqlx::query(&rest)
                        .bind(hi)
                        .bind(page_id)
                        .bind(psid)
                        .execute(&mut *tx)
                        .await?
                        .rows_affected();
                }
                for (sql, count) in [
                    ("DELETE FROM conversations WHERE page_id = $1 AND psid = $2", &mut erased.conversations),
                    ("DELETE FROM psid_lookups WHERE page_id = $1 AND psid = $2", &mut erased.psid_lookups),
                    ("DELETE FROM link_tombstones WHERE page_id = $1 AND psid = $2", &mut erased.link_tombstones),
                    ("DELETE FROM pending_links WHERE page_id = $1 AND psid = $2", &mut erased.pending_links),
                    ("DELETE FROM links WHERE page_id = $1 AND psid = $2", &mut erased.links),
                ] {
                    *count += sqlx::query(sql)
                        .bind(page_id)
                        .bind(psid)
                        .execute(&mut *tx)
                        .await?
                        .rows_affected();
                }
            }
            erased.messenger_identities = identities.len() as u64;
            if let Some(account_id) = account_id.as_deref() {
                // The foreign keys would cascade; each is named so the count
                // is right and nothing depends on SQLite's foreign_keys.
                for (sql, count) in [
                    ("DELETE FROM links WHERE account_id = $1", &mut erased.links),
                    ("DELETE FROM pending_links WHERE account_id = $1", &mut erased.pending_links),
                    ("DELETE FROM link_tokens WHERE account_id = $1", &mut erased.link_tokens),
                    ("DELETE FROM sessions WHERE account_id = $1", &mut erased.sessions),
                    ("DELETE FROM accounts WHERE id = $1", &mut erased.accounts),
                ] {
                    *count += sqlx::query(sql)
                        .bind(account_id)
                        .execute(&mut *tx)
                        .await?
                        .rows_affected();
                }
            }
            let counts = serde_json::to_string(&erased)
                .unwrap_or_else(|_| unreachable!("counts serialize"));
            sqlx::query("UPDATE data_deletions SET erased = $1 WHERE code_hash = $2")
                .bind(counts)
                .bind(code_hash(&code))
                .execute(&mut *tx)
                .await?;
            tx.commit().await.map(|()| true)
        }.await);
        if !result.context("erasing a person's data")? {
            let first = self.data_deletion(&code).await?;
            let first = first.context("a data deletion recorded, then not found")?;
            return Ok(Some(Erasure {
                code,
                erased: first.erased,
                completed_at: first.completed_at,
            }));
        }
        Ok(Some(Erasure {
            code,
            erased,
            completed_at: now,
        }))
    }

    /// The Messenger identities that were the account's, each with the ids
    /// of its inbox and outbox rows up to the highest ids at the time.
    async fn identities_of(&self, account_id: &str) -> anyhow::Result<(Vec<Identity>, i64, i64)> {
        let read = with_reader!(self, pool => async {
            let pairs: Vec<(String, String)> = sqlx::query_as(
                "SELECT page_id, psid FROM links WHERE account_id = $1
                 UNION SELECT page_id, psid FROM psid_lookups WHERE account_id = $1
                 UNION SELECT page_id, psid FROM link_tombstones WHERE account_id = $1",
            )
            .bind(account_id)
            .fetch_all(pool)
            .await?;
            let (inbox_hi,): (i64,) = sqlx::query_as("SELECT COALESCE(MAX(id), 0) FROM inbox")
                .fetch_one(pool)
                .await?;
            let (outbox_hi,): (i64,) = sqlx::query_as("SELECT COALESCE(MAX(id), 0) FROM outbox")
                .fetch_one(pool)
                .await?;
            let mut identities = Vec::with_capacity(pairs.len());
            for (page_id, psid) in pairs {
                let mut ids = [Vec::new(), Vec::new()];
                for (slot, (table, hi)) in ids.iter_mut().zip([("inbox", inbox_hi), ("outbox", outbox_hi)]) {
                    let sql = format!(
                        "SELECT id FROM {table} WHERE id <= $1 AND {}",
                        person_rows(table)
                    );
                    let rows: Vec<(i64,)> = sqlx::query_as(&sql)
                        .bind(hi)
                        .bind(&page_id)
                        .bind(&psid)
                        .fetch_all(pool)
                        .await?;
                    *slot = rows.into_iter().map(|(id,)| id).collect();
                }
                let [inbox_ids, outbox_ids] = ids;
                identities.push(Identity { page_id, psid, inbox_ids, outbox_ids });
            }
            Ok::<_, sqlx::Error>((identities, inbox_hi, outbox_hi))
        }.await);
        read.context("finding the rows of a person to erase")
    }

    /// The erasure a confirmation code names; `None` for any other code
    /// (unknown or malformed alike).
    pub async fn data_deletion(&self, code: &str) -> anyhow::Result<Option<DeletionRecord>> {
        if !is_code(code) {
            return Ok(None);
        }
        let row: Option<(String, String, i64)> = with_reader!(self, pool => sqlx::query_as(
            "SELECT source, erased, completed_at FROM data_deletions WHERE code_hash = $1")
            .bind(code_hash(code))
            .fetch_optional(pool)
            .await)
        .context("reading a data deletion")?;
        let Some((source, erased, completed_at)) = row else {
            return Ok(None);
        };
        let erased = serde_json::from_str(&erased).context("a stored data deletion's counts")?;
        Ok(Some(DeletionRecord {
            source,
            erased,
            completed_at,
        }))
    }
}

/// The rows of `table` that are a person's (`$2`: the Page, `$3`: their
/// PSID or IGSID). An Instagram event is stored under the professional
/// account that received it, not the Page it is answered through (where
/// the person's link is): it is found by the IGSID alone, which names one
/// person only.
fn person_rows(table: &str) -> &'static str {
    match table {
        "inbox" => "psid = $3 AND (page_id = $2 OR object = 'instagram')",
        _ => "page_id = $2 AND psid = $3",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_random_hex_and_only_their_shape_is_accepted() {
        let (a, b) = (new_code(), new_code());
        assert_ne!(a, b);
        assert!(is_code(&a) && is_code(&b), "{a} {b}");
        assert!(!is_code(&a[..31]));
        assert!(!is_code(&"A".repeat(32)));
        assert!(!is_code(&format!("{}'", &a[..31])));
        assert_ne!(code_hash(&a), code_hash(&b));
        assert_eq!(code_hash(&a).len(), 64);
    }

    #[test]
    fn id_lists_are_numbered_placeholders() {
        assert_eq!(
            delete_ids_sql("inbox", 3),
            "DELETE FROM inbox WHERE id IN ($1, $2, $3)"
        );
    }
}
