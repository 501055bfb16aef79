//! The Lex dialog, as a pure function of the stored state and one utterance:
//! elicit required slots in priority order (with retries), confirm, then
//! fulfil and close. State names follow Lex (`ElicitSlot`, `ConfirmIntent`,
//! `Close`, `InProgress`, `ReadyForFulfillment`, `Fulfilled`, `Failed`).
//! The state, the turn and its steps are here; the contexts kept between
//! turns in `contexts`; the replies and the endings of a dialog in `replies`.

mod contexts;
mod replies;

pub use contexts::StoredContext;

use super::builtins::{self, Today};
use super::model::{DefaultValue, IntentDef};
use super::slots::{self, Slots};
use super::LocalBot;
use crate::nlu::reply::{Interpretation, NluMessage, NluReply};
use contexts::set_contexts;
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
        contexts::expire(&mut st, now.epoch_ms);
        let active = st.intent.as_deref().and_then(|n| self.def.intent(n));
        match (st.phase.clone(), active) {
            (Phase::ElicitSlot { slot }, Some(intent)) => {
                self.on_slot_answer(st, intent, &slot, text, today)
            }
            (Phase::Confirm, Some(intent)) => self.on_confirmation(st, intent, text),
            _ => self.start(st, text, today),
        }
    }

    /// An attachment turn (see `nlu::attachment`): the first of
    /// `utterances` that an intent lists word for word among its samples
    /// starts that intent, whatever the dialog was doing (an intent whose
    /// input contexts are not all active is passed over). `None` when no
    /// intent routes it: the bot has nothing to say and the state stays.
    pub fn attachment_turn_at(
        &self,
        state: Option<DialogState>,
        utterances: &[&str],
        session_attributes: &BTreeMap<String, String>,
        now: Now,
    ) -> Option<Turn> {
        let mut st = state.unwrap_or_default();
        st.at_ms = now.epoch_ms;
        contexts::expire(&mut st, now.epoch_ms);
        let active = contexts::active(&st);
        let same = |a: &str, b: &str| {
            let words = |s: &str| {
                s.split_whitespace()
                    .map(|w| w.trim_end_matches(['.', '!', '?']).to_lowercase())
                    .collect::<Vec<_>>()
            };
            words(a) == words(b)
        };
        let intent = utterances.iter().find_map(|wanted| {
            self.def.intents.iter().find(|i| {
                !i.fallback
                    && i.input_contexts
                        .iter()
                        .all(|c| active.contains(&c.as_str()))
                    && i.utterances.iter().any(|u| same(u, wanted))
            })
        })?;
        st = reset(st);
        st.turn += 1;
        st.session_attributes = session_attributes.clone();
        st.intent = Some(intent.name.clone());
        st.interpretations = vec![Interpretation {
            intent: intent.name.clone(),
            nlu_confidence: Some(1.0),
        }];
        st.confirmation_state = "None".into();
        Some(self.advance(st, intent, now.today))
    }

    fn start(&self, mut st: DialogState, text: &str, today: Today) -> Turn {
        let interps = self.interpret_in(text, today, &contexts::active(&st));
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
        let scanned = slots::Scanned::new(ctx.gaz, text);
        let extracted = slots::extract(intent, tagger, &ctx, text, &scanned, today, false);
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
        if let Some(top) = self
            .interpret_in(text, today, &contexts::active(&st))
            .first()
        {
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
