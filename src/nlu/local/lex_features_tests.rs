//! Lex features a bot author expects: slot default values, multi-valued
//! slots, input and output contexts, and the built-in types that need a
//! list. Each on a small bot written in its own file below
//! `lex_features_tests/`; what they share is here: the bot written as JSON
//! values, a chat that keeps its state as the bridge does, and readers of
//! the reply.

mod builder_steps;
mod contexts;
mod defaults;
mod listed_types;
mod multi_valued;

use super::dialog::{DialogState, Now, Turn};
use super::{FileMap, LoadError, LocalBot, Today};
use crate::nlu::reply::{NluReply, SlotValue};
use serde_json::{json, Value};
use std::collections::BTreeMap;

/// A bot from intents (name -> Intent.json, with its slots' Slot.json)
/// and slot types (name -> SlotType.json), written as JSON values.
fn bot(intents: &[(&str, Value, Vec<Value>)], types: &[Value]) -> Result<LocalBot, LoadError> {
    let locale = "Shop/BotLocales/en_US/";
    let mut files: Vec<(String, String)> = vec![
        (
            "Manifest.json".into(),
            r#"{"metadata": {"resourceType": "BOT"}}"#.into(),
        ),
        ("Shop/Bot.json".into(), r#"{"name": "Shop"}"#.into()),
        (
            format!("{locale}BotLocale.json"),
            r#"{"nluConfidenceThreshold": 0.4}"#.into(),
        ),
        (
            format!("{locale}Intents/FallbackIntent/Intent.json"),
            json!({"name": "FallbackIntent", "parentIntentSignature": "AMAZON.FallbackIntent",
                   "intentClosingSetting": {"closingResponse": {"messageGroupsList": [
                       {"message": {"plainTextMessage": {"value": "Sorry?"}}}]}}})
            .to_string(),
        ),
    ];
    for (name, intent, slots) in intents {
        files.push((
            format!("{locale}Intents/{name}/Intent.json"),
            intent.to_string(),
        ));
        for slot in slots {
            let slot_name = slot["name"].as_str().expect("slot name");
            files.push((
                format!("{locale}Intents/{name}/Slots/{slot_name}/Slot.json"),
                slot.to_string(),
            ));
        }
    }
    for t in types {
        let type_name = t["name"].as_str().expect("type name");
        files.push((
            format!("{locale}SlotTypes/{type_name}/SlotType.json"),
            t.to_string(),
        ));
    }
    LocalBot::from_files(&FileMap::from_entries(
        files.iter().map(|(p, t)| (p.as_str(), t.as_str())),
    ))
}

fn utterances(list: &[&str]) -> Value {
    Value::Array(list.iter().map(|u| json!({"utterance": u})).collect())
}

fn prompt(text: &str) -> Value {
    json!({"maxRetries": 1, "messageGroupsList": [
        {"message": {"plainTextMessage": {"value": text}}}]})
}

fn closing(text: &str) -> Value {
    json!({"closingResponse": {"messageGroupsList": [
        {"message": {"plainTextMessage": {"value": text}}}]}})
}

fn slot(name: &str, type_name: &str, required: bool, extra: Value) -> Value {
    let mut s = json!({
        "name": name,
        "slotTypeName": type_name,
        "valueElicitationSetting": {
            "slotConstraint": if required { "Required" } else { "Optional" },
            "promptSpecification": prompt(&format!("Which {name}?")),
        }
    });
    if let (Some(s), Some(extra)) = (s.as_object_mut(), extra.as_object()) {
        for (k, v) in extra {
            if k == "valueElicitationSetting" {
                let elicit = s["valueElicitationSetting"]
                    .as_object_mut()
                    .expect("object");
                for (k2, v2) in v.as_object().expect("object") {
                    elicit.insert(k2.clone(), v2.clone());
                }
            } else {
                s.insert(k.clone(), v.clone());
            }
        }
    }
    s
}

fn values_type(name: &str, values: &[&str], strategy: &str) -> Value {
    json!({
        "name": name,
        "slotTypeValues": values.iter().map(|v| json!({"sampleValue": {"value": v}})).collect::<Vec<_>>(),
        "valueSelectionSetting": {"resolutionStrategy": strategy},
    })
}

const T0: i64 = 1_800_000_000_000;

/// A conversation; the state goes through JSON between turns as it does
/// in the conversation row, and a ready intent is closed without a backend.
struct Chat<'a> {
    bot: &'a LocalBot,
    state: Option<DialogState>,
    attrs: BTreeMap<String, String>,
    now_ms: i64,
}

impl<'a> Chat<'a> {
    fn new(bot: &'a LocalBot) -> Self {
        Chat {
            bot,
            state: None,
            attrs: BTreeMap::new(),
            now_ms: T0,
        }
    }

    fn say(&mut self, text: &str) -> NluReply {
        let stored = self.state.take().map(|s| {
            let json = serde_json::to_string(&s).expect("state serialises");
            serde_json::from_str::<DialogState>(&json).expect("state deserialises")
        });
        let now = Now {
            today: Today::from_ymd(2026, 11, 23),
            epoch_ms: self.now_ms,
        };
        let (reply, state) = match self.bot.turn_at(stored, text, &self.attrs, now) {
            Turn::Reply { reply, state } => (reply, state),
            Turn::Fulfill { state, .. } => self.bot.close_without_backend(state),
        };
        self.state = Some(state);
        // Each turn comes a second after the one before.
        self.now_ms += 1000;
        reply
    }
}

fn intent_of(r: &NluReply) -> &str {
    r.intent.as_ref().map(|i| i.name.as_str()).unwrap_or("")
}

fn elicits(r: &NluReply) -> Option<&str> {
    r.dialog_action
        .as_ref()
        .filter(|a| a.kind == "ElicitSlot")
        .and_then(|a| a.slot_to_elicit.as_deref())
}

fn value<'r>(r: &'r NluReply, slot: &str) -> Option<&'r SlotValue> {
    r.intent.as_ref()?.slots.get(slot)?.as_ref()
}

fn interpreted<'r>(r: &'r NluReply, slot: &str) -> Option<&'r str> {
    value(r, slot).map(|v| v.interpreted_value.as_str())
}
