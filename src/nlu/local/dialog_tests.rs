//! Every dialog path, against the pizza bot in `tests/fixtures/dialog-bot`
//! and the bundled vehicle assistant.

use super::dialog::{DialogState, Now, Turn};
use super::{FileMap, LocalBot, Today};
use crate::nlu::reply::{NluMessage, NluReply};
use std::collections::BTreeMap;
use std::sync::OnceLock;

macro_rules! fixture {
    ($($path:literal),* $(,)?) => {
        FileMap::from_entries([$(($path, include_str!(concat!("../../../tests/fixtures/dialog-bot/", $path)))),*])
    };
}

fn pizza() -> &'static LocalBot {
    static BOT: OnceLock<LocalBot> = OnceLock::new();
    BOT.get_or_init(|| {
        let files = fixture!(
            "Manifest.json",
            "PizzaDialog/Bot.json",
            "PizzaDialog/BotLocales/en_US/BotLocale.json",
            "PizzaDialog/BotLocales/en_US/Intents/FallbackIntent/Intent.json",
            "PizzaDialog/BotLocales/en_US/Intents/Hello/Intent.json",
            "PizzaDialog/BotLocales/en_US/Intents/Hours/Intent.json",
            "PizzaDialog/BotLocales/en_US/Intents/OrderPizza/Intent.json",
            "PizzaDialog/BotLocales/en_US/Intents/OrderPizza/Slots/count/Slot.json",
            "PizzaDialog/BotLocales/en_US/Intents/OrderPizza/Slots/day/Slot.json",
            "PizzaDialog/BotLocales/en_US/Intents/OrderPizza/Slots/size/Slot.json",
            "PizzaDialog/BotLocales/en_US/SlotTypes/PizzaSize/SlotType.json",
        );
        LocalBot::from_files(&files).expect("fixture bot loads")
    })
}

fn today() -> Today {
    Today::from_ymd(2026, 11, 23)
}

struct Chat<'a> {
    bot: &'a LocalBot,
    state: Option<DialogState>,
    attrs: BTreeMap<String, String>,
}

impl<'a> Chat<'a> {
    fn new(bot: &'a LocalBot) -> Self {
        Chat {
            bot,
            state: None,
            attrs: BTreeMap::new(),
        }
    }

    /// Sends `text`; a ready intent is closed the "no backend" way.
    fn say(&mut self, text: &str) -> NluReply {
        match self.send(text) {
            Turn::Reply { reply, state } => {
                self.state = Some(state);
                reply
            }
            Turn::Fulfill { state, .. } => {
                let (reply, state) = self.bot.close_without_backend(state);
                self.state = Some(state);
                reply
            }
        }
    }

    fn send(&mut self, text: &str) -> Turn {
        // The state goes through JSON, as it does in the conversation row.
        let stored = self.state.take().map(|s| {
            let json = serde_json::to_string(&s).expect("state serialises");
            serde_json::from_str::<DialogState>(&json).expect("state deserialises")
        });
        self.bot.turn_at(
            stored,
            text,
            &self.attrs,
            Now {
                today: today(),
                epoch_ms: 0,
            },
        )
    }
}

fn action(r: &NluReply) -> (&str, Option<&str>) {
    let d = r.dialog_action.as_ref().expect("dialog action");
    (d.kind.as_str(), d.slot_to_elicit.as_deref())
}

fn intent_state(r: &NluReply) -> (&str, &str) {
    let i = r.intent.as_ref().expect("intent");
    (i.name.as_str(), i.state.as_deref().unwrap_or(""))
}

fn text(r: &NluReply) -> String {
    r.messages
        .iter()
        .filter_map(|m| match m {
            NluMessage::PlainText(t) => Some(t.as_str()),
            _ => None,
        })
        .collect::<Vec<_>>()
        .join(" ")
}

fn slot<'r>(r: &'r NluReply, name: &str) -> Option<&'r str> {
    r.intent
        .as_ref()?
        .slots
        .get(name)?
        .as_ref()
        .map(|v| v.interpreted_value.as_str())
}

#[test]
fn elicits_required_slots_in_priority_order_then_confirms_and_closes() {
    let mut chat = Chat::new(pizza());
    let r = chat.say("I want to order a pizza");
    assert_eq!(action(&r), ("ElicitSlot", Some("size")));
    assert_eq!(intent_state(&r), ("OrderPizza", "InProgress"));
    assert_eq!(text(&r), "What size: small, medium or large?");
    let r = chat.say("a big one");
    assert_eq!(slot(&r, "size"), Some("large"));
    assert_eq!(action(&r), ("ElicitSlot", Some("count")));
    let r = chat.say("3 pizzas");
    assert_eq!(action(&r), ("ConfirmIntent", None));
    assert_eq!(text(&r), "Order 3 large pizza(s)?");
    let r = chat.say("yes please");
    assert_eq!(action(&r), ("Close", None));
    assert_eq!(intent_state(&r), ("OrderPizza", "Fulfilled"));
    assert_eq!(
        r.intent
            .as_ref()
            .and_then(|i| i.confirmation_state.as_deref()),
        Some("Confirmed")
    );
    assert_eq!(text(&r), "Your 3 large pizza(s) are on the way.");
}

#[test]
fn accepts_values_given_early_and_out_of_order() {
    let mut chat = Chat::new(pizza());
    let r = chat.say("order 2 large pizzas for tomorrow");
    assert_eq!(action(&r), ("ConfirmIntent", None));
    assert_eq!(slot(&r, "count"), Some("2"));
    assert_eq!(slot(&r, "size"), Some("large"));
    assert_eq!(slot(&r, "day"), Some("2026-11-24"));
}

#[test]
fn gives_up_after_max_retries_with_the_slot_failure_response() {
    let mut chat = Chat::new(pizza());
    chat.say("order a small pizza");
    for _ in 0..2 {
        let r = chat.say("banana");
        assert_eq!(action(&r), ("ElicitSlot", Some("count")));
    }
    let r = chat.say("banana");
    assert_eq!(intent_state(&r), ("OrderPizza", "Failed"));
    assert_eq!(action(&r), ("Close", None));
    assert_eq!(text(&r), "Sorry, I couldn't get the number of pizzas.");
    let r = chat.say("hello");
    assert_eq!(intent_state(&r).0, "Hello");
}

#[test]
fn denial_sends_the_declination_response() {
    let mut chat = Chat::new(pizza());
    chat.say("i want 2 medium pizzas");
    let r = chat.say("no");
    assert_eq!(intent_state(&r), ("OrderPizza", "Failed"));
    assert_eq!(
        r.intent
            .as_ref()
            .and_then(|i| i.confirmation_state.as_deref()),
        Some("Denied")
    );
    assert_eq!(text(&r), "Okay, I cancelled the order.");
}

#[test]
fn unclear_confirmation_retries_then_fails() {
    let mut chat = Chat::new(pizza());
    chat.say("i want 2 medium pizzas");
    assert_eq!(action(&chat.say("purple")), ("ConfirmIntent", None));
    assert_eq!(action(&chat.say("purple")), ("ConfirmIntent", None));
    let r = chat.say("purple");
    assert_eq!(intent_state(&r), ("OrderPizza", "Failed"));
    assert_eq!(text(&r), "Sorry, I couldn't confirm the order.");
}

#[test]
fn fulfillment_outcomes() {
    let bot = pizza();
    let mut chat = Chat::new(bot);
    chat.say("order 2 large pizzas");
    let Turn::Fulfill { request, state } = chat.send("yes") else {
        panic!("expected fulfillment");
    };
    assert_eq!(request.intent, "OrderPizza");
    assert_eq!(request.confirmation_state, "Confirmed");
    let (ok, _) = bot.finish_fulfillment(
        state.clone(),
        Ok(vec![NluMessage::PlainText("Order #7".into())]),
    );
    assert_eq!(text(&ok), "Order #7");
    assert_eq!(intent_state(&ok), ("OrderPizza", "Fulfilled"));
    let (err, next) = bot.finish_fulfillment(state, Err("timeout".into()));
    assert_eq!(intent_state(&err), ("OrderPizza", "Failed"));
    assert_eq!(text(&err), "The kitchen could not take the order.");
    assert_eq!(next.intent, None);
}

#[test]
fn out_of_scope_goes_to_the_fallback_intent() {
    let mut chat = Chat::new(pizza());
    let r = chat.say("what is the capital of mongolia");
    assert_eq!(intent_state(&r).0, "FallbackIntent");
    assert_eq!(text(&r), "Sorry, I can only help with pizza orders.");
    assert_eq!(r.interpretations[0].nlu_confidence, None);
}

#[test]
fn session_attributes_fill_messages() {
    let mut chat = Chat::new(pizza());
    chat.attrs.insert("name".into(), "Ann".into());
    let r = chat.say("hello");
    assert_eq!(text(&r), "Hello Ann!");
    assert_eq!(
        r.session_attributes.get("name").map(String::as_str),
        Some("Ann")
    );
}

#[test]
fn interpretations_are_ranked_and_capped() {
    let out = pizza().interpret_at("order a large pizza", today());
    assert!(out.len() <= 5);
    assert_eq!(out[0].interpretation.intent, "OrderPizza");
    assert!(out
        .iter()
        .any(|i| i.interpretation.intent == "FallbackIntent"));
}

#[test]
fn bundled_vehicle_assistant_answers() {
    let bot = LocalBot::bundled().expect("bundled bot loads");
    let mut chat = Chat::new(&bot);
    let r = chat.say("please lock my car");
    assert_eq!(action(&r), ("ConfirmIntent", None));
    let r = chat.say("yes");
    assert_eq!(intent_state(&r), ("LockDoors", "Fulfilled"));
    let r = chat.say("set a geofence of 500 meters around my house");
    assert_eq!(intent_state(&r), ("SetGeofence", "Fulfilled"));
    assert!(text(&r).contains("500 meters around my house"));
    let r = chat.say("help");
    assert!(r
        .messages
        .iter()
        .any(|m| matches!(m, NluMessage::ImageResponseCard(_))));
    assert!(r
        .messages
        .iter()
        .any(|m| matches!(m, NluMessage::CustomPayload(_))));
}

#[test]
fn malformed_exports_name_the_file_and_field() {
    let files = FileMap::from_entries([
        ("Manifest.json", r#"{"metaData": {"resourceType": "Bot"}}"#),
        ("B/Bot.json", r#"{"name": "B"}"#),
        (
            "B/BotLocales/en_US/BotLocale.json",
            r#"{"nluConfidenceThreshold": 0.4}"#,
        ),
        (
            "B/BotLocales/en_US/Intents/A/Intent.json",
            r#"{"name": "A", "sampleUtterances": [{"utterance": 3}]}"#,
        ),
    ]);
    let err = LocalBot::from_files(&files).expect_err("malformed");
    assert_eq!(err.file, "B/BotLocales/en_US/Intents/A/Intent.json");
    assert_eq!(err.field.as_deref(), Some("sampleUtterances[0].utterance"));
}

/// An attachment turn starts the intent that lists its utterance word for
/// word (case and a final stop aside), also in the middle of another
/// intent's slot; one no intent lists leaves the dialog as it was.
#[test]
fn attachment_turns_route_only_by_their_exact_utterance() {
    let now = Now {
        today: today(),
        epoch_ms: 0,
    };
    let mut chat = Chat::new(pizza());
    let r = chat.say("I want to order a pizza");
    assert_eq!(action(&r), ("ElicitSlot", Some("size")));
    let before = chat.state.clone();
    let photo = pizza().attachment_turn_at(
        before.clone(),
        &["sent an image", "sent an attachment"],
        &chat.attrs,
        now,
    );
    assert!(photo.is_none(), "no intent lists a photo");
    let sticker = pizza()
        .attachment_turn_at(
            before,
            &["sent a sticker", "sent an attachment"],
            &chat.attrs,
            now,
        )
        .expect("Hello lists the sticker");
    let (reply, state) = match sticker {
        Turn::Reply { reply, state } => (reply, state),
        Turn::Fulfill { request, state } => {
            assert_eq!(request.intent, "Hello");
            pizza().close_without_backend(state)
        }
    };
    assert_eq!(intent_state(&reply), ("Hello", "Fulfilled"));
    assert_eq!(reply.interpretations[0].nlu_confidence, Some(1.0));
    assert_eq!(
        state.intent, None,
        "the pizza order gave way to the sticker"
    );
}
