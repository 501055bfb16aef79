//! Processing paced to what the Pages can send (`workers::pacing`): stored
//! events wait while the answers ahead of them keep the Send API busy,
//! and what their processing used to do at once that others rely on (the
//! 24-hour window, the retry budget) does not wait with them.

use crate::helpers::*;
use crate::support::nlu::ScriptedNlu;
use lexbridge::startup::Options;
use lexbridge::store::inbox::{NewInboxEvent, ThreadOwner};
use lexbridge::store::writer::{Paced, Write};
use lexbridge::store::Store;
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
        let behind = Arc::new(AtomicBool::new(true));
        let paced = Arc::clone(&behind);
        let paced: Paced = Arc::new(move || paced.load(Ordering::SeqCst));
        let (writer, mut worker) = inbox_writer(&store, 16, Some(paced));
        let now = lexbridge::store::now_ms();
        let stored = writer
            .write(Write::InsertInbox(vec![event("u1", now)]))
            .await
            .expect("stored while paced");
        assert_eq!(stored, 1, "stored and acknowledged all the same");
        writer.barrier().await.expect("flushed");
        // On Postgres the intake tells the main committer of new rows after
        // answering: give that time to claim, were it allowed to.
        tokio::time::sleep(Duration::from_millis(300)).await;
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
        let app = quiet_app(&backend, &[]).await;
        let body = text_message("U1", "m.w1", "hello");
        let wrote = body["entry"][0]["messaging"][0]["timestamp"]
            .as_i64()
            .expect("a timestamp");
        assert_eq!(app.post_signed_webhook(&body).await.status(), 200);
        // On Postgres the main committer writes the window the intake
        // stored the event with: in its next batch.
        app.writer.barrier().await.expect("the next batch");
        assert_eq!(app.inbox().await[0].state, "pending", "not processed");
        let window = app
            .store
            .recipient_now(PAGE_ID, "U1")
            .await
            .unwrap()
            .last_inbound_at;
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
        app.writer.barrier().await.expect("the next batch");
        assert_eq!(
            app.store
                .recipient_now(PAGE_ID, "U2")
                .await
                .unwrap()
                .last_inbound_at,
            None
        );
        // Nor a message to a Page this deployment does not answer for.
        let elsewhere = webhook_body(&[("9999", vec![text_event("U3", "m.x1", "hi")])]);
        assert_eq!(app.post_signed_webhook(&elsewhere).await.status(), 200);
        app.writer.barrier().await.expect("the next batch");
        assert_eq!(
            app.store
                .recipient_now("9999", "U3")
                .await
                .unwrap()
                .last_inbound_at,
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
        let (writer, mut worker) = inbox_writer(&store, 16, None);
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

/// Waits (at most 30 s) until `done` holds.
async fn until(what: &str, mut done: impl FnMut() -> bool) {
    for _ in 0..600 {
        if done() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{what}: not within 30 s");
}

#[tokio::test]
async fn a_server_whose_answers_wait_for_the_send_rate_processes_no_more_until_they_go() {
    on_every_backend(|backend| async move {
        let db = TestDb::new(&backend).await;
        let graph = wiremock::MockServer::start().await;
        let nlu = Arc::new(ScriptedNlu::default());
        let options = Options {
            nlu: Some(nlu.clone()),
            ..Options::default()
        };
        let app = start(db, graph, options, &[("SEND_RATE_PER_PAGE", "2")]).await;
        mount_send(&app.graph).await;
        // Ten answers at two a second: 5 s of sends, claimed together.
        let first: Vec<_> = (0..10)
            .map(|i| text_event(&format!("U{i}"), &format!("m.p{i}"), "hello"))
            .collect();
        let body = webhook_body(&[(PAGE_ID, first)]);
        assert_eq!(app.post_signed_webhook(&body).await.status(), 200);
        until("the first ten answered by the NLU", || nlu.calls() == 10).await;
        // Every answer handed to the outbox worker, which books its turn
        // at the rate as it gets it.
        for _ in 0..600 {
            let answers = app.outbox().await;
            if answers.len() == 10 && answers.iter().all(|a| a.state != "queued") {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        for i in 10..12 {
            let body = text_message(&format!("U{i}"), &format!("m.p{i}"), "hello");
            assert_eq!(app.post_signed_webhook(&body).await.status(), 200);
        }
        // Longer than the worker's own poll (250 ms): neither the claims
        // made as the events are stored nor the worker's own may take them.
        tokio::time::sleep(Duration::from_millis(700)).await;
        assert_eq!(
            nlu.calls(),
            10,
            "processing waits while the answers are booked a second ahead"
        );
        let pending = app.inbox().await;
        assert_eq!(
            pending.iter().filter(|r| r.state == "pending").count(),
            2,
            "stored all the same: {pending:?}"
        );
        until("the rest processed as the answers go", || nlu.calls() == 12).await;
        app.stop().await;
    })
    .await;
}

/// On Postgres the intake committer, which a webhook's answer waits for,
/// writes no conversation row: a person's window goes to the main
/// committer's next batch, so an answer never waits for a row that another
/// transaction (the main committer's results, say) holds.
#[tokio::test]
async fn on_postgres_storing_an_event_waits_for_no_conversation_row() {
    let Some(backend) = postgres() else {
        return;
    };
    let app = quiet_app(&backend, &[]).await;
    let first = text_message("U1", "m.l1", "hello");
    let wrote = first["entry"][0]["messaging"][0]["timestamp"]
        .as_i64()
        .expect("a timestamp");
    assert_eq!(app.post_signed_webhook(&first).await.status(), 200);
    app.writer.barrier().await.expect("the next batch");
    assert_eq!(
        app.store
            .recipient_now(PAGE_ID, "U1")
            .await
            .unwrap()
            .last_inbound_at,
        Some(wrote)
    );
    // Another transaction holds the person's row.
    let Store::Postgres(pool) = &app.store else {
        panic!("a Postgres store");
    };
    let mut holder = pool.begin().await.expect("a transaction");
    sqlx::query("SELECT 1 FROM conversations WHERE page_id = $1 AND psid = $2 FOR UPDATE")
        .bind(PAGE_ID)
        .bind("U1")
        .execute(&mut *holder)
        .await
        .expect("the row locked");
    // Written a minute later: a window to move.
    let mut later = text_message("U1", "m.l2", "still there?");
    later["entry"][0]["messaging"][0]["timestamp"] = (wrote + 60_000).into();
    let answered = tokio::time::timeout(Duration::from_secs(10), app.post_signed_webhook(&later))
        .await
        .expect("answered while the row is held");
    assert_eq!(answered.status(), 200);
    holder.rollback().await.expect("released");
    app.writer.barrier().await.expect("the next batch");
    assert_eq!(
        app.store
            .recipient_now(PAGE_ID, "U1")
            .await
            .unwrap()
            .last_inbound_at,
        Some(wrote + 60_000),
        "the main committer wrote the window"
    );
    app.stop().await;
}
