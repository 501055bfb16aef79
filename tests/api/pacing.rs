//! Processing paced to what the Pages can send (`workers::pacing`): stored
//! events wait while the answers ahead of them keep the Send API busy,
//! and what their processing used to do at once that others rely on (the
//! 24-hour window, the retry budget) does not wait with them.

use crate::helpers::*;
use lexbridge::startup::Options;
use lexbridge::store::inbox::{NewInboxEvent, ThreadOwner};
use lexbridge::store::writer::{feed, Feeds, Write, Writer};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

fn event(psid: &str, received_at: i64) -> NewInboxEvent {
    NewInboxEvent {
        object: "page".into(),
        page_id: PAGE_ID.into(),
        psid: psid.into(),
        kind: "message",
        thread: ThreadOwner::ThisApp,
        dedupe_key: format!("m.{psid}"),
        event: "{}".into(),
        received_at,
        inbound_at: Some(received_at),
    }
}

#[tokio::test]
async fn stored_events_wait_while_sends_are_booked_ahead_and_go_once_they_drain() {
    on_every_backend(|backend| async move {
        let db = TestDb::new(&backend).await;
        let store = db.store().await;
        let (inbox, mut worker) = feed(16, 1);
        let behind = Arc::new(AtomicBool::new(true));
        let paced = Arc::clone(&behind);
        let feeds = Feeds {
            inbox: Some(inbox),
            inbox_paced: Some(Arc::new(move || paced.load(Ordering::SeqCst))),
            ..Feeds::default()
        };
        let writer = Writer::start(store.clone(), feeds, "this-instance".into());
        let now = lexbridge::store::now_ms();
        let stored = writer
            .write(Write::InsertInbox(vec![event("u1", now)]))
            .await
            .expect("stored while paced");
        assert_eq!(stored, 1, "stored and acknowledged all the same");
        writer.barrier().await.expect("flushed");
        assert!(
            worker.rows.try_recv().is_err(),
            "no row is claimed while every Page's sends are booked ahead"
        );
        behind.store(false, Ordering::SeqCst);
        writer
            .write(Write::InsertInbox(vec![event("u2", now)]))
            .await
            .expect("stored");
        let handed = handed_psids(
            &mut worker,
            2,
            "the waiting rows are handed over once the sends drain",
        )
        .await;
        assert_eq!(handed, ["u1", "u2"]);
        drop(writer);
        store.close().await;
    })
    .await;
}

#[tokio::test]
async fn a_persons_message_opens_the_window_as_it_is_stored_before_it_is_processed() {
    on_every_backend(|backend| async move {
        let db = TestDb::new(&backend).await;
        let graph = wiremock::MockServer::start().await;
        let options = Options {
            without_workers: true,
            ..Options::default()
        };
        let app = start(db, graph, options, &[]).await;
        let body = text_message("U1", "m.w1", "hello");
        let wrote = body["entry"][0]["messaging"][0]["timestamp"]
            .as_i64()
            .expect("a timestamp");
        assert_eq!(app.post_signed_webhook(&body).await.status(), 200);
        assert_eq!(app.inbox().await[0].state, "pending", "not processed");
        let window = app.store.last_inbound_at(PAGE_ID, "U1").await.unwrap();
        assert_eq!(window, Some(wrote));
        // An echo (the Page writing) opens nothing.
        let echo = webhook_body(&[(
            PAGE_ID,
            vec![serde_json::json!({
                "sender": {"id": PAGE_ID}, "recipient": {"id": "U2"},
                "timestamp": wrote,
                "message": {"mid": "m.e1", "text": "hi", "is_echo": true}
            })],
        )]);
        assert_eq!(app.post_signed_webhook(&echo).await.status(), 200);
        assert_eq!(
            app.store.last_inbound_at(PAGE_ID, "U2").await.unwrap(),
            None
        );
        app.stop().await;
    })
    .await;
}

#[tokio::test]
async fn the_retry_budget_of_a_row_that_waited_its_turn_starts_at_its_first_claim() {
    on_every_backend(|backend| async move {
        let db = TestDb::new(&backend).await;
        let store = db.store().await;
        let (inbox, mut worker) = feed(16, 1);
        let feeds = Feeds {
            inbox: Some(inbox),
            ..Feeds::default()
        };
        let writer = Writer::start(store.clone(), feeds, "this-instance".into());
        let hour_ago = lexbridge::store::now_ms() - 3_600_000;
        let before_claim = lexbridge::store::now_ms();
        writer
            .write(Write::InsertInbox(vec![event("u1", hour_ago)]))
            .await
            .expect("stored");
        let rows = tokio::time::timeout(Duration::from_secs(20), worker.rows.recv())
            .await
            .expect("handed over")
            .expect("the feed is open");
        assert!(
            rows[0].since >= before_claim,
            "budget from {} although first claimed after {before_claim}",
            rows[0].since
        );
        drop(writer);
        store.close().await;
    })
    .await;
}
