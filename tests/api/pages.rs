//! Several Pages in one deployment: `page add` checks before it stores,
//! each Page is answered by its own bot with its own token, events of a
//! Page nobody added are kept and not answered, an account linked on two
//! Pages is reached where the person last wrote, and `page remove` cancels
//! what was queued.

use crate::helpers::*;
use crate::local_nlu::dialog_bot;
use crate::outbound::{new_key, post, status_of};
use crate::support::nlu::ScriptedNlu;
use lexbridge::facebook::GraphClient;
use lexbridge::pages::cli::{add, list, remove, AddArgs};
use lexbridge::startup::Options;
use lexbridge::store::now_ms;
use serde_json::{json, Value};
use std::sync::Arc;
use wiremock::matchers::{method, path, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

const SECOND: &str = "2222";
const SECOND_TOKEN: &str = "test-second-page-token";

/// Graph's `debug_token` says `token` is a valid Page token of `page`.
async fn token_of(graph: &MockServer, token: &str, page: &str, valid: bool) {
    Mock::given(method("GET"))
        .and(path("/v25.0/debug_token"))
        .and(query_param("input_token", token))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"data": {
            "is_valid": valid, "type": "PAGE", "profile_id": page, "expires_at": 0,
            "error": if valid { Value::Null } else { json!({"code": 190, "message": "Session has expired"}) }}})))
        .mount(graph)
        .await;
}

fn args(id: &str, token: &str) -> AddArgs {
    AddArgs {
        id: id.into(),
        token: Some(token.into()),
        lex_alias: None,
        local_bot: None,
        rate: None,
    }
}

async fn run_add(app: &TestApp, args: &AddArgs) -> anyhow::Result<String> {
    let settings = settings(&app.db, &app.graph, &[]);
    let graph = GraphClient::from_settings(&settings)?;
    let mut out = Vec::new();
    add(&settings, &app.store, &graph, args, &mut out).await?;
    Ok(String::from_utf8(out)?)
}

async fn added(app: &TestApp) -> i64 {
    app.count("SELECT COUNT(*) FROM pages WHERE added_at IS NOT NULL")
        .await
}

#[tokio::test]
async fn page_add_checks_everything_before_it_stores() {
    on_every_backend(|backend| async move {
        let app = spawn_app(&backend).await;
        token_of(&app.graph, "test-expired", SECOND, false).await;
        token_of(&app.graph, "test-other-pages", "9999", true).await;
        token_of(&app.graph, SECOND_TOKEN, SECOND, true).await;
        Mock::given(method("GET"))
            .and(path(format!("/v25.0/{SECOND}")))
            .respond_with(
                ResponseTemplate::new(200)
                    .set_body_json(json!({"name": "Second Shop", "id": SECOND})),
            )
            .mount(&app.graph)
            .await;
        let refusals = [
            (
                args("not-a-page", SECOND_TOKEN),
                "--id must be the Page's numeric id",
            ),
            (args(SECOND, " "), "the token is empty"),
            (
                AddArgs {
                    rate: Some(0),
                    ..args(SECOND, SECOND_TOKEN)
                },
                "--rate must be 1 to 1000",
            ),
            (
                AddArgs {
                    lex_alias: Some("PROD".into()),
                    ..args(SECOND, SECOND_TOKEN)
                },
                "needs the deployment's Lex bot",
            ),
            (
                AddArgs {
                    local_bot: Some("/no/such/bot".into()),
                    ..args(SECOND, SECOND_TOKEN)
                },
                "does not load",
            ),
            (
                args(SECOND, "test-expired"),
                "not valid (Session has expired)",
            ),
            (
                args(SECOND, "test-other-pages"),
                "the token is Page 9999's, not Page 2222's",
            ),
        ];
        for (bad, why) in refusals {
            let err = run_add(&app, &bad).await.expect_err("refused").to_string();
            assert!(
                err.contains(why) && err.contains("nothing was stored"),
                "{err}"
            );
        }
        assert_eq!(added(&app).await, 0);

        let bot = dialog_bot();
        // A relative path (the tests run in the package's folder) is stored
        // absolute, so `serve` started elsewhere still finds the bot.
        let good = AddArgs {
            local_bot: Some("tests/fixtures/dialog-bot".into()),
            rate: Some(50),
            ..args(SECOND, SECOND_TOKEN)
        };
        let said = run_add(&app, &good).await.unwrap();
        assert!(
            said.contains("added Page 2222 (Second Shop): answered by local bot"),
            "{said}"
        );
        assert_eq!(added(&app).await, 1);
        assert_eq!(
            app.count(&format!(
                "SELECT COUNT(*) FROM pages WHERE page_id = '{SECOND}' AND send_rate = 50"
            ))
            .await,
            1
        );
        let absolute = std::fs::canonicalize(&bot).unwrap();
        assert_eq!(
            app.count(&format!(
                "SELECT COUNT(*) FROM pages WHERE page_id = '{SECOND}' AND local_bot = '{}'",
                absolute.display()
            ))
            .await,
            1,
            "stored as {}",
            absolute.display()
        );
        let stored = app
            .store
            .page_tokens(SECOND)
            .await
            .unwrap()
            .0
            .expect("a token");
        assert!(
            !String::from_utf8_lossy(&stored).contains(SECOND_TOKEN),
            "stored encrypted"
        );
        // `page setup --page 2222` works with it.
        let cli_settings = settings(&app.db, &app.graph, &[]);
        let token = lexbridge::pages::cli::token_for(&cli_settings, &app.store, SECOND)
            .await
            .unwrap();
        assert_eq!(secrecy::ExposeSecret::expose_secret(&token), SECOND_TOKEN);
        let none = lexbridge::pages::cli::token_for(&cli_settings, &app.store, "5555")
            .await
            .unwrap_err();
        assert!(
            none.to_string()
                .contains("add it with `lexbridge page add`"),
            "{none}"
        );

        let mut out = Vec::new();
        list(&settings(&app.db, &app.graph, &[]), &app.store, &mut out)
            .await
            .unwrap();
        let listed = String::from_utf8(out).unwrap();
        assert!(
            listed.contains("1111  default") && listed.contains("2222  Second Shop; added"),
            "{listed}"
        );
        assert!(!listed.contains(SECOND_TOKEN));
        app.stop().await;
    })
    .await;
}

/// Two Pages in one instance, each with its own bot and token; a third,
/// never added, is kept and not answered.
#[tokio::test]
async fn two_pages_answer_with_their_own_bots_and_tokens() {
    on_every_backend(|backend| async move {
        let app = spawn_app(&backend).await;
        let sealed = app.shared.cipher.encrypt(&SECOND_TOKEN.to_string().into());
        let page = lexbridge::store::pages::AddedPage {
            page_id: SECOND.into(),
            name: Some("Pizza".into()),
            added_at: now_ms(),
            lex_bot_alias_id: None,
            local_bot: Some(dialog_bot()),
            send_rate: None,
        };
        app.store.add_page(&page, &sealed, now_ms()).await.unwrap();
        let (db, graph) = app.stop().await;
        mount_send(&graph).await;
        Mock::given(method("POST"))
            .and(path(format!("/v25.0/{SECOND}/messages")))
            .and(query_param("access_token", SECOND_TOKEN))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({"message_id": "m.2"})))
            .mount(&graph)
            .await;
        let options = Options { nlu: Some(Arc::new(ScriptedNlu::default())), ..Options::default() };
        let app = start(db, graph, options, &[]).await;
        let key = new_key(&app, "crm").await;

        let to = |page: &str, psid: &str, mid: &str, text: &str, ago: i64| {
            json!({"sender": {"id": psid}, "recipient": {"id": page}, "timestamp": now_ms() - ago,
                   "message": {"mid": mid, "text": text}})
        };
        let body = webhook_body(&[
            (PAGE_ID, vec![to(PAGE_ID, "U1", "m.1", "hello", 5000)]),
            (SECOND, vec![to(SECOND, "P1", "m.2", "I want to order a pizza", 1000)]),
            ("3333", vec![to("3333", "X1", "m.3", "anyone?", 0)]),
        ]);
        assert_eq!(app.post_signed_webhook(&body).await.status(), 200);
        app.inbox_settled().await;
        app.outbox_settled().await;
        let requests = app.graph.received_requests().await.unwrap();
        let sent: Vec<(String, String)> = requests
            .iter()
            .filter(|r| r.url.path().ends_with("/messages"))
            .filter_map(|r| {
                let body: Value = serde_json::from_slice(&r.body).ok()?;
                let text = body["message"]["text"].as_str()?.to_string();
                Some((r.url.path().to_string(), text))
            })
            .collect();
        assert!(sent.contains(&("/v25.0/1111/messages".into(), "echo: hello".into())), "{sent:?}");
        assert!(
            sent.contains(&("/v25.0/2222/messages".into(), "What size: small, medium or large?".into())),
            "the second Page's own bot answered: {sent:?}"
        );
        assert!(!sent.iter().any(|(p, _)| p.contains("3333")), "{sent:?}");
        let outcomes: Vec<_> = app.inbox().await.into_iter().filter_map(|r| r.outcome).collect();
        assert!(outcomes.contains(&"kept: Page 3333 is not one this deployment answers for".to_string()), "{outcomes:?}");
        assert!(app.metrics().await.contains("lexbridge_inbox_unknown_page_total 1"));

        // One account linked on both Pages: reached where it last wrote
        // (the second Page), or on the Page the request names.
        let now = now_ms();
        app.exec(&format!("INSERT INTO accounts (id, fb_uid, name, created_at, updated_at) VALUES ('cust-1', 'uid-1', 'Ada', {now}, {now})")).await;
        app.exec(&format!("INSERT INTO links (page_id, psid, account_id, source, linked_at) VALUES ('{PAGE_ID}', 'U1', 'cust-1', 'ids_for_pages', {now}), ('{SECOND}', 'P1', 'cust-1', 'ids_for_pages', {})", now - 1000)).await;
        let (status, last) = post(&app, "/api/v1/messages", Some(&key),
            &json!({"to": {"account": "cust-1"}, "message": {"text": "Your pizza is on its way."}})).await;
        assert_eq!(status, 202, "{last}");
        let (status, named) = post(&app, "/api/v1/messages", Some(&key),
            &json!({"to": {"account": "cust-1", "page_id": PAGE_ID}, "message": {"text": "Invoice ready."}})).await;
        assert_eq!(status, 202, "{named}");
        let (status, nowhere) = post(&app, "/api/v1/messages", Some(&key),
            &json!({"to": {"account": "cust-1", "page_id": "3333"}, "message": {"text": "?"}})).await;
        // A Page the deployment does not answer for reaches nobody.
        assert_eq!((status, nowhere["field"].as_str()), (422, Some("to")), "{nowhere}");
        let last_status = status_of(&app, &key, last["id"].as_str().unwrap()).await;
        assert_eq!((last_status["page_id"].as_str(), last_status["psid"].as_str()), (Some(SECOND), Some("P1")), "{last_status}");
        let named_status = status_of(&app, &key, named["id"].as_str().unwrap()).await;
        assert_eq!(named_status["psid"], "U1", "{named_status}");
        app.stop().await;
    })
    .await;
}

#[tokio::test]
async fn page_remove_cancels_what_was_queued_for_the_page() {
    on_every_backend(|backend| async move {
        let app = spawn_app_with_settings(&backend, &[]).await;
        add_page(&app, SECOND, SECOND_TOKEN).await;
        let now = now_ms();
        // Held (never sendable here), so nothing sends it first.
        app.exec(&format!(
            "INSERT INTO outbox (page_id, psid, body, messaging_type, origin, state, next_attempt_at, created_at, hold_until)
             VALUES ('{SECOND}', 'P1', '{{}}', 'UPDATE', 'api', 'held', 0, {now}, {})", now + 3_600_000
        ))
        .await;
        let mut out = Vec::new();
        remove(&app.store, SECOND, &mut out).await.unwrap();
        assert!(String::from_utf8(out).unwrap().contains("1 queued message(s) cancelled"));
        assert_eq!(app.count("SELECT COUNT(*) FROM outbox WHERE state = 'cancelled'").await, 1);
        assert_eq!(added(&app).await, 0);
        assert!(app.store.page_tokens(SECOND).await.unwrap().0.is_none(), "its token is forgotten");
        // The default Page was never added: removing it changes nothing,
        // its queue included.
        app.exec(&format!(
            "INSERT INTO outbox (page_id, psid, body, messaging_type, origin, state, next_attempt_at, created_at, hold_until)
             VALUES ('{PAGE_ID}', 'U1', '{{}}', 'UPDATE', 'api', 'held', 0, {now}, {})", now + 3_600_000
        ))
        .await;
        assert!(remove(&app.store, PAGE_ID, &mut Vec::new()).await.is_err());
        assert_eq!(app.count("SELECT COUNT(*) FROM outbox WHERE state = 'held'").await, 1);
        let again = remove(&app.store, SECOND, &mut Vec::new()).await.unwrap_err();
        assert!(again.to_string().contains("no Page 2222 was added"), "{again}");
        app.stop().await;
    })
    .await;
}

/// An app that also answers for the SECOND Page (added, then restarted),
/// both Pages' sends answered.
async fn with_second_page(backend: &Backend) -> TestApp {
    let app = spawn_app(backend).await;
    add_page(&app, SECOND, SECOND_TOKEN).await;
    let (db, graph) = app.stop().await;
    let app = start(db, graph, Options::default(), &[]).await;
    mount_send(&app.graph).await;
    Mock::given(method("POST"))
        .and(path(format!("/v25.0/{SECOND}/messages")))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"message_id": "m.2"})))
        .mount(&app.graph)
        .await;
    app
}

/// A login links the person on every Page of the deployment: Meta's
/// `ids_for_pages`, asked with each Page's own token, names each PSID.
#[tokio::test]
async fn a_login_links_the_person_on_every_page() {
    use crate::login_support::{mount_identity, mount_ids_for_pages, Visitor, UID};
    on_every_backend(|backend| async move {
        let app = with_second_page(&backend).await;
        mount_identity(&app.graph).await;
        mount_ids_for_pages(&app.graph, &["PSID-1"]).await;
        Mock::given(method("GET"))
            .and(path(format!("/v25.0/{UID}/ids_for_pages")))
            .and(query_param("page", SECOND))
            .and(query_param("access_token", SECOND_TOKEN))
            .and(ValidProof)
            .respond_with(
                ResponseTemplate::new(200)
                    .set_body_json(json!({"data": [{"id": "PSID-2", "page": {"id": SECOND}}]})),
            )
            .expect(1)
            .mount(&app.graph)
            .await;
        Visitor::new(&app).login().await;
        let links = app
            .count(&format!(
                "SELECT COUNT(*) FROM links WHERE (page_id = '{PAGE_ID}' AND psid = 'PSID-1')
                    OR (page_id = '{SECOND}' AND psid = 'PSID-2')"
            ))
            .await;
        assert_eq!(links, 2, "linked on both Pages");
        app.stop().await;
    })
    .await;
}

/// An m.me link opened on an added Page by the account's owner links at
/// once when Meta vouches for them there (`ids_for_pages` asked with that
/// Page's token), as on the default Page; before, only the default Page
/// was asked, and the owner was asked to agree and then confirm.
#[tokio::test]
async fn an_m_me_ref_on_an_added_page_links_the_vouched_owner_at_once() {
    use crate::login_support::{
        accounts, mount_identity, mount_ids_for_pages, ref_of, Visitor, UID,
    };
    on_every_backend(|backend| async move {
        let app = with_second_page(&backend).await;
        mount_identity(&app.graph).await;
        mount_ids_for_pages(&app.graph, &[]).await;
        let second_page_ids = |psids: &[&str]| {
            let data: Vec<Value> =
                psids.iter().map(|p| json!({"id": p, "page": {"id": SECOND}})).collect();
            Mock::given(method("GET"))
                .and(path(format!("/v25.0/{UID}/ids_for_pages")))
                .and(query_param("page", SECOND))
                .and(query_param("access_token", SECOND_TOKEN))
                .and(ValidProof)
                .respond_with(ResponseTemplate::new(200).set_body_json(json!({"data": data})))
        };
        // Nothing at the login; PSID-2 once the owner opened the link.
        second_page_ids(&[]).up_to_n_times(1).mount(&app.graph).await;
        let mut visitor = Visitor::new(&app);
        assert_eq!(visitor.login().await.status(), 302);
        let reference = ref_of(&visitor.account_page().await);
        let account = accounts(&app).await[0].0.clone();
        second_page_ids(&["PSID-2"]).mount(&app.graph).await;
        let opened = json!({"sender": {"id": "PSID-2"}, "recipient": {"id": SECOND}, "timestamp": now_ms(),
            "referral": {"ref": reference, "source": "SHORTLINK", "type": "OPEN_THREAD"}});
        app.post_signed_webhook(&webhook_body(&[(SECOND, vec![opened])])).await;
        let rows = app.inbox_settled().await;
        assert_eq!(rows.last().unwrap().outcome.as_deref(), Some("linked by ref"), "{rows:?}");
        let linked = format!(
            "SELECT COUNT(*) FROM links WHERE page_id = '{SECOND}' AND psid = 'PSID-2' AND account_id = '{account}'"
        );
        assert_eq!(app.count(&linked).await, 1);
        app.stop().await;
    })
    .await;
}

/// A removed Page reaches nobody: an account linked there and on the
/// default Page is sent to on the default one, even if it last wrote on
/// the removed one, and a PSID of the removed Page is refused.
#[tokio::test]
async fn a_removed_page_is_no_way_to_reach_a_person() {
    on_every_backend(|backend| async move {
        let app = spawn_app(&backend).await;
        add_page(&app, SECOND, SECOND_TOKEN).await;
        let now = now_ms();
        app.exec(&format!(
            "INSERT INTO accounts (id, fb_uid, name, created_at, updated_at)
             VALUES ('cust-2', 'uid-cust-2', 'Ada', {now}, {now})"
        ))
        .await;
        for (page, psid, wrote) in [
            (PAGE_ID, "U-1", now - 3_600_000),
            (SECOND, "U-2", now - 60_000),
        ] {
            app.exec(&format!(
                "INSERT INTO links (page_id, psid, account_id, source, linked_at)
                 VALUES ('{page}', '{psid}', 'cust-2', 'ids_for_pages', {now})"
            ))
            .await;
            app.exec(&format!(
                "INSERT INTO conversations (page_id, psid, last_inbound_at, updated_at)
                 VALUES ('{page}', '{psid}', {wrote}, {now})"
            ))
            .await;
        }
        remove(&app.store, SECOND, &mut Vec::new()).await.unwrap();
        let (db, graph) = app.stop().await;
        let app = start(db, graph, Options::default(), &[]).await;
        let key = new_key(&app, "crm").await;
        let ping = json!({"to": {"account": "cust-2"}, "message": {"text": "Your invoice"}});
        let (status, accepted) = post(&app, "/api/v1/messages", Some(&key), &ping).await;
        assert_eq!(status, 202, "{accepted}");
        let shown = status_of(&app, &key, accepted["id"].as_str().unwrap()).await;
        assert_eq!(shown["psid"], "U-1", "{shown}");
        let ping = json!({"to": {"psid": "U-2", "page_id": SECOND}, "message": {"text": "x"}});
        let (status, refused) = post(&app, "/api/v1/messages", Some(&key), &ping).await;
        assert_eq!(
            (status, refused["field"].as_str()),
            (422, Some("to")),
            "{refused}"
        );
        let ping =
            json!({"to": {"account": "cust-2", "page_id": SECOND}, "message": {"text": "x"}});
        let (status, refused) = post(&app, "/api/v1/messages", Some(&key), &ping).await;
        assert_eq!(
            (status, refused["field"].as_str()),
            (422, Some("to")),
            "{refused}"
        );
        app.stop().await;
    })
    .await;
}
