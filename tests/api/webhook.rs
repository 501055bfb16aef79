//! `GET /webhook` verification and `POST /webhook` intake.

use crate::helpers::*;
use serde_json::json;

#[tokio::test]
async fn verification_echoes_the_challenge_for_the_right_token() {
    on_every_backend(|backend| async move {
        let app = spawn_app(&backend).await;
        let response = app
            .http
            .get(format!(
                "{}/webhook?hub.mode=subscribe&hub.verify_token={VERIFY_TOKEN}&hub.challenge=1158201444",
                app.address
            ))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        assert_eq!(response.text().await.unwrap(), "1158201444");
        app.stop().await;
    })
    .await;
}

#[tokio::test]
async fn verification_fails_for_a_wrong_token_or_mode() {
    on_every_backend(|backend| async move {
        let app = spawn_app(&backend).await;
        for query in [
            "hub.mode=subscribe&hub.verify_token=wrong&hub.challenge=1",
            "hub.mode=unsubscribe&hub.verify_token=test-verify-token&hub.challenge=1",
            "hub.mode=subscribe&hub.challenge=1",
            "",
        ] {
            let response = app
                .http
                .get(format!("{}/webhook?{query}", app.address))
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), 403, "query {query:?}");
        }
        app.stop().await;
    })
    .await;
}

#[tokio::test]
async fn bad_posts_are_rejected_and_nothing_is_stored() {
    on_every_backend(|backend| async move {
        let app = spawn_app(&backend).await;
        let body = serde_json::to_vec(&text_message("U1", "m.1", "hello")).unwrap();
        let good = lexbridge::facebook::signature::sign(APP_SECRET.as_bytes(), &body);
        let wrong = lexbridge::facebook::signature::sign(b"not-the-secret", &body);

        assert_eq!(
            app.post_webhook(&body, None).await.status(),
            403,
            "unsigned"
        );
        assert_eq!(
            app.post_webhook(b"{not json", None).await.status(),
            403,
            "the signature is checked before the body is parsed"
        );
        assert_eq!(
            app.post_webhook(&body, Some(&wrong)).await.status(),
            403,
            "wrongly signed"
        );
        assert_eq!(
            app.post_webhook(&body, Some("sha256=00")).await.status(),
            403,
            "short signature"
        );

        let mut tampered = body.clone();
        tampered.extend_from_slice(b" ");
        assert_eq!(
            app.post_webhook(&tampered, Some(&good)).await.status(),
            403,
            "tampered"
        );

        let oversize = vec![b' '; (1 << 20) + 1];
        let sig = lexbridge::facebook::signature::sign(APP_SECRET.as_bytes(), &oversize);
        assert_eq!(
            app.post_webhook(&oversize, Some(&sig)).await.status(),
            413,
            "oversize"
        );

        let malformed = b"{\"object\":\"page\",\"entry\":[";
        let sig = lexbridge::facebook::signature::sign(APP_SECRET.as_bytes(), malformed);
        assert_eq!(
            app.post_webhook(malformed, Some(&sig)).await.status(),
            400,
            "malformed"
        );

        assert!(app.inbox().await.is_empty(), "nothing stored");
        // JSON that is no webhook envelope is kept, once, and answered 200.
        for not_a_payload in [
            json!({"entry": []}),
            json!([]),
            json!({"object": "page", "entry": {}}),
        ] {
            for _ in 0..2 {
                assert_eq!(
                    app.post_signed_webhook(&not_a_payload).await.status(),
                    200,
                    "{not_a_payload}"
                );
            }
        }
        let kept = app.inbox().await;
        assert_eq!(kept.len(), 3, "one row each, de-duplicated on redelivery");
        assert!(kept.iter().all(|r| r.kind == "unrecognised"));
        // Another object is stored (here: no entries, so nothing), not refused.
        let user = json!({"object": "user", "entry": []});
        assert_eq!(
            app.post_signed_webhook(&user).await.status(),
            200,
            "not a page"
        );

        assert_eq!(app.inbox().await.len(), 3, "nothing else stored");
        assert_eq!(
            app.post_webhook(&body, Some(&good)).await.status(),
            200,
            "the good one"
        );
        assert_eq!(app.inbox().await.len(), 4);
        app.stop().await;
    })
    .await;
}

#[tokio::test]
async fn a_batched_post_stores_every_event_of_every_entry() {
    on_every_backend(|backend| async move {
        let app = spawn_app(&backend).await;
        let events = |page: &str, n: u32| -> Vec<serde_json::Value> {
            (0..n)
                .map(|i| {
                    let mut e = text_event(&format!("U{i}"), &format!("m.{page}.{i}"), "hi");
                    e["recipient"]["id"] = json!(page);
                    e
                })
                .collect()
        };
        let body = webhook_body(&[(PAGE_ID, events(PAGE_ID, 3)), ("2222", events("2222", 3))]);
        let response = app.post_signed_webhook(&body).await;
        assert_eq!(response.status(), 200);
        assert_eq!(response.text().await.unwrap(), "EVENT_RECEIVED");
        let rows = app.inbox().await;
        assert_eq!(rows.len(), 6);
        assert_eq!(rows.iter().filter(|r| r.page_id == "2222").count(), 3);
        app.stop().await;
    })
    .await;
}

#[tokio::test]
async fn standby_and_receipt_events_are_stored_too() {
    on_every_backend(|backend| async move {
        let app = spawn_app(&backend).await;
        let body = json!({"object": "page", "entry": [{
            "id": PAGE_ID, "time": 1,
            "messaging": [
                {"sender": {"id": "U1"}, "recipient": {"id": PAGE_ID}, "timestamp": 5,
                 "delivery": {"mids": ["m.x"], "watermark": 5}},
                {"sender": {"id": "U1"}, "recipient": {"id": PAGE_ID}, "timestamp": 6,
                 "read": {"watermark": 6}}
            ],
            "standby": [
                {"sender": {"id": "U2"}, "recipient": {"id": PAGE_ID}, "timestamp": 7,
                 "message": {"mid": "m.standby", "text": "hello other app"}}
            ]
        }]});
        assert_eq!(app.post_signed_webhook(&body).await.status(), 200);
        let rows = app.inbox_settled().await;
        let kinds: Vec<_> = rows.iter().map(|r| r.kind.as_str()).collect();
        assert_eq!(kinds, ["delivery", "read", "message"]);
        assert_eq!(rows[0].outcome.as_deref(), Some("recorded"));
        assert_eq!(
            rows[2].outcome.as_deref(),
            Some("standby: another app owns the thread")
        );
        app.stop().await;
    })
    .await;
}

#[tokio::test]
async fn health_and_metrics_report_the_service() {
    on_every_backend(|backend| async move {
        let app = spawn_app(&backend).await;
        let health = app
            .http
            .get(format!("{}/health", app.address))
            .send()
            .await
            .unwrap();
        assert_eq!(health.status(), 200);
        // Meta redelivers the same body.
        let message = text_message("U1", "m.1", "hi");
        app.post_signed_webhook(&message).await;
        app.post_signed_webhook(&message).await;
        app.post_webhook(b"{}", None).await;
        let metrics = app
            .http
            .get(format!("{}/metrics", app.address))
            .send()
            .await
            .unwrap();
        let text = metrics.text().await.unwrap();
        for line in [
            "lexbridge_webhook_requests_total 3",
            "lexbridge_webhook_rejected_total 1",
            "lexbridge_webhook_events_stored_total 1",
            "lexbridge_webhook_events_duplicate_total 1",
        ] {
            assert!(text.contains(line), "{line} missing from\n{text}");
        }
        let figure = |name: &str| -> u64 {
            let line = text
                .lines()
                .find(|l| l.starts_with(&format!("{name} ")))
                .unwrap();
            line[name.len() + 1..].parse().unwrap()
        };
        // The committer stored the events (and claimed them) in commits it timed.
        assert!(figure("lexbridge_commits_total") >= 1, "{text}");
        assert!(
            figure("lexbridge_slowest_commit_microseconds") > 0,
            "{text}"
        );
        assert!(
            figure("lexbridge_commit_microseconds_total")
                >= figure("lexbridge_slowest_commit_microseconds")
        );
        app.stop().await;
    })
    .await;
}

/// Migration 0020: the rows of the last 7 days stored under a plain mid
/// key (before keys led with the time) take the key a redelivery of their
/// event now gets, so it is still known again; older rows, keys that are
/// not their event's mid key, and events without a usable timestamp keep
/// theirs.
#[tokio::test]
async fn events_stored_before_time_ordered_keys_are_still_known_again() {
    on_every_backend(|backend| async move {
        let db = TestDb::new(&backend).await;
        let store = db.store().await;
        let now = lexbridge::store::now_ms();
        let day = 86_400_000i64;
        let event = |part: &str, mid: &str, ts: &str, more: &str| {
            format!(
                r#"{{"sender":{{"id":"U1"}},"recipient":{{"id":"{PAGE_ID}"}},"timestamp":{ts},"{part}":{{"mid":"{mid}"{more}}}}}"#
            )
        };
        let stored = [
            // (object, kind, key before, event, received)
            ("page", "message", "mid:m_recent", event("message", "m_recent", "1700000000123", r#","text":"hi""#), now - day),
            ("page", "postback", "postback:m_pb", event("postback", "m_pb", "1700000000124", r#","payload":"GO""#), now),
            ("instagram", "message", "instagram|mid:ig_1", event("message", "ig_1", "1700000000125", r#","text":"hey""#), now),
            ("page", "echo", "mid:m_echo", event("message", "m_echo", "1700000000126", r#","is_echo":true,"text":"yo""#), now),
            // Postgres's jsonb refuses a \u0000 escape; the timestamp is read all the same.
            ("page", "message", "mid:m_nul", event("message", "m_nul", "1700000000127", r#","text":"a\u0000b""#), now),
            ("page", "message", "mid:m_old", event("message", "m_old", "1700000000128", r#","text":"hi""#), now - 8 * day),
            ("page", "message", "mid:m_none", r#"{"sender":{"id":"U1"},"message":{"mid":"m_none"}}"#.to_string(), now),
            ("page", "message", "mid:m_big", event("message", "m_big", "10000000000000", r#","text":"hi""#), now),
            // A postback without a mid is keyed by sender and time.
            ("page", "postback", "postback:PAGE:U1:1700000000129", r#"{"sender":{"id":"U1"},"recipient":{"id":"PAGE"},"timestamp":1700000000129,"postback":{"payload":"GO"}}"#.to_string(), now),
            // A key that is not its event's mid key.
            ("page", "message", "mid:someone_else", event("message", "m_mine", "1700000000130", r#","text":"hi""#), now),
        ];
        for (object, kind, key, event, received) in &stored {
            exec_on(
                &store,
                &format!(
                    "INSERT INTO inbox (object, page_id, psid, kind, dedupe_key, event, state, next_attempt_at, received_at)
                     VALUES ('{object}', '{PAGE_ID}', 'U1', '{kind}', '{key}', '{event}', 'done', 0, {received})"
                ),
            )
            .await;
        }
        // As if the database had been left at migration 19.
        exec_on(&store, "DELETE FROM _sqlx_migrations WHERE version = 20").await;
        store.migrate().await.expect("migration 0020 applies");
        let keys: Vec<(String,)> = rows_on(&store, "SELECT dedupe_key FROM inbox ORDER BY id").await;
        let keys: Vec<&str> = keys.iter().map(|(k,)| k.as_str()).collect();
        assert_eq!(
            keys,
            [
                "mid@1700000000123:m_recent",
                "postback@1700000000124:m_pb",
                "instagram|mid@1700000000125:ig_1",
                "mid@1700000000126:m_echo",
                "mid@1700000000127:m_nul",
                "mid:m_old",
                "mid:m_none",
                "mid:m_big",
                "postback:PAGE:U1:1700000000129",
                "mid:someone_else",
            ]
        );
        // Each rewritten row's key is the one its redelivery is given, and
        // its turn is keyed as before.
        for ((object, _, before, event, _), key) in stored.iter().zip(&keys).take(5) {
            let body = format!(r#"{{"object":"{object}","entry":[{{"id":"{PAGE_ID}","time":1,"messaging":[{event}]}}]}}"#);
            let again = lexbridge::facebook::envelope::inbox_events(body.as_bytes(), now).unwrap();
            assert_eq!(again[0].dedupe_key, *key);
            assert_eq!(lexbridge::facebook::envelope::turn_key(key), *before);
        }
        drop(store);
    })
    .await;
}
