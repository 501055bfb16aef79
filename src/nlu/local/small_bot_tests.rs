//! Small bots as businesses write them: a few sample utterances an intent,
//! and messages naming things the utterances never mention.

use super::{FileMap, LocalBot, FALLBACK};

/// A Lex V2 export of bot `name` (threshold 0.4): `entries` are paths under
/// its `en_US` locale and their JSON.
fn export(name: &str, entries: Vec<(String, String)>) -> LocalBot {
    let locale = format!("{name}/BotLocales/en_US/");
    let mut files: Vec<(String, String)> = vec![
        (
            "Manifest.json".into(),
            r#"{"metadata": {"resourceType": "BOT"}}"#.into(),
        ),
        (
            format!("{name}/Bot.json"),
            format!(r#"{{"name": "{name}"}}"#),
        ),
        (
            format!("{locale}BotLocale.json"),
            r#"{"nluConfidenceThreshold": 0.4}"#.into(),
        ),
    ];
    files.extend(
        entries
            .into_iter()
            .map(|(path, json)| (format!("{locale}{path}"), json)),
    );
    let files = FileMap::from_entries(files.iter().map(|(p, t)| (p.as_str(), t.as_str())));
    LocalBot::from_files(&files).expect("the test bot loads")
}

/// A two-intent transit bot: routes between stations, and departures.
fn transit() -> LocalBot {
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
    export(
        "Transit",
        vec![
            ("SlotTypes/Station/SlotType.json".into(), station.into()),
            ("Intents/GetRoute/Intent.json".into(), route.into()),
            (
                "Intents/GetRoute/Slots/origin/Slot.json".into(),
                slot("origin"),
            ),
            (
                "Intents/GetRoute/Slots/destination/Slot.json".into(),
                slot("destination"),
            ),
            (
                "Intents/GetDepartures/Intent.json".into(),
                departures.into(),
            ),
            (
                "Intents/GetDepartures/Slots/station/Slot.json".into(),
                slot("station"),
            ),
            ("Intents/FallbackIntent/Intent.json".into(), fallback.into()),
        ],
    )
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
    let book = r#"{"name": "Book", "sampleUtterances": [
        {"utterance": "book {day}"}, {"utterance": "reserve {day}"}]}"#;
    let cancel = r#"{"name": "Cancel", "sampleUtterances": [
        {"utterance": "cancel {day}"}, {"utterance": "drop {day}"}]}"#;
    let day = r#"{"name": "day", "slotTypeName": "AMAZON.Date",
        "valueElicitationSetting": {"slotConstraint": "Optional"}}"#;
    export(
        "Book",
        vec![
            ("Intents/Book/Intent.json".into(), book.into()),
            ("Intents/Book/Slots/day/Slot.json".into(), day.into()),
            ("Intents/Cancel/Intent.json".into(), cancel.into()),
            ("Intents/Cancel/Slots/day/Slot.json".into(), day.into()),
        ],
    )
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

/// Films and books asked for in the same words: only the titles tell the
/// two intents apart, and each title's words are in no other title.
fn library() -> (LocalBot, Vec<&'static str>, Vec<&'static str>) {
    let films = vec![
        "crimson harbor",
        "silent meadow",
        "the glass orchard",
        "midnight ferry",
        "iron lanterns",
        "paper tigers",
        "the hollow crown",
        "velvet storm",
        "northern lights",
        "seven bridges",
        "golden hour",
        "broken compass",
        "the last signal",
        "winter garden",
        "copper sky",
        "distant shores",
    ];
    let books = vec![
        "amber chronicles",
        "quiet rivers",
        "the stone archive",
        "morning tides",
        "silver thistle",
        "painted deserts",
        "the open door",
        "scarlet letters",
        "southern winds",
        "twelve keys",
        "hidden valley",
        "falling embers",
        "the first promise",
        "autumn harvest",
        "marble halls",
        "wandering stars",
    ];
    let values = |titles: &[&str]| {
        let values: Vec<String> = titles
            .iter()
            .map(|t| format!(r#"{{"sampleValue": {{"value": "{t}"}}}}"#))
            .collect();
        values.join(", ")
    };
    let slot_type = |name: &str, titles: &[&str]| {
        format!(
            r#"{{"name": "{name}", "slotTypeValues": [{}],
            "valueSelectionSetting": {{"resolutionStrategy": "ORIGINAL_VALUE"}}}}"#,
            values(titles)
        )
    };
    let intent = |name: &str, slot: &str| {
        format!(
            r#"{{"name": "{name}", "sampleUtterances": [
            {{"utterance": "find {{{slot}}}"}}, {{"utterance": "look up {{{slot}}}"}},
            {{"utterance": "search for {{{slot}}}"}}, {{"utterance": "is {{{slot}}} available"}}]}}"#
        )
    };
    let slot = |name: &str, type_name: &str| {
        format!(
            r#"{{"name": "{name}", "slotTypeName": "{type_name}",
            "valueElicitationSetting": {{"slotConstraint": "Optional"}}}}"#
        )
    };
    let bot = export(
        "Library",
        vec![
            (
                "SlotTypes/Film/SlotType.json".into(),
                slot_type("Film", &films),
            ),
            (
                "SlotTypes/Title/SlotType.json".into(),
                slot_type("Title", &books),
            ),
            (
                "Intents/FindFilm/Intent.json".into(),
                intent("FindFilm", "film"),
            ),
            (
                "Intents/FindFilm/Slots/film/Slot.json".into(),
                slot("film", "Film"),
            ),
            (
                "Intents/FindBook/Intent.json".into(),
                intent("FindBook", "book"),
            ),
            (
                "Intents/FindBook/Slots/book/Slot.json".into(),
                slot("book", "Title"),
            ),
        ],
    );
    (bot, films, books)
}

#[test]
fn a_listed_value_the_utterances_never_had_still_tells_its_intent() {
    let (bot, films, books) = library();
    // Four sample utterances an intent, filled three times each: most
    // titles never appear in what the bot trained on.
    let mut wrong = Vec::new();
    for (intent, titles) in [("FindFilm", &films), ("FindBook", &books)] {
        for title in titles.iter() {
            let text = format!("look up {title}");
            let got = top(&bot, &text);
            if got != intent {
                wrong.push(format!("{text}: {got}"));
            }
        }
    }
    assert!(wrong.is_empty(), "{wrong:#?}");
}

/// A bank's bot whose two intents share their words but for what the
/// request is about.
fn bank() -> LocalBot {
    let intent = |name: &str, utterances: &[&str]| {
        let utterances: Vec<String> = utterances
            .iter()
            .map(|u| format!(r#"{{"utterance": "{u}"}}"#))
            .collect();
        format!(
            r#"{{"name": "{name}", "sampleUtterances": [{}]}}"#,
            utterances.join(", ")
        )
    };
    let balance = intent(
        "CheckBalance",
        &[
            "how much money do i have",
            "tell me my balance",
            "what is my balance",
            "show me how much money is in my account",
        ],
    );
    let card = intent(
        "ReportLostCard",
        &[
            "i lost my card",
            "tell me what to do about my stolen card",
            "my card is gone",
            "show me how to block my card",
        ],
    );
    export(
        "Bank",
        vec![
            ("Intents/CheckBalance/Intent.json".into(), balance),
            ("Intents/ReportLostCard/Intent.json".into(), card),
        ],
    )
}

#[test]
fn a_word_the_utterances_never_had_still_tells_its_intent_by_what_it_means() {
    let bot = bank();
    // The first intent other than the fallback: the unseen words weigh on
    // the confidence, but they choose the intent.
    let ranked = |text: &str| {
        bot.interpret(text)
            .into_iter()
            .map(|i| i.interpretation.intent)
            .find(|i| i != FALLBACK)
    };
    for (text, intent) in [
        ("tell me how much cash i have", "CheckBalance"),
        ("show me my savings", "CheckBalance"),
        // Only what "took" and "wallet" mean ties this one to the card
        // (without it, "my" leans to the balance).
        ("someone took my wallet", "ReportLostCard"),
    ] {
        assert_eq!(ranked(text).as_deref(), Some(intent), "{text}");
    }
}
