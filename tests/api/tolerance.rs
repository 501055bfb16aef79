//! No event sinks a batch: every event of a signed body is stored, odd ones
//! kept as they came, and Meta's policy enforcement pauses a Page's sends.

use crate::helpers::*;
use crate::support::nlu::ScriptedNlu;
use lexbridge::store::now_ms;
use lexbridge::store::outbox::NewOutboxMessage;
use lexbridge::store::pauses::POLICY_BLOCK;
use serde_json::{json, Value};
use std::sync::Arc;
use wiremock::matchers::{method, path};
use wiremock::{Mock, ResponseTemplate};

/// An event about the Page alone: no sender.
fn policy(action: &str, timestamp: i64) -> Value {
    json!({"recipient": {"id": PAGE_ID}, "timestamp": timestamp,
           "policy_enforcement": {"action": action, "reason": "The bot violated our Platform Policies."}})
}

fn from(psid: &str, timestamp: i64, field: &str, value: Value) -> Value {
    let mut event =
        json!({"sender": {"id": psid}, "recipient": {"id": PAGE_ID}, "timestamp": timestamp});
    event[field] = value;
    event
}

fn message(page_id: &str, text: &str) -> NewOutboxMessage {
    NewOutboxMessage {
        page_id: page_id.into(),
        origin: "api",
        inbox_id: None,
        ..NewOutboxMessage::reply(page_id, "U1", 0, json!({"text": text}).to_string())
    }
}

#[tokio::test]
async fn odd_events_are_kept_and_the_good_ones_beside_them_answered() {
    on_every_backend(|backend| async move {
        let nlu = Arc::new(ScriptedNlu::default());
        let app = spawn_app_with(&backend, Some(nlu.clone())).await;
        mount_send(&app.graph).await;
        let body = webhook_body(&[(
            PAGE_ID,
            vec![
                policy("warning", 1),
                from(
                    "U1",
                    2,
                    "message_edit",
                    json!({"mid": "m.0", "text": "hi!", "num_edit": 1}),
                ),
                from(
                    "U1",
                    3,
                    "reaction",
                    json!({"reaction": "love", "action": "react", "mid": "m.0"}),
                ),
                from(
                    "U1",
                    4,
                    "response_feedback",
                    json!({"mid": "m.0", "feedback": "Good response"}),
                ),
                from("U1", 5, "brand_new_kind", json!({"anything": [1, 2]})),
                from("U2", 6, "message", json!("not an object")),
                // A NUL, which Postgres refuses in text, in an id.
                from("U4", 7, "message", json!({"mid": "m\u{0}x", "text": "hi"})),
                from(
                    "U4",
                    8,
                    "delivery",
                    json!({"mids": ["m\u{0}y"], "watermark": 1}),
                ),
                text_event("U3", "m.good", "is my car locked?"),
            ],
        )]);
        let response = app.post_signed_webhook(&body).await;
        assert_eq!(
            response.status(),
            200,
            "one odd event no longer sinks the POST"
        );
        assert_eq!(response.text().await.unwrap(), "EVENT_RECEIVED");

        let rows = app.inbox_settled().await;
        let kinds: Vec<_> = rows.iter().map(|r| r.kind.as_str()).collect();
        assert_eq!(
            kinds,
            [
                "policy_enforcement",
                "message_edit",
                "reaction",
                "response_feedback",
                "unrecognised",
                "unrecognised",
                "unrecognised",
                "unrecognised",
                "message"
            ]
        );
        assert!(
            rows.iter().all(|r| r.state == "done" && r.attempts == 1),
            "{rows:#?}"
        );
        assert_eq!(rows[0].psid, "", "policy enforcement names no person");
        assert_eq!(rows[4].outcome.as_deref(), Some("kept: unrecognised event"));
        assert_eq!(rows[8].outcome.as_deref(), Some("answered by scripted"));
        assert_eq!(nlu.calls(), 1, "only the message goes to the NLU");
        let sent = app.outbox_settled().await;
        assert_eq!(sent.len(), 1);
        assert_eq!(
            (sent[0].psid.as_str(), sent[0].state.as_str()),
            ("U3", "sent")
        );
        assert!(
            app.store
                .page_pause_reasons(PAGE_ID)
                .await
                .unwrap()
                .is_empty(),
            "a warning pauses nothing"
        );
        let text = app.metrics().await;
        assert!(
            text.contains("lexbridge_inbox_unrecognised_total 4\n"),
            "{text}"
        );
        assert!(
            text.contains("lexbridge_webhook_events_stored_total 9\n"),
            "{text}"
        );
        app.stop().await;
    })
    .await;
}

#[tokio::test]
async fn a_body_for_another_object_is_stored_with_its_object_not_refused() {
    on_every_backend(|backend| async move {
        let app = spawn_app(&backend).await;
        // Instagram is answered (tests/api/instagram.rs); an object the
        // service has no code for is kept.
        let body = json!({"object": "workplace_bot", "entry": [{"id": "W1", "time": 1, "messaging": [
            {"sender": {"id": "WSID"}, "recipient": {"id": "W1"}, "timestamp": 2,
             "message": {"mid": "w.1", "text": "hello from elsewhere"}}]}]});
        assert_eq!(app.post_signed_webhook(&body).await.status(), 200);
        assert_eq!(
            app.post_signed_webhook(&body).await.status(),
            200,
            "redelivered"
        );
        let rows = app.inbox_settled().await;
        assert_eq!(rows.len(), 1, "stored once");
        let row = &rows[0];
        assert_eq!(
            (
                row.object.as_str(),
                row.page_id.as_str(),
                row.psid.as_str(),
                row.kind.as_str()
            ),
            ("workplace_bot", "W1", "WSID", "message")
        );
        assert_eq!(row.state, "done");
        assert_eq!(
            row.outcome.as_deref(),
            Some("kept: \"workplace_bot\" events are not handled")
        );
        assert!(app.outbox().await.is_empty(), "nothing answered");
        let text = app.metrics().await;
        assert!(
            text.contains("lexbridge_inbox_other_object_total 1\n"),
            "{text}"
        );
        app.stop().await;
    })
    .await;
}

#[tokio::test]
async fn an_event_without_mid_or_sender_is_stored_once() {
    on_every_backend(|backend| async move {
        let app = spawn_app(&backend).await;
        let warning = webhook_body(&[(PAGE_ID, vec![policy("warning", 7)])]);
        for _ in 0..2 {
            assert_eq!(app.post_signed_webhook(&warning).await.status(), 200);
        }
        assert_eq!(app.inbox().await.len(), 1, "a redelivery stores nothing");
        let later = webhook_body(&[(PAGE_ID, vec![policy("warning", 8)])]);
        assert_eq!(app.post_signed_webhook(&later).await.status(), 200);
        let other_page = webhook_body(&[("2222", vec![policy("warning", 7)])]);
        assert_eq!(app.post_signed_webhook(&other_page).await.status(), 200);
        assert_eq!(app.inbox().await.len(), 3, "other events are new");
        let text = app.metrics().await;
        assert!(
            text.contains("lexbridge_webhook_events_duplicate_total 1\n"),
            "{text}"
        );
        app.stop().await;
    })
    .await;
}

#[tokio::test]
async fn a_policy_block_pauses_the_pages_sends_until_its_unblock() {
    on_every_backend(|backend| async move {
        let app = spawn_app(&backend).await;
        mount_send(&app.graph).await;
        // A second Page, never blocked, shows that claims go on around it.
        let cipher =
            lexbridge::crypto::TokenCipher::from_base64(&TOKEN_KEY.to_string().into()).unwrap();
        let sealed = cipher.encrypt(&"second-page-token".to_string().into());
        app.store
            .set_page("2222", None, &sealed, now_ms())
            .await
            .unwrap();
        Mock::given(method("POST"))
            .and(path("/v25.0/2222/messages"))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({"message_id": "m.2"})))
            .mount(&app.graph)
            .await;
        let blocked = app.store.clone();
        let paused = || async { blocked.page_pause_reasons(PAGE_ID).await.unwrap() };

        let block = webhook_body(&[(PAGE_ID, vec![policy("block", 1)])]);
        assert_eq!(app.post_signed_webhook(&block).await.status(), 200);
        wait_until("the block to pause the page", || async {
            !paused().await.is_empty()
        })
        .await;
        assert_eq!(paused().await, [POLICY_BLOCK]);

        // The blocked Page's message is older, and is passed over.
        app.store
            .enqueue(
                &[message(PAGE_ID, "waits"), message("2222", "goes")],
                now_ms(),
            )
            .await
            .unwrap();
        let sent_on_2222 = |n: usize| {
            let app = &app;
            async move {
                app.outbox()
                    .await
                    .iter()
                    .filter(|r| r.page_id == "2222" && r.state == "sent")
                    .count()
                    == n
            }
        };
        wait_until("the other page's message", || sent_on_2222(1)).await;
        let waiting = &app.outbox().await[0];
        assert_eq!((waiting.state.as_str(), waiting.attempts), ("queued", 0));
        let text = app.metrics().await;
        assert!(text.contains("lexbridge_paused_pages 1\n"), "{text}");
        assert!(
            text.contains("lexbridge_page_paused{page_id=\"1111\",reason=\"policy_block\"} 1\n"),
            "{text}"
        );
        assert!(
            text.contains("lexbridge_outbox_depth{state=\"queued\"} 1\n"),
            "{text}"
        );

        // Another reason holds the Page after the unblock clears its own.
        assert!(app
            .store
            .pause_page(PAGE_ID, "invalid_token", None, now_ms())
            .await
            .unwrap());
        let unblock = webhook_body(&[(PAGE_ID, vec![policy("unblock", 2)])]);
        assert_eq!(app.post_signed_webhook(&unblock).await.status(), 200);
        app.inbox_settled().await;
        assert_eq!(paused().await, ["invalid_token"]);
        app.store
            .enqueue(&[message("2222", "goes too")], now_ms())
            .await
            .unwrap();
        wait_until("the other page's second message", || sent_on_2222(2)).await;
        assert_eq!(app.outbox().await[0].state, "queued", "still paused");

        assert!(app
            .store
            .resume_page(PAGE_ID, "invalid_token")
            .await
            .unwrap());
        let rows = app.outbox_settled().await;
        assert_eq!((rows[0].state.as_str(), rows[0].attempts), ("sent", 1));
        // The block redelivered is the same event: it does not pause again.
        assert_eq!(app.post_signed_webhook(&block).await.status(), 200);
        assert_eq!(app.inbox_settled().await.len(), 2);
        assert!(paused().await.is_empty());
        assert!(app.metrics().await.contains("lexbridge_paused_pages 0\n"));
        app.stop().await;
    })
    .await;
}

#[tokio::test]
async fn pause_reasons_form_a_set_and_the_claim_skips_a_paused_page() {
    on_every_backend(|backend| async move {
        let app = quiet_app(&backend, &[]).await;
        let store = &app.store;
        store
            .enqueue(&[message(PAGE_ID, "hello")], now_ms())
            .await
            .unwrap();
        let claim = || async { app.claim_outbox_at(now_ms()).await.len() };

        assert!(store
            .pause_page(PAGE_ID, POLICY_BLOCK, Some("spam"), 1)
            .await
            .unwrap());
        assert!(
            !store
                .pause_page(PAGE_ID, POLICY_BLOCK, None, 2)
                .await
                .unwrap(),
            "already"
        );
        assert!(store
            .pause_page(PAGE_ID, "rate_limit", None, 3)
            .await
            .unwrap());
        assert_eq!(
            store.page_pause_reasons(PAGE_ID).await.unwrap(),
            ["policy_block", "rate_limit"]
        );
        let all = store.page_pauses().await.unwrap();
        assert_eq!(
            (all[0].detail.as_deref(), all[0].paused_at),
            (Some("spam"), 1)
        );
        assert!(store
            .pause_page(PAGE_ID, "Not A Reason", None, 4)
            .await
            .is_err());
        assert_eq!(claim().await, 0);

        assert!(store.resume_page(PAGE_ID, POLICY_BLOCK).await.unwrap());
        assert!(
            !store.resume_page(PAGE_ID, POLICY_BLOCK).await.unwrap(),
            "already cleared"
        );
        assert_eq!(
            store.page_pause_reasons(PAGE_ID).await.unwrap(),
            ["rate_limit"]
        );
        assert_eq!(claim().await, 0, "one reason left still pauses");

        assert!(store.resume_page(PAGE_ID, "rate_limit").await.unwrap());
        assert_eq!(claim().await, 1, "no reason left: the message goes");
        assert_eq!(app.outbox().await[0].state, "sending");
        app.stop().await;
    })
    .await;
}
