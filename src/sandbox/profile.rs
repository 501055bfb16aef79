//! The Page's Messenger Profile as the sandbox's Graph API keeps it (in
//! memory), and the app's webhook subscription it checks, so `lexbridge
//! page setup` and `page show` work against the demo.

use serde_json::{json, Map, Value};
use std::sync::Mutex;

use super::error::MetaError;
use crate::facebook::messenger_profile::PROFILE_FIELDS;

#[derive(Default)]
pub struct PageProfile {
    fields: Mutex<Map<String, Value>>,
}

impl PageProfile {
    /// `POST /{page}/messenger_profile`: the fields given replace theirs.
    pub fn set(&self, body: &[u8]) -> Result<Value, MetaError> {
        let Ok(Value::Object(given)) = serde_json::from_slice::<Value>(body) else {
            return Err(MetaError::param("The request body must be a JSON object"));
        };
        let unknown: Vec<&str> = given
            .keys()
            .map(String::as_str)
            .filter(|k| !PROFILE_FIELDS.contains(k))
            .collect();
        if !unknown.is_empty() {
            return Err(MetaError::param(format!(
                "(#100) Invalid keys \"{}\" were found in param \"name_placeholder\".",
                unknown.join(", ")
            )));
        }
        let mut fields = self.fields.lock().unwrap_or_else(|p| p.into_inner());
        fields.extend(given);
        Ok(json!({ "result": "success" }))
    }

    /// `GET /{page}/messenger_profile?fields=…`.
    pub fn get(&self, wanted: &str) -> Value {
        let fields = self.fields.lock().unwrap_or_else(|p| p.into_inner());
        let chosen: Map<String, Value> = wanted
            .split(',')
            .filter_map(|f| {
                fields
                    .get(f.trim())
                    .map(|v| (f.trim().to_string(), v.clone()))
            })
            .collect();
        let data = if chosen.is_empty() {
            vec![]
        } else {
            vec![Value::Object(chosen)]
        };
        json!({ "data": data })
    }
}

/// `POST /{page}/subscribed_apps`: `subscribed_fields` must be given (the
/// demo's webhook gets every event whatever is subscribed).
pub fn subscribe(body: &[u8]) -> Result<Value, MetaError> {
    let body: Value = serde_json::from_slice(body).unwrap_or_default();
    let fields = body["subscribed_fields"].as_str().unwrap_or_default();
    if fields.trim().is_empty() {
        return Err(MetaError::param(
            "(#100) The parameter subscribed_fields is required",
        ));
    }
    Ok(json!({ "success": true }))
}
