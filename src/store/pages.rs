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

    pub async fn page_ids(&self) -> anyhow::Result<Vec<String>> {
        let rows: Vec<(String,)> = with_reader!(self, pool => sqlx::query_as(
            "SELECT page_id FROM pages ORDER BY page_id")
            .fetch_all(pool)
            .await)
        .context("listing pages")?;
        Ok(rows.into_iter().map(|(id,)| id).collect())
    }
}
