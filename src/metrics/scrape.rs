//! What `/metrics` reads at scrape time (the committer's figures, queue
//! depths, the age of each queue's oldest open row, paused Pages), written
//! after the registered counters.

use std::sync::atomic::{AtomicU64, Ordering};

use prometheus_client::encoding::text::{encode_eof, encode_registry};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::{ConstGauge, Gauge};
use prometheus_client::registry::Registry;

use super::{Labels, Metrics};
use crate::store::pauses::PagePause;
use crate::store::writer::{CheckpointStats, CommitStats};

/// One scrape's figures read from the database and the committer.
pub struct Scrape<'a> {
    pub commits: &'a CommitStats,
    /// SQLite's checkpoints (`None` on Postgres).
    pub checkpoints: Option<&'a CheckpointStats>,
    /// Open rows by state, per queue (`inbox`, `outbox`).
    pub depths: &'a [(&'a str, Vec<(String, i64)>)],
    /// Per queue, the age in milliseconds of its oldest open row (`None`
    /// when the queue is empty: the age is then 0).
    pub oldest_ms: &'a [(&'a str, Option<i64>)],
    pub pauses: &'a [PagePause],
    /// The instances the Pages' send rates are shared among.
    pub instances: u32,
    /// The process's peak resident memory (`None` where the system does
    /// not tell).
    pub peak_rss_bytes: Option<u64>,
}

/// A process's peak resident memory (`process`: `self` or a pid), from
/// `/proc/{process}/status` (Linux).
pub fn peak_rss_bytes(process: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{process}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

impl Metrics {
    /// The OpenMetrics text of the counters and of `scrape`.
    pub fn render(&self, scrape: &Scrape<'_>) -> String {
        let mut now = Registry::default();
        let read = |n: &AtomicU64| n.load(Ordering::Relaxed);
        let commits = scrape.commits;
        now.register(
            "lexbridge_commits",
            "Transactions the group committer committed",
            ConstCounter::new(read(&commits.commits)),
        );
        now.register(
            "lexbridge_commit_microseconds",
            "Time the group committer's transactions took",
            ConstCounter::new(read(&commits.micros)),
        );
        now.register(
            "lexbridge_slowest_commit_microseconds",
            "The slowest committed transaction since start",
            ConstGauge::new(i64::try_from(read(&commits.slowest_micros)).unwrap_or(i64::MAX)),
        );
        if let Some(checkpoints) = scrape.checkpoints {
            now.register(
                "lexbridge_sqlite_checkpoints",
                "Copies of SQLite's log into the database file",
                ConstCounter::new(read(&checkpoints.checkpoints)),
            );
            now.register(
                "lexbridge_sqlite_log_flushes",
                "Flushes of SQLite's log after which committed writes were answered",
                ConstCounter::new(read(&commits.log_flushes)),
            );
            now.register(
                "lexbridge_sqlite_checkpointed_pages",
                "Log pages copied into the database file",
                ConstCounter::new(read(&checkpoints.pages)),
            );
        }
        for (queue, rows) in scrape.depths {
            let family = Family::<Labels, Gauge>::default();
            for (state, n) in rows {
                family
                    .get_or_create(&vec![("state", state.clone())])
                    .set(*n);
            }
            now.register(
                format!("lexbridge_{queue}_depth"),
                format!("Open {queue} rows by state"),
                family,
            );
        }
        for (queue, age) in scrape.oldest_ms {
            let seconds = age.map_or(0.0, |ms| ms.max(0) as f64 / 1000.0);
            now.register(
                format!("lexbridge_{queue}_oldest_open_age_seconds"),
                format!("Age of the oldest open {queue} row (0 when none is open)"),
                ConstGauge::new(seconds),
            );
        }
        let pauses = scrape.pauses;
        let mut pages: Vec<&str> = pauses.iter().map(|p| p.page_id.as_str()).collect();
        pages.dedup();
        now.register(
            "lexbridge_paused_pages",
            "Pages whose messages are held back",
            ConstGauge::new(pages.len() as i64),
        );
        let paused = Family::<Labels, Gauge>::default();
        for p in pauses {
            let labels = vec![("page_id", p.page_id.clone()), ("reason", p.reason.clone())];
            paused.get_or_create(&labels).set(1);
        }
        now.register("lexbridge_page_paused", "A Page's pause reasons", paused);
        now.register(
            "lexbridge_instances",
            "Instances sharing the database, and the Pages' send rates",
            ConstGauge::new(i64::from(scrape.instances)),
        );
        if let Some(bytes) = scrape.peak_rss_bytes {
            now.register(
                "lexbridge_peak_rss_bytes",
                "The process's peak resident memory",
                ConstGauge::new(i64::try_from(bytes).unwrap_or(i64::MAX)),
            );
        }
        let mut out = String::new();
        // Writing to a String cannot fail.
        let _ = encode_registry(&mut out, &self.registry)
            .and_then(|()| encode_registry(&mut out, &now))
            .and_then(|()| encode_eof(&mut out));
        out
    }
}
