//! The contexts of a dialog: kept between turns with their lifetimes, gone
//! when their turns or seconds run out, set by an intent's output contexts,
//! and shown in a reply as Lex's active contexts.

use super::DialogState;
use crate::nlu::local::model::IntentDef;
use crate::nlu::reply::ActiveContext;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// An active context as kept between turns.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct StoredContext {
    pub name: String,
    /// When it was set (epoch ms).
    pub set_at_ms: i64,
    pub time_to_live_in_seconds: i64,
    /// Turns it still lives for after the current one.
    pub turns_left: u32,
    /// The slot values of the intent that set it (interpreted values).
    pub attributes: BTreeMap<String, String>,
}

impl StoredContext {
    fn ms_left(&self, now_ms: i64) -> i64 {
        self.set_at_ms + self.time_to_live_in_seconds * 1000 - now_ms
    }

    /// Whether it has turns and time left at `now_ms`.
    fn alive(&self, now_ms: i64) -> bool {
        self.turns_left > 0 && self.ms_left(now_ms) > 0
    }
}

/// At the start of a turn: contexts whose turns or time ran out are gone;
/// the others are active for this turn, which uses up one of their turns.
pub fn expire(st: &mut DialogState, now_ms: i64) {
    st.contexts.retain(|c| c.alive(now_ms));
    for c in &mut st.contexts {
        c.turns_left -= 1;
    }
}

/// The names of the contexts active in this turn.
pub fn active(st: &DialogState) -> Vec<&str> {
    st.contexts.iter().map(|c| c.name.as_str()).collect()
}

/// The contexts a reply shows as active: those with turns and time left
/// after the current turn.
pub fn shown(st: &DialogState) -> Vec<ActiveContext> {
    st.contexts
        .iter()
        .filter(|c| c.alive(st.at_ms))
        .map(|c| ActiveContext {
            name: c.name.clone(),
            time_to_live_in_seconds: c.ms_left(st.at_ms) / 1000,
            turns_to_live: c.turns_left,
            context_attributes: c.attributes.clone(),
        })
        .collect()
}

/// The intent's output contexts become active (replacing any of the same
/// name), carrying its slot values.
pub fn set_contexts(st: &mut DialogState, intent: &IntentDef) {
    if intent.output_contexts.is_empty() {
        return;
    }
    let attributes: BTreeMap<String, String> = st
        .slots
        .iter()
        .filter_map(|(k, v)| v.as_ref().map(|v| (k.clone(), v.interpreted_value.clone())))
        .collect();
    for out in &intent.output_contexts {
        st.contexts.retain(|c| c.name != out.name);
        st.contexts.push(StoredContext {
            name: out.name.clone(),
            set_at_ms: st.at_ms,
            time_to_live_in_seconds: out.time_to_live_in_seconds,
            turns_left: out.turns_to_live,
            attributes: attributes.clone(),
        });
    }
}
