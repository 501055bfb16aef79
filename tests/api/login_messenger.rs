//! Linking from Messenger's side: m.me `ref` tokens through the signed
//! webhook, the `ids_for_apps` reverse lookup, and Messenger account linking.

use crate::helpers::*;
use crate::login_support::*;
use lexbridge::store::linking::TokenUse;
use lexbridge::store::now_ms;
use serde_json::{json, Value};
use wiremock::matchers::{method, path, query_param};
use wiremock::{Mock, ResponseTemplate};

fn referral_event(psid: &str, reference: &str, at: i64) -> Value {
    webhook_body(&[(
        PAGE_ID,
        vec![json!({
            "sender": {"id": psid}, "recipient": {"id": PAGE_ID}, "timestamp": at,
            "referral": {"ref": reference, "source": "SHORTLINK", "type": "OPEN_THREAD"}
        })],
    )])
}

fn get_started_event(psid: &str, reference: &str, at: i64) -> Value {
    webhook_body(&[(
        PAGE_ID,
        vec![json!({
            "sender": {"id": psid}, "recipient": {"id": PAGE_ID}, "timestamp": at,
            "postback": {"mid": format!("m.gs.{at}"), "title": "Get Started", "payload": "GET_STARTED",
                         "referral": {"ref": reference, "source": "SHORTLINK", "type": "OPEN_THREAD"}}
        })],
    )])
}

/// Signs in with `ids_for_pages` finding nothing; returns the visitor.
async fn signed_in_without_links(app: &TestApp) -> Visitor {
    mount_identity(&app.graph).await;
    mount_ids_for_pages(&app.graph, &[]).await;
    let mut visitor = Visitor::new(app);
    assert_eq!(visitor.login().await.status(), 302);
    visitor
}

#[tokio::test]
async fn an_m_me_ref_links_the_sender_once_and_the_bot_says_so() {
    on_every_backend(|backend| async move {
        let app = spawn_app(&backend).await;
        mount_send(&app.graph).await;
        let mut visitor = signed_in_without_links(&app).await;
        let reference = ref_of(&visitor.account_page().await);
        let account = accounts(&app).await[0].0.clone();
        // Meta vouches that PSID-R is the account owner's.
        mount_ids_for_pages_later(&app.graph, &["PSID-R"]).await;

        assert_eq!(
            app.post_signed_webhook(&referral_event("PSID-R", &reference, 1))
                .await
                .status(),
            200
        );
        app.inbox_settled().await;
        assert_eq!(
            links(&app).await,
            vec![("PSID-R".into(), account.clone(), "ref".into())]
        );
        assert_eq!(
            replies_to(&app, "PSID-R").await,
            ["You're linked! I'll know it's you from now on."]
        );
        assert!(visitor.account_page().await.contains("PSID-R"));

        // The same token from someone else, a forged one, an expired one.
        app.post_signed_webhook(&referral_event("PSID-X", &reference, 2))
            .await;
        let mut forged = reference.clone();
        let last = forged.pop();
        forged.push(if last == Some('0') { '1' } else { '0' });
        app.post_signed_webhook(&referral_event("PSID-Y", &forged, 3))
            .await;
        let mut second = Visitor::new(&app);
        second.cookie = visitor.cookie.clone();
        app.exec("DELETE FROM links").await;
        let fresh = ref_of(&second.account_page().await);
        // Expired a minute ago (the sweeper keeps it for a day).
        app.exec("UPDATE link_tokens SET expires_at = expires_at - 960000 WHERE used_at IS NULL")
            .await;
        app.post_signed_webhook(&referral_event("PSID-Z", &fresh, 4))
            .await;
        let rows = app.inbox_settled().await;
        let outcomes: Vec<_> = rows.iter().filter_map(|r| r.outcome.clone()).collect();
        assert!(
            outcomes.contains(&"refused: ref token already used".to_string()),
            "{outcomes:?}"
        );
        assert!(
            outcomes.contains(&"refused: forged ref".to_string()),
            "{outcomes:?}"
        );
        assert!(
            outcomes.contains(&"refused: ref token expired".to_string()),
            "{outcomes:?}"
        );
        assert!(links(&app).await.is_empty(), "nothing linked by bad tokens");
        for psid in ["PSID-X", "PSID-Y", "PSID-Z"] {
            assert!(replies_to(&app, psid).await[0].contains("expired or was already used"));
        }
    })
    .await;
}

#[tokio::test]
async fn a_get_started_postback_with_a_ref_links_without_moving_anothers_psid() {
    on_every_backend(|backend| async move {
        let app = spawn_app(&backend).await;
        mount_send(&app.graph).await;
        let mut visitor = signed_in_without_links(&app).await;
        let reference = ref_of(&visitor.account_page().await);
        mount_ids_for_pages_later(&app.graph, &["PSID-G"]).await;
        app.post_signed_webhook(&get_started_event("PSID-G", &reference, 10)).await;
        app.inbox_settled().await;
        assert_eq!(links(&app).await.len(), 1);

        app.exec("INSERT INTO accounts (id, fb_uid, name, created_at, updated_at) VALUES ('acc-b', '7000', 'B', 1, 1)").await;
        app.exec(&format!("INSERT INTO links (page_id, psid, account_id, source, linked_at) VALUES ('{PAGE_ID}', 'PSID-B', 'acc-b', 'ref', 1)")).await;
        let reference = {
            app.exec("DELETE FROM links WHERE psid = 'PSID-G'").await;
            ref_of(&visitor.account_page().await)
        };
        app.post_signed_webhook(&referral_event("PSID-B", &reference, 11)).await;
        app.inbox_settled().await;
        assert_eq!(app.store.conversation_context(PAGE_ID, "PSID-B").await.unwrap().account.unwrap().account_id, "acc-b");
        assert!(replies_to(&app, "PSID-B").await[0].contains("already linked to another account"));
    })
    .await;
}

#[tokio::test]
async fn an_unknown_psid_is_looked_up_once_with_ids_for_apps() {
    on_every_backend(|backend| async move {
        let app = spawn_app(&backend).await;
        app.exec("INSERT INTO accounts (id, fb_uid, name, created_at, updated_at) VALUES ('acc-a', 'ASID-1', 'A', 1, 1)").await;
        for (psid, answer) in [
            ("PSID-KNOWN", json!({"data": [{"id": "ASID-OTHER-APP", "app": {"id": "42"}},
                                          {"id": "ASID-1", "app": {"id": "test-app-id"}}]})),
            ("PSID-NEW", json!({"data": []})),
        ] {
            Mock::given(method("GET"))
                .and(path(format!("/v25.0/{psid}/ids_for_apps")))
                .and(query_param("access_token", PAGE_TOKEN))
                .and(ValidProof)
                .respond_with(ResponseTemplate::new(200).set_body_json(answer))
                .expect(1)
                .mount(&app.graph)
                .await;
        }
        for (i, psid) in ["PSID-KNOWN", "PSID-NEW", "PSID-KNOWN", "PSID-NEW"].iter().enumerate() {
            app.post_signed_webhook(&text_message(psid, &format!("m.{i}"), "hello")).await;
            app.inbox_settled().await;
        }
        assert_eq!(links(&app).await, vec![("PSID-KNOWN".into(), "acc-a".into(), "ids_for_apps".into())]);
        app.graph.verify().await;
    })
    .await;
}

#[tokio::test]
async fn messenger_account_linking_links_a_vouched_recipient_and_answers_with_a_code() {
    on_every_backend(|backend| async move {
        let app = spawn_app(&backend).await;
        mount_send(&app.graph).await;
        mount_identity(&app.graph).await;
        // Meta vouches: the person's ids_for_pages holds the button's PSID.
        mount_ids_for_pages(&app.graph, &["PSID-M"]).await;
        Mock::given(method("GET"))
            .and(path("/v25.0/me"))
            .and(query_param("fields", "recipient"))
            .and(query_param("account_linking_token", "test-alt"))
            .and(query_param("access_token", PAGE_TOKEN))
            .and(ValidProof)
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({"id": PAGE_ID, "recipient": "PSID-M"})))
            .expect(1)
            .mount(&app.graph)
            .await;
        let back = "https://www.facebook.com/messenger_platform/account_linking/?account_linking_token=test-alt";
        let mut visitor = Visitor::new(&app);
        let bad = visitor.get(&format!("/auth/messenger/link?{}", serde_urlencoded(&[("account_linking_token", "test-alt"), ("redirect_uri", "https://evil.example/")]))).await;
        assert_eq!(bad.status(), 400, "no open redirect");
        let start = visitor.get(&format!("/auth/messenger/link?{}", serde_urlencoded(&[("account_linking_token", "test-alt"), ("redirect_uri", back)]))).await;
        assert_eq!(start.status(), 302);
        let state = query_of(location(&start))["state"].clone();
        let done = visitor.callback(&[("code", CODE), ("state", &state)]).await;
        assert_eq!(done.status(), 302);
        let to = location(&done).to_string();
        assert!(to.starts_with(back), "{to}");
        let code = query_of(&to)["authorization_code"].clone();
        let account = accounts(&app).await[0].0.clone();
        assert_eq!(links(&app).await, vec![("PSID-M".into(), account.clone(), "ids_for_pages".into())]);
        let notice = announcements_to(&app, "PSID-M").await;
        assert_eq!(notice.len(), 1, "the new link is announced in the thread");
        assert!(notice[0].to_string().contains(NAME));

        let event = |status: &str, at: i64| webhook_body(&[(PAGE_ID, vec![json!({
            "sender": {"id": "PSID-M"}, "recipient": {"id": PAGE_ID}, "timestamp": at,
            "account_linking": {"status": status, "authorization_code": code}
        })])]);
        app.post_signed_webhook(&event("linked", 20)).await;
        let rows = app.inbox_settled().await;
        assert_eq!(rows[0].outcome.as_deref(), Some("linked: confirmed by Messenger"));
        app.post_signed_webhook(&event("unlinked", 21)).await;
        app.inbox_settled().await;
        assert!(links(&app).await.is_empty());
        assert_eq!(replies_to(&app, "PSID-M").await, ["You're unlinked. Sign in on our website again whenever you like."]);
    })
    .await;
}

#[tokio::test]
async fn the_sweeper_drops_day_old_link_tokens_and_login_states() {
    on_every_backend(|backend| async move {
        let app = spawn_app(&backend).await;
        app.exec("INSERT INTO accounts (id, fb_uid, name, created_at, updated_at) VALUES ('acc-a', 'ASID-1', 'A', 1, 1)").await;
        let (old, recent) = (now_ms() - 86_400_000 - 60_000, now_ms() - 60_000);
        app.exec(&format!(
            "INSERT INTO link_tokens (nonce, purpose, account_id, expires_at)
             VALUES ('n-old', 'ref', 'acc-a', {old}), ('n-recent', 'ref', 'acc-a', {recent})"
        ))
        .await;
        app.exec(&format!(
            "INSERT INTO login_states (state_hash, used_at) VALUES ('s-old', {old}), ('s-recent', {recent})"
        ))
        .await;
        wait_until("day-old link tokens and login states to be swept", || async {
            app.count("SELECT COUNT(*) FROM link_tokens").await == 1
                && app.count("SELECT COUNT(*) FROM login_states").await == 1
        })
        .await;
        // A token that expired within the day still says "expired".
        let used = app.store.spend_link_token("n-recent", "ref", "PSID-1", now_ms()).await.unwrap();
        assert_eq!(used, TokenUse::Expired);
        assert_eq!(app.count("SELECT COUNT(*) FROM login_states WHERE state_hash = 's-recent'").await, 1);
    })
    .await;
}
