//! An intent's slots, each from its Slot.json: type, constraint, prompt,
//! sample utterances, defaults and multiple values, with what the engine
//! does not support named as warnings.

use super::unsupported::unsupported_steps;
use super::{read, MAX_SLOTS_PER_INTENT};
use crate::nlu::local::builtins;
use crate::nlu::local::files::FileMap;
use crate::nlu::local::json::Node;
use crate::nlu::local::messages::{groups, groups_at};
use crate::nlu::local::model::{DefaultValue, SlotDef, SlotTypeDef};
use crate::nlu::local::LoadError;
use std::collections::BTreeMap;

pub fn slots(
    files: &FileMap,
    dir: &str,
    intent: &str,
    types: &BTreeMap<String, SlotTypeDef>,
    warnings: &mut Vec<String>,
) -> Result<Vec<SlotDef>, LoadError> {
    let mut out: Vec<SlotDef> = Vec::new();
    for s in files.children_with(&format!("{dir}Slots/"), "Slot.json") {
        let file = format!("{dir}Slots/{s}/Slot.json");
        if out.len() >= MAX_SLOTS_PER_INTENT {
            return Err(LoadError::new(
                file,
                None,
                format!("intent {intent} has more than {MAX_SLOTS_PER_INTENT} slots"),
            ));
        }
        let v = read(files, &file)?;
        let node = Node::root(&v, &file);
        let name = node.req_str("name")?.to_string();
        if out.iter().any(|slot| slot.name == name) {
            return Err(node.error(
                "name",
                format!("intent {intent} has two slots named `{name}`"),
            ));
        }
        let type_name = node.req_str("slotTypeName")?.to_string();
        if !type_name.starts_with("AMAZON.") && !types.contains_key(&type_name) {
            return Err(node.error("slotTypeName", format!("no slot type `{type_name}`")));
        }
        if type_name.starts_with("AMAZON.") && !builtins::recognised(&type_name) {
            warnings.push(format!(
                "{intent}.{name}: {type_name} is not recognised, any text is accepted as its value"
            ));
        }
        unsupported_steps(&v, &format!("{intent}.{name}"), warnings);
        if node.has("subSlotSetting") {
            warnings.push(format!(
                "{intent}.{name}: composite slots (subSlotSetting) are not supported"
            ));
        }
        let elicit = node.req("valueElicitationSetting")?;
        let elicit = elicit.node();
        let required = match elicit.opt_str("slotConstraint")? {
            Some("Required") => true,
            None | Some("Optional") => false,
            Some(other) => {
                return Err(elicit.error("slotConstraint", format!("unknown constraint `{other}`")))
            }
        };
        let mut slot = SlotDef {
            name,
            type_name,
            required,
            max_retries: 2,
            ..SlotDef::default()
        };
        if let Some(prompt) = elicit.get("promptSpecification") {
            let prompt = prompt.node();
            slot.prompt = groups(prompt)?;
            slot.max_retries = prompt.opt_f64("maxRetries")?.unwrap_or(2.0) as u32;
        }
        for u in elicit.items("sampleUtterances")? {
            slot.utterances.push(super::utterance(u.node())?);
        }
        if let Some(capture) = elicit.get("slotCaptureSetting") {
            slot.failure = groups_at(capture.node(), "failureResponse")?;
        }
        if slot.required && slot.prompt.is_empty() {
            return Err(elicit.error("promptSpecification", "a required slot needs a prompt"));
        }
        if elicit.has("waitAndContinueSpecification") {
            warnings.push(format!(
                "{intent}.{}: wait-and-continue is not supported",
                slot.name
            ));
        }
        if let Some(spec) = elicit.get("defaultValueSpecification") {
            let spec = spec.node();
            for d in spec.items("defaultValueList")? {
                let d = d.node();
                let raw = d.req_str("defaultValue")?;
                let parsed = DefaultValue::parse(raw).ok_or_else(|| {
                    d.error(
                        "defaultValue",
                        format!("`{raw}` is not a default value (#context.slot, [attribute], <attribute> or a value)"),
                    )
                })?;
                if let DefaultValue::Request(name) = &parsed {
                    warnings.push(format!(
                        "{intent}.{}: default <{name}> reads a request attribute, which the bridge never sends; it is skipped",
                        slot.name
                    ));
                }
                slot.defaults.push(parsed);
            }
        }
        if let Some(setting) = node.get("multipleValuesSetting") {
            if setting.node().opt_bool("allowMultipleValues")? == Some(true) {
                if slot.type_name.starts_with("AMAZON.") {
                    return Err(setting.node().error(
                        "allowMultipleValues",
                        format!(
                            "only slots of a custom slot type can take multiple values, not {}",
                            slot.type_name
                        ),
                    ));
                }
                slot.multiple = true;
            }
        }
        out.push(slot);
    }
    Ok(out)
}
