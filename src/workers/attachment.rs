//! A message's attachments as the NLU turn they make (`nlu::attachment`).

use serde_json::Value;

use crate::facebook::events::Attachment;
use crate::nlu::attachment::AttachmentTurn;

/// The turn a message's attachments make, or `None` without any. Until
/// Meta's 2026 change settled a sticker came as both an `image` and a
/// `sticker` attachment: it is a sticker.
pub fn attachment_turn(attachments: &[Attachment]) -> Option<AttachmentTurn> {
    let first = attachments
        .iter()
        .find(|a| a.kind == "sticker")
        .or(attachments.first())?;
    let payload = first.payload.as_ref();
    let text = |key: &str| {
        payload
            .and_then(|p| p.get(key))
            .and_then(Value::as_str)
            .map(str::to_string)
    };
    let coordinate = |key: &str| {
        payload
            .and_then(|p| p.get("coordinates"))
            .and_then(|c| c.get(key))
            .and_then(Value::as_f64)
            .filter(|v| v.is_finite())
    };
    let count = if first.kind == "sticker" {
        1
    } else {
        attachments.len()
    };
    Some(AttachmentTurn {
        kind: first.kind.clone(),
        url: text("url"),
        latitude: coordinate("lat"),
        longitude: coordinate("long"),
        count,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nlu::attachment::ANY;
    use serde_json::json;

    fn attachments(value: Value) -> Vec<Attachment> {
        serde_json::from_value(value).unwrap()
    }

    #[test]
    fn media_carry_their_first_url_and_their_count() {
        let turn = attachment_turn(&attachments(json!([
            {"type": "image", "payload": {"url": "https://cdn.test/a.jpg"}},
            {"type": "image", "payload": {"url": "https://cdn.test/b.jpg"}}
        ])))
        .unwrap();
        assert_eq!(turn.utterance(), "sent an image");
        assert_eq!(turn.url.as_deref(), Some("https://cdn.test/a.jpg"));
        assert_eq!(turn.count, 2);
    }

    #[test]
    fn a_location_carries_its_coordinates() {
        let turn = attachment_turn(&attachments(json!([
            {"type": "location", "payload": {"coordinates": {"lat": 48.137, "long": 11.575}}}
        ])))
        .unwrap();
        assert_eq!(
            (turn.latitude, turn.longitude),
            (Some(48.137), Some(11.575))
        );
    }

    #[test]
    fn a_sticker_sent_beside_an_image_is_a_sticker() {
        let turn = attachment_turn(&attachments(json!([
            {"type": "image", "payload": {"url": "https://cdn.test/s.png", "sticker_id": 369239263222822u64}},
            {"type": "sticker", "payload": {"url": "https://cdn.test/s.png", "sticker_id": 369239263222822u64}}
        ])))
        .unwrap();
        assert_eq!(turn.kind, "sticker");
        assert_eq!(turn.count, 1);
    }

    #[test]
    fn unknown_kinds_and_odd_payloads_still_make_a_turn() {
        let turn = attachment_turn(&attachments(json!([
            {"type": "ig_reel", "payload": null},
            {"type": "fallback", "payload": {"url": 7, "coordinates": "x"}}
        ])))
        .unwrap();
        assert_eq!(turn.utterance(), ANY);
        assert_eq!(turn.url, None);
        assert_eq!(turn.latitude, None);
        assert!(attachment_turn(&[]).is_none());
    }
}
