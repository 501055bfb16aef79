//! The bot as the engine sees it once the export has been read.

use super::messages::MessageGroup;
use std::collections::BTreeMap;

#[derive(Debug, Clone)]
pub struct BotDef {
    pub name: String,
    pub locale: String,
    /// `nluConfidenceThreshold`: below it the input goes to `FallbackIntent`.
    pub threshold: f64,
    pub intents: Vec<IntentDef>,
    pub slot_types: BTreeMap<String, SlotTypeDef>,
}

#[derive(Debug, Clone, Default)]
pub struct IntentDef {
    pub name: String,
    /// `parentIntentSignature: AMAZON.FallbackIntent`.
    pub fallback: bool,
    pub utterances: Vec<String>,
    /// In `slotPriorities` order.
    pub slots: Vec<SlotDef>,
    pub confirmation: Option<ConfirmationDef>,
    pub closing: Vec<MessageGroup>,
    /// Fulfillment `successResponse`.
    pub success: Vec<MessageGroup>,
    /// Fulfillment `failureResponse` (also used when elicitation gives up).
    pub failure: Vec<MessageGroup>,
}

#[derive(Debug, Clone, Default)]
pub struct ConfirmationDef {
    pub prompt: Vec<MessageGroup>,
    pub max_retries: u32,
    pub declination: Vec<MessageGroup>,
    pub failure: Vec<MessageGroup>,
}

#[derive(Debug, Clone, Default)]
pub struct SlotDef {
    pub name: String,
    pub type_name: String,
    pub required: bool,
    pub prompt: Vec<MessageGroup>,
    pub max_retries: u32,
    /// Slot-level sample utterances (answers to the prompt), `{slot}` inside.
    pub utterances: Vec<String>,
    /// `slotCaptureSetting.failureResponse`.
    pub failure: Vec<MessageGroup>,
}

#[derive(Debug, Clone, Default)]
pub struct SlotTypeDef {
    pub name: String,
    pub values: Vec<SlotTypeValue>,
    /// `TOP_RESOLUTION`: answer with the canonical value, drop what is not listed.
    pub top_resolution: bool,
    /// `valueSelectionSetting.regexFilter.pattern`, anchored.
    pub regex: Option<regex::Regex>,
    /// `parentSlotTypeSignature`, e.g. `AMAZON.AlphaNumeric`.
    pub parent: Option<String>,
}

#[derive(Debug, Clone, Default)]
pub struct SlotTypeValue {
    pub value: String,
    pub synonyms: Vec<String>,
}

impl BotDef {
    pub fn intent(&self, name: &str) -> Option<&IntentDef> {
        self.intents.iter().find(|i| i.name == name)
    }

    pub fn fallback(&self) -> Option<&IntentDef> {
        self.intents.iter().find(|i| i.fallback)
    }
}

impl IntentDef {
    pub fn slot(&self, name: &str) -> Option<&SlotDef> {
        self.slots.iter().find(|s| s.name == name)
    }
}
