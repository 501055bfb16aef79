//! Counters for `/metrics`, kept and written in the OpenMetrics text format
//! by `prometheus-client` (the Prometheus project's Rust client) rather than
//! by hand: its counters are the same relaxed atomic add on the webhook's
//! path, and it takes care of names, types and label escaping.

use std::sync::atomic::Ordering;

use prometheus_client::encoding::text::{encode_eof, encode_registry};
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::{ConstGauge, Gauge};
use prometheus_client::registry::Registry;

use crate::store::pauses::PagePause;
use crate::store::writer::CommitStats;

/// The tables the retention worker prunes (each shown from the start).
const PRUNED_TABLES: [&str; 4] = ["inbox", "outbox", "psid_lookups", "conversations"];

/// A metric's labels, as name and value pairs.
type Labels = Vec<(&'static str, String)>;

/// The service's counters, registered once; what is read at scrape time
/// (queue depths, the committer's figures, paused Pages) joins them in
/// `render`.
pub struct Metrics {
    pub webhook_requests: Counter,
    pub webhook_rejected: Counter,
    pub webhook_events_stored: Counter,
    pub webhook_events_duplicate: Counter,
    pub inbox_processed: Counter,
    pub inbox_unanswered: Counter,
    pub inbox_retried: Counter,
    pub inbox_dead: Counter,
    /// Events kept as `unrecognised` (unknown kind or shape).
    pub inbox_unrecognised: Counter,
    /// Events of another webhook `object` than `page`, kept unhandled.
    pub inbox_other_object: Counter,
    pub nlu_calls: Counter,
    pub nlu_micros: Counter,
    /// Send API outcomes by `"ok"` or Graph error code.
    send_outcomes: Family<Labels, Counter>,
    /// Rows the retention worker pruned, by table.
    pruned: Family<Labels, Counter>,
    registry: Registry,
}

impl Default for Metrics {
    fn default() -> Metrics {
        let mut metrics = Metrics {
            webhook_requests: Counter::default(),
            webhook_rejected: Counter::default(),
            webhook_events_stored: Counter::default(),
            webhook_events_duplicate: Counter::default(),
            inbox_processed: Counter::default(),
            inbox_unanswered: Counter::default(),
            inbox_retried: Counter::default(),
            inbox_dead: Counter::default(),
            inbox_unrecognised: Counter::default(),
            inbox_other_object: Counter::default(),
            nlu_calls: Counter::default(),
            nlu_micros: Counter::default(),
            send_outcomes: Family::default(),
            pruned: Family::default(),
            registry: Registry::default(),
        };
        let counters = [
            (
                "webhook_requests",
                "Webhook POSTs",
                &metrics.webhook_requests,
            ),
            (
                "webhook_rejected",
                "Webhook POSTs refused (signature, body)",
                &metrics.webhook_rejected,
            ),
            (
                "webhook_events_stored",
                "Webhook events stored",
                &metrics.webhook_events_stored,
            ),
            (
                "webhook_events_duplicate",
                "Webhook events already stored (redeliveries)",
                &metrics.webhook_events_duplicate,
            ),
            (
                "inbox_processed",
                "Inbox events processed",
                &metrics.inbox_processed,
            ),
            (
                "inbox_unanswered",
                "Messages the NLU had no answer for",
                &metrics.inbox_unanswered,
            ),
            (
                "inbox_retried",
                "Inbox events retried after a failure",
                &metrics.inbox_retried,
            ),
            (
                "inbox_dead",
                "Inbox events given up on",
                &metrics.inbox_dead,
            ),
            (
                "inbox_unrecognised",
                "Events kept as unrecognised (unknown kind or shape)",
                &metrics.inbox_unrecognised,
            ),
            (
                "inbox_other_object",
                "Events of another webhook object than page, kept unhandled",
                &metrics.inbox_other_object,
            ),
            ("nlu_calls", "NLU calls", &metrics.nlu_calls),
            (
                "nlu_microseconds",
                "Time spent in NLU calls",
                &metrics.nlu_micros,
            ),
        ];
        let mut registry = Registry::default();
        for (name, help, counter) in counters {
            registry.register(format!("lexbridge_{name}"), help, counter.clone());
        }
        registry.register(
            "lexbridge_send_api",
            "Send API calls by outcome: ok or Meta's error code",
            metrics.send_outcomes.clone(),
        );
        for table in PRUNED_TABLES {
            metrics
                .pruned
                .get_or_create(&vec![("table", table.to_string())])
                .inc_by(0);
        }
        registry.register(
            "lexbridge_retention_pruned",
            "Rows pruned for retention, by table",
            metrics.pruned.clone(),
        );
        metrics.registry = registry;
        metrics
    }
}

impl Metrics {
    pub fn send_outcome(&self, outcome: &str) {
        self.send_outcomes
            .get_or_create(&vec![("outcome", outcome.to_string())])
            .inc();
    }

    /// Counts `n` rows of `table` pruned for retention.
    pub fn pruned(&self, table: &'static str, n: u64) {
        self.pruned
            .get_or_create(&vec![("table", table.to_string())])
            .inc_by(n);
    }

    /// The OpenMetrics text of the counters, the group committer's figures,
    /// the queue depths and the paused Pages given by the caller.
    pub fn render(
        &self,
        commits: &CommitStats,
        depths: &[(&str, Vec<(String, i64)>)],
        pauses: &[PagePause],
    ) -> String {
        let mut now = Registry::default();
        let read = |n: &std::sync::atomic::AtomicU64| n.load(Ordering::Relaxed);
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
        for (queue, rows) in depths {
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
        let mut out = String::new();
        // Writing to a String cannot fail.
        let _ = encode_registry(&mut out, &self.registry)
            .and_then(|()| encode_registry(&mut out, &now))
            .and_then(|()| encode_eof(&mut out));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_depths_and_pauses_are_written_with_escaped_labels() {
        let metrics = Metrics::default();
        metrics.webhook_requests.inc_by(3);
        metrics.send_outcome("ok");
        metrics.send_outcome("ok");
        metrics.send_outcome("613");
        let pauses = [PagePause {
            page_id: "1\"1".into(),
            reason: "policy_block".into(),
            detail: None,
            paused_at: 1,
        }];
        let text = metrics.render(
            &CommitStats::default(),
            &[("inbox", vec![("pending".into(), 4)])],
            &pauses,
        );
        for line in [
            "lexbridge_webhook_requests_total 3\n",
            "lexbridge_send_api_total{outcome=\"ok\"} 2\n",
            "lexbridge_send_api_total{outcome=\"613\"} 1\n",
            "lexbridge_inbox_depth{state=\"pending\"} 4\n",
            "lexbridge_paused_pages 1\n",
            "lexbridge_page_paused{page_id=\"1\\\"1\",reason=\"policy_block\"} 1\n",
        ] {
            assert!(text.contains(line), "{line:?} missing from\n{text}");
        }
        assert!(text.ends_with("# EOF\n"), "{text}");
        assert_eq!(text.matches("# EOF").count(), 1);
    }
}
