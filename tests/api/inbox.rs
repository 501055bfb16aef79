//! The inbox worker: exactly-once processing, restarts, retries, order.

use crate::helpers::*;
use crate::support::nlu::ScriptedNlu;
use lexbridge::startup::Options;
use lexbridge::store::inbox::{ConversationUpdate, InboxUpdate, NewInboxEvent, ThreadOwner};
use lexbridge::store::writer::{Acceptance, Feeds, Write, Writer};
use serde_json::json;
use std::sync::Arc;
use std::time::Duration;

#[tokio::test]
async fn a_redelivered_event_is_processed_once() {
    on_every_backend(|backend| async move {
        let nlu = Arc::new(ScriptedNlu::default());
        let app = spawn_app_with(&backend, Some(nlu.clone())).await;
        mount_send(&app.graph).await;
        let body = text_message("U1", "m.dup", "is my car locked?");
        assert_eq!(app.post_signed_webhook(&body).await.status(), 200);
        assert_eq!(app.post_signed_webhook(&body).await.status(), 200);
        app.inbox_settled().await;
        let sent = app.outbox_settled().await;
        assert_eq!(
            app.post_signed_webhook(&body).await.status(),
            200,
            "late redelivery"
        );
        assert_eq!(app.inbox().await.len(), 1);
        assert_eq!(nlu.calls(), 1);
        assert_eq!(sent.len(), 1);
        assert_eq!(sent[0].state, "sent");
        app.stop().await;
    })
    .await;
}

#[tokio::test]
async fn an_event_stored_before_a_restart_is_processed_after_it() {
    on_every_backend(|backend| async move {
        let db = TestDb::new(&backend).await;
        let graph = wiremock::MockServer::start().await;
        let options = Options {
            without_workers: true,
            ..Options::default()
        };
        let first = start(db, graph, options, &[]).await;
        assert_eq!(
            first
                .post_signed_webhook(&text_message("U1", "m.r", "hello"))
                .await
                .status(),
            200
        );
        assert_eq!(first.inbox().await[0].state, "pending");
        let (db, graph) = first.stop().await;

        let nlu = Arc::new(ScriptedNlu::default());
        let options = Options {
            nlu: Some(nlu.clone()),
            ..Options::default()
        };
        let second = start(db, graph, options, &[]).await;
        mount_send(&second.graph).await;
        let rows = second.inbox_settled().await;
        assert_eq!(rows[0].outcome.as_deref(), Some("answered by scripted"));
        let sent = second.outbox_settled().await;
        assert_eq!(sent.len(), 1);
        assert_eq!(nlu.calls(), 1);
        second.stop().await;
    })
    .await;
}

#[tokio::test]
async fn transient_failures_are_retried_then_answered() {
    on_every_backend(|backend| async move {
        let nlu = Arc::new(ScriptedNlu {
            fail_first: 2,
            ..ScriptedNlu::default()
        });
        let app = spawn_app_with(&backend, Some(nlu.clone())).await;
        mount_send(&app.graph).await;
        app.post_signed_webhook(&text_message("U1", "m.1", "hello"))
            .await;
        let rows = app.inbox_settled().await;
        assert_eq!(rows[0].state, "done");
        assert_eq!(rows[0].attempts, 3);
        assert_eq!(nlu.calls(), 3);
        assert_eq!(app.outbox_settled().await.len(), 1, "answered once");
        app.stop().await;
    })
    .await;
}

#[tokio::test]
async fn a_row_failing_past_its_time_budget_is_dead_lettered_with_its_error() {
    on_every_backend(|backend| async move {
        let nlu = Arc::new(ScriptedNlu {
            fail_first: 100,
            ..ScriptedNlu::default()
        });
        let app = spawn_app_with(&backend, Some(nlu.clone())).await;
        app.post_signed_webhook(&text_message("U1", "m.1", "hello"))
            .await;
        let rows = app.inbox_settled().await;
        assert_eq!(rows[0].state, "dead");
        // Tried for INBOX_RETRY_BUDGET_MS (1 s in tests), however many
        // attempts that took.
        let attempts = rows[0].attempts;
        assert!(attempts >= 2, "{attempts}");
        let error = rows[0].last_error.as_deref().unwrap();
        assert!(
            error.starts_with("gave up after INBOX_RETRY_BUDGET_MS (1000 ms)")
                && error.contains(&format!("scripted failure {attempts}")),
            "{error}"
        );
        assert_eq!(nlu.calls() as i64, attempts);
        // One apology, queued with the dead letter.
        let apologies: Vec<_> = app
            .outbox()
            .await
            .into_iter()
            .filter(|r| r.origin == "apology")
            .collect();
        assert_eq!(apologies.len(), 1);
        app.stop().await;
    })
    .await;
}

#[tokio::test]
async fn permanent_failures_are_not_retried() {
    on_every_backend(|backend| async move {
        let nlu = Arc::new(ScriptedNlu {
            always_permanent: true,
            ..ScriptedNlu::default()
        });
        let app = spawn_app_with(&backend, Some(nlu.clone())).await;
        app.post_signed_webhook(&text_message("U1", "m.1", "hello"))
            .await;
        let rows = app.inbox_settled().await;
        assert_eq!(rows[0].state, "dead");
        assert_eq!(rows[0].attempts, 1);
        assert_eq!(nlu.calls(), 1);
        app.stop().await;
    })
    .await;
}

#[tokio::test]
async fn echoes_are_ignored() {
    on_every_backend(|backend| async move {
        let nlu = Arc::new(ScriptedNlu::default());
        let app = spawn_app_with(&backend, Some(nlu.clone())).await;
        let echo = json!({"sender": {"id": PAGE_ID}, "recipient": {"id": "U1"}, "timestamp": 1,
                          "message": {"mid": "m.echo", "is_echo": true, "text": "we said this"}});
        app.post_signed_webhook(&webhook_body(&[(PAGE_ID, vec![echo])]))
            .await;
        let rows = app.inbox_settled().await;
        assert_eq!(
            (rows[0].kind.as_str(), rows[0].psid.as_str()),
            ("echo", "U1")
        );
        assert_eq!(rows[0].outcome.as_deref(), Some("ignored"));
        assert_eq!(nlu.calls(), 0);
        app.stop().await;
    })
    .await;
}

#[tokio::test]
async fn one_persons_messages_are_processed_in_order_and_never_at_once() {
    on_every_backend(|backend| async move {
        let nlu = Arc::new(ScriptedNlu {
            delay: Duration::from_millis(15),
            ..ScriptedNlu::default()
        });
        let app = spawn_app_with(&backend, Some(nlu.clone())).await;
        mount_send(&app.graph).await;
        // Three people, eight messages each, all posted at once.
        let posts = (0..8).flat_map(|i| {
            ["A", "B", "C"]
                .map(|who| text_message(who, &format!("m.{who}.{i}"), &format!("{who}{i}")))
        });
        let responses = futures_util::future::join_all(posts.map(|b| {
            let app = &app;
            async move { app.post_signed_webhook(&b).await.status() }
        }))
        .await;
        assert!(responses.iter().all(|s| *s == 200));
        app.inbox_settled().await;
        assert_eq!(nlu.overlaps(), 0, "one NLU call at a time per person");
        let inbox = app.inbox().await;
        let turns = nlu.turns.lock().unwrap().clone();
        for who in ["A", "B", "C"] {
            let stored: Vec<_> = inbox
                .iter()
                .filter(|r| r.psid == who)
                .map(|r| r.dedupe_key.clone())
                .collect();
            let expected: Vec<_> = stored
                .iter()
                .map(|k| key_mid(k).trim_start_matches("m.").replace('.', ""))
                .collect();
            let seen: Vec<_> = turns
                .iter()
                .filter(|t| t.psid == who)
                .map(|t| t.text.clone())
                .collect();
            assert_eq!(seen, expected, "{who}'s messages in stored order");
        }
        app.stop().await;
    })
    .await;
}

/// The result of attempt `attempts` on inbox row `id`, with one reply and a
/// dialog state.
fn finish(
    id: i64,
    state: lexbridge::store::inbox::InboxState,
    attempts: i64,
    dialog: &str,
) -> lexbridge::store::writer::Write {
    use lexbridge::store::outbox::NewOutboxMessage;
    lexbridge::store::writer::Write::FinishInbox(Box::new(InboxUpdate {
        id,
        state,
        outcome: Some("answered".into()),
        attempts,
        // Not due again during the test: no worker takes the row.
        next_attempt_at: 9_999_999_999_999,
        last_error: None,
        replies: vec![NewOutboxMessage::reply(
            PAGE_ID,
            "U1",
            id,
            json!({"text": dialog}).to_string(),
        )],
        conversation: Some(ConversationUpdate {
            page_id: PAGE_ID.into(),
            psid: "U1".into(),
            inbound_at: Some(1),
            nlu_state: Some(Some(dialog.into())),
            release_held: false,
            thread: None,
        }),
        receipt: None,
        lookup: None,
    }))
}

/// A row in hand, as the inbox worker holds it while it works.
async fn row_in_hand(app: &TestApp) -> i64 {
    app.exec(
        "INSERT INTO inbox (page_id, psid, kind, standby, dedupe_key, event, state, locked_until, next_attempt_at, received_at)
         VALUES ('1111', 'U1', 'message', 0, 'mid:m.in-hand', '{}', 'processing', 9999999999999, 0, 0)",
    )
    .await;
    app.count("SELECT MAX(id) FROM inbox").await
}

/// Rows `write` changed, through the app's committer.
async fn recorded(app: &TestApp, write: lexbridge::store::writer::Write) -> u64 {
    app.writer.write(write).await.unwrap()
}

#[tokio::test]
async fn a_result_recorded_twice_queues_its_reply_once() {
    use lexbridge::store::inbox::InboxState::Done;
    on_every_backend(|backend| async move {
        let app = spawn_app(&backend).await;
        let id = row_in_hand(&app).await;
        assert_eq!(recorded(&app, finish(id, Done, 1, "first")).await, 1);
        // The same result again (a retry after a commit whose outcome was
        // lost), now carrying a dialog state that is no longer current.
        assert_eq!(recorded(&app, finish(id, Done, 1, "stale")).await, 0);
        let replies = format!("SELECT COUNT(*) FROM outbox WHERE inbox_id = {id}");
        assert_eq!(app.count(&replies).await, 1, "one reply queued");
        assert_eq!(
            app.count("SELECT COUNT(*) FROM conversations WHERE nlu_state = 'first'")
                .await,
            1,
            "the dialog state of the first write stays"
        );
        app.stop().await;
    })
    .await;
}

#[tokio::test]
async fn a_late_copy_of_a_result_cannot_land_on_the_next_attempt() {
    use lexbridge::store::inbox::InboxState::{Done, Pending};
    on_every_backend(|backend| async move {
        let app = spawn_app(&backend).await;
        let id = row_in_hand(&app).await;
        // Attempt 1 ends "try again"; the row is claimed again at once.
        assert_eq!(recorded(&app, finish(id, Pending, 1, "one")).await, 1);
        app.exec(&format!(
            "UPDATE inbox SET state = 'processing', locked_until = 9999999999999 WHERE id = {id}"
        ))
        .await;
        // A late copy of attempt 1's result finds attempt 2 in hand.
        assert_eq!(recorded(&app, finish(id, Pending, 1, "one")).await, 0);
        assert_eq!(recorded(&app, finish(id, Done, 2, "two")).await, 1);
        let row = format!(
            "SELECT COUNT(*) FROM inbox WHERE id = {id} AND state = 'done' AND attempts = 2"
        );
        assert_eq!(app.count(&row).await, 1);
        app.stop().await;
    })
    .await;
}

#[tokio::test]
async fn a_failing_write_does_not_fail_the_writes_committed_with_it() {
    use lexbridge::store::outbox::NewOutboxMessage;
    on_every_backend(|backend| async move {
        let app = spawn_app(&backend).await;
        // Messages the API accepted, each with the id its caller knows it
        // by: a second message with a taken id breaks a unique index.
        let message = |public_id: &str| {
            Write::Accept(Box::new(Acceptance {
                messages: vec![NewOutboxMessage {
                    public_id: Some(public_id.to_string()),
                    origin: "api",
                    inbox_id: None,
                    ..NewOutboxMessage::reply("P", "U1", 0, "{}".into())
                }],
                remember: None,
            }))
        };
        assert_eq!(app.writer.write(message("msg_taken")).await.unwrap(), 1);
        // Submitted together, so they are likely to share a batch.
        let (a, bad, b, c) = tokio::join!(
            app.writer.write(message("msg_1")),
            app.writer.write(message("msg_taken")),
            app.writer.write(message("msg_3")),
            app.writer.write(message("msg_4")),
        );
        let bad = bad.expect_err("a message with a taken id is refused");
        assert!(bad.is_conflict(), "a refused write is final: {bad:#}");
        assert_eq!((a.unwrap(), b.unwrap(), c.unwrap()), (1, 1, 1));
        // The committer goes on after the failure.
        assert_eq!(app.writer.write(message("msg_5")).await.unwrap(), 1);
        let stored = "SELECT COUNT(*) FROM outbox
                      WHERE public_id IN ('msg_taken', 'msg_1', 'msg_3', 'msg_4', 'msg_5')";
        assert_eq!(app.count(stored).await, 5);
        app.stop().await;
    })
    .await;
}

/// Stickers arrive as `sticker` attachments (Meta's 2026 change; during
/// its transition with an `image` attachment beside it): each is taken for
/// a sticker, and reaches the NLU as one typed turn.
#[tokio::test]
async fn stickers_are_told_from_images() {
    on_every_backend(|backend| async move {
        let nlu = Arc::new(ScriptedNlu::default());
        let app = spawn_app_with(&backend, Some(nlu.clone())).await;
        mount_send(&app.graph).await;
        let sticker = |mid: &str, attachments: serde_json::Value| {
            json!({"sender": {"id": "U1"}, "recipient": {"id": PAGE_ID}, "timestamp": 1,
                "message": {"mid": mid, "attachments": attachments}})
        };
        let both = sticker(
            "m.s1",
            json!([
                {"type": "image", "payload": {"url": "https://cdn.test/like.png", "sticker_id": 369239263222822_u64}},
                {"type": "sticker", "payload": {"url": "https://cdn.test/like.png", "sticker_id": 369239263222822_u64}},
            ]),
        );
        let alone = sticker(
            "m.s2",
            json!([{"type": "sticker", "payload": {"url": "https://cdn.test/like.png", "sticker_id": 369239263222822_u64}}]),
        );
        let photo = sticker(
            "m.s3",
            json!([{"type": "image", "payload": {"url": "https://cdn.test/car.jpg"}}]),
        );
        let body = webhook_body(&[(PAGE_ID, vec![both, alone, photo])]);
        assert_eq!(app.post_signed_webhook(&body).await.status(), 200);
        let rows = app.inbox_settled().await;
        let outcomes: Vec<_> = rows.iter().map(|r| r.outcome.clone().unwrap_or_default()).collect();
        assert_eq!(
            outcomes,
            [
                "answered: sticker attachment by scripted",
                "answered: sticker attachment by scripted",
                "answered: image attachment by scripted"
            ]
        );
        let turns = nlu.turns.lock().unwrap().clone();
        let seen: Vec<_> = turns
            .iter()
            .map(|t| (t.text.as_str(), t.attachment.as_ref().map(|a| (a.kind.as_str(), a.count))))
            .collect();
        assert_eq!(
            seen,
            [
                ("sent a sticker", Some(("sticker", 1))),
                ("sent a sticker", Some(("sticker", 1))),
                ("sent an image", Some(("image", 1)))
            ]
        );
        app.stop().await;
    })
    .await;
}

/// The committer claims stored events for the inbox worker and hands them
/// over without the worker asking: no worker runs here, so nothing else
/// would claim them. On Postgres the events are stored by a committer of
/// their own (`writer::Writer::start`), which must tell the main one.
#[tokio::test]
async fn stored_events_reach_the_inbox_worker_without_its_poll() {
    on_every_backend(|backend| async move {
        let db = TestDb::new(&backend).await;
        let store = db.store().await;
        let (writer, mut worker) = inbox_writer(&store, 16, None);
        let event = new_event;
        let stored = writer
            .write(Write::InsertInbox(vec![event("u1"), event("u2")]))
            .await
            .expect("stored");
        assert_eq!(stored, 2);
        let handed = handed_psids(&mut worker, 2, "the stored events are handed over").await;
        assert_eq!(handed, ["u1", "u2"]);
        drop(writer);
        store.close().await;
    })
    .await;
}

/// Polls `future` once: far enough for a write to reach the writer's queue.
async fn poll_once<F: std::future::Future + Unpin>(future: &mut F) {
    std::future::poll_fn(|cx| {
        let _ = std::pin::Pin::new(&mut *future).poll(cx);
        std::task::Poll::Ready(())
    })
    .await
}

/// On Postgres the intake committer stores webhook events apart from the
/// one that claims them and tells it what it stored. A batch that fails for
/// one bad event is redone event by event; what that stored is told too,
/// or it would wait for the inbox worker's poll.
#[tokio::test]
async fn events_stored_by_a_redone_intake_batch_reach_the_inbox_worker_without_its_poll() {
    use sqlx::Connection;
    let Some((db, store)) = postgres_store().await else {
        return;
    };
    let (writer, mut worker) = inbox_writer(&store, 16, None);
    let event = new_event;
    let mut handed_over = async |want: &str| {
        let mut handed = Vec::new();
        while !handed.iter().any(|p| p == want) {
            let rows = tokio::time::timeout(Duration::from_secs(20), worker.rows.recv())
                .await
                .unwrap_or_else(|_| panic!("{want} is handed over without a poll"))
                .expect("the feed is open");
            handed.extend(rows.into_iter().map(|r| r.psid));
        }
        handed
    };
    let stored = writer.write(Write::InsertInbox(vec![event("u0")])).await;
    assert_eq!(stored.expect("stored"), 1);
    handed_over("u0").await;

    // Hold the intake committer on a redelivery (it stores nothing, so it
    // tells nothing) while a good and a bad event queue up behind it: they
    // then go in one batch, which Postgres refuses (a NUL in text).
    let mut lock = sqlx::PgConnection::connect(&db.url).await.expect("connect");
    sqlx::raw_sql("BEGIN; LOCK TABLE inbox IN SHARE ROW EXCLUSIVE MODE")
        .execute(&mut lock)
        .await
        .expect("lock the inbox");
    let redelivery = {
        let (writer, write) = (writer.clone(), Write::InsertInbox(vec![event("u0")]));
        tokio::spawn(async move { writer.write(write).await })
    };
    wait_until("the intake committer waits on the lock", || async {
        let waiting: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM pg_locks l JOIN pg_database d ON d.oid = l.database \
             WHERE d.datname = current_database() AND NOT l.granted",
        )
        .fetch_one(&mut sqlx::PgConnection::connect(&db.url).await.expect("connect"))
        .await
        .expect("pg_locks");
        waiting > 0
    })
    .await;
    let mut good = Box::pin(writer.write(Write::InsertInbox(vec![event("u1")])));
    let mut bad = Box::pin(writer.write(Write::InsertInbox(vec![event("u\0bad")])));
    poll_once(&mut good).await;
    poll_once(&mut bad).await;
    sqlx::query("COMMIT")
        .execute(&mut lock)
        .await
        .expect("unlock");

    assert_eq!(redelivery.await.expect("joined").expect("stored"), 0);
    assert_eq!(good.await.expect("the good event is stored"), 1);
    bad.await.expect_err("Postgres refuses a NUL");
    handed_over("u1").await;
    drop(writer);
    store.close().await;
}

/// The claims the committer makes on the inbox worker's behalf in every
/// batch look at waiting rows only, and the worker claims for itself
/// (lapsed leases included) only when its feed is quiet. Under a steady
/// load, a row whose lease ran out is still taken again: every so often
/// those claims look at lapsed leases too.
#[tokio::test]
async fn a_lapsed_lease_is_taken_again_under_a_steady_load() {
    on_every_backend(|backend| async move {
        let db = TestDb::new(&backend).await;
        let store = db.store().await;
        let (writer, mut worker) = inbox_writer(&store, 1_000, None);
        let event = |psid: String| new_event(&psid);
        writer
            .write(Write::InsertInbox(vec![event("stalled".into())]))
            .await
            .expect("stored");
        let first = tokio::time::timeout(Duration::from_secs(20), worker.rows.recv())
            .await
            .expect("handed over")
            .expect("open");
        assert_eq!(first[0].psid, "stalled");
        // Its holder stalls: the lease runs out.
        exec_on(
            &store,
            "UPDATE inbox SET locked_until = 0 WHERE psid = 'stalled'",
        )
        .await;
        // New events keep arriving, each batch claiming for the worker.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        let mut n = 0;
        'load: loop {
            assert!(
                tokio::time::Instant::now() < deadline,
                "the lapsed row was not taken again"
            );
            n += 1;
            writer
                .write(Write::InsertInbox(vec![event(format!("u{n}"))]))
                .await
                .expect("stored");
            while let Ok(rows) = worker.rows.try_recv() {
                if rows.iter().any(|r| r.psid == "stalled") {
                    break 'load;
                }
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        drop(writer);
        store.close().await;
    })
    .await;
}

/// On SQLite the committer commits without flushing and the flusher
/// flushes the log before any write is answered: an answered write means a
/// flush happened after its commit. Postgres flushes in its commit.
#[tokio::test]
async fn a_write_is_answered_only_after_a_flush_of_the_log_that_holds_it() {
    use std::sync::atomic::Ordering;
    on_every_backend(|backend| async move {
        let db = TestDb::new(&backend).await;
        let store = db.store().await;
        let writer = Writer::start(store.clone(), Feeds::default(), "this-instance".into());
        for n in 0..3 {
            let before = writer.stats().log_flushes.load(Ordering::SeqCst);
            let stored = writer
                .write(Write::InsertInbox(vec![NewInboxEvent {
                    dedupe_key: format!("m.{n}"),
                    ..new_event("u1")
                }]))
                .await
                .expect("stored");
            assert_eq!(stored, 1);
            let after = writer.stats().log_flushes.load(Ordering::SeqCst);
            match store.is_postgres() {
                true => assert_eq!(after, 0, "Postgres commits flush themselves"),
                false => assert!(after > before, "write {n} answered before a flush"),
            }
        }
        // A barrier (what a replayed answer waits for) likewise.
        let before = writer.stats().log_flushes.load(Ordering::SeqCst);
        writer.barrier().await.expect("barrier");
        let after = writer.stats().log_flushes.load(Ordering::SeqCst);
        assert!(
            store.is_postgres() || after > before,
            "barrier before a flush"
        );
        drop(writer);
        store.close().await;
    })
    .await;
}

/// On Postgres a batch of events is one statement, its columns bound as
/// arrays; on SQLite, chunks. Either way every character is stored as it
/// came, a redelivery in the same batch or of an earlier one is skipped,
/// and events keep the order they came in.
#[tokio::test]
async fn a_batch_of_events_is_stored_as_it_came_once_each_in_order() {
    on_every_backend(|backend| async move {
        let db = TestDb::new(&backend).await;
        let store = db.store().await;
        let writer = Writer::start(store.clone(), Feeds::default(), "this-instance".into());
        let event = |key: &str, text: &str, thread: ThreadOwner| NewInboxEvent {
            thread,
            dedupe_key: key.into(),
            event: text.into(),
            received_at: 1_700_000_000_000,
            ..new_event("u1")
        };
        let tricky = [
            r#"{"text":"quote \" backslash \\ brace { } comma , NULL"}"#,
            "{\"text\":\"line\\nbreak, tab\\t, é ü 😀, 'apostrophe'\"}",
            r#"{"text":"{\"nested\":[1,2,{\"a\":null}]}"}"#,
            "NULL",
            "",
        ];
        let first = writer
            .write(Write::InsertInbox(vec![event(
                "m.0",
                "{}",
                ThreadOwner::ThisApp,
            )]))
            .await
            .expect("stored");
        assert_eq!(first, 1);
        let mut batch: Vec<NewInboxEvent> = tricky
            .iter()
            .enumerate()
            .map(|(i, text)| event(&format!("m.{}", i + 1), text, ThreadOwner::AnotherApp))
            .collect();
        // A redelivery of the earlier batch, and one within this batch.
        batch.insert(2, event("m.0", "{\"again\":1}", ThreadOwner::ThisApp));
        batch.push(event("m.1", "{\"again\":2}", ThreadOwner::ThisApp));
        let stored = writer
            .write(Write::InsertInbox(batch))
            .await
            .expect("stored");
        assert_eq!(stored, tricky.len() as u64);

        let rows: Vec<(String, String, i64, i64)> = rows_on(
            &store,
            "SELECT dedupe_key, event, standby, next_attempt_at FROM inbox ORDER BY id",
        )
        .await;
        let keys: Vec<&str> = rows.iter().map(|r| r.0.as_str()).collect();
        assert_eq!(keys, ["m.0", "m.1", "m.2", "m.3", "m.4", "m.5"]);
        assert_eq!(rows[0].1, "{}");
        for (row, text) in rows[1..].iter().zip(tricky) {
            assert_eq!(row.1, text);
            assert_eq!(row.2, 1, "came in standby");
            assert_eq!(row.3, 1_700_000_000_000);
        }
        drop(writer);
        store.close().await;
    })
    .await;
}

/// Rows an instance left behind (their leases ended) are taken again at
/// the pace of the batches, however little room the worker has: a look at
/// lapsed leases that filled its claim is made again in the next batch
/// rather than a quarter-second later.
#[tokio::test]
async fn many_lapsed_leases_are_taken_again_batch_after_batch() {
    use std::sync::atomic::Ordering;
    on_every_backend(|backend| async move {
        let db = TestDb::new(&backend).await;
        let store = db.store().await;
        for i in 0..20 {
            let psid = format!("lapsed{i:02}");
            let left_behind = format!(
                "INSERT INTO inbox (page_id, psid, kind, dedupe_key, event, state,
                                    next_attempt_at, locked_until, received_at)
                 VALUES ('p1', '{psid}', 'message', '{psid}', '{{}}', 'processing', 0, 0, 0)"
            );
            exec_on(&store, &left_behind).await;
        }
        // A worker with room for 4 rows, which it hands back at once.
        let (writer, mut worker) = inbox_writer(&store, 4, None);
        let event = |n: usize| new_event(&format!("u{n}"));
        let mut taken = std::collections::BTreeSet::new();
        for n in 0..12 {
            writer
                .write(Write::InsertInbox(vec![event(n)]))
                .await
                .expect("stored");
            // The claim that the write's batch led to (on Postgres made by
            // the main committer after the intake's commit: wait for it).
            let first = tokio::time::timeout(Duration::from_secs(20), worker.rows.recv())
                .await
                .expect("the batch claimed rows")
                .expect("the feed is open");
            let mut batches = vec![first];
            while let Ok(rows) = worker.rows.try_recv() {
                batches.push(rows);
            }
            for rows in batches {
                worker.budget.fetch_add(rows.len() as i64, Ordering::AcqRel);
                let lapsed = rows.into_iter().map(|r| r.psid);
                taken.extend(lapsed.filter(|p| p.starts_with("lapsed")));
            }
            if taken.len() == 20 {
                break;
            }
        }
        assert_eq!(taken.len(), 20, "taken again within 12 batches: {taken:?}");
        drop(writer);
        store.close().await;
    })
    .await;
}

/// A message event from `psid` on Page `p1`, stored now.
fn new_event(psid: &str) -> NewInboxEvent {
    NewInboxEvent {
        object: "page".into(),
        page_id: "p1".into(),
        psid: psid.into(),
        kind: "message",
        thread: ThreadOwner::ThisApp,
        // A NUL has no place in a key (tests store one in a psid).
        dedupe_key: format!("m.{}", psid.replace('\0', "0")),
        event: "{}".into(),
        received_at: lexbridge::store::now_ms(),
        inbound_at: None,
    }
}
