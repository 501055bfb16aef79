//! Fulfillment requests cannot be replayed or redirected: the signed body
//! names the event (`request_id`) and its time (`sent_at`); redirects are
//! not followed and answers are read only up to a bound.

use crate::helpers::*;
use crate::local_nlu::{dialog_bot, say, spawn_local, SignedForBackend, FULFILLMENT_SECRET};
use serde_json::{json, Value};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

const FAILURE: &str = "The kitchen could not take the order.";

fn placed() -> Value {
    json!({"messages": [{"contentType": "PlainText", "content": "Order #77 placed."}]})
}

async fn app_with_backend(backend: &Backend, url: &str) -> TestApp {
    let bot = dialog_bot();
    spawn_local(
        backend,
        &[
            ("LOCAL_BOT", &bot),
            ("FULFILLMENT_URL", url),
            ("FULFILLMENT_SECRET", FULFILLMENT_SECRET),
        ],
    )
    .await
}

/// Orders pizza and confirms; returns what the bot said to the confirmation.
async fn order(app: &TestApp) -> Vec<String> {
    say(app, "U1", "m.1", "order 2 medium pizzas").await;
    say(app, "U1", "m.2", "yes").await
}

#[tokio::test]
async fn the_signed_body_names_the_event_and_the_time_it_was_sent() {
    on_every_backend(|backend| async move {
        let fulfil = MockServer::start().await;
        Mock::given(method("POST"))
            .and(path("/fulfil"))
            .and(SignedForBackend)
            .respond_with(ResponseTemplate::new(200).set_body_json(placed()))
            .expect(1)
            .mount(&fulfil)
            .await;
        let app = app_with_backend(&backend, &format!("{}/fulfil", fulfil.uri())).await;
        let before = lexbridge::store::now_ms();
        assert_eq!(order(&app).await, ["Order #77 placed."]);
        let after = lexbridge::store::now_ms();
        let requests = fulfil.received_requests().await.unwrap();
        let body: Value = serde_json::from_slice(&requests[0].body).unwrap();
        // Derived from the event that confirmed the order: the same on every
        // retry of that event, so the backend can de-duplicate on it.
        let confirming = app.inbox().await[1].dedupe_key.clone();
        assert_eq!(key_mid(&confirming), "m.2");
        // As before keys led with the time (migration 0020).
        assert_eq!(body["request_id"], lexbridge::nlu::turn_id("mid:m.2"));
        let sent_at = body["sent_at"].as_i64().expect("epoch ms");
        assert!((before..=after).contains(&sent_at), "{sent_at}");
        assert_eq!(body["intent"], "OrderPizza");
        app.stop().await;
    })
    .await;
}

#[tokio::test]
async fn a_redirect_is_not_followed() {
    on_every_backend(|backend| async move {
        let elsewhere = MockServer::start().await;
        Mock::given(method("POST"))
            .respond_with(ResponseTemplate::new(200).set_body_json(placed()))
            .expect(0)
            .mount(&elsewhere)
            .await;
        let fulfil = MockServer::start().await;
        for status in [307, 308] {
            Mock::given(method("POST"))
                .and(path(format!("/fulfil/{status}")))
                .respond_with(
                    ResponseTemplate::new(status)
                        .insert_header("Location", format!("{}/steal", elsewhere.uri())),
                )
                .mount(&fulfil)
                .await;
            let url = format!("{}/fulfil/{status}", fulfil.uri());
            let app = app_with_backend(&backend, &url).await;
            assert_eq!(order(&app).await, [FAILURE], "HTTP {status}");
            app.stop().await;
        }
        assert!(elsewhere.received_requests().await.unwrap().is_empty());
    })
    .await;
}

#[tokio::test]
async fn an_oversize_answer_is_not_read() {
    on_every_backend(|backend| async move {
        let mut huge = placed();
        huge["padding"] = json!("x".repeat(300 * 1024));
        let fulfil = MockServer::start().await;
        Mock::given(method("POST"))
            .respond_with(ResponseTemplate::new(200).set_body_json(huge))
            .mount(&fulfil)
            .await;
        let app = app_with_backend(&backend, &format!("{}/fulfil", fulfil.uri())).await;
        assert_eq!(order(&app).await, [FAILURE]);
        app.stop().await;
    })
    .await;
}
