//! The login site: Facebook Login against a wiremock Graph, PSID mapping,
//! re-login, moves, unlink and sign-out, and tokens at rest.

use crate::helpers::*;
use crate::login_support::*;
use serde_json::json;
use wiremock::matchers::{method, path, query_param};
use wiremock::{Mock, ResponseTemplate};

#[tokio::test]
async fn login_redirects_to_the_dialog_with_exact_parameters_and_a_safe_cookie() {
    let app = spawn_app(&Backend::Sqlite).await;
    let mut visitor = Visitor::new(&app);
    let response = visitor.get("/auth/facebook/login").await;
    assert_eq!(response.status(), 302);
    let cookie = response.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .to_string();
    let dialog = url::Url::parse(location(&response)).unwrap();
    assert_eq!(dialog.host_str(), Some("www.facebook.com"));
    assert_eq!(dialog.path(), "/v25.0/dialog/oauth");
    let query = query_of(dialog.as_str());
    assert_eq!(query["client_id"], "test-app-id");
    assert_eq!(
        query["redirect_uri"],
        "http://127.0.0.1:8080/auth/facebook/callback"
    );
    assert_eq!(query["response_type"], "code");
    assert_eq!(query["scope"], "public_profile");
    assert!(query["state"].len() >= 16);
    assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax"));
    assert!(!cookie.contains("Secure"), "http PUBLIC_URL: {cookie}");
    assert!(!cookie.contains(&query["state"]), "the state is encrypted");

    let (db, graph) = app.stop().await;
    let extra = [
        ("PUBLIC_URL", "https://login.example.test/"),
        ("FACEBOOK_LOGIN_SCOPE", "public_profile,pages_show_list"),
    ];
    let app = start(db, graph, Default::default(), &extra).await;
    let response = Visitor::new(&app).get("/auth/facebook/login").await;
    let cookie = response.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(cookie.contains("Secure"), "https PUBLIC_URL: {cookie}");
    let query = query_of(location(&response));
    assert_eq!(
        query["redirect_uri"],
        "https://login.example.test/auth/facebook/callback"
    );
    assert_eq!(query["scope"], "public_profile,pages_show_list");
}

#[tokio::test]
async fn a_login_links_every_psid_meta_names_across_pages_and_relogin_updates() {
    on_every_backend(|backend| async move {
        let app = spawn_app(&backend).await;
        mount_identity(&app.graph).await;
        let next = format!(
            "{}/v25.0/{UID}/ids_for_pages?page={PAGE_ID}&after=CURSOR&access_token=stale&appsecret_proof=stale",
            app.graph.uri()
        );
        Mock::given(method("GET"))
            .and(path(format!("/v25.0/{UID}/ids_for_pages")))
            .and(query_param("after", "CURSOR"))
            .and(query_param("access_token", PAGE_TOKEN))
            .and(ValidProof)
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({
                "data": [{"id": "PSID-2", "page": {"id": PAGE_ID}},
                         {"id": "PSID-OTHER", "page": {"id": "2222"}}]
            })))
            .expect(1)
            .mount(&app.graph)
            .await;
        Mock::given(method("GET"))
            .and(path(format!("/v25.0/{UID}/ids_for_pages")))
            .and(query_param("page", PAGE_ID))
            .and(query_param("access_token", PAGE_TOKEN))
            .and(ValidProof)
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({
                "data": [{"id": "PSID-1", "page": {"id": PAGE_ID}}],
                "paging": {"cursors": {"after": "CURSOR"}, "next": next}
            })))
            .up_to_n_times(1)
            .expect(1)
            .mount(&app.graph)
            .await;
        let mut visitor = Visitor::new(&app);
        let response = visitor.login().await;
        assert_eq!(response.status(), 302);
        assert_eq!(location(&response), "/account");
        let page = visitor.account_page().await;
        assert!(page.contains(NAME) && page.contains("PSID-1") && page.contains("PSID-2"));
        assert!(!page.contains(LONG_TOKEN) && !page.contains(SHORT_TOKEN));
        let all = accounts(&app).await;
        assert_eq!(all.len(), 1);
        let account = all[0].0.clone();
        assert_eq!(
            links(&app).await,
            vec![
                ("PSID-1".into(), account.clone(), "ids_for_pages".into()),
                ("PSID-2".into(), account.clone(), "ids_for_pages".into()),
            ]
        );
        assert!(app.store.account(&account).await.unwrap().unwrap().token_expires_at.is_some());
        tokens_are_not_readable(&app).await;

        // Signing in again updates the account and adds what is new.
        app.graph.verify().await;
        app.graph.reset().await;
        mount_identity(&app.graph).await;
        mount_ids_for_pages(&app.graph, &["PSID-1", "PSID-3"]).await;
        let mut again = Visitor::new(&app);
        assert_eq!(again.login().await.status(), 302);
        assert_eq!(accounts(&app).await.len(), 1);
        let psids: Vec<String> = links(&app).await.into_iter().map(|l| l.0).collect();
        assert_eq!(psids, ["PSID-1", "PSID-2", "PSID-3"]);
        app.graph.verify().await;
    })
    .await;
}

/// The long-lived token appears nowhere in the database in clear.
async fn tokens_are_not_readable(app: &TestApp) {
    match &app.store {
        lexbridge::store::Store::Sqlite { .. } => {
            let file = app.db.url.trim_start_matches("sqlite://").to_string();
            let mut bytes = std::fs::read(&file).expect("database file");
            bytes.extend(std::fs::read(format!("{file}-wal")).unwrap_or_default());
            let needle = LONG_TOKEN.as_bytes();
            assert!(bytes.len() > 1000);
            assert!(!bytes.windows(needle.len()).any(|w| w == needle));
        }
        lexbridge::store::Store::Postgres(pool) => {
            let rows: Vec<(Vec<u8>,)> =
                sqlx::query_as("SELECT user_token FROM accounts WHERE user_token IS NOT NULL")
                    .fetch_all(pool)
                    .await
                    .unwrap();
            assert!(!rows.is_empty());
            for (token,) in rows {
                assert!(!token.windows(8).any(|w| w == &LONG_TOKEN.as_bytes()[..8]));
            }
        }
    }
}

#[tokio::test]
async fn a_psid_of_another_account_moves_when_meta_says_it_is_this_persons() {
    on_every_backend(|backend| async move {
        let app = spawn_app(&backend).await;
        app.exec("INSERT INTO accounts (id, fb_uid, name, created_at, updated_at) VALUES ('acc-old', '7000', 'Old', 1, 1)").await;
        app.exec(&format!("INSERT INTO links (page_id, psid, account_id, source, linked_at) VALUES ('{PAGE_ID}', 'PSID-1', 'acc-old', 'ref', 1)")).await;
        mount_identity(&app.graph).await;
        mount_ids_for_pages(&app.graph, &["PSID-1"]).await;
        assert_eq!(Visitor::new(&app).login().await.status(), 302);
        let links = links(&app).await;
        assert_eq!(links.len(), 1);
        assert_ne!(links[0].1, "acc-old", "moved to the new account");
        assert!(app.store.links_for_account("acc-old").await.unwrap().is_empty());
    })
    .await;
}

#[tokio::test]
async fn a_page_admins_login_uses_and_stores_a_fresh_page_token() {
    let db = TestDb::new(&Backend::Sqlite).await;
    let graph = wiremock::MockServer::start().await;
    let app = start(
        db,
        graph,
        Default::default(),
        &[("FACEBOOK_LOGIN_SCOPE", "public_profile,pages_show_list")],
    )
    .await;
    mount_identity(&app.graph).await;
    Mock::given(method("GET"))
        .and(path(format!("/v25.0/{PAGE_ID}")))
        .and(query_param("fields", "access_token"))
        .and(query_param("access_token", LONG_TOKEN))
        .and(ValidProof)
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"access_token": "test-admin-page-token", "id": PAGE_ID})),
        )
        .expect(1)
        .mount(&app.graph)
        .await;
    Mock::given(method("GET"))
        .and(path(format!("/v25.0/{UID}/ids_for_pages")))
        .and(query_param("access_token", "test-admin-page-token"))
        .and(ValidProof)
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"data": [{"id": "PSID-9"}]})))
        .expect(1)
        .mount(&app.graph)
        .await;
    // The Page's token had been refused: the admin's fresh one resumes it.
    lexbridge::token_health::token_refused(&app.shared, PAGE_ID, "test: 190")
        .await
        .unwrap();
    assert_eq!(Visitor::new(&app).login().await.status(), 302);
    assert_eq!(links(&app).await.len(), 1);
    assert!(
        app.store.page_pauses().await.unwrap().is_empty(),
        "the admin's login lifted the token_invalid pause"
    );
    let stored = app
        .store
        .page_token(PAGE_ID)
        .await
        .unwrap()
        .expect("stored page token");
    assert!(!stored.windows(10).any(|w| w == b"admin-page"));
}

#[tokio::test]
async fn unlink_and_sign_out_are_posts_with_a_csrf_token() {
    on_every_backend(|backend| async move {
        let app = spawn_app(&backend).await;
        mount_identity(&app.graph).await;
        mount_ids_for_pages(&app.graph, &["PSID-1"]).await;
        let mut visitor = Visitor::new(&app);
        visitor.login().await;
        let page = visitor.account_page().await;
        let csrf = csrf_of(&page);

        let refused = visitor
            .post_form("/account/unlink", &[("csrf", "forged")])
            .await;
        assert_eq!(refused.status(), 403);
        assert_eq!(links(&app).await.len(), 1, "nothing changed");
        let mut stranger = Visitor::new(&app);
        assert_eq!(
            stranger
                .post_form("/auth/signout", &[("csrf", &csrf)])
                .await
                .status(),
            403
        );

        let unlinked = visitor
            .post_form("/account/unlink", &[("csrf", &csrf)])
            .await;
        assert_eq!(unlinked.status(), 303);
        assert!(links(&app).await.is_empty());
        let account = accounts(&app).await[0].0.clone();
        let summary = app.store.account(&account).await.unwrap().unwrap();
        assert!(!summary.has_token, "the user token is forgotten");
        // Unlinking ends the session; sign in again for sign-out.
        assert_eq!(location(&visitor.get("/account").await), "/");
        app.graph.reset().await;
        mount_identity(&app.graph).await;
        mount_ids_for_pages(&app.graph, &["PSID-1"]).await;
        visitor.login().await;
        let csrf = csrf_of(&visitor.account_page().await);

        assert_eq!(visitor.post_form("/auth/signout", &[]).await.status(), 403);
        let out = visitor.post_form("/auth/signout", &[("csrf", &csrf)]).await;
        assert_eq!(out.status(), 303);
        assert!(visitor.cookie.is_none(), "the cookie is removed");
        let home = visitor.get("/account").await;
        assert_eq!(home.status(), 303);
        assert_eq!(location(&home), "/");
    })
    .await;
}

#[tokio::test]
async fn the_pages_and_stylesheet_are_served_without_a_cdn() {
    let app = spawn_app(&Backend::Sqlite).await;
    let mut visitor = Visitor::new(&app);
    let home = visitor.get("/").await;
    assert_eq!(home.status(), 200);
    let html = home.text().await.unwrap();
    assert!(html.contains("Continue with Facebook") && html.contains("lang=\"en\""));
    assert!(html.contains("name=\"viewport\"") && !html.contains("https://cdn"));
    let css = visitor.get("/static/site.css").await;
    assert_eq!(css.headers()["content-type"], "text/css; charset=utf-8");
    assert!(css.text().await.unwrap().contains("@media"));
}

#[tokio::test]
async fn the_accounts_cli_shows_links_and_expiry_but_never_tokens() {
    let app = spawn_app(&Backend::Sqlite).await;
    mount_identity(&app.graph).await;
    mount_ids_for_pages(&app.graph, &["PSID-1"]).await;
    Visitor::new(&app).login().await;
    let account = accounts(&app).await[0].0.clone();
    let mut out = Vec::new();
    use lexbridge::linking::admin::{run, AccountsCommand};
    run(&app.store, AccountsCommand::List, &mut out)
        .await
        .unwrap();
    run(
        &app.store,
        AccountsCommand::Show {
            id: account.clone(),
        },
        &mut out,
    )
    .await
    .unwrap();
    let text = String::from_utf8(out).unwrap();
    assert!(text.contains(&account) && text.contains("PSID-1") && text.contains("stored, expires"));
    assert!(
        !text.contains(LONG_TOKEN) && !text.contains("test-"),
        "{text}"
    );
    assert!(run(
        &app.store,
        AccountsCommand::Show { id: "nope".into() },
        &mut Vec::new()
    )
    .await
    .is_err());
}
