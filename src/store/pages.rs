//! Pages the service answers for.

use anyhow::Context;

use super::{with_reader, with_writer, Store};

impl Store {
    /// Records a Page the service is configured for (idempotent).
    pub async fn ensure_page(&self, page_id: &str, now: i64) -> anyhow::Result<()> {
        with_writer!(self, pool => sqlx::query(
            "INSERT INTO pages (page_id, updated_at) VALUES ($1, $2)
             ON CONFLICT (page_id) DO NOTHING")
            .bind(page_id)
            .bind(now)
            .execute(pool)
            .await
            .map(|_| ()))
        .context("recording the configured page")?;
        Ok(())
    }

    /// Stores a Page with its (already encrypted) access token.
    pub async fn set_page(
        &self,
        page_id: &str,
        name: Option<&str>,
        encrypted_token: &[u8],
        now: i64,
    ) -> anyhow::Result<()> {
        with_writer!(self, pool => sqlx::query(
            "INSERT INTO pages (page_id, name, page_token, updated_at) VALUES ($1, $2, $3, $4)
             ON CONFLICT (page_id) DO UPDATE SET name = COALESCE(excluded.name, pages.name),
                 page_token = excluded.page_token, updated_at = excluded.updated_at")
            .bind(page_id)
            .bind(name)
            .bind(encrypted_token)
            .bind(now)
            .execute(pool)
            .await
            .map(|_| ()))
        .context("storing a page")?;
        Ok(())
    }

    /// The encrypted access token stored for a Page.
    pub async fn page_token(&self, page_id: &str) -> anyhow::Result<Option<Vec<u8>>> {
        let row: Option<(Option<Vec<u8>>,)> = with_reader!(self, pool => sqlx::query_as(
            "SELECT page_token FROM pages WHERE page_id = $1")
            .bind(page_id)
            .fetch_optional(pool)
            .await)
        .context("reading a page token")?;
        Ok(row.and_then(|(t,)| t))
    }

    pub async fn page_ids(&self) -> anyhow::Result<Vec<String>> {
        let rows: Vec<(String,)> = with_reader!(self, pool => sqlx::query_as(
            "SELECT page_id FROM pages ORDER BY page_id")
            .fetch_all(pool)
            .await)
        .context("listing pages")?;
        Ok(rows.into_iter().map(|(id,)| id).collect())
    }
}
