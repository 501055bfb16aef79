//! Stored user tokens (encrypted), as the daily token check reads them.

use anyhow::Context;

use super::{with_reader, with_writer, Store};

impl Store {
    /// Every account holding a user token: its id and the encrypted token.
    pub async fn user_tokens(&self) -> anyhow::Result<Vec<(String, Vec<u8>)>> {
        let rows = with_reader!(self, pool => sqlx::query_as(
            "SELECT id, user_token FROM accounts WHERE user_token IS NOT NULL ORDER BY id")
            .fetch_all(pool)
            .await)
        .context("listing stored user tokens")?;
        Ok(rows)
    }

    /// Records when an account's user token expires, as Meta said.
    pub async fn set_user_token_expiry(
        &self,
        account_id: &str,
        expires_at: Option<i64>,
    ) -> anyhow::Result<()> {
        with_writer!(self, pool => sqlx::query(
            "UPDATE accounts SET token_expires_at = $2 WHERE id = $1 AND user_token IS NOT NULL")
            .bind(account_id)
            .bind(expires_at)
            .execute(pool)
            .await
            .map(|_| ()))
        .context("recording a user token's expiry")?;
        Ok(())
    }
}
