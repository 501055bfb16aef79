//! The outbox worker against a wiremock Send API: retries, permanent
//! failures, appsecret_proof, order, receipts.

use crate::helpers::*;
use lexbridge::facebook::graph::{appsecret_proof, Unsent};
use lexbridge::facebook::{GraphError, SendResponse};
use lexbridge::store::now_ms;
use lexbridge::store::outbox::NewOutboxMessage;
use serde_json::json;
use std::time::Duration;
use wiremock::matchers::{method, path};
use wiremock::{Mock, ResponseTemplate};

fn text(psid: &str, text: &str) -> NewOutboxMessage {
    NewOutboxMessage {
        page_id: PAGE_ID.into(),
        psid: psid.into(),
        body: json!({"message": {"text": text}}).to_string(),
        messaging_type: "UPDATE".into(),
        tag: None,
        origin: "api",
        inbox_id: None,
        state: lexbridge::store::outbox::OutboxState::Queued,
        public_id: None,
        api_key_id: None,
        hold_until: None,
        window: None,
    }
}

fn ok(message_id: &str) -> ResponseTemplate {
    ResponseTemplate::new(200)
        .set_body_json(json!({"recipient_id": "U1", "message_id": message_id}))
}

fn graph_error(status: u16, code: i64, subcode: Option<i64>, message: &str) -> ResponseTemplate {
    ResponseTemplate::new(status).set_body_json(json!({"error": {
        "message": message, "type": "OAuthException", "code": code,
        "error_subcode": subcode, "fbtrace_id": "AbCdEf123"}}))
}

async fn enqueue(app: &TestApp, messages: &[NewOutboxMessage]) {
    app.store.enqueue(messages, now_ms()).await.unwrap()
}

#[tokio::test]
async fn a_500_then_200_delivers_exactly_once() {
    on_every_backend(|backend| async move {
        let app = spawn_app(&backend).await;
        Mock::given(method("POST")).and(path(SEND_PATH)).and(ValidProof)
            .respond_with(graph_error(500, 2, None, "Service temporarily unavailable"))
            .up_to_n_times(1).expect(1).mount(&app.graph).await;
        Mock::given(method("POST")).and(path(SEND_PATH)).and(ValidProof)
            .respond_with(ok("m.sent")).expect(1).mount(&app.graph).await;
        enqueue(&app, &[text("U1", "hello")]).await;
        let rows = app.outbox_settled().await;
        assert_eq!(rows[0].state, "sent");
        assert_eq!(rows[0].attempts, 2);
        assert_eq!(rows[0].message_id.as_deref(), Some("m.sent"));
        let bodies = sent_bodies(&app.graph).await;
        assert_eq!(bodies.len(), 2);
        assert_eq!(bodies[1], json!({"recipient": {"id": "U1"}, "messaging_type": "UPDATE", "message": {"text": "hello"}}));
        app.stop().await;
    })
    .await;
}

#[tokio::test]
async fn rate_limit_613_is_retried() {
    on_every_backend(|backend| async move {
        let app = spawn_app(&backend).await;
        Mock::given(method("POST"))
            .and(path(SEND_PATH))
            .respond_with(graph_error(
                400,
                613,
                None,
                "Calls to this api have exceeded the rate limit.",
            ))
            .up_to_n_times(2)
            .expect(2)
            .mount(&app.graph)
            .await;
        Mock::given(method("POST"))
            .and(path(SEND_PATH))
            .respond_with(ok("m.after"))
            .expect(1)
            .mount(&app.graph)
            .await;
        enqueue(&app, &[text("U1", "hello")]).await;
        let rows = app.outbox_settled().await;
        assert_eq!((rows[0].state.as_str(), rows[0].attempts), ("sent", 3));
        app.stop().await;
    })
    .await;
}

#[tokio::test]
async fn outside_window_and_unavailable_fail_at_once_with_the_code_kept() {
    on_every_backend(|backend| async move {
        let app = spawn_app(&backend).await;
        Mock::given(method("POST"))
            .and(path(SEND_PATH))
            .and(wiremock::matchers::body_partial_json(
                json!({"recipient": {"id": "OUTSIDE"}}),
            ))
            .respond_with(graph_error(
                400,
                10,
                Some(2018278),
                "(#10) This message is sent outside of allowed window.",
            ))
            .expect(1)
            .mount(&app.graph)
            .await;
        Mock::given(method("POST"))
            .and(path(SEND_PATH))
            .and(wiremock::matchers::body_partial_json(
                json!({"recipient": {"id": "GONE"}}),
            ))
            .respond_with(graph_error(
                400,
                551,
                Some(1545041),
                "This person isn't available right now.",
            ))
            .expect(1)
            .mount(&app.graph)
            .await;
        enqueue(&app, &[text("OUTSIDE", "hi"), text("GONE", "hi")]).await;
        let rows = app.outbox_settled().await;
        assert_eq!(rows[0].state, "failed");
        assert_eq!(
            (rows[0].error_code, rows[0].error_subcode),
            (Some(10), Some(2018278))
        );
        assert_eq!(rows[0].attempts, 1);
        assert_eq!(rows[1].state, "failed");
        assert_eq!(
            (rows[1].error_code, rows[1].error_subcode),
            (Some(551), Some(1545041))
        );
        assert!(rows[1]
            .error_message
            .as_deref()
            .unwrap()
            .contains("isn't available"));
        app.stop().await;
    })
    .await;
}

#[tokio::test]
async fn appsecret_proof_on_the_wire_is_the_hmac_of_the_page_token() {
    on_every_backend(|backend| async move {
        let app = spawn_app(&backend).await;
        Mock::given(method("POST"))
            .and(path(SEND_PATH))
            .respond_with(ok("m.1"))
            .expect(1)
            .mount(&app.graph)
            .await;
        enqueue(&app, &[text("U1", "hello")]).await;
        app.outbox_settled().await;
        let requests = sends(&app).await;
        let query: std::collections::HashMap<_, _> =
            requests[0].url.query_pairs().into_owned().collect();
        assert_eq!(query["access_token"], PAGE_TOKEN);
        // printf %s test-page-token | openssl dgst -sha256 -hmac test-app-secret
        assert_eq!(
            query["appsecret_proof"],
            appsecret_proof(APP_SECRET, PAGE_TOKEN)
        );
        assert_eq!(query["appsecret_proof"].len(), 64);
        app.stop().await;
    })
    .await;
}

#[tokio::test]
async fn each_recipient_receives_messages_in_order_under_concurrency() {
    on_every_backend(|backend| async move {
        let app = spawn_app(&backend).await;
        Mock::given(method("POST"))
            .and(path(SEND_PATH))
            .respond_with(ok("m").set_delay(Duration::from_millis(3)))
            .mount(&app.graph)
            .await;
        let people = ["P1", "P2", "P3", "P4", "P5"];
        let messages: Vec<_> = (0..20)
            .flat_map(|i| people.map(|p| text(p, &format!("{p}-{i:02}"))))
            .collect();
        // Queue from several tasks at once, in per-person order.
        for chunk in messages.chunks(25) {
            enqueue(&app, chunk).await;
        }
        let rows = app.outbox_settled().await;
        assert!(rows.iter().all(|r| r.state == "sent"));
        let bodies = sent_bodies(&app.graph).await;
        for p in people {
            let seen: Vec<String> = bodies
                .iter()
                .filter(|b| b["recipient"]["id"] == p)
                .map(|b| b["message"]["text"].as_str().unwrap().to_string())
                .collect();
            let expected: Vec<String> = (0..20).map(|i| format!("{p}-{i:02}")).collect();
            assert_eq!(seen, expected);
        }
        app.stop().await;
    })
    .await;
}

#[tokio::test]
async fn delivery_and_read_receipts_move_the_status() {
    on_every_backend(|backend| async move {
        let app = spawn_app(&backend).await;
        Mock::given(method("POST")).and(path(SEND_PATH)).and(wiremock::matchers::body_partial_json(json!({"message": {"text": "one"}})))
            .respond_with(ok("m.one")).mount(&app.graph).await;
        Mock::given(method("POST")).and(path(SEND_PATH)).and(wiremock::matchers::body_partial_json(json!({"message": {"text": "two"}})))
            .respond_with(ok("m.two")).mount(&app.graph).await;
        enqueue(&app, &[text("U1", "one"), text("U1", "two")]).await;
        app.outbox_settled().await;
        let delivery = json!({"sender": {"id": "U1"}, "recipient": {"id": PAGE_ID}, "timestamp": now_ms(),
                              "delivery": {"mids": ["m.one"], "watermark": 1}});
        app.post_signed_webhook(&webhook_body(&[(PAGE_ID, vec![delivery])])).await;
        app.inbox_settled().await;
        let states: Vec<_> = app.outbox().await.into_iter().map(|r| r.state).collect();
        assert_eq!(states, ["delivered", "sent"]);
        let read = json!({"sender": {"id": "U1"}, "recipient": {"id": PAGE_ID}, "timestamp": now_ms() + 1,
                          "read": {"watermark": now_ms() + 1000}});
        app.post_signed_webhook(&webhook_body(&[(PAGE_ID, vec![read])])).await;
        app.inbox_settled().await;
        let states: Vec<_> = app.outbox().await.into_iter().map(|r| r.state).collect();
        assert_eq!(states, ["read", "read"]);
        assert_eq!(sent_bodies(&app.graph).await.len(), 2);
        app.stop().await;
    })
    .await;
}

#[tokio::test]
async fn other_pages_send_with_their_stored_encrypted_token() {
    on_every_backend(|backend| async move {
        let app = spawn_app(&backend).await;
        let cipher =
            lexbridge::crypto::TokenCipher::from_base64(&TOKEN_KEY.to_string().into()).unwrap();
        let sealed = cipher.encrypt(&"second-page-token".to_string().into());
        app.store
            .set_page("2222", Some("Second"), &sealed, now_ms())
            .await
            .unwrap();
        Mock::given(method("POST"))
            .and(path("/v25.0/2222/messages"))
            .and(ValidProof)
            .respond_with(ok("m.2"))
            .expect(1)
            .mount(&app.graph)
            .await;
        let mut message = text("U1", "hello from page two");
        message.page_id = "2222".into();
        let mut unknown = text("U1", "nobody sends for this page");
        unknown.page_id = "3333".into();
        enqueue(&app, &[message, unknown]).await;
        let rows = app.outbox_settled().await;
        assert_eq!(rows[0].state, "sent");
        assert_eq!(rows[1].state, "failed");
        assert!(rows[1]
            .error_message
            .as_deref()
            .unwrap()
            .contains("no access token"));
        let requests = sends(&app).await;
        let query: std::collections::HashMap<_, _> =
            requests[0].url.query_pairs().into_owned().collect();
        assert_eq!(query["access_token"], "second-page-token");
        app.stop().await;
    })
    .await;
}

/// Answers 500 (Graph code 2) `fail_first` times, then 200; notes when
/// each call came.
struct Timed {
    fail_first: usize,
    times: std::sync::Arc<std::sync::Mutex<Vec<std::time::Instant>>>,
}

impl wiremock::Respond for Timed {
    fn respond(&self, _: &wiremock::Request) -> ResponseTemplate {
        let mut times = self.times.lock().unwrap();
        times.push(std::time::Instant::now());
        if times.len() <= self.fail_first {
            graph_error(500, 2, None, "Service temporarily unavailable")
        } else {
            ok("m.late")
        }
    }
}

#[tokio::test]
async fn retries_wait_out_their_backoff() {
    on_every_backend(|backend| async move {
        let graph = wiremock::MockServer::start().await;
        let db = TestDb::new(&backend).await;
        // Each retry waits between 200 and 400 ms (half to all of the base).
        let extra = [("RETRY_BASE_MS", "400"), ("RETRY_MAX_MS", "400")];
        let app = start(db, graph, Default::default(), &extra).await;
        let times = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let timed = Timed {
            fail_first: 2,
            times: times.clone(),
        };
        Mock::given(method("POST"))
            .and(path(SEND_PATH))
            .and(ValidProof)
            .respond_with(timed)
            .mount(&app.graph)
            .await;
        enqueue(&app, &[text("U1", "hello")]).await;
        let rows = app.outbox_settled().await;
        assert_eq!((rows[0].state.as_str(), rows[0].attempts), ("sent", 3));
        let times = times.lock().unwrap().clone();
        for pair in times.windows(2) {
            let gap = pair[1] - pair[0];
            assert!(gap >= Duration::from_millis(200), "retried after {gap:?}");
        }
        app.stop().await;
    })
    .await;
}

#[tokio::test]
async fn a_send_that_times_out_is_retried() {
    on_every_backend(|backend| async move {
        let app = spawn_app(&backend).await;
        // GRAPH_REQUEST_TIMEOUT_MS is 2000 in tests.
        Mock::given(method("POST"))
            .and(path(SEND_PATH))
            .respond_with(ok("m.slow").set_delay(Duration::from_secs(3)))
            .up_to_n_times(1)
            .expect(1)
            .mount(&app.graph)
            .await;
        Mock::given(method("POST"))
            .and(path(SEND_PATH))
            .respond_with(ok("m.fast"))
            .expect(1)
            .mount(&app.graph)
            .await;
        enqueue(&app, &[text("U1", "hello")]).await;
        let rows = app.outbox_settled().await;
        assert_eq!(rows[0].state, "sent");
        assert_eq!(rows[0].attempts, 2);
        assert_eq!(rows[0].message_id.as_deref(), Some("m.fast"));
        app.stop().await;
    })
    .await;
}

#[tokio::test]
async fn a_late_copy_of_a_send_outcome_cannot_undo_its_delivery() {
    use lexbridge::store::outbox::{OutboxOutcome, OutboxTurn};
    use lexbridge::store::writer::Write;
    on_every_backend(|backend| async move {
        let app = spawn_app(&backend).await;
        // A message in hand, as the outbox worker holds it while it sends.
        app.exec(
            "INSERT INTO outbox (page_id, psid, body, messaging_type, origin, state, locked_until, next_attempt_at, created_at)
             VALUES ('1111', 'U1', '{\"text\":\"hi\"}', 'RESPONSE', 'reply', 'sending', 9999999999999, 0, 0)",
        )
        .await;
        let id = app.count("SELECT MAX(id) FROM outbox").await;
        let sent = || {
            Write::FinishOutbox(OutboxTurn {
                outcome: OutboxOutcome::Sent {
                    id,
                    attempts: 1,
                    message_id: Some("m.sent".into()),
                    at: 1,
                },
                lease_until: 9999999999999,
            })
        };
        app.writer.write(sent()).await.unwrap();
        app.exec(&format!(
            "UPDATE outbox SET state = 'delivered' WHERE id = {id}"
        ))
        .await;
        // The same outcome again (a retry after a commit whose outcome was
        // lost) finds the message delivered and leaves it so.
        app.writer.write(sent()).await.unwrap();
        let delivered = format!(
            "SELECT COUNT(*) FROM outbox WHERE id = {id} AND state = 'delivered' AND attempts = 1"
        );
        assert_eq!(app.count(&delivered).await, 1);
        app.stop().await;
    })
    .await;
}

/// Answers a batch request's calls, the last one refused with 551 (the
/// person is unavailable) and the others sent, each with its own id.
struct BatchRefusingTheLast;

impl wiremock::Respond for BatchRefusingTheLast {
    fn respond(&self, request: &wiremock::Request) -> ResponseTemplate {
        let calls = batch_calls(request).unwrap_or_default();
        let answers: Vec<serde_json::Value> = calls
            .iter()
            .enumerate()
            .map(|(i, call)| {
                let psid = call["recipient"]["id"].as_str().unwrap_or_default();
                if i + 1 == calls.len() {
                    let refused = json!({"error": {"message": "This person isn't available right now.",
                        "type": "OAuthException", "code": 551, "error_subcode": 1545041}});
                    return json!({"code": 400, "body": refused.to_string()});
                }
                let sent = json!({"recipient_id": psid, "message_id": format!("m.batch.{psid}")});
                json!({"code": 200, "body": sent.to_string()})
            })
            .collect();
        ResponseTemplate::new(200).set_body_json(answers)
    }
}

/// Messages that wait while every send is in flight go together in one
/// Graph batch request, and each keeps its own outcome: the refused call
/// fails its own row only, the others are sent with their own ids.
#[tokio::test]
async fn messages_waiting_together_go_in_one_batch_request_each_with_its_own_outcome() {
    on_every_backend(|backend| async move {
        let app = spawn_app(&backend).await;
        // Lone calls answer slowly: the sends after the flushers' eight wait.
        Mock::given(method("POST"))
            .and(path(SEND_PATH))
            .and(ValidProof)
            .respond_with(ok("m.alone").set_delay(Duration::from_millis(700)))
            .mount(&app.graph)
            .await;
        Mock::given(method("POST"))
            .and(path("/v25.0/"))
            .and(ValidProof)
            .respond_with(BatchRefusingTheLast)
            .mount(&app.graph)
            .await;
        let people: Vec<String> = (1..=12).map(|n| format!("U{n}")).collect();
        let messages: Vec<_> = people.iter().map(|p| text(p, "hello")).collect();
        enqueue(&app, &messages).await;
        let rows = app.outbox_settled().await;
        let requests = app.graph.received_requests().await.unwrap();
        let lone = requests
            .iter()
            .filter(|r| r.url.path() == SEND_PATH)
            .count();
        let batches = batches(&app).await;
        assert_eq!(
            (lone, batches.len()),
            (8, 1),
            "eight alone, the rest together"
        );
        let batched: Vec<&str> = batches[0]
            .iter()
            .map(|c| c["recipient"]["id"].as_str().unwrap_or_default())
            .collect();
        assert_eq!(batched.len(), 4);
        for call in &batches[0] {
            assert_eq!(call["message"], json!({"text": "hello"}));
            assert_eq!(call["messaging_type"], "UPDATE");
        }
        let refused = batched[3];
        for row in &rows {
            if row.psid == refused {
                assert_eq!(row.state, "failed", "{row:?}");
                assert_eq!(
                    (row.error_code, row.error_subcode),
                    (Some(551), Some(1545041))
                );
            } else if batched.contains(&row.psid.as_str()) {
                assert_eq!(row.state, "sent", "{row:?}");
                assert_eq!(row.message_id, Some(format!("m.batch.{}", row.psid)));
            } else {
                assert_eq!(
                    (row.state.as_str(), row.message_id.as_deref()),
                    ("sent", Some("m.alone"))
                );
            }
            assert_eq!(row.attempts, 1, "{row:?}");
        }
        app.stop().await;
    })
    .await;
}

/// `AppState::send_message` for people `U{from}`.. of `PAGE_ID`, each in
/// a task of its own.
fn send_each(app: &TestApp, people: std::ops::Range<usize>) -> Vec<Sending> {
    people
        .map(|n| {
            let shared = app.shared.clone();
            tokio::spawn(async move {
                let token = shared.page_token(PAGE_ID).await.expect("the Page's token");
                let payload =
                    json!({"recipient": {"id": format!("U{n}")}, "message": {"text": "hi"}});
                shared.send_message(PAGE_ID, &token, payload).await
            })
        })
        .collect()
}

type Sending = tokio::task::JoinHandle<Result<SendResponse, Unsent>>;

/// `lexbridge_send_api_seconds` times each message by the request that
/// carried it: the four that waited in their Page's queue while the eight
/// flushers' slow lone calls ran are timed from when their batch left, not
/// from when they joined the queue (the wait is the Page's pace, not Meta's
/// latency).
#[tokio::test]
async fn a_message_that_waited_for_its_turn_is_timed_by_its_own_request() {
    let app = spawn_app(&Backend::Sqlite).await;
    slow_alone_then_batch(&app, 1500, BatchAnswers).await;
    let messages: Vec<_> = (1..=12).map(|n| text(&format!("U{n}"), "hi")).collect();
    enqueue(&app, &messages).await;
    let rows = app.outbox_settled().await;
    assert!(rows.iter().all(|r| r.state == "sent"), "{rows:?}");
    let batched: usize = batches(&app).await.iter().map(Vec::len).sum();
    assert_eq!(batched, 4, "four waited for a batch");

    assert_eq!(send_api_timings(&app).await, 12.0);
    let metrics = app.metrics().await;
    assert_eq!(
        metric_value(&metrics, "lexbridge_send_api_seconds_bucket{le=\"1.024\"}"),
        4.0,
        "the four batched took their own request's time, the eight lone calls over a second"
    );
    app.stop().await;
}

/// A quiet app whose lone Send API calls answer after 700 ms and whose
/// batch requests get `batch`; eight sends in flight (every flusher of
/// the Page busy), then three more waiting behind them. The app, the
/// eight and the three.
async fn three_waiting_behind_eight(
    batch: impl wiremock::Respond + 'static,
) -> (TestApp, Vec<Sending>, Vec<Sending>) {
    let app = quiet_app(&Backend::Sqlite, &[]).await;
    slow_alone_then_batch(&app, 700, batch).await;
    let lone = send_each(&app, 0..8);
    wait_until("eight calls in flight", || async {
        let requests = app.graph.received_requests().await.unwrap_or_default();
        requests
            .iter()
            .filter(|r| r.url.path() == SEND_PATH)
            .count()
            == 8
    })
    .await;
    let waiting = send_each(&app, 8..11);
    tokio::time::sleep(Duration::from_millis(100)).await;
    (app, lone, waiting)
}

/// Lone Send API calls answer after `delay_ms`; batch requests get `batch`.
async fn slow_alone_then_batch(
    app: &TestApp,
    delay_ms: u64,
    batch: impl wiremock::Respond + 'static,
) {
    Mock::given(method("POST"))
        .and(path(SEND_PATH))
        .respond_with(ok("m.alone").set_delay(Duration::from_millis(delay_ms)))
        .mount(&app.graph)
        .await;
    Mock::given(method("POST"))
        .and(path("/v25.0/"))
        .respond_with(batch)
        .mount(&app.graph)
        .await;
}

/// The calls of each batch request Graph received.
async fn batches(app: &TestApp) -> Vec<Vec<serde_json::Value>> {
    let requests = app.graph.received_requests().await.unwrap_or_default();
    requests.iter().filter_map(batch_calls).collect()
}

/// The observations of `lexbridge_send_api_seconds`.
async fn send_api_timings(app: &TestApp) -> f64 {
    metric_value(&app.metrics().await, "lexbridge_send_api_seconds_count ")
}

/// The value of the first line of `metrics` that starts with `name`.
fn metric_value(metrics: &str, name: &str) -> f64 {
    let line = metrics
        .lines()
        .find(|l| l.starts_with(name))
        .unwrap_or_else(|| panic!("{name} in {metrics}"));
    line.rsplit(' ').next().unwrap().parse().unwrap()
}

/// What each send got, in order.
async fn outcomes(sending: Vec<Sending>) -> Vec<Result<SendResponse, Unsent>> {
    let mut got = Vec::new();
    for sent in sending {
        got.push(sent.await.expect("no panic"));
    }
    got
}

/// Each of the sends was sent.
async fn all_sent(sending: Vec<Sending>) {
    let got = outcomes(sending).await;
    assert!(got.iter().all(Result::is_ok), "{got:?}");
}

/// Of calls whose batch failed as a whole with an error that may pass:
/// one carries it (returned), the others go back without an attempt.
fn carried_once(got: &[Result<SendResponse, Unsent>]) -> &GraphError {
    let own: Vec<&GraphError> = got
        .iter()
        .filter_map(|g| match g {
            Err(Unsent::Graph(e)) => Some(e),
            _ => None,
        })
        .collect();
    let later = got
        .iter()
        .filter(|g| matches!(g, Err(Unsent::Later(None))))
        .count();
    assert_eq!((own.len(), later), (1, got.len() - 1), "{got:?}");
    own[0]
}

/// A cool-down that begins while messages wait in the queue holds them
/// too: they are not sent, and each is deferred to the cool-down's end
/// without an attempt (the check is made as the batch leaves).
#[tokio::test]
async fn messages_waiting_for_a_page_that_starts_cooling_down_are_deferred_not_sent() {
    let (app, lone, waiting) = three_waiting_behind_eight(ResponseTemplate::new(200)).await;
    let until = now_ms() + 60_000;
    app.shared.cooldowns.adopt(PAGE_ID, until);
    for got in outcomes(waiting).await {
        match got {
            Err(Unsent::Later(Some(at))) => assert_eq!(at, until),
            other => panic!("not deferred to the cool-down's end: {other:?}"),
        }
    }
    all_sent(lone).await;
    assert!(batches(&app).await.is_empty(), "no batch sent");
    assert_eq!(
        send_api_timings(&app).await,
        8.0,
        "the deferred were not timed"
    );
    app.stop().await;
}

/// A batch request that fails as a whole is one failure, not one per
/// call: its first call carries it (toward the Page's cool-down and the
/// retry rules), the others are deferred without an attempt.
#[tokio::test]
async fn a_batch_that_fails_as_a_whole_counts_once() {
    let failed = graph_error(500, 2, None, "Service temporarily unavailable");
    let (app, lone, waiting) = three_waiting_behind_eight(failed).await;
    let got = outcomes(waiting).await;
    let e = carried_once(&got);
    assert_eq!((e.http_status, e.code), (Some(500), Some(2)));
    all_sent(lone).await;
    assert_eq!(batches(&app).await.len(), 1, "one batch");
    assert_eq!(
        send_api_timings(&app).await,
        9.0,
        "eight alone and the batch's one failure; the others are timed when they go again"
    );
    app.stop().await;
}

/// A batch that fails as a whole with an error that will not pass (the
/// token refused) is each call's own, as it would be alone.
#[tokio::test]
async fn a_batch_refused_as_a_whole_for_good_is_each_calls_failure() {
    let refused = graph_error(401, 190, None, "Error validating access token");
    let (app, lone, waiting) = three_waiting_behind_eight(refused).await;
    for got in outcomes(waiting).await {
        match got {
            Err(Unsent::Graph(e)) => assert!(e.is_token_refused(), "{e:?}"),
            other => panic!("{other:?}"),
        }
    }
    all_sent(lone).await;
    app.stop().await;
}

/// A batch answer that does not hold one answer a call is not what Meta
/// sends: a bad gateway, carried once and retried like a 5xx.
#[tokio::test]
async fn a_batch_answer_missing_calls_is_retried_like_a_bad_gateway() {
    let short = ResponseTemplate::new(200).set_body_json(json!([]));
    let (app, lone, waiting) = three_waiting_behind_eight(short).await;
    let got = outcomes(waiting).await;
    assert_eq!(carried_once(&got).http_status, Some(502));
    all_sent(lone).await;
    app.stop().await;
}

/// One Page whose calls are slow holds up only its own messages: another
/// Page's message goes at once, as an ordinary call.
#[tokio::test]
async fn a_slow_page_holds_up_only_its_own_messages() {
    let (app, lone, waiting) = three_waiting_behind_eight(BatchAnswers).await;
    Mock::given(method("POST"))
        .and(path("/v25.0/2222/messages"))
        .respond_with(ok("m.other"))
        .mount(&app.graph)
        .await;
    let shared = app.shared.clone();
    let other = tokio::spawn(async move {
        let token = shared.page_token(PAGE_ID).await.expect("a token");
        let payload = json!({"recipient": {"id": "V1"}, "message": {"text": "hi"}});
        shared.send_message("2222", &token, payload).await
    });
    let mut first_lone = lone;
    let first = first_lone.remove(0);
    tokio::select! {
        biased;
        sent = other => assert_eq!(
            sent.expect("no panic").expect("sent").message_id.as_deref(),
            Some("m.other")
        ),
        _ = first => panic!("the other Page's message waited for this Page's calls"),
    }
    all_sent(first_lone).await;
    all_sent(waiting).await;
    app.stop().await;
}

/// The Send API calls Graph received (not the start-up token check).
async fn sends(app: &TestApp) -> Vec<wiremock::Request> {
    let mut requests = app.graph.received_requests().await.unwrap();
    requests.retain(|r| r.url.path().ends_with("/messages"));
    requests
}

/// An app whose Page sends one message a second, every send answered.
pub(crate) async fn one_send_a_second(backend: &Backend) -> TestApp {
    let app = spawn_app_with_settings(backend, &[("SEND_RATE_PER_PAGE", "1")]).await;
    Mock::given(method("POST"))
        .and(path(SEND_PATH))
        .respond_with(ok("m.sent"))
        .mount(&app.graph)
        .await;
    app
}

/// A text to each of `n` people, `U1` to `Un`.
fn to_people(n: usize) -> Vec<NewOutboxMessage> {
    (1..=n).map(|i| text(&format!("U{i}"), "hello")).collect()
}

/// Stopping an instance puts the messages still waiting for the Page's send
/// rate back in the queue at once, instead of sending them at the rate (or
/// leaving them leased): another instance, or this one after a restart,
/// sends them without waiting out a lease.
#[tokio::test]
async fn a_stop_puts_messages_waiting_for_the_send_rate_back_at_once() {
    on_every_backend(|backend| async move {
        // One call a second: the first message goes, the others wait.
        let app = one_send_a_second(&backend).await;
        enqueue(&app, &to_people(6)).await;
        wait_until("the first message sent", || async {
            app.count("SELECT COUNT(*) FROM outbox WHERE state = 'sent'")
                .await
                >= 1
        })
        .await;
        wait_until("the others claimed", || async {
            app.count("SELECT COUNT(*) FROM outbox WHERE state = 'queued'")
                .await
                == 0
        })
        .await;
        let (db, graph) = app.stop().await;
        let store = lexbridge::store::Store::connect(&lexbridge::config::DatabaseSettings::new(
            db.url.clone(),
        ))
        .await
        .unwrap();
        let rows = store.outbox_records().await.unwrap();
        let sent = rows.iter().filter(|r| r.state == "sent").count();
        let queued = rows.iter().filter(|r| r.state == "queued").count();
        // At one send a second, a stop right after the first leaves most
        // waiting; before, the stop sent them all first.
        assert!(sent >= 1 && queued >= 3, "{rows:?}");
        assert_eq!(sent + queued, 6, "none left in hand: {rows:?}");
        let mut calls = graph.received_requests().await.unwrap();
        calls.retain(|r| r.url.path().ends_with("/messages"));
        assert_eq!(sent, calls.len());
        assert!(rows.iter().all(|r| r.attempts <= 1), "{rows:?}");
    })
    .await;
}

/// A message waits in hand for its Page's send rate only while its lease
/// is sure to outlast the wait: one whose turn comes later goes back to the
/// queue until then. Before, a Page at a slow rate and a big batch left
/// rows leased past their lease, and a second claim sent them twice.
#[tokio::test]
async fn a_message_whose_turn_at_the_send_rate_outlasts_half_a_lease_waits_queued() {
    on_every_backend(|backend| async move {
        // One call a second: row n's turn comes n seconds from now.
        let app = one_send_a_second(&backend).await;
        let start = now_ms();
        enqueue(&app, &to_people(80)).await;
        // In hand, sent, queued for a turn past half a lease, queued due:
        // read in one statement, so the counts agree.
        let counts_sql = format!(
            "SELECT CAST(SUM(CASE WHEN state = 'sending' THEN 1 ELSE 0 END) AS BIGINT),
                    CAST(SUM(CASE WHEN state = 'sent' THEN 1 ELSE 0 END) AS BIGINT),
                    CAST(SUM(CASE WHEN state = 'queued' AND next_attempt_at >= {0} THEN 1 ELSE 0 END) AS BIGINT),
                    CAST(SUM(CASE WHEN state = 'queued' AND next_attempt_at < {0} THEN 1 ELSE 0 END) AS BIGINT)
             FROM outbox",
            start + 55_000
        );
        let counts = || async {
            let rows: Vec<(i64, i64, i64, i64)> = rows_on(&app.store, &counts_sql).await;
            rows[0]
        };
        // Before, every row stayed in hand, leased, for up to 80 s.
        wait_until(
            "the rows whose turn is too far off queued until then",
            || async {
                let (_, _, later, due) = counts().await;
                later >= 18 && due == 0
            },
        )
        .await;
        let (in_hand, sent, later, _) = counts().await;
        // 60 s of turns (half the 120 s lease) and the one that went at once.
        assert!(in_hand + sent <= 62, "{in_hand} in hand, {sent} sent");
        assert_eq!(
            in_hand + sent + later,
            80,
            "{in_hand} in hand, {sent} sent, {later} later"
        );
        app.stop().await;
    })
    .await;
}

/// An outcome ends only the turn it came from: once a row's lease ran out
/// and it was claimed again, a late outcome of the earlier turn (a
/// deferral from a stalled instance, say) does not put the row being sent
/// back in the queue, where a third claim would send it again.
#[tokio::test]
async fn a_late_outcome_of_an_earlier_turn_does_not_end_the_turn_in_hand() {
    use lexbridge::store::outbox::{OutboxOutcome, OutboxTurn};
    use lexbridge::store::writer::{Write, LEASE_MS};
    on_every_backend(|backend| async move {
        let app = quiet_app(&backend, &[]).await;
        enqueue(&app, &[text("U1", "hello")]).await;
        let now = now_ms();
        let first = app.claim_outbox_at(now).await;
        assert_eq!(first.len(), 1);
        // The first turn's lease runs out: the row is claimed again.
        let later = now + LEASE_MS + 1;
        let second = app.claim_outbox_at(later).await;
        assert_eq!(second.len(), 1, "the lapsed lease is claimed again");
        let (first, second) = (&first[0], &second[0]);
        let deferral = Write::FinishOutbox(OutboxTurn {
            outcome: OutboxOutcome::Deferred {
                id: first.id,
                attempts: 0,
                next_attempt_at: 0,
            },
            lease_until: first.lease_until,
        });
        app.writer.write(deferral).await.unwrap();
        assert!(
            app.claim_outbox_at(later + 1).await.is_empty(),
            "still in the second turn's hand"
        );
        assert_eq!(
            app.count("SELECT COUNT(*) FROM outbox WHERE state = 'sending'")
                .await,
            1
        );
        // The second turn's own outcome ends it.
        let sent = Write::FinishOutbox(OutboxTurn {
            outcome: OutboxOutcome::Sent {
                id: second.id,
                attempts: 1,
                message_id: None,
                at: later,
            },
            lease_until: second.lease_until,
        });
        app.writer.write(sent).await.unwrap();
        assert_eq!(
            app.count("SELECT COUNT(*) FROM outbox WHERE state = 'sent'")
                .await,
            1
        );
        app.stop().await;
    })
    .await;
}
