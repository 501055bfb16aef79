//! Account linking cannot be hijacked: the attack through Messenger's Log in
//! button played end to end, a leaked m.me link, an m.me link sent to a
//! stranger on purpose, and the owner's confirmation on the website
//! (CSRF-protected, the owner's only).

use crate::helpers::*;
use crate::login_support::*;
use lexbridge::linking::notice::{link_announcement, unlink_payload, LINK_QUESTION};
use lexbridge::linking::tokens::{LinkTokens, Purpose};
use lexbridge::store::linking::{LinkChange, NewLink, OnOtherOwner};
use lexbridge::store::now_ms;
use lexbridge::store::pending_links::NewPendingLink;
use secrecy::SecretString;
use serde_json::{json, Value};
use wiremock::matchers::{method, path, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

const BACK: &str =
    "https://www.facebook.com/messenger_platform/account_linking/?account_linking_token=test-alt";

/// Messenger's account-linking token `test-alt` names `psid`.
async fn mount_recipient(graph: &MockServer, psid: &str) {
    Mock::given(method("GET"))
        .and(path("/v25.0/me"))
        .and(query_param("fields", "recipient"))
        .and(query_param("account_linking_token", "test-alt"))
        .and(query_param("access_token", PAGE_TOKEN))
        .and(ValidProof)
        .respond_with(
            ResponseTemplate::new(200).set_body_json(json!({"id": PAGE_ID, "recipient": psid})),
        )
        .mount(graph)
        .await;
}

/// `ids_for_apps` of `psid` names no account of this app.
async fn mount_no_app_ids(graph: &MockServer, psid: &str) {
    Mock::given(method("GET"))
        .and(path(format!("/v25.0/{psid}/ids_for_apps")))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"data": []})))
        .mount(graph)
        .await;
}

/// The URL Messenger's Log in button opens in the thread it was tapped in.
fn log_in_button_url() -> String {
    format!(
        "/auth/messenger/link?{}",
        serde_urlencoded(&[
            ("account_linking_token", "test-alt"),
            ("redirect_uri", BACK)
        ])
    )
}

/// Opens `url` (the Log in button's) and signs in; returns the callback.
async fn sign_in_through(visitor: &mut Visitor, url: &str) -> reqwest::Response {
    let start = visitor.get(url).await;
    assert_eq!(start.status(), 302);
    let state = query_of(location(&start))["state"].clone();
    visitor.callback(&[("code", CODE), ("state", &state)]).await
}

fn event(psid: &str, at: i64, body: Value) -> Value {
    let mut event = json!({"sender": {"id": psid}, "recipient": {"id": PAGE_ID}, "timestamp": at});
    for (k, v) in body.as_object().unwrap() {
        event[k] = v.clone();
    }
    webhook_body(&[(PAGE_ID, vec![event])])
}

#[tokio::test]
async fn the_log_in_button_attack_links_nothing_and_the_owner_sees_who_asked() {
    on_every_backend(|backend| async move {
        let app = spawn_app(&backend).await;
        mount_send(&app.graph).await;
        // The attacker talks to the Page in his own thread...
        mount_no_app_ids(&app.graph, "PSID-MALLORY").await;
        app.post_signed_webhook(&text_message("PSID-MALLORY", "m.a.1", "hi"))
            .await;
        app.inbox_settled().await;
        // ...taps Log in there, and sends the URL to the victim, who signs
        // in. Meta knows the victim's own PSID; the button's is Mallory's.
        mount_identity(&app.graph).await;
        mount_ids_for_pages(&app.graph, &["PSID-ADA"]).await;
        mount_recipient(&app.graph, "PSID-MALLORY").await;
        mount_profile(&app.graph, "PSID-MALLORY", "Mallory", "Attacker").await;
        let mut victim = Visitor::new(&app);
        let done = sign_in_through(&mut victim, &log_in_button_url()).await;
        assert_eq!(done.status(), 302);
        assert_eq!(
            location(&done),
            "/account#pending-links",
            "no authorization_code"
        );
        let account = accounts(&app).await[0].0.clone();
        assert_eq!(
            links(&app).await,
            vec![("PSID-ADA".into(), account.clone(), "ids_for_pages".into())],
            "the attacker's PSID is not linked"
        );

        // The victim is shown who asked, with the picture, before anything.
        let page = victim.account_page().await;
        assert!(page.contains("Is this you on Messenger?"), "{page}");
        assert!(page.contains("Mallory Attacker"));
        assert!(page.contains("https://platform-lookaside.example.test/PSID-MALLORY.jpg"));

        // The attacker's thread cannot finish it: no code, a forged one, a
        // plain message; none links, and his chat is nobody's account.
        let forged = "lba_00000000000000000000000000000000_00000000000000000000000000000000";
        app.post_signed_webhook(&event(
            "PSID-MALLORY",
            10,
            json!({"account_linking": {"status": "linked", "authorization_code": forged}}),
        ))
        .await;
        // Even a genuine authorization code of the victim's account, sent
        // from the attacker's thread, only acknowledges an existing link.
        let tokens = LinkTokens::from_session_key(&SecretString::from(SESSION_KEY.to_string()));
        let genuine = tokens.issue(Purpose::AccountLink);
        app.store
            .store_link_token(&genuine.nonce, "account_link", &account, now_ms() + 60_000)
            .await
            .unwrap();
        app.post_signed_webhook(&event(
            "PSID-MALLORY",
            11,
            json!({"account_linking": {"status": "linked", "authorization_code": genuine.token}}),
        ))
        .await;
        app.post_signed_webhook(&text_message("PSID-MALLORY", "m.a.2", "my balance?"))
            .await;
        let rows = app.inbox_settled().await;
        let outcomes: Vec<_> = rows.iter().filter_map(|r| r.outcome.as_deref()).collect();
        assert!(
            outcomes.contains(&"refused: forged authorization code"),
            "{outcomes:?}"
        );
        assert!(
            outcomes.contains(&"refused: not linked to the code's account"),
            "{outcomes:?}"
        );
        let context = app
            .store
            .conversation_context(PAGE_ID, "PSID-MALLORY")
            .await
            .unwrap();
        assert!(
            context.account.is_none(),
            "the attacker's chat is no account"
        );
        assert!(announcements_to(&app, "PSID-MALLORY").await.is_empty());

        // The victim declines: back to Messenger without a code (Messenger
        // shows a failure), and nothing is linked.
        let id = form_field(&page, "/account/links/decline", "id").expect("a decline form");
        let csrf = csrf_of(&page);
        let declined = victim
            .post_form("/account/links/decline", &[("csrf", &csrf), ("id", &id)])
            .await;
        assert_eq!(declined.status(), 303);
        assert_eq!(location(&declined), BACK);
        assert_eq!(links(&app).await.len(), 1);
        assert!(app
            .store
            .pending_links(&account, now_ms())
            .await
            .unwrap()
            .is_empty());
        assert!(!victim.account_page().await.contains("Mallory"));
        app.stop().await;
    })
    .await;
}

#[tokio::test]
async fn a_pending_link_is_decided_by_its_owner_only_with_the_csrf_token() {
    on_every_backend(|backend| async move {
        let app = spawn_app(&backend).await;
        mount_send(&app.graph).await;
        mount_identity(&app.graph).await;
        // ids_for_pages is unavailable (another Business, some regions).
        Mock::given(method("GET"))
            .and(path(format!("/v25.0/{UID}/ids_for_pages")))
            .respond_with(ResponseTemplate::new(400).set_body_json(json!({
                "error": {"message": "Unsupported get request", "code": 100}
            })))
            .mount(&app.graph)
            .await;
        mount_recipient(&app.graph, "PSID-ADA").await;
        mount_profile(&app.graph, "PSID-ADA", "Ada", "Example").await;
        let mut owner = Visitor::new(&app);
        let done = sign_in_through(&mut owner, &log_in_button_url()).await;
        assert_eq!(location(&done), "/account#pending-links");
        assert!(links(&app).await.is_empty(), "nothing before the owner confirms");
        let page = owner.account_page().await;
        assert!(page.contains("Ada Example"));
        let id = form_field(&page, "/account/links/confirm", "id").expect("a confirm form");
        let csrf = csrf_of(&page);
        let account = accounts(&app).await[0].0.clone();

        // A forged CSRF token, a stranger, and another account: refused.
        let forged = owner
            .post_form("/account/links/confirm", &[("csrf", "forged"), ("id", &id)])
            .await;
        assert_eq!(forged.status(), 403);
        let mut stranger = Visitor::new(&app);
        let refused = stranger
            .post_form("/account/links/confirm", &[("csrf", &csrf), ("id", &id)])
            .await;
        assert_eq!(refused.status(), 303);
        assert_eq!(location(&refused), "/");
        app.exec("INSERT INTO accounts (id, fb_uid, name, created_at, updated_at) VALUES ('acc-other', '7000', 'Other', 1, 1)").await;
        let theirs = app
            .store
            .decide_pending_link(&id, "acc-other", true, now_ms(), &|page, psid, name| {
                link_announcement(&test_link_tokens(), page, psid, name)
            })
            .await
            .unwrap();
        assert!(theirs.is_none(), "another account cannot decide it");
        assert!(links(&app).await.is_empty(), "nothing changed");

        // The owner confirms: linked, announced in the thread and on the
        // page, and back to Messenger with a code.
        let confirmed = owner
            .post_form("/account/links/confirm", &[("csrf", &csrf), ("id", &id)])
            .await;
        assert_eq!(confirmed.status(), 303);
        let to = location(&confirmed).to_string();
        assert!(to.starts_with(BACK) && to.contains("authorization_code="), "{to}");
        assert_eq!(
            links(&app).await,
            vec![("PSID-ADA".into(), account.clone(), "account_link, confirmed".into())]
        );
        let notice = announcements_to(&app, "PSID-ADA").await;
        assert_eq!(notice.len(), 1);
        let payload = &notice[0]["message"]["attachment"]["payload"];
        assert!(payload["text"].as_str().unwrap().contains(NAME));
        assert_eq!(
            payload["buttons"][0]["payload"],
            unlink_payload(&test_link_tokens(), PAGE_ID, "PSID-ADA")
        );
        let page = owner.account_page().await;
        assert!(page.contains("New link:") && page.contains("PSID-ADA"));
        assert_eq!(
            form_field(&page, "/account/links/unlink", "psid").as_deref(),
            Some("PSID-ADA")
        );
        // A decision is made once.
        let again = owner
            .post_form("/account/links/confirm", &[("csrf", &csrf), ("id", &id)])
            .await;
        assert_eq!(again.status(), 404);
        app.stop().await;
    })
    .await;
}

/// An m.me referral event of `psid` opening `reference`.
fn referral(psid: &str, reference: &str, at: i64) -> Value {
    event(
        psid,
        at,
        json!({"referral": {"ref": reference, "source": "SHORTLINK", "type": "OPEN_THREAD"}}),
    )
}

/// A tap by `psid` on a quick reply with `payload`.
fn tap(psid: &str, payload: &str, at: i64) -> Value {
    let mid = format!("m.tap.{psid}.{at}");
    event(
        psid,
        at,
        json!({"message": {"mid": mid, "text": "Link", "quick_reply": {"payload": payload}}}),
    )
}

/// The payloads of the Link and Don't link quick replies of the last
/// question asked of `psid`, which names no account.
async fn question_to(app: &TestApp, psid: &str) -> (String, String) {
    let rows = app.outbox().await;
    let body = rows
        .iter()
        .rev()
        .filter(|r| r.psid == psid)
        .filter_map(|r| serde_json::from_str::<Value>(&r.body).ok())
        .find(|b| b["message"]["quick_replies"][1].is_object())
        .expect("a question with two quick replies");
    assert_eq!(body["message"]["text"], LINK_QUESTION);
    let replies = &body["message"]["quick_replies"];
    assert_eq!(replies[0]["title"], "Link");
    assert_eq!(replies[1]["title"], "Don't link");
    let payload = |i: usize| replies[i]["payload"].as_str().unwrap().to_string();
    (payload(0), payload(1))
}

/// The outcome recorded for the last event of `psid`, once settled.
async fn outcome_of(app: &TestApp, psid: &str) -> String {
    let rows = app.inbox_settled().await;
    let row = rows.iter().rev().find(|r| r.psid == psid);
    row.and_then(|r| r.outcome.clone()).expect("a settled row")
}

/// Whether the Graph API was asked anything about `psid` (its profile).
async fn asked_about(app: &TestApp, psid: &str) -> bool {
    let requests = app.graph.received_requests().await.unwrap_or_default();
    requests
        .iter()
        .any(|r| r.url.path().ends_with(&format!("/{psid}")))
}

/// An account owner signed in (Meta vouching for none of their PSIDs) and
/// the `ref` of the m.me link their account page offers; from then on
/// `ids_for_pages` names `vouched`.
async fn owner_with_link(app: &TestApp, vouched: &[&str]) -> (Visitor, String) {
    mount_send(&app.graph).await;
    mount_identity(&app.graph).await;
    mount_ids_for_pages(&app.graph, &[]).await;
    let mut owner = Visitor::new(app);
    assert_eq!(owner.login().await.status(), 302);
    let reference = ref_of(&owner.account_page().await);
    mount_ids_for_pages_later(&app.graph, vouched).await;
    (owner, reference)
}

#[tokio::test]
async fn a_leaked_m_me_link_waits_for_the_owner_unless_meta_vouches() {
    on_every_backend(|backend| async move {
        let app = spawn_app(&backend).await;
        // From the link on, Meta says the owner's PSID is PSID-ADA.
        let (mut owner, reference) = owner_with_link(&app, &["PSID-ADA"]).await;
        mount_profile(&app.graph, "PSID-EVE", "Eve", "Opener").await;

        // The link leaked: Eve opens it, and is asked first.
        app.post_signed_webhook(&referral("PSID-EVE", &reference, 1))
            .await;
        assert_eq!(
            outcome_of(&app, "PSID-EVE").await,
            "asked: the person confirms in Messenger first (ref)"
        );
        let (link, _) = question_to(&app, "PSID-EVE").await;
        // She taps Link: the owner is shown who she is, and confirms or not.
        app.post_signed_webhook(&tap("PSID-EVE", &link, 2)).await;
        assert_eq!(
            outcome_of(&app, "PSID-EVE").await,
            "pending: the owner confirms on the website (ref)"
        );
        assert!(links(&app).await.is_empty(), "Eve is not linked");
        assert!(replies_to(&app, "PSID-EVE")
            .await
            .iter()
            .any(|r| r.contains("confirm this link on our website")));
        let page = owner.account_page().await;
        assert!(page.contains("Eve Opener") && page.contains("opened the Messenger link"));
        let id = form_field(&page, "/account/links/decline", "id").unwrap();
        let declined = owner
            .post_form(
                "/account/links/decline",
                &[("csrf", &csrf_of(&page)), ("id", &id)],
            )
            .await;
        assert_eq!(location(&declined), "/account");
        assert!(links(&app).await.is_empty());

        // The owner's own PSID, which Meta vouches for, is linked at once,
        // with no question.
        let fresh = ref_of(&owner.account_page().await);
        app.post_signed_webhook(&referral("PSID-ADA", &fresh, 3))
            .await;
        app.inbox_settled().await;
        let account = accounts(&app).await[0].0.clone();
        assert_eq!(
            links(&app).await,
            vec![("PSID-ADA".into(), account, "ref".into())]
        );
        assert_eq!(announcements_to(&app, "PSID-ADA").await.len(), 1);
        app.stop().await;
    })
    .await;
}

/// The attack: Mallory signs in, takes the m.me link her account page
/// offers and sends it to Victor, who talks to the Page. Before, opening it
/// showed Victor's name and photo on Mallory's page and let her link his
/// Messenger to her account. Now Victor is asked in his thread, and until
/// he taps Link nothing about him is read or shown; his buttons work in his
/// thread only and for that account only.
#[tokio::test]
async fn an_m_me_link_sent_to_a_stranger_tells_its_owner_nothing_unless_they_agree() {
    on_every_backend(|backend| async move {
        let app = spawn_app(&backend).await;
        let (mut mallory, reference) = owner_with_link(&app, &[]).await;
        mount_profile(&app.graph, "PSID-VICTOR", "Victor", "Target").await;
        mount_profile(&app.graph, "PSID-EVE", "Eve", "Opener").await;
        let pending = || app.count("SELECT COUNT(*) FROM pending_links");

        app.post_signed_webhook(&referral("PSID-VICTOR", &reference, 1))
            .await;
        assert_eq!(
            outcome_of(&app, "PSID-VICTOR").await,
            "asked: the person confirms in Messenger first (ref)"
        );
        let (link, no) = question_to(&app, "PSID-VICTOR").await;
        assert!(
            !asked_about(&app, "PSID-VICTOR").await,
            "his profile is not read"
        );
        assert_eq!(pending().await, 0);
        assert!(!mallory.account_page().await.contains("Victor"));

        // Someone else taps a copy of Victor's Link button, or a Link
        // button made up for another account: refused, nothing changes.
        app.post_signed_webhook(&tap("PSID-EVE", &link, 2)).await;
        let mac = link.rsplit(':').next().unwrap();
        let expires = link.rsplit(':').nth(1).unwrap();
        let other = format!("LEXBRIDGE_LINK:someone-else:{expires}:{mac}");
        app.post_signed_webhook(&tap("PSID-VICTOR", &other, 3))
            .await;
        for psid in ["PSID-EVE", "PSID-VICTOR"] {
            assert_eq!(
                outcome_of(&app, psid).await,
                "refused: link question expired or not this thread's (ref)"
            );
        }
        assert!(!asked_about(&app, "PSID-EVE").await);
        // Too late: a tap made (as Meta's signed timestamp says) after the
        // question's 15 minutes.
        app.post_signed_webhook(&tap("PSID-VICTOR", &link, now_ms() + 16 * 60 * 1000))
            .await;
        assert_eq!(
            outcome_of(&app, "PSID-VICTOR").await,
            "refused: link question expired or not this thread's (ref)"
        );
        // Victor declines.
        app.post_signed_webhook(&tap("PSID-VICTOR", &no, 4)).await;
        assert_eq!(
            outcome_of(&app, "PSID-VICTOR").await,
            "declined in Messenger (ref)"
        );
        assert!(replies_to(&app, "PSID-VICTOR")
            .await
            .iter()
            .any(|r| r.contains("nothing was linked")));
        assert!(!asked_about(&app, "PSID-VICTOR").await);
        assert_eq!(pending().await, 0);
        assert!(links(&app).await.is_empty());
        assert!(!mallory.account_page().await.contains("Victor"));

        // Had he agreed, Mallory would see him and still have to confirm.
        app.post_signed_webhook(&tap("PSID-VICTOR", &link, 5)).await;
        assert_eq!(
            outcome_of(&app, "PSID-VICTOR").await,
            "pending: the owner confirms on the website (ref)"
        );
        assert!(mallory.account_page().await.contains("Victor Target"));
        assert!(links(&app).await.is_empty());
        app.stop().await;
    })
    .await;
}

/// Two links of one PSID to two accounts at once, each keeping another
/// account's PSID (an m.me ref, an owner's confirmation, `ids_for_apps`):
/// one wins and the other is refused, never both "linked" with the last
/// writer silently taking the PSID (Postgres reads only committed rows, so
/// a read-then-write would let both through).
#[tokio::test]
async fn concurrent_links_of_one_psid_leave_it_with_one_account() {
    on_every_backend(|backend| async move {
        let app = spawn_app(&backend).await;
        for id in ["acc-x", "acc-y"] {
            app.exec(&format!(
                "INSERT INTO accounts (id, fb_uid, name, created_at, updated_at)
                 VALUES ('{id}', 'uid-{id}', 'N', 1, 1)"
            ))
            .await;
        }
        let tokens = test_link_tokens();
        let announce = |page: &str, psid: &str, name: Option<&str>| {
            link_announcement(&tokens, page, psid, name)
        };
        for round in 0..20 {
            let psid = format!("PSID-RACE-{round}");
            let link = |account_id| NewLink {
                page_id: PAGE_ID,
                psid: &psid,
                account_id,
                source: "ref",
                now: now_ms(),
                announcement: &announce,
            };
            let (x, y) = tokio::join!(
                app.store.link_psid(link("acc-x"), OnOtherOwner::Keep),
                app.store.link_psid(link("acc-y"), OnOtherOwner::Keep),
            );
            let changes = [x.unwrap(), y.unwrap()];
            let linked = changes.iter().filter(|c| **c == LinkChange::Linked).count();
            assert_eq!(linked, 1, "round {round}: {changes:?}");
        }
        app.stop().await;
    })
    .await;
}

/// A Messenger identity Meta would not describe cannot be confirmed blind:
/// the account page offers only Decline, and a confirmation posted anyway
/// links nothing.
#[tokio::test]
async fn a_pending_link_without_a_name_can_only_be_declined() {
    on_every_backend(|backend| async move {
        let app = spawn_app(&backend).await;
        mount_identity(&app.graph).await;
        mount_ids_for_pages(&app.graph, &[]).await;
        let mut owner = Visitor::new(&app);
        owner.login().await;
        let account = accounts(&app).await[0].0.clone();
        let id = app
            .store
            .create_pending_link(&NewPendingLink {
                page_id: PAGE_ID,
                psid: "PSID-FACELESS",
                account_id: &account,
                source: "ref",
                name: None,
                profile_pic: None,
                redirect_uri: None,
                now: now_ms(),
            })
            .await
            .unwrap();
        let page = owner.account_page().await;
        assert!(page.contains("cannot-confirm"), "{page}");
        assert!(!page.contains("confirm-link"), "no Confirm button");
        let csrf = csrf_of(&page);
        owner
            .post_form("/account/links/confirm", &[("csrf", &csrf), ("id", &id)])
            .await;
        assert!(links(&app).await.is_empty(), "nothing linked");
        let declined = owner
            .post_form("/account/links/decline", &[("csrf", &csrf), ("id", &id)])
            .await;
        assert_eq!(declined.status(), 303);
        assert!(app
            .store
            .pending_links(&account, now_ms())
            .await
            .unwrap()
            .is_empty());
        app.stop().await;
    })
    .await;
}
