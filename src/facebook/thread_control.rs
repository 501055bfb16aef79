//! Conversation routing's calls (Meta's successor to the Handover
//! Protocol): `pass_thread_control` and `take_thread_control`, queued in
//! the outbox like messages so a person's messages and the handover keep
//! their order.

use secrecy::SecretString;
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::{GraphClient, GraphError};

/// Graph's answer when another app owns the thread: code 10, subcode
/// 2018300.
const THREAD_ELSEWHERE: (i64, i64) = (10, 2018300);

/// What a `control` outbox row asks of Graph.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum ThreadControl {
    /// Hand the thread to `target_app_id` (the Page Inbox, say).
    PassThreadControl {
        target_app_id: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        metadata: Option<String>,
    },
    /// Take the thread back from whichever app owns it.
    TakeThreadControl {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        metadata: Option<String>,
    },
}

impl ThreadControl {
    /// The outbox `body` of a `control` row.
    pub fn outbox_body(&self) -> String {
        json!({ "thread_control": self }).to_string()
    }

    /// The call a stored `body` asks for; `None` for a message.
    pub fn from_outbox_body(body: &str) -> Option<ThreadControl> {
        #[derive(Deserialize)]
        struct Body {
            thread_control: ThreadControl,
        }
        serde_json::from_str::<Body>(body)
            .ok()
            .map(|b| b.thread_control)
    }

    fn edge(&self) -> &'static str {
        match self {
            ThreadControl::PassThreadControl { .. } => "pass_thread_control",
            ThreadControl::TakeThreadControl { .. } => "take_thread_control",
        }
    }

    /// Graph's request body for `psid`.
    pub fn payload(&self, psid: &str) -> serde_json::Value {
        let mut payload = json!({ "recipient": { "id": psid } });
        let (target, metadata) = match self {
            ThreadControl::PassThreadControl {
                target_app_id,
                metadata,
            } => (Some(target_app_id), metadata),
            ThreadControl::TakeThreadControl { metadata } => (None, metadata),
        };
        if let Some(target) = target {
            payload["target_app_id"] = json!(target);
        }
        if let Some(metadata) = metadata {
            payload["metadata"] = json!(metadata);
        }
        payload
    }
}

impl GraphError {
    /// Whether the Send API refused because another app owns the thread.
    pub fn is_thread_elsewhere(&self) -> bool {
        (self.code, self.subcode) == (Some(THREAD_ELSEWHERE.0), Some(THREAD_ELSEWHERE.1))
    }
}

impl GraphClient {
    /// `POST /{page-id}/pass_thread_control` or `…/take_thread_control`.
    pub async fn thread_control(
        &self,
        page_id: &str,
        page_token: &SecretString,
        psid: &str,
        call: &ThreadControl,
    ) -> Result<(), GraphError> {
        let path = format!("{page_id}/{}", call.edge());
        let answer: serde_json::Value = self
            .post_json(&path, page_token, &call.payload(psid))
            .await?;
        match answer.get("success").and_then(serde_json::Value::as_bool) {
            Some(false) => Err(GraphError {
                http_status: Some(200),
                message: format!("{} answered success: false", call.edge()),
                ..GraphError::default()
            }),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_control_body_round_trips_and_a_message_is_not_one() {
        let pass = ThreadControl::PassThreadControl {
            target_app_id: "263902037430900".into(),
            metadata: Some("intent TalkToHuman".into()),
        };
        let body = pass.outbox_body();
        assert_eq!(ThreadControl::from_outbox_body(&body), Some(pass.clone()));
        assert_eq!(
            pass.payload("U1"),
            json!({"recipient": {"id": "U1"}, "target_app_id": "263902037430900",
                   "metadata": "intent TalkToHuman"})
        );
        let take = ThreadControl::TakeThreadControl { metadata: None };
        assert_eq!(take.payload("U1"), json!({"recipient": {"id": "U1"}}));
        assert_eq!(
            ThreadControl::from_outbox_body(r#"{"message":{"text":"hi"}}"#),
            None
        );
    }

    #[test]
    fn only_10_2018300_means_another_app_owns_the_thread() {
        let err = |code, subcode| GraphError {
            http_status: Some(400),
            code: Some(code),
            subcode: Some(subcode),
            ..GraphError::default()
        };
        assert!(err(10, 2018300).is_thread_elsewhere());
        assert!(!err(10, 2018278).is_thread_elsewhere());
        assert!(!err(551, 2018300).is_thread_elsewhere());
    }
}
