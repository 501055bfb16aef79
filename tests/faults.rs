//! Fault tests on the real `lexbridge serve` binary. Killed with SIGKILL
//! under webhook load and started again on the same database, it answers
//! every event it acknowledged; only a send in flight at the kill (its row
//! still `sending`) can go twice. `FAULT_EVENTS` sets the load (default
//! 600; the README gives a larger run).

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

const APP_SECRET: &str = "fault-test-app-secret";
const PAGE_ID: &str = "4242";
/// Test keys (32 bytes of 0x01, 64 of 0x02), nothing real.
const TOKEN_KEY: &str = "AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=";
const SESSION_KEY: &str =
    "AgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAg==";

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// A `lexbridge serve` child, killed when dropped.
struct Server {
    child: Child,
    base: String,
}

impl Server {
    async fn start(database_url: &str, graph: &MockServer) -> Server {
        Server::start_with(database_url, graph, &[]).await
    }

    async fn start_with(database_url: &str, graph: &MockServer, extra: &[(&str, &str)]) -> Server {
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
    fn kill(mut self) {
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

fn event(n: usize) -> Vec<u8> {
    let body = json!({"object": "page", "entry": [{"id": PAGE_ID, "time": 1, "messaging": [{
        "sender": {"id": format!("P{n}")}, "recipient": {"id": PAGE_ID}, "timestamp": 1,
        "message": {"mid": format!("m.fault.{n}"), "text": "is my car locked?"}}]}]});
    serde_json::to_vec(&body).expect("json")
}

/// How many answers (Send API calls carrying a `message`) each person got.
async fn answers(graph: &MockServer) -> HashMap<String, usize> {
    let mut counts = HashMap::new();
    for request in graph.received_requests().await.unwrap_or_default() {
        let Ok(body) = serde_json::from_slice::<Value>(&request.body) else {
            continue;
        };
        if request.url.path().ends_with("/messages") && body.get("message").is_some() {
            if let Some(psid) = body["recipient"]["id"].as_str() {
                *counts.entry(psid.to_string()).or_default() += 1;
            }
        }
    }
    counts
}

/// A Graph stand-in that answers every send and knows no one.
async fn graph() -> MockServer {
    let graph = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path_regex("/messages$"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"recipient_id": "x", "message_id": "m.out"})),
        )
        .mount(&graph)
        .await;
    // `ids_for_apps` and other reads: nothing known of anyone.
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"data": []})))
        .mount(&graph)
        .await;
    graph
}

fn load_size() -> usize {
    std::env::var("FAULT_EVENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(600)
}

/// Eight connections post `events` distinct events (one person each) to
/// `bases` in turn; `kill` runs once half of them are acknowledged, and the
/// load ends where the killed server stops answering. The people whose
/// event was acknowledged.
async fn load_until_killed(
    bases: &[String],
    events: usize,
    kill: impl FnOnce(),
) -> HashSet<String> {
    let next = Arc::new(AtomicUsize::new(0));
    let acknowledged = Arc::new(Mutex::new(Vec::new()));
    let mut load = Vec::new();
    for connection in 0..8 {
        let (next, acknowledged) = (Arc::clone(&next), Arc::clone(&acknowledged));
        let url = format!("{}/webhook", bases[connection % bases.len()]);
        load.push(tokio::spawn(async move {
            let http = reqwest::Client::new();
            loop {
                let n = next.fetch_add(1, Ordering::Relaxed);
                if n >= events {
                    return;
                }
                let body = event(n);
                let answer = http
                    .post(&url)
                    .header("Content-Type", "application/json")
                    .header("X-Hub-Signature-256", sign(APP_SECRET.as_bytes(), &body))
                    .body(body)
                    .send()
                    .await;
                match answer {
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
async fn sending(database_url: &str) -> HashSet<String> {
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
async fn settled(database_url: &str) -> bool {
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
async fn every_acknowledged_event_answered(
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_killed_under_load_answers_every_acknowledged_event_after_its_restart() {
    let events = load_size();
    let graph = graph().await;
    let dir = tempfile::tempdir().expect("temp dir");
    let database_url = format!("sqlite://{}/faults.db", dir.path().display());
    let first = Server::start(&database_url, &graph).await;
    let bases = [first.base.clone()];
    let acknowledged = load_until_killed(&bases, events, || first.kill()).await;
    // What the killed server had in hand: only these can be sent twice.
    let in_flight = sending(&database_url).await;
    let _second = Server::start(&database_url, &graph).await;
    every_acknowledged_event_answered(
        &graph,
        &database_url,
        &acknowledged,
        &in_flight,
        events,
        Duration::from_secs(120),
    )
    .await;
}

/// Two instances on one Postgres database (`LEXBRIDGE_TEST_POSTGRES_URL`),
/// one killed under load: the other answers every event either of them
/// acknowledged, taking the killed one's rows once it has been silent for
/// the staleness limit (10 s) rather than after their 2-minute lease.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_of_two_instances_killed_under_load_loses_nothing() {
    let Some(base) = std::env::var("LEXBRIDGE_TEST_POSTGRES_URL")
        .ok()
        .filter(|u| !u.trim().is_empty())
    else {
        return;
    };
    let name = format!("lexbridge_t_{:016x}", rand::random::<u64>());
    let admin = Store::connect(&lexbridge::config::DatabaseSettings::new(base.clone()))
        .await
        .expect("Postgres answers");
    let Store::Postgres(pool) = &admin else {
        panic!("LEXBRIDGE_TEST_POSTGRES_URL is not a Postgres URL")
    };
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(pool)
        .await
        .expect("a test database");
    admin.close().await;
    let mut url = url::Url::parse(&base).expect("Postgres URL");
    url.set_path(&name);
    let database_url = url.to_string();

    let events = load_size();
    let graph = graph().await;
    let first = Server::start(&database_url, &graph).await;
    let survivor = Server::start(&database_url, &graph).await;
    let started = std::time::Instant::now();
    let bases = [first.base.clone(), survivor.base.clone()];
    let acknowledged = load_until_killed(&bases, events, || first.kill()).await;
    let in_flight = sending(&database_url).await;
    // Well before the killed instance's 2-minute leases end.
    every_acknowledged_event_answered(
        &graph,
        &database_url,
        &acknowledged,
        &in_flight,
        events,
        Duration::from_secs(40),
    )
    .await;
    eprintln!(
        "all answered {:.1} s after the load began",
        started.elapsed().as_secs_f64()
    );
    drop(survivor);
}

/// A Postgres cluster of the test's own (its own folder and port, never
/// the shared server), run as the `postgres` user.
struct PrivateCluster {
    dir: tempfile::TempDir,
    port: u16,
}

impl PrivateCluster {
    const BIN: &'static str = "/usr/lib/postgresql/15/bin";

    fn pg_ctl(&self, args: &[&str]) {
        let data = self.dir.path().join("data");
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1",
            self.port,
            self.dir.path().display()
        );
        let status = Command::new("runuser")
            .args(["-u", "postgres", "--"])
            .arg(format!("{}/pg_ctl", Self::BIN))
            .arg("-D")
            .arg(&data)
            .args(["-o", &options, "-l"])
            .arg(self.dir.path().join("log"))
            .args(["-w", "-m", "fast"])
            .args(args)
            .stdout(Stdio::null())
            .status()
            .expect("pg_ctl runs (as root, through runuser)");
        assert!(status.success(), "pg_ctl {args:?} failed");
    }

    fn start() -> PrivateCluster {
        let dir = tempfile::tempdir().expect("temp dir");
        // The postgres user owns what it writes here.
        std::fs::set_permissions(
            dir.path(),
            std::os::unix::fs::PermissionsExt::from_mode(0o777),
        )
        .expect("chmod");
        let status = Command::new("runuser")
            .args(["-u", "postgres", "--"])
            .arg(format!("{}/initdb", Self::BIN))
            .arg("-D")
            .arg(dir.path().join("data"))
            .args(["-A", "trust", "-U", "postgres"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .expect("initdb runs (Debian's postgresql-15, as root through runuser)");
        assert!(status.success(), "initdb failed");
        let cluster = PrivateCluster {
            dir,
            port: free_port(),
        };
        cluster.pg_ctl(&["start"]);
        cluster
    }

    fn url(&self, database: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{database}", self.port)
    }
}

impl Drop for PrivateCluster {
    fn drop(&mut self) {
        let _ = Command::new("runuser")
            .args(["-u", "postgres", "--"])
            .arg(format!("{}/pg_ctl", Self::BIN))
            .arg("-D")
            .arg(self.dir.path().join("data"))
            .args(["-w", "-m", "immediate", "stop"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

/// Postgres restarted under load (down for two seconds): events arriving
/// meanwhile wait for the database or are refused (never acknowledged
/// unstored), `/readyz` says the database is unreachable, and afterwards
/// the service recovers with no one's help, takes new events, and answers
/// every event it acknowledged, once. Runs where the
/// integration suite runs on Postgres (`LEXBRIDGE_TEST_POSTGRES_URL`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_postgres_restart_under_load_is_survived_without_manual_action() {
    if std::env::var("LEXBRIDGE_TEST_POSTGRES_URL").map_or(true, |u| u.trim().is_empty()) {
        return;
    }
    let cluster = PrivateCluster::start();
    let admin = Store::connect(&lexbridge::config::DatabaseSettings::new(
        cluster.url("postgres"),
    ))
    .await
    .expect("the private cluster answers");
    if let Store::Postgres(pool) = &admin {
        sqlx::query("CREATE DATABASE lexbridge")
            .execute(pool)
            .await
            .expect("a database");
    }
    admin.close().await;
    let graph = graph().await;
    let server = Server::start(&cluster.url("lexbridge"), &graph).await;

    // Four connections, each an event every 20 ms, until two seconds after
    // the recovery.
    let acknowledged = Arc::new(Mutex::new(HashSet::new()));
    let refused = Arc::new(AtomicUsize::new(0));
    let next = Arc::new(AtomicUsize::new(0));
    let (stop_load, load_stopped) = tokio::sync::watch::channel(false);
    let mut load = Vec::new();
    for _ in 0..4 {
        let (acknowledged, refused, next) = (
            Arc::clone(&acknowledged),
            Arc::clone(&refused),
            Arc::clone(&next),
        );
        let load_stopped = load_stopped.clone();
        let url = format!("{}/webhook", server.base);
        load.push(tokio::spawn(async move {
            let http = reqwest::Client::new();
            while !*load_stopped.borrow() {
                let n = next.fetch_add(1, Ordering::Relaxed);
                let body = event(n);
                let answer = http
                    .post(&url)
                    .header("Content-Type", "application/json")
                    .header("X-Hub-Signature-256", sign(APP_SECRET.as_bytes(), &body))
                    .body(body)
                    .timeout(Duration::from_secs(30))
                    .send()
                    .await;
                match answer {
                    Ok(r) if r.status() == 200 => {
                        acknowledged.lock().unwrap().insert(format!("P{n}"));
                    }
                    // Meta would deliver it again later; here it is let go.
                    _ => {
                        refused.fetch_add(1, Ordering::Relaxed);
                    }
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    cluster.pg_ctl(&["stop"]);
    let readyz = format!("{}/readyz", server.base);
    let mut said_why = false;
    for _ in 0..100 {
        if let Ok(r) = reqwest::get(&readyz).await {
            if r.status() == 503 && r.text().await.unwrap_or_default().contains("database") {
                said_why = true;
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    cluster.pg_ctl(&["start"]);
    let mut ready = false;
    let mut acknowledged_when_ready = usize::MAX;
    for _ in 0..600 {
        if reqwest::get(&readyz).await.is_ok_and(|r| r.status() == 200) {
            ready = true;
            acknowledged_when_ready = acknowledged.lock().unwrap().len();
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let _ = stop_load.send(true);
    for task in load {
        task.await.expect("load task");
    }
    assert!(said_why, "/readyz did not say the database was unreachable");
    assert!(ready, "/readyz did not recover after Postgres came back");
    let acknowledged = acknowledged.lock().unwrap().clone();
    assert!(
        acknowledged.len() > acknowledged_when_ready,
        "no event was taken after the recovery: the load ended too early"
    );
    eprintln!(
        "{} events refused during the outage",
        refused.load(Ordering::Relaxed)
    );
    every_acknowledged_event_answered(
        &graph,
        &cluster.url("lexbridge"),
        &acknowledged,
        &HashSet::new(),
        next.load(Ordering::Relaxed),
        Duration::from_secs(120),
    )
    .await;
    drop(server);
}

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
        let body: Value = serde_json::from_slice(&request.body).unwrap_or_default();
        let psid = body["recipient"]["id"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let message = body.get("message").is_some();
        let ok = ResponseTemplate::new(200)
            .set_body_json(json!({"recipient_id": "x", "message_id": "m.out"}));
        if std::time::Instant::now() < self.until {
            if self.calls.fetch_add(1, Ordering::Relaxed) % 2 == 0 {
                return ResponseTemplate::new(500).set_body_json(json!({"error": {
                    "message": "An unexpected error has occurred. Please retry your request later.",
                    "type": "OAuthException", "code": 2, "is_transient": true}}));
            }
            if message {
                self.timed_out.lock().unwrap().insert(psid.clone());
                *self.delivered.lock().unwrap().entry(psid).or_default() += 1;
            }
            return ok.set_delay(Duration::from_secs(3));
        }
        if message {
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
        .and(path_regex("/messages$"))
        .respond_with(Outage {
            until: std::time::Instant::now() + Duration::from_secs(seconds),
            calls: AtomicUsize::new(0),
            delivered: Arc::clone(&delivered),
            timed_out: Arc::clone(&timed_out),
        })
        .mount(&graph)
        .await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"data": []})))
        .mount(&graph)
        .await;
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
        let body = event(n);
        let answer = http
            .post(format!("{}/webhook", server.base))
            .header("Content-Type", "application/json")
            .header("X-Hub-Signature-256", sign(APP_SECRET.as_bytes(), &body))
            .body(body)
            .send()
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
