//! `/healthz` and `/readyz`, the token checks and what a refused Page token
//! does: Graph's 190 pauses the Page (messages stay queued), `/readyz`
//! names it, a valid token resumes it; a Page admin's stored token is sent
//! with before the environment's.

use crate::demo_support::RunningDemo;
use crate::helpers::*;
use lexbridge::startup::Options;
use lexbridge::store::now_ms;
use lexbridge::store::outbox::NewOutboxMessage;
use lexbridge::store::pauses::{POLICY_BLOCK, TOKEN_INVALID};
use lexbridge::token_health;
use secrecy::SecretString;
use serde_json::{json, Value};
use wiremock::matchers::{method, path, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

const APP_TOKEN: &str = "test-app-id|test-app-secret";

async fn get(app: &TestApp, route: &str) -> (u16, Value) {
    let response = app
        .http
        .get(format!("{}{route}", app.address))
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// The reasons `/readyz` names (empty when it answers 200).
async fn not_ready(app: &TestApp) -> Vec<String> {
    let (status, body) = get(app, "/readyz").await;
    let reasons: Vec<String> = body["failing"]
        .as_array()
        .map(|all| {
            all.iter()
                .map(|f| f["reason"].as_str().unwrap().to_string())
                .collect()
        })
        .unwrap_or_default();
    assert_eq!(status == 200, reasons.is_empty(), "{status} {body}");
    reasons
}

async fn wait_ready(app: &TestApp) {
    wait_until("/readyz to answer 200", || async {
        get(app, "/readyz").await.0 == 200
    })
    .await;
}

fn message(text: &str) -> NewOutboxMessage {
    NewOutboxMessage {
        origin: "api",
        inbox_id: None,
        ..NewOutboxMessage::reply(PAGE_ID, "U1", 0, json!({"text": text}).to_string())
    }
}

/// `debug_token` of `input` answers `data`.
async fn mount_debug_token(graph: &MockServer, input: &str, data: Value) {
    Mock::given(method("GET"))
        .and(path("/v25.0/debug_token"))
        .and(query_param("input_token", input))
        .and(query_param("access_token", APP_TOKEN))
        .and(ValidProof)
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({ "data": data })))
        .mount(graph)
        .await;
}

/// The Send API refuses the Page's token (Graph error 190).
async fn mount_send_refused(graph: &MockServer) {
    Mock::given(method("POST"))
        .and(path(format!("/v25.0/{PAGE_ID}/messages")))
        .respond_with(ResponseTemplate::new(400).set_body_json(json!({"error": {
            "message": "Error validating access token: Session has expired",
            "type": "OAuthException", "code": 190, "error_subcode": 463,
            "fbtrace_id": "TRACE"}})))
        .mount(graph)
        .await;
}

fn tokens_sent_with(requests: &[wiremock::Request]) -> Vec<String> {
    requests
        .iter()
        .filter(|r| r.url.path().ends_with("/messages"))
        .filter_map(|r| {
            r.url
                .query_pairs()
                .find(|(k, _)| k == "access_token")
                .map(|(_, v)| v.into_owned())
        })
        .collect()
}

#[tokio::test]
async fn healthz_is_alive_and_readyz_names_each_failing_reason() {
    on_every_backend(|backend| async move {
        let app = spawn_app(&backend).await;
        assert_eq!(
            get(&app, "/healthz").await,
            (200, json!({"status": "alive"}))
        );
        wait_ready(&app).await;
        assert_eq!(get(&app, "/health").await, (200, json!({"status": "ok"})));

        // A policy block pauses the Page but says nothing of its token.
        app.store
            .pause_page(PAGE_ID, POLICY_BLOCK, None, now_ms())
            .await
            .unwrap();
        assert!(not_ready(&app).await.is_empty());
        app.store
            .pause_page(PAGE_ID, TOKEN_INVALID, Some("test"), now_ms())
            .await
            .unwrap();
        let (status, body) = get(&app, "/readyz").await;
        assert_eq!(status, 503);
        assert_eq!(body["failing"][0]["reason"], "page_token_invalid");
        let detail = body["failing"][0]["detail"].as_str().unwrap();
        assert!(detail.contains(PAGE_ID), "{detail}");
        assert!(!body.to_string().contains(PAGE_TOKEN), "never the token");
        assert_eq!(body["instance"], app.shared.instance_id.as_str());
        app.store.resume_page(PAGE_ID, TOKEN_INVALID).await.unwrap();
        assert!(not_ready(&app).await.is_empty());

        // A migration the database lacks.
        app.exec("DELETE FROM _sqlx_migrations WHERE version = 11")
            .await;
        let (status, body) = get(&app, "/readyz").await;
        assert_eq!(status, 503);
        assert_eq!(body["failing"][0]["reason"], "migrations");
        assert!(body["failing"][0]["detail"]
            .as_str()
            .unwrap()
            .contains("11"));
        assert_eq!(get(&app, "/healthz").await.0, 200, "alive all the same");
        app.stop().await;
    })
    .await;
}

/// A failed flush of SQLite's log (after which every write is refused)
/// makes the instance not ready.
#[tokio::test]
async fn a_failed_flush_of_the_log_makes_the_instance_not_ready() {
    let app = spawn_app(&Backend::Sqlite).await;
    wait_ready(&app).await;
    app.writer
        .stats()
        .log_flush_failed
        .store(true, std::sync::atomic::Ordering::Release);
    let (status, body) = get(&app, "/readyz").await;
    assert_eq!(status, 503);
    assert_eq!(body["failing"][0]["reason"], "database");
    let detail = body["failing"][0]["detail"].as_str().unwrap();
    assert!(detail.contains("flushed"), "{detail}");
    app.stop().await;
}

#[tokio::test]
async fn without_workers_or_database_the_instance_is_not_ready() {
    let app = quiet_app(&Backend::Sqlite, &[]).await;
    assert_eq!(not_ready(&app).await, ["workers"]);
    app.store.close().await;
    let (status, body) = get(&app, "/readyz").await;
    assert_eq!(status, 503);
    let reasons: Vec<&str> = body["failing"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["reason"].as_str().unwrap())
        .collect();
    assert_eq!(reasons, ["database", "workers"]);
    // The database's own error text (it may name hosts, users, files) is
    // for the log, not for whoever asks.
    assert_eq!(
        body["failing"][0]["detail"],
        "the database could not be read (the service's log says why)"
    );
    assert_eq!(get(&app, "/healthz").await.0, 200);
    assert_eq!(get(&app, "/health").await.0, 503, "/health as before");
}

#[tokio::test]
async fn a_refused_token_pauses_the_page_keeps_its_messages_and_a_valid_one_resumes_it() {
    on_every_backend(|backend| async move {
        let app = spawn_app(&backend).await;
        wait_ready(&app).await;
        mount_send_refused(&app.graph).await;
        app.store
            .enqueue(&[message("one"), message("two")], now_ms())
            .await
            .unwrap();
        wait_until("the Page to be paused", || async {
            app.store.page_pause_reasons(PAGE_ID).await.unwrap() == [TOKEN_INVALID]
        })
        .await;
        // Nothing failed: the messages wait for a valid token.
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        let rows = app.outbox().await;
        assert!(rows.iter().all(|r| r.state == "queued"), "{rows:?}");
        assert_eq!(rows[0].error_code, Some(190));
        let refused_sends = tokens_sent_with(&app.graph.received_requests().await.unwrap()).len();
        assert_eq!(refused_sends, 1, "the paused Page is not hammered");
        assert_eq!(not_ready(&app).await, ["page_token_invalid"]);
        let metrics = app.metrics().await;
        assert!(
            metrics.contains("lexbridge_send_api_total{outcome=\"190\"} 1\n"),
            "{metrics}"
        );
        assert!(metrics
            .contains("lexbridge_page_paused{page_id=\"1111\",reason=\"token_invalid\"} 1\n"));

        // debug_token still says invalid: nothing changes.
        mount_debug_token(
            &app.graph,
            PAGE_TOKEN,
            json!({"is_valid": false,
            "error": {"code": 190, "message": "Session has expired"}}),
        )
        .await;
        token_health::check_pages(&app.shared).await;
        assert_eq!(
            app.store.page_pause_reasons(PAGE_ID).await.unwrap(),
            [TOKEN_INVALID]
        );

        // The token is fixed at Meta: the next check resumes the Page.
        app.graph.reset().await;
        mount_send(&app.graph).await;
        mount_debug_token(
            &app.graph,
            PAGE_TOKEN,
            json!({"is_valid": true, "expires_at": 0, "type": "PAGE"}),
        )
        .await;
        token_health::check_pages(&app.shared).await;
        assert!(app
            .store
            .page_pause_reasons(PAGE_ID)
            .await
            .unwrap()
            .is_empty());
        let rows = app.outbox_settled().await;
        assert!(rows.iter().all(|r| r.state == "sent"), "{rows:?}");
        wait_ready(&app).await;
        app.stop().await;
    })
    .await;
}

#[tokio::test]
async fn an_invalid_page_token_found_at_start_pauses_the_page() {
    let db = TestDb::new(&Backend::Sqlite).await;
    let graph = MockServer::start().await;
    mount_debug_token(
        &graph,
        PAGE_TOKEN,
        json!({"is_valid": false, "expires_at": 0,
        "error": {"code": 190, "message": "The session has been invalidated"}}),
    )
    .await;
    let app = start(db, graph, Options::default(), &[]).await;
    wait_until("the start-up check to pause the Page", || async {
        app.store.page_pause_reasons(PAGE_ID).await.unwrap() == [TOKEN_INVALID]
    })
    .await;
    assert_eq!(not_ready(&app).await, ["page_token_invalid"]);
    let pause = &app.store.page_pauses().await.unwrap()[0];
    assert!(pause.detail.as_deref().unwrap().contains("invalidated"));
    app.stop().await;
}

#[tokio::test]
async fn a_stored_page_token_is_sent_with_first_and_a_new_one_resumes_the_page() {
    on_every_backend(|backend| async move {
        let app = spawn_app(&backend).await;
        mount_send(&app.graph).await;
        let admins = SecretString::from("test-admin-page-token".to_string());
        let sealed = app.shared.cipher.encrypt(&admins);
        app.store
            .set_page(PAGE_ID, None, &sealed, now_ms())
            .await
            .unwrap();
        // As after a restart: the token is resolved again (the start-up
        // check resolved it before it was stored).
        app.shared.forget_page_token(PAGE_ID);
        app.store.enqueue(&[message("a")], now_ms()).await.unwrap();
        app.outbox_settled().await;
        let sent = tokens_sent_with(&app.graph.received_requests().await.unwrap());
        assert_eq!(
            sent,
            ["test-admin-page-token"],
            "the admin's, not the environment's"
        );

        // Refused; then an admin's login stores a new one: used, and resumed.
        app.graph.reset().await;
        mount_send_refused(&app.graph).await;
        app.store.enqueue(&[message("b")], now_ms()).await.unwrap();
        wait_until("the Page to be paused", || async {
            app.store.page_pause_reasons(PAGE_ID).await.unwrap() == [TOKEN_INVALID]
        })
        .await;
        app.graph.reset().await;
        mount_send(&app.graph).await;
        let renewed = SecretString::from("test-renewed-page-token".to_string());
        app.store
            .set_page(
                PAGE_ID,
                None,
                &app.shared.cipher.encrypt(&renewed),
                now_ms(),
            )
            .await
            .unwrap();
        token_health::page_token_stored(&app.shared, PAGE_ID)
            .await
            .unwrap();
        assert!(app
            .store
            .page_pause_reasons(PAGE_ID)
            .await
            .unwrap()
            .is_empty());
        let rows = app.outbox_settled().await;
        assert!(rows.iter().all(|r| r.state == "sent"), "{rows:?}");
        let sent = tokens_sent_with(&app.graph.received_requests().await.unwrap());
        assert_eq!(sent, ["test-renewed-page-token"]);
        app.stop().await;
    })
    .await;
}

#[tokio::test]
async fn user_tokens_are_checked_and_those_expiring_within_7_days_listed() {
    on_every_backend(|backend| async move {
        let app = spawn_app(&backend).await;
        for (id, token) in [
            ("acc-soon", "test-user-soon"),
            ("acc-later", "test-user-later"),
        ] {
            let sealed = app
                .shared
                .cipher
                .encrypt(&SecretString::from(token.to_string()));
            app.store
                .save_login(&lexbridge::store::linking::LoginRecord {
                    fb_uid: id,
                    name: Some(id),
                    encrypted_token: &sealed,
                    token_expires_at: None,
                    page_id: PAGE_ID,
                    psids: &[],
                    now: now_ms(),
                    announcement: &|_, _, _| String::new(),
                })
                .await
                .unwrap();
        }
        let now_s = now_ms() / 1000;
        mount_debug_token(
            &app.graph,
            "test-user-soon",
            json!({"is_valid": true, "type": "USER", "expires_at": now_s + 3 * 86_400}),
        )
        .await;
        mount_debug_token(
            &app.graph,
            "test-user-later",
            json!({"is_valid": true, "type": "USER", "expires_at": now_s + 50 * 86_400}),
        )
        .await;
        token_health::check_user_tokens(&app.shared).await;
        let mut out = Vec::new();
        lexbridge::linking::admin::run(
            &app.store,
            lexbridge::linking::admin::AccountsCommand::List,
            &mut out,
        )
        .await
        .unwrap();
        let listed = String::from_utf8(out).unwrap();
        let line = |name: &str| {
            listed
                .lines()
                .find(|l| l.contains(&format!("name={name}")))
                .unwrap()
                .to_string()
        };
        assert!(
            line("acc-soon").contains("EXPIRES WITHIN 7 DAYS"),
            "{listed}"
        );
        assert!(
            line("acc-later").contains("token=stored, expires "),
            "{listed}"
        );
        assert!(
            listed.contains("1 user token(s) expired or expiring within 7 days"),
            "{listed}"
        );
        assert!(!listed.contains("test-user"), "never a token");
        app.stop().await;
    })
    .await;
}

#[tokio::test]
async fn the_demo_answers_debug_token_as_meta_does_and_is_ready() {
    let demo = RunningDemo::start().await;
    let readyz = format!("{}/readyz", demo.base);
    wait_until("the demo's /readyz to answer 200", || async {
        reqwest::get(&readyz).await.is_ok_and(|r| r.status() == 200)
    })
    .await;
    let app_token = format!("{}|{}", lexbridge::demo::APP_ID, demo.secret("app_secret"));
    let page_token = demo.secret("page_token");
    let (status, body) = demo
        .graph(
            &format!("debug_token?input_token={page_token}"),
            &app_token,
            Some(&demo.proof(&app_token)),
        )
        .await;
    assert_eq!(
        (status, &body["data"]["is_valid"]),
        (200, &json!(true)),
        "{body}"
    );
    let (status, body) = demo
        .graph(
            "debug_token?input_token=forged",
            &app_token,
            Some(&demo.proof(&app_token)),
        )
        .await;
    assert_eq!(
        (status, &body["data"]["is_valid"]),
        (200, &json!(false)),
        "{body}"
    );
    // Only the app's token may ask.
    let (status, _) = demo
        .graph(
            &format!("debug_token?input_token={page_token}"),
            &page_token,
            Some(&demo.proof(&page_token)),
        )
        .await;
    assert_eq!(status, 400);
    // What the checker does with these answers is tested against a faked
    // Graph (`an_invalid_page_token_found_at_start_pauses_the_page`).
    demo.stop().await;
}

#[tokio::test]
async fn metrics_time_webhook_acks_and_count_api_answers_by_status() {
    on_every_backend(|backend| async move {
        let app = spawn_app(&backend).await;
        let body = webhook_body(&[(PAGE_ID, vec![text_event("U1", "m.1", "hello")])]);
        assert_eq!(app.post_signed_webhook(&body).await.status(), 200);
        assert_eq!(
            app.post_webhook(b"{}", Some("sha256=00")).await.status(),
            403
        );
        let refused = app
            .http
            .post(format!("{}/api/v1/messages", app.address))
            .bearer_auth("lxb_not-a-key")
            .json(&json!({}))
            .send()
            .await
            .unwrap();
        assert_eq!(refused.status(), 401);
        app.inbox_settled().await;
        let metrics = app.metrics().await;
        for line in [
            "lexbridge_webhook_ack_seconds_count 2\n",
            "lexbridge_api_requests_total{status=\"401\"} 1\n",
            "lexbridge_nlu_seconds_count{backend=\"local\"} 1\n",
            "lexbridge_inbox_oldest_open_age_seconds 0.0\n",
        ] {
            assert!(metrics.contains(line), "{line:?} missing from\n{metrics}");
        }
        assert!(
            !metrics.contains("status=\"200\""),
            "only /api/ answers: {metrics}"
        );
        app.stop().await;
    })
    .await;
}
