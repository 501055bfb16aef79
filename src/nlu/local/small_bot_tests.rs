//! Small bots as businesses write them: a few sample utterances an intent,
//! and messages naming things the utterances never mention.

use super::{FileMap, LocalBot, FALLBACK};

/// A two-intent transit bot: routes between stations, and departures.
fn transit() -> LocalBot {
    let locale = "Transit/BotLocales/en_US/";
    let route = r#"{"name": "GetRoute", "sampleUtterances": [
        {"utterance": "how do i get from {origin} to {destination}"},
        {"utterance": "i want to go to {destination}"},
        {"utterance": "take me to {destination}"},
        {"utterance": "route from {origin} to {destination}"},
        {"utterance": "how can i get to {destination}"},
        {"utterance": "directions to {destination} please"},
        {"utterance": "i need to get to {destination} from {origin}"},
        {"utterance": "what is the fastest way to {destination}"}]}"#;
    let departures = r#"{"name": "GetDepartures", "sampleUtterances": [
        {"utterance": "when does the next train leave {station}"},
        {"utterance": "next departures at {station}"},
        {"utterance": "show the timetable for {station}"},
        {"utterance": "when is the next subway"},
        {"utterance": "what leaves from {station} soon"},
        {"utterance": "departures please"},
        {"utterance": "is my train on time"},
        {"utterance": "when does the last bus go"}]}"#;
    let slot = |name: &str| {
        format!(
            r#"{{"name": "{name}", "slotTypeName": "Station",
            "valueElicitationSetting": {{"slotConstraint": "Optional"}}}}"#
        )
    };
    let station = r#"{"name": "Station", "slotTypeValues": [
        {"sampleValue": {"value": "Hauptbahnhof"}},
        {"sampleValue": {"value": "Sendlinger Tor"}},
        {"sampleValue": {"value": "Odeonsplatz"}}],
        "valueSelectionSetting": {"resolutionStrategy": "ORIGINAL_VALUE"}}"#;
    let fallback = r#"{"name": "FallbackIntent",
        "parentIntentSignature": "AMAZON.FallbackIntent"}"#;
    let files: Vec<(String, String)> = vec![
        (
            "Manifest.json".into(),
            r#"{"metadata": {"resourceType": "BOT"}}"#.into(),
        ),
        ("Transit/Bot.json".into(), r#"{"name": "Transit"}"#.into()),
        (
            format!("{locale}BotLocale.json"),
            r#"{"nluConfidenceThreshold": 0.4}"#.into(),
        ),
        (
            format!("{locale}SlotTypes/Station/SlotType.json"),
            station.into(),
        ),
        (
            format!("{locale}Intents/GetRoute/Intent.json"),
            route.into(),
        ),
        (
            format!("{locale}Intents/GetRoute/Slots/origin/Slot.json"),
            slot("origin"),
        ),
        (
            format!("{locale}Intents/GetRoute/Slots/destination/Slot.json"),
            slot("destination"),
        ),
        (
            format!("{locale}Intents/GetDepartures/Intent.json"),
            departures.into(),
        ),
        (
            format!("{locale}Intents/GetDepartures/Slots/station/Slot.json"),
            slot("station"),
        ),
        (
            format!("{locale}Intents/FallbackIntent/Intent.json"),
            fallback.into(),
        ),
    ];
    let files = FileMap::from_entries(files.iter().map(|(p, t)| (p.as_str(), t.as_str())));
    LocalBot::from_files(&files).expect("transit bot")
}

fn top(bot: &LocalBot, text: &str) -> String {
    bot.interpret(text)[0].interpretation.intent.clone()
}

#[test]
fn places_the_utterances_never_name_count_as_slot_values_not_as_noise() {
    let bot = transit();
    assert_eq!(top(&bot, "i want to go marienplatz"), "GetRoute");
    assert_eq!(
        top(&bot, "how can i get from theresienstraße to munich east?"),
        "GetRoute"
    );
    assert_eq!(top(&bot, "next departures at giesing"), "GetDepartures");
    // Words that are no slot value still say the message is not for this bot.
    assert_eq!(top(&bot, "order a large pepperoni pizza"), FALLBACK);
}

/// A bot whose one slot is a date: no open slot, so unseen words count
/// against the confidence unless they are the value found.
fn bookings() -> LocalBot {
    let locale = "Book/BotLocales/en_US/";
    let book = r#"{"name": "Book", "sampleUtterances": [
        {"utterance": "book {day}"}, {"utterance": "reserve {day}"}]}"#;
    let cancel = r#"{"name": "Cancel", "sampleUtterances": [
        {"utterance": "cancel {day}"}, {"utterance": "drop {day}"}]}"#;
    let day = r#"{"name": "day", "slotTypeName": "AMAZON.Date",
        "valueElicitationSetting": {"slotConstraint": "Optional"}}"#;
    let files: Vec<(String, String)> = vec![
        (
            "Manifest.json".into(),
            r#"{"metadata": {"resourceType": "BOT"}}"#.into(),
        ),
        ("Book/Bot.json".into(), r#"{"name": "Book"}"#.into()),
        (
            format!("{locale}BotLocale.json"),
            r#"{"nluConfidenceThreshold": 0.4}"#.into(),
        ),
        (format!("{locale}Intents/Book/Intent.json"), book.into()),
        (
            format!("{locale}Intents/Book/Slots/day/Slot.json"),
            day.into(),
        ),
        (format!("{locale}Intents/Cancel/Intent.json"), cancel.into()),
        (
            format!("{locale}Intents/Cancel/Slots/day/Slot.json"),
            day.into(),
        ),
    ];
    let files = FileMap::from_entries(files.iter().map(|(p, t)| (p.as_str(), t.as_str())));
    LocalBot::from_files(&files).expect("booking bot")
}

#[test]
fn the_words_of_a_value_found_count_as_known() {
    let bot = bookings();
    // "wednesday" is in no sample utterance nor in what they expand to.
    let r = bot.interpret("book wednesday");
    assert_eq!(r[0].interpretation.intent, "Book", "{r:?}");
    assert!(r[0].slots["day"].is_some(), "{r:?}");
    assert_eq!(top(&bot, "book a haircut"), FALLBACK);
}
