//! Instances sharing one Postgres database share each Page's send rate:
//! together they stay within `SEND_RATE_PER_PAGE` (see `workers::instances`).

use serde_json::json;
use std::time::Duration;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::helpers::*;
use lexbridge::startup::Options;
use lexbridge::store::now_ms;
use lexbridge::store::outbox::NewOutboxMessage;

#[tokio::test]
async fn instances_on_one_postgres_database_share_each_pages_send_rate() {
    let Some(backend) = postgres() else {
        return;
    };
    let first = spawn_app(&backend).await;
    let share = |app: &TestApp| app.shared.limiter.shared_among();
    wait_until("the first instance recorded", || async {
        first.count("SELECT COUNT(*) FROM instances").await == 1
    })
    .await;
    assert_eq!(share(&first), 1);

    let graph = MockServer::start().await;
    let second = start(first.db.shared_postgres(), graph, Options::default(), &[]).await;
    wait_until("both instances counting two", || async {
        share(&first) == 2 && share(&second) == 2
    })
    .await;
    assert!(first.metrics().await.contains("lexbridge_instances 2\n"));

    // A stopped instance removes itself: the other takes the whole rate.
    second.stop().await;
    wait_until("the first alone again", || async { share(&first) == 1 }).await;

    // One killed without a word is forgotten once it has been silent for
    // the staleness limit (10 s); here its last word is made a minute old.
    first
        .exec(
            "INSERT INTO instances (id, started_at, seen_at)
             VALUES ('killed', 0, CAST(EXTRACT(EPOCH FROM now()) * 1000 AS BIGINT))",
        )
        .await;
    wait_until("the killed instance counted", || async {
        share(&first) == 2
    })
    .await;
    first
        .exec("UPDATE instances SET seen_at = seen_at - 60000 WHERE id = 'killed'")
        .await;
    wait_until("the killed instance no longer counted", || async {
        share(&first) == 1
    })
    .await;
    // Removed (its rows made claimable) once the first has itself reached
    // the database for the staleness limit.
    wait_until("the killed instance removed", || async {
        first.count("SELECT COUNT(*) FROM instances").await == 1
    })
    .await;
    first.stop().await;
}

/// Two instances behind one address: Meta's deliveries and redeliveries
/// land on either. Every event is answered exactly once, and each person's
/// answers leave in the order they wrote, whichever instance took what.
#[tokio::test]
async fn two_instances_answer_every_event_once_in_each_persons_order() {
    let Some(backend) = postgres() else {
        return;
    };
    let nlu = std::sync::Arc::new(crate::support::nlu::ScriptedNlu {
        delay: std::time::Duration::from_millis(5),
        ..Default::default()
    });
    let options = || Options {
        nlu: Some(nlu.clone()),
        ..Options::default()
    };
    let db = TestDb::new(&backend).await;
    let first = start(db, MockServer::start().await, options(), &[]).await;
    let second = start(
        first.db.shared_postgres(),
        MockServer::start().await,
        options(),
        &[],
    )
    .await;
    mount_send(&first.graph).await;
    mount_send(&second.graph).await;
    let people: Vec<String> = (0..20).map(|n| format!("U{n}")).collect();
    for turn in 1..=3 {
        for (n, person) in people.iter().enumerate() {
            let body = text_message(person, &format!("m.{person}.{turn}"), &turn.to_string());
            let (to, other) = if (n + turn) % 2 == 0 {
                (&first, &second)
            } else {
                (&second, &first)
            };
            assert_eq!(to.post_signed_webhook(&body).await.status(), 200);
            // Every third event is redelivered, to the other instance.
            if (n + turn) % 3 == 0 {
                assert_eq!(other.post_signed_webhook(&body).await.status(), 200);
            }
        }
    }
    let inbox = first.inbox_settled().await;
    assert_eq!(inbox.len(), 60);
    let outbox = first.outbox_settled().await;
    assert_eq!(nlu.calls(), 60, "each event reached the NLU once");
    assert_eq!(nlu.overlaps(), 0, "no person's turns ran at once");
    assert_eq!(outbox.len(), 60);
    assert!(outbox.iter().all(|r| r.state == "sent"), "{outbox:?}");
    let mut calls = sent_bodies(&first.graph).await;
    calls.extend(sent_bodies(&second.graph).await);
    // Sender actions (mark_seen, typing) share the path; answers carry a
    // `message`.
    calls.retain(|b| b.get("message").is_some());
    assert_eq!(calls.len(), 60, "each answer sent once");
    for person in &people {
        let mut theirs: Vec<_> = outbox.iter().filter(|r| &r.psid == person).collect();
        theirs.sort_by_key(|r| r.id);
        let texts: Vec<&str> = theirs.iter().map(|r| r.body.as_str()).collect();
        for (turn, body) in texts.iter().enumerate() {
            assert!(
                body.contains(&format!("echo: {}", turn + 1)),
                "{person}: {texts:?}"
            );
        }
        let sent_at: Vec<i64> = theirs.iter().filter_map(|r| r.sent_at).collect();
        assert!(
            sent_at.windows(2).all(|w| w[0] <= w[1]),
            "{person}: {sent_at:?}"
        );
    }
    // Rows out of hand name no holder (a row claimed later by an older
    // binary, which sets none, must not look held by a gone instance).
    for table in ["inbox", "outbox"] {
        let held = format!("SELECT COUNT(*) FROM {table} WHERE claimed_by IS NOT NULL");
        assert_eq!(first.count(&held).await, 0, "{table}");
    }
    second.stop().await;
    first.stop().await;
}

/// A row held by an instance that is gone (killed, so no longer in
/// `instances`) is taken within a heartbeat, not when its two-minute lease
/// runs out; a row held by a live instance, or naming no holder (claimed
/// before the holder was recorded), waits for its lease.
#[tokio::test]
async fn rows_held_by_a_killed_instance_are_taken_without_waiting_out_the_lease() {
    let Some(backend) = postgres() else {
        return;
    };
    let nlu = std::sync::Arc::new(crate::support::nlu::ScriptedNlu::default());
    let app = spawn_app_with(&backend, Some(nlu.clone())).await;
    mount_send(&app.graph).await;
    app.add_live_instance("alive").await;
    // Silent for a minute, but this instance has not yet reached the
    // database long enough to judge it (a database outage silences all).
    app.exec(
        "INSERT INTO instances (id, started_at, seen_at)
         VALUES ('silent', 0, CAST(EXTRACT(EPOCH FROM now()) * 1000 AS BIGINT) - 60000)",
    )
    .await;
    let now = lexbridge::store::now_ms();
    let lease = now + 3_600_000;
    for (psid, holder) in [
        ("U1", "'killed'"),
        ("U2", "'alive'"),
        ("U3", "NULL"),
        ("U4", "'silent'"),
    ] {
        let event = text_event(psid, &format!("m.held.{psid}"), "hello").to_string();
        app.exec(&format!(
            "INSERT INTO inbox (object, page_id, psid, kind, dedupe_key, event, state,
                                next_attempt_at, received_at, locked_until, claimed_by)
             VALUES ('page', '{PAGE_ID}', '{psid}', 'message', 'm.held.{psid}', '{event}',
                     'processing', 0, {now}, {lease}, {holder})"
        ))
        .await;
    }
    wait_until("the killed instance's row answered", || async {
        app.count("SELECT COUNT(*) FROM inbox WHERE psid = 'U1' AND state = 'done'")
            .await
            == 1
    })
    .await;
    // A few of the worker's polls later, the others are still held.
    tokio::time::sleep(std::time::Duration::from_millis(800)).await;
    assert_eq!(
        app.count(
            "SELECT COUNT(*) FROM inbox WHERE psid IN ('U2', 'U3', 'U4') AND state = 'processing'"
        )
        .await,
        3
    );
    assert_eq!(nlu.calls(), 1);
    // Once it has reached the database itself for the staleness limit (10
    // s), the silent instance is judged gone and its row is taken.
    wait_until("the silent instance's row answered", || async {
        app.count("SELECT COUNT(*) FROM inbox WHERE psid = 'U4' AND state = 'done'")
            .await
            == 1
    })
    .await;
    app.stop().await;
}

/// An instance whose own heartbeat cannot reach the database for half the
/// staleness limit starts no send: the others may already take its rows.
/// Once a beat gets through again, the message goes.
#[tokio::test]
async fn an_instance_whose_heartbeat_fails_starts_no_send() {
    let Some(backend) = postgres() else {
        return;
    };
    let app = spawn_app(&backend).await;
    mount_send(&app.graph).await;
    // Its own row locked elsewhere: every beat waits, then times out. The
    // claims only read `instances`, so rows are still claimed.
    let mut blocker = <sqlx::PgConnection as sqlx::Connection>::connect(&app.db.url)
        .await
        .unwrap();
    sqlx::query("BEGIN").execute(&mut blocker).await.unwrap();
    sqlx::query("SELECT 1 FROM instances WHERE id = $1 FOR UPDATE")
        .bind(&app.shared.instance_id)
        .execute(&mut blocker)
        .await
        .unwrap();
    wait_until("the heartbeat to fall silent", || async {
        !app.shared.heartbeat.may_send(lexbridge::store::now_ms())
    })
    .await;
    let message = lexbridge::store::outbox::NewOutboxMessage::reply(
        PAGE_ID,
        "U1",
        1,
        serde_json::json!({"message": {"text": "hello"}}).to_string(),
    );
    app.store
        .enqueue(&[message], lexbridge::store::now_ms())
        .await
        .unwrap();
    // Claimed and put back again and again, never sent.
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    assert!(sent_bodies(&app.graph).await.is_empty());
    assert_eq!(
        app.count("SELECT COUNT(*) FROM outbox WHERE state = 'sent'")
            .await,
        0
    );
    sqlx::query("ROLLBACK").execute(&mut blocker).await.unwrap();
    let rows = app.outbox_settled().await;
    assert_eq!(rows[0].state, "sent");
    assert_eq!(sent_bodies(&app.graph).await.len(), 1);
    app.stop().await;
}

/// An API message to `psid` on the test Page.
fn api_message(psid: &str) -> NewOutboxMessage {
    NewOutboxMessage {
        public_id: Some(format!("msg_{psid}")),
        origin: "api",
        messaging_type: "UPDATE".into(),
        ..NewOutboxMessage::reply(
            PAGE_ID,
            psid,
            0,
            json!({"message": {"text": "hi"}}).to_string(),
        )
    }
}

async fn queue(app: &TestApp, psid: &str) {
    app.store
        .enqueue(&[api_message(psid)], now_ms())
        .await
        .unwrap();
}

/// Whether `app` holds the test Page's sends back.
fn cooling(app: &TestApp) -> bool {
    let cooldowns = &app.shared.cooldowns;
    cooldowns.cooling_until(PAGE_ID, now_ms()).is_some()
}

/// `graph` answers every send that carries a valid `appsecret_proof` with
/// `answer`.
async fn answer_sends(graph: &MockServer, answer: ResponseTemplate) {
    Mock::given(method("POST"))
        .and(path(SEND_PATH))
        .and(ValidProof)
        .respond_with(answer)
        .mount(graph)
        .await;
}

fn delivered() -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_json(json!({"recipient_id": "U", "message_id": "m.ok"}))
}

/// Graph tells one instance to slow a Page down (613): the others stop
/// sending to that Page too, with their next heartbeat, instead of going on
/// at their share of the rate.
#[tokio::test]
async fn a_page_one_instance_was_told_to_slow_down_pauses_on_the_others() {
    let Some(backend) = postgres() else {
        return;
    };
    let cooldown = [("PAGE_COOLDOWN_MS", "30000")];
    let first = spawn_app_with_settings(&backend, &cooldown).await;
    let rate_limited = ResponseTemplate::new(400).set_body_json(json!({"error": {
        "message": "Calls to this api have exceeded the rate limit.",
        "type": "OAuthException", "code": 613}}));
    answer_sends(&first.graph, rate_limited).await;
    queue(&first, "U1").await;
    wait_until("the first instance cools the Page down", || async {
        first.count("SELECT COUNT(*) FROM page_cooldowns").await == 1
    })
    .await;
    assert!(cooling(&first));

    // The second instance's Graph would take every message.
    let graph = MockServer::start().await;
    answer_sends(&graph, delivered()).await;
    let second = start(
        first.db.shared_postgres(),
        graph,
        Options::default(),
        &cooldown,
    )
    .await;
    wait_until("the second instance adopts the cool-down", || async {
        cooling(&second)
    })
    .await;
    // A message queued now waits out the cool-down on both instances.
    queue(&second, "U2").await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let requests = second.graph.received_requests().await.unwrap_or_default();
    let sends = requests
        .iter()
        .filter(|r| r.url.path() == SEND_PATH)
        .count();
    assert_eq!(sends, 0, "sends during the cool-down");
    let rows = second.outbox().await;
    assert!(rows.iter().all(|r| r.state == "queued"), "{rows:?}");
    // A send that gets through (on some instance: it deletes the row) ends
    // it for every instance, the second one included.
    first.store.end_cooldown(PAGE_ID).await.unwrap();
    wait_until("the second instance ends the cool-down", || async {
        !cooling(&second)
    })
    .await;
    second.stop().await;
    first.stop().await;
}

/// A send already in flight when another instance's cool-down arrives gets
/// through: one success ends the cool-down, here and for the others.
#[tokio::test]
async fn a_send_that_gets_through_ends_the_cool_down_for_every_instance() {
    let Some(backend) = postgres() else {
        return;
    };
    // Graph takes 6 s to answer: time for the cool-down to arrive (the
    // heartbeat reads it within 2 s).
    let app = spawn_app_with_settings(&backend, &[("GRAPH_REQUEST_TIMEOUT_MS", "10000")]).await;
    answer_sends(&app.graph, delivered().set_delay(Duration::from_secs(6))).await;
    queue(&app, "U1").await;
    wait_until("the send in flight", || async {
        let requests = app.graph.received_requests().await.unwrap_or_default();
        requests.iter().any(|r| r.url.path() == SEND_PATH)
    })
    .await;
    // Another instance was told to slow down meanwhile.
    app.store.share_cooldown(PAGE_ID, 60_000).await.unwrap();
    wait_until("the cool-down adopted", || async { cooling(&app) }).await;
    wait_until("the cool-down ended everywhere", || async {
        app.count("SELECT COUNT(*) FROM page_cooldowns").await == 0
    })
    .await;
    assert!(!cooling(&app));
    // The send's outcome is written after its success ended the cool-down.
    wait_until("the message recorded as sent", || async {
        let rows = app.outbox().await;
        !rows.is_empty() && rows.iter().all(|r| r.state == "sent")
    })
    .await;
    app.stop().await;
}

/// Instances on one database share the rows in flight as they share a
/// Page's send rate: with another instance alive, this one's inbox worker
/// holds at most half of its 512 rows at once.
#[tokio::test]
async fn each_instance_holds_its_share_of_the_rows_in_flight() {
    let Some(backend) = postgres() else {
        return;
    };
    let nlu = std::sync::Arc::new(crate::support::nlu::ScriptedNlu {
        delay: Duration::from_secs(3),
        ..Default::default()
    });
    let app = spawn_app_with(&backend, Some(nlu.clone())).await;
    mount_send(&app.graph).await;
    app.add_live_instance("other").await;
    wait_until("two instances counted", || async {
        app.shared.limiter.shared_among() == 2
    })
    .await;
    // The share follows the count within a second; three, since on a busy
    // machine running the whole suite (CI) the follower's tick can come
    // late (once seen: all 300 in flight after 1.5 s).
    tokio::time::sleep(Duration::from_millis(3000)).await;
    let people = 300;
    let events: Vec<_> = (0..people)
        .map(|i| text_event(&format!("P{i}"), &format!("m.share.{i}"), "hello"))
        .collect();
    let body = webhook_body(&[(PAGE_ID, events)]);
    assert_eq!(app.post_signed_webhook(&body).await.status(), 200);
    wait_until("every message reached the NLU", || async {
        nlu.calls() == people
    })
    .await;
    let most = nlu.most_at_once.load(std::sync::atomic::Ordering::SeqCst);
    assert!(most <= 256, "{most} messages in flight at once");
    assert!(
        most >= 128,
        "only {most} in flight: the share is far too small"
    );
    app.stop().await;
}
