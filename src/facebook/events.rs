//! Messenger webhook events: the types of what Meta posts (the signature
//! check is `facebook::signature`).

use serde::Deserialize;

pub use super::envelope::{inbox_events, PayloadError, WebhookEvent};

/// The kind of an event kept but not understood: an unknown shape, a kind
/// never heard of, or one that needs a person and names none.
pub const UNRECOGNISED: &str = "unrecognised";
/// The kinds of conversation routing's events.
pub const PASS_THREAD_CONTROL: &str = "pass_thread_control";
pub const TAKE_THREAD_CONTROL: &str = "take_thread_control";
pub const REQUEST_THREAD_CONTROL: &str = "request_thread_control";
/// The kind of Meta's `messaging_policy_enforcement` events.
pub const POLICY_ENFORCEMENT: &str = "policy_enforcement";
/// A message taken back (`message.is_deleted`, Instagram's unsend): kept,
/// never answered.
pub const MESSAGE_DELETED: &str = "message_deleted";

/// One `messaging[]` / `standby[]` event, with the fields the service reads.
#[derive(Debug, Clone, Deserialize)]
pub struct MessagingEvent {
    /// Absent from events about the Page itself (policy enforcement).
    #[serde(default)]
    pub sender: Option<Party>,
    #[serde(default)]
    pub recipient: Option<Party>,
    #[serde(default)]
    pub timestamp: Option<i64>,
    pub message: Option<Message>,
    pub postback: Option<Postback>,
    pub delivery: Option<Delivery>,
    pub read: Option<Read>,
    pub referral: Option<Referral>,
    pub optin: Option<serde_json::Value>,
    pub account_linking: Option<AccountLinking>,
    pub reaction: Option<serde_json::Value>,
    pub message_edit: Option<serde_json::Value>,
    pub response_feedback: Option<serde_json::Value>,
    /// Conversation routing (`messaging_handovers`): the thread passed to
    /// an app, taken by one, or asked for by one.
    pub pass_thread_control: Option<ThreadControl>,
    pub take_thread_control: Option<ThreadControl>,
    pub request_thread_control: Option<ThreadControl>,
    /// `policy_enforcement` (older documents spell it `policy-enforcement`).
    #[serde(alias = "policy-enforcement")]
    pub policy_enforcement: Option<PolicyEnforcement>,
}

/// A `messaging_handovers` event's body. App ids come as strings or
/// numbers; an idle thread's previous owner is `null`.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct ThreadControl {
    #[serde(default, deserialize_with = "id_text")]
    pub new_owner_app_id: Option<String>,
    #[serde(default, deserialize_with = "id_text")]
    pub previous_owner_app_id: Option<String>,
    #[serde(default, deserialize_with = "id_text")]
    pub requested_owner_app_id: Option<String>,
    #[serde(default)]
    pub metadata: Option<String>,
}

/// An id Meta sends as a string or a number (`None` for null or empty).
pub(crate) fn id_text<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    Ok(match serde_json::Value::deserialize(d)? {
        serde_json::Value::String(s) if !s.is_empty() => Some(s),
        serde_json::Value::Number(n) => Some(n.to_string()),
        _ => None,
    })
}

/// Meta's verdict on the Page: `block`, `unblock` or `warning`.
#[derive(Debug, Clone, Deserialize)]
pub struct PolicyEnforcement {
    pub action: String,
    /// Absent from an `unblock`.
    pub reason: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Party {
    pub id: Option<String>,
    pub user_ref: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Message {
    pub mid: Option<String>,
    pub text: Option<String>,
    #[serde(default)]
    pub is_echo: bool,
    /// Instagram's unsend: the person took back the message `mid` names.
    #[serde(default)]
    pub is_deleted: bool,
    pub quick_reply: Option<QuickReplyPayload>,
    #[serde(default)]
    pub attachments: Vec<Attachment>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct QuickReplyPayload {
    pub payload: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Attachment {
    #[serde(rename = "type")]
    pub kind: String,
    /// Its shape depends on the type (`url` for media, `coordinates` for a
    /// location, `sticker_id` beside a sticker's `url`); kept loose so that
    /// no attachment can make its event unreadable.
    #[serde(default)]
    pub payload: Option<serde_json::Value>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Postback {
    pub mid: Option<String>,
    pub title: Option<String>,
    pub payload: Option<String>,
    pub referral: Option<Referral>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Delivery {
    #[serde(default)]
    pub mids: Vec<String>,
    pub watermark: Option<i64>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Read {
    /// Messenger: every message sent before this time was read.
    #[serde(default)]
    pub watermark: Option<i64>,
    /// Instagram: this message (and those before it) was read.
    #[serde(default)]
    pub mid: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Referral {
    #[serde(rename = "ref")]
    pub reference: Option<String>,
    pub source: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct AccountLinking {
    pub status: String,
    pub authorization_code: Option<String>,
}

impl MessagingEvent {
    /// The ids the event names that are stored or looked up as text: the
    /// person, the message's mid, a receipt's mids.
    pub fn ids(&self) -> impl Iterator<Item = &str> {
        let person = [&self.sender, &self.recipient]
            .into_iter()
            .flatten()
            .flat_map(|p| [p.id.as_deref(), p.user_ref.as_deref()])
            .flatten();
        let delivered = self
            .delivery
            .iter()
            .flat_map(|d| d.mids.iter().map(String::as_str));
        let read = self.read.iter().filter_map(|r| r.mid.as_deref());
        person.chain(self.mid()).chain(delivered).chain(read)
    }

    /// Whether the person's act opens Meta's standard messaging window:
    /// a message, a button tapped (postback), an m.me or ig.me link into
    /// the conversation (referral), a reaction to a message.
    pub fn opens_window(&self) -> bool {
        match self.kind() {
            "message" | "postback" | "referral" => true,
            "reaction" => self
                .reaction
                .as_ref()
                .and_then(|r| r.get("action"))
                .and_then(|a| a.as_str())
                .is_none_or(|action| action == "react"),
            _ => false,
        }
    }

    /// What the event is, in the words the inbox keeps.
    pub fn kind(&self) -> &'static str {
        match self {
            MessagingEvent {
                message: Some(m), ..
            } if m.is_echo => "echo",
            MessagingEvent {
                message: Some(m), ..
            } if m.is_deleted => MESSAGE_DELETED,
            MessagingEvent {
                message: Some(_), ..
            } => "message",
            MessagingEvent {
                postback: Some(_), ..
            } => "postback",
            MessagingEvent {
                delivery: Some(_), ..
            } => "delivery",
            MessagingEvent { read: Some(_), .. } => "read",
            MessagingEvent {
                referral: Some(_), ..
            } => "referral",
            MessagingEvent { optin: Some(_), .. } => "optin",
            MessagingEvent {
                account_linking: Some(_),
                ..
            } => "account_linking",
            MessagingEvent {
                reaction: Some(_), ..
            } => "reaction",
            MessagingEvent {
                message_edit: Some(_),
                ..
            } => "message_edit",
            MessagingEvent {
                response_feedback: Some(_),
                ..
            } => "response_feedback",
            MessagingEvent {
                policy_enforcement: Some(_),
                ..
            } => POLICY_ENFORCEMENT,
            MessagingEvent {
                pass_thread_control: Some(_),
                ..
            } => PASS_THREAD_CONTROL,
            MessagingEvent {
                take_thread_control: Some(_),
                ..
            } => TAKE_THREAD_CONTROL,
            MessagingEvent {
                request_thread_control: Some(_),
                ..
            } => REQUEST_THREAD_CONTROL,
            _ => UNRECOGNISED,
        }
    }

    /// The person's side of the conversation: the sender, except for echoes
    /// of the Page's own messages.
    pub fn person(&self) -> Option<String> {
        let party = if self.kind() == "echo" {
            self.recipient.as_ref()?
        } else {
            self.sender.as_ref()?
        };
        match (&party.id, &party.user_ref) {
            (Some(id), _) if !id.is_empty() => Some(id.clone()),
            (_, Some(user_ref)) if !user_ref.is_empty() => Some(format!("user_ref:{user_ref}")),
            _ => None,
        }
    }

    /// The mid that identifies a message or postback across redeliveries.
    pub(crate) fn mid(&self) -> Option<&str> {
        self.message
            .as_ref()
            .and_then(|m| m.mid.as_deref())
            .or_else(|| self.postback.as_ref().and_then(|p| p.mid.as_deref()))
    }
}
