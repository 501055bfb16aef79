//! The newest inbox and outbox rows, newest first (the demo's operator view).

use anyhow::Context;

use super::inbox::{self, InboxRecord};
use super::outbox::{OutboxRecord, RECORD_COLUMNS};
use super::{with_reader, Store};

impl Store {
    pub async fn recent_inbox(&self, limit: i64) -> anyhow::Result<Vec<InboxRecord>> {
        let sql = format!(
            "SELECT {} FROM inbox ORDER BY id DESC LIMIT $1",
            inbox::RECORD_COLUMNS
        );
        let rows = with_reader!(self, pool => sqlx::query_as(&sql)
            .bind(limit)
            .fetch_all(pool)
            .await)
        .context("listing recent inbox rows")?;
        Ok(rows)
    }

    pub async fn recent_outbox(&self, limit: i64) -> anyhow::Result<Vec<OutboxRecord>> {
        let sql = format!("SELECT {RECORD_COLUMNS} FROM outbox ORDER BY id DESC LIMIT $1");
        let rows = with_reader!(self, pool => sqlx::query_as(&sql)
            .bind(limit)
            .fetch_all(pool)
            .await)
        .context("listing recent outbox rows")?;
        Ok(rows)
    }
}
