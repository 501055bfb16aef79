//! The replies of a dialog: the messages rendered for the state, Lex's reply
//! shape, and the replies that end a dialog (fulfilled, with or without a
//! backend, or failed).

use super::contexts::{self, set_contexts};
use super::{reset, DialogState, Turn};
use crate::nlu::local::messages::{self, Context, MessageGroup};
use crate::nlu::local::LocalBot;
use crate::nlu::reply::{DialogAction, IntentState, NluMessage, NluReply};

const FAILED: &str = "Sorry, I couldn't complete that request.";

impl LocalBot {
    /// After the backend answered: its messages (or the closing response when
    /// it sent none) and `Fulfilled`; an error gives the failure response.
    pub fn finish_fulfillment(
        &self,
        state: DialogState,
        outcome: Result<Vec<NluMessage>, String>,
    ) -> (NluReply, DialogState) {
        let Some(intent) = state.intent.as_deref().and_then(|n| self.def.intent(n)) else {
            return self.failed(state, &[]);
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

    pub(super) fn fail(&self, st: DialogState, groups: &[MessageGroup]) -> Turn {
        let (reply, state) = self.failed(st, groups);
        Turn::Reply { reply, state }
    }

    /// The intent's failure response (or a generic one), `Failed`.
    pub(super) fn failed(
        &self,
        st: DialogState,
        groups: &[MessageGroup],
    ) -> (NluReply, DialogState) {
        let mut messages = self.render(groups, &st);
        if messages.is_empty() {
            messages.push(NluMessage::PlainText(FAILED.into()));
        }
        let reply = self.reply(&st, messages, "Failed", "Close", None);
        (reply, reset(st))
    }

    pub(super) fn render(&self, groups: &[MessageGroup], st: &DialogState) -> Vec<NluMessage> {
        let ctx = Context {
            slots: &st.slots,
            attributes: &st.session_attributes,
        };
        messages::render(groups, st.turn, &ctx)
    }

    pub(super) fn reply(
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
            active_contexts: contexts::shown(st),
            request_id: None,
        }
    }
}
