//! What Lex remembers of a session, kept by the bridge between turns.
//!
//! Lex replaces a session's stored attributes with the `sessionState` a
//! `RecognizeText` request carries, so a request holding only the bridge's
//! attributes would erase what a Lambda code hook set. The bridge therefore
//! keeps the `sessionAttributes` and `activeContexts` each answer returns
//! (as JSON in `conversations.nlu_state`) and sends them back on the next
//! turn, its own keys ([`BRIDGE_KEYS`]) always winning. Clearing the stored
//! state ("start over", unlink) makes the next request carry only the
//! bridge's attributes, which is what Lex then keeps.

use aws_sdk_lexruntimev2::types::{ActiveContext, ActiveContextTimeToLive, SessionState};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use tracing::warn;

/// The attributes the bridge sets from what it knows of the person. A code
/// hook's values for them are never kept: the bridge's own are sent.
pub const BRIDGE_KEYS: [&str; 5] = ["psid", "page_id", "linked", "account_id", "name"];

/// Lex's lower bound for an active context's remaining lifetime.
const MIN_CONTEXT_SECONDS: i64 = 5;

/// One session's remembered state, as stored.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LexSession {
    /// The stored format's version; also tells Lex's state from the
    /// embedded engine's, which has no such field.
    pub lex: u32,
    /// What Lex returned, without the bridge's keys.
    pub session_attributes: BTreeMap<String, String>,
    pub active_contexts: Vec<Context>,
    /// When Lex returned them (epoch ms): context lifetimes run from here.
    pub saved_at: i64,
}

/// A Lex active context.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Context {
    pub name: String,
    pub time_to_live_in_seconds: i32,
    pub turns_to_live: i32,
    pub attributes: BTreeMap<String, String>,
}

impl LexSession {
    /// The stored state; empty when there is none or it is not Lex's.
    pub fn from_stored(stored: Option<&str>, session_id: &str) -> LexSession {
        let Some(stored) = stored else {
            return LexSession::default();
        };
        serde_json::from_str(stored).unwrap_or_else(|e| {
            warn!(session_id, error = %e, "stored Lex session state unreadable; starting afresh");
            LexSession::default()
        })
    }

    /// What to keep of the `sessionState` Lex answered with, at `now`.
    pub fn remembered(state: Option<&SessionState>, now: i64) -> LexSession {
        let session_attributes = state
            .and_then(|s| s.session_attributes.as_ref())
            .map(|attributes| {
                attributes
                    .iter()
                    .filter(|(k, _)| !BRIDGE_KEYS.contains(&k.as_str()))
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect()
            })
            .unwrap_or_default();
        let active_contexts = state
            .and_then(|s| s.active_contexts.as_ref())
            .map(|contexts| contexts.iter().filter_map(Context::from_lex).collect())
            .unwrap_or_default();
        LexSession {
            lex: 1,
            session_attributes,
            active_contexts,
            saved_at: now,
        }
    }

    pub fn to_stored(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|_| unreachable!("string maps serialise"))
    }

    /// The attributes to send: the remembered ones with `bridge`'s over them.
    pub fn attributes_to_send(
        &self,
        bridge: &BTreeMap<String, String>,
    ) -> BTreeMap<String, String> {
        let mut out: BTreeMap<String, String> = self
            .session_attributes
            .iter()
            .filter(|(k, _)| !BRIDGE_KEYS.contains(&k.as_str()))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        out.extend(bridge.iter().map(|(k, v)| (k.clone(), v.clone())));
        out
    }

    /// The contexts still alive at `now`, with the seconds they have left
    /// (a context with less than Lex's minimum of 5 left has expired).
    pub fn contexts_to_send(&self, now: i64) -> Vec<ActiveContext> {
        let elapsed = (now - self.saved_at).max(0) / 1000;
        self.active_contexts
            .iter()
            .filter_map(|c| {
                let left = i64::from(c.time_to_live_in_seconds) - elapsed;
                if left < MIN_CONTEXT_SECONDS || c.turns_to_live < 1 {
                    return None;
                }
                c.to_lex(left as i32)
            })
            .collect()
    }
}

impl Context {
    fn from_lex(c: &ActiveContext) -> Option<Context> {
        let ttl = c.time_to_live.as_ref()?;
        Some(Context {
            name: c.name.clone(),
            time_to_live_in_seconds: ttl.time_to_live_in_seconds,
            turns_to_live: ttl.turns_to_live,
            attributes: c
                .context_attributes
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        })
    }

    fn to_lex(&self, seconds_left: i32) -> Option<ActiveContext> {
        let ttl = ActiveContextTimeToLive::builder()
            .time_to_live_in_seconds(seconds_left)
            .turns_to_live(self.turns_to_live)
            .build()
            .ok()?;
        ActiveContext::builder()
            .name(&self.name)
            .time_to_live(ttl)
            .set_context_attributes(Some(
                self.attributes
                    .iter()
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect(),
            ))
            .build()
            .ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lex_state(attributes: &[(&str, &str)], contexts: Vec<ActiveContext>) -> SessionState {
        SessionState::builder()
            .set_session_attributes(Some(
                attributes
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
            ))
            .set_active_contexts(Some(contexts))
            .build()
    }

    fn context(name: &str, seconds: i32, turns: i32) -> ActiveContext {
        Context {
            name: name.into(),
            time_to_live_in_seconds: seconds,
            turns_to_live: turns,
            attributes: BTreeMap::from([("k".to_string(), "v".to_string())]),
        }
        .to_lex(seconds)
        .unwrap()
    }

    #[test]
    fn the_bridges_keys_are_never_remembered_and_always_win() {
        let state = lex_state(
            &[("vin", "V1"), ("account_id", "forged"), ("psid", "other")],
            vec![],
        );
        let kept = LexSession::remembered(Some(&state), 0);
        assert_eq!(
            kept.session_attributes,
            BTreeMap::from([("vin".to_string(), "V1".to_string())])
        );
        let bridge = BTreeMap::from([
            ("psid".to_string(), "U1".to_string()),
            ("linked".to_string(), "false".to_string()),
        ]);
        let sent = kept.attributes_to_send(&bridge);
        assert_eq!(sent.get("psid").map(String::as_str), Some("U1"));
        assert_eq!(sent.get("vin").map(String::as_str), Some("V1"));
        assert!(!sent.contains_key("account_id"));
        let stored = kept.to_stored();
        assert_eq!(LexSession::from_stored(Some(&stored), "s"), kept);
    }

    #[test]
    fn contexts_go_back_with_the_time_they_have_left_and_expire() {
        let state = lex_state(&[], vec![context("ordering", 60, 3)]);
        let kept = LexSession::remembered(Some(&state), 1_000_000);
        let soon = kept.contexts_to_send(1_000_000 + 20_000);
        assert_eq!(soon.len(), 1);
        let ttl = soon[0].time_to_live.as_ref().unwrap();
        assert_eq!((ttl.time_to_live_in_seconds, ttl.turns_to_live), (40, 3));
        assert_eq!(soon[0].context_attributes.get("k").unwrap(), "v");
        assert!(kept.contexts_to_send(1_000_000 + 56_000).is_empty());
    }

    #[test]
    fn another_engines_state_or_none_starts_empty() {
        assert_eq!(LexSession::from_stored(None, "s"), LexSession::default());
        let local = r#"{"intent":null,"slots":{},"phase":{"kind":"idle"},"retries":0}"#;
        assert_eq!(
            LexSession::from_stored(Some(local), "s"),
            LexSession::default()
        );
    }
}
