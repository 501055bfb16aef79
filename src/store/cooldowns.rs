//! Page cool-downs shared by the instances on one Postgres database (table
//! `page_cooldowns`, see `facebook::page_cooldown`): the instance Graph
//! told to slow down records until when, and the others adopt it with
//! their heartbeat. Times in the table are the database's clock; what
//! goes in and comes out is a duration, so the instances' own clocks may
//! disagree. SQLite has one instance per file and no such table.

use anyhow::Context;

use super::Store;

/// The database's clock in epoch milliseconds.
const DB_NOW_MS: &str = "CAST(EXTRACT(EPOCH FROM clock_timestamp()) * 1000 AS BIGINT)";

impl Store {
    /// Records that `page_id` cools down for `for_ms` from now; a longer
    /// cool-down already recorded stays. Nothing on SQLite.
    pub async fn share_cooldown(&self, page_id: &str, for_ms: i64) -> anyhow::Result<()> {
        let Store::Postgres(pool) = self else {
            return Ok(());
        };
        let sql = format!(
            "INSERT INTO page_cooldowns (page_id, until_ms) VALUES ($1, {DB_NOW_MS} + $2)
             ON CONFLICT (page_id) DO UPDATE
             SET until_ms = GREATEST(page_cooldowns.until_ms, excluded.until_ms)"
        );
        sqlx::query(&sql)
            .bind(page_id)
            .bind(for_ms.max(0))
            .execute(pool)
            .await
            .context("recording a Page's cool-down")?;
        Ok(())
    }

    /// Ends `page_id`'s cool-down for every instance (a send got through).
    /// Nothing on SQLite.
    pub async fn end_cooldown(&self, page_id: &str) -> anyhow::Result<()> {
        let Store::Postgres(pool) = self else {
            return Ok(());
        };
        sqlx::query("DELETE FROM page_cooldowns WHERE page_id = $1")
            .bind(page_id)
            .execute(pool)
            .await
            .context("ending a Page's cool-down")?;
        Ok(())
    }

    /// The Pages cooling down now, each with how long it still has (ms).
    /// Empty on SQLite.
    pub async fn shared_cooldowns(&self) -> anyhow::Result<Vec<(String, i64)>> {
        let Store::Postgres(pool) = self else {
            return Ok(Vec::new());
        };
        let sql = format!(
            "SELECT page_id, until_ms - {DB_NOW_MS} FROM page_cooldowns WHERE until_ms > {DB_NOW_MS}"
        );
        sqlx::query_as(&sql)
            .fetch_all(pool)
            .await
            .context("reading the Pages' cool-downs")
    }
}
