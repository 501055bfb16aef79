//! Scoped API keys (`api-key create NAME --pages … --rate N`): 403 for a
//! recipient on another Page, 429 with Retry-After over the rate; and the
//! status endpoint showing only the caller's own messages, with
//! `lexbridge outbox show` for an operator — on every backend.

use crate::helpers::*;
use crate::outbound::{api_app, new_key, person, ping, post, status_of};
use clap::Parser;
use lexbridge::outbound::cli::{api_key, outbox, send, ApiKeyCommand, OutboxCommand, SendArgs};
use lexbridge::store::now_ms;
use serde_json::{json, Value};

const OTHER_PAGE: &str = "2222";

#[derive(Parser)]
struct KeyCli {
    #[command(subcommand)]
    command: ApiKeyCommand,
}

/// `lexbridge api-key ARGS…` as the command line parses it.
pub fn key_command(args: &[&str]) -> ApiKeyCommand {
    try_key_command(args).expect("a valid api-key command line")
}

fn try_key_command(args: &[&str]) -> Result<ApiKeyCommand, clap::Error> {
    let argv = std::iter::once("api-key").chain(args.iter().copied());
    KeyCli::try_parse_from(argv).map(|cli| cli.command)
}

/// Creates a key from a command line; returns the key.
async fn create(app: &TestApp, args: &[&str]) -> String {
    let mut out = Vec::new();
    api_key(&app.store, key_command(args), &mut out)
        .await
        .unwrap();
    String::from_utf8(out).unwrap().trim().to_string()
}

/// `app` restarted with `OTHER_PAGE` added to its Pages.
async fn with_other_page(app: TestApp) -> TestApp {
    add_page(&app, OTHER_PAGE, "test-other-page-token").await;
    let (db, graph) = app.stop().await;
    let options = lexbridge::startup::Options {
        nlu: Some(std::sync::Arc::new(
            crate::support::nlu::ScriptedNlu::default(),
        )),
        ..lexbridge::startup::Options::default()
    };
    start(db, graph, options, &[]).await
}

/// An account linked on `OTHER_PAGE` (and, with `also_home`, on PAGE_ID
/// first), who wrote an hour ago there.
async fn person_on_other_page(app: &TestApp, account: &str, psid: &str, also_home: bool) {
    if also_home {
        person(app, account, &format!("{psid}-home"), Some(3_600_000)).await;
    } else {
        let now = now_ms();
        app.exec(&format!(
            "INSERT INTO accounts (id, fb_uid, name, created_at, updated_at)
             VALUES ('{account}', 'uid-{account}', 'Bo', {now}, {now})"
        ))
        .await;
    }
    let now = now_ms();
    app.exec(&format!(
        "INSERT INTO links (page_id, psid, account_id, source, linked_at)
         VALUES ('{OTHER_PAGE}', '{psid}', '{account}', 'ids_for_pages', {})",
        now - 1000
    ))
    .await;
    app.exec(&format!(
        "INSERT INTO conversations (page_id, psid, last_inbound_at, updated_at)
         VALUES ('{OTHER_PAGE}', '{psid}', {}, {now})",
        now - 3_600_000
    ))
    .await;
}

#[tokio::test]
async fn the_command_line_checks_scopes() {
    assert!(try_key_command(&["create", "k", "--rate", "0"]).is_err());
    assert!(try_key_command(&["create", "k", "--rate", "fast"]).is_err());
    assert!(try_key_command(&["create"]).is_err(), "a name is needed");
    assert!(try_key_command(&["create", "k", "--name", "k"]).is_err());
    let app = spawn_app(&Backend::Sqlite).await;
    for pages in ["abc", "1111,,2222", ""] {
        let command = key_command(&["create", "k", "--pages", pages]);
        let error = api_key(&app.store, command, &mut Vec::new()).await;
        assert!(
            error.unwrap_err().to_string().contains("--pages"),
            "{pages:?}"
        );
    }
    assert!(
        app.store.api_keys().await.unwrap().is_empty(),
        "nothing stored"
    );
    app.stop().await;
}

#[tokio::test]
async fn a_scoped_key_reaches_people_only_on_its_pages() {
    on_every_backend(|backend| async move {
        let (app, unscoped) = api_app(&backend).await;
        // The other Page is one of the deployment's (links on any other
        // reach nobody).
        let app = with_other_page(app).await;
        person(&app, "home", "U-HOME", Some(3_600_000)).await;
        person_on_other_page(&app, "away", "U-AWAY", false).await;
        person_on_other_page(&app, "both", "U-BOTH", true).await;
        let home_only = create(&app, &["create", "home-only", "--pages", PAGE_ID]).await;
        let away_only = create(
            &app,
            &["create", "--name", "away-only", "--pages", OTHER_PAGE],
        )
        .await;

        let (status, _) = post(
            &app,
            "/api/v1/messages",
            Some(&home_only),
            &ping("home", "hi"),
        )
        .await;
        assert_eq!(status, 202);
        // An account with no link at all, known to an unscoped key as
        // unlinked.
        let now = now_ms();
        app.exec(&format!(
            "INSERT INTO accounts (id, fb_uid, name, created_at, updated_at)
             VALUES ('lone', 'uid-lone', 'Cy', {now}, {now})"
        ))
        .await;
        let (status, error) = post(&app, "/api/v1/messages", Some(&unscoped), &ping("lone", "hi")).await;
        assert_eq!((status, &error["error"]), (404, &json!("recipient_not_linked")), "{error}");
        // An account or uid linked only on another Page, or on none, is
        // answered exactly like one that does not exist: no oracle of who
        // exists.
        for (away, nobody) in [
            (ping("away", "hi"), ping("nobody", "hi")),
            (ping("lone", "hi"), ping("nobody", "hi")),
            (
                json!({"to": {"uid": "uid-lone"}, "message": {"text": "hi"}}),
                json!({"to": {"uid": "uid-nobody"}, "message": {"text": "hi"}}),
            ),
            (
                json!({"to": {"uid": "uid-away"}, "message": {"text": "hi"}}),
                json!({"to": {"uid": "uid-nobody"}, "message": {"text": "hi"}}),
            ),
            // Naming one of the key's Pages tells nothing either.
            (
                json!({"to": {"account": "away", "page_id": PAGE_ID}, "message": {"text": "hi"}}),
                json!({"to": {"account": "nobody", "page_id": PAGE_ID}, "message": {"text": "hi"}}),
            ),
        ] {
            let (status, error) = post(&app, "/api/v1/messages", Some(&home_only), &away).await;
            assert_eq!(status, 404, "{away}: {error}");
            assert_eq!(error["error"], "recipient_not_found", "{error}");
            let (_, unknown) = post(&app, "/api/v1/messages", Some(&home_only), &nobody).await;
            let told = |e: &Value| {
                let message = e["message"].as_str().unwrap();
                ["away", "lone", "nobody"].iter().fold(message.to_string(), |m, who| m.replace(who, "X"))
            };
            assert_eq!(told(&error), told(&unknown), "{away}");
        }
        let refusals = [
            json!({"to": {"psid": "U-AWAY", "page_id": OTHER_PAGE}, "message": {"text": "hi"}}),
            // Whether a PSID exists on another Page is not told either.
            json!({"to": {"psid": "U-NOBODY", "page_id": OTHER_PAGE}, "message": {"text": "hi"}}),
            // Nor a person on another Page's Instagram, nor an account's
            // link on another Page.
            json!({"to": {"instagram": {"igsid": "IG-AWAY", "page_id": OTHER_PAGE}}, "message": {"text": "hi"}}),
            json!({"to": {"account": "away", "page_id": OTHER_PAGE}, "message": {"text": "hi"}}),
        ];
        for body in &refusals {
            let (status, error) = post(&app, "/api/v1/messages", Some(&home_only), body).await;
            assert_eq!(status, 403, "{body}: {error}");
            assert_eq!(error["error"], "page_not_allowed", "{error}");
            let message = error["message"].as_str().unwrap();
            assert!(
                message.contains("home-only") && message.contains(PAGE_ID),
                "{message}"
            );
        }
        let batch = json!({"messages": [ping("home", "a"), ping("away", "b")]});
        let (status, answer) = post(&app, "/api/v1/messages/batch", Some(&home_only), &batch).await;
        assert_eq!(status, 200);
        assert_eq!(answer["results"][0]["http_status"], 202);
        assert_eq!(answer["results"][1]["http_status"], 404);
        assert_eq!(answer["results"][1]["error"], "recipient_not_found");
        let pages: Vec<String> = app.outbox().await.into_iter().map(|r| r.page_id).collect();
        assert_eq!(pages, [PAGE_ID, PAGE_ID], "refusals store nothing");

        // An account linked on both Pages is reached on the key's Page.
        let (status, accepted) = post(
            &app,
            "/api/v1/messages",
            Some(&away_only),
            &ping("both", "hi"),
        )
        .await;
        assert_eq!(status, 202, "{accepted}");
        assert_eq!(
            status_of(&app, &away_only, accepted["id"].as_str().unwrap()).await["page_id"],
            OTHER_PAGE
        );
        let (status, _) = post(
            &app,
            "/api/v1/messages",
            Some(&away_only),
            &ping("home", "hi"),
        )
        .await;
        assert_eq!(status, 404);
        // A key without --pages reaches every Page.
        let (status, _) = post(
            &app,
            "/api/v1/messages",
            Some(&unscoped),
            &ping("away", "hi"),
        )
        .await;
        assert_eq!(status, 202);

        let mut out = Vec::new();
        api_key(&app.store, ApiKeyCommand::List, &mut out)
            .await
            .unwrap();
        let listed = String::from_utf8(out).unwrap();
        let line = |name: &str| {
            listed
                .lines()
                .find(|l| l.starts_with(name))
                .unwrap()
                .to_string()
        };
        assert!(
            line("billing").contains("pages all\trate unlimited"),
            "{listed}"
        );
        assert!(
            line("home-only").contains(&format!("pages {PAGE_ID}\t")),
            "{listed}"
        );
        assert!(
            line("away-only").contains(&format!("pages {OTHER_PAGE}\t")),
            "{listed}"
        );
        app.stop().await;
    })
    .await;
}

#[tokio::test]
async fn a_key_over_its_rate_gets_429_with_retry_after_and_nothing_changes() {
    on_every_backend(|backend| async move {
        let (app, unlimited) = api_app(&backend).await;
        person(&app, "cust-1", "U1", Some(3_600_000)).await;
        let slow = create(&app, &["create", "slow", "--rate", "1"]).await;
        let mut accepted = 0;
        let mut limited: Option<(reqwest::header::HeaderMap, Value)> = None;
        for _ in 0..50 {
            let response = app
                .http
                .post(format!("{}/api/v1/messages", app.address))
                .bearer_auth(&slow)
                .json(&ping("cust-1", "hi"))
                .send()
                .await
                .unwrap();
            match response.status().as_u16() {
                202 => accepted += 1,
                429 => {
                    limited = Some((response.headers().clone(), response.json().await.unwrap()));
                    break;
                }
                other => panic!("unexpected {other}"),
            }
        }
        let (headers, error) = limited.expect("a key of 1 request/s is limited within 50 requests");
        assert_eq!(error["error"], "rate_limited");
        assert!(
            error["message"]
                .as_str()
                .unwrap()
                .contains("limited to 1 request(s) per second"),
            "{error}"
        );
        let retry: u64 = headers["retry-after"].to_str().unwrap().parse().unwrap();
        assert!(retry >= 1, "{retry}");
        assert_eq!(
            app.outbox().await.len(),
            accepted,
            "the refused request stored nothing"
        );

        // The status endpoint counts too; another key has its own budget.
        let mut statuses = Vec::new();
        for _ in 0..50 {
            let response = app
                .http
                .get(format!("{}/api/v1/messages/msg_none", app.address))
                .bearer_auth(&slow)
                .send()
                .await
                .unwrap();
            statuses.push(response.status().as_u16());
            if statuses.last() == Some(&429) {
                break;
            }
        }
        assert_eq!(statuses.last(), Some(&429), "{statuses:?}");
        for _ in 0..30 {
            let (status, _) = post(
                &app,
                "/api/v1/messages",
                Some(&unlimited),
                &ping("cust-1", "hi"),
            )
            .await;
            assert_eq!(status, 202, "a key without --rate is not limited");
        }
        app.stop().await;
    })
    .await;
}

#[tokio::test]
async fn the_status_endpoint_shows_only_the_callers_messages_and_outbox_show_any() {
    on_every_backend(|backend| async move {
        let (app, key) = api_app(&backend).await;
        let other = new_key(&app, "other").await;
        person(&app, "cust-1", "U1", Some(3_600_000)).await;
        let mut out = Vec::new();
        let args = SendArgs {
            to: "account:cust-1".into(),
            human_agent: false,
            hold: false,
            hold_until: None,
            text: "from the CLI".into(),
        };
        send(&app.store, PAGE_ID, args, &mut out).await.unwrap();
        let sent: Value = serde_json::from_slice(&out).unwrap();
        let cli_id = sent["id"].as_str().unwrap().to_string();
        let (_, accepted) = post(&app, "/api/v1/messages", Some(&key), &ping("cust-1", "hi")).await;
        let api_id = accepted["id"].as_str().unwrap().to_string();

        let get = |key: String, id: String| {
            let app = &app;
            async move {
                let response = app
                    .http
                    .get(format!("{}/api/v1/messages/{id}", app.address))
                    .bearer_auth(key)
                    .send()
                    .await
                    .unwrap();
                (
                    response.status().as_u16(),
                    response.json::<Value>().await.unwrap(),
                )
            }
        };
        // Not found, worded exactly as for an id nobody has.
        let (status, cli_seen) = get(key.clone(), cli_id.clone()).await;
        assert_eq!(status, 404, "a command-line message is not any key's");
        let (_, nobody) = get(key.clone(), "msg_nobody".into()).await;
        assert_eq!(cli_seen["error"], nobody["error"]);
        let (status, _) = get(other.clone(), api_id.clone()).await;
        assert_eq!(status, 404, "another key's message");
        assert_eq!(status_of(&app, &key, &api_id).await["id"], api_id.as_str());

        for id in [&cli_id, &api_id] {
            let mut out = Vec::new();
            outbox(&app.store, OutboxCommand::Show { id: id.clone() }, &mut out)
                .await
                .unwrap();
            let shown: Value = serde_json::from_slice(&out).unwrap();
            assert_eq!(shown["id"], id.as_str());
            assert_eq!(shown["page_id"], PAGE_ID);
            assert!(shown["status"].is_string(), "{shown}");
        }
        let unknown = outbox(
            &app.store,
            OutboxCommand::Show {
                id: "msg_nobody".into(),
            },
            &mut Vec::new(),
        )
        .await;
        assert!(unknown
            .unwrap_err()
            .to_string()
            .contains("no message has the id"));
        app.stop().await;
    })
    .await;
}

#[tokio::test]
async fn the_openapi_document_describes_scope_and_rate_refusals() {
    let app = spawn_app(&Backend::Sqlite).await;
    let spec: Value = app
        .http
        .get(format!("{}/api/v1/openapi.json", app.address))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let responses = |route: &str, method: &str| spec["paths"][route][method]["responses"].clone();
    let send = responses("/api/v1/messages", "post");
    assert!(send["403"]["description"]
        .as_str()
        .unwrap()
        .contains("--pages"));
    assert!(send["429"]["headers"]["Retry-After"].is_object(), "{send}");
    assert!(responses("/api/v1/messages/batch", "post")["429"].is_object());
    let status = responses("/api/v1/messages/{id}", "get");
    assert!(status["429"].is_object());
    assert!(status["404"]["description"]
        .as_str()
        .unwrap()
        .contains("outbox show"));
    app.stop().await;
}
