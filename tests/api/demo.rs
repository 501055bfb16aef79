//! The real `lexbridge demo` binary: it starts on an empty data folder and
//! again on the same one (keeping its key and data), and the issue's
//! scenario runs in headless Chromium against it (sign in, chat, ping,
//! unlink and so sign out, sign in again, link a newcomer through m.me).

use crate::browser::{free_port, Driver, CHROMIUM};
use crate::helpers::wait_until;
use fantoccini::{Client, ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;
use lexbridge::sandbox::people::PEOPLE;
use serde_json::{json, Value};
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// A running `lexbridge demo`, stopped with SIGTERM when dropped.
struct DemoProcess {
    child: Child,
    base: String,
    printed: Arc<Mutex<String>>,
}

impl DemoProcess {
    async fn start(data: &Path, extra: &[&str]) -> DemoProcess {
        let port = free_port();
        let mut child = Command::new(env!("CARGO_BIN_EXE_lexbridge"))
            .arg("demo")
            .args(["--port", &port.to_string(), "--data"])
            .arg(data)
            .args(extra)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("lexbridge demo starts");
        let printed = Arc::new(Mutex::new(String::new()));
        let stdout = child.stdout.take().expect("stdout");
        let sink = Arc::clone(&printed);
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let mut all = sink.lock().unwrap();
                all.push_str(&line);
                all.push('\n');
            }
        });
        let base = format!("http://127.0.0.1:{port}");
        let page = format!("{base}/sandbox/messenger");
        wait_until("the emulator page to be served", || async {
            reqwest::get(&page).await.is_ok_and(|r| r.status() == 200)
        })
        .await;
        // The people's history reaches the webhook just after the start;
        // Alex's greeting being answered shows the service knows them.
        let alex = format!("{base}/sandbox/messenger/history?psid={}", PEOPLE[0].psid);
        wait_until("the demo people's history to be answered", || async {
            match reqwest::get(&alex).await {
                Ok(r) => r.text().await.is_ok_and(|t| t.contains(r#""from":"page""#)),
                Err(_) => false,
            }
        })
        .await;
        let demo = DemoProcess {
            child,
            base,
            printed,
        };
        wait_until("the banner", || async { demo.printed().contains("curl") }).await;
        demo
    }

    fn printed(&self) -> String {
        self.printed.lock().unwrap().clone()
    }

    fn api_key(&self) -> String {
        let printed = self.printed();
        let line = printed
            .lines()
            .find(|l| l.trim_start().starts_with("API key"))
            .expect("the API key is printed");
        line.split_whitespace().last().unwrap().to_string()
    }

    async fn ping(&self, text: &str) -> (u16, Value) {
        let response = reqwest::Client::new()
            .post(format!("{}/api/v1/messages", self.base))
            .bearer_auth(self.api_key())
            .json(&json!({"to": {"psid": PEOPLE[0].psid}, "message": {"text": text}}))
            .send()
            .await
            .expect("ping");
        (
            response.status().as_u16(),
            response.json().await.expect("JSON"),
        )
    }

    async fn history(&self, psid: &str) -> String {
        reqwest::get(format!(
            "{}/sandbox/messenger/history?psid={psid}",
            self.base
        ))
        .await
        .expect("history")
        .text()
        .await
        .expect("text")
    }
}

impl Drop for DemoProcess {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
    }
}

#[tokio::test]
async fn demo_starts_on_an_empty_folder_and_again_on_the_same_one() {
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("lexbridge-demo");
    let alex = PEOPLE[0].psid;

    let first = DemoProcess::start(&data, &[]).await;
    let printed = first.printed();
    for expected in [
        "/sandbox/messenger",
        "/sandbox/ops",
        "Login site",
        "curl -sS",
        "Authorization: Bearer lxb_",
    ] {
        assert!(
            printed.contains(expected),
            "{expected:?} missing from:\n{printed}"
        );
    }
    let key = first.api_key();
    let (status, body) = first.ping("Kept across restarts").await;
    assert_eq!(status, 202, "{body}");
    wait_until("the ping to reach the emulator", || async {
        first.history(alex).await.contains("Kept across restarts")
    })
    .await;
    drop(first);
    for file in ["lexbridge.db", "secrets.json", "sandbox.json"] {
        assert!(data.join(file).is_file(), "{file} kept");
    }

    let again = DemoProcess::start(&data, &[]).await;
    assert_eq!(again.api_key(), key, "the same key on the same folder");
    assert!(again.history(alex).await.contains("Kept across restarts"));
    let ops = reqwest::get(format!("{}/sandbox/ops", again.base))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(ops.contains("Kept across restarts"), "the outbox is kept");
    let (status, body) = again.ping("Still works").await;
    assert_eq!(status, 202, "{body}");
    drop(again);

    let reset = DemoProcess::start(&data, &["--reset"]).await;
    assert_ne!(reset.api_key(), key, "--reset starts over");
    assert!(!reset.history(alex).await.contains("Kept across restarts"));
}

async fn browser(driver: &Driver, profile: &Path) -> Client {
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        json!({
            "binary": CHROMIUM,
            "args": ["--headless", "--no-sandbox", "--disable-gpu",
                     "--disable-background-networking", "--disable-dev-shm-usage",
                     "--window-size=1280,860",
                     format!("--user-data-dir={}", profile.display())]
        }),
    );
    ClientBuilder::new(HttpConnector::new())
        .capabilities(caps)
        .connect(&format!("http://127.0.0.1:{}", driver.port))
        .await
        .expect("a WebDriver session")
}

/// In the emulator as `psid`: sends `text` and returns the first message
/// from the Page that contains `expect`.
async fn say_in_emulator(
    b: &Client,
    base: &str,
    psid: &str,
    text: &str,
    expect: &str,
) -> Result<String, fantoccini::error::CmdError> {
    let wait = STEP_WAIT;
    b.goto(&format!("{base}/sandbox/messenger?psid={psid}"))
        .await?;
    // Typing before the thread is live could miss the answer.
    b.wait()
        .at_most(wait)
        .for_element(Locator::Css("#emulator[data-live]"))
        .await?;
    let input = b.find(Locator::Id("text")).await?;
    input.send_keys(text).await?;
    b.find(Locator::Id("send")).await?.click().await?;
    b.wait()
        .at_most(wait)
        .for_element(page_bubble(expect, 1))
        .await?
        .text()
        .await
}

/// A message from the Page in the emulator that contains `words`, the
/// `nth` such one (1-based).
fn page_bubble(words: &str, nth: usize) -> Locator<'static> {
    let xpath = format!("(//li[contains(@class, 'page')][contains(., \"{words}\")])[{nth}]");
    Locator::XPath(Box::leak(xpath.into_boxed_str()))
}

/// The longest one step in the browser may take: the rest of the suite
/// runs beside this test on two cores.
const STEP_WAIT: Duration = Duration::from_secs(30);

/// On the home page (or on its way there): "Continue with Facebook", then
/// the demo person `uid` in the dialog stand-in.
async fn sign_in(b: &Client, uid: &str) -> Result<(), fantoccini::error::CmdError> {
    let wait = STEP_WAIT;
    b.wait()
        .at_most(wait)
        .for_element(Locator::Id("continue-with-facebook"))
        .await?
        .click()
        .await?;
    b.wait()
        .at_most(wait)
        .for_element(Locator::Id(&format!("person-{uid}")))
        .await?
        .click()
        .await?;
    Ok(())
}

#[tokio::test]
async fn a_person_signs_in_chats_is_pinged_and_unlinks_in_a_real_browser() {
    let dir = tempfile::tempdir().expect("temp dir");
    let demo = DemoProcess::start(&dir.path().join("data"), &[]).await;
    let [alex, _, _, riley] = PEOPLE;
    let driver = Driver::start().await;
    let profile = tempfile::tempdir().expect("profile dir");
    let b = browser(&driver, profile.path()).await;
    let wait = STEP_WAIT;
    // The step under way, named in the failure.
    let step = std::cell::Cell::new("");
    let outcome = async {
        // Sign in as Alex: the account page shows the linked PSID.
        step.set("Alex signs in");
        b.goto(&demo.base).await?;
        sign_in(&b, alex.uid).await?;
        let psid = b
            .wait()
            .at_most(wait)
            .for_element(Locator::Css("code.psid"))
            .await?
            .text()
            .await?;

        // The emulator as Alex: the bot answers from Alex's account.
        step.set("Alex asks the bot in the emulator");
        let answer = say_in_emulator(
            &b,
            &demo.base,
            alex.psid,
            "is my car locked?",
            "Alex, your car is",
        )
        .await?;

        // A ping through the real API from the panel arrives in the thread.
        step.set("the panel's ping reaches the thread");
        let ping = b.find(Locator::Id("ping-text")).await?;
        ping.clear().await?;
        ping.send_keys("Your car has finished charging.").await?;
        b.find(Locator::Id("ping-send")).await?.click().await?;
        b.wait()
            .at_most(wait)
            .for_element(page_bubble("finished charging", 1))
            .await?;
        let result = b.find(Locator::Id("ping-result")).await?.text().await?;
        if std::env::var_os("LEXBRIDGE_DEMO_SCREENSHOT").is_some() {
            let png = b.screenshot().await?;
            let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/demo-emulator.png");
            std::fs::create_dir_all(file.parent().unwrap()).expect("docs/");
            std::fs::write(&file, png).expect("the screenshot");
        }

        // Unlink Alex's Messenger identity on the account page: Alex is
        // signed out (back home), and the bot no longer knows Alex.
        step.set("Alex unlinks on the account page");
        b.goto(&format!("{}/account", demo.base)).await?;
        b.wait()
            .at_most(wait)
            .for_element(Locator::Css("button.unlink-one"))
            .await?
            .click()
            .await?;
        b.wait()
            .at_most(wait)
            .for_element(Locator::Id("continue-with-facebook"))
            .await?;
        let signed_out = b.current_url().await?.path().to_string();
        step.set("the bot no longer knows Alex");
        let after = say_in_emulator(
            &b,
            &demo.base,
            alex.psid,
            "is my car locked?",
            "Sign in on our website",
        )
        .await?;

        // Signing in again links Alex again.
        step.set("Alex signs in again");
        b.goto(&demo.base).await?;
        sign_in(&b, alex.uid).await?;
        let relinked = b
            .wait()
            .at_most(wait)
            .for_element(Locator::Css("code.psid"))
            .await?
            .text()
            .await?;

        // Riley never wrote to the Page: signing in offers the m.me link,
        // whose stand-in opens Riley's thread and links Riley.
        step.set("Riley links through the m.me link");
        b.find(Locator::Id("sign-out")).await?.click().await?;
        sign_in(&b, riley.uid).await?;
        b.wait()
            .at_most(wait)
            .for_element(Locator::Id("open-messenger"))
            .await?
            .click()
            .await?;
        b.wait()
            .at_most(wait)
            .for_element(Locator::Id(&format!("open-as-{}", riley.psid)))
            .await?
            .click()
            .await?;
        let linked = b
            .wait()
            .at_most(wait)
            .for_element(page_bubble("You're linked", 1))
            .await?
            .text()
            .await?;
        Ok::<_, fantoccini::error::CmdError>((
            psid, answer, result, signed_out, after, relinked, linked,
        ))
    }
    .await;
    let failure = match &outcome {
        Ok(_) => None,
        Err(e) => {
            // The thread's words only: the page and the demo's banner
            // also carry its API key.
            let url = b.current_url().await.map(|u| u.to_string());
            let thread = match b.find(Locator::Id("thread")).await {
                Ok(thread) => thread.text().await.ok(),
                Err(_) => None,
            };
            Some(format!(
                "the step {:?} failed: {e}\nat {url:?}\nthe thread: {thread:?}",
                step.get()
            ))
        }
    };
    let _ = b.close().await;
    drop(driver);
    if let Some(failure) = failure {
        panic!("{failure}");
    }
    let (psid, answer, result, signed_out, after, relinked, linked) = outcome.unwrap();
    assert_eq!(psid, alex.psid);
    assert!(answer.contains("battery"), "{answer}");
    assert!(result.starts_with("HTTP 202"), "{result}");
    assert_eq!(signed_out, "/", "unlinking signs out");
    assert!(after.contains("Sign in"), "{after}");
    assert_eq!(relinked, alex.psid, "signing in again links again");
    assert!(linked.contains("You're linked"), "{linked}");
}
