//! Outages do not lose accepted work (issue 17, point 1): retries bounded
//! by time, dropped replies answered by one apology, expiry, the messaging
//! window checked again before each attempt, the page-wide cool-down, and
//! the `inbox|outbox failed|retry` commands.

use crate::helpers::*;
use crate::support::nlu::ScriptedNlu;
use lexbridge::dead_letters::{self, InboxCommand, RetryArgs};
use lexbridge::domain::window::{OutsideWindow, WindowRule, HOUR_MS};
use lexbridge::store::now_ms;
use lexbridge::store::outbox::{NewOutboxMessage, OutboxState};
use serde_json::json;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use wiremock::matchers::{method, path};
use wiremock::{Mock, ResponseTemplate};

fn api_message(psid: &str, text: &str) -> NewOutboxMessage {
    NewOutboxMessage {
        public_id: Some(format!("msg_{psid}_{text}")),
        origin: "api",
        inbox_id: None,
        messaging_type: "UPDATE".into(),
        ..NewOutboxMessage::reply(
            PAGE_ID,
            psid,
            0,
            json!({"message": {"text": text}}).to_string(),
        )
    }
}

fn reply(psid: &str, text: &str) -> NewOutboxMessage {
    NewOutboxMessage::reply(
        PAGE_ID,
        psid,
        1,
        json!({"message": {"text": text}}).to_string(),
    )
}

/// Answers `status` with Graph `code` the first `fail_first` calls, then
/// 200; notes when each call came and whether it failed.
struct Outage {
    fail_first: usize,
    status: u16,
    code: i64,
    calls: Arc<Mutex<Vec<(Instant, bool)>>>,
}

impl wiremock::Respond for Outage {
    fn respond(&self, _: &wiremock::Request) -> ResponseTemplate {
        let mut calls = self.calls.lock().unwrap();
        let failing = calls.len() < self.fail_first;
        calls.push((Instant::now(), failing));
        if failing {
            ResponseTemplate::new(self.status).set_body_json(json!({"error": {
                "message": "Graph is having a bad day", "type": "OAuthException", "code": self.code}}))
        } else {
            ResponseTemplate::new(200)
                .set_body_json(json!({"recipient_id": "U", "message_id": "m.ok"}))
        }
    }
}

async fn mount_outage(
    app: &TestApp,
    fail_first: usize,
    status: u16,
    code: i64,
) -> Arc<Mutex<Vec<(Instant, bool)>>> {
    let calls = Arc::new(Mutex::new(Vec::new()));
    Mock::given(method("POST"))
        .and(path(SEND_PATH))
        .respond_with(Outage {
            fail_first,
            status,
            code,
            calls: calls.clone(),
        })
        .mount(&app.graph)
        .await;
    calls
}

#[tokio::test]
async fn an_outage_longer_than_the_old_attempt_count_does_not_fail_an_api_message() {
    on_every_backend(|backend| async move {
        // Twelve 503s in a row: the old limit (4 attempts in tests, 8 in
        // production) failed the message for good.
        let app = spawn_app_with_settings(&backend, &[("PAGE_COOLDOWN_MS", "20")]).await;
        let calls = mount_outage(&app, 12, 503, 2).await;
        app.store
            .enqueue(&[api_message("U1", "accepted")], now_ms())
            .await
            .unwrap();
        let rows = app.outbox_settled().await;
        assert_eq!((rows[0].state.as_str(), rows[0].attempts), ("sent", 13));
        assert_eq!(calls.lock().unwrap().len(), 13);
        app.stop().await;
    })
    .await;
}

#[tokio::test]
async fn an_api_message_past_its_expiry_fails_with_the_reason() {
    on_every_backend(|backend| async move {
        let app = spawn_app_with_settings(&backend, &[("API_MESSAGE_EXPIRY_MS", "600")]).await;
        mount_outage(&app, usize::MAX, 503, 2).await;
        app.store
            .enqueue(&[api_message("U1", "late")], now_ms())
            .await
            .unwrap();
        let rows = app.outbox_settled().await;
        assert_eq!(rows[0].state, "failed");
        let error = rows[0].error_message.as_deref().unwrap();
        assert!(
            error.starts_with("expired: not sent within API_MESSAGE_EXPIRY_MS (600 ms)")
                && error.contains("Graph is having a bad day"),
            "{error}"
        );
        assert!(rows[0].attempts >= 1);
        // One final failure, counted once.
        let metrics = app.metrics().await;
        assert!(
            metrics.contains("lexbridge_outbox_failed_total 1\n"),
            "{metrics}"
        );
        app.stop().await;
    })
    .await;
}

#[tokio::test]
async fn replies_older_than_reply_max_age_are_dropped_for_one_apology_after_recovery() {
    on_every_backend(|backend| async move {
        let extra = [
            ("REPLY_MAX_AGE_MS", "300"),
            ("APOLOGY_MESSAGE", "Sorry, we could not answer in time."),
        ];
        let app = spawn_app_with_settings(&backend, &extra).await;
        // Graph is still failing when the apology is first tried.
        let calls = mount_outage(&app, 2, 503, 2).await;
        // Three replies queued during an outage, a minute ago.
        let stale = [reply("U1", "a"), reply("U1", "b"), reply("U1", "c")];
        app.store.enqueue(&stale, now_ms() - 60_000).await.unwrap();
        wait_until("the apology is sent", || async {
            app.outbox()
                .await
                .iter()
                .any(|r| r.origin == "apology" && r.state == "sent")
        })
        .await;
        let rows = app.outbox_settled().await;
        let dropped: Vec<_> = rows.iter().filter(|r| r.origin == "reply").collect();
        assert_eq!(dropped.len(), 3);
        for r in &dropped {
            assert_eq!(
                (r.state.as_str(), r.attempts),
                ("failed", 0),
                "never sent late"
            );
            let error = r.error_message.as_deref().unwrap();
            assert!(
                error.starts_with("dropped: not sent within REPLY_MAX_AGE_MS (300 ms)"),
                "{error}"
            );
        }
        let apologies: Vec<_> = rows.iter().filter(|r| r.origin == "apology").collect();
        assert_eq!(apologies.len(), 1, "one apology for three dropped replies");
        assert_eq!(apologies[0].attempts, 3, "sent once Graph answered again");
        let bodies = sent_bodies(&app.graph).await;
        assert_eq!(calls.lock().unwrap().len(), 3);
        assert!(bodies
            .iter()
            .all(|b| b["message"]["text"] == "Sorry, we could not answer in time."));
        // Three final failures, each counted once, as expired without a call.
        let metrics = app.metrics().await;
        assert!(
            metrics.contains("lexbridge_outbox_failed_total 3\n"),
            "{metrics}"
        );
        assert!(
            metrics.contains("lexbridge_send_api_total{outcome=\"expired\"} 3\n"),
            "{metrics}"
        );
        app.stop().await;
    })
    .await;
}

#[tokio::test]
async fn an_api_message_checks_the_window_again_before_each_attempt() {
    on_every_backend(|backend| async move {
        let app = spawn_app_with_settings(&backend, &[]).await;
        mount_send(&app.graph).await;
        let now = now_ms();
        // U1 wrote an hour ago; U2 and U3 two days ago (the window closed).
        for (psid, ago) in [("U1", HOUR_MS), ("U2", 48 * HOUR_MS), ("U3", 48 * HOUR_MS)] {
            app.exec(&format!(
                "INSERT INTO conversations (page_id, psid, last_inbound_at, updated_at)
                 VALUES ('{PAGE_ID}', '{psid}', {}, {now})",
                now - ago
            ))
            .await;
        }
        let with = |psid: &str, outside| NewOutboxMessage {
            window: Some(WindowRule {
                outside,
                human_agent: false,
            }),
            state: OutboxState::Queued,
            ..api_message(psid, "news")
        };
        let hold_until = now + HOUR_MS;
        app.store
            .enqueue(
                &[
                    with("U1", OutsideWindow::Reject),
                    with("U2", OutsideWindow::Reject),
                    with("U3", OutsideWindow::Hold { until: hold_until }),
                ],
                now,
            )
            .await
            .unwrap();
        wait_until("each message is judged", || async {
            let rows = app.outbox().await;
            rows.iter()
                .all(|r| matches!(r.state.as_str(), "sent" | "failed" | "held"))
        })
        .await;
        let rows = app.outbox().await;
        let by = |psid: &str| rows.iter().find(|r| r.psid == psid).unwrap();
        assert_eq!(by("U1").state, "sent");
        assert_eq!((by("U2").state.as_str(), by("U2").attempts), ("failed", 0));
        let error = by("U2").error_message.as_deref().unwrap();
        assert!(
            error.starts_with("outside_messaging_window: the messaging window closed at"),
            "{error}"
        );
        assert_eq!(
            (by("U3").state.as_str(), by("U3").hold_until),
            ("held", Some(hold_until))
        );
        let bodies = sent_bodies(&app.graph).await;
        assert_eq!(bodies.len(), 1, "only U1's message went");
        assert_eq!(bodies[0]["recipient"]["id"], "U1");
        // The refused message is a final failure like any other.
        let metrics = app.metrics().await;
        assert!(
            metrics.contains("lexbridge_outbox_failed_total 1\n"),
            "{metrics}"
        );
        app.stop().await;
    })
    .await;
}

#[tokio::test]
async fn a_rate_limited_page_is_slowed_as_a_whole() {
    on_every_backend(|backend| async move {
        let app = spawn_app_with_settings(
            &backend,
            &[("PAGE_COOLDOWN_MS", "1000"), ("RETRY_MAX_MS", "2000")],
        )
        .await;
        let calls = mount_outage(&app, 1, 400, 613).await;
        let people: Vec<_> = (1..=4)
            .map(|i| api_message(&format!("U{i}"), "hi"))
            .collect();
        app.store.enqueue(&people[..1], now_ms()).await.unwrap();
        wait_until("the rate limit is met", || async {
            !calls.lock().unwrap().is_empty()
        })
        .await;
        app.store.enqueue(&people[1..], now_ms()).await.unwrap();
        let rows = app.outbox_settled().await;
        assert!(rows.iter().all(|r| r.state == "sent"), "{rows:?}");
        let calls = calls.lock().unwrap().clone();
        assert_eq!(calls.len(), 5, "one 613, then each message once");
        let limited_at = calls[0].0;
        for (at, _) in &calls[1..] {
            let waited = *at - limited_at;
            assert!(
                waited >= Duration::from_millis(900),
                "sent {waited:?} after the 613"
            );
        }
        app.stop().await;
    })
    .await;
}

#[tokio::test]
async fn failed_outbox_messages_are_listed_with_the_reason_and_put_back() {
    on_every_backend(|backend| async move {
        let app = spawn_app_with_settings(&backend, &[]).await;
        let calls = mount_outage(&app, 2, 400, 100).await;
        let messages = [api_message("U1", "one"), api_message("U2", "two")];
        app.store.enqueue(&messages, now_ms()).await.unwrap();
        let rows = app.outbox_settled().await;
        assert!(rows.iter().all(|r| r.state == "failed"));
        let mut out = Vec::new();
        dead_letters::failed_outbox(&app.store, &mut out)
            .await
            .unwrap();
        let listed = String::from_utf8(out).unwrap();
        assert!(listed.starts_with("2 failed outbox message(s)"), "{listed}");
        assert!(
            listed.contains("msg_U1_one") && listed.contains("code 100: Graph is having a bad day"),
            "{listed}"
        );

        let retry = |id: Option<&str>, all| RetryArgs {
            id: id.map(str::to_string),
            all,
        };
        let mut out = Vec::new();
        let unknown =
            dead_letters::retry_outbox(&app.store, retry(Some("msg_nobody"), false), &mut out)
                .await;
        assert!(unknown
            .unwrap_err()
            .to_string()
            .contains("no failed outbox message has the id msg_nobody"));
        dead_letters::retry_outbox(&app.store, retry(Some("msg_U1_one"), false), &mut out)
            .await
            .unwrap();
        wait_until("U1's message is sent", || async {
            app.outbox()
                .await
                .iter()
                .any(|r| r.psid == "U1" && r.state == "sent")
        })
        .await;
        assert_eq!(
            app.outbox()
                .await
                .iter()
                .find(|r| r.psid == "U2")
                .unwrap()
                .state,
            "failed"
        );
        dead_letters::retry_outbox(&app.store, retry(None, true), &mut out)
            .await
            .unwrap();
        let rows = app.outbox_settled().await;
        assert!(rows.iter().all(|r| r.state == "sent"), "{rows:?}");
        assert_eq!(calls.lock().unwrap().len(), 4);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "1 outbox message(s) queued again\n1 outbox message(s) queued again\n"
        );
        app.stop().await;
    })
    .await;
}

#[tokio::test]
async fn a_message_put_back_after_its_expiry_gets_a_fresh_budget() {
    on_every_backend(|backend| async move {
        // 3 s: enough for a loaded machine to claim the message put back.
        let app = spawn_app_with_settings(&backend, &[("API_MESSAGE_EXPIRY_MS", "3000")]).await;
        let calls = mount_outage(&app, 0, 503, 2).await;
        // Queued a minute ago: past its 3 s before its first turn.
        let late = [api_message("U1", "late")];
        app.store.enqueue(&late, now_ms() - 60_000).await.unwrap();
        let rows = app.outbox_settled().await;
        assert_eq!((rows[0].state.as_str(), rows[0].attempts), ("failed", 0));
        // Put back, its 3 s count from now, not from when it was queued.
        let mut out = Vec::new();
        let all = RetryArgs {
            id: None,
            all: true,
        };
        dead_letters::retry_outbox(&app.store, all, &mut out)
            .await
            .unwrap();
        let rows = app.outbox_settled().await;
        assert_eq!(rows[0].state, "sent", "{rows:?}");
        assert_eq!(calls.lock().unwrap().len(), 1);
        app.stop().await;
    })
    .await;
}

#[tokio::test]
async fn dead_inbox_rows_are_listed_with_the_reason_and_put_back() {
    on_every_backend(|backend| async move {
        let nlu = Arc::new(ScriptedNlu {
            always_permanent: true,
            ..ScriptedNlu::default()
        });
        let app = spawn_app_with(&backend, Some(nlu.clone())).await;
        mount_send(&app.graph).await;
        app.post_signed_webhook(&text_message("U1", "m.1", "hello"))
            .await;
        let rows = app.inbox_settled().await;
        assert_eq!((rows[0].state.as_str(), rows[0].attempts), ("dead", 1));
        let mut out = Vec::new();
        dead_letters::inbox(&app.store, InboxCommand::Failed, &mut out)
            .await
            .unwrap();
        let listed = String::from_utf8(out).unwrap();
        assert!(listed.starts_with("1 dead inbox row(s)"), "{listed}");
        assert!(
            listed.contains(&rows[0].last_error.clone().unwrap()),
            "{listed}"
        );

        let mut out = Vec::new();
        let bad = RetryArgs {
            id: Some("x".into()),
            all: false,
        };
        assert!(
            dead_letters::inbox(&app.store, InboxCommand::Retry(bad), &mut out)
                .await
                .is_err()
        );
        let again = RetryArgs {
            id: Some(rows[0].id.to_string()),
            all: false,
        };
        dead_letters::inbox(&app.store, InboxCommand::Retry(again), &mut out)
            .await
            .unwrap();
        wait_until("the row is processed again", || async {
            app.inbox().await[0].attempts == 2
        })
        .await;
        assert_eq!(nlu.calls(), 2);
        assert_eq!(String::from_utf8(out).unwrap(), "1 inbox row(s) put back\n");
        app.stop().await;
    })
    .await;
}
