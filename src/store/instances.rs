//! The instances sharing a Postgres database (table `instances`), so each
//! can keep its share of every Page's send rate. An instance says it is
//! alive every few seconds; one that has not said so for `STALE_AFTER_MS`
//! is gone (killed, or cut off) and its row is dropped by the next
//! instance to look. Times are the database's clock, so the instances'
//! own clocks may disagree. SQLite has one instance per file and no such
//! table.

use anyhow::Context;

use super::Store;

/// An instance silent for this long no longer counts.
pub const STALE_AFTER_MS: i64 = 10_000;

impl Store {
    /// Records that instance `id` is alive, forgets the instances silent
    /// for `STALE_AFTER_MS`, and answers how many are alive, this one
    /// included. Always 1 on SQLite.
    pub async fn instance_alive(&self, id: &str) -> anyhow::Result<u32> {
        let Store::Postgres(pool) = self else {
            return Ok(1);
        };
        let mut tx = pool.begin().await?;
        sqlx::query(
            "INSERT INTO instances (id, started_at, seen_at)
             VALUES ($1, CAST(EXTRACT(EPOCH FROM now()) * 1000 AS BIGINT),
                         CAST(EXTRACT(EPOCH FROM now()) * 1000 AS BIGINT))
             ON CONFLICT (id) DO UPDATE SET seen_at = excluded.seen_at",
        )
        .bind(id)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "DELETE FROM instances
              WHERE seen_at < CAST(EXTRACT(EPOCH FROM now()) * 1000 AS BIGINT) - $1",
        )
        .bind(STALE_AFTER_MS)
        .execute(&mut *tx)
        .await?;
        let (alive,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM instances")
            .fetch_one(&mut *tx)
            .await?;
        tx.commit().await.context("recording this instance")?;
        Ok(u32::try_from(alive).unwrap_or(u32::MAX).max(1))
    }

    /// Instance `id` stops: the others take its share at their next look.
    pub async fn instance_gone(&self, id: &str) -> anyhow::Result<()> {
        if let Store::Postgres(pool) = self {
            sqlx::query("DELETE FROM instances WHERE id = $1")
                .bind(id)
                .execute(pool)
                .await
                .context("removing this instance")?;
        }
        Ok(())
    }
}
