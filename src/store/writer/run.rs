//! The commit loop: one thread, one connection, one transaction per batch
//! of writes; a batch that fails is redone write by write, so one bad
//! write does not fail its neighbours.

use anyhow::Context;
use tokio::sync::mpsc;

use super::apply::{apply, BatchResult};
use super::checkpoint::{CheckpointStats, CHECKPOINT_BACKSTOP};
use super::feed::{charge, reserve, LapsedLeases, WorkerClaims};
use super::flush::{self, Answer, Answers, Nudge, Outlets};
use super::windows::{Arrivals, Opened, WindowPlan, Windows};
use super::{CommitStats, Feeds, Job, Write, WriteOutput};
use crate::store::statement::Sqlx;
use crate::store::Store;
use std::sync::Arc;

/// Most writes one transaction takes.
const MAX_BATCH: usize = 1024;

pub(super) async fn run(
    store: Store,
    feeds: Feeds,
    holder: String,
    mut rx: mpsc::Receiver<Job>,
    stats: Arc<CommitStats>,
    role: Role,
    checkpoints: Option<Arc<CheckpointStats>>,
) {
    let recorder = Arc::clone(&stats);
    let stats = &*stats;
    let mut batch = Vec::with_capacity(MAX_BATCH);
    // The committer keeps its own connection: no pool round trip per batch.
    let mut held: Option<CommitConnection> = None;
    let mut lapsed = LapsedLeases::new();
    let mut windows = Windows::default();
    let (arrivals, nudge) = match role {
        Role::Main(arrivals) => (arrivals, None),
        Role::Intake(nudge) => (None, Some(nudge)),
    };
    let hand_over = nudge.is_some();
    let outlets = Outlets::new(&feeds, nudge);
    // On SQLite the flusher answers once the log is on disk (see `flush`).
    let answers = match &store {
        Store::Sqlite { writer, .. } => {
            flush::start(writer.connect_options().get_filename(), outlets, recorder)
        }
        Store::Postgres(_) => Answers::Now(outlets),
    };
    while rx.recv_many(&mut batch, MAX_BATCH).await > 0 {
        let jobs = std::mem::take(&mut batch);
        let writes: Vec<&Write> = jobs.iter().map(|j| &*j.write).collect();
        let extra = WorkerClaims::for_writes(&feeds, &writes, &lapsed);
        // The intake's windows go with this batch (should it fail, once
        // more on their own after its writes).
        let arrived = arrivals.as_ref().map(|a| a.take()).unwrap_or_default();
        let plan = WindowPlan {
            known: &windows,
            arrived: &arrived,
            hand_over,
        };
        match apply_held(&store, &mut held, &holder, &writes, extra, plan, stats).await {
            Ok(mut applied) => {
                lapsed.drained(applied.lapsed_drained);
                windows.record(std::mem::take(&mut applied.opened));
                for written in &applied.written {
                    charge(&feeds, written);
                }
                reserve(&feeds.inbox, applied.inbox.len());
                reserve(&feeds.outbox, applied.outbox.len());
                let stored = writes.iter().zip(&applied.written).any(stored_events);
                let jobs = jobs.into_iter().map(|job| job.done);
                answers.send(Answer {
                    jobs: jobs.zip(applied.written.into_iter().map(Ok)).collect(),
                    inbox: applied.inbox,
                    outbox: applied.outbox,
                    stored,
                    windows: applied.handed_over,
                    batch: 0,
                });
                // Answered first: a finishing copy delays the next batch only.
                finish_checkpoint(&checkpoints, &held);
            }
            // One bad write must not fail its neighbours: redo them alone.
            Err(_) if jobs.len() > 1 => {
                // The windows first: no write of this batch is answered
                // before them (see `Outlets::deliver`).
                write_alone(&store, &mut held, &mut windows, &arrived, stats).await;
                for job in jobs {
                    // Each still claims what it frees for the workers.
                    let extra = WorkerClaims::for_writes(&feeds, &[&*job.write], &lapsed);
                    let mut applied = apply_held(
                        &store,
                        &mut held,
                        &holder,
                        &[&*job.write],
                        extra,
                        plan_alone(&windows, hand_over),
                        stats,
                    )
                    .await;
                    if applied.is_err() && (extra.inbox.is_some() || extra.outbox.is_some()) {
                        // The claim may be what failed.
                        let alone = WorkerClaims {
                            inbox: None,
                            outbox: None,
                            ..extra
                        };
                        applied = apply_held(
                            &store,
                            &mut held,
                            &holder,
                            &[&*job.write],
                            alone,
                            plan_alone(&windows, hand_over),
                            stats,
                        )
                        .await;
                    }
                    let mut answer = Answer::default();
                    let result = applied.and_then(|mut applied| {
                        lapsed.drained(applied.lapsed_drained);
                        windows.record(std::mem::take(&mut applied.opened));
                        let written = applied.written.pop().context("no result")?;
                        answer.stored = stored_events((&&*job.write, &written));
                        answer.windows = applied.handed_over;
                        charge(&feeds, &written);
                        reserve(&feeds.inbox, applied.inbox.len());
                        reserve(&feeds.outbox, applied.outbox.len());
                        answer.inbox = applied.inbox;
                        answer.outbox = applied.outbox;
                        Ok(written)
                    });
                    answer.jobs.push((job.done, result));
                    answers.send(answer);
                }
                finish_checkpoint(&checkpoints, &held);
            }
            // A write alone: its caller gets the error itself (see
            // `refused`).
            Err(e) => {
                write_alone(&store, &mut held, &mut windows, &arrived, stats).await;
                if let Some(job) = jobs.into_iter().next() {
                    let _ = job.done.send(Err(e));
                }
            }
        }
    }
    // Hand the connection back while this runtime still runs, so closing
    // the pool does not wait for it.
    if let Some(CommitConnection::Postgres(conn)) = held {
        let _ = conn.close().await;
    }
}

/// Which committer a loop is (see `Writer::start`).
pub(super) enum Role {
    /// The main one; on Postgres, with the windows the intake hands over.
    Main(Option<Arc<Arrivals>>),
    /// Postgres's intake, which stores new events and tells the main one.
    Intake(Nudge),
}

/// Writes the windows the intake handed over to a batch that failed, on
/// their own; should that fail too, each event's processing writes its
/// window.
async fn write_alone(
    store: &Store,
    held: &mut Option<CommitConnection>,
    windows: &mut Windows,
    arrived: &[Opened],
    stats: &CommitStats,
) {
    if arrived.is_empty() {
        return;
    }
    let plan = WindowPlan {
        arrived,
        ..WindowPlan::writing(windows)
    };
    let claims = WorkerClaims::default();
    if let Ok(mut applied) = apply_held(store, held, "", &[], claims, plan, stats).await {
        windows.record(std::mem::take(&mut applied.opened));
    }
}

/// The windows of a write redone alone: none handed over to it.
fn plan_alone(windows: &Windows, hand_over: bool) -> WindowPlan<'_> {
    WindowPlan {
        hand_over,
        ..WindowPlan::writing(windows)
    }
}

/// On SQLite, copies what the checkpointer left when it asked (see
/// `checkpoint`).
fn finish_checkpoint(checkpoints: &Option<Arc<CheckpointStats>>, held: &Option<CommitConnection>) {
    if let (Some(checkpoints), Some(CommitConnection::Sqlite(conn))) = (checkpoints, held) {
        checkpoints.finish(conn);
    }
}

/// Whether a write stored new webhook events (rows the inbox worker has
/// not seen).
fn stored_events((write, written): (&&Write, &WriteOutput)) -> bool {
    matches!(write, Write::InsertInbox(_)) && matches!(written, WriteOutput::Rows(n) if *n > 0)
}

/// The committer's connection: SQLite's its own, run on this thread.
enum CommitConnection {
    Sqlite(Box<rusqlite::Connection>),
    Postgres(sqlx::pool::PoolConnection<sqlx::Postgres>),
}

/// `apply` on the held connection, (re)opening it as needed; a failed batch
/// gives the connection up in case it is the connection that broke, unless
/// SQLite rolled it back cleanly.
async fn apply_held(
    store: &Store,
    held: &mut Option<CommitConnection>,
    holder: &str,
    writes: &[&Write],
    extra: WorkerClaims,
    windows: WindowPlan<'_>,
    stats: &CommitStats,
) -> anyhow::Result<BatchResult> {
    let started = std::time::Instant::now();
    let mut conn = match held.take() {
        Some(conn) => conn,
        None => match store {
            Store::Sqlite { writer, .. } => {
                CommitConnection::Sqlite(Box::new(open_sqlite(writer)?))
            }
            Store::Postgres(pool) => CommitConnection::Postgres(pool.acquire().await?),
        },
    };
    let mut intact = false;
    let result = match &mut conn {
        CommitConnection::Sqlite(conn) => {
            conn.execute_batch("BEGIN IMMEDIATE")?;
            let applied = apply(&mut **conn, false, holder, writes, extra, windows).await;
            let outcome = applied.and_then(|applied| {
                conn.execute_batch("COMMIT")?;
                Ok(applied)
            });
            if outcome.is_err() {
                // A clean rollback shows the connection still works (a
                // statement failed, not the connection): keep it and its
                // prepared statements.
                intact = conn.execute_batch("ROLLBACK").is_ok();
            }
            outcome
        }
        CommitConnection::Postgres(conn) => {
            let mut tx = sqlx::Connection::begin(&mut **conn).await?;
            let applied = apply(&mut Sqlx(&mut *tx), true, holder, writes, extra, windows).await?;
            tx.commit().await?;
            Ok(applied)
        }
    }
    .context("group commit");
    if result.is_ok() {
        stats.record(started.elapsed());
    }
    if result.is_ok() || intact {
        *held = Some(conn);
    }
    result
}

/// The committer's SQLite connection, on the file of the pools. It commits
/// without flushing (`synchronous = NORMAL`): the flusher flushes the log
/// before any write is answered (see `flush`), so every acknowledged write
/// is on disk while the next batch is being applied.
fn open_sqlite(pool: &sqlx::SqlitePool) -> anyhow::Result<rusqlite::Connection> {
    let options = pool.connect_options();
    // The file exists (`Store::connect` made sure): never create another.
    let flags =
        rusqlite::OpenFlags::SQLITE_OPEN_READ_WRITE | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = rusqlite::Connection::open_with_flags(options.get_filename(), flags)
        .context("opening the SQLite database for the group committer")?;
    // Checkpoints run on a thread of their own (`checkpoint`). A statement
    // that may change several rows keeps the pages it changes in a statement
    // journal, to undo itself alone on an error; a batch changes more than
    // SQLite keeps in memory by default (64 KiB), and written to a temporary
    // file that journal cost the committer an eighth of its time and a
    // quarter of its disk writes (`temp_store = MEMORY` keeps it in memory).
    conn.execute_batch(&format!(
        "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON;
         PRAGMA wal_autocheckpoint = {CHECKPOINT_BACKSTOP}; PRAGMA temp_store = MEMORY;"
    ))?;
    conn.busy_timeout(std::time::Duration::from_secs(10))?;
    conn.set_prepared_statement_cache_capacity(256);
    Ok(conn)
}

#[cfg(test)]
mod tests {
    use super::open_sqlite;
    use sqlx::sqlite::{SqliteConnectOptions, SqlitePoolOptions};

    /// The committer's connection leaves flushing to the flusher (which
    /// flushes before answering, see `flush`) and keeps statement journals
    /// in memory (a batch's would otherwise spill to a file).
    #[tokio::test]
    async fn the_committers_connection_leaves_flushes_to_the_flusher_and_keeps_statement_journals_in_memory(
    ) {
        let dir = tempfile::tempdir().unwrap();
        let options = SqliteConnectOptions::new()
            .filename(dir.path().join("c.db"))
            .create_if_missing(true);
        let pool = SqlitePoolOptions::new()
            .connect_with(options)
            .await
            .unwrap();
        let conn = open_sqlite(&pool).unwrap();
        let pragma = |name: &str| -> String {
            conn.query_row(&format!("PRAGMA {name}"), [], |r| {
                r.get::<_, rusqlite::types::Value>(0)
            })
            .map(|v| format!("{v:?}"))
            .unwrap()
        };
        assert_eq!(pragma("journal_mode"), "Text(\"wal\")");
        assert_eq!(pragma("synchronous"), "Integer(1)", "NORMAL");
        assert_eq!(pragma("temp_store"), "Integer(2)", "MEMORY");
    }
}
