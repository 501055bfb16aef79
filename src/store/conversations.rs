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
}

impl Store {
    pub async fn conversation_context(
        &self,
        page_id: &str,
        psid: &str,
    ) -> anyhow::Result<ConversationContext> {
        type Row = (
            Option<String>,
            Option<String>,
            Option<String>,
            Option<String>,
            Option<i64>,
        );
        let row: Option<Row> = with_reader!(self, pool => sqlx::query_as(
            "SELECT c.nlu_state, a.id, a.name, a.fb_uid, p.looked_up_at
             FROM (SELECT 1 AS one) k
             LEFT JOIN conversations c ON c.page_id = $1 AND c.psid = $2
             LEFT JOIN links l ON l.page_id = $1 AND l.psid = $2
             LEFT JOIN accounts a ON a.id = l.account_id
             LEFT JOIN psid_lookups p ON p.page_id = $1 AND p.psid = $2")
            .bind(page_id)
            .bind(psid)
            .fetch_optional(pool)
            .await)
        .context("reading a conversation")?;
        let Some((nlu_state, id, name, fb_uid, looked_up_at)) = row else {
            return Ok(ConversationContext::default());
        };
        Ok(ConversationContext {
            nlu_state,
            account: id.zip(fb_uid).map(|(account_id, fb_uid)| LinkedAccount {
                account_id,
                name,
                fb_uid,
            }),
            looked_up: looked_up_at.is_some(),
        })
    }
}
