//! The Page's Messenger Profile and the app's webhook subscription as the
//! sandbox's Graph API keeps them (in memory), so `lexbridge page setup`
//! and `page show` work against the demo.

use serde_json::{json, Map, Value};
use std::sync::Mutex;

use super::error::MetaError;
use super::state::Who;
use crate::facebook::messenger_profile::PROFILE_FIELDS;

#[derive(Default)]
pub struct PageProfile {
    fields: Mutex<Map<String, Value>>,
    subscribed: Mutex<Vec<String>>,
}

fn page_only(who: &Who, page: &str, own_page: &str) -> Result<(), MetaError> {
    if *who != Who::Page || page != own_page {
        return Err(MetaError::new(
            200,
            "OAuthException",
            "(#200) This endpoint requires the Page's access token",
        ));
    }
    Ok(())
}

impl PageProfile {
    /// `POST /{page}/messenger_profile`: the fields given replace theirs.
    pub fn set(
        &self,
        who: &Who,
        page: &str,
        own_page: &str,
        body: &[u8],
    ) -> Result<Value, MetaError> {
        page_only(who, page, own_page)?;
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
    pub fn get(
        &self,
        who: &Who,
        page: &str,
        own_page: &str,
        wanted: &str,
    ) -> Result<Value, MetaError> {
        page_only(who, page, own_page)?;
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
        Ok(json!({ "data": data }))
    }

    /// `POST /{page}/subscribed_apps` with `subscribed_fields`.
    pub fn subscribe(
        &self,
        who: &Who,
        page: &str,
        own_page: &str,
        body: &[u8],
    ) -> Result<Value, MetaError> {
        page_only(who, page, own_page)?;
        let body: Value = serde_json::from_slice(body).unwrap_or_default();
        let fields = body["subscribed_fields"].as_str().unwrap_or_default();
        if fields.trim().is_empty() {
            return Err(MetaError::param(
                "(#100) The parameter subscribed_fields is required",
            ));
        }
        *self.subscribed.lock().unwrap_or_else(|p| p.into_inner()) =
            fields.split(',').map(|f| f.trim().to_string()).collect();
        Ok(json!({ "success": true }))
    }

    /// The webhook fields the app is subscribed to.
    pub fn subscribed(&self) -> Vec<String> {
        self.subscribed
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}
