//! SQLite's checkpoints, off the committer's thread.
//!
//! In WAL mode every commit appends the pages it changed to the log, and a
//! checkpoint copies them back into the database file. SQLite's own
//! checkpoint runs inside the commit that takes the log past 1,000 pages,
//! so the committer paid it some thirty times a second under load, and a
//! page changed by every batch (a conversation, an index's busy leaf) was
//! copied back every time. Here a thread of its own copies the log every
//! `interval` while commits come in; once a copy leaves the log at
//! `finish_frames` or more, the committer copies what was committed in the
//! meantime (little) between two batches, so the next commit starts the log
//! from its beginning again and the file stays bounded. The connection's
//! own checkpoint stays on as a backstop at `CHECKPOINT_BACKSTOP` pages (a
//! stalled disk, a checkpointer that could not open the file).
//!
//! Measured with the webhook recipe under `wrk` (README, Benchmarks):
//! SQLite's checkpoint at 1,000 pages wrote some 24 KB per webhook event;
//! here, 19.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use super::CommitStats;

/// When the checkpoints run.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Cadence {
    /// How often the checkpointer copies the log while commits come in.
    pub interval: Duration,
    /// A log this long after a copy is finished by the committer.
    pub finish_frames: i64,
}

/// SQLite's own checkpoint, on every connection that writes: a backstop.
/// Twice the pages at which the committer finishes, with room for a
/// quarter second's inflow on a fast day (some 30,000 pages) between the
/// checkpointer's looks.
pub const CHECKPOINT_BACKSTOP: i64 = 80_000;

impl Default for Cadence {
    fn default() -> Self {
        // At 10,000 events a second the log grows by some 36,000 pages a
        // second; a quarter second's worth is copied at once. Each finish
        // holds the commits for a flush of the database file (some 10 ms
        // however little it copies), so the log is let grow to 20,000
        // pages (80 MB) first: under `wrk` (README, Benchmarks), five
        // alternate pairs against 2,000 gave a lower p99 ack in each
        // (28.6–38.5 against 35.6–47.6 ms) and more events/s.
        Cadence {
            interval: Duration::from_millis(250),
            finish_frames: 20_000,
        }
    }
}

/// What the committer and the checkpointer share; also read by `/metrics`.
#[derive(Debug, Default)]
pub struct CheckpointStats {
    /// The checkpointer asks the committer to finish a copy.
    finish_requested: AtomicBool,
    /// Copies completed, by the checkpointer or the committer.
    pub checkpoints: AtomicU64,
    /// Log pages copied back into the database file.
    pub pages: AtomicU64,
    /// Pages of the current log already counted in `pages` (a copy
    /// reports every copied page of the log, not only its own); 0 once a
    /// finished copy lets the next commit start the log again.
    counted: std::sync::Mutex<i64>,
}

impl CheckpointStats {
    /// Between batches: copies what the checkpointer left, when it asked,
    /// so the next commit starts the log again. A copy that could not take
    /// everything (the checkpointer busy at the same time) is retried after
    /// the next batch.
    pub(super) fn finish(&self, conn: &rusqlite::Connection) {
        if !self.finish_requested.load(Ordering::Relaxed) {
            return;
        }
        if let Ok(Some((log, copied))) = checkpoint(conn) {
            self.count(copied);
            if log == copied {
                self.finish_requested.store(false, Ordering::Relaxed);
                // The next commit starts the log again.
                *self.counted.lock().unwrap_or_else(|e| e.into_inner()) = 0;
            }
        }
    }

    /// A copy that left `copied` pages of the log in the database file:
    /// counts the pages no earlier copy of this log counted.
    fn count(&self, copied: i64) {
        self.checkpoints.fetch_add(1, Ordering::Relaxed);
        let mut counted = self.counted.lock().unwrap_or_else(|e| e.into_inner());
        // Fewer than counted: the log started again unseen (SQLite's
        // backstop copied it inside a commit).
        let new = if copied >= *counted {
            copied - *counted
        } else {
            copied
        };
        *counted = copied;
        self.pages
            .fetch_add(u64::try_from(new).unwrap_or(0), Ordering::Relaxed);
    }
}

/// Starts the checkpointer thread for the database file at `path`; it
/// copies while the committer's `commits` count. It stops when the
/// committer does (when `stats` has no other owner).
pub(super) fn start(
    path: PathBuf,
    cadence: Cadence,
    stats: Arc<CheckpointStats>,
    commits: Arc<CommitStats>,
) {
    let spawned = std::thread::Builder::new()
        .name("lexbridge-ckpt".into())
        .spawn(move || run(&path, cadence, &stats, &commits.commits));
    if let Err(e) = spawned {
        tracing::error!(
            error = %e,
            "the SQLite checkpointer cannot start; the committer checkpoints at its backstop only"
        );
    }
}

fn run(
    path: &std::path::Path,
    cadence: Cadence,
    stats: &Arc<CheckpointStats>,
    commits: &AtomicU64,
) {
    let mut conn: Option<rusqlite::Connection> = None;
    let mut seen = commits.load(Ordering::Relaxed);
    let mut warned = false;
    loop {
        std::thread::sleep(cadence.interval);
        if Arc::strong_count(stats) == 1 {
            return;
        }
        let now = commits.load(Ordering::Relaxed);
        if now == seen {
            continue;
        }
        seen = now;
        if conn.is_none() {
            match open(path) {
                Ok(opened) => conn = Some(opened),
                Err(e) if !warned => {
                    warned = true;
                    tracing::warn!(error = %e, "the SQLite checkpointer cannot open the database");
                    continue;
                }
                Err(e) => {
                    tracing::debug!(error = %e, "the SQLite checkpointer cannot open the database");
                    continue;
                }
            }
        }
        let Some(c) = &conn else { continue };
        match checkpoint(c) {
            Ok(Some((log, copied))) => {
                stats.count(copied);
                if log >= cadence.finish_frames && catch_up(c, stats, log, copied) {
                    stats.finish_requested.store(true, Ordering::Relaxed);
                }
            }
            // The committer was copying (its finishing copy or backstop).
            Ok(None) => {}
            Err(e) => {
                tracing::debug!(error = %e, "SQLite checkpoint failed");
                conn = None;
            }
        }
    }
}

/// Copies again what was committed during the copy before (`log` pages
/// long, `copied` of them copied), up to `CATCH_UP_COPIES` times, until a
/// copy finds at most `CATCH_UP_LEFT` new pages. The committer's finishing
/// copy holds every commit (and so every acknowledgement) while it copies
/// and flushes the database file: measured under `wrk` (`strace -T` of its
/// `fsync`s), 11 ms at the median and 22 ms at worst when it took what a
/// quarter second's copy had left behind, where the checkpointer's own
/// flushes of a small copy took about 1 ms. Each copy here takes only the
/// pages committed during the one before, so the committer finds few.
/// Whether the committer should still finish (not if the log started
/// again meanwhile).
fn catch_up(
    conn: &rusqlite::Connection,
    stats: &CheckpointStats,
    mut log: i64,
    mut copied: i64,
) -> bool {
    for _ in 0..CATCH_UP_COPIES {
        let Ok(Some((now_log, now_copied))) = checkpoint(conn) else {
            return true;
        };
        stats.count(now_copied);
        if now_log < log || now_copied < copied {
            // The log started again meanwhile (the committer's backstop):
            // nothing to finish.
            return false;
        }
        let came = now_log - log;
        (log, copied) = (now_log, now_copied);
        // Little came in, or a reader held this copy back.
        if came <= CATCH_UP_LEFT || copied < log {
            break;
        }
    }
    true
}

/// Copies at most after the cadence's copy, before the committer finishes.
const CATCH_UP_COPIES: usize = 3;
/// New pages after which another copy is not worth making.
const CATCH_UP_LEFT: i64 = 64;

fn open(path: &std::path::Path) -> rusqlite::Result<rusqlite::Connection> {
    let flags =
        rusqlite::OpenFlags::SQLITE_OPEN_READ_WRITE | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = rusqlite::Connection::open_with_flags(path, flags)?;
    // Copies flushed as the committer's commits are; it never checkpoints
    // on its own commits (it makes none).
    conn.execute_batch("PRAGMA synchronous = FULL; PRAGMA wal_autocheckpoint = 0;")?;
    conn.busy_timeout(Duration::from_millis(100))?;
    Ok(conn)
}

/// A passive checkpoint (it never waits for the writer); the log's length
/// and how much of it is now in the database file, in pages, or `None`
/// when another connection was copying (SQLite then answers busy, -1, -1).
fn checkpoint(conn: &rusqlite::Connection) -> rusqlite::Result<Option<(i64, i64)>> {
    let (busy, log, copied) = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |row| {
        Ok((
            row.get::<_, i64>(0)?,
            row.get::<_, i64>(1)?,
            row.get::<_, i64>(2)?,
        ))
    })?;
    Ok((busy == 0 && log >= 0).then_some((log, copied)))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A committer's connection on a new database, checkpointed at
    /// `interval` and asked to finish a copy at `finish_frames`; its
    /// backstop is far above what a test writes (only the copies keep the
    /// log short).
    fn committer(
        interval: Duration,
        finish_frames: i64,
    ) -> (tempfile::TempDir, PathBuf, Cadence, rusqlite::Connection) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.db");
        let cadence = Cadence {
            interval,
            finish_frames,
        };
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.execute_batch(&format!(
            "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL;
             PRAGMA wal_autocheckpoint = {CHECKPOINT_BACKSTOP};
             CREATE TABLE t (id INTEGER PRIMARY KEY, k TEXT, v TEXT);
             CREATE INDEX t_k ON t (k);"
        ))
        .unwrap();
        (dir, path, cadence, conn)
    }

    /// Commits `batches` transactions of scattered rows, as the committer
    /// would, finishing the checkpointer's copies between them when told
    /// to; the largest log seen, in bytes.
    fn write(
        conn: &rusqlite::Connection,
        stats: &CheckpointStats,
        commits: &CommitStats,
        batches: usize,
    ) -> u64 {
        let wal = format!("{}-wal", conn.path().unwrap());
        let mut largest = 0;
        for b in 0..batches {
            conn.execute_batch("BEGIN IMMEDIATE").unwrap();
            for i in 0..20 {
                conn.execute(
                    "INSERT INTO t (k, v) VALUES (?1, ?2)",
                    (
                        format!("{:08}", (b * 7919 + i * 104_729) % 1_000_003),
                        "x".repeat(200),
                    ),
                )
                .unwrap();
            }
            conn.execute_batch("COMMIT").unwrap();
            commits.record(Duration::ZERO);
            stats.finish(conn);
            largest = largest.max(std::fs::metadata(&wal).map(|m| m.len()).unwrap_or(0));
            std::thread::sleep(Duration::from_micros(300));
        }
        largest
    }

    #[test]
    fn the_log_is_copied_off_the_committer_and_starts_again_once_finished() {
        let (_dir, path, cadence, conn) = committer(Duration::from_millis(20), 50);
        let stats = Arc::new(CheckpointStats::default());
        let commits = Arc::new(CommitStats::default());
        start(
            path.clone(),
            cadence,
            Arc::clone(&stats),
            Arc::clone(&commits),
        );
        let largest = write(&conn, &stats, &commits, 3_000);
        assert!(stats.checkpoints.load(Ordering::Relaxed) > 0);
        // Some 60,000 rows with a scattered index: unchecked, the log would
        // hold some 50 MB; restarted, it stays within a few copies (2.6–4.2
        // MB seen), with room for a checkpointer delayed on a busy machine.
        assert!(largest < 20 << 20, "the log grew to {largest} bytes");
        let rows: i64 = conn
            .query_row("SELECT COUNT(*) FROM t", [], |r| r.get(0))
            .unwrap();
        assert_eq!(rows, 60_000);
    }

    /// The log's length in pages, read off the shared index's header
    /// (`mxFrame`, native order) without copying anything.
    fn log_pages(path: &std::path::Path) -> i64 {
        let shm = std::fs::read(format!("{}-shm", path.display())).unwrap();
        i64::from(u32::from_ne_bytes(shm[16..20].try_into().unwrap()))
    }

    /// A reader of the log as it is now, in a read transaction: it stands
    /// for a copy in progress, which takes only what was there when it
    /// began and keeps the next commits from starting the log again.
    fn held_reader(path: &std::path::Path) -> rusqlite::Connection {
        let reader = open(path).unwrap();
        reader.execute_batch("BEGIN").unwrap();
        let _: i64 = reader
            .query_row("SELECT COUNT(*) FROM t", [], |r| r.get(0))
            .unwrap();
        reader
    }

    /// Pages of the log already in the database file (`nBackfill` of the
    /// shared index's checkpoint information, native order).
    fn backfilled_pages(path: &std::path::Path) -> i64 {
        let shm = std::fs::read(format!("{}-shm", path.display())).unwrap();
        i64::from(u32::from_ne_bytes(shm[96..100].try_into().unwrap()))
    }

    #[test]
    fn the_checkpointer_copies_what_came_in_during_its_copy_before_the_committer_finishes() {
        let (_dir, path, _, conn) = committer(Duration::from_secs(3600), 1);
        let (stats, commits) = (CheckpointStats::default(), CommitStats::default());
        write(&conn, &stats, &commits, 100);
        // Keeps the next commits from starting the log again.
        let reader = held_reader(&path);
        let checkpointer = open(&path).unwrap();
        let (log, copied) = checkpoint(&checkpointer).unwrap().unwrap();
        assert_eq!(log, copied);
        stats.count(copied);
        // Committed while that copy ran.
        write(&conn, &stats, &commits, 30);
        reader.execute_batch("COMMIT").unwrap();
        let came = log_pages(&path) - log;
        assert!(came > CATCH_UP_LEFT, "{came} pages came in");
        assert!(catch_up(&checkpointer, &stats, log, copied), "to finish");
        assert_eq!(backfilled_pages(&path), log_pages(&path), "nothing left");
        // Counted once each: the first copy's pages, then those that came.
        assert_eq!(
            stats.pages.load(Ordering::Relaxed),
            u64::try_from(log + came).unwrap()
        );
        // The committer's finish counts only what is left (nothing), and
        // a copy after the log starts again counts from its beginning.
        stats.finish_requested.store(true, Ordering::Relaxed);
        stats.finish(&conn);
        assert_eq!(
            stats.pages.load(Ordering::Relaxed),
            u64::try_from(log + came).unwrap()
        );
        write(&conn, &stats, &commits, 1);
        let (_, copied) = checkpoint(&checkpointer).unwrap().unwrap();
        stats.count(copied);
        assert_eq!(
            stats.pages.load(Ordering::Relaxed),
            u64::try_from(log + came + copied).unwrap()
        );
    }

    #[test]
    fn the_committers_finishing_copy_lets_the_next_commit_start_the_log_again() {
        let (_dir, path, _, conn) = committer(Duration::from_secs(3600), 1);
        let (stats, commits) = (CheckpointStats::default(), CommitStats::default());
        write(&conn, &stats, &commits, 100);
        // The committer writes on while the checkpointer copies.
        let reader = held_reader(&path);
        write(&conn, &stats, &commits, 10);
        let (before, copied) = checkpoint(&open(&path).unwrap()).unwrap().unwrap();
        reader.execute_batch("COMMIT").unwrap();
        assert!(copied < before, "{copied} of {before} pages copied");
        // Not asked to: the committer leaves the log alone, and it only grows.
        stats.finish(&conn);
        write(&conn, &stats, &commits, 1);
        assert!(log_pages(&path) > before);
        // Asked to: it copies the rest, and the next commit starts over.
        stats.finish_requested.store(true, Ordering::Relaxed);
        stats.finish(&conn);
        assert!(!stats.finish_requested.load(Ordering::Relaxed));
        write(&conn, &stats, &commits, 1);
        let after = log_pages(&path);
        assert!(
            after < before / 10,
            "{after} pages after a restart, {before} before"
        );
    }
}
