//! The server under test, its Graph stand-in, the load and the checks.

use lexbridge::facebook::signature::sign;
use lexbridge::store::Store;
use serde_json::{json, Value};
use std::collections::{HashMap, HashSet};
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use wiremock::matchers::{method, path_regex};
use wiremock::{Mock, MockServer, ResponseTemplate};

pub(crate) const APP_SECRET: &str = "fault-test-app-secret";
pub(crate) const PAGE_ID: &str = "4242";
/// Test keys (32 bytes of 0x01, 64 of 0x02), nothing real.
pub(crate) const TOKEN_KEY: &str = "AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=";
pub(crate) const SESSION_KEY: &str =
    "AgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAg==";

pub(crate) fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// A `lexbridge serve` child, killed when dropped.
pub(crate) struct Server {
    child: Child,
    pub(crate) base: String,
}

impl Server {
    pub(crate) async fn start(database_url: &str, graph: &MockServer) -> Server {
        Server::start_with(database_url, graph, &[]).await
    }

    pub(crate) async fn start_with(
        database_url: &str,
        graph: &MockServer,
        extra: &[(&str, &str)],
    ) -> Server {
        let port = free_port();
        let child = Command::new(env!("CARGO_BIN_EXE_lexbridge"))
            .arg("serve")
            .envs(extra.iter().copied())
            .env("DATABASE_URL", database_url)
            .env("LEXBRIDGE_BIND", format!("127.0.0.1:{port}"))
            .env("FACEBOOK_APP_ID", "fault-test-app")
            .env("FACEBOOK_APP_SECRET", APP_SECRET)
            .env("FACEBOOK_PAGE_ID", PAGE_ID)
            .env("FACEBOOK_PAGE_ACCESS_TOKEN", "fault-test-page-token")
            .env("MESSENGER_VERIFY_TOKEN", "fault-test-verify")
            .env("GRAPH_API_URL", graph.uri())
            .env("TOKEN_ENCRYPTION_KEY", TOKEN_KEY)
            .env("SESSION_KEY", SESSION_KEY)
            .env("RUST_LOG", "error")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("lexbridge serve starts");
        let server = Server {
            child,
            base: format!("http://127.0.0.1:{port}"),
        };
        let health = format!("{}/health", server.base);
        for _ in 0..300 {
            if reqwest::get(&health).await.is_ok_and(|r| r.status() == 200) {
                return server;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("lexbridge serve did not answer /health");
    }

    /// SIGKILL: no shutdown, no flush, nothing released.
    pub(crate) fn kill(mut self) {
        self.child.kill().expect("kill");
        self.child.wait().expect("reaped");
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub(crate) fn event(n: usize) -> Vec<u8> {
    let body = json!({"object": "page", "entry": [{"id": PAGE_ID, "time": 1, "messaging": [{
        "sender": {"id": format!("P{n}")}, "recipient": {"id": PAGE_ID}, "timestamp": 1,
        "message": {"mid": format!("m.fault.{n}"), "text": "is my car locked?"}}]}]});
    serde_json::to_vec(&body).expect("json")
}

/// The Send API calls of a request: its JSON body, or each call of a
/// Graph batch request as the body it would have had alone. `true` for a
/// batch request.
pub(crate) fn send_calls(request: &wiremock::Request) -> (Vec<Value>, bool) {
    let batch = url::form_urlencoded::parse(&request.body)
        .find(|(name, _)| name == "batch")
        .and_then(|(_, calls)| lexbridge::facebook::graph::read_calls(&calls).ok());
    match batch {
        Some(calls) => (calls.into_iter().map(|c| c.body).collect(), true),
        None if request.url.path().ends_with("/messages") => (
            serde_json::from_slice(&request.body).into_iter().collect(),
            false,
        ),
        None => (Vec::new(), false),
    }
}

/// The Send API's success for `calls`: one answer, or a batch's.
pub(crate) fn sent(calls: &[Value], batch: bool) -> ResponseTemplate {
    let one = json!({"recipient_id": "x", "message_id": "m.out"});
    let answer = match batch {
        true => json!(calls
            .iter()
            .map(|_| json!({"code": 200, "body": one.to_string()}))
            .collect::<Vec<_>>()),
        false => one,
    };
    ResponseTemplate::new(200).set_body_json(answer)
}

/// Where Send API calls go: a Page's `/messages`, or a batch request's
/// root (`/v25.0/`).
pub(crate) const SEND_PATHS: &str = "(/messages|/v[0-9.]+/)$";

/// How many answers (Send API calls carrying a `message`) each person got.
pub(crate) async fn answers(graph: &MockServer) -> HashMap<String, usize> {
    let mut counts = HashMap::new();
    for request in graph.received_requests().await.unwrap_or_default() {
        for body in send_calls(&request).0 {
            if body.get("message").is_some() {
                if let Some(psid) = body["recipient"]["id"].as_str() {
                    *counts.entry(psid.to_string()).or_default() += 1;
                }
            }
        }
    }
    counts
}

/// Answers every Send API call, alone or in a batch.
struct SendsSucceed;

impl wiremock::Respond for SendsSucceed {
    fn respond(&self, request: &wiremock::Request) -> ResponseTemplate {
        let (calls, batch) = send_calls(request);
        sent(&calls, batch)
    }
}

/// A Graph stand-in that answers every send and knows no one.
pub(crate) async fn graph() -> MockServer {
    let graph = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path_regex(SEND_PATHS))
        .respond_with(SendsSucceed)
        .mount(&graph)
        .await;
    mount_no_one_known(&graph).await;
    graph
}

/// `ids_for_apps` and other reads: nothing known of anyone.
pub(crate) async fn mount_no_one_known(graph: &MockServer) {
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"data": []})))
        .mount(graph)
        .await;
}

/// Posts event `n`, signed, to the webhook at `base`.
pub(crate) async fn post_event(
    http: &reqwest::Client,
    base: &str,
    n: usize,
) -> reqwest::Result<reqwest::Response> {
    let body = event(n);
    http.post(format!("{base}/webhook"))
        .header("Content-Type", "application/json")
        .header("X-Hub-Signature-256", sign(APP_SECRET.as_bytes(), &body))
        .body(body)
        .timeout(Duration::from_secs(30))
        .send()
        .await
}

/// A new database `name` on the Postgres server of `server_url` (any
/// database of it); the URL of the new one.
pub(crate) async fn create_database(server_url: &str, name: &str) -> String {
    let admin = Store::connect(&lexbridge::config::DatabaseSettings::new(server_url))
        .await
        .expect("Postgres answers");
    let Store::Postgres(pool) = &admin else {
        panic!("{server_url} is not a Postgres URL")
    };
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(pool)
        .await
        .expect("a test database");
    admin.close().await;
    let mut url = url::Url::parse(server_url).expect("Postgres URL");
    url.set_path(name);
    url.to_string()
}

pub(crate) fn load_size() -> usize {
    std::env::var("FAULT_EVENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(600)
}

/// Eight connections post `events` distinct events (one person each) to
/// `bases` in turn; `kill` runs once half of them are acknowledged, and the
/// load ends where the killed server stops answering. The people whose
/// event was acknowledged.
pub(crate) async fn load_until_killed(
    bases: &[String],
    events: usize,
    kill: impl FnOnce(),
) -> HashSet<String> {
    let next = Arc::new(AtomicUsize::new(0));
    let acknowledged = Arc::new(Mutex::new(Vec::new()));
    let mut load = Vec::new();
    for connection in 0..8 {
        let (next, acknowledged) = (Arc::clone(&next), Arc::clone(&acknowledged));
        let base = bases[connection % bases.len()].clone();
        load.push(tokio::spawn(async move {
            let http = reqwest::Client::new();
            loop {
                let n = next.fetch_add(1, Ordering::Relaxed);
                if n >= events {
                    return;
                }
                match post_event(&http, &base, n).await {
                    Ok(r) if r.status() == 200 => acknowledged.lock().unwrap().push(n),
                    Ok(r) => panic!("the webhook answered {}", r.status()),
                    // The server is gone.
                    Err(_) => return,
                }
            }
        }));
    }
    while acknowledged.lock().unwrap().len() < events / 2 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    kill();
    for task in load {
        task.await.expect("load task");
    }
    let acknowledged = acknowledged.lock().unwrap();
    assert!(
        acknowledged.len() < events,
        "the kill came before the load ended"
    );
    acknowledged.iter().map(|n| format!("P{n}")).collect()
}

/// The people whose outbox row is `sending`: a send may be in flight.
pub(crate) async fn sending(database_url: &str) -> HashSet<String> {
    let store = Store::connect(&lexbridge::config::DatabaseSettings::new(database_url))
        .await
        .expect("the database opens");
    let rows = store.outbox_records().await.expect("outbox rows");
    store.close().await;
    rows.into_iter()
        .filter(|r| r.state == "sending")
        .map(|r| r.psid)
        .collect()
}

/// Whether no inbox or outbox row is open (pending, in hand, queued).
pub(crate) async fn settled(database_url: &str) -> bool {
    let store = Store::connect(&lexbridge::config::DatabaseSettings::new(database_url))
        .await
        .expect("the database opens");
    let inbox = store.inbox_records().await.expect("inbox rows");
    let outbox = store.outbox_records().await.expect("outbox rows");
    store.close().await;
    inbox
        .iter()
        .all(|r| !matches!(r.state.as_str(), "pending" | "processing"))
        && outbox
            .iter()
            .all(|r| !matches!(r.state.as_str(), "queued" | "sending"))
}

/// Waits (until `within` has passed) for every acknowledged person to have
/// an answer and for nothing to be left open, then checks that only people
/// in `in_flight` got two.
pub(crate) async fn every_acknowledged_event_answered(
    graph: &MockServer,
    database_url: &str,
    acknowledged: &HashSet<String>,
    in_flight: &HashSet<String>,
    events: usize,
    within: Duration,
) {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        let answered = answers(graph).await;
        let missing: Vec<&String> = acknowledged
            .iter()
            .filter(|p| !answered.contains_key(*p))
            .collect();
        if missing.is_empty() && settled(database_url).await {
            // Counted once nothing is left that could go again.
            let answered = answers(graph).await;
            let twice: Vec<(&String, &usize)> = answered.iter().filter(|(_, n)| **n > 1).collect();
            eprintln!(
                "{} of {events} events acknowledged, {} rows in flight at the fault, {} answered twice",
                acknowledged.len(),
                in_flight.len(),
                twice.len()
            );
            assert!(
                twice.iter().all(|(p, _)| in_flight.contains(*p)),
                "answered twice without being in flight at the kill: {twice:?} (in flight: {in_flight:?})"
            );
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{} acknowledged events never answered, e.g. {:?}",
            missing.len(),
            &missing[..missing.len().min(5)]
        );
        assert!(
            tokio::time::Instant::now() < deadline,
            "every event answered, but rows are still open after {within:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
