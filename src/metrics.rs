//! Counters for `/metrics` (Prometheus text format).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use crate::store::pauses::PagePause;
use crate::store::writer::CommitStats;

#[derive(Default)]
pub struct Metrics {
    pub webhook_requests: AtomicU64,
    pub webhook_rejected: AtomicU64,
    pub webhook_events_stored: AtomicU64,
    pub webhook_events_duplicate: AtomicU64,
    pub inbox_processed: AtomicU64,
    pub inbox_unanswered: AtomicU64,
    pub inbox_retried: AtomicU64,
    pub inbox_dead: AtomicU64,
    /// Events kept as `unrecognised` (unknown kind or shape).
    pub inbox_unrecognised: AtomicU64,
    /// Events of another webhook `object` than `page`, kept unhandled.
    pub inbox_other_object: AtomicU64,
    pub nlu_calls: AtomicU64,
    pub nlu_micros: AtomicU64,
    /// Send API outcomes by `"ok"` or Graph error code.
    send_outcomes: Mutex<BTreeMap<String, u64>>,
    /// Rows the retention worker pruned, by table.
    pruned: Mutex<BTreeMap<&'static str, u64>>,
}

impl Metrics {
    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    pub fn send_outcome(&self, outcome: &str) {
        let mut map = self.send_outcomes.lock().unwrap_or_else(|p| p.into_inner());
        *map.entry(outcome.to_string()).or_default() += 1;
    }

    /// Counts `n` rows of `table` pruned for retention.
    pub fn pruned(&self, table: &'static str, n: u64) {
        let mut map = self.pruned.lock().unwrap_or_else(|p| p.into_inner());
        *map.entry(table).or_default() += n;
    }

    /// Renders counters plus the group committer's figures and the queue
    /// depths given by the caller.
    pub fn render(&self, commits: &CommitStats, depths: &[(&str, Vec<(String, i64)>)]) -> String {
        let mut out = String::new();
        let counters = [
            ("lexbridge_webhook_requests_total", &self.webhook_requests),
            ("lexbridge_webhook_rejected_total", &self.webhook_rejected),
            (
                "lexbridge_webhook_events_stored_total",
                &self.webhook_events_stored,
            ),
            (
                "lexbridge_webhook_events_duplicate_total",
                &self.webhook_events_duplicate,
            ),
            ("lexbridge_inbox_processed_total", &self.inbox_processed),
            ("lexbridge_inbox_unanswered_total", &self.inbox_unanswered),
            ("lexbridge_inbox_retried_total", &self.inbox_retried),
            ("lexbridge_inbox_dead_total", &self.inbox_dead),
            (
                "lexbridge_inbox_unrecognised_total",
                &self.inbox_unrecognised,
            ),
            (
                "lexbridge_inbox_other_object_total",
                &self.inbox_other_object,
            ),
            ("lexbridge_nlu_calls_total", &self.nlu_calls),
            ("lexbridge_nlu_microseconds_total", &self.nlu_micros),
            ("lexbridge_commits_total", &commits.commits),
            ("lexbridge_commit_microseconds_total", &commits.micros),
        ];
        for (name, value) in counters {
            let _ = writeln!(
                out,
                "# TYPE {name} counter\n{name} {}",
                value.load(Ordering::Relaxed)
            );
        }
        let _ = writeln!(
            out,
            "# TYPE lexbridge_slowest_commit_microseconds gauge\nlexbridge_slowest_commit_microseconds {}",
            commits.slowest_micros.load(Ordering::Relaxed)
        );
        let _ = writeln!(out, "# TYPE lexbridge_send_api_total counter");
        let outcomes = self.send_outcomes.lock().unwrap_or_else(|p| p.into_inner());
        for (outcome, n) in outcomes.iter() {
            let _ = writeln!(out, "lexbridge_send_api_total{{outcome=\"{outcome}\"}} {n}");
        }
        let _ = writeln!(out, "# TYPE lexbridge_retention_pruned_total counter");
        let pruned = self.pruned.lock().unwrap_or_else(|p| p.into_inner());
        for table in ["inbox", "outbox", "psid_lookups", "conversations"] {
            let n = pruned.get(table).copied().unwrap_or(0);
            let _ = writeln!(
                out,
                "lexbridge_retention_pruned_total{{table=\"{table}\"}} {n}"
            );
        }
        for (queue, rows) in depths {
            let _ = writeln!(out, "# TYPE lexbridge_{queue}_depth gauge");
            for (state, n) in rows {
                let _ = writeln!(out, "lexbridge_{queue}_depth{{state=\"{state}\"}} {n}");
            }
        }
        out
    }
}

/// Paused Pages for `/metrics`: how many, and each Page's reasons.
pub fn render_pauses(pauses: &[PagePause]) -> String {
    let mut out = String::new();
    let mut pages: Vec<&str> = pauses.iter().map(|p| p.page_id.as_str()).collect();
    pages.dedup();
    let _ = writeln!(
        out,
        "# TYPE lexbridge_paused_pages gauge\nlexbridge_paused_pages {}",
        pages.len()
    );
    let _ = writeln!(out, "# TYPE lexbridge_page_paused gauge");
    for p in pauses {
        let _ = writeln!(
            out,
            "lexbridge_page_paused{{page_id=\"{}\",reason=\"{}\"}} 1",
            label(&p.page_id),
            label(&p.reason)
        );
    }
    out
}

/// A Prometheus label value, escaped.
fn label(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}
