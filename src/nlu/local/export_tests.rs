//! Exports as users have them: manifest spellings, slot type parents.

use super::{FileMap, LocalBot};

/// A one-intent bot with `manifest`, plus `extra` files under its locale.
fn bot(manifest: &str, extra: &[(&str, &str)]) -> FileMap {
    let locale = "B/BotLocales/en_US/";
    let mut files: Vec<(String, String)> = vec![
        ("Manifest.json".into(), manifest.into()),
        ("B/Bot.json".into(), r#"{"name": "B"}"#.into()),
        (format!("{locale}BotLocale.json"), "{}".into()),
        (
            format!("{locale}Intents/Hello/Intent.json"),
            r#"{"name": "Hello", "sampleUtterances": [{"utterance": "hello"}, {"utterance": "hi there"}]}"#
                .into(),
        ),
    ];
    files.extend(
        extra
            .iter()
            .map(|(p, t)| (format!("{locale}{p}"), t.to_string())),
    );
    FileMap::from_entries(files.iter().map(|(p, t)| (p.as_str(), t.as_str())))
}

#[test]
fn manifests_load_however_tools_spell_them() {
    for manifest in [
        r#"{"metaData": {"resourceType": "BOT"}}"#,
        r#"{"metaData": {"resourceType": "Bot"}}"#,
        r#"{"metadata": {"resourceType": "bot"}}"#,
        r#"{"metadata": {"resourceType": "BOT_LOCALE"}}"#,
        r#"{"metadata": {}}"#,
    ] {
        let loaded = LocalBot::from_files(&bot(manifest, &[]));
        assert_eq!(loaded.expect(manifest).name(), "B");
    }
    let manifest = r#"{"metaData": {"resourceType": "CUSTOM_VOCABULARY"}}"#;
    let err = LocalBot::from_files(&bot(manifest, &[])).expect_err("not a bot");
    assert_eq!(err.field.as_deref(), Some("metaData.resourceType"));
    assert!(
        err.reason
            .contains("`CUSTOM_VOCABULARY` exports are not bots"),
        "{err}"
    );
}

fn slot_type(name: &str, parent: &str) -> String {
    format!(r#"{{"name": "{name}", "parentSlotTypeSignature": "{parent}", "slotTypeValues": []}}"#)
}

#[test]
fn a_slot_type_parent_loop_is_a_clear_error() {
    let (a, b) = (slot_type("Alpha", "Beta"), slot_type("Beta", "Alpha"));
    let slot = r#"{"name": "code", "slotTypeName": "Alpha",
        "valueElicitationSetting": {"slotConstraint": "Optional"}}"#;
    let intent = r#"{"name": "Code", "sampleUtterances": [{"utterance": "my code is {code}"}]}"#;
    let files = bot(
        r#"{"metaData": {"resourceType": "Bot"}}"#,
        &[
            ("SlotTypes/Alpha/SlotType.json", &a),
            ("SlotTypes/Beta/SlotType.json", &b),
            ("Intents/Code/Intent.json", intent),
            ("Intents/Code/Slots/code/Slot.json", slot),
        ],
    );
    let err = LocalBot::from_files(&files).expect_err("loop");
    assert_eq!(err.file, "B/BotLocales/en_US/SlotTypes/Alpha/SlotType.json");
    assert_eq!(err.field.as_deref(), Some("parentSlotTypeSignature"));
    assert!(
        err.reason.contains("loops: Alpha -> Beta -> Alpha"),
        "{err}"
    );

    let own = slot_type("Alpha", "Alpha");
    let files = bot(
        r#"{"metaData": {"resourceType": "Bot"}}"#,
        &[("SlotTypes/Alpha/SlotType.json", &own)],
    );
    let err = LocalBot::from_files(&files).expect_err("self loop");
    assert!(err.reason.contains("loops: Alpha -> Alpha"), "{err}");

    // A chain that ends in a built-in type is fine.
    let fine = slot_type("Alpha", "AMAZON.AlphaNumeric");
    let files = bot(
        r#"{"metaData": {"resourceType": "Bot"}}"#,
        &[("SlotTypes/Alpha/SlotType.json", &fine)],
    );
    assert!(LocalBot::from_files(&files).is_ok());
}

#[test]
fn shaped_built_in_types_are_recognised_by_their_shape() {
    let slot = |name: &str, ty: &str| {
        format!(
            r#"{{"name": "{name}", "slotTypeName": "{ty}",
            "valueElicitationSetting": {{"slotConstraint": "Optional"}}}}"#
        )
    };
    let timer = r#"{"name": "Timer", "sampleUtterances": [
        {"utterance": "set a timer for {wait}"}, {"utterance": "timer {wait}"},
        {"utterance": "discount of {cut}"}]}"#;
    let weather = r#"{"name": "Weather", "sampleUtterances": [
        {"utterance": "weather in {city}"}, {"utterance": "is it raining in {city}"}]}"#;
    let files = bot(
        r#"{"metaData": {"resourceType": "Bot"}}"#,
        &[
            ("Intents/Timer/Intent.json", timer),
            (
                "Intents/Timer/Slots/wait/Slot.json",
                &slot("wait", "AMAZON.Duration"),
            ),
            (
                "Intents/Timer/Slots/cut/Slot.json",
                &slot("cut", "AMAZON.Percentage"),
            ),
            ("Intents/Weather/Intent.json", weather),
            (
                "Intents/Weather/Slots/city/Slot.json",
                &slot("city", "AMAZON.City"),
            ),
        ],
    );
    let loaded = LocalBot::from_files(&files).expect("bot");
    let warnings = loaded.warnings().join("\n");
    // AMAZON.City comes with a list (see lex_features_tests).
    assert!(
        !warnings.contains("Duration")
            && !warnings.contains("Percentage")
            && !warnings.contains("City"),
        "{warnings}"
    );
    let r = &loaded.interpret("set a timer for 2 hours and 30 minutes")[0];
    assert_eq!(r.interpretation.intent, "Timer");
    let wait = r.slots["wait"].as_ref().expect("duration");
    assert_eq!(wait.interpreted_value, "PT2H30M");
}

#[test]
fn a_sample_too_long_or_naming_too_many_slots_is_a_clear_error() {
    let manifest = r#"{"metaData": {"resourceType": "Bot"}}"#;
    let long = "word ".repeat(300);
    let many = (0..21).map(|_| "{code}").collect::<Vec<_>>().join(" ");
    let slot = r#"{"name": "code", "slotTypeName": "Codes",
        "valueElicitationSetting": {"slotConstraint": "Optional"}}"#;
    for (utterance, says) in [
        (long.as_str(), "characters long; at most 1024"),
        (many.as_str(), "names 21 slots; at most 20"),
    ] {
        let intent = format!(
            r#"{{"name": "Code", "sampleUtterances": [{{"utterance": "my code"}}, {{"utterance": "{utterance}"}}]}}"#
        );
        let files = bot(
            manifest,
            &[
                (
                    "SlotTypes/Codes/SlotType.json",
                    r#"{"name": "Codes", "slotTypeValues": [{"sampleValue": {"value": "abc"}}]}"#,
                ),
                ("Intents/Code/Intent.json", &intent),
                ("Intents/Code/Slots/code/Slot.json", slot),
            ],
        );
        let err = LocalBot::from_files(&files).expect_err(says);
        assert_eq!(err.file, "B/BotLocales/en_US/Intents/Code/Intent.json");
        assert_eq!(err.field.as_deref(), Some("sampleUtterances[1].utterance"));
        assert!(err.reason.contains(says), "{err}");
    }
    // A slot value is at most 140 characters, as in Lex.
    let value = "x".repeat(141);
    let codes = format!(
        r#"{{"name": "Codes", "slotTypeValues": [{{"sampleValue": {{"value": "{value}"}}}}]}}"#
    );
    let files = bot(manifest, &[("SlotTypes/Codes/SlotType.json", &codes)]);
    let err = LocalBot::from_files(&files).expect_err("a long value");
    assert_eq!(
        err.field.as_deref(),
        Some("slotTypeValues[0].sampleValue.value")
    );
    // A slot's own sample utterance is held to the same limit.
    let slot = format!(
        r#"{{"name": "code", "slotTypeName": "Codes", "valueElicitationSetting": {{
            "slotConstraint": "Optional", "sampleUtterances": [{{"utterance": "{long}"}}]}}}}"#
    );
    let files = bot(
        manifest,
        &[
            (
                "SlotTypes/Codes/SlotType.json",
                r#"{"name": "Codes", "slotTypeValues": [{"sampleValue": {"value": "abc"}}]}"#,
            ),
            ("Intents/Hello/Slots/code/Slot.json", &slot),
        ],
    );
    let err = LocalBot::from_files(&files).expect_err("a long slot utterance");
    assert!(err.file.ends_with("Slots/code/Slot.json"), "{err}");
    assert!(err.reason.contains("at most 1024"), "{err}");
    // A synonym likewise.
    let codes = format!(
        r#"{{"name": "Codes", "slotTypeValues": [{{"sampleValue": {{"value": "abc"}},
            "synonyms": [{{"value": "{value}"}}]}}]}}"#
    );
    let files = bot(manifest, &[("SlotTypes/Codes/SlotType.json", &codes)]);
    let err = LocalBot::from_files(&files).expect_err("a long synonym");
    assert_eq!(
        err.field.as_deref(),
        Some("slotTypeValues[0].synonyms[0].value")
    );
}

#[test]
fn two_intents_or_slot_types_of_one_name_are_a_clear_error() {
    let manifest = r#"{"metaData": {"resourceType": "Bot"}}"#;
    // A second folder whose intent says it is Hello: which one a message
    // matched, and which slots it had, was left to chance.
    let files = bot(
        manifest,
        &[(
            "Intents/Another/Intent.json",
            r#"{"name": "Hello", "sampleUtterances": [{"utterance": "good day"}]}"#,
        )],
    );
    let err = LocalBot::from_files(&files).expect_err("two Hello intents");
    assert_eq!(err.field.as_deref(), Some("name"));
    assert!(
        err.reason.contains("intent `Hello` is also defined in"),
        "{err}"
    );
    let files = bot(
        manifest,
        &[
            ("SlotTypes/Size/SlotType.json", &slot_type("Size", "")),
            ("SlotTypes/Size2/SlotType.json", &slot_type("Size", "")),
        ],
    );
    let err = LocalBot::from_files(&files).expect_err("two Size types");
    assert!(
        err.reason.contains("slot type `Size` is also defined in"),
        "{err}"
    );
    // Nor may one intent have two slots of one name.
    let slot = r#"{"name": "code", "slotTypeName": "AMAZON.Number",
        "valueElicitationSetting": {"slotConstraint": "Optional"}}"#;
    let files = bot(
        manifest,
        &[
            ("Intents/Hello/Slots/a/Slot.json", slot),
            ("Intents/Hello/Slots/b/Slot.json", slot),
        ],
    );
    let err = LocalBot::from_files(&files).expect_err("two code slots");
    assert!(err.reason.contains("two slots named `code`"), "{err}");
}

#[test]
fn an_intent_with_more_than_a_hundred_slots_is_a_clear_error() {
    let manifest = r#"{"metaData": {"resourceType": "Bot"}}"#;
    let slots: Vec<(String, String)> = (0..101)
        .map(|n| {
            (
                format!("Intents/Hello/Slots/s{n:03}/Slot.json"),
                format!(
                    r#"{{"name": "s{n}", "slotTypeName": "AMAZON.Number",
                        "valueElicitationSetting": {{"slotConstraint": "Optional"}}}}"#
                ),
            )
        })
        .collect();
    let extra: Vec<(&str, &str)> = slots
        .iter()
        .map(|(p, t)| (p.as_str(), t.as_str()))
        .collect();
    let err = LocalBot::from_files(&bot(manifest, &extra)).expect_err("101 slots");
    assert!(err.reason.contains("more than 100 slots"), "{err}");
    assert!(err.file.ends_with("Slots/s100/Slot.json"), "{err}");
    let err = LocalBot::from_files(&bot(manifest, &extra[..100])).map(|_| ());
    assert!(err.is_ok(), "{err:?}");
}

#[test]
fn a_long_chain_of_slot_type_parents_loads_and_a_loop_in_it_is_found() {
    let manifest = r#"{"metaData": {"resourceType": "Bot"}}"#;
    let types: Vec<(String, String)> = (0..600)
        .map(|n| {
            let parent = if n == 599 {
                String::new()
            } else {
                format!("T{:03}", n + 1)
            };
            (
                format!("SlotTypes/T{n:03}/SlotType.json"),
                slot_type(&format!("T{n:03}"), &parent),
            )
        })
        .collect();
    let extra: Vec<(&str, &str)> = types
        .iter()
        .map(|(p, t)| (p.as_str(), t.as_str()))
        .collect();
    assert!(LocalBot::from_files(&bot(manifest, &extra)).is_ok());
    let mut looped = types.clone();
    looped[599].1 = slot_type("T599", "T300");
    let extra: Vec<(&str, &str)> = looped
        .iter()
        .map(|(p, t)| (p.as_str(), t.as_str()))
        .collect();
    let err = LocalBot::from_files(&bot(manifest, &extra)).expect_err("a loop");
    assert!(err.reason.contains("the parent chain loops"), "{err}");
}
