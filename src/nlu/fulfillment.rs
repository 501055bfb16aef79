//! The operator's fulfillment backend for the embedded engine: a signed
//! POST of the fulfilled intent; the messages it returns are relayed.
//!
//! Each body carries `request_id` (the same on every retry of the same
//! inbox event, so the backend can de-duplicate) and `sent_at` (epoch
//! milliseconds, so the backend can refuse old requests: the signature
//! covers both, so neither can be altered). The client follows no
//! redirects and reads at most [`MAX_ANSWER_BYTES`] of an answer.

use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use std::time::Duration;
use url::Url;

use super::NluMessage;
use crate::clock::now_ms;
use crate::crypto::sign_body;

/// The header carrying `sha256=<hex HMAC-SHA256(FULFILLMENT_SECRET, body)>`.
pub const SIGNATURE_HEADER: &str = "X-Lexbridge-Signature-256";

/// The largest answer read from the backend; a larger one fails the intent.
pub const MAX_ANSWER_BYTES: usize = 256 * 1024;

#[derive(Clone)]
pub struct Fulfillment {
    http: reqwest::Client,
    url: Url,
    secret: SecretString,
}

#[derive(Deserialize)]
struct FulfillmentAnswer {
    #[serde(default)]
    messages: Vec<NluMessage>,
}

impl Fulfillment {
    pub fn new(url: Url, secret: SecretString, timeout: Duration) -> anyhow::Result<Fulfillment> {
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout)
            // A redirect could carry the signed request elsewhere.
            .redirect(reqwest::redirect::Policy::none())
            .build()?;
        Ok(Fulfillment { http, url, secret })
    }

    /// POSTs `request` (a JSON object) signed, with `request_id` and
    /// `sent_at` (now, epoch ms) added; `Err` says why it failed (timeouts,
    /// redirects, non-2xx answers, oversize and malformed answers).
    pub async fn fulfil(
        &self,
        request_id: &str,
        request: &serde_json::Value,
    ) -> Result<Vec<NluMessage>, String> {
        let body = stamped(request, request_id, now_ms())?;
        // The same scheme Meta uses for its webhooks, so backends can reuse their check.
        let signature = sign_body(self.secret.expose_secret().as_bytes(), &body);
        let mut response = self
            .http
            .post(self.url.clone())
            .header("Content-Type", "application/json")
            .header(SIGNATURE_HEADER, signature)
            .body(body)
            .send()
            .await
            .map_err(|e| format!("fulfillment request failed: {}", e.without_url()))?;
        let status = response.status();
        if status.is_redirection() {
            return Err(format!(
                "fulfillment answered HTTP {status}; redirects are not followed (set FULFILLMENT_URL to the final address)"
            ));
        }
        if !status.is_success() {
            return Err(format!("fulfillment answered HTTP {status}"));
        }
        let too_large =
            || format!("fulfillment answer is larger than {MAX_ANSWER_BYTES} bytes; not read");
        if response
            .content_length()
            .is_some_and(|n| n > MAX_ANSWER_BYTES as u64)
        {
            return Err(too_large());
        }
        let mut bytes = Vec::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| format!("fulfillment answer could not be read: {}", e.without_url()))?
        {
            if bytes.len() + chunk.len() > MAX_ANSWER_BYTES {
                return Err(too_large());
            }
            bytes.extend_from_slice(&chunk);
        }
        let answer: FulfillmentAnswer = serde_json::from_slice(&bytes)
            .map_err(|e| format!("fulfillment answer is not understood: {e}"))?;
        Ok(answer.messages)
    }
}

/// The body as sent: `request` with `request_id` and `sent_at` set.
fn stamped(request: &serde_json::Value, request_id: &str, sent_at: i64) -> Result<Vec<u8>, String> {
    let mut request = request.clone();
    let object = request
        .as_object_mut()
        .ok_or("a fulfillment request must be a JSON object")?;
    object.insert("request_id".into(), request_id.into());
    object.insert("sent_at".into(), sent_at.into());
    serde_json::to_vec(&request).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::{stamped, Fulfillment, MAX_ANSWER_BYTES};
    use serde_json::{json, Value};
    use std::time::Duration;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// A backend answering 200 with a chunked body (no Content-Length) of
    /// valid JSON `pad` bytes long.
    async fn chunked_backend(pad: usize) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/fulfil", listener.local_addr().unwrap());
        tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.unwrap();
            let mut request = vec![0u8; 64 * 1024];
            let _ = socket.read(&mut request).await;
            let head = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n";
            let _ = socket.write_all(head.as_bytes()).await;
            let body = format!(r#"{{"messages": [], "pad": "{}"}}"#, " ".repeat(pad));
            for part in body.as_bytes().chunks(16 * 1024) {
                let chunk = format!("{:x}\r\n", part.len());
                let _ = socket.write_all(chunk.as_bytes()).await;
                let _ = socket.write_all(part).await;
                let _ = socket.write_all(b"\r\n").await;
            }
            let _ = socket.write_all(b"0\r\n\r\n").await;
        });
        url
    }

    #[tokio::test]
    async fn an_answer_without_a_length_is_read_only_up_to_the_bound() {
        for (pad, ok) in [(1000, true), (MAX_ANSWER_BYTES, false)] {
            let url = chunked_backend(pad).await.parse().unwrap();
            let backend =
                Fulfillment::new(url, "s".to_string().into(), Duration::from_secs(5)).unwrap();
            let result = backend.fulfil("id", &json!({})).await;
            match ok {
                true => assert_eq!(result, Ok(vec![])),
                false => assert!(result.unwrap_err().contains("larger than"), "{pad}"),
            }
        }
    }

    #[test]
    fn the_body_carries_the_request_id_and_the_time_it_was_sent() {
        let body = stamped(&json!({"intent": "Order"}), "abc", 1_700_000_000_000).unwrap();
        let body: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(
            body,
            json!({"intent": "Order", "request_id": "abc", "sent_at": 1_700_000_000_000_i64})
        );
        assert!(stamped(&json!([1]), "abc", 1).is_err());
    }
}
