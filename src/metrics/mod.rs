//! Counters for `/metrics`, kept and written in the OpenMetrics text format
//! by `prometheus-client` (the Prometheus project's Rust client) rather than
//! by hand: its counters are the same relaxed atomic add on the webhook's
//! path, and it takes care of names, types and label escaping.

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

use crate::store::retention::Prune;

mod scrape;
pub use scrape::{peak_rss_bytes, Scrape};

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
    pub handovers: Counter,
    pub inbox_unknown_page: Counter,
    pub inbox_retried: Counter,
    pub inbox_dead: Counter,
    /// Events kept as `unrecognised` (unknown kind or shape).
    pub inbox_unrecognised: Counter,
    /// Events of another webhook `object` than `page`, kept unhandled.
    pub inbox_other_object: Counter,
    pub nlu_calls: Counter,
    pub nlu_micros: Counter,
    /// Send attempts that failed and will be tried again.
    pub outbox_retried: Counter,
    /// Messages given up on (failed for good).
    pub outbox_failed: Counter,
    /// Time from a webhook POST's arrival to its answer (one observation
    /// per request, accepted or refused).
    pub webhook_ack_seconds: Histogram,
    /// Time of Send API calls (messages), answered or not.
    pub send_api_seconds: Histogram,
    /// Send API outcomes by `"ok"` or Graph error code.
    send_outcomes: Family<Labels, Counter>,
    /// NLU call time by backend (`lex`, `local`).
    nlu_seconds: Family<Labels, Histogram, fn() -> Histogram>,
    /// Links made (new or moved to this account), by how.
    links: Family<Labels, Counter>,
    /// `/api/v1` answers by HTTP status.
    api_requests: Family<Labels, Counter>,
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
            handovers: Counter::default(),
            inbox_unknown_page: Counter::default(),
            inbox_retried: Counter::default(),
            inbox_dead: Counter::default(),
            inbox_unrecognised: Counter::default(),
            inbox_other_object: Counter::default(),
            nlu_calls: Counter::default(),
            nlu_micros: Counter::default(),
            outbox_retried: Counter::default(),
            outbox_failed: Counter::default(),
            webhook_ack_seconds: ack_histogram(),
            send_api_seconds: call_histogram(),
            send_outcomes: Family::default(),
            nlu_seconds: Family::new_with_constructor(call_histogram),
            links: Family::default(),
            api_requests: Family::default(),
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
                "inbox_unknown_page",
                "Events for a Page this deployment does not answer for (kept, not answered)",
                &metrics.inbox_unknown_page,
            ),
            (
                "handovers",
                "Conversations the bot handed over to another app",
                &metrics.handovers,
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
            (
                "outbox_retried",
                "Send attempts that failed and will be tried again",
                &metrics.outbox_retried,
            ),
            (
                "outbox_failed",
                "Outbox messages given up on (failed for good)",
                &metrics.outbox_failed,
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
        registry.register(
            "lexbridge_webhook_ack_seconds",
            "Time from a webhook POST's arrival to its answer",
            metrics.webhook_ack_seconds.clone(),
        );
        registry.register(
            "lexbridge_send_api_seconds",
            "Time of Send API calls",
            metrics.send_api_seconds.clone(),
        );
        registry.register(
            "lexbridge_nlu_seconds",
            "Time of NLU calls by backend",
            metrics.nlu_seconds.clone(),
        );
        registry.register(
            "lexbridge_links",
            "Links made (new, or moved to the signed-in account) by source",
            metrics.links.clone(),
        );
        registry.register(
            "lexbridge_api_requests",
            "Outbound API answers by HTTP status",
            metrics.api_requests.clone(),
        );
        // Every pruned table shown from the start.
        for table in Prune::ALL.map(Prune::table) {
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

/// Webhook answers: 0.25 ms to about 4 s.
fn ack_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.000_25, 2.0, 15))
}

/// Calls to Meta or the NLU: 1 ms to about 16 s.
fn call_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.001, 2.0, 15))
}

impl Metrics {
    /// Times one NLU call of `backend` (`lex`, `local`).
    pub fn nlu_time(&self, backend: &'static str, took: std::time::Duration) {
        self.nlu_seconds
            .get_or_create(&vec![("backend", backend.to_string())])
            .observe(took.as_secs_f64());
    }

    /// Counts a link made from `source` (`ids_for_pages`, `confirmed`, …).
    pub fn link_made(&self, source: &str) {
        self.links
            .get_or_create(&vec![("source", source.to_string())])
            .inc();
    }

    /// Counts one `/api/v1` answer.
    pub fn api_request(&self, status: u16) {
        self.api_requests
            .get_or_create(&vec![("status", status.to_string())])
            .inc();
    }

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
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::pauses::PagePause;
    use crate::store::writer::{CheckpointStats, CommitStats};

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
        metrics.webhook_ack_seconds.observe(0.0004);
        metrics.nlu_time("local", std::time::Duration::from_millis(3));
        metrics.link_made("ids_for_pages");
        metrics.api_request(202);
        metrics.outbox_retried.inc();
        let text = metrics.render(&Scrape {
            commits: &CommitStats::default(),
            checkpoints: Some(&CheckpointStats::default()),
            depths: &[("inbox", vec![("pending".into(), 4)])],
            oldest_ms: &[("inbox", Some(2_500)), ("outbox", None)],
            pauses: &pauses,
            instances: 2,
            peak_rss_bytes: Some(64 << 20),
        });
        for line in [
            "lexbridge_webhook_requests_total 3\n",
            "lexbridge_send_api_total{outcome=\"ok\"} 2\n",
            "lexbridge_send_api_total{outcome=\"613\"} 1\n",
            "lexbridge_inbox_depth{state=\"pending\"} 4\n",
            "lexbridge_paused_pages 1\n",
            "lexbridge_instances 2\n",
            "lexbridge_peak_rss_bytes 67108864\n",
            "lexbridge_page_paused{page_id=\"1\\\"1\",reason=\"policy_block\"} 1\n",
            "lexbridge_webhook_ack_seconds_bucket{le=\"0.0005\"} 1\n",
            "lexbridge_webhook_ack_seconds_bucket{le=\"0.00025\"} 0\n",
            "lexbridge_webhook_ack_seconds_count 1\n",
            "lexbridge_nlu_seconds_count{backend=\"local\"} 1\n",
            "lexbridge_links_total{source=\"ids_for_pages\"} 1\n",
            "lexbridge_api_requests_total{status=\"202\"} 1\n",
            "lexbridge_outbox_retried_total 1\n",
            "lexbridge_outbox_failed_total 0\n",
            "lexbridge_inbox_oldest_open_age_seconds 2.5\n",
            "lexbridge_outbox_oldest_open_age_seconds 0.0\n",
            "lexbridge_sqlite_checkpoints_total 0\n",
            "lexbridge_sqlite_log_flushes_total 0\n",
        ] {
            assert!(text.contains(line), "{line:?} missing from\n{text}");
        }
        assert!(text.ends_with("# EOF\n"), "{text}");
        assert_eq!(text.matches("# EOF").count(), 1);
    }
}
