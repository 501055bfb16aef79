//! An HTTP client for the Lex SDK that removes `null` slot entries from Lex
//! answers before the SDK parses them.
//!
//! Lex sends unfilled slots as `"slots": {"Slot": null}`, and
//! aws-sdk-lexruntimev2 (1.120) refuses such a map ("dense map cannot
//! contain null values"), failing the whole call. An unfilled slot and an
//! absent one mean the same to the bridge, so the entries are dropped.

use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnector, HttpConnectorFuture, HttpConnectorSettings, SharedHttpClient,
    SharedHttpConnector,
};
use aws_smithy_runtime_api::client::orchestrator::HttpRequest;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::body::SdkBody;
use http_body_util::BodyExt;
use serde_json::Value;

/// Wraps the SDK's own HTTPS client.
#[derive(Debug, Clone)]
pub struct NullSlotFilteringClient {
    inner: SharedHttpClient,
}

impl NullSlotFilteringClient {
    pub fn new(inner: SharedHttpClient) -> NullSlotFilteringClient {
        NullSlotFilteringClient { inner }
    }

    /// Around the SDK's default rustls HTTPS client.
    pub fn https() -> NullSlotFilteringClient {
        use aws_smithy_http_client::tls;
        let inner = aws_smithy_http_client::Builder::new()
            .tls_provider(tls::Provider::Rustls(
                tls::rustls_provider::CryptoMode::AwsLc,
            ))
            .build_https();
        NullSlotFilteringClient::new(inner)
    }
}

impl HttpClient for NullSlotFilteringClient {
    fn http_connector(
        &self,
        settings: &HttpConnectorSettings,
        components: &RuntimeComponents,
    ) -> SharedHttpConnector {
        SharedHttpConnector::new(NullSlotFilteringConnector {
            inner: self.inner.http_connector(settings, components),
        })
    }
}

#[derive(Debug)]
struct NullSlotFilteringConnector {
    inner: SharedHttpConnector,
}

impl HttpConnector for NullSlotFilteringConnector {
    fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
        let pending = self.inner.call(request);
        HttpConnectorFuture::new(async move {
            let mut response = pending.await?;
            let is_json = response
                .headers()
                .get("content-type")
                .is_some_and(|t| t.contains("json"));
            if !response.status().is_success() || !is_json {
                return Ok(response);
            }
            let body = std::mem::replace(response.body_mut(), SdkBody::taken());
            let bytes = body
                .collect()
                .await
                .map_err(aws_smithy_runtime_api::client::result::ConnectorError::io)?
                .to_bytes();
            let cleaned = drop_null_slots(&bytes).unwrap_or_else(|| bytes.to_vec());
            response.headers_mut().remove("content-length");
            response
                .headers_mut()
                .insert("content-length", cleaned.len().to_string());
            *response.body_mut() = SdkBody::from(cleaned);
            Ok(response)
        })
    }
}

/// The JSON with `null` entries removed from every `slots` / `subSlots`
/// map; `None` when nothing changed or the body is not JSON.
pub fn drop_null_slots(body: &[u8]) -> Option<Vec<u8>> {
    let mut value: Value = serde_json::from_slice(body).ok()?;
    if !scrub(&mut value) {
        return None;
    }
    serde_json::to_vec(&value).ok()
}

fn scrub(value: &mut Value) -> bool {
    let mut changed = false;
    match value {
        Value::Object(map) => {
            for (key, child) in map.iter_mut() {
                if key == "slots" || key == "subSlots" {
                    if let Value::Object(slots) = child {
                        let before = slots.len();
                        slots.retain(|_, v| !v.is_null());
                        changed |= slots.len() != before;
                    }
                }
                changed |= scrub(child);
            }
        }
        Value::Array(items) => {
            for item in items {
                changed |= scrub(item);
            }
        }
        _ => {}
    }
    changed
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn null_slots_are_removed_everywhere_and_values_kept() {
        let body = json!({
            "sessionState": {"intent": {"name": "Lock", "slots": {
                "Door": null,
                "Car": {"value": {"originalValue": "car", "interpretedValue": "car", "resolvedValues": []},
                        "subSlots": {"Part": null}}}}},
            "interpretations": [{"intent": {"name": "Lock", "slots": {"Door": null}}}]
        });
        let cleaned: Value =
            serde_json::from_slice(&drop_null_slots(body.to_string().as_bytes()).unwrap()).unwrap();
        let slots = &cleaned["sessionState"]["intent"]["slots"];
        assert!(slots.get("Door").is_none());
        assert_eq!(slots["Car"]["value"]["interpretedValue"], "car");
        assert_eq!(slots["Car"]["subSlots"], json!({}));
        assert_eq!(cleaned["interpretations"][0]["intent"]["slots"], json!({}));
    }

    #[test]
    fn bodies_without_null_slots_are_left_alone() {
        assert!(drop_null_slots(br#"{"sessionState":{"intent":{"slots":{}}}}"#).is_none());
        assert!(drop_null_slots(b"not json").is_none());
    }
}
