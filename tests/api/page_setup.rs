//! `lexbridge page setup` / `page show` against a wiremock Graph API: one
//! Messenger Profile call carrying the whole config, the webhook
//! subscription, both with `appsecret_proof`; a config that breaks a rule
//! sends nothing.

use std::process::Command;
use std::time::Duration;

use lexbridge::facebook::messenger_profile::WEBHOOK_FIELDS;
use lexbridge::facebook::GraphClient;
use lexbridge::page_setup::{self, Target};
use secrecy::SecretString;
use serde_json::json;
use url::Url;
use wiremock::matchers::{body_json, method, path, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::helpers::*;

const CONFIG: &str = r#"
get_started = "GET_STARTED"
[[greeting]]
locale = "default"
text = "Hello!"
[[persistent_menu]]
locale = "default"
items = [{ type = "postback", title = "Start over", payload = "GET_STARTED" }]
"#;

/// What a `Target` borrows, owned by the test.
struct TestPage {
    client: GraphClient,
    page_id: String,
    token: SecretString,
    public_url: Url,
}

impl TestPage {
    fn new(
        graph: &str,
        app_secret: &str,
        page_id: &str,
        token: &str,
        public_url: &str,
    ) -> TestPage {
        TestPage {
            client: GraphClient::new(
                Url::parse(graph).unwrap(),
                "v25.0",
                SecretString::from(app_secret),
                Duration::from_secs(2),
                Duration::from_secs(5),
            )
            .unwrap(),
            page_id: page_id.to_string(),
            token: SecretString::from(token),
            public_url: Url::parse(public_url).unwrap(),
        }
    }

    /// The test Page, through `graph`.
    fn on(graph: &MockServer, public_url: &str) -> TestPage {
        TestPage::new(&graph.uri(), APP_SECRET, PAGE_ID, PAGE_TOKEN, public_url)
    }

    fn target(&self) -> Target<'_> {
        Target {
            graph: &self.client,
            page_id: &self.page_id,
            token: &self.token,
            public_url: &self.public_url,
        }
    }
}

fn config_file(text: &str) -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("page.toml");
    std::fs::write(&file, text).unwrap();
    (dir, file)
}

fn expected_profile() -> serde_json::Value {
    json!({
        "get_started": {"payload": "GET_STARTED"},
        "greeting": [{"locale": "default", "text": "Hello!"}],
        "persistent_menu": [{"locale": "default", "composer_input_disabled": false,
            "call_to_actions": [{"type": "postback", "title": "Start over", "payload": "GET_STARTED"}]}],
        "whitelisted_domains": ["https://bridge.example.com"],
    })
}

#[tokio::test]
async fn setup_sets_the_whole_profile_in_one_call_and_subscribes_the_webhook_fields() {
    let graph = MockServer::start().await;
    // What each endpoint answers on success.
    let ok = || ResponseTemplate::new(200).set_body_json(json!({"success": true}));
    Mock::given(method("POST"))
        .and(path(format!("/v25.0/{PAGE_ID}/messenger_profile")))
        .and(ValidProof)
        .and(body_json(expected_profile()))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"result": "success"})))
        .expect(1)
        .mount(&graph)
        .await;
    Mock::given(method("POST"))
        .and(path(format!("/v25.0/{PAGE_ID}/subscribed_apps")))
        .and(ValidProof)
        .and(body_json(
            json!({"subscribed_fields": WEBHOOK_FIELDS.join(",")}),
        ))
        .respond_with(ok())
        .expect(1)
        .mount(&graph)
        .await;
    let page = TestPage::on(&graph, "https://bridge.example.com/");
    let target = page.target();
    let (_dir, file) = config_file(CONFIG);
    let profile = page_setup::load(&file, &page.public_url).unwrap();
    let done = page_setup::setup(&target, &profile).await.unwrap();
    assert!(
        done.iter()
            .any(|l| l.starts_with("profile set: get_started, greeting")),
        "{done:?}"
    );
    assert!(
        done.iter().any(|l| l.contains("messaging_handovers")),
        "{done:?}"
    );
    assert_eq!(graph.received_requests().await.unwrap().len(), 2);
}

#[tokio::test]
async fn a_refused_profile_is_an_error_not_a_success() {
    let graph = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(format!("/v25.0/{PAGE_ID}/messenger_profile")))
        .respond_with(ResponseTemplate::new(400).set_body_json(json!({"error": {
            "message": "(#100) Invalid keys \"greting\" were found in param \"name_placeholder\".",
            "type": "OAuthException", "code": 100, "fbtrace_id": "Ab1"}})))
        .mount(&graph)
        .await;
    let page = TestPage::on(&graph, "http://127.0.0.1:8080");
    let target = page.target();
    let error = page_setup::setup(&target, &json!({"greeting": []}))
        .await
        .unwrap_err();
    let text = format!("{error:#}");
    assert!(
        text.contains("setting the Messenger Profile") && text.contains("Invalid keys"),
        "{text}"
    );
    // Nothing further was tried: no subscription after a refused profile.
    assert_eq!(graph.received_requests().await.unwrap().len(), 1);
}

#[tokio::test]
async fn show_prints_what_meta_has_and_how_it_differs_from_the_config() {
    let graph = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path(format!("/v25.0/{PAGE_ID}/messenger_profile")))
        .and(ValidProof)
        .and(query_param(
            "fields",
            "get_started,greeting,ice_breakers,persistent_menu,whitelisted_domains",
        ))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"data": [{
            "get_started": {"payload": "GET_STARTED"},
            "greeting": [{"locale": "default", "text": "An old greeting"}],
            "ice_breakers": [{"locale": "default", "call_to_actions": [{"question": "Q?", "payload": "Q"}]}],
        }]})))
        .mount(&graph)
        .await;
    let page = TestPage::on(&graph, "https://bridge.example.com/");
    let target = page.target();
    let shown = page_setup::show(&target, Some(&expected_profile()))
        .await
        .unwrap();
    let block = |field: &str| {
        let start = shown.find(&format!("{field}:")).unwrap();
        shown[start..]
            .lines()
            .take(2)
            .collect::<Vec<_>>()
            .join("\n")
    };
    assert!(
        block("get_started").ends_with("same as the config"),
        "{shown}"
    );
    assert!(block("greeting").contains("An old greeting"), "{shown}");
    assert!(
        block("greeting").contains("differs: the config says"),
        "{shown}"
    );
    assert!(
        block("ice_breakers").ends_with("differs: the config does not set it"),
        "{shown}"
    );
    assert!(
        block("persistent_menu").starts_with("persistent_menu: (not set)"),
        "{shown}"
    );
    // Without a config, only what Meta has.
    let plain = page_setup::show(&target, None).await.unwrap();
    assert!(
        !plain.contains("same") && !plain.contains("differs"),
        "{plain}"
    );
}

/// The command refuses a config that breaks a rule, naming the field and
/// the rule, and calls nothing.
#[tokio::test]
async fn the_command_refuses_an_invalid_config_and_sends_nothing() {
    let graph = MockServer::start().await;
    let (_dir, file) = config_file(
        "[[greeting]]\nlocale = \"default\"\ntext = \"\"\n[[ice_breakers]]\nlocale = \"fr_FR\"\nquestions = []\n",
    );
    let output = Command::new(env!("CARGO_BIN_EXE_lexbridge"))
        .args(["page", "setup", "--config"])
        .arg(&file)
        .env("DATABASE_URL", "sqlite:///nonexistent/never-opened.db")
        .env("FACEBOOK_APP_ID", "test-app-id")
        .env("FACEBOOK_APP_SECRET", APP_SECRET)
        .env("FACEBOOK_PAGE_ID", PAGE_ID)
        .env("FACEBOOK_PAGE_ACCESS_TOKEN", PAGE_TOKEN)
        .env("MESSENGER_VERIFY_TOKEN", VERIFY_TOKEN)
        .env("GRAPH_API_URL", graph.uri())
        .env("TOKEN_ENCRYPTION_KEY", TOKEN_KEY)
        .env("SESSION_KEY", SESSION_KEY)
        .output()
        .expect("lexbridge runs");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    for expected in [
        "nothing was sent",
        "greeting[0].text: must not be empty",
        "ice_breakers: a \"default\" locale is required",
        "ice_breakers[0].questions: 0 questions, 1 to 4",
    ] {
        assert!(stderr.contains(expected), "{expected}: {stderr}");
    }
    assert!(graph.received_requests().await.unwrap().is_empty());
}

/// The demo's Graph stand-in keeps the profile as Meta does, so `page setup` then `page show` agree against it.
#[tokio::test]
async fn setup_then_show_agree_against_the_demos_graph_stand_in() {
    let demo = crate::demo_support::RunningDemo::start().await;
    let page = TestPage::new(
        &demo.base,
        demo.secrets["app_secret"].as_str().unwrap(),
        lexbridge::demo::PAGE_ID,
        demo.secrets["page_token"].as_str().unwrap(),
        "https://bridge.example.com/",
    );
    let target = page.target();
    let (_dir, file) = config_file(CONFIG);
    let profile = page_setup::load(&file, &page.public_url).unwrap();
    page_setup::setup(&target, &profile).await.unwrap();
    let shown = page_setup::show(&target, Some(&profile)).await.unwrap();
    assert_eq!(shown.matches("same").count(), 5, "{shown}");
    // A user token is refused, as Meta refuses it.
    let user = SecretString::from("not-a-page-token");
    let wrong = Target {
        token: &user,
        ..target
    };
    assert!(page_setup::show(&wrong, None).await.is_err());
    demo.stop().await;
}
