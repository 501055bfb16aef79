//! Unlink sticks: after unlinking in Messenger (the announcement's Unlink
//! button, Messenger's own `unlinked` event) or on the account page, no
//! reverse lookup links the person again, what waited for them is
//! `cancelled`, their NLU state is gone, and only a new login relinks.

use crate::helpers::*;
use crate::login_support::*;
use crate::outbound::{new_key, person, ping, post};
use crate::support::nlu::ScriptedNlu;
use lexbridge::linking::notice::{link_announcement, unlink_payload};
use lexbridge::store::linking::{LinkChange, NewLink, OnOtherOwner};
use lexbridge::store::now_ms;
use serde_json::{json, Value};
use std::sync::Arc;
use wiremock::matchers::{method, path};
use wiremock::{Mock, ResponseTemplate};

const HOUR: i64 = 3_600_000;

/// `psid` of account `account` (fb_uid `uid-{account}`), who last wrote 30
/// hours ago and has a dialog in progress.
async fn linked_person(app: &TestApp, account: &str, psid: &str) {
    person(app, account, psid, Some(30 * HOUR)).await;
    app.exec(&format!(
        "UPDATE conversations SET nlu_state = '{{\"dialog\":\"ordering\"}}'
         WHERE page_id = '{PAGE_ID}' AND psid = '{psid}'"
    ))
    .await;
}

/// A message held for `account` through the API, and one queued for `psid`
/// that is not due yet; returns the held message's id.
async fn waiting_messages(app: &TestApp, key: &str, account: &str, psid: &str) -> String {
    let response = app
        .http
        .post(format!("{}/api/v1/messages", app.address))
        .bearer_auth(key)
        .json(
            &json!({"to": {"account": account}, "message": {"text": "Your invoice"},
                      "if_outside_window": "hold"}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 202);
    let held: Value = response.json().await.unwrap();
    assert_eq!(held["status"], "held");
    let later = now_ms() + 24 * HOUR;
    app.exec(&format!(
        "INSERT INTO outbox (page_id, psid, body, messaging_type, origin, state, next_attempt_at, created_at)
         VALUES ('{PAGE_ID}', '{psid}', '{{\"message\":{{\"text\":\"later\"}}}}', 'UPDATE', 'api', 'queued', {later}, {later})"
    ))
    .await;
    held["id"].as_str().unwrap().to_string()
}

async fn status_of(app: &TestApp, key: &str, id: &str) -> String {
    let response = app
        .http
        .get(format!("{}/api/v1/messages/{id}", app.address))
        .bearer_auth(key)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    body["status"].as_str().unwrap().to_string()
}

/// The states of the messages to `psid` that are not replies.
async fn waiting_states(app: &TestApp, psid: &str) -> Vec<String> {
    app.outbox()
        .await
        .into_iter()
        .filter(|r| r.psid == psid && r.origin == "api")
        .map(|r| r.state)
        .collect()
}

async fn nlu_state(app: &TestApp, psid: &str) -> Option<String> {
    app.store
        .conversation_context(PAGE_ID, psid)
        .await
        .unwrap()
        .nlu_state
}

/// `ids_for_apps` would link `psid` to its account again: it must never be
/// asked.
async fn mount_relinking_lookup(app: &TestApp, psid: &str, uid: &str) {
    Mock::given(method("GET"))
        .and(path(format!("/v25.0/{psid}/ids_for_apps")))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"data": [{"id": uid, "app": {"id": "test-app-id"}}]})),
        )
        .expect(0)
        .named("ids_for_apps after an unlink")
        .mount(&app.graph)
        .await;
}

#[tokio::test]
async fn unlinking_in_messenger_sticks_cancels_what_waits_and_forgets_the_dialog() {
    on_every_backend(|backend| async move {
        let nlu = Arc::new(ScriptedNlu::default());
        let app = spawn_app_with(&backend, Some(nlu.clone())).await;
        mount_send(&app.graph).await;
        let key = new_key(&app, "billing").await;
        let button = unlink_payload(&test_link_tokens(), PAGE_ID, "PSID-BUTTON");
        let ways = [
            ("PSID-BUTTON", "acc-1", json!({"postback": {"mid": "m.pb.1", "title": "Unlink", "payload": button}})),
            ("PSID-EVENT", "acc-2", json!({"account_linking": {"status": "unlinked"}})),
        ];
        for (psid, account, unlink) in ways {
            linked_person(&app, account, psid).await;
            let held = waiting_messages(&app, &key, account, psid).await;
            mount_relinking_lookup(&app, psid, &format!("uid-{account}")).await;

            let mut event = json!({"sender": {"id": psid}, "recipient": {"id": PAGE_ID}, "timestamp": now_ms()});
            for (k, v) in unlink.as_object().unwrap() {
                event[k] = v.clone();
            }
            app.post_signed_webhook(&webhook_body(&[(PAGE_ID, vec![event])])).await;
            app.inbox_settled().await;
            assert!(
                app.store.links_for_account(account).await.unwrap().is_empty(),
                "{psid}: unlinked"
            );
            assert_eq!(status_of(&app, &key, &held).await, "cancelled", "{psid}");
            assert_eq!(waiting_states(&app, psid).await, ["cancelled", "cancelled"], "{psid}");
            assert_eq!(nlu_state(&app, psid).await, None, "{psid}: the dialog is forgotten");
            let replies = replies_to(&app, psid).await;
            assert!(replies.iter().any(|r| r.starts_with("You're unlinked")), "{replies:?}");

            // The next message is answered unlinked, without a lookup.
            let calls = nlu.calls();
            app.post_signed_webhook(&text_message(psid, &format!("m.{psid}"), "hello")).await;
            app.inbox_settled().await;
            assert_eq!(nlu.calls(), calls + 1);
            let turn = nlu.turns.lock().unwrap().last().cloned().unwrap();
            assert_eq!(turn.attributes["linked"], "false", "{psid}");
            assert!(app.store.links_for_account(account).await.unwrap().is_empty());
        }
        app.outbox_settled().await;
        let sent = sent_bodies(&app.graph).await;
        assert!(
            !sent.iter().any(|b| b.to_string().contains("Your invoice") || b.to_string().contains("later")),
            "a cancelled message is never sent"
        );
        app.graph.verify().await;
        // The OpenAPI document lists the state.
        let spec: Value = app
            .http
            .get(format!("{}/api/v1/openapi.json", app.address))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let status = &spec["components"]["schemas"]["StatusAnswer"]["properties"]["status"];
        assert!(status["description"].as_str().unwrap().contains("`cancelled`"), "{status}");
        app.stop().await;
    })
    .await;
}

/// The attack: an API key (any key, even one scoped to another purpose) or
/// a bot reply puts a button whose payload looks like the announcement's
/// Unlink into someone's thread ("Claim your coupon"); the person taps it.
/// Only the button of their own announcement (its MAC of their Page and
/// PSID) unlinks; a planted one is an ordinary postback.
#[tokio::test]
async fn an_unlink_button_planted_in_the_thread_unlinks_nobody() {
    on_every_backend(|backend| async move {
        let nlu = Arc::new(ScriptedNlu::default());
        let app = spawn_app_with(&backend, Some(nlu.clone())).await;
        mount_send(&app.graph).await;
        let key = new_key(&app, "billing").await;
        linked_person(&app, "acc-1", "PSID-VICTIM").await;
        let held = waiting_messages(&app, &key, "acc-1", "PSID-VICTIM").await;
        let planted = [
            "LEXBRIDGE_UNLINK".to_string(),
            format!("LEXBRIDGE_UNLINK:{}", "0".repeat(32)),
            unlink_payload(&test_link_tokens(), PAGE_ID, "PSID-OTHER"),
        ];
        for (i, payload) in planted.iter().enumerate() {
            let tap = json!({"sender": {"id": "PSID-VICTIM"}, "recipient": {"id": PAGE_ID},
                             "timestamp": now_ms(),
                             "postback": {"mid": format!("m.planted.{i}"), "title": "Claim your coupon",
                                          "payload": payload}});
            app.post_signed_webhook(&webhook_body(&[(PAGE_ID, vec![tap])])).await;
        }
        app.inbox_settled().await;
        assert_eq!(app.store.links_for_account("acc-1").await.unwrap().len(), 1, "still linked");
        assert!(!app.store.is_unlinked(PAGE_ID, "PSID-VICTIM").await.unwrap(), "no tombstone");
        // The taps are the person writing: the held message goes, it is not cancelled.
        assert_ne!(status_of(&app, &key, &held).await, "cancelled");
        assert_eq!(nlu.calls(), planted.len(), "each tap is an ordinary postback for the NLU");
        app.stop().await;
    })
    .await;
}

/// "Unlink everything" holds for identities the account never had too: a
/// PSID that was never linked (another Page, or one `ids_for_pages` did not
/// name) whose `ids_for_apps` names the account's person is not linked to
/// it; only a new login is.
#[tokio::test]
async fn after_unlinking_everything_no_reverse_lookup_links_the_account() {
    on_every_backend(|backend| async move {
        let app = spawn_app(&backend).await;
        mount_send(&app.graph).await;
        mount_identity(&app.graph).await;
        mount_ids_for_pages(&app.graph, &["PSID-1"]).await;
        let mut visitor = Visitor::new(&app);
        visitor.login().await;
        let account = accounts(&app).await[0].0.clone();
        let csrf = csrf_of(&visitor.account_page().await);
        let unlinked = visitor
            .post_form("/account/unlink", &[("csrf", &csrf)])
            .await;
        assert_eq!(unlinked.status(), 303);
        Mock::given(method("GET"))
            .and(path("/v25.0/PSID-NEW/ids_for_apps"))
            .respond_with(
                ResponseTemplate::new(200)
                    .set_body_json(json!({"data": [{"id": UID, "app": {"id": "test-app-id"}}]})),
            )
            .mount(&app.graph)
            .await;
        app.post_signed_webhook(&text_message("PSID-NEW", "m.new", "hello"))
            .await;
        app.inbox_settled().await;
        assert!(
            app.store
                .links_for_account(&account)
                .await
                .unwrap()
                .is_empty(),
            "not linked again without a login"
        );
        app.stop().await;
    })
    .await;
}

#[tokio::test]
async fn unlinking_on_the_account_page_sticks_until_a_new_login() {
    on_every_backend(|backend| async move {
        let nlu = Arc::new(ScriptedNlu::default());
        let app = spawn_app_with(&backend, Some(nlu.clone())).await;
        mount_send(&app.graph).await;
        mount_identity(&app.graph).await;
        mount_ids_for_pages(&app.graph, &["PSID-1"]).await;
        let mut visitor = Visitor::new(&app);
        visitor.login().await;
        let account = accounts(&app).await[0].0.clone();
        let now = now_ms();
        app.exec(&format!(
            "INSERT INTO conversations (page_id, psid, last_inbound_at, nlu_state, updated_at)
             VALUES ('{PAGE_ID}', 'PSID-1', {}, 'state', {now})",
            now - 30 * HOUR
        ))
        .await;
        let key = new_key(&app, "billing").await;
        let held = waiting_messages(&app, &key, &account, "PSID-1").await;
        mount_relinking_lookup(&app, "PSID-1", UID).await;
        let page = visitor.account_page().await;
        let csrf = csrf_of(&page);

        let forged = visitor
            .post_form(
                "/account/links/unlink",
                &[("csrf", "forged"), ("page_id", PAGE_ID), ("psid", "PSID-1")],
            )
            .await;
        assert_eq!(forged.status(), 403);
        let not_ours = visitor
            .post_form(
                "/account/links/unlink",
                &[
                    ("csrf", &csrf),
                    ("page_id", PAGE_ID),
                    ("psid", "PSID-OTHER"),
                ],
            )
            .await;
        assert_eq!(not_ours.status(), 404);
        assert_eq!(links(&app).await.len(), 1, "nothing changed");

        let unlinked = visitor
            .post_form(
                "/account/links/unlink",
                &[("csrf", &csrf), ("page_id", PAGE_ID), ("psid", "PSID-1")],
            )
            .await;
        assert_eq!(unlinked.status(), 303);
        assert!(links(&app).await.is_empty());
        assert_eq!(status_of(&app, &key, &held).await, "cancelled");
        assert_eq!(nlu_state(&app, "PSID-1").await, None);

        app.post_signed_webhook(&text_message("PSID-1", "m.1", "hello"))
            .await;
        app.inbox_settled().await;
        assert!(links(&app).await.is_empty(), "no silent relink");
        let turn = nlu.turns.lock().unwrap().last().cloned().unwrap();
        assert_eq!(turn.attributes["linked"], "false");
        app.graph.verify().await;

        // A new login relinks.
        app.graph.reset().await;
        mount_send(&app.graph).await;
        mount_identity(&app.graph).await;
        mount_ids_for_pages(&app.graph, &["PSID-1"]).await;
        Visitor::new(&app).login().await;
        assert_eq!(
            links(&app).await,
            vec![("PSID-1".into(), account, "ids_for_pages".into())]
        );
        app.stop().await;
    })
    .await;
}

/// The claim reads the person's tombstone with their conversation, and the
/// reverse lookup trusts what it read; a person may unlink after that read
/// (their row claimed, the lookup under way). Linking from `ids_for_apps`
/// checks the tombstone again in its own transaction, so such a lookup
/// cannot link them again.
#[tokio::test]
async fn a_lookup_that_read_the_conversation_before_an_unlink_links_nothing() {
    on_every_backend(|backend| async move {
        let app = spawn_app(&backend).await;
        linked_person(&app, "acc-late", "PSID-LATE").await;
        let read = app
            .store
            .conversation_context(PAGE_ID, "PSID-LATE")
            .await
            .unwrap();
        assert!(!read.unlinked, "linked, no tombstone yet");

        app.store
            .unlink_psid(PAGE_ID, "PSID-LATE", "messenger", now_ms())
            .await
            .unwrap();
        let after = app
            .store
            .conversation_context(PAGE_ID, "PSID-LATE")
            .await
            .unwrap();
        assert!(
            after.unlinked,
            "the tombstone is read with the conversation"
        );

        // The lookup that began with the first read finds the account.
        let tokens = test_link_tokens();
        let announce = |page: &str, psid: &str, name: Option<&str>| {
            link_announcement(&tokens, page, psid, name)
        };
        let link = NewLink {
            page_id: PAGE_ID,
            psid: "PSID-LATE",
            account_id: "acc-late",
            source: "ids_for_apps",
            now: now_ms(),
            announcement: &announce,
        };
        let change = app.store.link_psid(link, OnOtherOwner::Keep).await.unwrap();
        assert_eq!(change, LinkChange::Tombstoned);
        assert!(app
            .store
            .links_for_account("acc-late")
            .await
            .unwrap()
            .is_empty());
        app.stop().await;
    })
    .await;
}

/// Unlinking cancels what waits for the person, and a message in hand at
/// that moment (being sent, its answer a failure to try again) is
/// cancelled when it comes back rather than sent later; `outbox retry`
/// does not send a failed one to a person who unlinked since either.
#[tokio::test]
async fn a_message_in_hand_at_the_unlink_is_cancelled_when_it_comes_back() {
    on_every_backend(|backend| async move {
        let app = spawn_app(&backend).await;
        let key = new_key(&app, "crm").await;
        person(&app, "acct-1", "U1", Some(HOUR)).await;
        person(&app, "acct-2", "U2", Some(HOUR)).await;
        let slow_failure = ResponseTemplate::new(500)
            .set_body_json(json!({"error": {"message": "Please retry", "code": 2}}))
            .set_delay(std::time::Duration::from_secs(5));
        Mock::given(method("POST"))
            .and(path(SEND_PATH))
            .respond_with(slow_failure)
            .up_to_n_times(1)
            .mount(&app.graph)
            .await;
        let unavailable = ResponseTemplate::new(400).set_body_json(
            json!({"error": {"message": "This person isn't available right now.", "code": 551}}),
        );
        Mock::given(method("POST"))
            .and(path(SEND_PATH))
            .and(wiremock::matchers::body_string_contains("U2"))
            .respond_with(unavailable)
            .mount(&app.graph)
            .await;
        Mock::given(method("POST"))
            .and(path(SEND_PATH))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({"message_id": "m.1"})))
            .mount(&app.graph)
            .await;
        let send =
            |account: &'static str| {
                let (app, key) = (&app, &key);
                async move {
                    let response = app.http.post(format!("{}/api/v1/messages", app.address))
                    .bearer_auth(key)
                    .json(&json!({"to": {"account": account}, "message": {"text": "Your invoice"}}))
                    .send().await.unwrap();
                    assert_eq!(response.status(), 202);
                }
            };
        send("acct-1").await;
        wait_until("the message in hand", || async {
            app.count("SELECT COUNT(*) FROM outbox WHERE psid = 'U1' AND state = 'sending'")
                .await
                == 1
        })
        .await;
        let unlinked = app
            .store
            .unlink_psid(PAGE_ID, "U1", "messenger", now_ms())
            .await
            .unwrap();
        assert_eq!(
            unlinked.cancelled, 0,
            "nothing waited: the message was in hand"
        );
        wait_until("the message cancelled", || async {
            app.count("SELECT COUNT(*) FROM outbox WHERE psid = 'U1' AND state = 'cancelled'")
                .await
                == 1
        })
        .await;
        let calls = |psid: &'static str| {
            let app = &app;
            async move {
                let requests = app.graph.received_requests().await.unwrap();
                requests
                    .iter()
                    .filter(|r| String::from_utf8_lossy(&r.body).contains(psid))
                    .count()
            }
        };
        assert_eq!(
            calls("U1").await,
            1,
            "the one attempt in hand, none after the unlink"
        );

        // A message that failed for good, then its person unlinked: not
        // queued again by `outbox retry`.
        send("acct-2").await;
        wait_until("the message failed", || async {
            app.count("SELECT COUNT(*) FROM outbox WHERE psid = 'U2' AND state = 'failed'")
                .await
                == 1
        })
        .await;
        app.store
            .unlink_psid(PAGE_ID, "U2", "messenger", now_ms())
            .await
            .unwrap();
        let queued = app
            .store
            .retry_outbox(&lexbridge::store::failures::Retry::All, now_ms())
            .await
            .unwrap();
        assert_eq!(queued, 0);
        assert_eq!(
            app.count("SELECT COUNT(*) FROM outbox WHERE psid = 'U2' AND state = 'failed'")
                .await,
            1
        );
        assert_eq!(calls("U2").await, 1);
        app.stop().await;
    })
    .await;
}

/// A message waiting in hand for its Page's send rate when the person
/// unlinks is cancelled when its turn comes, not sent.
#[tokio::test]
async fn a_message_waiting_for_the_send_rate_at_the_unlink_is_cancelled_when_its_turn_comes() {
    on_every_backend(|backend| async move {
        // One call a second: the fourth message waits some 3 s in hand.
        let app = crate::outbox::one_send_a_second(&backend).await;
        let key = new_key(&app, "crm").await;
        let mut messages = Vec::new();
        for n in 1..=4 {
            person(&app, &format!("acct-{n}"), &format!("U{n}"), Some(HOUR)).await;
            messages.push(ping(&format!("acct-{n}"), "Your invoice"));
        }
        // All four in one request, so they are claimed together.
        let batch = json!({"messages": messages});
        let (status, _) = post(&app, "/api/v1/messages/batch", Some(&key), &batch).await;
        assert_eq!(status, 200);
        // The first went at once; the others wait 1, 2 and 3 s in hand
        // (counted in one statement, so the two counts agree).
        wait_until("the first sent, the others in hand", || async {
            app.count(
                "SELECT COUNT(*) FROM outbox WHERE state = 'sending'
                   AND (SELECT COUNT(*) FROM outbox WHERE state = 'sent') = 1",
            )
            .await
                == 3
        })
        .await;
        let waiting: Vec<(String,)> = rows_on(
            &app.store,
            "SELECT psid FROM outbox WHERE state = 'sending' ORDER BY id DESC LIMIT 1",
        )
        .await;
        let psid = waiting[0].0.clone();
        app.store
            .unlink_psid(PAGE_ID, &psid, "messenger", now_ms())
            .await
            .unwrap();
        let cancelled =
            format!("SELECT COUNT(*) FROM outbox WHERE psid = '{psid}' AND state = 'cancelled'");
        wait_until("the message cancelled at its turn", || async {
            app.count(&cancelled).await == 1
        })
        .await;
        let requests = app.graph.received_requests().await.unwrap();
        let quoted = format!("\"{psid}\"");
        let to_them = requests
            .iter()
            .filter(|r| String::from_utf8_lossy(&r.body).contains(&quoted))
            .count();
        assert_eq!(to_them, 0, "nothing went to the person who unlinked");
        app.stop().await;
    })
    .await;
}
