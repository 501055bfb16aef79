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
    /// `inputContexts`: the intent is a candidate only while all are active.
    pub input_contexts: Vec<String>,
    /// `outputContexts`: set when the intent is fulfilled.
    pub output_contexts: Vec<OutputContext>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct OutputContext {
    pub name: String,
    pub time_to_live_in_seconds: i64,
    pub turns_to_live: u32,
}

/// One entry of a slot's `defaultValueSpecification.defaultValueList`.
#[derive(Debug, Clone, PartialEq)]
pub enum DefaultValue {
    /// `#context.parameter`: a slot value an active context carries.
    Context { context: String, parameter: String },
    /// `[attribute]`: a session attribute.
    Session(String),
    /// `<attribute>`: a request attribute (the bridge sends none).
    Request(String),
    /// Anything else: the value itself.
    Fixed(String),
}

impl DefaultValue {
    pub fn parse(spec: &str) -> Option<DefaultValue> {
        let spec = spec.trim();
        let inner = |open: char, close: char| {
            spec.strip_prefix(open)
                .and_then(|s| s.strip_suffix(close))
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_string)
        };
        if let Some(rest) = spec.strip_prefix('#') {
            let (context, parameter) = rest.split_once('.')?;
            let (context, parameter) = (context.trim(), parameter.trim());
            if context.is_empty() || parameter.is_empty() {
                return None;
            }
            return Some(DefaultValue::Context {
                context: context.to_string(),
                parameter: parameter.to_string(),
            });
        }
        if spec.starts_with('[') {
            return inner('[', ']').map(DefaultValue::Session);
        }
        if spec.starts_with('<') {
            return inner('<', '>').map(DefaultValue::Request);
        }
        (!spec.is_empty()).then(|| DefaultValue::Fixed(spec.to_string()))
    }
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
    /// `defaultValueSpecification.defaultValueList`, in order.
    pub defaults: Vec<DefaultValue>,
    /// `multipleValuesSetting.allowMultipleValues`.
    pub multiple: bool,
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
