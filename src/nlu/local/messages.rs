//! Lex message groups: parsing them from the export and rendering one
//! message per group, with `{slot}` and `[attribute]` references filled in.

use super::json::Node;
use super::LoadError;
use crate::nlu::reply::{CardButton, ImageResponseCard, NluMessage, SlotValue};
use std::borrow::Cow;
use std::collections::BTreeMap;

#[derive(Debug, Clone, PartialEq)]
pub struct MessageGroup {
    pub message: NluMessage,
    pub variations: Vec<NluMessage>,
}

/// `node.key.messageGroupsList`, empty when `key` is absent.
pub fn groups_at(node: Node<'_>, key: &str) -> Result<Vec<MessageGroup>, LoadError> {
    match node.get(key) {
        Some(child) => groups(child.node()),
        None => Ok(Vec::new()),
    }
}

/// `node.messageGroupsList`.
pub fn groups(node: Node<'_>) -> Result<Vec<MessageGroup>, LoadError> {
    let mut out = Vec::new();
    for group in node.items("messageGroupsList")? {
        let g = group.node();
        let first = message(g.req("message")?.node())?;
        let variations = g
            .items("variations")?
            .iter()
            .map(|v| message(v.node()))
            .collect::<Result<Vec<_>, _>>()?;
        out.push(MessageGroup {
            message: first,
            variations,
        });
    }
    Ok(out)
}

fn message(node: Node<'_>) -> Result<NluMessage, LoadError> {
    if let Some(m) = node.get("plainTextMessage") {
        return Ok(NluMessage::PlainText(
            m.node().req_str("value")?.to_string(),
        ));
    }
    if let Some(m) = node.get("ssmlMessage") {
        return Ok(NluMessage::Ssml(m.node().req_str("value")?.to_string()));
    }
    if let Some(m) = node.get("customPayload") {
        return Ok(NluMessage::CustomPayload(
            m.node().req_str("value")?.to_string(),
        ));
    }
    if let Some(m) = node.get("imageResponseCard") {
        let card = m.node();
        let mut buttons = Vec::new();
        for b in card.items("buttons")? {
            let b = b.node();
            buttons.push(CardButton {
                text: b.req_str("text")?.to_string(),
                value: b.req_str("value")?.to_string(),
            });
        }
        return Ok(NluMessage::ImageResponseCard(ImageResponseCard {
            title: card.req_str("title")?.to_string(),
            subtitle: card.opt_str("subtitle")?.map(str::to_string),
            image_url: card.opt_str("imageUrl")?.map(str::to_string),
            buttons,
        }));
    }
    Err(node.error(
        "plainTextMessage",
        "a message needs plainTextMessage, ssmlMessage, customPayload or imageResponseCard",
    ))
}

/// Values that may be referenced from a message.
pub struct Context<'a> {
    pub slots: &'a BTreeMap<String, Option<SlotValue>>,
    pub attributes: &'a BTreeMap<String, String>,
}

/// One message per group; `pick` chooses among a group's variations so the
/// choice is deterministic for a given turn.
pub fn render(groups: &[MessageGroup], pick: u64, ctx: &Context<'_>) -> Vec<NluMessage> {
    groups
        .iter()
        .enumerate()
        .map(|(i, g)| {
            let n = g.variations.len() as u64 + 1;
            let k = (pick.wrapping_add(i as u64 * 7919)) % n;
            let chosen = if k == 0 {
                &g.message
            } else {
                g.variations.get(k as usize - 1).unwrap_or(&g.message)
            };
            fill_message(chosen, ctx)
        })
        .collect()
}

fn fill_message(message: &NluMessage, ctx: &Context<'_>) -> NluMessage {
    match message {
        NluMessage::PlainText(t) => NluMessage::PlainText(fill(t, ctx)),
        NluMessage::Ssml(t) => NluMessage::Ssml(fill(t, ctx)),
        NluMessage::CustomPayload(t) => NluMessage::CustomPayload(fill_json(t, ctx)),
        NluMessage::ImageResponseCard(c) => NluMessage::ImageResponseCard(ImageResponseCard {
            title: fill(&c.title, ctx),
            subtitle: c.subtitle.as_ref().map(|s| fill(s, ctx)),
            image_url: c.image_url.clone(),
            buttons: c
                .buttons
                .iter()
                .map(|b| CardButton {
                    text: fill(&b.text, ctx),
                    value: b.value.clone(),
                })
                .collect(),
        }),
    }
}

/// Replaces `{slot}` with the slot's interpreted value and `[attr]` or
/// `((attr))` with a session attribute; other braces are left alone so JSON
/// payloads survive.
pub fn fill(text: &str, ctx: &Context<'_>) -> String {
    fill_with(text, ctx, Cow::Borrowed)
}

/// `fill` for a custom payload (JSON): each value goes in escaped as a JSON
/// string's contents, so what a person typed into a slot stays inside the
/// string the bot's author put it in and cannot add fields or buttons.
fn fill_json(text: &str, ctx: &Context<'_>) -> String {
    fill_with(text, ctx, |value| {
        let quoted = serde_json::Value::from(value).to_string();
        Cow::Owned(quoted[1..quoted.len() - 1].to_string())
    })
}

fn fill_with<'v>(text: &str, ctx: &Context<'v>, put: impl Fn(&'v str) -> Cow<'v, str>) -> String {
    let mut out = text.to_string();
    for (name, value) in ctx.slots {
        let pattern = format!("{{{name}}}");
        if out.contains(&pattern) {
            let v = value
                .as_ref()
                .map(|v| v.interpreted_value.as_str())
                .unwrap_or("");
            out = out.replace(&pattern, &put(v));
        }
    }
    for (name, value) in ctx.attributes {
        for pattern in [format!("(({name}))"), format!("[{name}]")] {
            if out.contains(&pattern) {
                out = out.replace(&pattern, &put(value));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_all_content_types_and_fills_references() {
        let v = serde_json::json!({"messageGroupsList": [
            {"message": {"plainTextMessage": {"value": "Radius {radius} for [name]?"}},
             "variations": [{"ssmlMessage": {"value": "<speak>ok</speak>"}}]},
            {"message": {"customPayload": {"value": "{\"a\":1}"}}},
            {"message": {"imageResponseCard": {"title": "Help", "buttons": [{"text": "Lock", "value": "lock"}]}}}
        ]});
        let groups = groups(Node::root(&v, "I.json")).expect("groups");
        assert_eq!(groups.len(), 3);
        let mut slots = BTreeMap::new();
        slots.insert(
            "radius".to_string(),
            Some(SlotValue {
                original_value: "five".into(),
                interpreted_value: "5".into(),
                resolved_values: vec!["5".into()],
                values: Vec::new(),
            }),
        );
        let mut attributes = BTreeMap::new();
        attributes.insert("name".to_string(), "Ann".to_string());
        let ctx = Context {
            slots: &slots,
            attributes: &attributes,
        };
        let out = render(&groups, 0, &ctx);
        assert_eq!(out[0], NluMessage::PlainText("Radius 5 for Ann?".into()));
        assert_eq!(out[1], NluMessage::CustomPayload("{\"a\":1}".into()));
        assert!(matches!(out[2], NluMessage::ImageResponseCard(_)));
        let varied = render(&groups, 1, &ctx);
        assert_eq!(varied[0], NluMessage::Ssml("<speak>ok</speak>".into()));
    }

    #[test]
    fn a_typed_value_stays_inside_its_string_in_a_custom_payload() {
        let typed = r#"a","quick_replies":[{"title":"x"}],"z":"\"#;
        let mut slots = BTreeMap::new();
        slots.insert(
            "note".to_string(),
            Some(SlotValue {
                original_value: typed.into(),
                interpreted_value: typed.into(),
                resolved_values: vec![typed.into()],
                values: Vec::new(),
            }),
        );
        let attributes = BTreeMap::from([("who".to_string(), "Ann \"the\" Bold".to_string())]);
        let ctx = Context {
            slots: &slots,
            attributes: &attributes,
        };
        let template = NluMessage::CustomPayload(r#"{"text": "Noted: {note}, [who]"}"#.into());
        let NluMessage::CustomPayload(filled) = fill_message(&template, &ctx) else {
            panic!("a custom payload");
        };
        let payload: serde_json::Value = serde_json::from_str(&filled).expect("still JSON");
        assert_eq!(
            payload,
            serde_json::json!({"text": format!("Noted: {typed}, Ann \"the\" Bold")})
        );
        // Plain text is not JSON: the value goes in as typed.
        let text = NluMessage::PlainText("Noted: {note}".into());
        assert_eq!(
            fill_message(&text, &ctx),
            NluMessage::PlainText(format!("Noted: {typed}"))
        );
    }

    #[test]
    fn names_the_field_of_a_bad_message() {
        let v = serde_json::json!({"messageGroupsList": [{"message": {}}]});
        let err = groups(Node::root(&v, "I.json")).expect_err("bad");
        assert_eq!(err.file, "I.json");
        assert_eq!(
            err.field.as_deref(),
            Some("messageGroupsList[0].message.plainTextMessage")
        );
    }
}
