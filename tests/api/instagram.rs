//! Instagram messaging through the same service: `object: "instagram"`
//! events of the professional account connected to a configured Page are
//! answered by the NLU through that Page's Send API; read receipts name a
//! message; the outbound API addresses an Instagram person; an account
//! connected to no Page is kept, not answered.

use crate::helpers::*;
use crate::outbound::{new_key, post, status_of};
use crate::support::nlu::ScriptedNlu;
use lexbridge::startup::Options;
use lexbridge::store::now_ms;
use serde_json::{json, Value};
use std::sync::Arc;
use wiremock::matchers::{method, path, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

const IG_ACCOUNT: &str = "17841400000000001";
const IGSID: &str = "IGSID-1";

fn instagram_body(account: &str, events: Vec<Value>) -> Value {
    json!({"object": "instagram", "entry": [{"id": account, "time": now_ms(), "messaging": events}]})
}

fn from_person(body: Value) -> Value {
    let mut event =
        json!({"sender": {"id": IGSID}, "recipient": {"id": IG_ACCOUNT}, "timestamp": now_ms()});
    event
        .as_object_mut()
        .unwrap()
        .extend(body.as_object().unwrap().clone());
    event
}

async fn instagram_app(backend: &Backend) -> TestApp {
    let graph = MockServer::start().await;
    mount_send(&graph).await;
    Mock::given(method("GET"))
        .and(path(format!("/v25.0/{PAGE_ID}")))
        .and(query_param("fields", "instagram_business_account"))
        .and(ValidProof)
        .respond_with(ResponseTemplate::new(200).set_body_json(
            json!({"instagram_business_account": {"id": IG_ACCOUNT}, "id": PAGE_ID}),
        ))
        .expect(1)
        .mount(&graph)
        .await;
    let options = Options {
        nlu: Some(Arc::new(ScriptedNlu::default())),
        ..Options::default()
    };
    start(TestDb::new(backend).await, graph, options, &[]).await
}

#[tokio::test]
async fn an_instagram_conversation_is_answered_through_its_page() {
    on_every_backend(|backend| async move {
        let app = instagram_app(&backend).await;
        let key = new_key(&app, "crm").await;
        let hello = from_person(json!({"message": {"mid": "ig.m1", "text": "hi from instagram"}}));
        let body = instagram_body(IG_ACCOUNT, vec![hello]);
        assert_eq!(app.post_signed_webhook(&body).await.status(), 200);
        app.inbox_settled().await;
        app.outbox_settled().await;
        let sent = sent_bodies(&app.graph).await;
        let answer = sent.iter().find(|b| b.get("message").is_some()).expect("an answer");
        assert_eq!(answer["recipient"]["id"], IGSID);
        assert_eq!(answer["message"]["text"], "echo: hi from instagram");
        let rows = app.outbox().await;
        assert_eq!((rows[0].page_id.as_str(), rows[0].psid.as_str()), (PAGE_ID, IGSID));

        // Instagram's read receipt names the message read.
        let read = from_person(json!({"read": {"mid": "m.out"}}));
        app.post_signed_webhook(&instagram_body(IG_ACCOUNT, vec![read])).await;
        app.inbox_settled().await;
        assert_eq!(app.count("SELECT COUNT(*) FROM outbox WHERE state = 'read'").await, 1);

        // The outbound API addresses the person on Instagram.
        let (status, ping) = post(&app, "/api/v1/messages", Some(&key),
            &json!({"to": {"instagram": {"igsid": IGSID}}, "message": {"text": "Your order shipped."}})).await;
        assert_eq!(status, 202, "{ping}");
        app.outbox_settled().await;
        let shown = status_of(&app, &key, ping["id"].as_str().unwrap()).await;
        assert_eq!((shown["status"].as_str(), shown["psid"].as_str()), (Some("sent"), Some(IGSID)), "{shown}");
        // Instagram shows the button template too (its web client does not).
        let (status, ping) = post(&app, "/api/v1/messages", Some(&key),
            &json!({"to": {"instagram": {"igsid": IGSID}}, "message": {"text": "Pick",
                    "buttons": [{"type": "postback", "title": "Yes", "payload": "Y"}]}})).await;
        assert_eq!(status, 202, "{ping}");
        app.outbox_settled().await;
        let sent = sent_bodies(&app.graph).await;
        let template = sent.iter().find(|b| b["message"]["attachment"]["payload"]["template_type"] == "button")
            .expect("a button template");
        assert_eq!(template["recipient"]["id"], IGSID);
        assert_eq!(template["message"]["attachment"]["payload"]["buttons"][0]["payload"], "Y");
        let (status, refused) = post(&app, "/api/v1/messages", Some(&key),
            &json!({"to": {"instagram": {"igsid": IGSID}, "psid": "U1"}, "message": {"text": "x"}})).await;
        assert_eq!((status, refused["field"].as_str()), (422, Some("to")), "{refused}");

        // An account connected to none of the Pages: kept, not answered
        // (Meta was asked once, above; not again within the minute).
        let stranger = json!({"sender": {"id": "IGSID-9"}, "recipient": {"id": "999"}, "timestamp": now_ms(),
                              "message": {"mid": "ig.m9", "text": "hello?"}});
        app.post_signed_webhook(&instagram_body("999", vec![stranger])).await;
        let rows = app.inbox_settled().await;
        let outcome = rows.iter().rev().find_map(|r| r.outcome.clone()).unwrap();
        assert_eq!(outcome, "kept: Instagram account 999 is connected to none of this deployment's Pages");
        app.stop().await;
    })
    .await;
}

/// An ig.me link's `ref` reaches the link flow: the token is spent for the
/// Instagram person, and since Meta's `ids_for_pages` never names an
/// Instagram id, the person is asked first and, once they agree, the link
/// waits for the account owner's confirmation.
#[tokio::test]
async fn an_ig_me_ref_waits_for_the_owners_confirmation() {
    use crate::login_support::{
        mount_identity, mount_ids_for_pages, mount_ids_for_pages_later, ref_of, Visitor,
    };
    on_every_backend(|backend| async move {
        let app = instagram_app(&backend).await;
        mount_identity(&app.graph).await;
        mount_ids_for_pages(&app.graph, &[]).await;
        let mut visitor = Visitor::new(&app);
        assert_eq!(visitor.login().await.status(), 302);
        let reference = ref_of(&visitor.account_page().await);
        mount_ids_for_pages_later(&app.graph, &[]).await;
        let referral = from_person(json!({"referral": {"ref": reference, "source": "IGME", "type": "OPEN_THREAD"}}));
        app.post_signed_webhook(&instagram_body(IG_ACCOUNT, vec![referral])).await;
        let rows = app.inbox_settled().await;
        let outcome = rows.iter().find_map(|r| r.outcome.clone()).unwrap();
        assert!(outcome.contains("asked"), "{outcome}");
        // The person is asked first, and taps Link.
        let question = app.outbox().await.into_iter().find(|r| r.psid == IGSID).unwrap();
        let question: Value = serde_json::from_str(&question.body).unwrap();
        let link = question["message"]["quick_replies"][0]["payload"].clone();
        let tap = from_person(json!({"message": {"mid": "ig.tap", "text": "Link", "quick_reply": {"payload": link}}}));
        app.post_signed_webhook(&instagram_body(IG_ACCOUNT, vec![tap])).await;
        let rows = app.inbox_settled().await;
        let outcome = rows.iter().rev().find_map(|r| r.outcome.clone()).unwrap();
        assert!(outcome.contains("pending"), "{outcome}");
        let pending = app
            .count(&format!("SELECT COUNT(*) FROM pending_links WHERE page_id = '{PAGE_ID}' AND psid = '{IGSID}'"))
            .await;
        assert_eq!(pending, 1);
        assert_eq!(app.count("SELECT COUNT(*) FROM links").await, 0, "nothing linked unconfirmed");
        app.stop().await;
    })
    .await;
}

/// Erasing a person erases what they wrote on Instagram too: the event is
/// stored under the professional account that received it, their link
/// under the Page it is answered through.
#[tokio::test]
async fn erasing_a_person_erases_what_they_wrote_on_instagram() {
    on_every_backend(|backend| async move {
        let app = instagram_app(&backend).await;
        let now = now_ms();
        app.exec(&format!(
            "INSERT INTO accounts (id, fb_uid, name, created_at, updated_at)
             VALUES ('acct-ig', 'uid-ig', 'Ada', {now}, {now})"
        ))
        .await;
        app.exec(&format!(
            "INSERT INTO links (page_id, psid, account_id, source, linked_at)
             VALUES ('{PAGE_ID}', '{IGSID}', 'acct-ig', 'confirmed', {now})"
        ))
        .await;
        let hello =
            from_person(json!({"message": {"mid": "ig.m1", "text": "my address is 1 Main St"}}));
        app.post_signed_webhook(&instagram_body(IG_ACCOUNT, vec![hello]))
            .await;
        app.inbox_settled().await;
        app.outbox_settled().await;
        // Another person's Instagram message stays.
        let other = json!({"sender": {"id": "IGSID-2"}, "recipient": {"id": IG_ACCOUNT},
                           "timestamp": now_ms(), "message": {"mid": "ig.m2", "text": "hi"}});
        app.post_signed_webhook(&instagram_body(IG_ACCOUNT, vec![other]))
            .await;
        app.inbox_settled().await;
        app.outbox_settled().await;
        assert_eq!(
            app.count(&format!(
                "SELECT COUNT(*) FROM inbox WHERE psid = '{IGSID}'"
            ))
            .await,
            1
        );
        let erased = app
            .store
            .erase_person(
                lexbridge::store::erasure::Subject::Account("acct-ig"),
                "test",
                now_ms(),
                None,
            )
            .await
            .unwrap()
            .expect("the account exists");
        // What they wrote and the answer they were sent.
        assert_eq!(erased.erased.inbox, 1, "{:?}", erased.erased);
        assert_eq!(erased.erased.outbox, 1, "{:?}", erased.erased);
        assert_eq!(
            app.count(&format!(
                "SELECT COUNT(*) FROM inbox WHERE psid = '{IGSID}'"
            ))
            .await,
            0
        );
        assert_eq!(
            app.count(&format!(
                "SELECT COUNT(*) FROM outbox WHERE psid = '{IGSID}'"
            ))
            .await,
            0
        );
        assert_eq!(
            app.count("SELECT COUNT(*) FROM inbox WHERE psid = 'IGSID-2'")
                .await,
            1
        );
        app.stop().await;
    })
    .await;
}

/// While Meta cannot say which Page an Instagram account is connected to,
/// its events are retried; given up on, they get no apology through a
/// Page that is not one (nor one for a read receipt, which asked nothing).
#[tokio::test]
async fn an_instagram_event_whose_page_cannot_be_found_is_given_up_without_a_stray_apology() {
    on_every_backend(|backend| async move {
        let graph = MockServer::start().await;
        mount_send(&graph).await;
        Mock::given(method("GET"))
            .and(path(format!("/v25.0/{PAGE_ID}")))
            .and(query_param("fields", "instagram_business_account"))
            .respond_with(ResponseTemplate::new(500).set_body_json(
                json!({"error": {"message": "Please retry", "code": 2}}),
            ))
            .mount(&graph)
            .await;
        let options = Options {
            nlu: Some(Arc::new(ScriptedNlu::default())),
            ..Options::default()
        };
        let app = start(TestDb::new(&backend).await, graph, options, &[]).await;
        let hello = from_person(json!({"message": {"mid": "ig.m1", "text": "hi"}}));
        let read = from_person(json!({"read": {"mid": "m.out"}}));
        assert_eq!(app.post_signed_webhook(&instagram_body(IG_ACCOUNT, vec![hello, read])).await.status(), 200);
        wait_until("both given up", || async {
            app.count("SELECT COUNT(*) FROM inbox WHERE state = 'dead'").await == 2
        })
        .await;
        let rows = app.inbox().await;
        assert_eq!(
            rows[0].outcome.as_deref(),
            Some(format!("dead-lettered; no apology: Page {IG_ACCOUNT} is not one this deployment answers for").as_str())
        );
        assert_eq!(rows[1].outcome.as_deref(), Some("dead-lettered"));
        assert_eq!(app.count("SELECT COUNT(*) FROM outbox").await, 0);
        app.stop().await;
    })
    .await;
}
