//! Slot default values (`defaultValueSpecification`): a session
//! attribute, a parameter of an active context or a fixed value fills an
//! empty slot before it is elicited; a default that is none fails the load.

use super::{bot, closing, elicits, intent_of, interpreted, slot, utterances, values_type, Chat};
use crate::nlu::local::LocalBot;
use serde_json::json;

fn coffee_bot() -> LocalBot {
    let size = values_type("Size", &["small", "medium", "large"], "TOP_RESOLUTION");
    let order = json!({
        "name": "OrderCoffee",
        "sampleUtterances": utterances(&["i want a coffee", "order a {size} coffee",
            "can i get a coffee please", "a {size} latte", "coffee to go", "one coffee"]),
        "slotPriorities": [{"priority": 1, "slotName": "size"}, {"priority": 2, "slotName": "sugar"}],
        "outputContexts": [{"name": "coffee_ordered", "timeToLiveInSeconds": 60, "turnsToLive": 3}],
        "intentClosingSetting": closing("A {size} coffee, coming up."),
    });
    let defaults = |list: &[&str]| {
        json!({"valueElicitationSetting": {"defaultValueSpecification": {
            "defaultValueList": list.iter().map(|d| json!({"defaultValue": d})).collect::<Vec<_>>()}}})
    };
    let order_slots = vec![
        slot(
            "size",
            "Size",
            true,
            defaults(&["[usual_size]", "<device_size>", "huge", "medium"]),
        ),
        slot("sugar", "AMAZON.Number", true, defaults(&["[usual_sugar]"])),
    ];
    let refill = json!({
        "name": "Refill",
        "sampleUtterances": utterances(&["refill please", "another refill", "top me up",
            "i want a refill", "refill my cup"]),
        "intentClosingSetting": closing("A {size} refill."),
    });
    let refill_slots = vec![slot(
        "size",
        "Size",
        true,
        defaults(&["#coffee_ordered.size", "small"]),
    )];
    bot(
        &[
            ("OrderCoffee", order, order_slots),
            ("Refill", refill, refill_slots),
        ],
        &[size],
    )
    .expect("coffee bot")
}

#[test]
fn a_default_value_fills_a_required_slot_instead_of_a_prompt() {
    let bot = coffee_bot();
    // No session attribute: the request attribute is skipped, `huge` is no
    // size (TOP_RESOLUTION), so the fixed `medium` fills the slot; sugar
    // has no default that resolves and is elicited.
    let mut chat = Chat::new(&bot);
    let r = chat.say("i want a coffee");
    assert_eq!(intent_of(&r), "OrderCoffee");
    assert_eq!(interpreted(&r, "size"), Some("medium"));
    assert_eq!(elicits(&r), Some("sugar"));

    // A session attribute comes first when it is there.
    let mut chat = Chat::new(&bot);
    chat.attrs.insert("usual_size".into(), "Large".into());
    chat.attrs.insert("usual_sugar".into(), "2".into());
    let r = chat.say("i want a coffee");
    assert_eq!(interpreted(&r, "size"), Some("large"));
    assert_eq!(interpreted(&r, "sugar"), Some("2"));
    assert_eq!(r.messages.len(), 1);
    assert_eq!(
        r.intent.as_ref().and_then(|i| i.state.as_deref()),
        Some("Fulfilled")
    );

    // What the person says wins over any default.
    let r = chat.say("order a small coffee");
    assert_eq!(interpreted(&r, "size"), Some("small"));

    // A session attribute the type does not take falls through.
    let mut chat = Chat::new(&bot);
    chat.attrs.insert("usual_size".into(), "gigantic".into());
    let r = chat.say("i want a coffee");
    assert_eq!(interpreted(&r, "size"), Some("medium"));
}

#[test]
fn a_default_can_come_from_a_context_an_earlier_intent_set() {
    let bot = coffee_bot();
    let mut chat = Chat::new(&bot);
    // Before any order the context is not there: the fixed default.
    let r = chat.say("refill please");
    assert_eq!(intent_of(&r), "Refill");
    assert_eq!(interpreted(&r, "size"), Some("small"));
    chat.attrs.insert("usual_sugar".into(), "1".into());
    let r = chat.say("order a large coffee");
    assert_eq!(intent_of(&r), "OrderCoffee");
    let r = chat.say("refill please");
    assert_eq!(intent_of(&r), "Refill");
    assert_eq!(interpreted(&r, "size"), Some("large"));
}

#[test]
fn a_default_that_is_no_default_is_a_clear_load_error() {
    let intent = json!({"name": "A", "sampleUtterances": utterances(&["a {n}", "b"])});
    for bad in ["#no_parameter", "[]", "<>", "#.x"] {
        let n = slot(
            "n",
            "AMAZON.Number",
            false,
            json!({"valueElicitationSetting": {"defaultValueSpecification": {
                "defaultValueList": [{"defaultValue": bad}]}}}),
        );
        let err = bot(&[("A", intent.clone(), vec![n])], &[]).expect_err(bad);
        assert!(err.to_string().contains("defaultValue"), "{err}");
        assert!(err.to_string().contains(bad), "{err}");
    }
}
