//! Graph API client: base URL and version injected, `appsecret_proof` on
//! every call, timeouts, and typed errors classified for retries.

use secrecy::{ExposeSecret, SecretString};
use serde::de::DeserializeOwned;
use serde::Deserialize;
use std::time::Duration;
use url::Url;

mod batch;
pub use batch::{read_calls, BatchCall, QueuedSend, Unsent, BATCH_MAX};

/// A Graph API failure: Meta's error object, or a transport failure.
#[derive(Debug, Clone, Default, PartialEq, thiserror::Error)]
#[error("Graph API error (HTTP {http_status:?}, code {code:?}, subcode {subcode:?}, fbtrace_id {fbtrace_id:?}): {message}")]
pub struct GraphError {
    /// `None` when no HTTP answer came (timeout, connection failure).
    pub http_status: Option<u16>,
    pub code: Option<i64>,
    pub subcode: Option<i64>,
    pub message: String,
    pub fbtrace_id: Option<String>,
}

/// Codes Meta documents as temporary: API unknown/service (1, 2), app and
/// page rate limits (4, 17, 32, 341, 613), temporary send failure (1200),
/// and the business-use-case limits a Page token's calls count against
/// (Pages 80001, Instagram 80002, Messenger 80006).
const TRANSIENT_CODES: &[i64] = &[1, 2, 4, 17, 32, 341, 613, 1200, 80001, 80002, 80006];
/// The rate limits that concern a Page's sends: API calls (4), Page calls
/// (32), "calls to this api have exceeded the rate limit" (613), and the
/// business-use-case limits of its Page, Instagram account and Messenger
/// sends (80001, 80002, 80006). The other two temporary limits are not
/// the Page's: 17 counts one user's calls, 341 the whole app's.
const PAGE_RATE_LIMIT_CODES: &[i64] = &[4, 32, 613, 80001, 80002, 80006];
/// Graph's code for an access token it does not accept.
const TOKEN_REFUSED: i64 = 190;

impl GraphError {
    /// Whether the same call may succeed later: rate limits, Meta's temporary
    /// errors, HTTP 5xx, and calls that got no answer. Everything else
    /// (10/2018278 outside the window, 551 unavailable, 100 bad parameter,
    /// 190 bad token, 200 permission, ...) fails at once.
    pub fn is_transient(&self) -> bool {
        if let Some(code) = self.code {
            if TRANSIENT_CODES.contains(&code) {
                return true;
            }
            if self.http_status.is_some_and(|s| s < 500) {
                return false;
            }
        }
        match self.http_status {
            None => true,
            Some(status) => status >= 500 || status == 429,
        }
    }

    /// Whether Graph is rate-limiting the Page's sends (its codes, or 429).
    pub fn is_page_rate_limit(&self) -> bool {
        self.code
            .is_some_and(|c| PAGE_RATE_LIMIT_CODES.contains(&c))
            || self.http_status == Some(429)
    }

    /// Whether Graph refused the access token (190).
    pub fn is_token_refused(&self) -> bool {
        self.code == Some(TOKEN_REFUSED)
    }

    /// From the body of an answer that is not a success, when its status was
    /// not kept: a Graph error object is a client error (400), anything else
    /// a bad gateway.
    pub fn from_body(http_status: Option<u16>, body: &[u8]) -> GraphError {
        match serde_json::from_slice::<ErrorEnvelope>(body) {
            Ok(ErrorEnvelope { error }) => GraphError {
                http_status: http_status.or(Some(400)),
                code: error.code,
                subcode: error.error_subcode,
                message: error.message,
                fbtrace_id: error.fbtrace_id,
            },
            Err(_) => GraphError {
                http_status: http_status.or(Some(502)),
                message: "an answer without a Graph error object".to_string(),
                ..GraphError::default()
            },
        }
    }

    pub(crate) fn transport(e: reqwest::Error) -> GraphError {
        let what = if e.is_timeout() {
            "timed out"
        } else if e.is_connect() {
            "could not connect"
        } else {
            "request failed"
        };
        GraphError {
            // The URL carries the access token: never keep it in an error.
            message: format!("{what}: {}", e.without_url()),
            ..GraphError::default()
        }
    }
}

#[derive(Deserialize)]
struct ErrorEnvelope {
    error: ErrorBody,
}

#[derive(Deserialize)]
struct ErrorBody {
    #[serde(default)]
    message: String,
    code: Option<i64>,
    error_subcode: Option<i64>,
    fbtrace_id: Option<String>,
}

/// The Send API's answer.
#[derive(Debug, Clone, Deserialize)]
pub struct SendResponse {
    pub recipient_id: Option<String>,
    pub message_id: Option<String>,
}

#[derive(Clone)]
pub struct GraphClient {
    http: reqwest::Client,
    base: Url,
    version: String,
    app_secret: SecretString,
    /// A batch request's timeout: twice a lone call's.
    batch_timeout: Duration,
}

impl GraphClient {
    pub fn new(
        base: Url,
        version: &str,
        app_secret: SecretString,
        connect_timeout: Duration,
        request_timeout: Duration,
    ) -> anyhow::Result<GraphClient> {
        let http = reqwest::Client::builder()
            .connect_timeout(connect_timeout)
            .timeout(request_timeout)
            .pool_max_idle_per_host(256)
            // A call carries the Page's token: it goes to the Graph host or
            // nowhere (as `get_next` does for paging links).
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("lexbridge/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(GraphClient {
            http,
            base,
            version: version.to_string(),
            app_secret,
            batch_timeout: request_timeout * 2,
        })
    }

    pub(crate) fn app_secret(&self) -> &SecretString {
        &self.app_secret
    }

    /// hex(HMAC-SHA256(key = app secret, message = access token)).
    pub fn appsecret_proof(&self, access_token: &str) -> String {
        appsecret_proof(self.app_secret.expose_secret(), access_token)
    }

    /// The client `settings` describe: Graph's address and version, the
    /// app secret for `appsecret_proof`, the timeouts.
    pub fn from_settings(settings: &crate::config::Settings) -> anyhow::Result<GraphClient> {
        GraphClient::new(
            settings.facebook.graph_api_url.clone(),
            &settings.facebook.graph_api_version,
            settings.facebook.app_secret.clone(),
            settings.workers.graph_connect_timeout,
            settings.workers.graph_request_timeout,
        )
    }

    fn url(&self, path: &str) -> Result<Url, GraphError> {
        let mut url = self.base.clone();
        url.set_path(&format!(
            "{}/{}",
            self.version,
            path.trim_start_matches('/')
        ));
        Ok(url)
    }

    /// `GET /{path}?query&access_token&appsecret_proof`.
    pub async fn get<T: DeserializeOwned>(
        &self,
        path: &str,
        token: &SecretString,
        query: &[(&str, &str)],
    ) -> Result<T, GraphError> {
        let request = self
            .http
            .get(self.url(path)?)
            .query(query)
            .query(&self.auth(token));
        self.execute(request).await
    }

    /// Follows a `paging.next` URL from a Graph answer: only to the Graph
    /// host, with the caller's token and proof (whatever the URL carried is
    /// replaced).
    pub async fn get_next<T: DeserializeOwned>(
        &self,
        next: &str,
        token: &SecretString,
    ) -> Result<T, GraphError> {
        let refused = |why: &str| GraphError {
            message: format!("paging.next refused: {why}"),
            ..GraphError::default()
        };
        let mut url = Url::parse(next).map_err(|_| refused("not a URL"))?;
        if url.origin() != self.base.origin() {
            return Err(refused("not on the Graph API host"));
        }
        let kept: Vec<(String, String)> = url
            .query_pairs()
            .filter(|(k, _)| k != "access_token" && k != "appsecret_proof")
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        url.set_query(None);
        let request = self.http.get(url).query(&kept).query(&self.auth(token));
        self.execute(request).await
    }

    /// `POST /{path}` with a JSON body, authenticated in the query string.
    pub async fn post_json<T: DeserializeOwned>(
        &self,
        path: &str,
        token: &SecretString,
        body: &serde_json::Value,
    ) -> Result<T, GraphError> {
        let request = self
            .http
            .post(self.url(path)?)
            .query(&self.auth(token))
            .json(body);
        self.execute(request).await
    }

    /// Send API: `POST /{page-id}/messages` with a payload built by `render`.
    pub async fn send(
        &self,
        page_id: &str,
        page_token: &SecretString,
        payload: &serde_json::Value,
    ) -> Result<SendResponse, GraphError> {
        self.post_json(&format!("{page_id}/messages"), page_token, payload)
            .await
    }

    fn auth(&self, token: &SecretString) -> [(&'static str, String); 2] {
        let token = token.expose_secret();
        [
            ("access_token", token.to_string()),
            ("appsecret_proof", self.appsecret_proof(token)),
        ]
    }

    async fn execute<T: DeserializeOwned>(
        &self,
        request: reqwest::RequestBuilder,
    ) -> Result<T, GraphError> {
        let response = request.send().await.map_err(GraphError::transport)?;
        let status = response.status();
        let bytes = response.bytes().await.map_err(GraphError::transport)?;
        if status.is_success() {
            return serde_json::from_slice(&bytes).map_err(|e| GraphError {
                http_status: Some(status.as_u16()),
                message: format!("unexpected Graph API answer: {e}"),
                ..GraphError::default()
            });
        }
        Err(GraphError::from_body(Some(status.as_u16()), &bytes))
    }
}

pub fn appsecret_proof(app_secret: &str, access_token: &str) -> String {
    hex::encode(crate::crypto::hmac_sha256(
        app_secret.as_bytes(),
        access_token.as_bytes(),
    ))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SenderAction {
    TypingOn,
    TypingOff,
    MarkSeen,
}

impl SenderAction {
    pub fn as_str(self) -> &'static str {
        match self {
            SenderAction::TypingOn => "typing_on",
            SenderAction::TypingOff => "typing_off",
            SenderAction::MarkSeen => "mark_seen",
        }
    }

    /// The Send API payload of this action for one person.
    pub fn payload(self, psid: &str) -> serde_json::Value {
        serde_json::json!({
            "recipient": { "id": psid },
            "sender_action": self.as_str(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(http: Option<u16>, code: Option<i64>, subcode: Option<i64>) -> GraphError {
        GraphError {
            http_status: http,
            code,
            subcode,
            ..GraphError::default()
        }
    }

    #[test]
    fn rate_limits_temporary_errors_5xx_and_timeouts_are_transient() {
        for code in [1, 2, 4, 17, 341, 613, 1200, 80001, 80002, 80006] {
            assert!(
                err(Some(400), Some(code), None).is_transient(),
                "code {code}"
            );
        }
        assert!(err(Some(500), None, None).is_transient());
        assert!(err(Some(503), Some(2), None).is_transient());
        assert!(err(Some(429), None, None).is_transient());
        assert!(err(None, None, None).is_transient());
    }

    #[test]
    fn window_unavailable_parameter_token_and_permission_errors_are_permanent() {
        assert!(!err(Some(400), Some(10), Some(2018278)).is_transient());
        assert!(!err(Some(400), Some(10), Some(2534022)).is_transient());
        assert!(!err(Some(400), Some(551), Some(1545041)).is_transient());
        assert!(!err(Some(400), Some(100), None).is_transient());
        assert!(!err(Some(401), Some(190), None).is_transient());
        assert!(!err(Some(403), Some(200), None).is_transient());
        assert!(!err(Some(400), None, None).is_transient());
    }

    #[tokio::test]
    async fn a_redirect_is_a_final_error_not_followed() {
        use wiremock::matchers::any;
        use wiremock::{Mock, MockServer, ResponseTemplate};
        let elsewhere = MockServer::start().await;
        Mock::given(any())
            .respond_with(ResponseTemplate::new(200).set_body_string("{}"))
            .mount(&elsewhere)
            .await;
        let graph = MockServer::start().await;
        Mock::given(any())
            .respond_with(
                ResponseTemplate::new(307)
                    .insert_header("location", format!("{}/v25.0/me/messages", elsewhere.uri())),
            )
            .mount(&graph)
            .await;
        let client = GraphClient::new(
            Url::parse(&graph.uri()).unwrap(),
            "v25.0",
            SecretString::from("app-secret"),
            Duration::from_secs(2),
            Duration::from_secs(2),
        )
        .unwrap();
        let token = SecretString::from("page-token");
        let sent = client
            .send(
                "123",
                &token,
                &serde_json::json!({"message": {"text": "hi"}}),
            )
            .await;
        let error = sent.expect_err("a redirect is not a success");
        assert_eq!(error.http_status, Some(307));
        assert!(!error.is_transient());
        let got: Result<serde_json::Value, _> = client.get("me", &token, &[]).await;
        assert!(got.is_err());
        assert!(elsewhere.received_requests().await.unwrap().is_empty());
    }

    #[test]
    fn appsecret_proof_is_the_hex_hmac_of_the_token() {
        // printf %s token | openssl dgst -sha256 -hmac secret
        assert_eq!(
            appsecret_proof("secret", "token"),
            "e941110e3d2bfe82621f0e3e1434730d7305d106c5f68c87165d0b27a4611a4a"
        );
    }
}
