//! One store over SQLite and Postgres, chosen from `DATABASE_URL`.
//!
//! SQL is shared where the dialects agree (`$N` placeholders, `ON CONFLICT`,
//! `RETURNING`, integer epoch-millisecond times); the `with_writer!` and
//! `with_reader!` macros expand one query for both pool types, so a query is
//! written once and a branch appears only where the dialects really differ.

pub mod accounts;
mod chunks;
pub mod conversations;
pub mod cooldowns;
pub mod erasure;
mod error;
pub mod failures;
pub mod idempotency;
pub mod inbox;
pub mod inbox_walk;
pub mod instances;
pub mod linking;
pub mod outbound_api;
pub mod outbox;
mod outbox_outcome;
mod outbox_state;
pub mod pages;
pub mod pauses;
pub mod pending_links;
mod planner_stats;
pub mod psid_lookups;
pub mod queue_age;
pub mod receipts;
pub mod recent;
pub mod retention;
pub mod sessions;
pub mod statement;
pub mod sweeps;
pub mod unlink;
pub mod user_tokens;
pub mod writer;

pub use error::StoreError;

use anyhow::Context;
use secrecy::ExposeSecret;
use sqlx::postgres::{PgPool, PgPoolOptions};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use std::str::FromStr;
use std::time::Duration;

use crate::config::DatabaseSettings;

static SQLITE_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");
static POSTGRES_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

/// A handle to the database; cheap to clone.
#[derive(Clone, Debug)]
pub enum Store {
    /// SQLite allows one writer at a time: writes go through a one-connection
    /// pool (queued in-process instead of sleeping in SQLite's busy handler),
    /// reads through a wider one.
    Sqlite {
        writer: SqlitePool,
        reader: SqlitePool,
    },
    Postgres(PgPool),
}

/// Runs `$body` with `$pool` bound to the pool that may write.
macro_rules! with_writer {
    ($store:expr, $pool:ident => $body:expr) => {
        match $store {
            $crate::store::Store::Sqlite { writer: $pool, .. } => $body,
            $crate::store::Store::Postgres($pool) => $body,
        }
    };
}

/// Runs `$body` with `$pool` bound to a pool for reads.
macro_rules! with_reader {
    ($store:expr, $pool:ident => $body:expr) => {
        match $store {
            $crate::store::Store::Sqlite { reader: $pool, .. } => $body,
            $crate::store::Store::Postgres($pool) => $body,
        }
    };
}

/// The claim of a work table (`inbox`, `outbox`): due rows in id order, at
/// most the oldest open row of each conversation, moved from `$waiting` to
/// `$in_hand` with a lease. `$1` lease until, `$2` now, `$3` limit; on
/// Postgres `$4` the claiming instance. (On SQLite the inbox is claimed by
/// a walk instead, `inbox_walk`; the outbox by this statement.)
///
/// On Postgres several instances may claim at once: SKIP LOCKED lets each
/// take other rows, and the conversation check keeps a conversation's later
/// rows behind its earlier ones whether those are locked, waiting or in
/// hand elsewhere. A row names the instance holding it (`claimed_by`); a row
/// held by an instance no longer in `instances` (killed: silent for
/// `instances::STALE_AFTER_MS`) has its lease ended by the next heartbeat
/// of any instance (`instances::RELEASE_ABANDONED`), so a claim asks only
/// whether a lease has ended.
///
/// Two kinds of candidate, each through its own partial index (migration
/// 0018): rows waiting, by id (`*_waiting`), and rows whose lease ran out,
/// by the end of their lease (`*_leases`), so the rows a worker holds are
/// not stepped over. The `waiting` form looks only at the first kind: the
/// claims the committer makes on a worker's behalf in every batch use it,
/// and leave lapsed leases to the worker's own claims and to a periodic
/// one (`feed::LAPSED_EVERY`).
///
/// Each candidate's conversation check is, on Postgres, a lookup of the
/// conversation's oldest open row (`*_open` is by conversation, then id),
/// written as a scalar subquery so that it can only run once per
/// candidate, through the index (SQLite, which plans from its indexes
/// alone, keeps the `NOT EXISTS`). As a `NOT EXISTS` anti-join, Postgres
/// planned it from the statistics of `state`: taken while nearly every row
/// was done (a table after a quiet hour), they made it read every open row
/// for every candidate, and a burst's backlog of 20,000 rows made one
/// claim take 2 s. The leases kind stays behind its own form for the same reason:
/// under such statistics Postgres read it through `*_open`, the whole open
/// set (10–14 ms a claim).
///
/// `$filter`, when given, is a further condition on the candidate row `r`;
/// `$set`, further assignments to the rows claimed.
macro_rules! claim_statement {
    ($postgres:expr, $lapsed:expr, $table:literal, $waiting:literal, $in_hand:literal, $columns:expr) => {
        $crate::store::claim_statement!($postgres, $lapsed, $table, $waiting, $in_hand, $columns, "", "")
    };
    ($postgres:expr, $lapsed:expr, $table:literal, $waiting:literal, $in_hand:literal, $columns:expr, $filter:literal) => {
        $crate::store::claim_statement!($postgres, $lapsed, $table, $waiting, $in_hand, $columns, $filter, "")
    };
    ($postgres:expr, $lapsed:expr, $table:literal, $waiting:literal, $in_hand:literal, $columns:expr, $filter:literal, $set:literal) => {
        match ($postgres, $lapsed) {
            (true, true) => $crate::store::claim_statement!(@sql $table, $waiting, $in_hand, $columns, $filter,
                concat!(", claimed_by = $4", $set), "FOR UPDATE SKIP LOCKED", "", "", lookup),
            (true, false) => $crate::store::claim_statement!(@waiting $table, $waiting, $in_hand, $columns, $filter,
                concat!(", claimed_by = $4", $set), "FOR UPDATE SKIP LOCKED", "", lookup),
            // SQLite would rather walk the table in id order than sort the
            // few rows in hand (it cannot know how few): named indexes.
            (false, true) => $crate::store::claim_statement!(@sql $table, $waiting, $in_hand, $columns, $filter, $set, "",
                concat!(" INDEXED BY ", $table, "_leases"), concat!(" INDEXED BY ", $table, "_waiting"), anti),
            (false, false) => $crate::store::claim_statement!(@waiting $table, $waiting, $in_hand, $columns, $filter, $set, "",
                concat!(" INDEXED BY ", $table, "_waiting"), anti),
        }
    };
    // Both kinds of candidate, the oldest `$3` of them.
    (@sql $table:literal, $waiting:literal, $in_hand:literal, $columns:expr, $filter:literal,
     $holder:expr, $lock:literal, $leases:expr, $waiting_index:expr, $check:ident) => {
        $crate::store::claim_statement!(@update $table, $in_hand, $holder, $columns, concat!(
            "SELECT c.id FROM (",
            $crate::store::claim_statement!(@arm $table, $waiting, $in_hand, $filter, $lock, $leases,
                "l", concat!("r.state = '", $in_hand, "' AND r.locked_until < $2"), $check),
            " UNION ALL ",
            $crate::store::claim_statement!(@arm $table, $waiting, $in_hand, $filter, $lock, $waiting_index,
                "d", concat!("r.state = '", $waiting, "' AND r.next_attempt_at <= $2"), $check),
            ") c ORDER BY c.id LIMIT $3"))
    };
    // Waiting rows only.
    (@waiting $table:literal, $waiting:literal, $in_hand:literal, $columns:expr, $filter:literal,
     $holder:expr, $lock:literal, $waiting_index:expr, $check:ident) => {
        $crate::store::claim_statement!(@update $table, $in_hand, $holder, $columns,
            $crate::store::claim_statement!(@arm $table, $waiting, $in_hand, $filter, $lock, $waiting_index,
                "d", concat!("r.state = '", $waiting, "' AND r.next_attempt_at <= $2"), $check))
    };
    // Moves the rows `$candidates` selects into hand.
    (@update $table:literal, $in_hand:literal, $holder:expr, $columns:expr, $candidates:expr) => {
        concat!(
            "UPDATE ", $table, " SET state = '", $in_hand, "', locked_until = $1", $holder, "
     WHERE id IN (", $candidates, ")
     RETURNING ", $columns
        )
    };
    // One kind of candidate (`$due`), oldest first, each the oldest open row
    // of its conversation.
    (@arm $table:literal, $waiting:literal, $in_hand:literal, $filter:literal, $lock:literal,
     $index:expr, $alias:literal, $due:expr, $check:ident) => {
        concat!(
            "SELECT ", $alias, ".id FROM (SELECT r.id FROM ", $table, " r", $index, "
            WHERE ", $due, " ", $filter, "
              AND ", $crate::store::claim_statement!(@$check $table, $waiting, $in_hand), "
            ORDER BY r.id LIMIT $3 ", $lock, ") ", $alias
        )
    };
    // The conversation check on Postgres: the conversation's oldest open
    // row, looked up (see above).
    (@lookup $table:literal, $waiting:literal, $in_hand:literal) => {
        concat!(
            "r.id = (SELECT p.id FROM ", $table, " p
                    WHERE p.page_id = r.page_id AND p.psid = r.psid
                      AND p.state IN ('", $waiting, "', '", $in_hand, "')
                    ORDER BY p.id LIMIT 1)"
        )
    };
    // On SQLite, which plans from its indexes alone: no earlier open row.
    (@anti $table:literal, $waiting:literal, $in_hand:literal) => {
        concat!(
            "NOT EXISTS (SELECT 1 FROM ", $table, " p
                    WHERE p.page_id = r.page_id AND p.psid = r.psid AND p.id < r.id
                      AND p.state IN ('", $waiting, "', '", $in_hand, "'))"
        )
    };
}

pub(crate) use {claim_statement, with_reader, with_writer};

impl Store {
    /// Opens (creating a SQLite file if needed) without migrating.
    pub async fn connect(settings: &DatabaseSettings) -> anyhow::Result<Store> {
        let url = settings.url.expose_secret();
        if settings.is_postgres() {
            let pool = PgPoolOptions::new()
                .max_connections(settings.pool_size)
                .acquire_timeout(Duration::from_secs(10))
                .connect(url)
                .await
                .context("connecting to Postgres")?;
            return Ok(Store::Postgres(pool));
        }
        let options = SqliteConnectOptions::from_str(url)
            .with_context(|| format!("DATABASE_URL {url:?} is not a SQLite URL"))?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // An acknowledged event must survive power loss.
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(10))
            // The log is copied by a thread of its own (`writer::checkpoint`);
            // a rare write here must not copy it inside its commit.
            .pragma(
                "wal_autocheckpoint",
                writer::CHECKPOINT_BACKSTOP.to_string(),
            );
        // A local file needs no liveness ping before each use. The group
        // committer has a connection of its own (`writer/run.rs`); these serve
        // the rare writes outside it (migrations, start-up, operators).
        let writer = SqlitePoolOptions::new()
            .max_connections(2)
            .test_before_acquire(false)
            .acquire_timeout(Duration::from_secs(30))
            .connect_with(options.clone())
            .await
            .context("opening the SQLite database")?;
        let reader = SqlitePoolOptions::new()
            .max_connections(4)
            .test_before_acquire(false)
            .connect_with(options)
            .await
            .context("opening the SQLite database for reads")?;
        // The group committer opens the same file itself.
        if !writer.connect_options().get_filename().is_file() {
            anyhow::bail!("DATABASE_URL {url:?} must name a SQLite file (an in-memory database would lose acknowledged events)");
        }
        Ok(Store::Sqlite { writer, reader })
    }

    /// Applies the embedded migrations of this backend.
    pub async fn migrate(&self) -> anyhow::Result<()> {
        match self {
            Store::Sqlite { writer, .. } => SQLITE_MIGRATIONS.run(writer).await,
            Store::Postgres(pool) => POSTGRES_MIGRATIONS.run(pool).await,
        }
        .context("applying database migrations")
    }

    /// The embedded migrations of this backend.
    fn migrator(&self) -> &'static sqlx::migrate::Migrator {
        match self {
            Store::Sqlite { .. } => &SQLITE_MIGRATIONS,
            Store::Postgres(_) => &POSTGRES_MIGRATIONS,
        }
    }

    /// Puts the inbox and outbox rows this instance had in hand back
    /// (a single instance restarting on its SQLite file).
    pub async fn release_leases(&self) -> anyhow::Result<()> {
        with_writer!(self, pool => {
            let mut tx = pool.begin().await?;
            sqlx::query("UPDATE inbox SET state = 'pending', locked_until = NULL, claimed_by = NULL WHERE state = 'processing'")
                .execute(&mut *tx)
                .await?;
            sqlx::query("UPDATE outbox SET state = 'queued', locked_until = NULL, claimed_by = NULL WHERE state = 'sending'")
                .execute(&mut *tx)
                .await?;
            tx.commit().await
        })
        .context("releasing leases")?;
        Ok(())
    }

    pub fn is_postgres(&self) -> bool {
        matches!(self, Store::Postgres(_))
    }

    /// Waits until the database answers a trivial query.
    pub async fn ping(&self) -> anyhow::Result<()> {
        with_reader!(self, pool => sqlx::query("SELECT 1").execute(pool).await.map(|_| ()))
            .context("pinging the database")?;
        Ok(())
    }

    pub async fn close(&self) {
        match self {
            Store::Sqlite { writer, reader } => {
                reader.close().await;
                writer.close().await;
            }
            Store::Postgres(pool) => pool.close().await,
        }
    }
}

/// Queue depths for `/metrics`: every state named, zero when it has no rows.
fn depths(states: &[&str], counted: Vec<(String, i64)>, last: (&str, i64)) -> Vec<(String, i64)> {
    let mut all: Vec<(String, i64)> = states.iter().map(|s| (s.to_string(), 0)).collect();
    for (state, n) in counted {
        match all.iter_mut().find(|(s, _)| *s == state) {
            Some(slot) => slot.1 = n,
            None => all.push((state, n)),
        }
    }
    all.push((last.0.to_string(), last.1));
    all
}

pub use crate::clock::now_ms;

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn an_in_memory_sqlite_database_is_refused() {
        let settings = DatabaseSettings::new("sqlite::memory:");
        let error = Store::connect(&settings).await.unwrap_err();
        assert!(
            error.to_string().contains("must name a SQLite file"),
            "{error:#}"
        );
    }

    /// Each backend's claims check a candidate's conversation their own way
    /// (see `claim_statement!`), in every form of the claim (SQLite's inbox
    /// claim is a walk, `inbox_walk`).
    #[test]
    fn claims_check_the_conversation_as_each_backend_plans_best() {
        for lapsed in [true, false] {
            for postgres in [true, false] {
                let inbox = postgres.then(|| inbox::claim_sql(lapsed));
                for sql in inbox
                    .into_iter()
                    .chain([outbox::claim_sql(postgres, lapsed)])
                {
                    let arms = 1 + usize::from(lapsed);
                    let (lookups, antis) = (
                        sql.matches("r.id = (SELECT p.id").count(),
                        sql.matches("AND p.id < r.id").count(),
                    );
                    match postgres {
                        true => assert_eq!((lookups, antis), (arms, 0), "{sql}"),
                        false => assert_eq!((lookups, antis), (0, arms), "{sql}"),
                    }
                    assert_eq!(sql.matches("UNION ALL").count(), arms - 1, "{sql}");
                }
            }
        }
    }
}
