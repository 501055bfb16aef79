//! The age of each work queue's oldest open row, for `/metrics`: the first
//! entry of the partial index of rows waiting (`inbox_waiting`,
//! `outbox_waiting`, on `id`) beside the rows in hand (`*_leases`, as many
//! as the workers hold), never a scan of the table. Ids grow with arrival,
//! so the lowest open id is the oldest open row. `ORDER BY +id` for the rows
//! in hand keeps SQLite from walking the whole table in id order rather
//! than sorting those few.

use anyhow::Context;

use super::{with_reader, Store};

/// The first row of `$table` in `$state` by `$order`, with its `$at`.
macro_rules! first_in {
    ($table:literal, $at:literal, $state:literal, $order:literal) => {
        concat!(
            "SELECT id, ",
            $at,
            " AS at FROM ",
            $table,
            " WHERE state = '",
            $state,
            "' ORDER BY ",
            $order,
            " LIMIT 1"
        )
    };
}

/// The oldest open row's `$at` of `$table`: the first row waiting, or the
/// first in hand, whichever came first.
macro_rules! oldest_sql {
    ($table:literal, $at:literal, $waiting:literal, $in_hand:literal) => {
        concat!(
            "SELECT o.at FROM (SELECT w.id, w.at FROM (",
            first_in!($table, $at, $waiting, "id"),
            ") w UNION ALL SELECT h.id, h.at FROM (",
            first_in!($table, $at, $in_hand, "+id"),
            ") h) o ORDER BY o.id LIMIT 1"
        )
    };
}

pub const INBOX_OLDEST_SQL: &str = oldest_sql!("inbox", "received_at", "pending", "processing");
pub const OUTBOX_OLDEST_SQL: &str = oldest_sql!("outbox", "created_at", "queued", "sending");

impl Store {
    /// Per queue, how long (ms before `now`) its oldest open row has waited;
    /// `None` when it has none. Held outbox messages wait for their person
    /// by design and are not counted.
    pub async fn oldest_open(&self, now: i64) -> anyhow::Result<[(&'static str, Option<i64>); 2]> {
        let mut ages = [("inbox", None), ("outbox", None)];
        for (slot, sql) in ages.iter_mut().zip([INBOX_OLDEST_SQL, OUTBOX_OLDEST_SQL]) {
            let row: Option<(i64,)> =
                with_reader!(self, pool => sqlx::query_as(sql).fetch_optional(pool).await)
                    .with_context(|| format!("reading the oldest open {} row", slot.0))?;
            slot.1 = row.map(|(at,)| now - at);
        }
        Ok(ages)
    }

    /// The migrations of this build that the database has not applied
    /// (successfully), by version.
    pub async fn pending_migrations(&self) -> anyhow::Result<Vec<i64>> {
        let applied: Vec<(i64,)> = with_reader!(self, pool => sqlx::query_as(
            "SELECT version FROM _sqlx_migrations WHERE success")
            .fetch_all(pool)
            .await)
        .context("reading the applied migrations")?;
        let applied: std::collections::HashSet<i64> = applied.into_iter().map(|(v,)| v).collect();
        Ok(self
            .migrator()
            .iter()
            .filter(|m| m.migration_type.is_up_migration())
            .map(|m| m.version)
            .filter(|v| !applied.contains(v))
            .collect())
    }
}
