//! Conversations: one row per person talking to a Page.

use anyhow::Context;
use std::collections::BTreeMap;

use super::accounts::LinkedAccount;
use super::chunks::chunks;
use super::statement::Stmt;
use super::{with_reader, Store};

/// What the inbox needs to answer a person, read at once: the NLU's dialog
/// state and the account the PSID is linked to.
#[derive(Debug, Clone, Default)]
pub struct ConversationContext {
    pub nlu_state: Option<String>,
    pub account: Option<LinkedAccount>,
    /// `ids_for_apps` was asked about this PSID already.
    pub looked_up: bool,
    /// The Page had a pause reason when the row was claimed (read with the
    /// claim; always false from `conversation_context`).
    pub page_paused: bool,
    /// The app that owns the thread when it is not this one (see
    /// `ConversationUpdate::thread`).
    pub thread_owner: Option<String>,
    /// The person unlinked (a tombstone stood when this was read): no
    /// `ids_for_apps` lookup links them again, and Meta is not asked. Read
    /// with the rest, so a new person's first message costs no statement of
    /// its own. A tombstone written after the read is caught by linking,
    /// which checks again in its own transaction (Meta is then asked once).
    pub unlinked: bool,
}

/// The conversation facts an event changes.
#[derive(Debug, Clone, Default)]
pub struct ConversationUpdate {
    pub page_id: String,
    pub psid: String,
    /// The person wrote at this time (opens the 24-hour window).
    pub inbound_at: Option<i64>,
    /// New NLU dialog state (`Some(None)` clears it).
    pub nlu_state: Option<Option<String>>,
    /// The person wrote to this app: messages held for them go now.
    pub release_held: bool,
    /// Conversation routing: `Some(None)` when the thread is (back) with
    /// this app, `Some(Some(app id))` when another app owns it (`unknown`
    /// when Meta did not say which).
    pub thread: Option<Option<String>>,
}

/// The conversation changes of one batch, merged per conversation.
#[derive(Default)]
pub(crate) struct MergedConversationUpdate {
    inbound_at: Option<i64>,
    nlu_state: Option<Option<String>>,
    pub(crate) release_held: bool,
    thread: Option<Option<String>>,
}

impl MergedConversationUpdate {
    /// The person wrote at `at` (an event stored in this batch).
    pub(crate) fn wrote_at(&mut self, at: i64) {
        self.inbound_at = self.inbound_at.max(Some(at));
    }

    pub(crate) fn merge(&mut self, c: &ConversationUpdate) {
        self.inbound_at = self.inbound_at.max(c.inbound_at);
        self.release_held |= c.release_held;
        if c.thread.is_some() {
            self.thread = c.thread.clone();
        }
        if c.nlu_state.is_some() {
            self.nlu_state = c.nlu_state.clone();
        }
    }
}

/// The statements writing a batch's merged changes, keyed by `(page_id,
/// psid)`, in key order: a run of rows that set the dialog state, then a
/// run of rows that keep it, and so on. On Postgres the windows the intake
/// committer hands over join the same rows, so each batch locks them in
/// one order (two instances' batches cannot deadlock on them).
pub(crate) fn upsert_statements(
    touches: &BTreeMap<(&str, &str), MergedConversationUpdate>,
    now: i64,
) -> Vec<Stmt> {
    let mut statements = Vec::new();
    let rows: Vec<_> = touches.iter().collect();
    for run in rows.chunk_by(|a, b| a.1.nlu_state.is_some() == b.1.nlu_state.is_some()) {
        let sets_state = run[0].1.nlu_state.is_some();
        for chunk in chunks(run) {
            let mut upsert =
                Stmt::new("INSERT INTO conversations (page_id, psid, last_inbound_at, nlu_state, updated_at) ");
            upsert.values(chunk, |row, ((page_id, psid), t)| {
                row.bind(*page_id)
                    .bind(*psid)
                    .bind(t.inbound_at)
                    .bind(t.nlu_state.clone().flatten().as_deref())
                    .bind(now);
            });
            upsert.push(
                " ON CONFLICT (page_id, psid) DO UPDATE SET
                   last_inbound_at = CASE
                     WHEN conversations.last_inbound_at IS NULL THEN excluded.last_inbound_at
                     WHEN excluded.last_inbound_at > conversations.last_inbound_at
                       THEN excluded.last_inbound_at
                     ELSE conversations.last_inbound_at END,
                   updated_at = excluded.updated_at",
            );
            if sets_state {
                upsert.push(", nlu_state = excluded.nlu_state");
            }
            statements.push(upsert);
        }
    }
    // Rare (a handover), so one statement each, after the upserts made
    // the rows.
    for ((page_id, psid), t) in touches {
        if let Some(owner) = &t.thread {
            statements.push(thread_statement(page_id, psid, owner.as_deref(), now));
        }
    }
    statements
}

/// The `thread_owner` of a thread another app owns when Meta did not say
/// which (a standby event, a Send API refusal).
pub const UNKNOWN_OWNER: &str = "unknown";

/// A thread changing hands outside an inbox event: a send refused because
/// another app owns it, or an idle thread taken back. Back with this app,
/// the person's held messages are released.
#[derive(Debug, Clone, PartialEq)]
pub struct ThreadChange {
    pub page_id: String,
    pub psid: String,
    /// `None`: this app; else the owner's app id (`unknown` when Meta did
    /// not say).
    pub owner: Option<String>,
    pub at: i64,
    /// What the change assumes still holds; otherwise it changes nothing
    /// (a later change already told more).
    pub assumes: ThreadAssumes,
}

/// The thread as a `ThreadChange` found it.
#[derive(Debug, Clone, PartialEq)]
pub enum ThreadAssumes {
    /// This app's, and unchanged since this time (a send refused for the
    /// thread: a pass back recorded after the send began wins).
    OursSince(i64),
    /// Still this app's (an idle thread taken back, or its take refused).
    Owner(String),
}

impl ThreadChange {
    pub(crate) fn statements(&self) -> Vec<Stmt> {
        let mut update =
            thread_statement(&self.page_id, &self.psid, self.owner.as_deref(), self.at);
        match &self.assumes {
            ThreadAssumes::OursSince(at) => update
                .push(" AND thread_owner IS NULL AND (thread_since IS NULL OR thread_since <= ")
                .bind(*at)
                .push(")"),
            ThreadAssumes::Owner(owner) => update.push(" AND thread_owner = ").bind(owner.as_str()),
        };
        let mut statements = vec![update];
        if self.owner.is_none() {
            let person = [(self.page_id.as_str(), self.psid.as_str())];
            statements.push(super::outbox::release_held_statement(&person, self.at));
        }
        statements
    }
}

/// Who owns a conversation's thread from `now`: `None` is this app.
/// `thread_since` is when it last changed hands.
pub(crate) fn thread_statement(page_id: &str, psid: &str, owner: Option<&str>, now: i64) -> Stmt {
    let mut update = Stmt::new("UPDATE conversations SET thread_owner = ");
    update
        .bind(owner)
        .push(", thread_since = ")
        .bind(now)
        .push(" WHERE page_id = ")
        .bind(page_id)
        .push(" AND psid = ")
        .bind(psid);
    update
}

/// The context's columns and joins, for a `k` with `page_id` and `psid`
/// columns: one person's (`conversation_context`) or the conversations of
/// claimed inbox rows (the group committer reads them with the claim).
/// The look-up and the tombstone are subqueries, each an index probe per
/// row: as a join, `psid_lookups` was read whole (the planner's hash join
/// at a few thousand people; `EXPLAIN ANALYZE` of 30 claimed rows' read
/// with 5,000 people looked up: 1.6 ms as a join, 0.4 ms as a subquery).
macro_rules! context_select {
    ($first:literal, $from:literal) => {
        concat!(
            "SELECT ",
            $first,
            "c.nlu_state, a.id, a.name, a.fb_uid,
             (SELECT p.looked_up_at FROM psid_lookups p
              WHERE p.page_id = k.page_id AND p.psid = k.psid),
             c.thread_owner,
             CAST(CASE WHEN EXISTS (SELECT 1 FROM link_tombstones t
                                    WHERE t.page_id = k.page_id AND t.psid = k.psid)
                  THEN 1 ELSE 0 END AS BIGINT) FROM ",
            $from,
            " LEFT JOIN conversations c ON c.page_id = k.page_id AND c.psid = k.psid
              LEFT JOIN links l ON l.page_id = k.page_id AND l.psid = k.psid
              LEFT JOIN accounts a ON a.id = l.account_id"
        )
    };
}

/// The context of the conversations of inbox rows: `WHERE k.id IN (…)`
/// follows.
/// The second column says whether the row's Page is paused (`page_pauses`
/// is tiny and keyed by Page).
pub(crate) const INBOX_CONTEXT_SQL: &str = context_select!(
    "k.id, CAST(CASE WHEN EXISTS (SELECT 1 FROM page_pauses pp WHERE pp.page_id = k.page_id)
              THEN 1 ELSE 0 END AS BIGINT), ",
    "inbox k"
);

/// A row of `context_select!` after its leading columns.
pub(crate) type ContextColumns = (
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<i64>,
    Option<String>,
    i64,
);

pub(crate) fn context_from(
    (nlu_state, id, name, fb_uid, looked_up_at, thread_owner, unlinked): ContextColumns,
) -> ConversationContext {
    ConversationContext {
        nlu_state,
        account: id.zip(fb_uid).map(|(account_id, fb_uid)| LinkedAccount {
            account_id,
            name,
            fb_uid,
        }),
        looked_up: looked_up_at.is_some(),
        page_paused: false,
        thread_owner,
        unlinked: unlinked != 0,
    }
}

impl Store {
    /// One person's context, read now.
    pub async fn conversation_context(
        &self,
        page_id: &str,
        psid: &str,
    ) -> anyhow::Result<ConversationContext> {
        let row: ContextColumns = with_reader!(self, pool => sqlx::query_as(context_select!(
            "", "(SELECT CAST($1 AS TEXT) AS page_id, CAST($2 AS TEXT) AS psid) k"))
            .bind(page_id)
            .bind(psid)
            .fetch_one(pool)
            .await)
        .context("reading a conversation")?;
        Ok(context_from(row))
    }

    /// Whether a handover (a `control` row) for the person is still to be
    /// sent.
    pub async fn control_pending(&self, page_id: &str, psid: &str) -> anyhow::Result<bool> {
        let row: Option<(i64,)> = with_reader!(self, pool => sqlx::query_as(
            "SELECT id FROM outbox WHERE page_id = $1 AND psid = $2 AND origin = 'control'
               AND state IN ('queued', 'sending') LIMIT 1")
            .bind(page_id)
            .bind(psid)
            .fetch_optional(pool)
            .await)
        .context("reading pending handovers")?;
        Ok(row.is_some())
    }

    /// Threads another app has held since `before` or earlier, the person
    /// silent since then too, oldest first: `(page_id, psid, owner)`.
    pub async fn idle_threads(
        &self,
        before: i64,
        limit: i64,
    ) -> anyhow::Result<Vec<(String, String, String)>> {
        let rows = with_reader!(self, pool => sqlx::query_as(
            "SELECT page_id, psid, thread_owner FROM conversations
             WHERE thread_owner IS NOT NULL AND thread_since <= $1
               AND COALESCE(last_inbound_at, 0) <= $1
             ORDER BY thread_since LIMIT $2")
            .bind(before)
            .bind(limit)
            .fetch_all(pool)
            .await)
        .context("reading idle threads")?;
        Ok(rows)
    }

    /// What an API message (or link notice) checks before each attempt: when the person
    /// last wrote (the messaging window) and when they unlinked, if they
    /// are unlinked now (a relink removes the record).
    pub async fn recipient_now(&self, page_id: &str, psid: &str) -> anyhow::Result<RecipientNow> {
        let row: (Option<i64>, Option<i64>) = with_reader!(self, pool => sqlx::query_as(
            "SELECT (SELECT last_inbound_at FROM conversations WHERE page_id = $1 AND psid = $2),
                    (SELECT unlinked_at FROM link_tombstones WHERE page_id = $1 AND psid = $2)")
            .bind(page_id)
            .bind(psid)
            .fetch_one(pool)
            .await)
        .context("reading when the person last wrote")?;
        Ok(RecipientNow {
            last_inbound_at: row.0,
            unlinked_at: row.1,
        })
    }
}

/// A person as an API message finds them before an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecipientNow {
    pub last_inbound_at: Option<i64>,
    /// When they unlinked, while they are unlinked.
    pub unlinked_at: Option<i64>,
}
