//! Multi-valued slots: each value and the list as Lex gives them, a list
//! as the answer to a prompt, and only custom slot types taking them.

use super::{bot, elicits, intent_of, prompt, slot, utterances, value, values_type, Chat};
use crate::nlu::local::LocalBot;
use crate::nlu::reply::SlotValue;
use serde_json::json;

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
