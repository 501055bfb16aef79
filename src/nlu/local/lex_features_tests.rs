//! Lex features a bot author expects: slot default values, multi-valued
//! slots, input and output contexts, and the built-in types that need a
//! list. Each on a small bot written here.

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

// ---------------------------------------------------------------- defaults

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

// ------------------------------------------------------ multi-valued slots

fn pizza_bot() -> LocalBot {
    let topping = values_type(
        "Topping",
        &[
            "pepperoni",
            "mushrooms",
            "ham",
            "olives",
            "pineapple",
            "salt and pepper",
        ],
        "ORIGINAL_VALUE",
    );
    let order = json!({
        "name": "OrderPizza",
        "sampleUtterances": utterances(&["i want a pizza with {toppings}", "a pizza with {toppings}",
            "order a pizza", "pizza with {toppings} please", "can i have a {toppings} pizza",
            "i'd like a pizza"]),
        "intentConfirmationSetting": {"promptSpecification": prompt("A {toppings} pizza?"),
            "declinationResponse": {"messageGroupsList": [
                {"message": {"plainTextMessage": {"value": "Cancelled."}}}]}},
    });
    let toppings = slot(
        "toppings",
        "Topping",
        true,
        json!({"multipleValuesSetting": {"allowMultipleValues": true}}),
    );
    let hours = json!({"name": "Hours", "sampleUtterances": utterances(&[
        "when are you open", "opening hours", "are you open today", "what time do you close"])});
    bot(
        &[
            ("OrderPizza", order, vec![toppings]),
            ("Hours", hours, vec![]),
        ],
        &[topping],
    )
    .expect("pizza bot")
}

fn items(v: &SlotValue) -> Vec<&str> {
    v.values
        .iter()
        .map(|x| x.interpreted_value.as_str())
        .collect()
}

#[test]
fn a_multi_valued_slot_gives_each_value_and_the_list_as_lex_does() {
    let bot = pizza_bot();
    let mut chat = Chat::new(&bot);
    let r = chat.say("i want a pizza with pepperoni and mushrooms");
    assert_eq!(intent_of(&r), "OrderPizza");
    let v = value(&r, "toppings").expect("toppings");
    assert_eq!(items(v), ["pepperoni", "mushrooms"]);
    assert_eq!(v.interpreted_value, "pepperoni and mushrooms");
    assert_eq!(v.original_value, "pepperoni and mushrooms");
    assert_eq!(v.resolved_values, ["pepperoni and mushrooms"]);
    // The list reads naturally in a prompt.
    assert_eq!(
        r.messages,
        [crate::nlu::reply::NluMessage::PlainText(
            "A pepperoni and mushrooms pizza?".into()
        )]
    );
    // As JSON, each item is a value of its own.
    let j = serde_json::to_value(v).expect("json");
    assert_eq!(j["values"][1]["interpreted_value"], "mushrooms");

    // Commas, a value the list does not have, and a listed value with `and`
    // inside it.
    let r = Chat::new(&bot).say("a pizza with ham, anchovies, salt and pepper and olives");
    let v = value(&r, "toppings").expect("toppings");
    assert_eq!(items(v), ["ham", "anchovies", "salt and pepper", "olives"]);
    assert_eq!(
        v.interpreted_value,
        "ham, anchovies, salt and pepper and olives"
    );

    // One value is a list of one.
    let r = Chat::new(&bot).say("a pizza with pineapple");
    let v = value(&r, "toppings").expect("toppings");
    assert_eq!(items(v), ["pineapple"]);
    assert_eq!(v.interpreted_value, "pineapple");
}

#[test]
fn a_multi_valued_slot_takes_a_list_as_the_answer_to_its_prompt() {
    let bot = pizza_bot();
    let mut chat = Chat::new(&bot);
    let r = chat.say("order a pizza");
    assert_eq!(elicits(&r), Some("toppings"));
    let r = chat.say("olives, ham and pineapple");
    let v = value(&r, "toppings").expect("toppings");
    assert_eq!(items(v), ["olives", "ham", "pineapple"]);
    assert_eq!(v.interpreted_value, "olives, ham and pineapple");
}

#[test]
fn only_a_custom_slot_type_can_take_multiple_values() {
    let intent = json!({"name": "A", "sampleUtterances": utterances(&["add {n}", "b"])});
    let n = slot(
        "n",
        "AMAZON.Number",
        false,
        json!({"multipleValuesSetting": {"allowMultipleValues": true}}),
    );
    let err = bot(&[("A", intent, vec![n])], &[]).expect_err("a built-in list");
    assert!(err.to_string().contains("AMAZON.Number"), "{err}");
}

// ---------------------------------------------------------------- contexts

fn order_bot() -> LocalBot {
    let order = json!({
        "name": "PlaceOrder",
        "sampleUtterances": utterances(&["i want to order {item}", "order {item}", "buy {item}",
            "i'd like to buy {item}", "place an order for {item}"]),
        "outputContexts": [{"name": "order_placed", "timeToLiveInSeconds": 90, "turnsToLive": 2}],
        "intentClosingSetting": closing("Ordered {item}."),
    });
    let item = values_type("Item", &["shoes", "a hat", "socks"], "ORIGINAL_VALUE");
    let track = json!({
        "name": "TrackOrder",
        "sampleUtterances": utterances(&["where is my order", "track my order", "where is it",
            "has it shipped", "when will my order arrive"]),
        "inputContexts": [{"name": "order_placed"}],
        "intentClosingSetting": closing("It ships today."),
    });
    let hello = json!({
        "name": "Hello",
        "sampleUtterances": utterances(&["hello", "hi there", "good morning", "hey"]),
        "intentClosingSetting": closing("Hello!"),
    });
    bot(
        &[
            (
                "PlaceOrder",
                order,
                vec![slot("item", "Item", true, json!({}))],
            ),
            ("TrackOrder", track, vec![]),
            ("Hello", hello, vec![]),
        ],
        &[item],
    )
    .expect("order bot")
}

#[test]
fn an_intent_with_input_contexts_is_a_candidate_only_while_they_are_active() {
    let bot = order_bot();
    // Without the context, tracking is no candidate at all.
    let r = Chat::new(&bot).say("where is my order");
    assert_ne!(intent_of(&r), "TrackOrder");
    assert!(r.interpretations.iter().all(|i| i.intent != "TrackOrder"));
    assert!(r.active_contexts.is_empty());
    let mut chat = Chat::new(&bot);

    // Fulfilling the order sets its output context, carrying its slots.
    let r = chat.say("order shoes");
    assert_eq!(intent_of(&r), "PlaceOrder");
    let context = &r.active_contexts[0];
    assert_eq!(context.name, "order_placed");
    assert_eq!(
        (context.turns_to_live, context.time_to_live_in_seconds),
        (2, 90)
    );
    assert_eq!(context.context_attributes["item"], "shoes");

    // Now it is recognised, for two turns.
    let r = chat.say("where is my order");
    assert_eq!(intent_of(&r), "TrackOrder");
    assert_eq!(r.active_contexts[0].turns_to_live, 1);
    assert_eq!(r.active_contexts[0].time_to_live_in_seconds, 89);
    let r = chat.say("has it shipped");
    assert_eq!(intent_of(&r), "TrackOrder");
    assert!(r.active_contexts.is_empty(), "{:?}", r.active_contexts);
    let r = chat.say("where is my order");
    assert_ne!(intent_of(&r), "TrackOrder");
}

#[test]
fn a_context_expires_with_its_time_to_live() {
    let bot = order_bot();
    let mut chat = Chat::new(&bot);
    chat.say("order socks");
    chat.now_ms += 95_000;
    let r = chat.say("where is my order");
    assert_ne!(intent_of(&r), "TrackOrder");
    assert!(r.active_contexts.is_empty());
}

#[test]
fn a_context_survives_other_intents_and_an_order_refreshes_it() {
    let bot = order_bot();
    let mut chat = Chat::new(&bot);
    chat.say("order a hat");
    let r = chat.say("hello");
    assert_eq!(intent_of(&r), "Hello");
    assert_eq!(r.active_contexts[0].turns_to_live, 1);
    chat.say("order socks");
    let r = chat.say("hello");
    assert_eq!(r.active_contexts.len(), 1);
    assert_eq!(r.active_contexts[0].turns_to_live, 1);
    assert_eq!(r.active_contexts[0].context_attributes["item"], "socks");
}

#[test]
fn contexts_that_lex_would_refuse_are_a_clear_load_error() {
    let hello = |extra: Value| {
        let mut i = json!({"name": "Hello", "sampleUtterances": utterances(&["hello", "hi"])});
        for (k, v) in extra.as_object().expect("object") {
            i[k] = v.clone();
        }
        ("Hello", i, vec![])
    };
    for (extra, field) in [
        (
            json!({"outputContexts": [{"name": "bad name", "timeToLiveInSeconds": 60, "turnsToLive": 2}]}),
            "outputContexts[0].name",
        ),
        (
            json!({"outputContexts": [{"name": "ok", "timeToLiveInSeconds": 60, "turnsToLive": 0}]}),
            "outputContexts[0].turnsToLive",
        ),
        (
            json!({"outputContexts": [{"name": "ok", "timeToLiveInSeconds": 1, "turnsToLive": 2}]}),
            "outputContexts[0].timeToLiveInSeconds",
        ),
        (
            json!({"inputContexts": [{"name": "__"}]}),
            "inputContexts[0].name",
        ),
    ] {
        let err = bot(&[hello(extra)], &[]).expect_err(field);
        assert_eq!(err.field.as_deref(), Some(field), "{err}");
    }
}

// ------------------------------------------------------- list-based types

fn travel_bot() -> LocalBot {
    let trip = json!({
        "name": "BookTrip",
        "sampleUtterances": utterances(&["fly to {city}", "book a trip to {city}",
            "i want to travel to {city}", "a flight to {city} in {country}", "trip to {country}",
            "take me to {city}"]),
    });
    let guest = json!({
        "name": "Guest",
        "sampleUtterances": utterances(&["my name is {first} {last}", "i am {first}",
            "this is {first} {last}", "call me {first}", "i live in {state}"]),
    });
    bot(
        &[
            (
                "BookTrip",
                trip,
                vec![
                    slot("city", "AMAZON.City", false, json!({})),
                    slot("country", "AMAZON.Country", false, json!({})),
                ],
            ),
            (
                "Guest",
                guest,
                vec![
                    slot("first", "AMAZON.FirstName", false, json!({})),
                    slot("last", "AMAZON.LastName", false, json!({})),
                    slot("state", "AMAZON.State", false, json!({})),
                ],
            ),
        ],
        &[],
    )
    .expect("travel bot")
}

fn top_slots(bot: &LocalBot, text: &str) -> (String, BTreeMap<String, String>) {
    let r = &bot.interpret_at(text, Today::from_ymd(2026, 11, 23))[0];
    let slots = r
        .slots
        .iter()
        .filter_map(|(k, v)| v.as_ref().map(|v| (k.clone(), v.interpreted_value.clone())))
        .collect();
    (r.interpretation.intent.clone(), slots)
}

#[test]
fn listed_built_in_types_resolve_to_the_shipped_names_and_take_others_as_said() {
    let bot = travel_bot();
    assert!(
        bot.warnings().iter().all(|w| !w.contains("AMAZON.")),
        "{:?}",
        bot.warnings()
    );
    let (intent, slots) = top_slots(&bot, "book a trip to rio de janeiro");
    assert_eq!(intent, "BookTrip");
    assert_eq!(slots["city"], "Rio de Janeiro");
    let (_, slots) = top_slots(&bot, "a flight to munchen in germany");
    assert_eq!(slots["city"], "Munich", "a synonym");
    assert_eq!(slots["country"], "Germany");
    let (_, slots) = top_slots(&bot, "fly to barcelonna");
    assert_eq!(slots["city"], "Barcelona", "a typo away");
    let (_, slots) = top_slots(&bot, "trip to the usa");
    assert_eq!(slots["country"], "United States");
    // A town the list does not have is still a city.
    let (_, slots) = top_slots(&bot, "fly to Hornitos");
    assert_eq!(slots["city"], "Hornitos");
    let (intent, slots) = top_slots(&bot, "my name is john smith");
    assert_eq!(intent, "Guest");
    assert_eq!(
        (slots["first"].as_str(), slots["last"].as_str()),
        ("John", "Smith")
    );
    let (_, slots) = top_slots(&bot, "i live in new hampshire");
    assert_eq!(slots["state"], "New Hampshire");
}

#[test]
fn built_in_types_without_a_shape_or_a_list_are_named_at_load() {
    let intent = json!({"name": "Pay", "sampleUtterances": utterances(&[
        "pay {amount}", "send {amount} to {street}"])});
    let loaded = bot(
        &[(
            "Pay",
            intent,
            vec![
                slot("amount", "AMAZON.Currency", false, json!({})),
                slot("street", "AMAZON.StreetName", false, json!({})),
            ],
        )],
        &[],
    )
    .expect("bot");
    let warnings = loaded.warnings().join("\n");
    for name in [
        "Pay.amount: AMAZON.Currency",
        "Pay.street: AMAZON.StreetName",
    ] {
        assert!(
            warnings.contains(&format!(
                "{name} is not recognised, any text is accepted as its value"
            )),
            "{warnings}"
        );
    }
}

#[test]
fn interpretation_takes_the_active_contexts() {
    let bot = order_bot();
    let top = &bot.interpret_at("where is my order", Today::from_ymd(2026, 11, 23))[0];
    assert_ne!(top.interpretation.intent, "TrackOrder");
    let top = &bot.interpret_in(
        "where is my order",
        Today::from_ymd(2026, 11, 23),
        &["order_placed"],
    )[0];
    assert_eq!(top.interpretation.intent, "TrackOrder");
}

#[test]
fn conversation_builder_steps_the_engine_does_not_run_are_named_at_load() {
    let intent = json!({
        "name": "Book",
        "sampleUtterances": utterances(&["book {day}", "book a table"]),
        "initialResponseSetting": {"conditional": {"active": true, "conditionalBranches": []}},
        "fulfillmentCodeHook": {"enabled": false,
            "fulfillmentUpdatesSpecification": {"active": true},
            "postFulfillmentStatusSpecification": {"successConditional": {"active": false}}},
    });
    let day = slot(
        "day",
        "AMAZON.Date",
        false,
        json!({"subSlotSetting": {"expression": "a AND b"},
               "valueElicitationSetting": {"slotCaptureSetting": {
                   "captureConditional": {"active": true},
                   "elicitationCodeHook": {"enableCodeHookInvocation": true}}}}),
    );
    let loaded = bot(&[("Book", intent, vec![day])], &[]).expect("bot");
    let warnings = loaded.warnings();
    for expected in [
        "Book: conditional branching (conditional) is not supported",
        "Book: fulfillment updates are not sent",
        "Book.day: conditional branching (captureConditional) is not supported",
        "Book.day: elicitation code hooks (Lambda) are not called",
        "Book.day: composite slots (subSlotSetting) are not supported",
    ] {
        assert!(
            warnings.iter().any(|w| w == expected),
            "{expected}: {warnings:?}"
        );
    }
    // An inactive branch is no warning.
    assert!(
        !warnings.iter().any(|w| w.contains("successConditional")),
        "{warnings:?}"
    );
}
