//! Conversations: one row per person talking to a Page.

use anyhow::Context;

use super::{with_reader, Store};

#[derive(Debug, Clone, Default, sqlx::FromRow)]
pub struct Conversation {
    pub page_id: String,
    pub psid: String,
    pub last_inbound_at: Option<i64>,
    pub nlu_state: Option<String>,
}

impl Store {
    pub async fn conversation(
        &self,
        page_id: &str,
        psid: &str,
    ) -> anyhow::Result<Option<Conversation>> {
        let row = with_reader!(self, pool => sqlx::query_as(
            "SELECT page_id, psid, last_inbound_at, nlu_state FROM conversations
             WHERE page_id = $1 AND psid = $2")
            .bind(page_id)
            .bind(psid)
            .fetch_optional(pool)
            .await)
        .context("reading a conversation")?;
        Ok(row)
    }
}
