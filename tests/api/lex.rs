//! The Lex bridge end to end: signed webhook -> real Lex SDK client -> fake
//! Lex runtime -> Send API calls on the wiremock Graph.

use crate::helpers::*;
use crate::support::lex::{lex_reply, FakeLex, Step};
use lexbridge::config::LexSettings;
use lexbridge::nlu::lex_client::LexNlu;
use lexbridge::startup::Options;
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::Duration;
use wiremock::MockServer;

fn sdk_config() -> aws_config::SdkConfig {
    use aws_sdk_lexruntimev2::config::{Credentials, SharedCredentialsProvider};
    aws_config::SdkConfig::builder()
        .region(aws_config::Region::new("eu-west-1"))
        .credentials_provider(SharedCredentialsProvider::new(Credentials::new(
            "AKIDEXAMPLEFAKE",
            "fake-secret-key-for-tests",
            None,
            None,
            "tests",
        )))
        .behavior_version(aws_config::BehaviorVersion::latest())
        .build()
}

pub async fn spawn_lex_app(backend: &Backend, extra: &[(&str, &str)]) -> (TestApp, FakeLex) {
    let lex = FakeLex::start().await;
    let bot = LexSettings {
        bot_id: "BOTID12345".into(),
        bot_alias_id: "ALIASID123".into(),
        locale_id: "en_GB".into(),
        endpoint_url: Some(lex.uri.parse().unwrap()),
    };
    let nlu = LexNlu::new(&sdk_config(), bot, Duration::from_millis(5));
    let graph = MockServer::start().await;
    mount_send(&graph).await;
    let options = Options {
        nlu: Some(Arc::new(nlu)),
        ..Options::default()
    };
    let app = start(TestDb::new(backend).await, graph, options, extra).await;
    (app, lex)
}

/// The `message` objects the Send API received, in order (sender actions left out).
async fn sent_messages(app: &TestApp) -> Vec<Value> {
    sent_bodies(&app.graph)
        .await
        .into_iter()
        .filter_map(|b| b.get("message").cloned())
        .collect()
}

pub async fn answered(app: &TestApp) -> Vec<Value> {
    app.inbox_settled().await;
    app.outbox_settled().await;
    sent_messages(app).await
}

#[tokio::test]
async fn text_reaches_lex_with_the_session_and_the_answer_reaches_messenger() {
    on_every_backend(|backend| async move {
        let (app, lex) = spawn_lex_app(&backend, &[]).await;
        app.post_signed_webhook(&text_message("U1", "m.1", "is my car locked?"))
            .await;
        assert_eq!(
            answered(&app).await,
            vec![json!({"text": "echo: is my car locked?"})]
        );
        let requests = lex.requests();
        assert_eq!(requests.len(), 1);
        let r = &requests[0];
        assert_eq!(
            (
                r.bot_id.as_str(),
                r.bot_alias_id.as_str(),
                r.locale_id.as_str()
            ),
            ("BOTID12345", "ALIASID123", "en_GB")
        );
        assert_eq!(r.session_id, "1111:U1", "percent-decoded session id");
        assert_eq!(r.text, "is my car locked?");
        assert_eq!(
            r.session_attributes,
            json!({"psid": "U1", "page_id": "1111", "linked": "false"})
        );
        assert!(r.signed, "SigV4-signed by the real SDK");
        let sends = sent_bodies(&app.graph).await;
        let reply = sends.iter().find(|b| b.get("message").is_some()).unwrap();
        assert_eq!(reply["messaging_type"], "RESPONSE");
        assert_eq!(reply["recipient"]["id"], "U1");
        // Lex answered at once: no typing bubble flickers before the reply.
        assert_eq!(sender_actions(&sends), ["mark_seen"]);
        let rows = app.inbox().await;
        assert_eq!(
            rows[0].outcome.as_deref(),
            Some("answered by lex"),
            "null slots parsed"
        );
        app.stop().await;
    })
    .await;
}

fn sender_actions(sends: &[Value]) -> Vec<&str> {
    sends
        .iter()
        .filter_map(|b| b["sender_action"].as_str())
        .collect()
}

#[tokio::test]
async fn typing_shows_before_the_reply_when_lex_is_slow() {
    on_every_backend(|backend| async move {
        let extra = [("MESSENGER_TYPING_AFTER_MS", "50")];
        let (app, lex) = spawn_lex_app(&backend, &extra).await;
        lex.set_delay(Duration::from_millis(400));
        app.post_signed_webhook(&text_message("U1", "m.1", "is my car locked?"))
            .await;
        assert_eq!(
            answered(&app).await,
            vec![json!({"text": "echo: is my car locked?"})]
        );
        let sends = sent_bodies(&app.graph).await;
        let order: Vec<&str> = sends
            .iter()
            .map(|b| b["sender_action"].as_str().unwrap_or("reply"))
            .filter(|s| *s != "mark_seen")
            .collect();
        assert_eq!(order, ["typing_on", "reply"]);
        app.stop().await;
    })
    .await;
}

#[tokio::test]
async fn typing_can_be_shown_at_once_or_not_at_all() {
    on_every_backend(|backend| async move {
        for (extra, expected) in [
            (
                [("MESSENGER_TYPING_AFTER_MS", "0")],
                vec!["mark_seen", "typing_on"],
            ),
            ([("MESSENGER_TYPING_INDICATOR", "false")], vec!["mark_seen"]),
        ] {
            let (app, _lex) = spawn_lex_app(&backend, &extra).await;
            app.post_signed_webhook(&text_message("U1", "m.1", "hello"))
                .await;
            assert_eq!(answered(&app).await.len(), 1);
            let sends = sent_bodies(&app.graph).await;
            let mut actions = sender_actions(&sends);
            actions.sort_unstable();
            assert_eq!(actions, expected, "{extra:?}");
            app.stop().await;
        }
    })
    .await;
}

#[tokio::test]
async fn every_lex_content_type_is_mapped_in_order() {
    on_every_backend(|backend| async move {
        let (app, lex) = spawn_lex_app(&backend, &[]).await;
        let custom = json!({"attachment": {"type": "image", "payload": {"url": "https://cdn.example.com/car.png"}}});
        lex.then(Step::Reply(lex_reply(json!([
            {"contentType": "PlainText", "content": "Your car is parked."},
            {"contentType": "SSML", "content": "<speak>It is <emphasis>locked</emphasis>.</speak>"},
            {"contentType": "CustomPayload", "content": custom.to_string()},
            {"contentType": "CustomPayload", "content": "not json at all"},
            {"contentType": "ImageResponseCard", "imageResponseCard": {
                "title": "Doors", "subtitle": "All four", "imageUrl": "https://cdn.example.com/doors.png",
                "buttons": [{"text": "Lock", "value": "lock doors"}, {"text": "Unlock", "value": "unlock doors"}]}},
            {"contentType": "ImageResponseCard", "imageResponseCard": {
                "title": "Pick a place",
                "buttons": [{"text": "Home", "value": "home"}, {"text": "Work", "value": "work"},
                            {"text": "School", "value": "school"}, {"text": "Gym", "value": "gym"}]}}
        ]), "CheckStatus")));
        app.post_signed_webhook(&text_message("U1", "m.1", "status")).await;
        let sent = answered(&app).await;
        assert_eq!(sent.len(), 6);
        assert_eq!(sent[0], json!({"text": "Your car is parked."}));
        assert_eq!(sent[1], json!({"text": "It is locked."}));
        assert_eq!(sent[2], custom);
        assert_eq!(sent[3], json!({"text": "not json at all"}));
        let card = &sent[4]["attachment"]["payload"];
        assert_eq!(card["template_type"], "generic");
        assert_eq!(card["elements"][0]["image_url"], "https://cdn.example.com/doors.png");
        assert_eq!(card["elements"][0]["buttons"][1], json!({"type": "postback", "title": "Unlock", "payload": "unlock doors"}));
        assert_eq!(sent[5]["text"], "Pick a place");
        assert_eq!(sent[5]["quick_replies"].as_array().unwrap().len(), 4);
        assert_eq!(sent[5]["quick_replies"][3]["payload"], "gym");
        app.stop().await;
    })
    .await;
}

#[tokio::test]
async fn quick_replies_and_postbacks_send_their_payload_and_attachments_go_as_typed_turns() {
    on_every_backend(|backend| async move {
        let (app, lex) = spawn_lex_app(&backend, &[("ATTACHMENT_REPLY", "Nice picture! Please type instead.")]).await;
        let quick = json!({"sender": {"id": "U1"}, "recipient": {"id": PAGE_ID}, "timestamp": 1,
            "message": {"mid": "m.q", "text": "Yes please", "quick_reply": {"payload": "CONFIRM_LOCK"}}});
        let postback = json!({"sender": {"id": "U1"}, "recipient": {"id": PAGE_ID}, "timestamp": 2,
            "postback": {"mid": "m.p", "title": "Check status", "payload": "check status"}});
        let photo = json!({"sender": {"id": "U1"}, "recipient": {"id": PAGE_ID}, "timestamp": 3,
            "message": {"mid": "m.a", "attachments": [{"type": "image", "payload": {"url": "https://x.test/p.jpg"}}]}});
        let blank = json!({"sender": {"id": "U1"}, "recipient": {"id": PAGE_ID}, "timestamp": 4,
            "message": {"mid": "m.b", "text": "   "}});
        let place = json!({"sender": {"id": "U1"}, "recipient": {"id": PAGE_ID}, "timestamp": 5,
            "message": {"mid": "m.l", "attachments": [{"type": "location",
                "payload": {"coordinates": {"lat": 48.1374, "long": 11.5755}}}]}});
        // The bot routes the photo; the location falls back.
        lex.then(Step::Reply(lex_reply(json!([]), "EchoIntent")))
            .then(Step::Reply(lex_reply(json!([]), "EchoIntent")))
            .then(Step::Reply(lex_reply(
                json!([{"contentType": "PlainText", "content": "Thanks for the photo of your car."}]),
                "ReportDamage",
            )))
            .then(Step::Reply(lex_reply(
                json!([{"contentType": "PlainText", "content": "Sorry, what?"}]),
                "FallbackIntent",
            )));
        app.post_signed_webhook(&webhook_body(&[(PAGE_ID, vec![quick, postback, photo, blank, place])])).await;
        let sent = answered(&app).await;
        let requests = lex.requests();
        let texts: Vec<_> = requests.iter().map(|r| r.text.as_str()).collect();
        assert_eq!(texts, ["CONFIRM_LOCK", "check status", "sent an image", "sent a location"]);
        assert_eq!(requests[0].request_attributes, serde_json::Value::Null);
        assert_eq!(requests[0].dialog_action, serde_json::Value::Null);
        // An attachment is matched against the intents, never taken as the
        // answer to a slot Lex was asking for.
        assert_eq!(requests[2].dialog_action, json!({"type": "ElicitIntent"}));
        assert_eq!(
            requests[2].request_attributes,
            json!({"lexbridge:attachment-type": "image", "lexbridge:attachment-count": "1",
                   "lexbridge:attachment-url": "https://x.test/p.jpg"})
        );
        assert_eq!(requests[3].request_attributes["lexbridge:latitude"], "48.1374");
        assert_eq!(requests[3].request_attributes["lexbridge:longitude"], "11.5755");
        // Lex's FallbackIntent for an attachment: the bridge's own reply.
        assert_eq!(
            sent,
            [json!({"text": "Thanks for the photo of your car."}),
             json!({"text": "Nice picture! Please type instead."})]
        );
        app.stop().await;
    })
    .await;
}

#[tokio::test]
async fn text_over_1024_characters_is_cut_at_a_word_boundary() {
    on_every_backend(|backend| async move {
        let (app, lex) = spawn_lex_app(&backend, &[]).await;
        let long = format!("{}finalword", "please check my car ".repeat(52));
        assert!(long.chars().count() > 1025);
        app.post_signed_webhook(&text_message("U1", "m.1", &long))
            .await;
        answered(&app).await;
        let sent = &lex.requests()[0].text;
        assert!(sent.chars().count() <= 1024, "{}", sent.len());
        assert_eq!(sent, "please check my car ".repeat(51).trim_end());
        app.stop().await;
    })
    .await;
}

#[tokio::test]
async fn throttling_is_retried_and_then_answered() {
    on_every_backend(|backend| async move {
        let (app, lex) = spawn_lex_app(&backend, &[]).await;
        lex.then(Step::Fail(429, "ThrottlingException"));
        app.post_signed_webhook(&text_message("U1", "m.1", "hello"))
            .await;
        assert_eq!(answered(&app).await, vec![json!({"text": "echo: hello"})]);
        assert_eq!(lex.requests().len(), 2);
        app.stop().await;
    })
    .await;
}

#[tokio::test]
async fn lex_failing_until_exhausted_sends_one_apology() {
    on_every_backend(|backend| async move {
        let (app, lex) =
            spawn_lex_app(&backend, &[("APOLOGY_MESSAGE", "Sorry, try again later.")]).await;
        lex.always(Step::Fail(500, "InternalServerException"));
        app.post_signed_webhook(&text_message("U1", "m.1", "hello"))
            .await;
        let sent = answered(&app).await;
        assert_eq!(sent, vec![json!({"text": "Sorry, try again later."})]);
        let rows = app.inbox().await;
        assert_eq!(rows[0].state, "dead");
        assert!(
            rows[0].attempts >= 2,
            "retried within INBOX_RETRY_BUDGET_MS"
        );
        let error = rows[0].last_error.as_deref().unwrap();
        assert!(error.contains("InternalServerException"), "{error}");
        assert!(error.contains("INBOX_RETRY_BUDGET_MS"), "{error}");
        // The SDK's 3 attempts for each of the inbox's attempts.
        assert_eq!(lex.requests().len() as i64, 3 * rows[0].attempts);
        app.stop().await;
    })
    .await;
}

#[tokio::test]
async fn validation_errors_are_not_retried() {
    on_every_backend(|backend| async move {
        let (app, lex) = spawn_lex_app(&backend, &[]).await;
        lex.always(Step::Fail(400, "ValidationException"));
        app.post_signed_webhook(&text_message("U1", "m.1", "hello"))
            .await;
        let sent = answered(&app).await;
        assert_eq!(sent.len(), 1, "one apology");
        assert_eq!(lex.requests().len(), 1);
        assert_eq!(app.inbox().await[0].attempts, 1);
        app.stop().await;
    })
    .await;
}

#[tokio::test]
async fn one_persons_concurrent_messages_reach_lex_one_at_a_time() {
    on_every_backend(|backend| async move {
        let (app, lex) = spawn_lex_app(&backend, &[]).await;
        lex.set_delay(Duration::from_millis(25));
        let posts = (0..6).map(|i| text_message("U1", &format!("m.{i}"), &format!("message {i}")));
        futures_util::future::join_all(posts.map(|b| {
            let app = &app;
            async move { app.post_signed_webhook(&b).await.status() }
        }))
        .await;
        let sent = answered(&app).await;
        assert_eq!(
            lex.conflicts(),
            0,
            "Lex would have answered ConflictException"
        );
        assert_eq!(sent.len(), 6);
        let order: Vec<_> = lex.requests().into_iter().map(|r| r.text).collect();
        let replies: Vec<_> = sent
            .iter()
            .map(|m| {
                m["text"]
                    .as_str()
                    .unwrap()
                    .trim_start_matches("echo: ")
                    .to_string()
            })
            .collect();
        assert_eq!(
            order, replies,
            "replies leave in the order the messages were processed"
        );
        let stored: Vec<_> = app
            .inbox()
            .await
            .into_iter()
            .map(|r| key_mid(&r.dedupe_key).replace("m.", "message "))
            .collect();
        assert_eq!(order, stored, "processed in the order they were stored");
        app.stop().await;
    })
    .await;
}

#[tokio::test]
async fn a_redelivered_event_never_causes_a_second_lex_call() {
    on_every_backend(|backend| async move {
        let (app, lex) = spawn_lex_app(&backend, &[]).await;
        let body = text_message("U1", "m.same", "hello");
        app.post_signed_webhook(&body).await;
        answered(&app).await;
        app.post_signed_webhook(&body).await;
        app.post_signed_webhook(&body).await;
        let sent = answered(&app).await;
        assert_eq!(lex.requests().len(), 1);
        assert_eq!(sent.len(), 1);
        app.stop().await;
    })
    .await;
}

#[tokio::test]
async fn a_linked_person_is_known_to_lex_by_account_and_name() {
    on_every_backend(|backend| async move {
        let (app, lex) = spawn_lex_app(&backend, &[]).await;
        app.exec("INSERT INTO accounts (id, fb_uid, name, created_at, updated_at)
                  VALUES ('cust-42', '990001', 'Ada Lovelace', 1, 1)").await;
        app.exec("INSERT INTO links (page_id, psid, account_id, source, linked_at)
                  VALUES ('1111', 'U7', 'cust-42', 'ids_for_pages', 1)").await;
        app.post_signed_webhook(&text_message("U7", "m.1", "where is my car?")).await;
        app.post_signed_webhook(&text_message("U8", "m.2", "where is my car?")).await;
        answered(&app).await;
        let requests = lex.requests();
        let linked = requests.iter().find(|r| r.session_id == "1111:U7").unwrap();
        assert_eq!(
            linked.session_attributes,
            json!({"psid": "U7", "page_id": "1111", "linked": "true", "account_id": "cust-42", "name": "Ada Lovelace"})
        );
        let stranger = requests.iter().find(|r| r.session_id == "1111:U8").unwrap();
        assert_eq!(stranger.session_attributes["linked"], "false");
        app.stop().await;
    })
    .await;
}
