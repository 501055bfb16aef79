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

/// A Page an operator added (`lexbridge page add`), with its own settings.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct AddedPage {
    pub page_id: String,
    pub name: Option<String>,
    pub added_at: i64,
    /// Its Lex bot alias (the bot, locale and region are the deployment's).
    pub lex_bot_alias_id: Option<String>,
    /// Its embedded-engine bot (a Lex V2 export).
    pub local_bot: Option<String>,
    /// Its Send API calls per second.
    pub send_rate: Option<i64>,
}

/// A Page's encrypted tokens: `page add`'s, a Page admin's login's.
pub type SealedTokens = (Option<Vec<u8>>, Option<Vec<u8>>);

/// What `page remove` did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Removed {
    pub page: bool,
    /// Queued or held messages of the Page, now `cancelled`.
    pub cancelled: u64,
}

impl Store {
    /// Adds (or updates) a Page with its encrypted token and settings.
    pub async fn add_page(
        &self,
        page: &AddedPage,
        encrypted_token: &[u8],
        now: i64,
    ) -> anyhow::Result<()> {
        with_writer!(self, pool => sqlx::query(
            "INSERT INTO pages (page_id, name, added_at, added_token, lex_bot_alias_id, local_bot,
                               send_rate, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
             ON CONFLICT (page_id) DO UPDATE SET name = COALESCE(excluded.name, pages.name),
                 added_at = COALESCE(pages.added_at, excluded.added_at),
                 added_token = excluded.added_token, lex_bot_alias_id = excluded.lex_bot_alias_id,
                 local_bot = excluded.local_bot, send_rate = excluded.send_rate,
                 updated_at = excluded.updated_at")
            .bind(&page.page_id)
            .bind(&page.name)
            .bind(page.added_at)
            .bind(encrypted_token)
            .bind(&page.lex_bot_alias_id)
            .bind(&page.local_bot)
            .bind(page.send_rate)
            .bind(now)
            .execute(pool)
            .await
            .map(|_| ()))
        .context("adding a page")?;
        Ok(())
    }

    /// The Pages operators added, oldest first.
    pub async fn added_pages(&self) -> anyhow::Result<Vec<AddedPage>> {
        let rows = with_reader!(self, pool => sqlx::query_as(
            "SELECT page_id, name, added_at, lex_bot_alias_id, local_bot, send_rate FROM pages
             WHERE added_at IS NOT NULL ORDER BY added_at, page_id")
            .fetch_all(pool)
            .await)
        .context("listing added pages")?;
        Ok(rows)
    }

    /// Forgets an added Page's token and settings; its queued and held
    /// messages are cancelled (one in flight finishes). What people wrote
    /// to it stays until retention prunes it.
    pub async fn remove_page(&self, page_id: &str, now: i64) -> anyhow::Result<Removed> {
        let (page, cancelled) = with_writer!(self, pool => async {
            let mut tx = pool.begin().await?;
            let page = sqlx::query(
                "UPDATE pages SET added_at = NULL, added_token = NULL, lex_bot_alias_id = NULL,
                     local_bot = NULL, send_rate = NULL, updated_at = $2
                 WHERE page_id = $1 AND added_at IS NOT NULL")
                .bind(page_id)
                .bind(now)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            // A Page that was not added (the default one, say) keeps its queue.
            if page == 0 {
                tx.rollback().await?;
                return Ok::<_, sqlx::Error>((0, 0));
            }
            let cancelled = sqlx::query(
                "UPDATE outbox SET state = 'cancelled', claimed_by = NULL
                 WHERE page_id = $1 AND state IN ('queued', 'held')")
                .bind(page_id)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            tx.commit().await?;
            Ok::<_, sqlx::Error>((page, cancelled))
        }.await)
        .context("removing a page")?;
        Ok(Removed {
            page: page > 0,
            cancelled,
        })
    }

    /// The encrypted tokens stored for a Page: the one `page add` stored,
    /// then the one a Page admin's login stored.
    pub async fn page_tokens(&self, page_id: &str) -> anyhow::Result<SealedTokens> {
        let row: Option<SealedTokens> = with_reader!(self, pool => sqlx::query_as(
            "SELECT added_token, page_token FROM pages WHERE page_id = $1")
            .bind(page_id)
            .fetch_optional(pool)
            .await)
        .context("reading a page's tokens")?;
        Ok(row.unwrap_or_default())
    }
}
