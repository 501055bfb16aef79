//! The embedded engine end to end: signed webhook -> local engine (dialog
//! state in the conversation row) -> fulfillment backend -> Send API.

use crate::helpers::*;
use lexbridge::startup::Options;
use serde_json::{json, Value};
use wiremock::matchers::{header_exists, method, path};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

pub const FULFILLMENT_SECRET: &str = "test-fulfillment-secret";

pub fn dialog_bot() -> String {
    format!("{}/tests/fixtures/dialog-bot", env!("CARGO_MANIFEST_DIR"))
}

pub async fn spawn_local(backend: &Backend, extra: &[(&str, &str)]) -> TestApp {
    let graph = MockServer::start().await;
    mount_send(&graph).await;
    start(TestDb::new(backend).await, graph, Options::default(), extra).await
}

/// Says `text` as person `psid` and returns the texts the bot answered with.
pub async fn say(app: &TestApp, psid: &str, mid: &str, text: &str) -> Vec<String> {
    let before = sent(app).await.len();
    app.post_signed_webhook(&text_message(psid, mid, text))
        .await;
    app.inbox_settled().await;
    app.outbox_settled().await;
    sent(app).await.into_iter().skip(before).collect()
}

async fn sent(app: &TestApp) -> Vec<String> {
    sent_bodies(&app.graph)
        .await
        .iter()
        .filter_map(|b| b["message"]["text"].as_str().map(str::to_string))
        .collect()
}

#[tokio::test]
async fn the_bundled_bot_answers_by_default() {
    on_every_backend(|backend| async move {
        let app = spawn_local(&backend, &[]).await;
        let answer = say(&app, "U1", "m.1", "hello there").await;
        assert_eq!(answer.len(), 1, "{answer:?}");
        let rows = app.inbox().await;
        assert_eq!(rows[0].outcome.as_deref(), Some("answered by local"));
        app.stop().await;
    })
    .await;
}

#[tokio::test]
async fn a_dialog_elicits_confirms_and_closes_across_messages_and_restarts() {
    on_every_backend(|backend| async move {
        let bot = dialog_bot();
        let app = spawn_local(&backend, &[("LOCAL_BOT", &bot)]).await;
        assert_eq!(
            say(&app, "U1", "m.1", "i want a pizza").await,
            ["What size: small, medium or large?"]
        );
        assert_eq!(say(&app, "U1", "m.2", "large").await, ["How many pizzas?"]);
        // The dialog state is in the conversation row: a restart keeps it.
        let (db, graph) = app.stop().await;
        let app = start(db, graph, Options::default(), &[("LOCAL_BOT", &bot)]).await;
        assert_eq!(
            say(&app, "U1", "m.3", "2").await,
            ["Order 2 large pizza(s)?"]
        );
        assert_eq!(
            say(&app, "U1", "m.4", "yes").await,
            ["Your 2 large pizza(s) are on the way."]
        );
        // Another person's dialog is their own.
        assert_eq!(
            say(&app, "U2", "m.5", "order a small pizza").await,
            ["How many pizzas?"]
        );
        assert_eq!(
            say(&app, "U2", "m.6", "no thanks, 3").await,
            ["Order 3 small pizza(s)?"]
        );
        assert_eq!(
            say(&app, "U2", "m.7", "no").await,
            ["Okay, I cancelled the order."]
        );
        app.stop().await;
    })
    .await;
}

/// Checks `X-Lexbridge-Signature-256` against the body.
pub struct SignedForBackend;

impl wiremock::Match for SignedForBackend {
    fn matches(&self, request: &Request) -> bool {
        let expected =
            lexbridge::facebook::signature::sign(FULFILLMENT_SECRET.as_bytes(), &request.body);
        request
            .headers
            .get("X-Lexbridge-Signature-256")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v == expected)
    }
}

#[tokio::test]
async fn fulfillment_goes_to_the_signed_backend_and_its_messages_are_relayed() {
    on_every_backend(|backend| async move {
        let fulfil = MockServer::start().await;
        Mock::given(method("POST"))
            .and(path("/fulfil"))
            .and(header_exists("X-Lexbridge-Signature-256"))
            .and(SignedForBackend)
            .respond_with(
                ResponseTemplate::new(200).set_body_json(json!({"messages": [
                {"contentType": "PlainText", "content": "Order #77 placed."}]})),
            )
            .expect(1)
            .mount(&fulfil)
            .await;
        let url = format!("{}/fulfil", fulfil.uri());
        let bot = dialog_bot();
        let app = spawn_local(
            &backend,
            &[
                ("LOCAL_BOT", &bot),
                ("FULFILLMENT_URL", &url),
                ("FULFILLMENT_SECRET", FULFILLMENT_SECRET),
            ],
        )
        .await;
        app.exec(
            "INSERT INTO accounts (id, fb_uid, name, created_at, updated_at)
                  VALUES ('cust-9', '5550001', 'Grace', 1, 1)",
        )
        .await;
        app.exec(
            "INSERT INTO links (page_id, psid, account_id, source, linked_at)
                  VALUES ('1111', 'U1', 'cust-9', 'ref', 1)",
        )
        .await;
        say(&app, "U1", "m.1", "order 2 medium pizzas").await;
        assert_eq!(say(&app, "U1", "m.2", "yes").await, ["Order #77 placed."]);
        let requests = fulfil.received_requests().await.unwrap();
        let body: Value = serde_json::from_slice(&requests[0].body).unwrap();
        assert_eq!(body["intent"], "OrderPizza");
        assert_eq!(body["slots"]["size"]["interpreted_value"], "medium");
        assert_eq!(body["account"], json!({"id": "cust-9", "name": "Grace"}));
        assert_eq!(
            (body["psid"].as_str(), body["page_id"].as_str()),
            (Some("U1"), Some("1111"))
        );
        app.stop().await;
    })
    .await;
}

#[tokio::test]
async fn a_failing_backend_gives_the_intents_failure_response() {
    on_every_backend(|backend| async move {
        let fulfil = MockServer::start().await;
        Mock::given(method("POST"))
            .respond_with(ResponseTemplate::new(503))
            .mount(&fulfil)
            .await;
        let url = format!("{}/fulfil", fulfil.uri());
        let bot = dialog_bot();
        let app = spawn_local(
            &backend,
            &[
                ("LOCAL_BOT", &bot),
                ("FULFILLMENT_URL", &url),
                ("FULFILLMENT_SECRET", FULFILLMENT_SECRET),
            ],
        )
        .await;
        say(&app, "U1", "m.1", "order 2 medium pizzas").await;
        assert_eq!(
            say(&app, "U1", "m.2", "yes").await,
            ["The kitchen could not take the order."]
        );
        app.stop().await;
    })
    .await;
}

#[tokio::test]
async fn start_over_forgets_the_dialog_in_progress() {
    on_every_backend(|backend| async move {
        let bot = dialog_bot();
        let extra = [
            ("LOCAL_BOT", bot.as_str()),
            ("START_OVER_REPLY", "Fresh start!"),
        ];
        let app = spawn_local(&backend, &extra).await;
        assert_eq!(
            say(&app, "U1", "m.1", "i want a pizza").await,
            ["What size: small, medium or large?"]
        );
        let kept = "SELECT COUNT(*) FROM conversations WHERE psid = 'U1' AND nlu_state IS NOT NULL";
        assert_eq!(app.count(kept).await, 1);
        assert_eq!(
            say(&app, "U1", "m.2", "Start over!").await,
            ["Fresh start!"]
        );
        assert_eq!(app.count(kept).await, 0, "the dialog state is cleared");
        let rows = app.inbox().await;
        assert_eq!(rows[1].outcome.as_deref(), Some("started over"));
        // A new dialog, not the answer to the size prompt.
        assert_eq!(
            say(&app, "U1", "m.3", "i want a pizza").await,
            ["What size: small, medium or large?"]
        );
        app.stop().await;
    })
    .await;
}

/// A sticker reaches the embedded engine as its fixed utterance: the
/// fixture's Hello lists it, so Hello is fulfilled and the backend is told
/// what came; a photo no intent lists gets ATTACHMENT_REPLY.
#[tokio::test]
async fn attachments_are_routed_by_the_bot_or_get_the_polite_reply() {
    on_every_backend(|backend| async move {
        let fulfil = MockServer::start().await;
        Mock::given(method("POST"))
            .and(path("/fulfil"))
            .respond_with(
                ResponseTemplate::new(200).set_body_json(json!({"messages": [
                {"contentType": "PlainText", "content": "Nice sticker!"}]})),
            )
            .expect(1)
            .mount(&fulfil)
            .await;
        let url = format!("{}/fulfil", fulfil.uri());
        let bot = dialog_bot();
        let app = spawn_local(
            &backend,
            &[
                ("LOCAL_BOT", &bot),
                ("FULFILLMENT_URL", &url),
                ("FULFILLMENT_SECRET", FULFILLMENT_SECRET),
                ("ATTACHMENT_REPLY", "Please describe it in words."),
            ],
        )
        .await;
        let attachment = |mid: &str, kind: &str, url: &str| {
            json!({"sender": {"id": "U1"}, "recipient": {"id": PAGE_ID}, "timestamp": 1,
                "message": {"mid": mid, "attachments": [{"type": kind, "payload": {"url": url}}]}})
        };
        let body = webhook_body(&[(
            PAGE_ID,
            vec![
                attachment("m.s", "sticker", "https://cdn.test/like.png"),
                attachment("m.p", "image", "https://cdn.test/car.jpg"),
            ],
        )]);
        app.post_signed_webhook(&body).await;
        app.inbox_settled().await;
        app.outbox_settled().await;
        assert_eq!(
            sent(&app).await,
            ["Nice sticker!", "Please describe it in words."]
        );
        let requests = fulfil.received_requests().await.unwrap();
        let told: Value = serde_json::from_slice(&requests[0].body).unwrap();
        assert_eq!(told["intent"], "Hello");
        assert_eq!(
            told["attachment"],
            json!({"type": "sticker", "url": "https://cdn.test/like.png", "count": 1})
        );
        let outcomes: Vec<_> = app
            .inbox()
            .await
            .into_iter()
            .filter_map(|r| r.outcome)
            .collect();
        assert_eq!(
            outcomes,
            [
                "answered: sticker attachment by local",
                "answered: image attachment"
            ]
        );
        app.stop().await;
    })
    .await;
}
