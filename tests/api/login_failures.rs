//! Every way a login can go wrong ends on a clear page and stores nothing.

use crate::helpers::*;
use crate::login_support::*;
use serde_json::json;
use std::time::Duration;
use wiremock::matchers::{method, path, query_param};
use wiremock::{Mock, ResponseTemplate};

/// Nothing of a login was stored.
async fn nothing_stored(app: &TestApp) {
    assert!(accounts(app).await.is_empty(), "no account");
    assert!(links(app).await.is_empty(), "no link");
}

async fn page_of(response: reqwest::Response) -> (u16, String) {
    let status = response.status().as_u16();
    (status, response.text().await.expect("page"))
}

#[tokio::test]
async fn forged_missing_and_replayed_states_are_refused() {
    on_every_backend(|backend| async move {
        let app = spawn_app(&backend).await;
        let mut visitor = Visitor::new(&app);
        let dialog = visitor.begin_login().await;
        let (status, page) = page_of(
            visitor
                .callback(&[("code", CODE), ("state", "forged")])
                .await,
        )
        .await;
        assert_eq!(status, 400);
        assert!(page.contains("This login link is not valid"));

        let mut no_cookie = Visitor::new(&app);
        let (status, _) = page_of(
            no_cookie
                .callback(&[("code", CODE), ("state", &dialog["state"])])
                .await,
        )
        .await;
        assert_eq!(status, 400, "a state without its session");

        // The right state, then the same request again with the old cookie.
        mount_identity(&app.graph).await;
        mount_ids_for_pages(&app.graph, &[]).await;
        let mut visitor = Visitor::new(&app);
        let dialog = visitor.begin_login().await;
        let old_cookie = visitor.cookie.clone();
        let ok = visitor
            .callback(&[("code", CODE), ("state", &dialog["state"])])
            .await;
        assert_eq!(ok.status(), 302);
        let replay = visitor
            .callback(&[("code", CODE), ("state", &dialog["state"])])
            .await;
        assert_eq!(replay.status(), 400, "the spent state left the session");
        visitor.cookie = old_cookie;
        let (status, page) = page_of(
            visitor
                .callback(&[("code", CODE), ("state", &dialog["state"])])
                .await,
        )
        .await;
        assert_eq!(status, 400, "a replayed cookie and state");
        assert!(page.contains("already used"));
        assert_eq!(accounts(&app).await.len(), 1, "only the real login stored");
    })
    .await;
}

#[tokio::test]
async fn a_declined_login_and_a_callback_without_code_store_nothing() {
    on_every_backend(|backend| async move {
        let app = spawn_app(&backend).await;
        let mut visitor = Visitor::new(&app);
        let dialog = visitor.begin_login().await;
        let declined = visitor
            .callback(&[
                ("error", "access_denied"),
                ("error_reason", "user_denied"),
                ("error_description", "Permissions error"),
                ("state", &dialog["state"]),
            ])
            .await;
        let (status, page) = page_of(declined).await;
        assert_eq!(status, 403);
        assert!(page.contains("allow the login"));

        let dialog = visitor.begin_login().await;
        let (status, page) = page_of(visitor.callback(&[("state", &dialog["state"])]).await).await;
        assert_eq!(status, 400);
        assert!(page.contains("without a login code"));
        nothing_stored(&app).await;
        assert!(
            app.graph
                .received_requests()
                .await
                .unwrap_or_default()
                .iter()
                .all(|r| r.url.path().ends_with("/debug_token")),
            "no Graph call (but the start-up token check)"
        );
    })
    .await;
}

/// One failing Graph step; returns the error page.
async fn login_failing_at(app: &TestApp, step: &str, answer: ResponseTemplate) -> (u16, String) {
    let graph = &app.graph;
    let code_exchange = Mock::given(method("POST")).and(path("/v25.0/oauth/access_token"));
    let me = Mock::given(method("GET"))
        .and(path("/v25.0/me"))
        .and(ValidProof);
    let long = Mock::given(method("GET"))
        .and(path("/v25.0/oauth/access_token"))
        .and(query_param("grant_type", "fb_exchange_token"))
        .and(ValidProof);
    let ok_code = ResponseTemplate::new(200)
        .set_body_json(json!({"access_token": SHORT_TOKEN, "token_type": "bearer"}));
    let ok_me = ResponseTemplate::new(200).set_body_json(json!({"id": UID, "name": NAME}));
    let ok_long = ResponseTemplate::new(200)
        .set_body_json(json!({"access_token": LONG_TOKEN, "token_type": "bearer"}));
    match step {
        "code" => {
            code_exchange
                .respond_with(answer)
                .expect(1)
                .mount(graph)
                .await
        }
        "me" => {
            code_exchange.respond_with(ok_code).mount(graph).await;
            me.respond_with(answer).expect(1).mount(graph).await;
        }
        "long" => {
            code_exchange.respond_with(ok_code).mount(graph).await;
            me.respond_with(ok_me).mount(graph).await;
            long.respond_with(answer).expect(1).mount(graph).await;
        }
        _ => {
            code_exchange.respond_with(ok_code).mount(graph).await;
            me.respond_with(ok_me).mount(graph).await;
            long.respond_with(ok_long).mount(graph).await;
            Mock::given(method("GET"))
                .and(path(format!("/v25.0/{UID}/ids_for_pages")))
                .respond_with(answer)
                .expect(1)
                .mount(graph)
                .await;
        }
    }
    let response = Visitor::new(app).login().await;
    let result = page_of(response).await;
    // The failure came from the step under test.
    graph.verify().await;
    graph.reset().await;
    result
}

fn graph_error(status: u16, code: i64) -> ResponseTemplate {
    ResponseTemplate::new(status).set_body_json(json!({"error": {
        "message": "test error", "type": "OAuthException", "code": code, "fbtrace_id": "TRACE"
    }}))
}

#[tokio::test]
async fn graph_errors_at_each_step_end_on_an_error_page_and_store_nothing() {
    on_every_backend(|backend| async move {
        let app = spawn_app(&backend).await;
        let cases = [
            ("code", graph_error(400, 100), 502, "Facebook error 100"),
            ("code", ResponseTemplate::new(503), 502, "not answering"),
            ("me", graph_error(400, 190), 502, "Facebook error 190"),
            (
                "me",
                ResponseTemplate::new(500).set_body_string("oops"),
                502,
                "not answering",
            ),
            ("long", graph_error(403, 200), 502, "Facebook error 200"),
            (
                "ids_for_pages",
                ResponseTemplate::new(502),
                502,
                "not answering",
            ),
            (
                "me",
                ResponseTemplate::new(200).set_delay(Duration::from_secs(3)),
                504,
                "not answering",
            ),
        ];
        for (step, answer, status, says) in cases {
            let (got, page) = login_failing_at(&app, step, answer).await;
            assert_eq!(got, status, "{step}: {page}");
            assert!(page.contains(says), "{step}: {page}");
            for secret in [SHORT_TOKEN, LONG_TOKEN, APP_SECRET, PAGE_TOKEN] {
                assert!(!page.contains(secret), "{step} page shows a secret");
            }
            nothing_stored(&app).await;
        }
    })
    .await;
}

#[tokio::test]
async fn meta_refusing_ids_for_pages_still_signs_in_and_offers_m_me() {
    on_every_backend(|backend| async move {
        let app = spawn_app(&backend).await;
        mount_identity(&app.graph).await;
        Mock::given(method("GET"))
            .and(path(format!("/v25.0/{UID}/ids_for_pages")))
            .respond_with(graph_error(400, 100))
            .expect(1)
            .mount(&app.graph)
            .await;
        let mut visitor = Visitor::new(&app);
        assert_eq!(visitor.login().await.status(), 302);
        let page = visitor.account_page().await;
        assert!(page.contains("Open Messenger to finish linking"));
        assert!(ref_of(&page).starts_with("lbr_"));
        assert_eq!(accounts(&app).await.len(), 1);
        assert!(links(&app).await.is_empty());
    })
    .await;
}
