//! Conversations: one row per person talking to a Page.

use anyhow::Context;

use super::accounts::LinkedAccount;
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
}

/// The context's columns and joins, for a `k` with `page_id` and `psid`
/// columns: one person's (`conversation_context`) or the conversations of
/// claimed inbox rows (the group committer reads them with the claim).
macro_rules! context_select {
    ($first:literal, $from:literal) => {
        concat!(
            "SELECT ",
            $first,
            "c.nlu_state, a.id, a.name, a.fb_uid, p.looked_up_at FROM ",
            $from,
            " LEFT JOIN conversations c ON c.page_id = k.page_id AND c.psid = k.psid
              LEFT JOIN links l ON l.page_id = k.page_id AND l.psid = k.psid
              LEFT JOIN accounts a ON a.id = l.account_id
              LEFT JOIN psid_lookups p ON p.page_id = k.page_id AND p.psid = k.psid"
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
);

pub(crate) fn context_from(
    (nlu_state, id, name, fb_uid, looked_up_at): ContextColumns,
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
}
