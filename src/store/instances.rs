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

/// When this instance last reached the database with its heartbeat. An
/// instance that has not for half of `STALE_AFTER_MS` may already look dead
/// to the others, who then take its rows: it starts no send until it has
/// beaten again (`may_send`), so a row is never sent by two instances.
#[derive(Debug)]
pub struct Heartbeat {
    /// Whether others can take this instance's rows at all (Postgres).
    shared_database: bool,
    last_ok_ms: std::sync::atomic::AtomicI64,
}

impl Heartbeat {
    pub fn new(shared_database: bool, now: i64) -> Heartbeat {
        Heartbeat {
            shared_database,
            last_ok_ms: std::sync::atomic::AtomicI64::new(now),
        }
    }

    /// A beat reached the database at `now`.
    pub fn beat(&self, now: i64) {
        self.last_ok_ms
            .fetch_max(now, std::sync::atomic::Ordering::Relaxed);
    }

    /// Whether a send may start at `now`.
    pub fn may_send(&self, now: i64) -> bool {
        !self.shared_database
            || now - self.last_ok_ms.load(std::sync::atomic::Ordering::Relaxed)
                <= STALE_AFTER_MS / 2
    }
}

/// Ends the leases of rows held by an instance that is not in `instances`
/// (killed and forgotten, or never recorded). Rows already released are
/// left alone, so a beat with nothing to release writes nothing.
const RELEASE_ABANDONED: [&str; 2] = [
    "UPDATE inbox SET locked_until = 0
      WHERE state = 'processing' AND locked_until > 0 AND claimed_by IS NOT NULL
        AND claimed_by NOT IN (SELECT id FROM instances)",
    "UPDATE outbox SET locked_until = 0
      WHERE state = 'sending' AND locked_until > 0 AND claimed_by IS NOT NULL
        AND claimed_by NOT IN (SELECT id FROM instances)",
];

impl Store {
    /// Records that instance `id` is alive and answers how many are (heard
    /// from within `STALE_AFTER_MS`), this one included. With
    /// `forget_silent`, the silent ones are removed: only an instance that
    /// has itself reached the database for `STALE_AFTER_MS` may judge (after
    /// an outage everyone is silent for a while). Every beat ends the leases
    /// of rows whose holder is no longer in the table (`RELEASE_ABANDONED`).
    /// Always 1 on SQLite.
    pub async fn instance_alive(&self, id: &str, forget_silent: bool) -> anyhow::Result<u32> {
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
        if forget_silent {
            sqlx::query(
                "DELETE FROM instances
                  WHERE seen_at < CAST(EXTRACT(EPOCH FROM now()) * 1000 AS BIGINT) - $1",
            )
            .bind(STALE_AFTER_MS)
            .execute(&mut *tx)
            .await?;
        }
        // The rows of an instance no longer here are claimable at once: their
        // lease ends now, so a claim finds them by the lease's end alone.
        for release in RELEASE_ABANDONED {
            sqlx::query(release).execute(&mut *tx).await?;
        }
        let (alive,): (i64,) = sqlx::query_as(
            "SELECT COUNT(*) FROM instances
              WHERE seen_at >= CAST(EXTRACT(EPOCH FROM now()) * 1000 AS BIGINT) - $1",
        )
        .bind(STALE_AFTER_MS)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sends_stop_once_the_last_beat_is_half_the_staleness_limit_old() {
        let heartbeat = Heartbeat::new(true, 1_000);
        assert!(heartbeat.may_send(1_000 + STALE_AFTER_MS / 2));
        assert!(!heartbeat.may_send(1_001 + STALE_AFTER_MS / 2));
        heartbeat.beat(20_000);
        assert!(heartbeat.may_send(20_000 + STALE_AFTER_MS / 2));
        // A late answer from an older beat does not move it back.
        heartbeat.beat(5_000);
        assert!(heartbeat.may_send(24_000));
        // One instance alone on its SQLite file has no one to yield to.
        assert!(Heartbeat::new(false, 0).may_send(i64::MAX));
    }
}
