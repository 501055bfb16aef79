//! Conversation routing: the bot hands a person to the Page Inbox, stays
//! out while another app owns the thread (standby events, held or refused
//! API messages), and resumes when the thread comes back — through signed
//! webhooks and Graph's thread-control edges.

use crate::helpers::*;
use crate::local_nlu::dialog_bot;
use crate::outbound::{new_key, person, post, status_of};
use crate::support::nlu::ScriptedNlu;
use lexbridge::startup::Options;
use lexbridge::store::now_ms;
use serde_json::{json, Value};
use std::sync::Arc;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

const PAGE_INBOX: &str = "263902037430900";
const HOUR: i64 = 3_600_000;

async fn app_with(extra: &[(&str, &str)], backend: &Backend) -> TestApp {
    let graph = MockServer::start().await;
    mount_send(&graph).await;
    for edge in ["pass_thread_control", "take_thread_control"] {
        Mock::given(method("POST"))
            .and(path(format!("/v25.0/{PAGE_ID}/{edge}")))
            .and(ValidProof)
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({"success": true})))
            .mount(&graph)
            .await;
    }
    let options = Options {
        nlu: Some(Arc::new(ScriptedNlu::default())),
        ..Options::default()
    };
    start(TestDb::new(backend).await, graph, options, extra).await
}

/// Every Graph POST after the first `skip` (sender actions aside): (edge, body).
async fn calls(graph: &MockServer, skip: usize) -> Vec<(String, Value)> {
    let requests = graph.received_requests().await.unwrap_or_default();
    requests
        .iter()
        .filter(|r| r.method.as_str() == "POST")
        .map(|r| {
            let edge = r
                .url
                .path()
                .rsplit('/')
                .next()
                .unwrap_or_default()
                .to_string();
            (edge, serde_json::from_slice(&r.body).unwrap_or(Value::Null))
        })
        .filter(|(_, body)| body.get("sender_action").is_none())
        .skip(skip)
        .collect()
}

async fn settle(app: &TestApp) {
    app.inbox_settled().await;
    app.outbox_settled().await;
}

fn standby_body(events: Vec<Value>) -> Value {
    json!({"object": "page", "entry": [{"id": PAGE_ID, "time": 1, "standby": events}]})
}

fn handover_event(kind: &str, body: Value) -> Value {
    json!({"sender": {"id": "U1"}, "recipient": {"id": PAGE_ID},
           "timestamp": lexbridge::store::now_ms(), kind: body})
}

async fn owner(app: &TestApp) -> Option<String> {
    let owners = [PAGE_INBOX, "unknown", "999"];
    for o in owners {
        let sql = format!(
            "SELECT COUNT(*) FROM conversations WHERE psid = 'U1' AND thread_owner = '{o}'"
        );
        if app.count(&sql).await == 1 {
            return Some(o.to_string());
        }
    }
    None
}

/// `lexbridge accounts show cust-1`.
async fn shown(app: &TestApp) -> String {
    use lexbridge::linking::admin::{run, AccountsCommand};
    let mut out = Vec::new();
    let show = AccountsCommand::Show {
        id: "cust-1".into(),
    };
    run(&app.store, show, &mut out).await.unwrap();
    String::from_utf8(out).unwrap()
}

#[tokio::test]
async fn the_handover_payload_passes_the_thread_and_a_pass_back_resumes_the_bot() {
    on_every_backend(|backend| async move {
        let app = app_with(&[("HANDOVER_MESSAGE", "A colleague will take it from here.")], &backend).await;
        let key = new_key(&app, "crm").await;
        person(&app, "cust-1", "U1", Some(HOUR)).await;

        // Typing the payload's name is no postback: the bot answers it.
        app.post_signed_webhook(&text_message("U1", "m.t", "HANDOVER")).await;
        settle(&app).await;
        let typed = calls(&app.graph, 0).await;
        assert_eq!(typed.len(), 1, "{typed:?}");
        assert_eq!(typed[0].1["message"], json!({"text": "echo: HANDOVER"}));
        let ask = json!({"sender": {"id": "U1"}, "recipient": {"id": PAGE_ID}, "timestamp": 1,
            "postback": {"mid": "m.h", "title": "Talk to a person", "payload": "HANDOVER"}});
        app.post_signed_webhook(&webhook_body(&[(PAGE_ID, vec![ask])])).await;
        settle(&app).await;
        let made = calls(&app.graph, 1).await;
        assert_eq!(made.len(), 2, "{made:?}");
        assert_eq!(made[0].1["message"], json!({"text": "A colleague will take it from here."}));
        assert_eq!(made[1].0, "pass_thread_control");
        assert_eq!(
            made[1].1,
            json!({"recipient": {"id": "U1"}, "target_app_id": PAGE_INBOX, "metadata": "payload HANDOVER"})
        );
        assert_eq!(owner(&app).await.as_deref(), Some(PAGE_INBOX));
        assert!(shown(&app).await.contains("psid U1 via ids_for_pages"));
        assert!(shown(&app).await.contains("thread: the Page Inbox"), "{}", shown(&app).await);

        // The person writes while the Page's people own the thread: Meta
        // sends it as standby; the bot says nothing.
        let standby = text_event("U1", "m.s", "are you there?");
        app.post_signed_webhook(&standby_body(vec![standby])).await;
        settle(&app).await;
        assert_eq!(calls(&app.graph, 0).await.len(), 3, "the bot stayed out");

        // Only the owner can send: refused, or held for the thread.
        let ping = json!({"to": {"account": "cust-1"}, "message": {"text": "Your order shipped."}});
        let (status, refused) = post(&app, "/api/v1/messages", Some(&key), &ping).await;
        assert_eq!((status, refused["error"].as_str()), (409, Some("thread_owned_by_another_app")), "{refused}");
        assert!(refused["message"].as_str().unwrap().contains("Page Inbox"), "{refused}");
        let mut hold = ping.clone();
        hold["if_outside_window"] = json!("hold");
        let (status, held) = post(&app, "/api/v1/messages", Some(&key), &hold).await;
        assert_eq!((status, held["status"].as_str()), (202, Some("held")), "{held}");

        // The Page's people pass the thread back: the held message goes and
        // the bot answers again.
        let back = handover_event("pass_thread_control",
            json!({"previous_owner_app_id": PAGE_INBOX, "new_owner_app_id": "test-app-id", "metadata": "done"}));
        app.post_signed_webhook(&webhook_body(&[(PAGE_ID, vec![back])])).await;
        settle(&app).await;
        assert_eq!(owner(&app).await, None);
        assert!(shown(&app).await.contains("thread: the bot"));
        let id = held["id"].as_str().unwrap();
        assert_eq!(status_of(&app, &key, id).await["status"], "sent");
        app.post_signed_webhook(&text_message("U1", "m.2", "thanks")).await;
        settle(&app).await;
        let made = calls(&app.graph, 0).await;
        let texts: Vec<_> = made.iter().filter_map(|(_, b)| b["message"]["text"].as_str()).collect();
        assert_eq!(
            texts,
            ["echo: HANDOVER", "A colleague will take it from here.", "Your order shipped.", "echo: thanks"]
        );
        let outcomes: Vec<_> = app.inbox().await.into_iter().filter_map(|r| r.outcome).collect();
        assert_eq!(outcomes[1], format!("handed over to app {PAGE_INBOX} (payload HANDOVER)"));
        assert_eq!(outcomes[2], "standby: another app owns the thread");
        assert_eq!(outcomes[3], "thread passed back to this app");
        app.stop().await;
    })
    .await;
}

/// An intent of HANDOVER_INTENTS hands over after its own answer.
#[tokio::test]
async fn a_handover_intent_answers_then_passes_the_thread() {
    on_every_backend(|backend| async move {
        let graph = MockServer::start().await;
        mount_send(&graph).await;
        Mock::given(method("POST"))
            .and(path(format!("/v25.0/{PAGE_ID}/pass_thread_control")))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({"success": true})))
            .mount(&graph)
            .await;
        let bot = dialog_bot();
        let app = start(
            TestDb::new(&backend).await,
            graph,
            Options::default(),
            &[
                ("LOCAL_BOT", &bot),
                ("HANDOVER_INTENTS", "Hours, Nothing"),
                ("HANDOVER_APP_ID", "4242"),
            ],
        )
        .await;
        app.post_signed_webhook(&text_message("U1", "m.1", "when are you open?"))
            .await;
        settle(&app).await;
        let made = calls(&app.graph, 0).await;
        assert_eq!(made.len(), 2, "{made:?}");
        assert!(
            made[0].1["message"]["text"].is_string(),
            "the intent's own answer first: {made:?}"
        );
        assert_eq!(made[1].0, "pass_thread_control");
        assert_eq!(made[1].1["target_app_id"], "4242");
        assert_eq!(made[1].1["metadata"], "intent Hours");
        app.stop().await;
    })
    .await;
}

/// The Send API says another app owns the thread (10/2018300): an API
/// message waits for it, the bot's reply is not sent, and the thread
/// taken back by this app releases the message.
#[tokio::test]
async fn a_send_refused_for_the_thread_is_held_until_this_app_takes_it() {
    on_every_backend(|backend| async move {
        let graph = MockServer::start().await;
        Mock::given(method("POST"))
            .and(path(format!("/v25.0/{PAGE_ID}/messages")))
            .respond_with(ResponseTemplate::new(400).set_body_json(json!({"error": {
                "message": "(#10) Another app is controlling this thread now.",
                "type": "OAuthException", "code": 10, "error_subcode": 2018300}})))
            .up_to_n_times(1)
            .with_priority(1)
            .mount(&graph)
            .await;
        mount_send(&graph).await;
        let options = Options {
            nlu: Some(Arc::new(ScriptedNlu::default())),
            ..Options::default()
        };
        let app = start(TestDb::new(&backend).await, graph, options, &[]).await;
        let key = new_key(&app, "crm").await;
        person(&app, "cust-1", "U1", Some(HOUR)).await;
        // Held at most until the end its request gave, not the API
        // message's expiry (60 s in tests).
        let end = lexbridge::outbound::time::format_timestamp(now_ms() + 30_000);
        let ping = json!({"to": {"account": "cust-1"}, "message": {"text": "Invoice ready."},
                          "if_outside_window": "hold", "hold_until": end});
        let (status, accepted) = post(&app, "/api/v1/messages", Some(&key), &ping).await;
        assert_eq!(status, 202, "{accepted}");
        let id = accepted["id"].as_str().unwrap();
        wait_until("the message held for the thread", || async {
            status_of(&app, &key, id).await["status"] == "held"
        })
        .await;
        assert_eq!(status_of(&app, &key, id).await["hold_until"], end);
        assert_eq!(owner(&app).await.as_deref(), Some("unknown"));
        let taken = handover_event(
            "take_thread_control",
            json!({"previous_owner_app_id": "555", "new_owner_app_id": "test-app-id"}),
        );
        app.post_signed_webhook(&webhook_body(&[(PAGE_ID, vec![taken])]))
            .await;
        settle(&app).await;
        assert_eq!(owner(&app).await, None);
        assert_eq!(status_of(&app, &key, id).await["status"], "sent");
        assert!(app
            .metrics()
            .await
            .contains("lexbridge_send_api_total{outcome=\"10\"} 1"));
        app.stop().await;
    })
    .await;
}

/// A thread another app holds while the person is silent for
/// HANDOVER_IDLE_TAKE_BACK_MS is taken back, and what waited for it goes.
#[tokio::test]
async fn an_idle_thread_is_taken_back() {
    on_every_backend(|backend| async move {
        let app = app_with(&[("HANDOVER_IDLE_TAKE_BACK_MS", "400")], &backend).await;
        let key = new_key(&app, "crm").await;
        person(&app, "cust-1", "U1", Some(HOUR)).await;
        let ask = json!({"sender": {"id": "U1"}, "recipient": {"id": PAGE_ID}, "timestamp": 1,
            "message": {"mid": "m.q", "text": "agent", "quick_reply": {"payload": "HANDOVER"}}});
        app.post_signed_webhook(&webhook_body(&[(PAGE_ID, vec![ask])]))
            .await;
        settle(&app).await;
        let hold = json!({"to": {"account": "cust-1"}, "message": {"text": "Back soon?"},
                          "if_outside_window": "hold"});
        let (status, held) = post(&app, "/api/v1/messages", Some(&key), &hold).await;
        assert_eq!(
            (status, held["status"].as_str()),
            (202, Some("held")),
            "{held}"
        );
        let id = held["id"].as_str().unwrap();
        wait_until("the idle thread taken back", || async {
            status_of(&app, &key, id).await["status"] == "sent"
        })
        .await;
        let made = calls(&app.graph, 0).await;
        let edges: Vec<_> = made.iter().map(|(edge, _)| edge.as_str()).collect();
        assert_eq!(
            edges,
            [
                "messages",
                "pass_thread_control",
                "take_thread_control",
                "messages"
            ]
        );
        assert_eq!(
            made[2].1,
            json!({"recipient": {"id": "U1"}, "metadata": "idle"})
        );
        assert_eq!(owner(&app).await, None);
        app.stop().await;
    })
    .await;
}

/// Another app asking for a thread this app holds gets it; asking for one
/// this app does not hold changes nothing.
#[tokio::test]
async fn a_request_for_the_thread_is_granted_only_by_its_owner() {
    on_every_backend(|backend| async move {
        let app = app_with(&[], &backend).await;
        app.post_signed_webhook(&text_message("U1", "m.1", "hi"))
            .await;
        settle(&app).await;
        let ask = handover_event(
            "request_thread_control",
            json!({"requested_owner_app_id": 999, "metadata": "agent wants in"}),
        );
        app.post_signed_webhook(&webhook_body(&[(PAGE_ID, vec![ask])]))
            .await;
        settle(&app).await;
        let made = calls(&app.graph, 0).await;
        assert_eq!(made.last().unwrap().0, "pass_thread_control");
        assert_eq!(made.last().unwrap().1["target_app_id"], "999");
        assert_eq!(owner(&app).await.as_deref(), Some("999"));
        let again = handover_event(
            "request_thread_control",
            json!({"requested_owner_app_id": "777"}),
        );
        app.post_signed_webhook(&webhook_body(&[(PAGE_ID, vec![again])]))
            .await;
        settle(&app).await;
        assert_eq!(
            calls(&app.graph, 0).await.len(),
            made.len(),
            "nothing passed"
        );
        assert_eq!(owner(&app).await.as_deref(), Some("999"));
        app.stop().await;
    })
    .await;
}

/// A thread change applies only to the thread it assumed: a send refused
/// for the thread before a pass back was recorded does not undo it, and an
/// idle take-back refused after the owner changed writes nothing back.
#[tokio::test]
async fn a_stale_thread_change_changes_nothing() {
    use lexbridge::store::conversations::{ThreadAssumes, ThreadChange};
    use lexbridge::store::writer::Write;
    on_every_backend(|backend| async move {
        let app = app_with(&[], &backend).await;
        app.post_signed_webhook(&text_message("U1", "m.1", "hi"))
            .await;
        let back = handover_event(
            "pass_thread_control",
            json!({"previous_owner_app_id": PAGE_INBOX, "new_owner_app_id": "test-app-id"}),
        );
        app.post_signed_webhook(&webhook_body(&[(PAGE_ID, vec![back])]))
            .await;
        settle(&app).await;
        let change = |owner: Option<&str>, assumes| ThreadChange {
            page_id: PAGE_ID.into(),
            psid: "U1".into(),
            owner: owner.map(str::to_string),
            at: lexbridge::store::now_ms(),
            assumes,
        };
        // The thread came back just now: a refusal of a send begun before
        // that is stale.
        let stale = change(Some("unknown"), ThreadAssumes::OursSince(1));
        app.writer.write(Write::Thread(stale)).await.unwrap();
        assert_eq!(owner(&app).await, None);
        let fresh = change(
            Some("unknown"),
            ThreadAssumes::OursSince(lexbridge::store::now_ms() + 1000),
        );
        app.writer.write(Write::Thread(fresh)).await.unwrap();
        assert_eq!(owner(&app).await.as_deref(), Some("unknown"));
        // Taken back by another instance meanwhile: the refused take of an
        // owner that is no more writes nothing.
        let back = change(None, ThreadAssumes::Owner("unknown".into()));
        app.writer.write(Write::Thread(back)).await.unwrap();
        assert_eq!(owner(&app).await, None);
        let refused = change(Some("unknown"), ThreadAssumes::Owner("unknown".into()));
        app.writer.write(Write::Thread(refused)).await.unwrap();
        assert_eq!(owner(&app).await, None);
        app.stop().await;
    })
    .await;
}

/// Between the handover and the moment its pass reaches Meta, the person's
/// messages still come to this app: the bot, done, leaves them alone, and
/// the thread stays with the app it is being passed to.
#[tokio::test]
async fn a_message_before_the_pass_is_sent_is_not_answered() {
    on_every_backend(|backend| async move {
        let graph = MockServer::start().await;
        mount_send(&graph).await;
        Mock::given(method("POST"))
            .and(path(format!("/v25.0/{PAGE_ID}/pass_thread_control")))
            .respond_with(
                ResponseTemplate::new(200)
                    .set_body_json(json!({"success": true}))
                    .set_delay(std::time::Duration::from_millis(1500)),
            )
            .mount(&graph)
            .await;
        let options = Options {
            nlu: Some(Arc::new(ScriptedNlu::default())),
            ..Options::default()
        };
        let app = start(TestDb::new(&backend).await, graph, options, &[]).await;
        let ask = json!({"sender": {"id": "U1"}, "recipient": {"id": PAGE_ID}, "timestamp": 1,
            "postback": {"mid": "m.h", "title": "Talk to a person", "payload": "HANDOVER"}});
        app.post_signed_webhook(&webhook_body(&[(PAGE_ID, vec![ask])]))
            .await;
        app.inbox_settled().await;
        app.post_signed_webhook(&text_message("U1", "m.2", "still there?"))
            .await;
        let rows = app.inbox_settled().await;
        assert_eq!(
            rows[1].outcome.as_deref(),
            Some("not answered: the handover is on its way")
        );
        settle(&app).await;
        let made = calls(&app.graph, 0).await;
        let texts: Vec<_> = made
            .iter()
            .filter_map(|(_, b)| b["message"]["text"].as_str())
            .collect();
        assert!(!texts.contains(&"echo: still there?"), "{texts:?}");
        assert_eq!(owner(&app).await.as_deref(), Some(PAGE_INBOX));
        app.stop().await;
    })
    .await;
}

/// A Page with no token (removed, say) cannot take its idle threads back:
/// they wait another idle period behind the others rather than fill every
/// round, so the threads of the Pages that can are still taken back.
#[tokio::test]
async fn idle_threads_of_a_page_without_a_token_do_not_hold_the_others_back() {
    on_every_backend(|backend| async move {
        let app = app_with(&[("HANDOVER_IDLE_TAKE_BACK_MS", "200")], &backend).await;
        // Idle for ten minutes (recent enough that retention keeps them).
        let (now, idle) = (now_ms(), now_ms() - 600_000);
        // More of them than a round reads, or the test proves nothing.
        let more_than_a_round = lexbridge::workers::handover::TAKE_BACK_BATCH + 20;
        let stale: Vec<String> = (0..more_than_a_round)
            .map(|n| format!("('GONE', 'G{n}', '999', {idle}, {idle}, {now})"))
            .collect();
        app.exec(&format!(
            "INSERT INTO conversations (page_id, psid, thread_owner, thread_since, last_inbound_at, updated_at)
             VALUES {}",
            stale.join(", ")
        ))
        .await;
        app.exec(&format!(
            "INSERT INTO conversations (page_id, psid, thread_owner, thread_since, last_inbound_at, updated_at)
             VALUES ('{PAGE_ID}', 'U1', '999', {}, {}, {now})",
            idle + 1,
            idle + 1
        ))
        .await;
        wait_until("the Page's idle thread taken back", || async {
            let taken = calls(&app.graph, 0).await;
            taken.iter().any(|(edge, body)| {
                edge == "take_thread_control" && body["recipient"]["id"] == "U1"
            })
        })
        .await;
        wait_until("its owner forgotten", || async { owner(&app).await.is_none() }).await;
        app.stop().await;
    })
    .await;
}
