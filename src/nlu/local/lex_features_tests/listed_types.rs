//! The built-in types that need a list (`AMAZON.City`, `AMAZON.Country`,
//! `AMAZON.FirstName`, ...): resolved to the shipped names, others taken as
//! said; built-in types with neither a shape nor a list named at load.

use super::{bot, slot, utterances};
use crate::nlu::local::{LocalBot, Today};
use serde_json::json;
use std::collections::BTreeMap;

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
