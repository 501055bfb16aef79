//! The Lex dialog, as a pure function of the stored state and one utterance:
//! elicit required slots in priority order (with retries), confirm, then
//! fulfil and close. State names follow Lex (`ElicitSlot`, `ConfirmIntent`,
//! `Close`, `InProgress`, `ReadyForFulfillment`, `Fulfilled`, `Failed`).

use super::builtins::{self, Today};
use super::messages::{self, Context, MessageGroup};
use super::model::{DefaultValue, IntentDef};
use super::slots::{self, Slots};
use super::LocalBot;
use crate::nlu::reply::{
    ActiveContext, DialogAction, IntentState, Interpretation, NluMessage, NluReply,
};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Stored between turns (as JSON in the conversation row).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DialogState {
    pub intent: Option<String>,
    pub slots: Slots,
    pub phase: Phase,
    /// Failed attempts at the current prompt.
    pub retries: u32,
    /// `None`, `Confirmed` or `Denied`.
    pub confirmation_state: String,
    /// Turn counter; picks message variations deterministically.
    pub turn: u64,
    pub interpretations: Vec<Interpretation>,
    pub session_attributes: BTreeMap<String, String>,
    /// Contexts set by fulfilled intents' `outputContexts`, until their
    /// turns or seconds run out.
    #[serde(default)]
    pub contexts: Vec<StoredContext>,
    /// When the current turn began (epoch ms): contexts set in it start there.
    #[serde(default)]
    pub at_ms: i64,
}

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
}

/// When a turn happens: the day (for dates) and the instant (for the
/// lifetimes of contexts).
#[derive(Debug, Clone, Copy)]
pub struct Now {
    pub today: Today,
    pub epoch_ms: i64,
}

impl Now {
    pub fn system() -> Now {
        let epoch_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as i64)
            .unwrap_or(0);
        Now {
            today: Today::now(),
            epoch_ms,
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Phase {
    #[default]
    Idle,
    ElicitSlot {
        slot: String,
    },
    Confirm,
    /// Waiting for `finish_fulfillment`.
    Fulfilling,
}

/// What the fulfillment backend is asked to do.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FulfillmentRequest {
    pub intent: String,
    pub slots: Slots,
    pub confirmation_state: String,
    pub session_attributes: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Turn {
    Reply {
        reply: NluReply,
        state: DialogState,
    },
    Fulfill {
        request: FulfillmentRequest,
        state: DialogState,
    },
}

const NOT_UNDERSTOOD: &str = "Sorry, I didn't understand that. Could you say it another way?";
const FAILED: &str = "Sorry, I couldn't complete that request.";

impl LocalBot {
    pub fn turn(
        &self,
        state: Option<DialogState>,
        text: &str,
        session_attributes: &BTreeMap<String, String>,
    ) -> Turn {
        self.turn_at(state, text, session_attributes, Now::system())
    }

    pub fn turn_at(
        &self,
        state: Option<DialogState>,
        text: &str,
        session_attributes: &BTreeMap<String, String>,
        now: Now,
    ) -> Turn {
        let today = now.today;
        let mut st = state.unwrap_or_default();
        st.turn += 1;
        st.at_ms = now.epoch_ms;
        st.session_attributes = session_attributes.clone();
        // Contexts whose turns or time ran out are gone; the others are
        // active for this turn, which uses up one of their turns.
        st.contexts
            .retain(|c| c.turns_left > 0 && c.ms_left(now.epoch_ms) > 0);
        for c in &mut st.contexts {
            c.turns_left -= 1;
        }
        let active = st.intent.as_deref().and_then(|n| self.def.intent(n));
        match (st.phase.clone(), active) {
            (Phase::ElicitSlot { slot }, Some(intent)) => {
                self.on_slot_answer(st, intent, &slot, text, today)
            }
            (Phase::Confirm, Some(intent)) => self.on_confirmation(st, intent, text),
            _ => self.start(st, text, today),
        }
    }

    /// The names of the contexts active in this turn.
    fn active(st: &DialogState) -> Vec<&str> {
        st.contexts.iter().map(|c| c.name.as_str()).collect()
    }

    fn start(&self, mut st: DialogState, text: &str, today: Today) -> Turn {
        let interps = self.interpret_in(text, today, &Self::active(&st));
        st.interpretations = interps.iter().map(|i| i.interpretation.clone()).collect();
        let top = interps.first();
        let intent = top
            .and_then(|t| self.def.intent(&t.interpretation.intent))
            .filter(|i| {
                !i.fallback && top.is_some_and(|t| t.interpretation.nlu_confidence.is_some())
            });
        let Some(intent) = intent else {
            return self.fallback(st);
        };
        st.intent = Some(intent.name.clone());
        st.slots = top.map(|t| t.slots.clone()).unwrap_or_default();
        st.confirmation_state = "None".into();
        st.retries = 0;
        self.advance(st, intent, today)
    }

    fn fallback(&self, st: DialogState) -> Turn {
        let def = self.def.fallback();
        let groups = def
            .map(|f| {
                if f.closing.is_empty() {
                    &f.success
                } else {
                    &f.closing
                }
            })
            .cloned()
            .unwrap_or_default();
        let mut messages = self.render(&groups, &st);
        if messages.is_empty() {
            messages.push(NluMessage::PlainText(NOT_UNDERSTOOD.into()));
        }
        let name = self.fallback_name().to_string();
        let mut st = st;
        if let Some(def) = def {
            st.slots = Slots::new();
            set_contexts(&mut st, def);
        }
        let mut shown = st.clone();
        shown.intent = Some(name);
        shown.slots = Slots::new();
        shown.confirmation_state = "None".into();
        let reply = self.reply(&shown, messages, "Fulfilled", "Close", None);
        Turn::Reply {
            reply,
            state: reset(st),
        }
    }

    fn on_slot_answer(
        &self,
        mut st: DialogState,
        intent: &IntentDef,
        slot: &str,
        text: &str,
        today: Today,
    ) -> Turn {
        let Some(def) = intent.slot(slot) else {
            return self.start(st, text, today);
        };
        let tagger = self
            .intent_index(&intent.name)
            .and_then(|i| self.taggers.get(i))
            .and_then(Option::as_ref);
        let ctx = self.ctx();
        let extracted = slots::extract(intent, tagger, &ctx, text, today, false);
        if let Some(value) = slots::answer(def, &extracted, &ctx, text, today) {
            st.slots.insert(slot.to_string(), Some(value));
            for (name, v) in extracted {
                if v.is_some() && matches!(st.slots.get(&name), None | Some(None)) {
                    st.slots.insert(name, v);
                }
            }
            st.retries = 0;
            return self.advance(st, intent, today);
        }
        // A clear request for something else switches intent, as Lex does.
        if let Some(top) = self.interpret_in(text, today, &Self::active(&st)).first() {
            let other = top.interpretation.intent != intent.name
                && top
                    .interpretation
                    .nlu_confidence
                    .is_some_and(|c| c >= self.def.threshold.max(0.8));
            if other {
                return self.start(reset(st), text, today);
            }
        }
        st.retries += 1;
        if st.retries > def.max_retries {
            let groups = if def.failure.is_empty() {
                &intent.failure
            } else {
                &def.failure
            };
            return self.fail(st, groups);
        }
        let messages = self.render(&def.prompt, &st);
        let reply = self.reply(&st, messages, "InProgress", "ElicitSlot", Some(slot));
        Turn::Reply { reply, state: st }
    }

    fn on_confirmation(&self, mut st: DialogState, intent: &IntentDef, text: &str) -> Turn {
        let Some(conf) = intent.confirmation.as_ref() else {
            return self.ready(st, intent);
        };
        match builtins::confirmation(text) {
            Some("Yes") => {
                st.confirmation_state = "Confirmed".into();
                self.ready(st, intent)
            }
            Some(_) => {
                st.confirmation_state = "Denied".into();
                let messages = self.render(&conf.declination, &st);
                let reply = self.reply(&st, messages, "Failed", "Close", None);
                Turn::Reply {
                    reply,
                    state: reset(st),
                }
            }
            None => {
                st.retries += 1;
                if st.retries > conf.max_retries {
                    let groups = if conf.failure.is_empty() {
                        &intent.failure
                    } else {
                        &conf.failure
                    };
                    return self.fail(st, groups);
                }
                let messages = self.render(&conf.prompt, &st);
                let reply = self.reply(&st, messages, "InProgress", "ConfirmIntent", None);
                Turn::Reply { reply, state: st }
            }
        }
    }

    /// Next step once slots changed: elicit, confirm or fulfil. Empty slots
    /// with a default that resolves are filled first, so a required one is
    /// not elicited.
    fn advance(&self, mut st: DialogState, intent: &IntentDef, today: Today) -> Turn {
        self.fill_defaults(&mut st, intent, today);
        let missing = intent
            .slots
            .iter()
            .find(|s| s.required && matches!(st.slots.get(&s.name), None | Some(None)));
        if let Some(slot) = missing {
            st.phase = Phase::ElicitSlot {
                slot: slot.name.clone(),
            };
            let messages = self.render(&slot.prompt, &st);
            let reply = self.reply(&st, messages, "InProgress", "ElicitSlot", Some(&slot.name));
            return Turn::Reply { reply, state: st };
        }
        if let Some(conf) = &intent.confirmation {
            if st.confirmation_state == "None" {
                st.phase = Phase::Confirm;
                let messages = self.render(&conf.prompt, &st);
                let reply = self.reply(&st, messages, "InProgress", "ConfirmIntent", None);
                return Turn::Reply { reply, state: st };
            }
        }
        self.ready(st, intent)
    }

    /// Each empty slot takes the first of its defaults that resolves to a
    /// value of its type: a parameter of an active context, a session
    /// attribute, or a fixed value.
    fn fill_defaults(&self, st: &mut DialogState, intent: &IntentDef, today: Today) {
        let ctx = self.ctx();
        for def in &intent.slots {
            if def.defaults.is_empty() || matches!(st.slots.get(&def.name), Some(Some(_))) {
                continue;
            }
            let found = def.defaults.iter().find_map(|d| {
                let raw = match d {
                    DefaultValue::Context { context, parameter } => st
                        .contexts
                        .iter()
                        .find(|c| c.name == *context)
                        .and_then(|c| c.attributes.get(parameter)),
                    DefaultValue::Session(name) => st.session_attributes.get(name),
                    DefaultValue::Request(_) => None,
                    DefaultValue::Fixed(value) => Some(value),
                }?;
                slots::resolve_default(def, raw, &ctx, today)
            });
            if let Some(value) = found {
                st.slots.insert(def.name.clone(), Some(value));
            }
        }
    }

    fn ready(&self, mut st: DialogState, intent: &IntentDef) -> Turn {
        st.phase = Phase::Fulfilling;
        st.retries = 0;
        let request = FulfillmentRequest {
            intent: intent.name.clone(),
            slots: st.slots.clone(),
            confirmation_state: st.confirmation_state.clone(),
            session_attributes: st.session_attributes.clone(),
        };
        Turn::Fulfill { request, state: st }
    }

    /// After the backend answered: its messages (or the closing response when
    /// it sent none) and `Fulfilled`; an error gives the failure response.
    pub fn finish_fulfillment(
        &self,
        state: DialogState,
        outcome: Result<Vec<NluMessage>, String>,
    ) -> (NluReply, DialogState) {
        let Some(intent) = state.intent.as_deref().and_then(|n| self.def.intent(n)) else {
            let reply = self.reply(
                &state,
                vec![NluMessage::PlainText(FAILED.into())],
                "Failed",
                "Close",
                None,
            );
            return (reply, reset(state));
        };
        match outcome {
            Ok(messages) if !messages.is_empty() => {
                let mut state = state;
                set_contexts(&mut state, intent);
                let reply = self.reply(&state, messages, "Fulfilled", "Close", None);
                (reply, reset(state))
            }
            Ok(_) => self.close_without_backend(state),
            Err(_) => self.failed(state, &intent.failure),
        }
    }

    /// No fulfillment backend: the success and closing responses, `Fulfilled`.
    pub fn close_without_backend(&self, mut state: DialogState) -> (NluReply, DialogState) {
        let intent = state.intent.as_deref().and_then(|n| self.def.intent(n));
        if let Some(intent) = intent {
            set_contexts(&mut state, intent);
        }
        let groups: Vec<MessageGroup> = intent
            .map(|i| i.success.iter().chain(&i.closing).cloned().collect())
            .unwrap_or_default();
        let messages = self.render(&groups, &state);
        let reply = self.reply(&state, messages, "Fulfilled", "Close", None);
        (reply, reset(state))
    }

    fn fail(&self, st: DialogState, groups: &[MessageGroup]) -> Turn {
        let (reply, state) = self.failed(st, groups);
        Turn::Reply { reply, state }
    }

    /// The intent's failure response (or a generic one), `Failed`.
    fn failed(&self, st: DialogState, groups: &[MessageGroup]) -> (NluReply, DialogState) {
        let mut messages = self.render(groups, &st);
        if messages.is_empty() {
            messages.push(NluMessage::PlainText(FAILED.into()));
        }
        let reply = self.reply(&st, messages, "Failed", "Close", None);
        (reply, reset(st))
    }

    fn render(&self, groups: &[MessageGroup], st: &DialogState) -> Vec<NluMessage> {
        let ctx = Context {
            slots: &st.slots,
            attributes: &st.session_attributes,
        };
        messages::render(groups, st.turn, &ctx)
    }

    fn reply(
        &self,
        st: &DialogState,
        messages: Vec<NluMessage>,
        state: &str,
        action: &str,
        slot: Option<&str>,
    ) -> NluReply {
        NluReply {
            messages,
            intent: st.intent.as_ref().map(|name| IntentState {
                name: name.clone(),
                state: Some(state.to_string()),
                confirmation_state: Some(if st.confirmation_state.is_empty() {
                    "None".to_string()
                } else {
                    st.confirmation_state.clone()
                }),
                slots: st.slots.clone(),
            }),
            dialog_action: Some(DialogAction {
                kind: action.to_string(),
                slot_to_elicit: slot.map(str::to_string),
            }),
            interpretations: st.interpretations.clone(),
            session_attributes: st.session_attributes.clone(),
            active_contexts: st
                .contexts
                .iter()
                .filter(|c| c.turns_left > 0 && c.ms_left(st.at_ms) > 0)
                .map(|c| ActiveContext {
                    name: c.name.clone(),
                    time_to_live_in_seconds: c.ms_left(st.at_ms) / 1000,
                    turns_to_live: c.turns_left,
                    context_attributes: c.attributes.clone(),
                })
                .collect(),
            request_id: None,
        }
    }
}

/// Ready for a new intent; the turn counter and the contexts carry on.
fn reset(st: DialogState) -> DialogState {
    DialogState {
        turn: st.turn,
        session_attributes: st.session_attributes,
        contexts: st.contexts,
        at_ms: st.at_ms,
        ..DialogState::default()
    }
}

/// The intent's output contexts become active (replacing any of the same
/// name), carrying its slot values.
fn set_contexts(st: &mut DialogState, intent: &IntentDef) {
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
