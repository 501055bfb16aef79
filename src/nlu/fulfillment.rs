//! The operator's fulfillment backend for the embedded engine: a signed
//! POST of the fulfilled intent; the messages it returns are relayed.

use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use std::time::Duration;
use url::Url;

use super::NluMessage;
use crate::facebook::webhook::sign;

/// The header carrying `sha256=<hex HMAC-SHA256(FULFILLMENT_SECRET, body)>`.
pub const SIGNATURE_HEADER: &str = "X-Lexbridge-Signature-256";

pub struct Fulfillment {
    http: reqwest::Client,
    url: Url,
    secret: SecretString,
}

#[derive(Deserialize)]
struct Answer {
    #[serde(default)]
    messages: Vec<NluMessage>,
}

impl Fulfillment {
    pub fn new(url: Url, secret: SecretString, timeout: Duration) -> anyhow::Result<Fulfillment> {
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout)
            .build()?;
        Ok(Fulfillment { http, url, secret })
    }

    /// POSTs `request` (JSON) signed; `Err` says why it failed (timeouts,
    /// non-2xx answers and malformed answers all count as failures).
    pub async fn fulfil(&self, request: &serde_json::Value) -> Result<Vec<NluMessage>, String> {
        let body = serde_json::to_vec(request).map_err(|e| e.to_string())?;
        // The same scheme Meta uses for its webhooks, so backends can reuse their check.
        let signature = sign(self.secret.expose_secret().as_bytes(), &body);
        let response = self
            .http
            .post(self.url.clone())
            .header("Content-Type", "application/json")
            .header(SIGNATURE_HEADER, signature)
            .body(body)
            .send()
            .await
            .map_err(|e| format!("fulfillment request failed: {}", e.without_url()))?;
        let status = response.status();
        if !status.is_success() {
            return Err(format!("fulfillment answered HTTP {status}"));
        }
        let answer: Answer = response
            .json()
            .await
            .map_err(|e| format!("fulfillment answer is not understood: {}", e.without_url()))?;
        Ok(answer.messages)
    }
}
