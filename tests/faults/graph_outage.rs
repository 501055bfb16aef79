//! The Graph API failing under load.

use serde_json::json;
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use wiremock::matchers::{method, path_regex};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::support::*;

/// The Graph stand-in of an outage: until `until`, half the Send API calls
/// fail with a 500 and the other half answer too late for the client
/// (Meta may still deliver those); afterwards every call is answered.
struct Outage {
    until: std::time::Instant,
    calls: AtomicUsize,
    /// Answers each person's message was delivered in, as Meta counts.
    delivered: Arc<Mutex<HashMap<String, usize>>>,
    /// People one of whose sends timed out (and may have been delivered).
    timed_out: Arc<Mutex<HashSet<String>>>,
}

impl wiremock::Respond for Outage {
    fn respond(&self, request: &wiremock::Request) -> ResponseTemplate {
        let (calls, batch) = send_calls(request);
        let answered: Vec<String> = calls
            .iter()
            .filter(|c| c.get("message").is_some())
            .map(|c| {
                c["recipient"]["id"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string()
            })
            .collect();
        let ok = sent(&calls, batch);
        if std::time::Instant::now() < self.until {
            if self.calls.fetch_add(1, Ordering::Relaxed) % 2 == 0 {
                return ResponseTemplate::new(500).set_body_json(json!({"error": {
                    "message": "An unexpected error has occurred. Please retry your request later.",
                    "type": "OAuthException", "code": 2, "is_transient": true}}));
            }
            for psid in &answered {
                self.timed_out.lock().unwrap().insert(psid.clone());
                *self
                    .delivered
                    .lock()
                    .unwrap()
                    .entry(psid.clone())
                    .or_default() += 1;
            }
            return ok.set_delay(Duration::from_secs(3));
        }
        for psid in answered {
            *self.delivered.lock().unwrap().entry(psid).or_default() += 1;
        }
        ok
    }
}

/// The Graph API failing (500s and timeouts) for `FAULT_OUTAGE_SECONDS`
/// (default 5; the README gives a 2-minute run) while events arrive: every
/// acknowledged event is answered once the outage ends, and only a person
/// one of whose sends timed out (Meta may have delivered it) can get an
/// answer twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_graph_outage_under_load_loses_nothing() {
    let seconds: u64 = std::env::var("FAULT_OUTAGE_SECONDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5);
    let graph = MockServer::start().await;
    let delivered = Arc::new(Mutex::new(HashMap::new()));
    let timed_out = Arc::new(Mutex::new(HashSet::new()));
    Mock::given(method("POST"))
        .and(path_regex(SEND_PATHS))
        .respond_with(Outage {
            until: std::time::Instant::now() + Duration::from_secs(seconds),
            calls: AtomicUsize::new(0),
            delivered: Arc::clone(&delivered),
            timed_out: Arc::clone(&timed_out),
        })
        .mount(&graph)
        .await;
    mount_no_one_known(&graph).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let database_url = format!("sqlite://{}/faults.db", dir.path().display());
    let server = Server::start_with(
        &database_url,
        &graph,
        &[
            ("GRAPH_REQUEST_TIMEOUT_MS", "1000"),
            ("RETRY_BASE_MS", "200"),
            ("RETRY_MAX_MS", "2000"),
            ("PAGE_COOLDOWN_MS", "500"),
        ],
    )
    .await;
    let http = reqwest::Client::new();
    let events = load_size() / 3;
    let mut acknowledged = HashSet::new();
    for n in 0..events {
        let answer = post_event(&http, &server.base, n)
            .await
            .expect("the webhook answers");
        assert_eq!(answer.status(), 200);
        acknowledged.insert(format!("P{n}"));
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(seconds + 120);
    loop {
        let done = {
            let delivered = delivered.lock().unwrap();
            acknowledged.iter().all(|p| delivered.contains_key(p))
        };
        if done && settled(&database_url).await {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "acknowledged events still unanswered {seconds} s after the outage"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let delivered = delivered.lock().unwrap().clone();
    let timed_out = timed_out.lock().unwrap().clone();
    let twice: Vec<&String> = delivered
        .iter()
        .filter(|(_, n)| **n > 1)
        .map(|(p, _)| p)
        .collect();
    eprintln!(
        "{} events through a {seconds} s Graph outage: all answered, {} sends timed out, {} people answered twice",
        acknowledged.len(),
        timed_out.len(),
        twice.len()
    );
    assert!(
        twice.iter().all(|p| timed_out.contains(*p)),
        "answered twice without a timed-out send: {twice:?}"
    );
    drop(server);
}
