//! The shape every NLU engine answers in. It mirrors Amazon Lex V2's
//! `RecognizeText` response so that the Lex client and the embedded engine
//! are interchangeable behind the `Nlu` trait.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// One turn's answer: what to say, and where the dialog stands.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct NluReply {
    /// Messages to relay to the person, in order.
    pub messages: Vec<NluMessage>,
    /// The active intent after this turn (Lex `sessionState.intent`).
    pub intent: Option<IntentState>,
    /// What the dialog does next (Lex `sessionState.dialogAction`).
    pub dialog_action: Option<DialogAction>,
    /// Ranked interpretations, best first, at most 5 (Lex `interpretations`).
    pub interpretations: Vec<Interpretation>,
    /// Session attributes after this turn (Lex `sessionState.sessionAttributes`).
    pub session_attributes: BTreeMap<String, String>,
    /// Contexts active after this turn (Lex `sessionState.activeContexts`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub active_contexts: Vec<ActiveContext>,
    /// Lex's request id, when the answer came from Lex (for logs).
    pub request_id: Option<String>,
}

/// A message as Lex V2 returns it, by content type.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "contentType", content = "content")]
pub enum NluMessage {
    PlainText(String),
    #[serde(rename = "SSML")]
    Ssml(String),
    /// Raw custom payload text (often Messenger JSON).
    CustomPayload(String),
    ImageResponseCard(ImageResponseCard),
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ImageResponseCard {
    pub title: String,
    pub subtitle: Option<String>,
    pub image_url: Option<String>,
    pub buttons: Vec<CardButton>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CardButton {
    pub text: String,
    pub value: String,
}

/// Lex `sessionState.intent`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct IntentState {
    pub name: String,
    /// Lex intent state: `InProgress`, `ReadyForFulfillment`, `Fulfilled`,
    /// `Failed`, `FulfillmentInProgress`, `Waiting`.
    pub state: Option<String>,
    /// `None`, `Confirmed` or `Denied`.
    pub confirmation_state: Option<String>,
    /// Slot name -> value; `None` for a slot not filled yet (Lex sends null).
    pub slots: BTreeMap<String, Option<SlotValue>>,
}

/// Lex `Slot.value`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SlotValue {
    /// What the person said.
    pub original_value: String,
    /// The value Lex settled on (canonical value for `TOP_RESOLUTION`).
    pub interpreted_value: String,
    /// Candidate resolutions.
    pub resolved_values: Vec<String>,
    /// A multi-valued slot's values, one per item the person listed (Lex
    /// `Slot.values` of a slot whose `shape` is `List`); empty for a
    /// single value.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub values: Vec<SlotValue>,
}

/// Lex `ActiveContext`: a context set by a fulfilled intent, with what is
/// left of its life and the slot values it carries.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ActiveContext {
    pub name: String,
    pub time_to_live_in_seconds: i64,
    pub turns_to_live: u32,
    pub context_attributes: BTreeMap<String, String>,
}

/// Lex `sessionState.dialogAction`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DialogAction {
    /// `ElicitSlot`, `ConfirmIntent`, `ElicitIntent`, `Close`, `Delegate`.
    pub kind: String,
    pub slot_to_elicit: Option<String>,
}

/// Lex `interpretations[]`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Interpretation {
    pub intent: String,
    /// `None` for `FallbackIntent`, as Lex does.
    pub nlu_confidence: Option<f64>,
}
