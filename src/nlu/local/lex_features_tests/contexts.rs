//! Input and output contexts: an intent with input contexts is a candidate
//! only while they are active; output contexts live for their turns and
//! seconds; names and lifetimes Lex would refuse fail the load.

use super::{bot, closing, intent_of, slot, utterances, values_type, Chat};
use crate::nlu::local::{LocalBot, Today};
use serde_json::{json, Value};

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
