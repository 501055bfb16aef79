//! Signed-in sessions of the login site, by the SHA-256 of their id.

use anyhow::Context;

use super::{with_reader, with_writer, Store};

/// A session record as stored.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct SessionRecord {
    pub account_id: String,
    pub created_at: i64,
    pub last_seen_at: i64,
    pub expires_at: i64,
}

impl Store {
    pub async fn create_session(
        &self,
        id_hash: &str,
        account_id: &str,
        now: i64,
        expires_at: i64,
    ) -> anyhow::Result<()> {
        with_writer!(self, pool => sqlx::query(
            "INSERT INTO sessions (id_hash, account_id, created_at, last_seen_at, expires_at)
             VALUES ($1, $2, $3, $3, $4)")
            .bind(id_hash)
            .bind(account_id)
            .bind(now)
            .bind(expires_at)
            .execute(pool)
            .await
            .map(|_| ()))
        .context("storing a session")?;
        Ok(())
    }

    pub async fn session(&self, id_hash: &str) -> anyhow::Result<Option<SessionRecord>> {
        let row = with_reader!(self, pool => sqlx::query_as(
            "SELECT account_id, created_at, last_seen_at, expires_at FROM sessions
             WHERE id_hash = $1")
            .bind(id_hash)
            .fetch_optional(pool)
            .await)
        .context("reading a session")?;
        Ok(row)
    }

    /// Records a use of the session at `now`.
    pub async fn touch_session(
        &self,
        id_hash: &str,
        now: i64,
        expires_at: i64,
    ) -> anyhow::Result<()> {
        with_writer!(self, pool => sqlx::query(
            "UPDATE sessions SET last_seen_at = $2, expires_at = $3 WHERE id_hash = $1")
            .bind(id_hash)
            .bind(now)
            .bind(expires_at)
            .execute(pool)
            .await
            .map(|_| ()))
        .context("refreshing a session")?;
        Ok(())
    }

    /// Ends one session; false when it had ended already.
    pub async fn end_session(&self, id_hash: &str) -> anyhow::Result<bool> {
        let ended = with_writer!(self, pool => sqlx::query(
            "DELETE FROM sessions WHERE id_hash = $1")
            .bind(id_hash)
            .execute(pool)
            .await
            .map(|r| r.rows_affected()))
        .context("ending a session")?;
        Ok(ended > 0)
    }
}
