//! The outbound API: keys, validation, idempotency, the messaging window,
//! held messages, batches, send outcomes and receipts, the operator
//! commands and the OpenAPI document — on every backend.

use crate::helpers::*;
use crate::key_scopes::key_command;
use crate::support::nlu::ScriptedNlu;
use lexbridge::config::DatabaseSettings;
use lexbridge::outbound::cli::{api_key, send, ApiKeyCommand, SendArgs};
use lexbridge::outbound::keys;
use lexbridge::store::now_ms;
use lexbridge::store::outbox::NewOutboxMessage;
use lexbridge::store::writer::{Acceptance, Write};
use lexbridge::store::Store;
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::Duration;
use wiremock::matchers::{body_partial_json, method, path};
use wiremock::{Mock, ResponseTemplate};

const HOUR: i64 = 3_600_000;

/// An app answering with the echo NLU, and a fresh API key for it.
pub async fn api_app(backend: &Backend) -> (TestApp, String) {
    let app = spawn_app_with(backend, Some(Arc::new(ScriptedNlu::default()))).await;
    let key = new_key(&app, "billing").await;
    (app, key)
}

pub async fn new_key(app: &TestApp, name: &str) -> String {
    let key = keys::generate();
    let key = keys::reveal(&key).to_string();
    app.store
        .create_api_key(name, &keys::hash(&key), now_ms())
        .await
        .unwrap();
    key
}

/// An account linked to `psid`, who last wrote `ago` ms ago (or never).
pub async fn person(app: &TestApp, account: &str, psid: &str, ago: Option<i64>) {
    let now = now_ms();
    app.exec(&format!(
        "INSERT INTO accounts (id, fb_uid, name, created_at, updated_at)
         VALUES ('{account}', 'uid-{account}', 'Ada', {now}, {now})"
    ))
    .await;
    app.exec(&format!(
        "INSERT INTO links (page_id, psid, account_id, source, linked_at)
         VALUES ('{PAGE_ID}', '{psid}', '{account}', 'ids_for_pages', {now})"
    ))
    .await;
    if let Some(ago) = ago {
        app.exec(&format!(
            "INSERT INTO conversations (page_id, psid, last_inbound_at, updated_at)
             VALUES ('{PAGE_ID}', '{psid}', {}, {now})",
            now - ago
        ))
        .await;
    }
}

pub async fn post(app: &TestApp, route: &str, key: Option<&str>, body: &Value) -> (u16, Value) {
    post_with(app, route, key, None, &serde_json::to_vec(body).unwrap()).await
}

async fn post_with(
    app: &TestApp,
    route: &str,
    key: Option<&str>,
    idempotency_key: Option<&str>,
    body: &[u8],
) -> (u16, Value) {
    let mut request = app
        .http
        .post(format!("{}{route}", app.address))
        .header("Content-Type", "application/json")
        .body(body.to_vec());
    if let Some(key) = key {
        request = request.bearer_auth(key);
    }
    if let Some(k) = idempotency_key {
        request = request.header("Idempotency-Key", k);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

pub async fn status_of(app: &TestApp, key: &str, id: &str) -> Value {
    let response = app
        .http
        .get(format!("{}/api/v1/messages/{id}", app.address))
        .bearer_auth(key)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    response.json().await.unwrap()
}

async fn wait_for_status(app: &TestApp, key: &str, id: &str, wanted: &str) -> Value {
    wait_until(&format!("message {id} to be {wanted}"), || async {
        status_of(app, key, id).await["status"] == wanted
    })
    .await;
    status_of(app, key, id).await
}

pub fn ping(account: &str, text: &str) -> Value {
    json!({"to": {"account": account}, "message": {"text": text}})
}

#[tokio::test]
async fn requests_without_a_valid_key_are_refused_and_change_nothing() {
    on_every_backend(|backend| async move {
        let (app, key) = api_app(&backend).await;
        person(&app, "cust-1", "U1", Some(HOUR)).await;
        let revoked = new_key(&app, "old").await;
        app.store.revoke_api_key("old", now_ms()).await.unwrap();
        let body = serde_json::to_vec(&ping("cust-1", "hi")).unwrap();
        for (auth, reason) in [
            (None, "Bearer"),
            (Some("Basic dXNlcjpwYXNz".to_string()), "Bearer"),
            (Some("Bearer lxb_not-a-key".to_string()), "not known"),
            (Some(format!("Bearer {revoked}")), "revoked"),
        ] {
            let mut request = app
                .http
                .post(format!("{}/api/v1/messages", app.address))
                .body(body.clone());
            if let Some(auth) = &auth {
                request = request.header("Authorization", auth);
            }
            let response = request.send().await.unwrap();
            assert_eq!(response.status().as_u16(), 401, "{auth:?}");
            assert_eq!(response.headers()["www-authenticate"], "Bearer");
            let error: Value = response.json().await.unwrap();
            assert_eq!(error["error"], "unauthorized");
            assert!(
                error["message"].as_str().unwrap().contains(reason),
                "{error}"
            );
        }
        let get = app
            .http
            .get(format!("{}/api/v1/messages/msg_x", app.address))
            .send()
            .await
            .unwrap();
        assert_eq!(get.status().as_u16(), 401);
        assert!(app.outbox().await.is_empty());
        // The valid key still works.
        let (status, _) = post(&app, "/api/v1/messages", Some(&key), &ping("cust-1", "hi")).await;
        assert_eq!(status, 202);
        app.stop().await;
    })
    .await;
}

#[tokio::test]
async fn each_broken_rule_is_a_422_naming_the_field() {
    on_every_backend(|backend| async move {
        let (app, key) = api_app(&backend).await;
        person(&app, "cust-1", "U1", Some(HOUR)).await;
        let to = json!({"account": "cust-1"});
        let cases = [
            (json!({"to": to, "message": {"text": "x".repeat(2001)}}), "message.text"),
            (json!({"to": to, "message": {}}), "message"),
            (json!({"to": to, "message": {"text": 42}}), "message.text"),
            (json!({"to": {"account": "a", "uid": "b"}, "message": {"text": "x"}}), "to"),
            (
                json!({"to": to, "message": {"text": "x", "quick_replies":
                    (0..14).map(|i| json!({"title": format!("q{i}"), "payload": "p"})).collect::<Vec<_>>()}}),
                "message.quick_replies",
            ),
            (
                json!({"to": to, "message": {"text": "x", "quick_replies": [{"title": "t".repeat(21), "payload": "p"}]}}),
                "message.quick_replies[0].title",
            ),
            (
                json!({"to": to, "message": {"text": "x", "buttons": [{"type": "postback", "title": "Go", "payload": "p".repeat(1001)}]}}),
                "message.buttons[0].payload",
            ),
            (
                json!({"to": to, "message": {"text": "x", "buttons": [{"type": "web_url", "title": "Go", "url": "http://example.com"}]}}),
                "message.buttons[0].url",
            ),
            (
                json!({"to": to, "message": {"attachment": {"type": "image", "url": "http://example.com/a.png"}}}),
                "message.attachment.url",
            ),
            (
                json!({"to": to, "message": {"elements": (0..11).map(|i| json!({"title": format!("c{i}")})).collect::<Vec<_>>()}}),
                "message.elements",
            ),
            (
                json!({"to": to, "message": {"elements": [{"title": "c", "buttons": [
                    {"type": "postback", "title": "a", "payload": "A"}, {"type": "postback", "title": "b", "payload": "B"},
                    {"type": "postback", "title": "c", "payload": "C"}, {"type": "postback", "title": "d", "payload": "D"}]}]}}),
                "message.elements[0].buttons",
            ),
            (
                json!({"to": to, "message": {"elements": [{"title": "t".repeat(81)}]}}),
                "message.elements[0].title",
            ),
            (json!({"to": to, "message": {"text": "x"}, "tag": "CONFIRMED_EVENT_UPDATE"}), "tag"),
            (json!({"to": to, "message": {"text": "x"}, "if_outside_window": "hold", "hold_until": "soon"}), "hold_until"),
            (json!({"to": to, "message": {"text": "x"}, "priority": "high"}), "priority"),
        ];
        for (body, field) in cases {
            let (status, error) = post(&app, "/api/v1/messages", Some(&key), &body).await;
            assert_eq!(status, 422, "{body}");
            assert_eq!(error["error"], "invalid_request", "{error}");
            assert_eq!(error["field"], field, "{error}");
        }
        let (status, error) = post_with(&app, "/api/v1/messages", Some(&key), None, b"{not json").await;
        assert_eq!(status, 400);
        assert_eq!(error["error"], "malformed_json");
        let (_, error) = post(
            &app,
            "/api/v1/messages",
            Some(&key),
            &json!({"to": to, "message": {"text": "x"}, "tag": "ACCOUNT_UPDATE"}),
        )
        .await;
        assert!(
            error["message"].as_str().unwrap().contains("withdrawn by Meta in April 2026"),
            "{error}"
        );
        let huge = vec![b' '; 70 << 10];
        let (status, error) = post_with(&app, "/api/v1/messages", Some(&key), None, &huge).await;
        assert_eq!(status, 413);
        assert_eq!(error["error"], "body_too_large");
        assert!(app.outbox().await.is_empty());
        app.stop().await;
    })
    .await;
}

#[tokio::test]
async fn unknown_and_unlinked_recipients_are_404_with_the_reason() {
    on_every_backend(|backend| async move {
        let (app, key) = api_app(&backend).await;
        let now = now_ms();
        app.exec(&format!(
            "INSERT INTO accounts (id, fb_uid, created_at, updated_at) VALUES ('lonely', 'uid-l', {now}, {now})"
        ))
        .await;
        let (status, error) = post(&app, "/api/v1/messages", Some(&key), &ping("nobody", "hi")).await;
        assert_eq!((status, error["error"].as_str()), (404, Some("recipient_not_found")));
        let (status, error) = post(&app, "/api/v1/messages", Some(&key), &ping("lonely", "hi")).await;
        assert_eq!((status, error["error"].as_str()), (404, Some("recipient_not_linked")));
        let body = json!({"to": {"uid": "uid-nobody"}, "message": {"text": "hi"}});
        let (status, _) = post(&app, "/api/v1/messages", Some(&key), &body).await;
        assert_eq!(status, 404);
        let body = json!({"to": {"psid": "U-never"}, "message": {"text": "hi"}});
        let (status, error) = post(&app, "/api/v1/messages", Some(&key), &body).await;
        assert_eq!(status, 404);
        assert!(error["message"].as_str().unwrap().contains("U-never"), "{error}");
        assert!(app.outbox().await.is_empty());
        app.stop().await;
    })
    .await;
}

#[tokio::test]
async fn the_window_decides_update_human_agent_or_refusal() {
    on_every_backend(|backend| async move {
        let (app, key) = api_app(&backend).await;
        mount_send(&app.graph).await;
        person(&app, "inside", "U-in", Some(23 * HOUR)).await;
        person(&app, "agent", "U-agent", Some(6 * 24 * HOUR)).await;
        person(&app, "gone", "U-gone", Some(8 * 24 * HOUR)).await;
        person(&app, "silent", "U-silent", None).await;

        let (status, inside) = post(&app, "/api/v1/messages", Some(&key), &ping("inside", "bill ready")).await;
        assert_eq!(status, 202, "{inside}");
        assert_eq!(inside["status"], "queued");
        assert_eq!(inside["messaging_type"], "UPDATE");
        let sent = wait_for_status(&app, &key, inside["id"].as_str().unwrap(), "sent").await;
        assert_eq!(sent["message_id"], "m.out");
        assert_eq!(sent["attempts"], 1);
        assert_eq!(sent["psid"], "U-in");

        let untagged = ping("agent", "Anna here, about your ticket");
        let (status, error) = post(&app, "/api/v1/messages", Some(&key), &untagged).await;
        assert_eq!(status, 422);
        assert_eq!(error["error"], "outside_messaging_window");
        assert!(error["window_closed_at"].is_string(), "{error}");
        let mut tagged = untagged.clone();
        tagged["tag"] = json!("HUMAN_AGENT");
        let (status, agent) = post(&app, "/api/v1/messages", Some(&key), &tagged).await;
        assert_eq!(status, 202);
        assert_eq!((agent["messaging_type"].as_str(), agent["tag"].as_str()), (Some("MESSAGE_TAG"), Some("HUMAN_AGENT")));
        wait_for_status(&app, &key, agent["id"].as_str().unwrap(), "sent").await;

        let mut late = ping("gone", "hello?");
        late["tag"] = json!("HUMAN_AGENT");
        let (status, error) = post(&app, "/api/v1/messages", Some(&key), &late).await;
        assert_eq!((status, error["error"].as_str()), (422, Some("outside_messaging_window")));
        let (status, error) = post(&app, "/api/v1/messages", Some(&key), &ping("silent", "hi")).await;
        assert_eq!((status, error["error"].as_str()), (422, Some("outside_messaging_window")));
        assert!(error.get("window_closed_at").is_none(), "{error}");

        let bodies = sent_bodies(&app.graph).await;
        assert_eq!(bodies.len(), 2);
        assert_eq!(bodies[0], json!({"recipient": {"id": "U-in"}, "messaging_type": "UPDATE", "message": {"text": "bill ready"}}));
        assert_eq!(bodies[1]["messaging_type"], "MESSAGE_TAG");
        assert_eq!(bodies[1]["tag"], "HUMAN_AGENT");
        app.stop().await;
    })
    .await;
}

#[tokio::test]
async fn a_held_message_goes_when_the_person_writes_before_the_reply() {
    on_every_backend(|backend| async move {
        let (app, key) = api_app(&backend).await;
        mount_send(&app.graph).await;
        person(&app, "cust-1", "U1", Some(30 * HOUR)).await;
        let mut body = ping("cust-1", "Your car is unlocked");
        body["if_outside_window"] = json!("hold");
        let (status, held) = post(&app, "/api/v1/messages", Some(&key), &body).await;
        assert_eq!(status, 202, "{held}");
        assert_eq!(held["status"], "held");
        assert!(held["hold_until"].is_string());
        let id = held["id"].as_str().unwrap().to_string();
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(status_of(&app, &key, &id).await["status"], "held");
        assert!(sent_bodies(&app.graph).await.is_empty());

        app.post_signed_webhook(&text_message("U1", "m.in.1", "hello"))
            .await;
        let sent = wait_for_status(&app, &key, &id, "sent").await;
        assert_eq!(sent["messaging_type"], "UPDATE");
        app.outbox_settled().await;
        let texts: Vec<Value> = sent_bodies(&app.graph)
            .await
            .into_iter()
            .filter_map(|b| b.get("message").cloned())
            .collect();
        assert_eq!(
            texts,
            [
                json!({"text": "Your car is unlocked"}),
                json!({"text": "echo: hello"})
            ]
        );
        app.stop().await;
    })
    .await;
}

#[tokio::test]
async fn a_held_message_expires_at_hold_until() {
    on_every_backend(|backend| async move {
        let (app, key) = api_app(&backend).await;
        mount_send(&app.graph).await;
        person(&app, "cust-1", "U1", Some(30 * HOUR)).await;
        let mut body = ping("cust-1", "only today");
        body["if_outside_window"] = json!("hold");
        let soon = lexbridge::outbound::time::format_timestamp(now_ms() + 1500);
        body["hold_until"] = json!(soon);
        let (status, held) = post(&app, "/api/v1/messages", Some(&key), &body).await;
        assert_eq!(status, 202, "{held}");
        let id = held["id"].as_str().unwrap();
        let expired = wait_for_status(&app, &key, id, "expired").await;
        assert_eq!(expired["hold_until"], soon);
        // Writing after the expiry sends nothing but the reply.
        app.post_signed_webhook(&text_message("U1", "m.in.2", "hi"))
            .await;
        app.inbox_settled().await;
        app.outbox_settled().await;
        assert_eq!(status_of(&app, &key, id).await["status"], "expired");
        let texts: Vec<Value> = sent_bodies(&app.graph)
            .await
            .into_iter()
            .filter_map(|b| b.get("message").cloned())
            .collect();
        assert_eq!(texts, [json!({"text": "echo: hi"})]);
        app.stop().await;
    })
    .await;
}

#[tokio::test]
async fn an_idempotency_key_replays_the_first_answer_or_conflicts() {
    on_every_backend(|backend| async move {
        let (app, key) = api_app(&backend).await;
        let other_key = new_key(&app, "iot").await;
        mount_send(&app.graph).await;
        person(&app, "cust-1", "U1", Some(HOUR)).await;
        let first = br#"{"to": {"account": "cust-1"}, "message": {"text": "Invoice 7 is ready"}}"#;
        let same = br#"{"message":{"text":"Invoice 7 is ready"},"to":{"account":"cust-1"}}"#;
        let (s1, a1) = post_with(&app, "/api/v1/messages", Some(&key), Some("inv-7"), first).await;
        let (s2, a2) = post_with(&app, "/api/v1/messages", Some(&key), Some("inv-7"), same).await;
        assert_eq!((s1, s2), (202, 202));
        assert_eq!(a1, a2);
        assert_eq!(app.outbox().await.len(), 1);
        let other = br#"{"to": {"account": "cust-1"}, "message": {"text": "Invoice 8 is ready"}}"#;
        let (s3, a3) = post_with(&app, "/api/v1/messages", Some(&key), Some("inv-7"), other).await;
        assert_eq!(
            (s3, a3["error"].as_str()),
            (409, Some("idempotency_conflict"))
        );
        // Keys belong to their API key: another caller's "inv-7" is new.
        let (s4, a4) = post_with(
            &app,
            "/api/v1/messages",
            Some(&other_key),
            Some("inv-7"),
            other,
        )
        .await;
        assert_eq!(s4, 202);
        assert_ne!(a4["id"], a1["id"]);
        // A refusal that depends on stored state is replayed too.
        let missing = br#"{"to": {"account": "later"}, "message": {"text": "hi"}}"#;
        // A key first used with an invalid body stays bound to that body.
        let invalid = br#"{"to": {"account": "cust-1"}, "message": {"text": ""}}"#;
        let (s7, _) = post_with(&app, "/api/v1/messages", Some(&key), Some("k-422"), invalid).await;
        let (s8, a8) = post_with(&app, "/api/v1/messages", Some(&key), Some("k-422"), first).await;
        assert_eq!(
            (s7, s8, a8["error"].as_str()),
            (422, 409, Some("idempotency_conflict"))
        );
        let (s5, _) = post_with(&app, "/api/v1/messages", Some(&key), Some("k-404"), missing).await;
        person(&app, "later", "U-later", Some(HOUR)).await;
        let (s6, _) = post_with(&app, "/api/v1/messages", Some(&key), Some("k-404"), missing).await;
        assert_eq!((s5, s6), (404, 404));
        // Concurrent repeats of one key store one message.
        let body = br#"{"to": {"account": "cust-1"}, "message": {"text": "once"}}"#;
        let answers = futures_util::future::join_all(
            (0..8).map(|_| post_with(&app, "/api/v1/messages", Some(&key), Some("race"), body)),
        )
        .await;
        let ids: std::collections::BTreeSet<String> = answers
            .iter()
            .map(|(s, a)| {
                assert_eq!(*s, 202, "{a}");
                a["id"].as_str().unwrap().to_string()
            })
            .collect();
        assert_eq!(ids.len(), 1);
        let onces = app
            .outbox()
            .await
            .iter()
            .filter(|r| r.body.contains("once"))
            .count();
        assert_eq!(onces, 1);
        app.stop().await;
    })
    .await;
}

#[tokio::test]
async fn a_batch_answers_each_message_on_its_own() {
    on_every_backend(|backend| async move {
        let (app, key) = api_app(&backend).await;
        mount_send(&app.graph).await;
        person(&app, "a", "U-a", Some(HOUR)).await;
        person(&app, "b", "U-b", Some(30 * HOUR)).await;
        let batch = json!({"messages": [
            ping("a", "one"),
            {"to": {"account": "a"}, "message": {"text": ""}},
            ping("nobody", "three"),
            ping("b", "four"),
            {"to": {"account": "b"}, "message": {"text": "five"}, "if_outside_window": "hold"},
            ping("a", "six"),
            // Refused alone, not the batch's failure (Postgres refuses NUL).
            ping("a\u{0}", "seven"),
        ]});
        let (status, answer) = post(&app, "/api/v1/messages/batch", Some(&key), &batch).await;
        assert_eq!(status, 200, "{answer}");
        let statuses: Vec<u64> = answer["results"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["http_status"].as_u64().unwrap())
            .collect();
        assert_eq!(statuses, [202, 422, 404, 422, 202, 202, 422]);
        assert_eq!(
            (answer["accepted"].as_u64(), answer["refused"].as_u64()),
            (Some(3), Some(4))
        );
        assert_eq!(answer["results"][1]["field"], "messages[1].message.text");
        assert_eq!(answer["results"][3]["error"], "outside_messaging_window");
        assert_eq!(answer["results"][4]["status"], "held");
        let rows = app.outbox_settled().await;
        let states: Vec<&str> = rows.iter().map(|r| r.state.as_str()).collect();
        assert_eq!(states, ["sent", "held", "sent"]);
        let texts: Vec<String> = sent_bodies(&app.graph)
            .await
            .iter()
            .map(|b| b["message"]["text"].as_str().unwrap().to_string())
            .collect();
        assert_eq!(texts, ["one", "six"]);

        let too_many = json!({"messages": vec![ping("a", "x"); 1001]});
        let (status, error) = post(&app, "/api/v1/messages/batch", Some(&key), &too_many).await;
        assert_eq!((status, error["field"].as_str()), (422, Some("messages")));
        let (status, error) =
            post(&app, "/api/v1/messages/batch", Some(&key), &ping("a", "x")).await;
        assert_eq!(
            (status, error["error"].as_str()),
            (422, Some("invalid_request"))
        );
        assert_eq!(app.outbox().await.len(), 3);
        app.stop().await;
    })
    .await;
}

#[tokio::test]
async fn send_errors_are_retried_or_reported_in_the_status() {
    on_every_backend(|backend| async move {
        let (app, key) = api_app(&backend).await;
        person(&app, "flaky", "U-flaky", Some(HOUR)).await;
        person(&app, "blocked", "U-blocked", Some(HOUR)).await;
        person(&app, "outside", "U-outside", Some(HOUR)).await;
        let error = |status: u16, code: i64, subcode: Option<i64>, message: &str| {
            ResponseTemplate::new(status).set_body_json(json!({"error": {
                "message": message, "type": "OAuthException", "code": code,
                "error_subcode": subcode, "fbtrace_id": "Trace1"}}))
        };
        Mock::given(method("POST"))
            .and(path(SEND_PATH))
            .and(body_partial_json(json!({"recipient": {"id": "U-flaky"}})))
            .respond_with(error(500, 2, None, "Service temporarily unavailable"))
            .up_to_n_times(2)
            .mount(&app.graph)
            .await;
        Mock::given(method("POST"))
            .and(path(SEND_PATH))
            .and(body_partial_json(json!({"recipient": {"id": "U-blocked"}})))
            .respond_with(error(
                400,
                551,
                None,
                "This person isn't available right now.",
            ))
            .expect(1)
            .mount(&app.graph)
            .await;
        Mock::given(method("POST"))
            .and(path(SEND_PATH))
            .and(body_partial_json(json!({"recipient": {"id": "U-outside"}})))
            .respond_with(error(
                400,
                10,
                Some(2018278),
                "This message is sent outside of allowed window.",
            ))
            .expect(1)
            .mount(&app.graph)
            .await;
        mount_send(&app.graph).await;

        let (_, flaky) = post(&app, "/api/v1/messages", Some(&key), &ping("flaky", "a")).await;
        let (_, blocked) = post(&app, "/api/v1/messages", Some(&key), &ping("blocked", "b")).await;
        let (_, outside) = post(&app, "/api/v1/messages", Some(&key), &ping("outside", "c")).await;
        let flaky = wait_for_status(&app, &key, flaky["id"].as_str().unwrap(), "sent").await;
        assert_eq!(flaky["attempts"], 3);
        assert!(flaky.get("error").is_none(), "{flaky}");
        let blocked = wait_for_status(&app, &key, blocked["id"].as_str().unwrap(), "failed").await;
        assert_eq!(blocked["attempts"], 1);
        assert_eq!(blocked["error"]["code"], 551);
        assert_eq!(
            blocked["error"]["message"],
            "This person isn't available right now."
        );
        let outside = wait_for_status(&app, &key, outside["id"].as_str().unwrap(), "failed").await;
        assert_eq!(
            (
                outside["error"]["code"].as_i64(),
                outside["error"]["subcode"].as_i64()
            ),
            (Some(10), Some(2018278))
        );
        let response = app
            .http
            .get(format!("{}/api/v1/messages/msg_unknown", app.address))
            .bearer_auth(&key)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), 404);
        // An id with a NUL in it (which Postgres refuses in text) too.
        let response = app
            .http
            .get(format!("{}/api/v1/messages/msg_%00x", app.address))
            .bearer_auth(&key)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), 404);
        app.stop().await;
    })
    .await;
}

#[tokio::test]
async fn delivery_and_read_receipts_move_a_ping_to_delivered_then_read() {
    on_every_backend(|backend| async move {
        let (app, key) = api_app(&backend).await;
        Mock::given(method("POST")).and(path(SEND_PATH)).respond_with(
            ResponseTemplate::new(200).set_body_json(json!({"recipient_id": "U1", "message_id": "m.ping"})),
        ).mount(&app.graph).await;
        person(&app, "cust-1", "U1", Some(HOUR)).await;
        let (_, accepted) = post(&app, "/api/v1/messages", Some(&key), &ping("cust-1", "hi")).await;
        let id = accepted["id"].as_str().unwrap();
        wait_for_status(&app, &key, id, "sent").await;
        let delivery = json!({"sender": {"id": "U1"}, "recipient": {"id": PAGE_ID}, "timestamp": now_ms(),
                              "delivery": {"mids": ["m.ping"], "watermark": 1}});
        app.post_signed_webhook(&webhook_body(&[(PAGE_ID, vec![delivery])])).await;
        wait_for_status(&app, &key, id, "delivered").await;
        let read = json!({"sender": {"id": "U1"}, "recipient": {"id": PAGE_ID}, "timestamp": now_ms(),
                          "read": {"watermark": now_ms() + 1000}});
        app.post_signed_webhook(&webhook_body(&[(PAGE_ID, vec![read])])).await;
        wait_for_status(&app, &key, id, "read").await;
        app.stop().await;
    })
    .await;
}

#[tokio::test]
async fn operators_manage_keys_and_send_through_the_same_rules() {
    on_every_backend(|backend| async move {
        let (app, _) = api_app(&backend).await;
        mount_send(&app.graph).await;
        person(&app, "cust-1", "U1", Some(HOUR)).await;
        person(&app, "cust-2", "U2", Some(40 * HOUR)).await;
        let mut out = Vec::new();
        api_key(
            &app.store,
            key_command(&["create", "--name", "iot"]),
            &mut out,
        )
        .await
        .unwrap();
        let created = String::from_utf8(out).unwrap();
        let new_key = created.trim();
        assert!(new_key.starts_with("lxb_"));
        let again = api_key(&app.store, key_command(&["create", "iot"]), &mut Vec::new()).await;
        assert!(again.unwrap_err().to_string().contains("exists already"));
        let bad = api_key(
            &app.store,
            key_command(&["create", "no spaces"]),
            &mut Vec::new(),
        )
        .await;
        assert!(bad.is_err());

        let (status, _) = post(
            &app,
            "/api/v1/messages",
            Some(new_key),
            &ping("cust-1", "hi"),
        )
        .await;
        assert_eq!(status, 202);
        wait_until("the key's use to be recorded", || async {
            // The use is written back on the next refresh (at most a second).
            let _ = post(&app, "/api/v1/messages", Some(new_key), &json!({})).await;
            app.store
                .api_keys()
                .await
                .unwrap()
                .iter()
                .any(|k| k.name == "iot" && k.last_used_at.is_some())
        })
        .await;
        let mut out = Vec::new();
        api_key(&app.store, ApiKeyCommand::List, &mut out)
            .await
            .unwrap();
        let listed = String::from_utf8(out).unwrap();
        assert!(
            listed.contains("billing") && listed.contains("iot"),
            "{listed}"
        );
        assert!(!listed.contains(new_key), "a listing never shows a key");

        api_key(
            &app.store,
            ApiKeyCommand::Revoke { name: "iot".into() },
            &mut Vec::new(),
        )
        .await
        .unwrap();
        wait_until("the revocation to take effect", || async {
            post(
                &app,
                "/api/v1/messages",
                Some(new_key),
                &ping("cust-1", "hi"),
            )
            .await
            .0 == 401
        })
        .await;
        assert!(api_key(
            &app.store,
            ApiKeyCommand::Revoke {
                name: "nope".into()
            },
            &mut Vec::new()
        )
        .await
        .is_err());
        // A revoked key keeps its name, and the refusal says so.
        let again = api_key(&app.store, key_command(&["create", "iot"]), &mut Vec::new()).await;
        let said = again.unwrap_err().to_string();
        assert!(said.contains("revoked keys keep their names"), "{said}");

        // `lexbridge send` runs in a process of its own, with its own pool.
        let cli = Store::connect(&DatabaseSettings::new(app.db.url.clone()))
            .await
            .unwrap();
        let args = |to: &str, text: &str| SendArgs {
            to: to.into(),
            human_agent: false,
            hold: false,
            hold_until: None,
            text: text.into(),
        };
        let mut out = Vec::new();
        send(
            &cli,
            PAGE_ID,
            args("account:cust-1", "from the CLI"),
            &mut out,
        )
        .await
        .unwrap();
        let answer: Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(answer["status"], "queued");
        let refused = send(
            &cli,
            PAGE_ID,
            args("account:cust-2", "too late"),
            &mut Vec::new(),
        )
        .await;
        assert!(refused.is_err());
        let mut hold = args("psid:U2", "later");
        hold.hold = true;
        send(&cli, PAGE_ID, hold, &mut Vec::new()).await.unwrap();
        assert!(send(&cli, PAGE_ID, args("email:x", "hi"), &mut Vec::new())
            .await
            .is_err());
        let no_page = send(&cli, "", args("psid:U2", "hi"), &mut Vec::new()).await;
        assert!(no_page
            .unwrap_err()
            .to_string()
            .contains("set FACEBOOK_PAGE_ID or write psid:U2@PAGE_ID"));
        cli.close().await;
        wait_until("the CLI's message to be sent", || async {
            app.outbox()
                .await
                .iter()
                .any(|r| r.body.contains("from the CLI") && r.state == "sent")
        })
        .await;
        let held = app
            .outbox()
            .await
            .into_iter()
            .filter(|r| r.state == "held")
            .count();
        assert_eq!(held, 1);
        app.stop().await;
    })
    .await;
}

#[tokio::test]
async fn the_openapi_document_describes_the_api() {
    let app = spawn_app(&Backend::Sqlite).await;
    let spec: Value = app
        .http
        .get(format!("{}/api/v1/openapi.json", app.address))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(spec["openapi"].as_str().unwrap().starts_with("3."));
    for route in [
        "/api/v1/messages",
        "/api/v1/messages/batch",
        "/api/v1/messages/{id}",
    ] {
        assert!(spec["paths"][route].is_object(), "{route} is described");
    }
    assert!(spec["components"]["schemas"]["MessageRequest"].is_object());
    assert!(spec["components"]["schemas"]["ElementSpec"]["properties"]["buttons"].is_object());
    assert_eq!(
        spec["components"]["securitySchemes"]["api_key"]["scheme"],
        "bearer"
    );
    app.stop().await;
}

#[tokio::test]
async fn a_message_held_while_the_person_writes_goes_at_once() {
    on_every_backend(|backend| async move {
        let (app, key) = api_app(&backend).await;
        mount_send(&app.graph).await;
        // Judged outside the window, committed after the person wrote.
        person(&app, "cust-1", "U1", Some(HOUR)).await;
        let billing = app.store.api_keys().await.unwrap()[0].id;
        let held = NewOutboxMessage {
            page_id: PAGE_ID.into(),
            psid: "U1".into(),
            body: json!({"message": {"text": "raced"}}).to_string(),
            messaging_type: "UPDATE".into(),
            tag: None,
            origin: "api",
            inbox_id: None,
            state: lexbridge::store::outbox::OutboxState::Held,
            public_id: Some("msg_raced".into()),
            api_key_id: Some(billing),
            hold_until: Some(now_ms() + HOUR),
            window: None,
        };
        let accepted = Acceptance {
            messages: vec![held],
            remember: None,
        };
        app.writer
            .write(Write::Accept(Box::new(accepted)))
            .await
            .unwrap();
        wait_for_status(&app, &key, "msg_raced", "sent").await;
        app.stop().await;
    })
    .await;
}

#[tokio::test]
async fn a_status_is_visible_only_to_the_key_that_sent_it() {
    on_every_backend(|backend| async move {
        let (app, key) = api_app(&backend).await;
        let other = new_key(&app, "iot").await;
        person(&app, "cust-1", "U1", Some(HOUR)).await;
        let (_, accepted) = post(&app, "/api/v1/messages", Some(&key), &ping("cust-1", "hi")).await;
        let id = accepted["id"].as_str().unwrap();
        let response = app
            .http
            .get(format!("{}/api/v1/messages/{id}", app.address))
            .bearer_auth(&other)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), 404);
        assert_eq!(status_of(&app, &key, id).await["id"], id);
        app.stop().await;
    })
    .await;
}

/// Cards, buttons and media reach the Send API in Messenger's shapes.
#[tokio::test]
async fn cards_buttons_and_media_are_sent_as_templates_and_attachments() {
    on_every_backend(|backend| async move {
        let (app, key) = api_app(&backend).await;
        mount_send(&app.graph).await;
        person(&app, "cust-1", "U1", Some(HOUR)).await;
        let to = json!({"account": "cust-1"});
        let messages = [
            json!({"to": to, "message": {"elements": [
                {"title": "Model 3", "subtitle": "Charged 82%", "image_url": "https://cdn.test/car.png",
                 "buttons": [{"type": "postback", "title": "Lock", "payload": "LOCK"}]},
                {"title": "Home charger", "buttons": [{"type": "web_url", "title": "Open", "url": "https://example.com/c"}]}]}}),
            json!({"to": to, "message": {"text": "Lock it?", "buttons": [{"type": "postback", "title": "Yes", "payload": "YES"}]}}),
            json!({"to": to, "message": {"attachment": {"type": "video", "url": "https://cdn.test/how.mp4"}}}),
        ];
        for body in &messages {
            let (status, answer) = post(&app, "/api/v1/messages", Some(&key), body).await;
            assert_eq!(status, 202, "{answer}");
            wait_for_status(&app, &key, answer["id"].as_str().unwrap(), "sent").await;
        }
        let sent: Vec<Value> = sent_bodies(&app.graph).await.into_iter().map(|b| b["message"].clone()).collect();
        assert_eq!(
            sent[0],
            json!({"attachment": {"type": "template", "payload": {"template_type": "generic", "elements": [
                {"title": "Model 3", "subtitle": "Charged 82%", "image_url": "https://cdn.test/car.png",
                 "buttons": [{"type": "postback", "title": "Lock", "payload": "LOCK"}]},
                {"title": "Home charger", "buttons": [{"type": "web_url", "title": "Open", "url": "https://example.com/c"}]}]}}})
        );
        assert_eq!(sent[1]["attachment"]["payload"]["template_type"], "button");
        assert_eq!(
            sent[2],
            json!({"attachment": {"type": "video", "payload": {"url": "https://cdn.test/how.mp4", "is_reusable": true}}})
        );
        app.stop().await;
    })
    .await;
}

/// A reaction to a message, or an m.me link into the conversation, opens
/// Meta's standard messaging window as a message does: what was held for
/// the person goes, and a message with the default rule is accepted.
#[tokio::test]
async fn a_reaction_or_an_m_me_link_opens_the_window_as_a_message_does() {
    on_every_backend(|backend| async move {
        let (app, key) = api_app(&backend).await;
        mount_send(&app.graph).await;
        person(&app, "a", "U-a", Some(30 * HOUR)).await;
        person(&app, "b", "U-b", Some(30 * HOUR)).await;
        for account in ["a", "b"] {
            let hold = json!({"to": {"account": account}, "message": {"text": "Invoice"},
                              "if_outside_window": "hold"});
            let (status, held) = post(&app, "/api/v1/messages", Some(&key), &hold).await;
            assert_eq!((status, held["status"].as_str()), (202, Some("held")), "{held}");
            let (status, _) = post(&app, "/api/v1/messages", Some(&key), &ping(account, "x")).await;
            assert_eq!(status, 422, "outside the window");
        }
        let react = json!({"sender": {"id": "U-a"}, "recipient": {"id": PAGE_ID}, "timestamp": now_ms(),
                           "reaction": {"mid": "m.sent", "action": "react", "reaction": "love"}});
        let opened = json!({"sender": {"id": "U-b"}, "recipient": {"id": PAGE_ID}, "timestamp": now_ms(),
                            "referral": {"ref": "spring-poster", "source": "SHORTLINK", "type": "OPEN_THREAD"}});
        let body = webhook_body(&[(PAGE_ID, vec![react, opened])]);
        assert_eq!(app.post_signed_webhook(&body).await.status(), 200);
        app.inbox_settled().await;
        let rows = app.outbox_settled().await;
        let states: Vec<_> = rows.iter().map(|r| (r.psid.as_str(), r.state.as_str())).collect();
        assert_eq!(states, [("U-a", "sent"), ("U-b", "sent")], "{rows:?}");
        for account in ["a", "b"] {
            let (status, accepted) =
                post(&app, "/api/v1/messages", Some(&key), &ping(account, "now")).await;
            assert_eq!(status, 202, "{accepted}");
        }
        app.stop().await;
    })
    .await;
}
