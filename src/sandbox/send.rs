//! The Send API's checks, as Meta makes them: one recipient, a message or a
//! sender action, Messenger's size limits, the messaging type and tag, and
//! the person's window (24 hours; 7 days with `HUMAN_AGENT`).

use serde_json::Value;

use super::error::MetaError;
use crate::domain::window::{HUMAN_AGENT_WINDOW_MS, STANDARD_WINDOW_MS};

/// What a Send API call asks for, once it passed.
#[derive(Debug, Clone, PartialEq)]
pub enum Outgoing {
    Action(String),
    Message { message: Value, tag: Option<String> },
}

/// The recipient's PSID named in `body`.
pub fn recipient(body: &Value) -> Result<&str, MetaError> {
    body.pointer("/recipient/id")
        .and_then(Value::as_str)
        .filter(|id| !id.is_empty())
        .ok_or_else(|| MetaError::param("The parameter recipient is required"))
}

/// Checks a Send API body for a person who last wrote at `last_wrote`.
pub fn check(body: &Value, now: i64, last_wrote: Option<i64>) -> Result<Outgoing, MetaError> {
    recipient(body)?;
    let within = |window: i64| last_wrote.is_some_and(|at| now - at <= window);
    if let Some(action) = body.get("sender_action") {
        if body.get("message").is_some() {
            return Err(MetaError::param(
                "Only one of message and sender_action may be set",
            ));
        }
        let action = action.as_str().unwrap_or_default().to_ascii_lowercase();
        if !matches!(action.as_str(), "typing_on" | "typing_off" | "mark_seen") {
            return Err(MetaError::param(
                "Param sender_action must be one of {MARK_SEEN, TYPING_ON, TYPING_OFF}",
            ));
        }
        if !within(STANDARD_WINDOW_MS) {
            return Err(MetaError::outside_window());
        }
        return Ok(Outgoing::Action(action));
    }
    let message = body
        .get("message")
        .filter(|m| m.is_object())
        .ok_or_else(|| MetaError::param("The parameter message is required"))?;
    let kind = body
        .get("messaging_type")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let tag = body.get("tag").and_then(Value::as_str);
    let window = match kind {
        "RESPONSE" | "UPDATE" => STANDARD_WINDOW_MS,
        "MESSAGE_TAG" => match tag {
            Some("HUMAN_AGENT") => HUMAN_AGENT_WINDOW_MS,
            Some(_) => return Err(MetaError::param("Param tag must be one of {HUMAN_AGENT}")),
            None => {
                return Err(MetaError::param(
                    "The parameter tag is required with messaging_type MESSAGE_TAG",
                ))
            }
        },
        _ => {
            return Err(MetaError::param(
                "Param messaging_type must be one of {RESPONSE, UPDATE, MESSAGE_TAG}",
            ))
        }
    };
    check_message(message)?;
    if !within(window) {
        return Err(MetaError::outside_window());
    }
    Ok(Outgoing::Message {
        message: message.clone(),
        tag: tag.filter(|_| kind == "MESSAGE_TAG").map(str::to_string),
    })
}

fn chars(value: Option<&Value>) -> Option<usize> {
    value.and_then(Value::as_str).map(|s| s.chars().count())
}

/// A string field of 1 to `max` characters.
fn text_field(value: Option<&Value>, name: &str, max: usize) -> Result<(), MetaError> {
    match chars(value) {
        Some(n) if (1..=max).contains(&n) => Ok(()),
        Some(0) | None => Err(MetaError::param(format!(
            "The parameter {name} is required"
        ))),
        Some(_) => Err(MetaError::param(format!(
            "Length of param {name} must be less than or equal to {max}"
        ))),
    }
}

fn list<'a>(
    value: Option<&'a Value>,
    name: &str,
    min: usize,
    max: usize,
) -> Result<&'a [Value], MetaError> {
    let items = value
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    if items.len() < min || items.len() > max {
        return Err(MetaError::param(format!(
            "param {name} must have between {min} and {max} items"
        )));
    }
    Ok(items)
}

fn http_url(value: Option<&Value>, name: &str) -> Result<(), MetaError> {
    let ok = value
        .and_then(Value::as_str)
        .and_then(|u| url::Url::parse(u).ok())
        .is_some_and(|u| matches!(u.scheme(), "http" | "https"));
    match ok {
        true => Ok(()),
        false => Err(MetaError::param(format!(
            "Param {name} must be a valid URL"
        ))),
    }
}

fn check_message(message: &Value) -> Result<(), MetaError> {
    let text = message.get("text");
    let attachment = message.get("attachment");
    match (text, attachment) {
        (Some(_), Some(_)) | (None, None) => {
            return Err(MetaError::param(
                "Exactly one of message[text] and message[attachment] must be set",
            ))
        }
        (Some(_), None) => text_field(text, "message[text]", 2000)?,
        (None, Some(a)) => check_attachment(a)?,
    }
    if let Some(replies) = message.get("quick_replies") {
        for (i, reply) in list(Some(replies), "message[quick_replies]", 1, 13)?
            .iter()
            .enumerate()
        {
            let kind = reply
                .get("content_type")
                .and_then(Value::as_str)
                .unwrap_or("text");
            if kind == "text" {
                text_field(
                    reply.get("title"),
                    &format!("message[quick_replies][{i}][title]"),
                    20,
                )?;
                text_field(
                    reply.get("payload"),
                    &format!("message[quick_replies][{i}][payload]"),
                    1000,
                )?;
            }
        }
    }
    Ok(())
}

fn check_attachment(attachment: &Value) -> Result<(), MetaError> {
    let payload = attachment.get("payload");
    match attachment.get("type").and_then(Value::as_str) {
        Some("template") => {
            let payload = payload.unwrap_or(&Value::Null);
            match payload.get("template_type").and_then(Value::as_str) {
                Some("button") => {
                    text_field(payload.get("text"), "message[attachment][payload][text]", 640)?;
                    buttons(payload.get("buttons"), "message[attachment][payload][buttons]", 1)
                }
                Some("generic") => {
                    let elements = list(payload.get("elements"), "message[attachment][payload][elements]", 1, 10)?;
                    for (i, e) in elements.iter().enumerate() {
                        let name = format!("message[attachment][payload][elements][{i}]");
                        text_field(e.get("title"), &format!("{name}[title]"), 80)?;
                        if e.get("subtitle").is_some() {
                            text_field(e.get("subtitle"), &format!("{name}[subtitle]"), 80)?;
                        }
                        if e.get("image_url").is_some() {
                            http_url(e.get("image_url"), &format!("{name}[image_url]"))?;
                        }
                        if e.get("buttons").is_some() {
                            buttons(e.get("buttons"), &format!("{name}[buttons]"), 1)?;
                        }
                    }
                    Ok(())
                }
                _ => Err(MetaError::param("Param message[attachment][payload][template_type] must be one of {button, generic}")),
            }
        }
        Some("image" | "audio" | "video" | "file") => http_url(
            payload.and_then(|p| p.get("url")),
            "message[attachment][payload][url]",
        ),
        _ => Err(MetaError::param(
            "Param message[attachment][type] must be one of {image, audio, video, file, template}",
        )),
    }
}

fn buttons(value: Option<&Value>, name: &str, min: usize) -> Result<(), MetaError> {
    for (i, b) in list(value, name, min, 3)?.iter().enumerate() {
        text_field(b.get("title"), &format!("{name}[{i}][title]"), 20)?;
        match b.get("type").and_then(Value::as_str) {
            Some("postback") => {
                text_field(b.get("payload"), &format!("{name}[{i}][payload]"), 1000)?
            }
            Some("web_url") => http_url(b.get("url"), &format!("{name}[{i}][url]"))?,
            _ => {
                return Err(MetaError::param(format!(
                    "Param {name}[{i}][type] must be one of {{postback, web_url}}"
                )))
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::window::HOUR_MS;
    use serde_json::json;

    const NOW: i64 = 1_000 * HOUR_MS;

    fn text(kind: &str, text: &str) -> Value {
        json!({"recipient": {"id": "P"}, "messaging_type": kind, "message": {"text": text}})
    }

    fn code(result: Result<Outgoing, MetaError>) -> (i64, Option<i64>) {
        let e = result.expect_err("refused");
        (e.code, e.subcode)
    }

    #[test]
    fn a_message_inside_the_window_passes_and_one_outside_is_refused_as_meta_does() {
        assert!(check(&text("RESPONSE", "hi"), NOW, Some(NOW - 23 * HOUR_MS)).is_ok());
        assert_eq!(
            code(check(&text("UPDATE", "hi"), NOW, Some(NOW - 25 * HOUR_MS))),
            (10, Some(2018278))
        );
        assert_eq!(
            code(check(&text("UPDATE", "hi"), NOW, None)),
            (10, Some(2018278))
        );
    }

    #[test]
    fn human_agent_reaches_seven_days_and_no_other_tag_is_taken() {
        let mut tagged = text("MESSAGE_TAG", "hi");
        tagged["tag"] = json!("HUMAN_AGENT");
        let two_days = Some(NOW - 48 * HOUR_MS);
        assert_eq!(
            check(&tagged, NOW, two_days).unwrap(),
            Outgoing::Message {
                message: json!({"text": "hi"}),
                tag: Some("HUMAN_AGENT".into())
            }
        );
        assert_eq!(
            code(check(&tagged, NOW, Some(NOW - 8 * 24 * HOUR_MS))),
            (10, Some(2018278))
        );
        tagged["tag"] = json!("ACCOUNT_UPDATE");
        assert_eq!(code(check(&tagged, NOW, two_days)), (100, None));
        tagged.as_object_mut().unwrap().remove("tag");
        assert_eq!(code(check(&tagged, NOW, two_days)), (100, None));
        assert_eq!(
            code(check(&text("NOTIFY", "hi"), NOW, two_days)),
            (100, None)
        );
    }

    #[test]
    fn messenger_limits_are_enforced() {
        let recent = Some(NOW);
        assert!(check(&text("RESPONSE", &"x".repeat(2000)), NOW, recent).is_ok());
        assert_eq!(
            code(check(&text("RESPONSE", &"x".repeat(2001)), NOW, recent)),
            (100, None)
        );
        assert_eq!(code(check(&text("RESPONSE", ""), NOW, recent)), (100, None));
        let with_replies = |n: usize, title: &str| {
            json!({"recipient": {"id": "P"}, "messaging_type": "RESPONSE",
            "message": {"text": "pick", "quick_replies": (0..n).map(|i| json!({"content_type": "text", "title": title, "payload": i.to_string()})).collect::<Vec<_>>()}})
        };
        assert!(check(&with_replies(13, "ok"), NOW, recent).is_ok());
        assert_eq!(
            code(check(&with_replies(14, "ok"), NOW, recent)),
            (100, None)
        );
        assert_eq!(
            code(check(&with_replies(1, &"t".repeat(21)), NOW, recent)),
            (100, None)
        );
        let template = |buttons: usize| {
            json!({"recipient": {"id": "P"}, "messaging_type": "RESPONSE",
            "message": {"attachment": {"type": "template", "payload": {"template_type": "button", "text": "t",
            "buttons": (0..buttons).map(|i| json!({"type": "postback", "title": "b", "payload": i.to_string()})).collect::<Vec<_>>()}}}})
        };
        assert!(check(&template(3), NOW, recent).is_ok());
        assert_eq!(code(check(&template(4), NOW, recent)), (100, None));
        let generic = |n: usize| {
            json!({"recipient": {"id": "P"}, "messaging_type": "RESPONSE",
            "message": {"attachment": {"type": "template", "payload": {"template_type": "generic",
            "elements": (0..n).map(|_| json!({"title": "t", "image_url": "https://example.com/car.png"})).collect::<Vec<_>>()}}}})
        };
        assert!(check(&generic(10), NOW, recent).is_ok());
        assert_eq!(code(check(&generic(11), NOW, recent)), (100, None));
        let both = json!({"recipient": {"id": "P"}, "messaging_type": "RESPONSE", "message": {"text": "a",
            "attachment": {"type": "image", "payload": {"url": "https://example.com/a.png"}}}});
        assert_eq!(code(check(&both, NOW, recent)), (100, None));
    }

    #[test]
    fn sender_actions_need_the_window_and_a_known_action() {
        let action = |a: &str| json!({"recipient": {"id": "P"}, "sender_action": a});
        assert_eq!(
            check(&action("typing_on"), NOW, Some(NOW)).unwrap(),
            Outgoing::Action("typing_on".into())
        );
        assert_eq!(code(check(&action("dance"), NOW, Some(NOW))), (100, None));
        assert_eq!(
            code(check(&action("mark_seen"), NOW, Some(NOW - 25 * HOUR_MS))),
            (10, Some(2018278))
        );
        assert_eq!(
            code(check(
                &json!({"sender_action": "typing_on"}),
                NOW,
                Some(NOW)
            )),
            (100, None)
        );
    }
}
