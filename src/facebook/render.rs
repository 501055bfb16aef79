//! Domain messages -> Send API JSON.

use serde_json::{json, Map, Value};

use crate::domain::{Button, Content, OutboundMessage};

/// The Send API `message` object for `message`.
pub fn message_object(message: &OutboundMessage) -> Value {
    let mut object = match &message.content {
        Content::Text(text) => json!({ "text": text.as_str() }),
        Content::Buttons { text, buttons } => template(json!({
            "template_type": "button",
            "text": text,
            "buttons": buttons.iter().map(button).collect::<Vec<_>>(),
        })),
        Content::Generic(elements) => template(json!({
            "template_type": "generic",
            "elements": elements.iter().map(|e| {
                let mut el = Map::new();
                el.insert("title".into(), json!(e.title));
                if let Some(s) = &e.subtitle {
                    el.insert("subtitle".into(), json!(s));
                }
                if let Some(u) = &e.image_url {
                    el.insert("image_url".into(), json!(u.as_str()));
                }
                if !e.buttons.is_empty() {
                    el.insert("buttons".into(), e.buttons.iter().map(button).collect());
                }
                Value::Object(el)
            }).collect::<Vec<_>>(),
        })),
        Content::Media { kind, url } => json!({
            "attachment": {
                "type": kind.as_str(),
                "payload": { "url": url.as_str(), "is_reusable": true },
            }
        }),
        Content::Raw(value) => value.clone(),
    };
    if !message.quick_replies.is_empty() {
        if let Some(map) = object.as_object_mut() {
            let replies = message
                .quick_replies
                .iter()
                .map(|q| json!({ "content_type": "text", "title": q.title, "payload": q.payload }))
                .collect();
            map.insert("quick_replies".into(), Value::Array(replies));
        }
    }
    object
}

fn template(payload: Value) -> Value {
    json!({ "attachment": { "type": "template", "payload": payload } })
}

fn button(b: &Button) -> Value {
    match b {
        Button::Postback { title, payload } => {
            json!({ "type": "postback", "title": title, "payload": payload })
        }
        Button::WebUrl { title, url } => {
            json!({ "type": "web_url", "title": title, "url": url.as_str() })
        }
    }
}

/// The full Send API request body for a stored outbox `body`
/// (`{"message": …}` or `{"sender_action": …}`).
pub fn send_payload(psid: &str, messaging_type: &str, tag: Option<&str>, body: &str) -> Value {
    let mut payload = match serde_json::from_str::<Value>(body) {
        Ok(Value::Object(map)) => map,
        _ => Map::new(),
    };
    payload.insert("recipient".into(), json!({ "id": psid }));
    if !payload.contains_key("sender_action") {
        payload.insert("messaging_type".into(), json!(messaging_type));
        if let Some(tag) = tag {
            payload.insert("tag".into(), json!(tag));
        }
    }
    Value::Object(payload)
}

/// The outbox `body` for a message.
pub fn outbox_body(message: &OutboundMessage) -> String {
    json!({ "message": message_object(message) }).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{GenericElement, HttpsUrl, MediaKind, QuickReply};

    #[test]
    fn text_with_quick_replies() {
        let m = OutboundMessage::text("t", "Pick one")
            .unwrap()
            .with_quick_replies("q", vec![QuickReply::parse("q", "Yes", "YES").unwrap()])
            .unwrap();
        assert_eq!(
            message_object(&m),
            json!({"text": "Pick one", "quick_replies": [
                {"content_type": "text", "title": "Yes", "payload": "YES"}]})
        );
    }

    #[test]
    fn button_and_generic_templates_and_media() {
        let b = vec![
            Button::postback("b", "Lock", "LOCK").unwrap(),
            Button::web_url("b", "Open", "https://example.com").unwrap(),
        ];
        let m = OutboundMessage::buttons("m", "Choose", b.clone()).unwrap();
        let v = message_object(&m);
        assert_eq!(v["attachment"]["payload"]["template_type"], "button");
        assert_eq!(v["attachment"]["payload"]["buttons"][1]["type"], "web_url");

        let g = OutboundMessage::generic(
            "m",
            vec![GenericElement {
                title: "Car".into(),
                subtitle: Some("Parked".into()),
                image_url: Some(HttpsUrl::parse("u", "https://example.com/c.png").unwrap()),
                buttons: b,
            }],
        )
        .unwrap();
        let v = message_object(&g);
        assert_eq!(
            v["attachment"]["payload"]["elements"][0]["subtitle"],
            "Parked"
        );

        let media = OutboundMessage {
            content: Content::Media {
                kind: MediaKind::Image,
                url: HttpsUrl::parse("u", "https://example.com/c.png").unwrap(),
            },
            quick_replies: vec![],
        };
        assert_eq!(message_object(&media)["attachment"]["type"], "image");
    }

    #[test]
    fn send_payload_adds_recipient_type_and_tag() {
        let p = send_payload(
            "U1",
            "MESSAGE_TAG",
            Some("HUMAN_AGENT"),
            r#"{"message":{"text":"hi"}}"#,
        );
        assert_eq!(
            p,
            json!({"recipient": {"id": "U1"}, "messaging_type": "MESSAGE_TAG",
                   "tag": "HUMAN_AGENT", "message": {"text": "hi"}})
        );
        let a = send_payload("U1", "RESPONSE", None, r#"{"sender_action":"typing_on"}"#);
        assert_eq!(
            a,
            json!({"recipient": {"id": "U1"}, "sender_action": "typing_on"})
        );
    }
}
