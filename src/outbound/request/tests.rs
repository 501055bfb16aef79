//! Requests parsed: each Messenger limit names its field.

use super::*;
use serde_json::json;

const NOW: i64 = 1_800_000_000_000;

fn parse(value: serde_json::Value) -> Result<Ping, ValidationError> {
    let request: MessageRequest = serde_json::from_value(value).expect("shape");
    request.parse(NOW, "P1", "")
}

fn field_of(value: serde_json::Value) -> String {
    parse(value).expect_err("invalid").field
}

#[test]
fn a_text_to_an_account_parses() {
    let ping = parse(json!({"to": {"account": "cust-42"}, "message": {"text": "Hi"}})).unwrap();
    assert_eq!(
        ping.target,
        Target::Account {
            id: "cust-42".into(),
            page_id: None
        }
    );
    assert!(!ping.human_agent);
    assert_eq!(ping.outside, OutsideWindow::Reject);
}

#[test]
fn a_psid_defaults_to_the_configured_page() {
    let ping = parse(json!({"to": {"psid": "U1"}, "message": {"text": "Hi"}})).unwrap();
    assert_eq!(
        ping.target,
        Target::Psid {
            page_id: "P1".into(),
            psid: "U1".into()
        }
    );
}

#[test]
fn the_recipient_must_be_one_form() {
    assert_eq!(
        field_of(json!({"to": {"account": "a", "uid": "u"}, "message": {"text": "x"}})),
        "to"
    );
    assert_eq!(field_of(json!({"to": {}, "message": {"text": "x"}})), "to");
    assert_eq!(
        field_of(json!({"to": {"account": " "}, "message": {"text": "x"}})),
        "to.account"
    );
    // Postgres refuses NUL in text: one such item would fail its batch.
    assert_eq!(
        field_of(json!({"to": {"account": "cust\u{0}"}, "message": {"text": "x"}})),
        "to.account"
    );
    assert_eq!(
        field_of(json!({"to": {"psid": "U\u{1}1"}, "message": {"text": "x"}})),
        "to.psid"
    );
}

#[test]
fn messenger_limits_name_their_field() {
    let to = json!({"account": "a"});
    let long = "x".repeat(2001);
    assert_eq!(
        field_of(json!({"to": to, "message": {"text": long}})),
        "message.text"
    );
    assert_eq!(field_of(json!({"to": to, "message": {}})), "message");
    let qr: Vec<_> = (0..14)
        .map(|i| json!({"title": format!("t{i}"), "payload": "p"}))
        .collect();
    assert_eq!(
        field_of(json!({"to": to, "message": {"text": "x", "quick_replies": qr}})),
        "message.quick_replies"
    );
    assert_eq!(
        field_of(json!({"to": to, "message": {"text": "x",
            "quick_replies": [{"title": "a title over twenty chars", "payload": "p"}]}})),
        "message.quick_replies[0].title"
    );
    assert_eq!(
        field_of(json!({"to": to, "message": {"text": "x",
            "quick_replies": [{"title": "ok", "payload": "p".repeat(1001)}]}})),
        "message.quick_replies[0].payload"
    );
    let b = json!({"type": "postback", "title": "Go", "payload": "GO"});
    assert_eq!(
        field_of(json!({"to": to, "message": {"text": "x", "buttons": [b, b, b, b]}})),
        "message.buttons"
    );
    assert_eq!(
        field_of(json!({"to": to, "message": {"text": "x",
            "buttons": [{"type": "web_url", "title": "Open", "url": "http://example.com"}]}})),
        "message.buttons[0].url"
    );
    assert_eq!(
        field_of(
            json!({"to": to, "message": {"attachment": {"type": "image", "url": "ftp://x/y.png"}}})
        ),
        "message.attachment.url"
    );
    assert_eq!(
        field_of(
            json!({"to": to, "message": {"attachment": {"type": "gif", "url": "https://x/y.gif"}}})
        ),
        "message.attachment.type"
    );
    assert_eq!(
        field_of(json!({"to": to, "message": {"text": "x",
            "attachment": {"type": "image", "url": "https://x/y.png"}}})),
        "message.attachment"
    );
}

#[test]
fn buttons_make_a_button_template() {
    let ping = parse(
        json!({"to": {"uid": "u1"}, "message": {"text": "Pay now?", "buttons": [
        {"type": "postback", "title": "Yes", "payload": "PAY"},
        {"type": "web_url", "title": "Invoice", "url": "https://example.com/inv/1"}]}}),
    )
    .unwrap();
    assert!(
        matches!(ping.message.content, Content::Buttons { ref buttons, .. } if buttons.len() == 2)
    );
}

#[test]
fn only_human_agent_is_a_tag() {
    let to = json!({"account": "a"});
    let err =
        parse(json!({"to": to, "message": {"text": "x"}, "tag": "ACCOUNT_UPDATE"})).unwrap_err();
    assert_eq!(err.field, "tag");
    assert!(
        err.reason.contains("withdrawn by Meta in April 2026"),
        "{}",
        err.reason
    );
    assert_eq!(
        field_of(json!({"to": to, "message": {"text": "x"}, "tag": "FOO"})),
        "tag"
    );
    assert!(
        parse(json!({"to": to, "message": {"text": "x"}, "tag": "HUMAN_AGENT"}))
            .unwrap()
            .human_agent
    );
}

#[test]
fn a_hold_ends_when_asked_or_after_7_days() {
    let to = json!({"account": "a"});
    let ping =
        parse(json!({"to": to, "message": {"text": "x"}, "if_outside_window": "hold"})).unwrap();
    assert_eq!(
        ping.outside,
        OutsideWindow::Hold {
            until: NOW + DEFAULT_HOLD_MS
        }
    );
    let ping = parse(
        json!({"to": to, "message": {"text": "x"}, "if_outside_window": "hold",
        "hold_until": "2027-01-16T08:00:00Z"}),
    )
    .unwrap();
    assert_eq!(
        ping.outside,
        OutsideWindow::Hold {
            until: NOW + 86_400_000
        }
    );
    assert_eq!(
        field_of(
            json!({"to": to, "message": {"text": "x"}, "if_outside_window": "hold",
            "hold_until": "2020-01-01T00:00:00Z"})
        ),
        "hold_until"
    );
    assert_eq!(
        field_of(
            json!({"to": to, "message": {"text": "x"}, "if_outside_window": "hold",
            "hold_until": "next week"})
        ),
        "hold_until"
    );
    assert_eq!(
        field_of(json!({"to": to, "message": {"text": "x"}, "hold_until": "2027-01-15T08:00:00Z"})),
        "hold_until"
    );
}

#[test]
fn batch_fields_carry_their_index() {
    let request: MessageRequest =
        serde_json::from_value(json!({"to": {"account": "a"}, "message": {"text": ""}})).unwrap();
    assert_eq!(
        request.parse(NOW, "P1", "messages[7].").unwrap_err().field,
        "messages[7].message.text"
    );
}

#[test]
fn a_generic_template_parses_into_cards() {
    let ping = parse(json!({"to": {"account": "a"}, "message": {
        "elements": [
            {"title": "Model 3", "subtitle": "Charged 82%", "image_url": "https://cdn.test/car.png",
             "buttons": [{"type": "postback", "title": "Lock", "payload": "LOCK"},
                         {"type": "web_url", "title": "Open app", "url": "https://example.com/app"}]},
            {"title": "Home charger"}
        ],
        "quick_replies": [{"title": "Thanks", "payload": "THANKS"}]}}))
    .unwrap();
    let Content::Generic(cards) = &ping.message.content else {
        panic!("{:?}", ping.message.content);
    };
    assert_eq!(cards.len(), 2);
    assert_eq!(cards[0].subtitle.as_deref(), Some("Charged 82%"));
    assert_eq!(cards[0].buttons.len(), 2);
    assert!(cards[1].image_url.is_none());
    assert_eq!(ping.message.quick_replies.len(), 1);
}

#[test]
fn generic_template_limits_name_their_field() {
    let to = json!({"account": "a"});
    let card = |extra: serde_json::Value| {
        let mut c = json!({"title": "Card"});
        c.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        c
    };
    let eleven: Vec<_> = (0..11).map(|_| card(json!({}))).collect();
    assert_eq!(
        field_of(json!({"to": to, "message": {"elements": eleven}})),
        "message.elements"
    );
    assert_eq!(
        field_of(
            json!({"to": to, "message": {"elements": [card(json!({"title": "t".repeat(81)}))]}})
        ),
        "message.elements[0].title"
    );
    assert_eq!(
        field_of(
            json!({"to": to, "message": {"elements": [card(json!({"subtitle": "s".repeat(81)}))]}})
        ),
        "message.elements[0].subtitle"
    );
    assert_eq!(
        field_of(
            json!({"to": to, "message": {"elements": [card(json!({"image_url": "http://cdn.test/a.png"}))]}})
        ),
        "message.elements[0].image_url"
    );
    let four: Vec<_> = (0..4)
        .map(|i| json!({"type": "postback", "title": format!("b{i}"), "payload": "P"}))
        .collect();
    assert_eq!(
        field_of(json!({"to": to, "message": {"elements": [card(json!({"buttons": four}))]}})),
        "message.elements[0].buttons"
    );
    assert_eq!(
        field_of(
            json!({"to": to, "message": {"elements": [card(json!({"buttons": [
            {"type": "postback", "title": "a button title too long", "payload": "P"}]}))]}})
        ),
        "message.elements[0].buttons[0].title"
    );
    assert_eq!(
        field_of(json!({"to": to, "message": {"text": "hi", "elements": [card(json!({}))]}})),
        "message.text"
    );
    assert_eq!(
        field_of(
            json!({"to": to, "message": {"attachment": {"type": "image", "url": "https://x/y.png"},
            "elements": [card(json!({}))]}})
        ),
        "message.attachment"
    );
}
