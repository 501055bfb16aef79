//! Messenger webhook: signature check and event types.

use hmac::{Hmac, Mac};
use serde::Deserialize;
use serde_json::value::RawValue;
use sha2::{Digest, Sha256};

use crate::store::inbox::NewInboxEvent;

type HmacSha256 = Hmac<Sha256>;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SignatureError {
    #[error("the X-Hub-Signature-256 header is missing")]
    Missing,
    #[error("the X-Hub-Signature-256 header is not of the form sha256=<hex>")]
    Malformed,
    #[error("the X-Hub-Signature-256 signature does not match the body")]
    Mismatch,
}

/// Checks Meta's `X-Hub-Signature-256: sha256=<hex HMAC-SHA256(app secret, raw body)>`
/// in constant time.
pub fn verify_signature(
    app_secret: &[u8],
    body: &[u8],
    header: Option<&str>,
) -> Result<(), SignatureError> {
    let header = header.ok_or(SignatureError::Missing)?;
    let hex_sig = header
        .trim()
        .strip_prefix("sha256=")
        .ok_or(SignatureError::Malformed)?;
    let expected = hex::decode(hex_sig).map_err(|_| SignatureError::Malformed)?;
    let mut mac = HmacSha256::new_from_slice(app_secret).map_err(|_| SignatureError::Mismatch)?;
    mac.update(body);
    mac.verify_slice(&expected)
        .map_err(|_| SignatureError::Mismatch)
}

/// `sha256=<hex>` for `body`: what Meta sends (and what the load generator signs).
pub fn sign(app_secret: &[u8], body: &[u8]) -> String {
    let mut mac = HmacSha256::new_from_slice(app_secret).expect("HMAC takes keys of any length");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

#[derive(Debug, thiserror::Error)]
pub enum PayloadError {
    #[error("the body is not a valid webhook payload: {0}")]
    Malformed(String),
    #[error("the webhook object {0:?} is not \"page\"")]
    NotPage(String),
}

#[derive(Deserialize)]
struct Body<'a> {
    object: String,
    #[serde(default, borrow)]
    entry: Vec<Entry<'a>>,
}

#[derive(Deserialize)]
struct Entry<'a> {
    id: String,
    #[serde(default, borrow)]
    messaging: Vec<&'a RawValue>,
    #[serde(default, borrow)]
    standby: Vec<&'a RawValue>,
}

/// One `messaging[]` / `standby[]` event, with the fields the service reads.
#[derive(Debug, Clone, Deserialize)]
pub struct MessagingEvent {
    pub sender: Party,
    pub recipient: Party,
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
    pub watermark: i64,
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
    /// What the event is, in the words the inbox keeps.
    pub fn kind(&self) -> &'static str {
        match self {
            MessagingEvent {
                message: Some(m), ..
            } if m.is_echo => "echo",
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
            _ => "other",
        }
    }

    /// The person's side of the conversation: the sender, except for echoes
    /// of the Page's own messages.
    pub fn person(&self) -> Option<String> {
        let party = if self.kind() == "echo" {
            &self.recipient
        } else {
            &self.sender
        };
        match (&party.id, &party.user_ref) {
            (Some(id), _) if !id.is_empty() => Some(id.clone()),
            (_, Some(user_ref)) if !user_ref.is_empty() => Some(format!("user_ref:{user_ref}")),
            _ => None,
        }
    }

    /// The mid that identifies a message or postback across redeliveries.
    fn mid(&self) -> Option<&str> {
        self.message
            .as_ref()
            .and_then(|m| m.mid.as_deref())
            .or_else(|| self.postback.as_ref().and_then(|p| p.mid.as_deref()))
    }
}

/// Turns a verified webhook body into inbox rows, one per event.
pub fn inbox_events(body: &[u8], received_at: i64) -> Result<Vec<NewInboxEvent>, PayloadError> {
    let parsed: Body =
        serde_json::from_slice(body).map_err(|e| PayloadError::Malformed(e.to_string()))?;
    if parsed.object != "page" {
        return Err(PayloadError::NotPage(parsed.object));
    }
    let mut rows = Vec::new();
    for entry in &parsed.entry {
        let events = entry
            .messaging
            .iter()
            .map(|e| (e, false))
            .chain(entry.standby.iter().map(|e| (e, true)));
        for (raw, standby) in events {
            let event: MessagingEvent = serde_json::from_str(raw.get())
                .map_err(|e| PayloadError::Malformed(format!("entry {}: {e}", entry.id)))?;
            let psid = event.person().ok_or_else(|| {
                PayloadError::Malformed(format!("entry {}: an event has no sender id", entry.id))
            })?;
            let kind = event.kind();
            let dedupe_key = dedupe_key(&entry.id, &psid, kind, &event, raw.get());
            rows.push(NewInboxEvent {
                page_id: entry.id.clone(),
                psid,
                kind,
                standby,
                dedupe_key,
                event: raw.get().to_string(),
                received_at,
            });
        }
    }
    Ok(rows)
}

/// Messages and postbacks are identified by their mid; other events by who,
/// when and what (plus a digest when Meta gave no timestamp).
fn dedupe_key(page_id: &str, psid: &str, kind: &str, event: &MessagingEvent, raw: &str) -> String {
    match (event.mid(), kind) {
        (Some(mid), "postback") => format!("postback:{mid}"),
        (Some(mid), _) => format!("mid:{mid}"),
        (None, _) => match event.timestamp {
            Some(ts) => format!("{kind}:{page_id}:{psid}:{ts}"),
            None => {
                let digest = Sha256::digest(raw.as_bytes());
                format!("{kind}:{page_id}:{psid}:{}", hex::encode(&digest[..12]))
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &[u8] = b"test-app-secret";

    #[test]
    fn a_correct_signature_is_accepted() {
        let body = br#"{"object":"page"}"#;
        let header = sign(SECRET, body);
        assert_eq!(verify_signature(SECRET, body, Some(&header)), Ok(()));
    }

    #[test]
    fn signatures_that_do_not_match_are_rejected() {
        let body = br#"{"object":"page"}"#;
        let header = sign(SECRET, body);
        assert_eq!(
            verify_signature(SECRET, b"{\"object\":\"page\" }", Some(&header)),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify_signature(b"other-secret", body, Some(&header)),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify_signature(SECRET, body, None),
            Err(SignatureError::Missing)
        );
        assert_eq!(
            verify_signature(SECRET, body, Some("sha1=abcd")),
            Err(SignatureError::Malformed)
        );
        assert_eq!(
            verify_signature(SECRET, body, Some("sha256=zz")),
            Err(SignatureError::Malformed)
        );
    }

    fn body(events: &str) -> String {
        format!(r#"{{"object":"page","entry":[{{"id":"PAGE","time":1,"messaging":[{events}]}}]}}"#)
    }

    #[test]
    fn messages_are_keyed_by_mid_and_other_events_by_sender_time_and_kind() {
        let b = body(
            r#"{"sender":{"id":"U1"},"recipient":{"id":"PAGE"},"timestamp":10,"message":{"mid":"m.1","text":"hi"}},
               {"sender":{"id":"U1"},"recipient":{"id":"PAGE"},"timestamp":11,"read":{"watermark":10}},
               {"sender":{"id":"PAGE"},"recipient":{"id":"U1"},"timestamp":12,"message":{"mid":"m.2","is_echo":true,"text":"yo"}},
               {"sender":{"id":"U1"},"recipient":{"id":"PAGE"},"timestamp":13,"postback":{"mid":"m.3","payload":"GO"}}"#,
        );
        let rows = inbox_events(b.as_bytes(), 0).expect("valid");
        let keys: Vec<_> = rows.iter().map(|r| r.dedupe_key.as_str()).collect();
        assert_eq!(
            keys,
            ["mid:m.1", "read:PAGE:U1:11", "mid:m.2", "postback:m.3"]
        );
        let kinds: Vec<_> = rows.iter().map(|r| r.kind).collect();
        assert_eq!(kinds, ["message", "read", "echo", "postback"]);
        assert!(rows.iter().all(|r| r.psid == "U1" && r.page_id == "PAGE"));
    }

    #[test]
    fn standby_events_are_stored_and_flagged() {
        let b = r#"{"object":"page","entry":[{"id":"P","time":1,"standby":[
            {"sender":{"id":"U"},"recipient":{"id":"P"},"timestamp":5,"message":{"mid":"s.1","text":"x"}}]}]}"#;
        let rows = inbox_events(b.as_bytes(), 0).expect("valid");
        assert_eq!(rows.len(), 1);
        assert!(rows[0].standby);
    }

    #[test]
    fn bad_payloads_are_refused() {
        assert!(matches!(
            inbox_events(b"{not json", 0),
            Err(PayloadError::Malformed(_))
        ));
        assert!(matches!(
            inbox_events(br#"{"object":"instagram","entry":[]}"#, 0),
            Err(PayloadError::NotPage(_))
        ));
        let no_sender = body(r#"{"recipient":{"id":"PAGE"},"timestamp":1,"message":{"mid":"m"}}"#);
        assert!(matches!(
            inbox_events(no_sender.as_bytes(), 0),
            Err(PayloadError::Malformed(_))
        ));
    }
}
