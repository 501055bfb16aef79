//! One click-through in headless Chromium (Debian's `chromium` and
//! `chromium-driver`): home -> "Continue with Facebook" -> a stand-in for
//! Meta's dialog that sends the browser back with a code -> the account page
//! showing the linked PSID.

use crate::helpers::*;
use crate::login_support::*;
use fantoccini::{ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::Duration;
use wiremock::matchers::{method, path, query_param};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
pub const CHROMIUM: &str = "/usr/lib/chromium/chromium";

/// A port nobody listens on right now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// chromedriver on a free port, killed when dropped.
pub struct Driver {
    child: Child,
    pub port: u16,
}

impl Driver {
    pub async fn start() -> Driver {
        let port = free_port();
        let child = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot start {CHROMEDRIVER} ({e}): install the Debian packages chromium and chromium-driver")
            });
        let driver = Driver { child, port };
        let address = format!("127.0.0.1:{port}");
        wait_until("chromedriver to listen", || async {
            tokio::net::TcpStream::connect(&address).await.is_ok()
        })
        .await;
        driver
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Meta's dialog, played by wiremock: straight back to `redirect_uri` with
/// a code and the same `state`.
async fn dialog_stand_in() -> MockServer {
    let dialog = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/v25.0/dialog/oauth"))
        .and(query_param("client_id", "test-app-id"))
        .and(query_param("response_type", "code"))
        .respond_with(|request: &Request| {
            let query: std::collections::HashMap<String, String> =
                request.url.query_pairs().into_owned().collect();
            let mut back = url::Url::parse(&query["redirect_uri"]).expect("redirect_uri");
            back.query_pairs_mut()
                .append_pair("code", CODE)
                .append_pair("state", &query["state"]);
            ResponseTemplate::new(302).insert_header("Location", back.as_str())
        })
        .expect(1)
        .mount(&dialog)
        .await;
    dialog
}

#[tokio::test]
async fn a_person_clicks_through_the_login_to_their_linked_psid() {
    let dialog = dialog_stand_in().await;
    let port = free_port();
    let bind = format!("127.0.0.1:{port}");
    let public = format!("http://127.0.0.1:{port}");
    let db = TestDb::new(&Backend::Sqlite).await;
    let graph = MockServer::start().await;
    let dialog_uri = dialog.uri();
    let extra = [
        ("LEXBRIDGE_BIND", bind.as_str()),
        ("PUBLIC_URL", public.as_str()),
        ("FACEBOOK_DIALOG_URL", dialog_uri.as_str()),
    ];
    let app = start(db, graph, Default::default(), &extra).await;
    mount_identity(&app.graph).await;
    mount_ids_for_pages(&app.graph, &["PSID-BROWSER"]).await;

    let driver = Driver::start().await;
    let profile = tempfile::tempdir().expect("profile dir");
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        serde_json::json!({
            "binary": CHROMIUM,
            "args": ["--headless", "--no-sandbox", "--disable-gpu",
                     "--disable-background-networking", "--disable-dev-shm-usage",
                     format!("--user-data-dir={}", profile.path().display())]
        }),
    );
    let browser = ClientBuilder::new(HttpConnector::new())
        .capabilities(caps)
        .connect(&format!("http://127.0.0.1:{}", driver.port))
        .await
        .expect("a WebDriver session");
    let outcome = async {
        browser.goto(&public).await?;
        browser
            .wait()
            .at_most(Duration::from_secs(10))
            .for_element(Locator::Id("continue-with-facebook"))
            .await?
            .click()
            .await?;
        let psid = browser
            .wait()
            .at_most(Duration::from_secs(15))
            .for_element(Locator::Css("code.psid"))
            .await?
            .text()
            .await?;
        let heading = browser.find(Locator::Css("h1")).await?.text().await?;
        let url = browser.current_url().await?;
        Ok::<_, fantoccini::error::CmdError>((psid, heading, url))
    }
    .await;
    let _ = browser.close().await;
    drop(driver);
    let (psid, heading, url) = outcome.expect("the click-through");
    assert_eq!(psid, "PSID-BROWSER");
    assert_eq!(heading, format!("Hello, {NAME}"));
    assert_eq!(url.path(), "/account");
    dialog.verify().await;
}
