//! Postgres plans the work tables' claims and results from their
//! statistics, and a cached plan lives as long as the statistics it was
//! made from. The `inbox` and `outbox` tables start empty and grow by
//! thousands of rows a second under load, long before autovacuum's first
//! analyze (it looks once a minute): the claims kept a plan made for an
//! empty table, checked each candidate's conversation by walking every open
//! row (the index then kept by id) instead of its own few (`outbox_open`),
//! and a fresh database ingested 265 events/s instead of 4,000 (`bench
//! webhook` against a Postgres-backed server, README). The same happens to
//! a large table after a quiet spell, when its statistics say every row is
//! done and a burst arrives: the share of open rows is what the plans
//! depend on, not the table's size, so a table is analyzed once 1,000 rows
//! changed, however large it is (autovacuum waits for a tenth). Migration
//! 0019 keeps each analyze to a 3,000-row sample. SQLite plans each
//! statement from its indexes alone and needs none of this.

use anyhow::Context;

use super::Store;

/// The tables whose claims depend on the planner knowing their size, and
/// the statement analyzing each.
const WORK_TABLES: [(&str, &str); 2] = [
    ("inbox", "ANALYZE (SKIP_LOCKED) inbox"),
    ("outbox", "ANALYZE (SKIP_LOCKED) outbox"),
];
/// A table is analyzed once this many rows changed since its last analyze
/// (checked every two seconds: `workers::planner_stats`).
const STALE_ROWS: i64 = 1_000;

impl Store {
    /// Analyzes the work tables whose statistics have fallen behind; the
    /// tables it analyzed. Nothing on SQLite. A table another session is
    /// analyzing is skipped (`SKIP_LOCKED`): several instances share one
    /// database.
    pub async fn refresh_planner_stats(&self) -> anyhow::Result<Vec<&'static str>> {
        let Store::Postgres(pool) = self else {
            return Ok(Vec::new());
        };
        let stale: Vec<(String,)> = sqlx::query_as(
            "SELECT relname::text FROM pg_stat_user_tables
              WHERE schemaname = current_schema() AND relname = ANY($1)
                AND n_mod_since_analyze >= $2",
        )
        .bind(WORK_TABLES.map(|(table, _)| table).as_slice())
        .bind(STALE_ROWS)
        .fetch_all(pool)
        .await
        .context("reading the work tables' statistics")?;
        let mut analyzed = Vec::new();
        for (table, analyze) in WORK_TABLES {
            if stale.iter().any(|(name,)| name == table) {
                sqlx::query(analyze)
                    .execute(pool)
                    .await
                    .with_context(|| format!("analyzing {table}"))?;
                analyzed.push(table);
            }
        }
        Ok(analyzed)
    }
}
