//! A paused Page: policy events apply in the order Meta made them (a block
//! redelivered after its unblock does not pause the Page for good), and a
//! paused Page sends nothing, sender actions included.

use crate::helpers::*;
use crate::lex::spawn_lex_app;
use lexbridge::store::now_ms;
use lexbridge::store::pauses::POLICY_BLOCK;
use serde_json::{json, Value};

fn policy(action: &str, timestamp: i64) -> Value {
    json!({"recipient": {"id": PAGE_ID}, "timestamp": timestamp,
           "policy_enforcement": {"action": action, "reason": "The bot violated our Platform Policies."}})
}

/// Posts one policy event and waits for it to be handled; its outcome.
async fn meta_sends(app: &TestApp, action: &str, timestamp: i64) -> String {
    let body = webhook_body(&[(PAGE_ID, vec![policy(action, timestamp)])]);
    assert_eq!(app.post_signed_webhook(&body).await.status(), 200);
    let rows = app.inbox_settled().await;
    let row = rows.last().unwrap();
    assert_eq!(row.state, "done");
    row.outcome.clone().unwrap_or_default()
}

async fn paused(app: &TestApp) -> Vec<String> {
    app.store.page_pause_reasons(PAGE_ID).await.unwrap()
}

#[tokio::test]
async fn a_block_older_than_its_unblock_does_not_pause_the_page() {
    on_every_backend(|backend| async move {
        let app = spawn_app(&backend).await;
        mount_send(&app.graph).await;
        // Meta's unblock arrives first, then the block it lifted, late.
        meta_sends(&app, "unblock", 2_000).await;
        let outcome = meta_sends(&app, "block", 1_000).await;
        assert!(outcome.starts_with("ignored"), "{outcome}");
        assert!(paused(&app).await.is_empty(), "the stale block is ignored");
        app.store
            .enqueue(&[queued_message("sent")], now_ms())
            .await
            .unwrap();
        assert_eq!(app.outbox_settled().await[0].state, "sent");

        // A later block pauses; an unblock older than it does not lift it.
        meta_sends(&app, "block", 3_000).await;
        assert_eq!(paused(&app).await, [POLICY_BLOCK]);
        let outcome = meta_sends(&app, "unblock", 2_500).await;
        assert!(outcome.starts_with("ignored"), "{outcome}");
        assert_eq!(paused(&app).await, [POLICY_BLOCK], "still blocked");
        meta_sends(&app, "unblock", 4_000).await;
        assert!(paused(&app).await.is_empty());
        assert_eq!(
            app.store
                .latest_pause_event(PAGE_ID, POLICY_BLOCK)
                .await
                .unwrap(),
            Some(4_000)
        );
        app.stop().await;
    })
    .await;
}

fn queued_message(text: &str) -> lexbridge::store::outbox::NewOutboxMessage {
    lexbridge::store::outbox::NewOutboxMessage {
        origin: "api",
        inbox_id: None,
        ..lexbridge::store::outbox::NewOutboxMessage::reply(
            PAGE_ID,
            "U1",
            0,
            json!({"text": text}).to_string(),
        )
    }
}

fn sender_actions(sends: &[Value]) -> Vec<String> {
    let mut actions: Vec<String> = sends
        .iter()
        .filter_map(|b| b["sender_action"].as_str().map(str::to_string))
        .collect();
    actions.sort_unstable();
    actions
}

#[tokio::test]
async fn a_paused_page_shows_no_typing_and_marks_nothing_seen() {
    on_every_backend(|backend| async move {
        let (app, _lex) = spawn_lex_app(&backend, &[("MESSENGER_TYPING_AFTER_MS", "0")]).await;
        app.store
            .pause_page(PAGE_ID, POLICY_BLOCK, None, now_ms())
            .await
            .unwrap();
        app.post_signed_webhook(&text_message("U1", "m.1", "hello"))
            .await;
        app.inbox_settled().await;
        assert_eq!(app.outbox().await[0].state, "queued", "the reply waits");
        assert!(
            sender_actions(&sent_bodies(&app.graph).await).is_empty(),
            "no sender action while paused"
        );

        // Resumed, the Page shows them again, and the reply goes.
        app.store.resume_page(PAGE_ID, POLICY_BLOCK).await.unwrap();
        app.post_signed_webhook(&text_message("U1", "m.2", "again"))
            .await;
        app.inbox_settled().await;
        let rows = app.outbox_settled().await;
        assert!(rows.iter().all(|r| r.state == "sent"));
        wait_until("the second message's sender actions", || async {
            sender_actions(&sent_bodies(&app.graph).await).len() >= 2
        })
        .await;
        assert_eq!(
            sender_actions(&sent_bodies(&app.graph).await),
            ["mark_seen", "typing_on"],
            "one of each, for the message after the resume"
        );
        app.stop().await;
    })
    .await;
}
