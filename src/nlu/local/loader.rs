//! Reads a Lex V2 export (as a [`FileMap`]) into a [`BotDef`], failing with
//! the file and field named, and listing what the engine does not support.
//! The bot, its slot types and intents are read here; an intent's contexts
//! in `contexts`, its slots in `slots`, and the conversation-builder steps
//! the engine does not run in `unsupported`.

mod contexts;
mod slots;
mod unsupported;

use super::expand::{self, Piece};
use super::files::FileMap;
use super::json::{self, Node};
use super::messages::{groups, groups_at};
use super::model::*;
use super::LoadError;
use contexts::{input_contexts, output_contexts};
use slots::slots;
use std::collections::{BTreeMap, HashMap, HashSet};
use unsupported::unsupported_steps;

pub struct Loaded {
    pub bot: BotDef,
    pub warnings: Vec<String>,
}

pub fn load(files: &FileMap) -> Result<Loaded, LoadError> {
    let mut warnings = Vec::new();
    let manifest = files
        .paths()
        .filter(|p| p.ends_with("Manifest.json"))
        .min_by_key(|p| p.len())
        .ok_or_else(|| LoadError::new("Manifest.json", None, "not found in the export"))?
        .to_string();
    let root = manifest.trim_end_matches("Manifest.json").to_string();
    check_manifest(files, &manifest)?;

    let bot_dirs = files.children_with(&root, "Bot.json");
    let bot_name = bot_dirs
        .first()
        .ok_or_else(|| LoadError::new(format!("{root}<Bot>/Bot.json"), None, "not found"))?;
    let bot_dir = format!("{root}{bot_name}/");
    let bot_file = format!("{bot_dir}Bot.json");
    let bot_json = read(files, &bot_file)?;
    let name = Node::root(&bot_json, &bot_file)
        .req_str("name")?
        .to_string();

    let locales = files.children_with(&format!("{bot_dir}BotLocales/"), "BotLocale.json");
    let locale = locales
        .iter()
        .find(|l| l.as_str() == "en_US")
        .or_else(|| locales.first())
        .ok_or_else(|| {
            LoadError::new(
                format!("{bot_dir}BotLocales/<locale>/BotLocale.json"),
                None,
                "not found",
            )
        })?
        .clone();
    if locales.len() > 1 {
        warnings.push(format!(
            "only locale {locale} is served; others are ignored"
        ));
    }
    let locale_dir = format!("{bot_dir}BotLocales/{locale}/");
    let locale_file = format!("{locale_dir}BotLocale.json");
    let locale_json = read(files, &locale_file)?;
    let threshold = Node::root(&locale_json, &locale_file)
        .opt_f64("nluConfidenceThreshold")?
        .unwrap_or(0.4);
    if !(0.0..=1.0).contains(&threshold) {
        return Err(LoadError::new(
            locale_file,
            Some("nluConfidenceThreshold".into()),
            "must be between 0 and 1",
        ));
    }

    let mut slot_types = BTreeMap::new();
    let mut type_files: HashMap<String, String> = HashMap::new();
    for t in files.children_with(&format!("{locale_dir}SlotTypes/"), "SlotType.json") {
        let file = format!("{locale_dir}SlotTypes/{t}/SlotType.json");
        if slot_types.len() >= MAX_SLOT_TYPES {
            return Err(LoadError::new(
                file,
                None,
                format!("the bot has more than {MAX_SLOT_TYPES} slot types"),
            ));
        }
        let def = slot_type(&read(files, &file)?, &file, &mut warnings)?;
        if let Some(first) = type_files.get(&def.name) {
            let why = format!("slot type `{}` is also defined in {first}", def.name);
            return Err(LoadError::new(file, Some("name".into()), why));
        }
        type_files.insert(def.name.clone(), file);
        slot_types.insert(def.name.clone(), def);
    }
    check_parents(&slot_types, &locale_dir)?;

    let mut intents: Vec<IntentDef> = Vec::new();
    let mut intent_files: HashMap<String, String> = HashMap::new();
    for i in files.children_with(&format!("{locale_dir}Intents/"), "Intent.json") {
        let dir = format!("{locale_dir}Intents/{i}/");
        let def = intent(files, &dir, &slot_types, &mut warnings)?;
        let file = format!("{dir}Intent.json");
        if let Some(first) = intent_files.get(&def.name) {
            let why = format!("intent `{}` is also defined in {first}", def.name);
            return Err(LoadError::new(file, Some("name".into()), why));
        }
        intent_files.insert(def.name.clone(), file);
        intents.push(def);
    }
    if intents.iter().all(|i| i.utterances.is_empty()) {
        return Err(LoadError::new(
            format!("{locale_dir}Intents"),
            None,
            "no intent has sample utterances",
        ));
    }
    warnings.sort();
    warnings.dedup();
    Ok(Loaded {
        bot: BotDef {
            name,
            locale,
            threshold,
            intents,
            slot_types,
        },
        warnings,
    })
}

fn read(files: &FileMap, path: &str) -> Result<serde_json::Value, LoadError> {
    let text = files
        .get(path)
        .ok_or_else(|| LoadError::new(path, None, "not found in the export"))?;
    json::parse(path, text)
}

fn check_manifest(files: &FileMap, path: &str) -> Result<(), LoadError> {
    let v = read(files, path)?;
    let node = Node::root(&v, path);
    let meta = node
        .get("metadata")
        .or_else(|| node.get("metaData"))
        .ok_or_else(|| node.error("metadata", "missing (metadata or metaData)"))?;
    let meta = meta.node();
    // The console writes `Bot`; import-package tools write `BOT` (and
    // `BOT_LOCALE`, as the Lex model API spells the kinds).
    if let Some(kind) = meta.opt_str("resourceType")? {
        let plain = kind.replace('_', "").to_ascii_lowercase();
        if plain != "bot" && plain != "botlocale" {
            return Err(meta.error("resourceType", format!("`{kind}` exports are not bots")));
        }
    }
    Ok(())
}

/// A slot type's parent chain must end (in a built-in type or none): a
/// loop would make every use of the type recurse forever. Each type is
/// walked once (a chain stops at a type already found to end), so a long
/// chain costs its length, not its square.
fn check_parents(types: &BTreeMap<String, SlotTypeDef>, locale_dir: &str) -> Result<(), LoadError> {
    let mut ends: HashSet<&str> = HashSet::new();
    for start in types.values() {
        let mut chain = vec![start.name.as_str()];
        let mut on_chain: HashSet<&str> = HashSet::from([start.name.as_str()]);
        let mut next = start.parent.as_deref();
        while let Some(parent) = next {
            if ends.contains(parent) {
                break;
            }
            chain.push(parent);
            if !on_chain.insert(parent) {
                return Err(LoadError::new(
                    format!("{locale_dir}SlotTypes/{}/SlotType.json", start.name),
                    Some("parentSlotTypeSignature".into()),
                    format!("the parent chain loops: {}", chain.join(" -> ")),
                ));
            }
            next = types.get(parent).and_then(|t| t.parent.as_deref());
        }
        ends.extend(chain);
    }
    Ok(())
}

fn slot_type(
    v: &serde_json::Value,
    file: &str,
    warnings: &mut Vec<String>,
) -> Result<SlotTypeDef, LoadError> {
    let node = Node::root(v, file);
    let name = node.req_str("name")?.to_string();
    let mut values = Vec::new();
    for item in node.items("slotTypeValues")? {
        let item = item.node();
        let value = value_text(item.req("sampleValue")?.node(), "value")?;
        let mut synonyms = Vec::new();
        for s in item.items("synonyms")? {
            synonyms.push(value_text(s.node(), "value")?);
        }
        values.push(SlotTypeValue { value, synonyms });
    }
    let mut top_resolution = false;
    let mut regex = None;
    if let Some(sel) = node.get("valueSelectionSetting") {
        let sel = sel.node();
        top_resolution = match sel.opt_str("resolutionStrategy")? {
            None | Some("ORIGINAL_VALUE") => false,
            Some("TOP_RESOLUTION") => true,
            Some(other) => {
                return Err(sel.error("resolutionStrategy", format!("unknown strategy `{other}`")))
            }
        };
        if let Some(filter) = sel.get("regexFilter") {
            let filter = filter.node();
            let pattern = filter.req_str("pattern")?;
            let compiled = regex::Regex::new(&format!("^(?:{pattern})$"))
                .map_err(|e| filter.error("pattern", e.to_string()))?;
            regex = Some(compiled);
        }
        if sel.has("advancedRecognitionSetting") {
            warnings.push(format!(
                "{name}: advancedRecognitionSetting is not supported"
            ));
        }
    }
    if node.has("compositeSlotTypeSetting") || node.has("externalSourceSetting") {
        warnings.push(format!(
            "{name}: composite and external slot types are not supported"
        ));
    }
    Ok(SlotTypeDef {
        name,
        values,
        top_resolution,
        regex,
        parent: node.opt_str("parentSlotTypeSignature")?.map(str::to_string),
    })
}

fn intent(
    files: &FileMap,
    dir: &str,
    types: &BTreeMap<String, SlotTypeDef>,
    warnings: &mut Vec<String>,
) -> Result<IntentDef, LoadError> {
    let file = format!("{dir}Intent.json");
    let v = read(files, &file)?;
    let node = Node::root(&v, &file);
    let name = node.req_str("name")?.to_string();
    let fallback = node.opt_str("parentIntentSignature")? == Some("AMAZON.FallbackIntent");
    if let Some(parent) = node.opt_str("parentIntentSignature")? {
        if !fallback {
            warnings.push(format!(
                "{name}: built-in intent {parent} is treated as a custom intent"
            ));
        }
    }
    let mut utterances = Vec::new();
    for u in node.items("sampleUtterances")? {
        utterances.push(utterance(u.node())?);
    }
    let input_contexts = input_contexts(node)?;
    let output_contexts = output_contexts(node)?;
    for (key, what) in [
        ("kendraConfiguration", "Kendra"),
        ("qnAIntentConfiguration", "QnA intents"),
    ] {
        let empty_list =
            matches!(node.value.get(key), Some(serde_json::Value::Array(a)) if a.is_empty());
        if node.has(key) && !empty_list {
            warnings.push(format!("{name}: {what} are not supported"));
        }
    }
    if let Some(hook) = node.get("dialogCodeHook") {
        if hook.node().opt_bool("enabled")? == Some(true) {
            warnings.push(format!("{name}: dialog code hooks (Lambda) are not called"));
        }
    }
    unsupported_steps(&v, &name, warnings);
    let mut slots = slots(files, dir, &name, types, warnings)?;
    for (i, u) in utterances.iter().enumerate() {
        for piece in expand::pieces(u) {
            if let Piece::Slot(slot) = piece {
                if !slots.iter().any(|s| s.name == slot) {
                    return Err(LoadError::new(
                        file.as_str(),
                        Some(format!("sampleUtterances[{i}].utterance")),
                        format!("refers to `{{{slot}}}`, which is not a slot of {name}"),
                    ));
                }
            }
        }
    }
    let mut order: BTreeMap<String, f64> = BTreeMap::new();
    for p in node.items("slotPriorities")? {
        let p = p.node();
        let slot = p.req_str("slotName")?.to_string();
        let priority = p.opt_f64("priority")?.unwrap_or(f64::MAX);
        if !slots.iter().any(|s| s.name == slot) {
            return Err(p.error("slotName", format!("no slot `{slot}` in {dir}Slots")));
        }
        order.insert(slot, priority);
    }
    slots.sort_by(|a, b| {
        let pa = order.get(&a.name).copied().unwrap_or(f64::MAX);
        let pb = order.get(&b.name).copied().unwrap_or(f64::MAX);
        pa.total_cmp(&pb).then_with(|| a.name.cmp(&b.name))
    });

    let mut def = IntentDef {
        name,
        fallback,
        utterances,
        slots,
        input_contexts,
        output_contexts,
        ..IntentDef::default()
    };
    if let Some(conf) = node.get("intentConfirmationSetting") {
        let conf = conf.node();
        if conf.opt_bool("active")? != Some(false) && conf.has("promptSpecification") {
            let prompt = conf.req("promptSpecification")?;
            let prompt = prompt.node();
            def.confirmation = Some(ConfirmationDef {
                prompt: groups(prompt)?,
                max_retries: prompt.opt_f64("maxRetries")?.unwrap_or(2.0) as u32,
                declination: groups_at(conf, "declinationResponse")?,
                failure: groups_at(conf, "failureResponse")?,
            });
        }
    }
    if let Some(closing) = node.get("intentClosingSetting") {
        let closing = closing.node();
        if closing.opt_bool("active")? != Some(false) {
            def.closing = groups_at(closing, "closingResponse")?;
        }
    }
    if let Some(hook) = node.get("fulfillmentCodeHook") {
        if let Some(post) = hook.node().get("postFulfillmentStatusSpecification") {
            let post = post.node();
            def.success = groups_at(post, "successResponse")?;
            def.failure = groups_at(post, "failureResponse")?;
        }
    }
    Ok(def)
}

/// The longest sample utterance or slot value read: Lex takes no longer a
/// text from a person (1,024 characters), and a longer one only multiplies
/// the work of training (each of its slots filled many times over).
pub(super) const MAX_SAMPLE_CHARS: usize = 1024;
/// The most `{slot}` references one sample utterance may hold.
pub(super) const MAX_SLOT_REFERENCES: usize = 20;
/// The longest slot value or synonym: Lex's own limit (140 characters).
/// Each is pasted into the sample utterances naming its slot, up to 20
/// times in one, so longer ones multiplied training into gigabytes.
pub(super) const MAX_VALUE_CHARS: usize = 140;
/// The most slot types a bot may have (Lex allows some hundreds); the
/// engine numbers them in 16 bits.
pub(super) const MAX_SLOT_TYPES: usize = 1_000;
/// The most slots an intent may have (Lex's own limit is 100); tagging a
/// message costs the square of their number.
pub(super) const MAX_SLOTS_PER_INTENT: usize = 100;

/// A slot value or synonym (`node`'s `key`), at most `MAX_VALUE_CHARS`.
fn value_text(node: Node<'_>, key: &str) -> Result<String, LoadError> {
    let text = sample_text(node, key)?;
    let chars = text.chars().count();
    if chars > MAX_VALUE_CHARS {
        return Err(node.error(
            key,
            format!("is {chars} characters long; a slot value is at most {MAX_VALUE_CHARS}"),
        ));
    }
    Ok(text)
}

/// The text `key` of `node` (a sample utterance or slot value), at most
/// `MAX_SAMPLE_CHARS` long.
pub(super) fn sample_text(node: Node<'_>, key: &str) -> Result<String, LoadError> {
    let text = node.req_str(key)?;
    let chars = text.chars().count();
    if chars > MAX_SAMPLE_CHARS {
        return Err(node.error(
            key,
            format!("is {chars} characters long; at most {MAX_SAMPLE_CHARS}"),
        ));
    }
    Ok(text.to_string())
}

/// A sample utterance (`node`'s `utterance`): `sample_text` naming at most
/// `MAX_SLOT_REFERENCES` slots.
pub(super) fn utterance(node: Node<'_>) -> Result<String, LoadError> {
    let text = sample_text(node, "utterance")?;
    let references = expand::pieces(&text)
        .iter()
        .filter(|p| matches!(p, Piece::Slot(_)))
        .count();
    if references > MAX_SLOT_REFERENCES {
        return Err(node.error(
            "utterance",
            format!("names {references} slots; at most {MAX_SLOT_REFERENCES}"),
        ));
    }
    Ok(text)
}
