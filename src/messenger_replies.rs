//! NLU answers -> Messenger messages: each Lex content type mapped to what
//! Messenger can show, within Messenger's limits.

use serde_json::Value;
use tracing::warn;

use crate::domain::message::{MAX_ELEMENT_TITLE, MAX_QUICK_REPLIES, MAX_TEXT, MAX_TITLE};
use crate::domain::{
    Button, Content, GenericElement, HttpsUrl, MessageText, OutboundMessage, QuickReply,
};
use crate::facebook::render::outbox_body;
use crate::nlu::{ImageResponseCard, NluMessage, NluReply};
use crate::store::outbox::NewOutboxMessage;

/// Most Messenger messages one answer becomes (a long text's pieces
/// included): a bot, a Lex hook or a fulfillment backend gone wrong could
/// otherwise answer one message with thousands, flooding the person and
/// holding the Page's send rate from everyone else's replies.
pub const MAX_REPLIES_PER_TURN: usize = 10;

/// Outbox rows answering one inbox event, in the NLU's order; at most
/// `MAX_REPLIES_PER_TURN`, the rest dropped with a warning.
pub fn replies(
    page_id: &str,
    psid: &str,
    inbox_id: i64,
    reply: &NluReply,
) -> Vec<NewOutboxMessage> {
    let mut messages: Vec<OutboundMessage> = Vec::new();
    for message in &reply.messages {
        if let (Some(chips), Some(last)) = (quick_replies_only(message), messages.last_mut()) {
            last.quick_replies = chips;
            continue;
        }
        messages.extend(messenger_messages(message));
    }
    if messages.len() > MAX_REPLIES_PER_TURN {
        warn!(
            inbox_id,
            messages = messages.len(),
            kept = MAX_REPLIES_PER_TURN,
            "an answer made too many Messenger messages; the rest were dropped"
        );
        messages.truncate(MAX_REPLIES_PER_TURN);
    }
    messages
        .iter()
        .map(|m| NewOutboxMessage::reply(page_id, psid, inbox_id, outbox_body(m)))
        .collect()
}

/// A custom payload of quick replies alone (`{"quick_replies": [...]}`), as
/// Lex bots write them after a message: Messenger shows quick replies only
/// on a message, so they go on the one before.
fn quick_replies_only(message: &NluMessage) -> Option<Vec<QuickReply>> {
    let NluMessage::CustomPayload(payload) = message else {
        return None;
    };
    let value: Value = serde_json::from_str(payload).ok()?;
    let map = value.as_object().filter(|m| m.len() == 1)?;
    let chips: Vec<QuickReply> = map
        .get("quick_replies")?
        .as_array()?
        .iter()
        .take(MAX_QUICK_REPLIES)
        .filter_map(|q| {
            let title = q.get("title")?.as_str()?;
            let payload = q.get("payload")?.as_str()?;
            QuickReply::parse("quick_replies", title, payload).ok()
        })
        .collect();
    (!chips.is_empty()).then_some(chips)
}

/// One NLU message as zero or more Messenger messages.
pub fn messenger_messages(message: &NluMessage) -> Vec<OutboundMessage> {
    match message {
        NluMessage::PlainText(text) => texts(text),
        NluMessage::Ssml(ssml) => texts(&strip_tags(ssml)),
        NluMessage::CustomPayload(payload) => match messenger_object(payload) {
            Some(object) => vec![OutboundMessage {
                content: Content::Raw(object),
                quick_replies: Vec::new(),
            }],
            None => texts(payload),
        },
        NluMessage::ImageResponseCard(card) => card_message(card),
    }
}

/// Text split into Messenger-sized pieces at sentence, then word boundaries.
fn texts(text: &str) -> Vec<OutboundMessage> {
    split_text(text, MAX_TEXT)
        .into_iter()
        .filter_map(|piece| {
            MessageText::parse("text", &piece)
                .ok()
                .map(|t| OutboundMessage {
                    content: Content::Text(t),
                    quick_replies: Vec::new(),
                })
        })
        .collect()
}

/// Splits `text` into pieces of at most `max` characters, preferring to cut
/// after a sentence end, then at white space, and only then mid-word.
pub fn split_text(text: &str, max: usize) -> Vec<String> {
    let mut pieces = Vec::new();
    let mut rest = text.trim();
    while rest.chars().count() > max {
        let byte_max = rest
            .char_indices()
            .nth(max)
            .map(|(i, _)| i)
            .unwrap_or(rest.len());
        let window = &rest[..byte_max];
        let sentence = window
            .char_indices()
            .rev()
            .find(|(i, c)| {
                matches!(c, '.' | '!' | '?' | '\n')
                    && rest[i + c.len_utf8()..].starts_with(char::is_whitespace)
            })
            .map(|(i, c)| i + c.len_utf8());
        let cut = sentence
            .filter(|&i| i > byte_max / 2)
            .or_else(|| window.rfind(char::is_whitespace).filter(|&i| i > 0))
            .unwrap_or(byte_max);
        pieces.push(rest[..cut].trim().to_string());
        rest = rest[cut..].trim_start();
    }
    if !rest.is_empty() {
        pieces.push(rest.to_string());
    }
    pieces
}

/// SSML with its tags removed and entities decoded.
fn strip_tags(ssml: &str) -> String {
    let mut out = String::with_capacity(ssml.len());
    let mut in_tag = false;
    for c in ssml.chars() {
        match c {
            '<' => in_tag = true,
            '>' if in_tag => in_tag = false,
            c if !in_tag => out.push(c),
            _ => {}
        }
    }
    let decoded = out
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&apos;", "'")
        .replace("&amp;", "&");
    decoded.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// A custom payload that is a Messenger `message` object (text, attachment
/// or quick replies with one of them). A `{"message": {...}}` wrapper is
/// accepted too.
fn messenger_object(payload: &str) -> Option<Value> {
    let value: Value = serde_json::from_str(payload).ok()?;
    let object = match value.get("message") {
        Some(inner) if inner.is_object() => inner.clone(),
        _ => value,
    };
    let map = object.as_object()?;
    let has_text = map
        .get("text")
        .and_then(Value::as_str)
        .is_some_and(|t| !t.trim().is_empty() && t.chars().count() <= MAX_TEXT);
    let has_attachment = map.get("attachment").is_some_and(Value::is_object);
    let known = map.keys().all(|k| {
        matches!(
            k.as_str(),
            "text" | "attachment" | "quick_replies" | "metadata"
        )
    });
    (known && (has_text ^ has_attachment)).then_some(object)
}

fn truncate(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_string();
    }
    let mut t: String = s.chars().take(max.saturating_sub(1)).collect();
    t.push('…');
    t
}

/// A card with an image, or with at most 3 buttons, becomes a generic
/// template; a card without an image and with more buttons becomes text with
/// quick replies (Messenger allows 13).
fn card_message(card: &ImageResponseCard) -> Vec<OutboundMessage> {
    let title = if card.title.trim().is_empty() {
        "…".to_string()
    } else {
        card.title.clone()
    };
    let image = card
        .image_url
        .as_deref()
        .and_then(|u| HttpsUrl::parse("imageUrl", u).ok());
    if image.is_none() && card.buttons.len() > 3 {
        let text = match &card.subtitle {
            Some(s) if !s.trim().is_empty() => format!("{title}\n{s}"),
            _ => title,
        };
        let replies: Vec<QuickReply> = card
            .buttons
            .iter()
            .take(MAX_QUICK_REPLIES)
            .filter_map(|b| {
                QuickReply::parse("button", &truncate(&b.text, MAX_TITLE), &b.value).ok()
            })
            .collect();
        return texts(&text)
            .into_iter()
            .enumerate()
            .map(|(i, mut m)| {
                if i == 0 {
                    m.quick_replies = replies.clone();
                }
                m
            })
            .collect();
    }
    let buttons = card
        .buttons
        .iter()
        .take(3)
        .filter_map(|b| Button::postback("button", &truncate(&b.text, MAX_TITLE), &b.value).ok())
        .collect();
    let element = GenericElement {
        title: truncate(&title, MAX_ELEMENT_TITLE),
        subtitle: card
            .subtitle
            .as_deref()
            .filter(|s| !s.trim().is_empty())
            .map(|s| truncate(s, MAX_ELEMENT_TITLE)),
        image_url: image,
        buttons,
    };
    match OutboundMessage::generic("card", vec![element]) {
        Ok(m) => vec![m],
        Err(e) => {
            warn!(error = %e, "an image response card could not be shown");
            texts(&card.title)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::facebook::render::message_object;
    use crate::nlu::CardButton;
    use serde_json::json;

    fn objects(m: &NluMessage) -> Vec<Value> {
        messenger_messages(m).iter().map(message_object).collect()
    }

    #[test]
    fn quick_replies_alone_go_on_the_message_before() {
        let chips = r#"{"quick_replies": [{"content_type": "text", "title": "Status", "payload": "check my car status"},
                                          {"content_type": "text", "title": "Lock", "payload": "lock the doors"}]}"#;
        let reply = NluReply {
            messages: vec![
                NluMessage::PlainText("I can help.".into()),
                NluMessage::CustomPayload(chips.into()),
            ],
            ..Default::default()
        };
        let rows = replies("PAGE", "P", 1, &reply);
        assert_eq!(rows.len(), 1);
        let body: Value = serde_json::from_str(&rows[0].body).unwrap();
        assert_eq!(body["message"]["text"], "I can help.");
        assert_eq!(
            body["message"]["quick_replies"][1]["payload"],
            "lock the doors"
        );
        // With nothing before them they stay as they were.
        let alone = NluReply {
            messages: vec![NluMessage::CustomPayload(chips.into())],
            ..Default::default()
        };
        assert_eq!(replies("PAGE", "P", 1, &alone).len(), 1);
    }

    #[test]
    fn an_answer_makes_at_most_ten_messages() {
        let many = NluReply {
            messages: (0..50)
                .map(|i| NluMessage::PlainText(format!("message {i}")))
                .collect(),
            ..Default::default()
        };
        let rows = replies("PAGE", "P", 1, &many);
        assert_eq!(rows.len(), MAX_REPLIES_PER_TURN);
        let last: Value = serde_json::from_str(&rows[9].body).unwrap();
        assert_eq!(
            last["message"]["text"], "message 9",
            "the first ones, in order"
        );
        // A text of 100,000 characters is no way around it.
        let long = NluReply {
            messages: vec![NluMessage::PlainText("word ".repeat(20_000))],
            ..Default::default()
        };
        assert_eq!(replies("PAGE", "P", 1, &long).len(), MAX_REPLIES_PER_TURN);
    }

    #[test]
    fn long_text_is_split_at_sentences_then_words() {
        let sentence = "This sentence is exactly forty chars ok. ";
        let text = sentence.repeat(60);
        let pieces = split_text(&text, 2000);
        assert!(pieces.len() >= 2);
        assert!(pieces.iter().all(|p| p.chars().count() <= 2000));
        assert!(pieces[0].ends_with('.'));
        let words = "word ".repeat(500);
        let pieces = split_text(&words, 2000);
        assert!(pieces.iter().all(|p| !p.ends_with("wor")));
        assert_eq!(pieces.join(" ").split(' ').count(), 500);
        assert_eq!(split_text(&"x".repeat(4001), 2000).len(), 3);
    }

    #[test]
    fn ssml_becomes_plain_text() {
        let m = NluMessage::Ssml(
            "<speak>Your car is <emphasis>locked</emphasis> &amp; safe.</speak>".into(),
        );
        assert_eq!(
            objects(&m),
            vec![json!({"text": "Your car is locked & safe."})]
        );
    }

    #[test]
    fn custom_payload_passes_through_only_when_it_is_a_messenger_message() {
        let valid = r#"{"attachment":{"type":"image","payload":{"url":"https://x.test/a.png"}}}"#;
        assert_eq!(
            objects(&NluMessage::CustomPayload(valid.into()))[0]["attachment"]["type"],
            "image"
        );
        let not_messenger = r#"{"foo":"bar"}"#;
        assert_eq!(
            objects(&NluMessage::CustomPayload(not_messenger.into())),
            vec![json!({"text": not_messenger})]
        );
    }

    fn card(image: Option<&str>, buttons: usize) -> NluMessage {
        NluMessage::ImageResponseCard(ImageResponseCard {
            title: "Doors".into(),
            subtitle: Some("What now?".into()),
            image_url: image.map(str::to_string),
            buttons: (0..buttons)
                .map(|i| CardButton {
                    text: format!("Option number {i} with a long title"),
                    value: format!("V{i}"),
                })
                .collect(),
        })
    }

    #[test]
    fn cards_become_generic_templates_or_quick_replies() {
        let with_image = objects(&card(Some("https://x.test/car.png"), 5));
        let payload = &with_image[0]["attachment"]["payload"];
        assert_eq!(payload["template_type"], "generic");
        let buttons = payload["elements"][0]["buttons"].as_array().unwrap();
        assert_eq!(buttons.len(), 3);
        assert_eq!(buttons[0]["payload"], "V0");
        assert!(buttons[0]["title"].as_str().unwrap().chars().count() <= 20);

        let no_image = objects(&card(None, 15));
        assert_eq!(no_image[0]["text"], "Doors\nWhat now?");
        let replies = no_image[0]["quick_replies"].as_array().unwrap();
        assert_eq!(replies.len(), 13);
        assert_eq!(replies[12]["payload"], "V12");
    }
}
