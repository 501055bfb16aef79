//! `spawn_app()` and friends: a real server on port 0 with a fresh database
//! (SQLite, and Postgres when LEXBRIDGE_TEST_POSTGRES_URL is set) and a
//! wiremock Graph API.

use lexbridge::config::Settings;
use lexbridge::facebook::graph::appsecret_proof;
use lexbridge::facebook::signature::sign;
use lexbridge::nlu::Nlu;
use lexbridge::startup::{Application, Options, Stopper};
use lexbridge::store::inbox::InboxRecord;
use lexbridge::store::outbox::OutboxRecord;
use lexbridge::store::writer::Writer;
use lexbridge::store::Store;
use serde_json::{json, Value};
use sqlx::Connection;
use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, LazyLock};
use std::time::Duration;
use tokio::task::JoinHandle;
use wiremock::{Match, MockServer, Request};

pub const APP_SECRET: &str = "test-app-secret";
pub const PAGE_ID: &str = "1111";
pub const PAGE_TOKEN: &str = "test-page-token";
pub const VERIFY_TOKEN: &str = "test-verify-token";
/// The Send API path of the test Page.
pub const SEND_PATH: &str = "/v25.0/1111/messages";
/// 32 bytes of 0x01 and 64 bytes of 0x02, base64: test keys, nothing real.
pub const TOKEN_KEY: &str = "AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=";
pub const SESSION_KEY: &str =
    "AgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAg==";

/// The link token signer of an app built by `spawn_app` (its SESSION_KEY).
pub fn test_link_tokens() -> lexbridge::linking::tokens::LinkTokens {
    lexbridge::linking::tokens::LinkTokens::from_session_key(&secrecy::SecretString::from(
        SESSION_KEY.to_string(),
    ))
}

static TRACING: LazyLock<()> = LazyLock::new(|| {
    if std::env::var("TEST_LOG").is_ok() {
        lexbridge::telemetry::init("debug");
    }
});

/// Which database a scenario runs on.
#[derive(Clone, Debug)]
pub enum Backend {
    Sqlite,
    Postgres(String),
}

/// SQLite always; Postgres too when LEXBRIDGE_TEST_POSTGRES_URL is set.
pub fn backends() -> Vec<Backend> {
    let mut all = vec![Backend::Sqlite];
    if let Ok(url) = std::env::var("LEXBRIDGE_TEST_POSTGRES_URL") {
        if !url.trim().is_empty() {
            all.push(Backend::Postgres(url));
        }
    }
    all
}

/// The Postgres backend, when `LEXBRIDGE_TEST_POSTGRES_URL` names one (for
/// what only Postgres does: several instances, planner statistics).
pub fn postgres() -> Option<Backend> {
    backends()
        .into_iter()
        .find(|b| matches!(b, Backend::Postgres(_)))
}

/// A fresh, migrated Postgres database and a store on it with no service
/// around it, when `LEXBRIDGE_TEST_POSTGRES_URL` names a server.
pub async fn postgres_store() -> Option<(TestDb, Store)> {
    let db = TestDb::new(&postgres()?).await;
    let store = db.store().await;
    Some((db, store))
}

/// Runs a statement directly on `store`, whichever backend (test setup).
pub async fn exec_on(store: &Store, sql: &str) {
    match store {
        Store::Sqlite { writer, .. } => sqlx::query(sql).execute(writer).await.map(|_| ()),
        Store::Postgres(pool) => sqlx::query(sql).execute(pool).await.map(|_| ()),
    }
    .expect("test statement");
}

/// The rows a query on `store` answers, whichever backend.
pub async fn rows_on<T>(store: &Store, sql: &str) -> Vec<T>
where
    T: for<'r> sqlx::FromRow<'r, sqlx::sqlite::SqliteRow>
        + for<'r> sqlx::FromRow<'r, sqlx::postgres::PgRow>
        + Send
        + Unpin,
{
    match store {
        Store::Sqlite { reader, .. } => sqlx::query_as(sql).fetch_all(reader).await,
        Store::Postgres(pool) => sqlx::query_as(sql).fetch_all(pool).await,
    }
    .expect("test query")
}

/// Runs `scenario` once per backend.
pub async fn on_every_backend<F, Fut>(scenario: F)
where
    F: Fn(Backend) -> Fut,
    Fut: Future<Output = ()>,
{
    for backend in backends() {
        scenario(backend).await;
    }
}

/// A fresh database that outlives one application (for restarts).
pub struct TestDb {
    pub url: String,
    _dir: Option<tempfile::TempDir>,
}

impl TestDb {
    /// The same Postgres database again, for a second instance beside the
    /// first (a SQLite file has one instance).
    pub fn shared_postgres(&self) -> TestDb {
        assert!(self._dir.is_none(), "only a Postgres database is shared");
        TestDb {
            url: self.url.clone(),
            _dir: None,
        }
    }

    /// A migrated store on this database with no service around it: no
    /// worker claims, polls or analyzes behind the test's back.
    pub async fn store(&self) -> Store {
        let settings = lexbridge::config::DatabaseSettings::new(self.url.clone());
        let store = Store::connect(&settings).await.expect("connect");
        store.migrate().await.expect("migrate");
        store
    }

    pub async fn new(backend: &Backend) -> TestDb {
        match backend {
            Backend::Sqlite => {
                let dir = tempfile::tempdir().expect("temp dir");
                TestDb {
                    url: format!("sqlite://{}/test.db", dir.path().display()),
                    _dir: Some(dir),
                }
            }
            Backend::Postgres(base) => {
                let name = format!("lexbridge_t_{:016x}", rand::random::<u64>());
                let mut conn = sqlx::PgConnection::connect(base)
                    .await
                    .expect("Postgres at LEXBRIDGE_TEST_POSTGRES_URL answers");
                sqlx::query(&format!("CREATE DATABASE {name}"))
                    .execute(&mut conn)
                    .await
                    .expect("create test database");
                let mut url = url::Url::parse(base).expect("Postgres URL");
                url.set_path(&name);
                TestDb {
                    url: url.to_string(),
                    _dir: None,
                }
            }
        }
    }
}

pub struct TestApp {
    pub address: String,
    pub graph: MockServer,
    pub store: Store,
    /// The application's group committer.
    pub writer: Writer,
    /// The application's state (for calling its features directly).
    pub shared: Arc<lexbridge::state::AppState>,
    pub http: reqwest::Client,
    pub db: TestDb,
    stopper: Stopper,
    handle: Option<JoinHandle<anyhow::Result<()>>>,
}

pub fn settings(db: &TestDb, graph: &MockServer, extra: &[(&str, &str)]) -> Settings {
    let mut env: HashMap<String, String> = [
        ("DATABASE_URL", db.url.as_str()),
        ("LEXBRIDGE_BIND", "127.0.0.1:0"),
        ("FACEBOOK_APP_ID", "test-app-id"),
        ("FACEBOOK_APP_SECRET", APP_SECRET),
        ("FACEBOOK_PAGE_ID", PAGE_ID),
        ("FACEBOOK_PAGE_ACCESS_TOKEN", PAGE_TOKEN),
        ("MESSENGER_VERIFY_TOKEN", VERIFY_TOKEN),
        ("GRAPH_API_URL", graph.uri().as_str()),
        ("RETRY_BASE_MS", "20"),
        ("RETRY_MAX_MS", "200"),
        ("INBOX_RETRY_BUDGET_MS", "1000"),
        ("REPLY_MAX_AGE_MS", "60000"),
        ("API_MESSAGE_EXPIRY_MS", "60000"),
        ("PAGE_COOLDOWN_MS", "50"),
        ("GRAPH_REQUEST_TIMEOUT_MS", "2000"),
        ("TOKEN_ENCRYPTION_KEY", TOKEN_KEY),
        ("SESSION_KEY", SESSION_KEY),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    for (k, v) in extra {
        env.insert(k.to_string(), v.to_string());
    }
    Settings::from_lookup(|k| env.get(k).cloned()).expect("test settings are valid")
}

pub async fn spawn_app(backend: &Backend) -> TestApp {
    spawn_app_with(backend, None).await
}

pub async fn spawn_app_with(backend: &Backend, nlu: Option<Arc<dyn Nlu>>) -> TestApp {
    let db = TestDb::new(backend).await;
    let graph = MockServer::start().await;
    start(
        db,
        graph,
        Options {
            nlu,
            ..Options::default()
        },
        &[],
    )
    .await
}

/// An application on a fresh database and Graph mock, with `extra` settings.
pub async fn spawn_app_with_settings(backend: &Backend, extra: &[(&str, &str)]) -> TestApp {
    let db = TestDb::new(backend).await;
    let graph = MockServer::start().await;
    start(db, graph, Options::default(), extra).await
}

/// Starts an application on `db` with `graph` as its Graph API.
pub async fn start(
    db: TestDb,
    graph: MockServer,
    options: Options,
    extra: &[(&str, &str)],
) -> TestApp {
    LazyLock::force(&TRACING);
    let settings = settings(&db, &graph, extra);
    let app = Application::build(settings, options)
        .await
        .expect("application builds");
    let address = format!("http://127.0.0.1:{}", app.port());
    let store = app.shared().store.clone();
    let writer = app.shared().writer.clone();
    let shared = app.shared();
    let stopper = app.stopper();
    let handle = tokio::spawn(app.run_until_stopped());
    TestApp {
        address,
        graph,
        store,
        writer,
        shared,
        http: reqwest::Client::new(),
        db,
        stopper,
        handle: Some(handle),
    }
}

impl TestApp {
    /// Stops the application and hands back its database and Graph mock.
    pub async fn stop(mut self) -> (TestDb, MockServer) {
        self.stopper.stop();
        if let Some(handle) = self.handle.take() {
            handle.await.expect("app task").expect("app stops cleanly");
        }
        (self.db, self.graph)
    }

    pub async fn post_webhook(&self, body: &[u8], signature: Option<&str>) -> reqwest::Response {
        let mut request = self
            .http
            .post(format!("{}/webhook", self.address))
            .header("Content-Type", "application/json")
            .body(body.to_vec());
        if let Some(sig) = signature {
            request = request.header("X-Hub-Signature-256", sig);
        }
        request.send().await.expect("webhook request")
    }

    pub async fn post_signed_webhook(&self, body: &Value) -> reqwest::Response {
        let bytes = serde_json::to_vec(body).expect("json");
        let sig = sign(APP_SECRET.as_bytes(), &bytes);
        self.post_webhook(&bytes, Some(&sig)).await
    }

    /// Records another instance on this Postgres database, heard from an
    /// hour ahead: alive for the whole test, however slow.
    pub async fn add_live_instance(&self, id: &str) {
        self.exec(&format!(
            "INSERT INTO instances (id, started_at, seen_at)
             VALUES ('{id}', 0, CAST(EXTRACT(EPOCH FROM now()) * 1000 AS BIGINT) + 3600000)"
        ))
        .await;
    }

    /// Claims up to 10 outbox rows as a worker would at `now` (a lease of
    /// `LEASE_MS` from then), as a quiet app's test is the worker.
    pub async fn claim_outbox_at(&self, now: i64) -> Vec<lexbridge::store::outbox::OutboxRow> {
        use lexbridge::store::writer::{Claim, LEASE_MS};
        let claim = Claim {
            now,
            lease_until: now + LEASE_MS,
            limit: 10,
        };
        self.writer.claim_outbox(claim).await.expect("claimed")
    }

    /// Runs a statement directly (test setup).
    pub async fn exec(&self, sql: &str) {
        exec_on(&self.store, sql).await;
    }

    /// The number a `SELECT COUNT(*) …` answers.
    pub async fn count(&self, sql: &str) -> i64 {
        let rows: Vec<(i64,)> = rows_on(&self.store, sql).await;
        rows.first().expect("test count").0
    }

    pub async fn inbox(&self) -> Vec<InboxRecord> {
        self.store.inbox_records().await.expect("inbox rows")
    }

    pub async fn outbox(&self) -> Vec<OutboxRecord> {
        self.store.outbox_records().await.expect("outbox rows")
    }

    /// The `/metrics` text (200 asserted).
    pub async fn metrics(&self) -> String {
        let response = self
            .http
            .get(format!("{}/metrics", self.address))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        response.text().await.unwrap()
    }

    /// Waits until every inbox row is done or dead.
    pub async fn inbox_settled(&self) -> Vec<InboxRecord> {
        wait_until("inbox rows to settle", || async {
            self.inbox()
                .await
                .iter()
                .all(|r| r.state == "done" || r.state == "dead")
        })
        .await;
        self.inbox().await
    }

    /// Waits until no outbox row is queued or sending.
    pub async fn outbox_settled(&self) -> Vec<OutboxRecord> {
        wait_until("outbox rows to settle", || async {
            self.outbox()
                .await
                .iter()
                .all(|r| r.state != "queued" && r.state != "sending")
        })
        .await;
        self.outbox().await
    }
}

/// Polls `condition` until it holds; fails the test after 15 s.
pub async fn wait_until<F, Fut>(what: &str, condition: F)
where
    F: Fn() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    while !condition().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A webhook body: one entry per `(page id, events)`.
pub fn webhook_body(entries: &[(&str, Vec<Value>)]) -> Value {
    json!({
        "object": "page",
        "entry": entries.iter().map(|(page, events)| json!({
            "id": page, "time": 1_700_000_000_000i64, "messaging": events
        })).collect::<Vec<_>>()
    })
}

pub fn text_event(psid: &str, mid: &str, text: &str) -> Value {
    json!({
        "sender": {"id": psid}, "recipient": {"id": PAGE_ID},
        "timestamp": lexbridge::store::now_ms(),
        "message": {"mid": mid, "text": text}
    })
}

/// The mid a message's dedupe key names (`mid:<time>:<mid>`; the test
/// mids hold no `:`).
pub fn key_mid(key: &str) -> &str {
    key.rsplit(':').next().unwrap_or(key)
}

/// A whole signed-webhook body with one text message.
pub fn text_message(psid: &str, mid: &str, text: &str) -> Value {
    webhook_body(&[(PAGE_ID, vec![text_event(psid, mid, text)])])
}

/// Matches Graph requests whose `appsecret_proof` is the HMAC of their
/// `access_token` under the app secret.
pub struct ValidProof;

impl Match for ValidProof {
    fn matches(&self, request: &Request) -> bool {
        let query: HashMap<_, _> = request.url.query_pairs().into_owned().collect();
        match (query.get("access_token"), query.get("appsecret_proof")) {
            (Some(token), Some(proof)) => *proof == appsecret_proof(APP_SECRET, token),
            _ => false,
        }
    }
}

/// The JSON bodies Graph received, oldest first, each call of a batch
/// request as a body of its own (see `batch_calls`).
/// Every Send API call is checked to carry a valid `appsecret_proof`.
pub async fn sent_bodies(graph: &MockServer) -> Vec<Value> {
    let requests = graph.received_requests().await.unwrap_or_default();
    for r in requests
        .iter()
        .filter(|r| r.url.path().ends_with("/messages") || batch_calls(r).is_some())
    {
        assert!(
            ValidProof.matches(r),
            "a Send API call without a valid appsecret_proof"
        );
    }
    requests
        .iter()
        .flat_map(|r| match batch_calls(r) {
            Some(calls) => calls,
            None => serde_json::from_slice(&r.body).ok().into_iter().collect(),
        })
        .collect()
}

/// A Graph batch request's calls, each as the JSON body it would have had
/// alone (`None`: not a batch request).
pub fn batch_calls(request: &Request) -> Option<Vec<Value>> {
    let (_, batch) =
        url::form_urlencoded::parse(&request.body).find(|(name, _)| name == "batch")?;
    let calls = lexbridge::facebook::graph::read_calls(&batch).ok()?;
    Some(calls.into_iter().map(|call| call.body).collect())
}

/// Send API calls (with a valid `appsecret_proof`) succeed, alone or in
/// a batch request.
pub async fn mount_send(graph: &MockServer) {
    wiremock::Mock::given(wiremock::matchers::method("POST"))
        .and(wiremock::matchers::path(format!(
            "/v25.0/{PAGE_ID}/messages"
        )))
        .and(ValidProof)
        .respond_with(
            wiremock::ResponseTemplate::new(200)
                .set_body_json(json!({"recipient_id": "x", "message_id": "m.out"})),
        )
        .mount(graph)
        .await;
    wiremock::Mock::given(wiremock::matchers::method("POST"))
        .and(wiremock::matchers::path("/v25.0/"))
        .and(ValidProof)
        .respond_with(BatchAnswers)
        .mount(graph)
        .await;
}

/// Answers a batch request like Meta: a `{code, body}` per call, in order,
/// each a success.
pub struct BatchAnswers;

impl wiremock::Respond for BatchAnswers {
    fn respond(&self, request: &Request) -> wiremock::ResponseTemplate {
        let calls = batch_calls(request).unwrap_or_default();
        let answers: Vec<Value> = calls
            .iter()
            .map(|c| {
                let body = json!({"recipient_id": c["recipient"]["id"], "message_id": "m.out"});
                json!({"code": 200, "body": body.to_string()})
            })
            .collect();
        wiremock::ResponseTemplate::new(200).set_body_json(answers)
    }
}

/// The PSIDs of the next `n` rows handed to an inbox worker's feed, sorted.
pub async fn handed_psids(
    worker: &mut lexbridge::store::writer::FeedReceiver<lexbridge::store::inbox::InboxRow>,
    n: usize,
    what: &str,
) -> Vec<String> {
    let mut handed = Vec::new();
    while handed.len() < n {
        let rows = tokio::time::timeout(std::time::Duration::from_secs(20), worker.rows.recv())
            .await
            .expect(what)
            .expect("the feed is open");
        handed.extend(rows.into_iter().map(|r| r.psid));
    }
    handed.sort();
    handed
}

/// Adds `page_id` with `token` as `lexbridge page add` would (no bot or
/// rate of its own); the app answers for it once restarted.
pub async fn add_page(app: &TestApp, page_id: &str, token: &str) {
    let sealed = app.shared.cipher.encrypt(&token.to_string().into());
    let page = lexbridge::store::pages::AddedPage {
        page_id: page_id.into(),
        name: None,
        added_at: lexbridge::store::now_ms(),
        lex_bot_alias_id: None,
        local_bot: None,
        send_rate: None,
    };
    app.store
        .add_page(&page, &sealed, lexbridge::store::now_ms())
        .await
        .expect("page added");
}

/// An app that stores and answers but runs no workers: nothing is claimed,
/// processed or sent, so a test sees what was stored as it was stored.
pub async fn quiet_app(backend: &Backend, extra: &[(&str, &str)]) -> TestApp {
    let db = TestDb::new(backend).await;
    let graph = MockServer::start().await;
    let options = Options {
        without_workers: true,
        ..Options::default()
    };
    start(db, graph, options, extra).await
}

/// A writer with no service around it, feeding an inbox worker that can
/// hold `capacity` rows (the test is the worker), its claims held back
/// while `paced` says so.
pub fn inbox_writer(
    store: &Store,
    capacity: i64,
    paced: Option<lexbridge::store::writer::Paced>,
) -> (
    Writer,
    lexbridge::store::writer::FeedReceiver<lexbridge::store::inbox::InboxRow>,
) {
    let (inbox, worker) = lexbridge::store::writer::feed(capacity, 1);
    let feeds = lexbridge::store::writer::Feeds {
        inbox: Some(inbox),
        inbox_paced: paced,
        ..Default::default()
    };
    let writer = Writer::start(store.clone(), feeds, "this-instance".into());
    (writer, worker)
}
