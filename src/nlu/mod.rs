//! Natural-language understanding behind one trait: Amazon Lex V2 or the
//! embedded engine answer in the same `NluReply` shape.

pub mod attachment;
pub mod cli;
pub mod embedded;
pub mod fulfillment;
pub mod lex_client;
pub mod lex_null_slots;
pub mod lex_session;
pub mod local;
pub mod reply;
pub mod start_over;

pub use reply::{
    ActiveContext, CardButton, DialogAction, ImageResponseCard, IntentState, Interpretation,
    NluMessage, NluReply, SlotValue,
};

use async_trait::async_trait;
use std::collections::BTreeMap;

/// One person's turn, as the inbox worker hands it to the NLU.
#[derive(Debug, Clone)]
pub struct NluTurn {
    /// Stable per conversation (page + PSID), within Lex's session id rules.
    pub session_id: String,
    pub page_id: String,
    pub psid: String,
    pub text: String,
    /// Session attributes a code hook needs to know the person.
    pub attributes: BTreeMap<String, String>,
    /// The engine's own dialog state from the conversation row, if it keeps one.
    pub dialog_state: Option<String>,
    /// The same on every attempt at the same inbox event ([`turn_id`]): the
    /// fulfillment `request_id`, so a backend can de-duplicate retries.
    pub turn_id: String,
    /// An attachment turn: `text` is its fixed utterance (see `attachment`).
    pub attachment: Option<attachment::AttachmentTurn>,
}

/// The reply, and the dialog state to keep when the engine keeps its own.
#[derive(Debug, Clone, Default)]
pub struct NluAnswer {
    pub reply: NluReply,
    /// `Some` replaces the stored state; `None` leaves it as it is.
    pub dialog_state: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum NluError {
    /// Worth trying again later (throttling, 5xx, timeouts).
    #[error("temporary NLU failure: {0}")]
    Transient(String),
    /// Trying again will not help (validation, access denied, not found).
    #[error("NLU failure: {0}")]
    Permanent(String),
}

impl NluError {
    pub fn is_transient(&self) -> bool {
        matches!(self, NluError::Transient(_))
    }
}

#[async_trait]
pub trait Nlu: Send + Sync {
    /// A short name for logs and metrics (`lex`, `local`).
    fn name(&self) -> &'static str;

    async fn recognize(&self, turn: NluTurn) -> Result<NluAnswer, NluError>;

    /// Forgets what the engine itself keeps of a session ("start over"). The
    /// bridge clears the dialog state it stores on its own.
    async fn reset(&self, _session_id: &str) -> Result<(), NluError> {
        Ok(())
    }
}

/// The id of the turn an inbox event makes, from the event's dedupe key
/// (as the webhook's `turn_key` gives it, the same before and after
/// migration 0020): stable across retries of that event, different for
/// every other event.
pub fn turn_id(dedupe_key: &str) -> String {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(format!("lexbridge turn\n{dedupe_key}").as_bytes());
    hex::encode(&digest[..16])
}

/// A Lex-valid session id for a conversation: `[0-9a-zA-Z._:-]`, 2 to 100
/// characters. Page ids and PSIDs are digits, but anything else is mapped
/// safely and long ids are shortened with a digest so sessions never collide.
pub fn session_id(page_id: &str, psid: &str) -> String {
    let raw = format!("{page_id}:{psid}");
    let clean: String = raw
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | ':' | '-') {
                c
            } else {
                '_'
            }
        })
        .collect();
    if clean == raw && clean.len() <= 100 {
        return clean;
    }
    use sha2::{Digest, Sha256};
    let digest = hex::encode(Sha256::digest(raw.as_bytes()));
    let keep: String = clean.chars().take(100 - 1 - 40).collect();
    format!("{keep}-{}", &digest[..40])
}

#[cfg(test)]
mod tests {
    use super::{session_id, turn_id};

    #[test]
    fn turn_ids_are_stable_per_event_and_distinct_across_events() {
        assert_eq!(turn_id("mid:m.1"), turn_id("mid:m.1"));
        assert_ne!(turn_id("mid:m.1"), turn_id("mid:m.2"));
        assert_ne!(turn_id("mid:m.1"), turn_id("postback:m.1"));
        assert_eq!(turn_id("mid:m.1").len(), 32);
    }

    fn valid(s: &str) -> bool {
        (2..=100).contains(&s.len())
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | ':' | '-'))
    }

    #[test]
    fn session_ids_follow_lex_rules_and_do_not_collide() {
        assert_eq!(session_id("123", "456"), "123:456");
        let odd = session_id("123", "user_ref:a/b c");
        assert!(valid(&odd), "{odd}");
        assert_ne!(odd, session_id("123", "user_ref:a_b_c"));
        let long = session_id("1", &"9".repeat(200));
        assert!(valid(&long), "{long}");
        assert_ne!(long, session_id("1", &"9".repeat(201)));
    }
}
