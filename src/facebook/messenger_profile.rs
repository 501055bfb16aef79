//! The Page's Messenger Profile (`/{page}/messenger_profile`) and the app's
//! webhook subscription on the Page (`/{page}/subscribed_apps`), each call
//! with the Page token and its `appsecret_proof`.

use secrecy::SecretString;
use serde::Deserialize;
use serde_json::{json, Value};

use super::{GraphClient, GraphError};

/// The profile fields `page setup` manages, as Graph names them.
pub const PROFILE_FIELDS: [&str; 5] = [
    "get_started",
    "greeting",
    "ice_breakers",
    "persistent_menu",
    "whitelisted_domains",
];

/// The webhook fields the service handles.
pub const WEBHOOK_FIELDS: [&str; 12] = [
    "messages",
    "messaging_postbacks",
    "messaging_optins",
    "messaging_referrals",
    "messaging_account_linking",
    "message_deliveries",
    "message_reads",
    "message_edits",
    "message_reactions",
    "messaging_handovers",
    "messaging_policy_enforcement",
    "standby",
];

/// A write's answer: the Profile API says `{"result": "success"}`,
/// `subscribed_apps` says `{"success": true}`.
#[derive(Deserialize)]
struct Success {
    #[serde(default)]
    success: bool,
    #[serde(default)]
    result: Option<String>,
}

impl Success {
    fn confirmed(&self) -> bool {
        self.success || self.result.as_deref() == Some("success")
    }
}

#[derive(Deserialize)]
struct Data {
    #[serde(default)]
    data: Vec<Value>,
}

fn refused(what: &str) -> GraphError {
    GraphError {
        message: format!("the Graph API did not confirm {what}"),
        ..GraphError::default()
    }
}

impl GraphClient {
    /// Sets every field of `profile` in one call (the Profile API allows 10
    /// calls per 10 minutes per Page).
    pub async fn set_messenger_profile(
        &self,
        page_id: &str,
        token: &SecretString,
        profile: &Value,
    ) -> Result<(), GraphError> {
        let answer: Success = self
            .post_json(&format!("{page_id}/messenger_profile"), token, profile)
            .await?;
        answer
            .confirmed()
            .then_some(())
            .ok_or_else(|| refused("the profile"))
    }

    /// The Page's profile as Meta has it now (the managed fields only).
    pub async fn messenger_profile(
        &self,
        page_id: &str,
        token: &SecretString,
    ) -> Result<Value, GraphError> {
        let fields = PROFILE_FIELDS.join(",");
        let answer: Data = self
            .get(
                &format!("{page_id}/messenger_profile"),
                token,
                &[("fields", &fields)],
            )
            .await?;
        Ok(answer.data.into_iter().next().unwrap_or_else(|| json!({})))
    }

    /// Subscribes this app to the Page's webhook `fields`.
    pub async fn subscribe_app(
        &self,
        page_id: &str,
        token: &SecretString,
        fields: &[&str],
    ) -> Result<(), GraphError> {
        let body = json!({ "subscribed_fields": fields.join(",") });
        let answer: Success = self
            .post_json(&format!("{page_id}/subscribed_apps"), token, &body)
            .await?;
        answer
            .confirmed()
            .then_some(())
            .ok_or_else(|| refused("the webhook subscription"))
    }
}
