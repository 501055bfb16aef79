//! `lexbridge demo` run in-process for tests: its address, secrets and
//! database, and the calls the tests make to it.

use crate::helpers::wait_until;
use crate::login_support::Visitor;
use lexbridge::demo::{Demo, DemoArgs};
use lexbridge::facebook::graph::appsecret_proof;
use lexbridge::startup::Stopper;
use lexbridge::store::Store;
use serde_json::{json, Value};
use tokio::task::JoinHandle;

pub struct RunningDemo {
    pub base: String,
    pub secrets: Value,
    pub store: Store,
    pub http: reqwest::Client,
    stopper: Stopper,
    handle: Option<JoinHandle<anyhow::Result<()>>>,
    _dir: tempfile::TempDir,
}

impl RunningDemo {
    pub async fn start() -> RunningDemo {
        let dir = tempfile::tempdir().expect("data dir");
        let args = DemoArgs {
            port: 0,
            data: dir.path().to_path_buf(),
            public: false,
            reset: false,
        };
        let demo = Demo::build(&args).await.expect("the demo starts");
        let secrets: Value = serde_json::from_str(
            &std::fs::read_to_string(dir.path().join("secrets.json")).expect("secrets.json"),
        )
        .expect("secrets JSON");
        let running = RunningDemo {
            base: format!("http://127.0.0.1:{}", demo.port()),
            secrets,
            store: demo.store(),
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .expect("client"),
            stopper: demo.stopper(),
            handle: Some(tokio::spawn(demo.run())),
            _dir: dir,
        };
        running
    }

    pub fn secret(&self, name: &str) -> String {
        self.secrets[name].as_str().expect(name).to_string()
    }

    pub fn visitor(&self) -> Visitor {
        Visitor {
            client: self.http.clone(),
            address: self.base.clone(),
            cookie: None,
        }
    }

    /// `GET` a Graph path with `token` and, if asked, its proof.
    pub async fn graph(&self, path: &str, token: &str, proof: Option<&str>) -> (u16, Value) {
        let mut query = vec![("access_token", token.to_string())];
        if let Some(proof) = proof {
            query.push(("appsecret_proof", proof.to_string()));
        }
        let response = self
            .http
            .get(format!("{}/v25.0/{path}", self.base))
            .query(&query)
            .send()
            .await
            .expect("graph");
        (
            response.status().as_u16(),
            response.json().await.expect("JSON"),
        )
    }

    pub fn proof(&self, token: &str) -> String {
        appsecret_proof(&self.secret("app_secret"), token)
    }

    pub async fn history(&self, psid: &str) -> Vec<Value> {
        let thread: Value = self
            .http
            .get(format!(
                "{}/sandbox/messenger/history?psid={psid}",
                self.base
            ))
            .send()
            .await
            .expect("history")
            .json()
            .await
            .expect("JSON");
        thread["entries"].as_array().cloned().unwrap_or_default()
    }

    /// Waits until the Page said something to `psid` that contains `words`;
    /// returns the entry.
    pub async fn page_says(&self, psid: &str, after: usize, words: &str) -> Value {
        wait_until(&format!("the Page to say {words:?}"), || async {
            self.history(psid).await[after..]
                .iter()
                .any(|e| e["from"] == "page" && e["message"].to_string().contains(words))
        })
        .await;
        self.history(psid).await[after..]
            .iter()
            .find(|e| e["from"] == "page" && e["message"].to_string().contains(words))
            .cloned()
            .expect("entry")
    }

    pub async fn say(&self, psid: &str, text: &str) -> usize {
        let before = self.history(psid).await.len();
        let response = self
            .http
            .post(format!("{}/sandbox/messenger/send", self.base))
            .json(&json!({ "psid": psid, "text": text }))
            .send()
            .await
            .expect("send");
        assert_eq!(response.status(), 200, "{:?}", response.text().await);
        before
    }

    pub async fn ping(&self, body: Value) -> (u16, Value) {
        let response = self
            .http
            .post(format!("{}/api/v1/messages", self.base))
            .bearer_auth(self.secret("api_key"))
            .json(&body)
            .send()
            .await
            .expect("ping");
        (
            response.status().as_u16(),
            response.json().await.expect("JSON"),
        )
    }

    pub async fn stop(mut self) {
        self.stopper.stop();
        if let Some(handle) = self.handle.take() {
            handle.await.expect("joined").expect("stopped cleanly");
        }
    }
}
