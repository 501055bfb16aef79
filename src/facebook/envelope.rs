//! A verified webhook body -> its events, one per event, as they are to be
//! kept (the webhook route stores each as an inbox row).
//!
//! Tolerant by design: whatever Meta signed is stored, so one event this
//! service does not model never costs the good ones beside it (a refused
//! POST is redelivered whole until Meta disables the subscription). An
//! event that does not parse, or of a kind never heard of, is kept as
//! `unrecognised`; a body for another `object` than `page` (`instagram`…)
//! is kept with its object. Valid JSON that is no webhook envelope (no
//! `object` string or no `entry` list) is kept whole as one `unrecognised`
//! row keyed by a digest of the body. Only a body that is not JSON is
//! refused.

use serde::Deserialize;
use serde_json::value::RawValue;
use sha2::{Digest, Sha256};
use std::borrow::Cow;

use super::events::{MessagingEvent, POLICY_ENFORCEMENT, UNRECOGNISED};

/// One event of a webhook body: its raw JSON, what it is and who it
/// concerns, and the key that knows it again when Meta redelivers it.
#[derive(Debug, Clone)]
pub struct WebhookEvent {
    /// The webhook's `object`: `page` for Messenger.
    pub object: Cow<'static, str>,
    pub page_id: String,
    pub psid: String,
    pub kind: &'static str,
    /// Delivered in `standby[]` (another app holds the thread).
    pub standby: bool,
    pub dedupe_key: String,
    pub event: String,
    pub received_at: i64,
    /// A person's act that opens Meta's standard messaging window (a
    /// message, postback, referral or reaction to a Page; see
    /// `MessagingEvent::opens_window`): when, opening it as soon as the
    /// event is stored.
    pub inbound_at: Option<i64>,
}

#[derive(Debug, thiserror::Error)]
pub enum PayloadError {
    #[error("the body is not a webhook payload: {0}")]
    Malformed(String),
}

#[derive(Deserialize)]
struct Body<'a> {
    object: String,
    #[serde(default, borrow)]
    entry: Vec<&'a RawValue>,
}

/// The parts of an entry that hold events. Meta puts them in `messaging`
/// and `standby` (Messenger, Instagram messaging) or `changes` (feed-style
/// objects).
#[derive(Deserialize)]
struct Entry<'a> {
    #[serde(default, borrow)]
    id: Option<&'a RawValue>,
    #[serde(default, borrow)]
    messaging: Option<&'a RawValue>,
    #[serde(default, borrow)]
    standby: Option<&'a RawValue>,
    #[serde(default, borrow)]
    changes: Option<&'a RawValue>,
}

/// Turns a verified webhook body into its events: every event of every
/// entry, in order.
pub fn inbox_events(body: &[u8], received_at: i64) -> Result<Vec<WebhookEvent>, PayloadError> {
    let text = std::str::from_utf8(body).map_err(|e| PayloadError::Malformed(e.to_string()))?;
    serde_json::from_str::<serde::de::IgnoredAny>(text)
        .map_err(|e| PayloadError::Malformed(e.to_string()))?;
    let Ok(parsed) = serde_json::from_str::<Body>(text) else {
        return Ok(vec![not_an_envelope(text, received_at)]);
    };
    if !storable(&parsed.object) {
        return Ok(vec![kept(Cow::Borrowed("unknown"), "", text, received_at)]);
    }
    let object: Cow<'static, str> = match parsed.object.as_str() {
        "page" => Cow::Borrowed("page"),
        _ => Cow::Owned(parsed.object),
    };
    let mut rows = Vec::new();
    for raw_entry in parsed.entry {
        let Ok(entry) = serde_json::from_str::<Entry>(raw_entry.get()) else {
            // Not even an object: kept whole, for whoever looks.
            rows.push(kept(object.clone(), "", raw_entry.get(), received_at));
            continue;
        };
        let page_id = entry.id.map(id_text).unwrap_or_default();
        if !storable(&page_id) {
            rows.push(kept(object.clone(), "", raw_entry.get(), received_at));
            continue;
        }
        let lists = [
            (entry.messaging, false, true),
            (entry.standby, true, true),
            (entry.changes, false, false),
        ];
        if lists.iter().all(|(list, _, _)| list.is_none()) {
            // An entry without event lists is itself the event.
            rows.push(kept(object.clone(), &page_id, raw_entry.get(), received_at));
            continue;
        }
        for (list, standby, messaging) in lists {
            let Some(list) = list else { continue };
            let events =
                serde_json::from_str::<Vec<&RawValue>>(list.get()).unwrap_or_else(|_| vec![list]);
            for raw in events {
                let mut row = match messaging {
                    true => messaging_row(object.clone(), &page_id, raw.get(), received_at),
                    false => kept(object.clone(), &page_id, raw.get(), received_at),
                };
                row.standby = standby;
                rows.push(row);
            }
        }
    }
    Ok(rows)
}

/// Valid JSON that is no webhook envelope: the whole body, `unrecognised`,
/// under its `object` when it names one (else `unknown`), keyed by a digest
/// of its bytes so a redelivery is stored once.
fn not_an_envelope(text: &str, at: i64) -> WebhookEvent {
    let object = serde_json::from_str::<serde_json::Value>(text)
        .ok()
        .and_then(|v| v.get("object")?.as_str().map(str::to_string))
        .filter(|o| storable(o))
        .map_or(Cow::Borrowed("unknown"), |o| match o.as_str() {
            "page" => Cow::Borrowed("page"),
            _ => Cow::Owned(o),
        });
    kept(object, "", text, at)
}

/// An entry id as text: Meta sends strings, a number is taken as written.
fn id_text(raw: &RawValue) -> String {
    serde_json::from_str::<String>(raw.get()).unwrap_or_else(|_| raw.get().to_string())
}

/// A `messaging[]` / `standby[]` event, classified when it parses.
fn messaging_row(object: Cow<'static, str>, page_id: &str, raw: &str, at: i64) -> WebhookEvent {
    let parsed = serde_json::from_str::<MessagingEvent>(raw)
        .ok()
        .filter(|e| e.ids().all(storable));
    let Some(event) = parsed else {
        let mut row = kept(object, page_id, raw, at);
        row.psid = sender_of(raw).filter(|id| storable(id)).unwrap_or_default();
        return row;
    };
    let person = event.person();
    let kind = match (event.kind(), &person) {
        // Only a policy enforcement concerns no person; anything else
        // without one cannot be answered.
        (kind, None) if kind != POLICY_ENFORCEMENT => UNRECOGNISED,
        (kind, _) => kind,
    };
    let psid = person.unwrap_or_default();
    let key = match (event.mid(), kind) {
        (Some(mid), "postback") => mid_key("postback", event.timestamp, mid),
        (Some(mid), "message" | "echo") => mid_key("mid", event.timestamp, mid),
        _ if psid.is_empty() || kind == UNRECOGNISED => digest_key(page_id, raw),
        _ => match event.timestamp {
            Some(ts) => format!("{kind}:{page_id}:{psid}:{ts}"),
            None => {
                let digest = Sha256::digest(raw.as_bytes());
                format!("{kind}:{page_id}:{psid}:{}", hex::encode(&digest[..12]))
            }
        },
    };
    let wrote = object == "page" && event.opens_window();
    WebhookEvent {
        dedupe_key: scoped(&object, key),
        inbound_at: wrote.then(|| event.timestamp.unwrap_or(at)),
        object,
        page_id: page_id.to_string(),
        psid,
        kind,
        standby: false,
        event: raw.to_string(),
        received_at: at,
    }
}

/// The key of an event Meta names by its `mid`: `tag@`, the event's own
/// `timestamp` in 13 digits, `:` and the mid (a redelivery repeats both),
/// so keys sort as the events were written. Mids are random, so keyed by
/// the mid alone (`tag:mid`, the key before) every stored event landed on
/// its own page of the unique index (with a month of events stored, a
/// write of a whole index page per event, and as many again at the next
/// checkpoint); keyed by time first, a batch's events share the index's
/// last pages. Migration 0020 gave the recent rows stored before it the
/// same keys. An event without a timestamp, or one outside `0..10^13`,
/// keeps `tag:mid`.
fn mid_key(tag: &str, timestamp: Option<i64>, mid: &str) -> String {
    match timestamp {
        Some(ts) if (0..MID_KEY_TIME_END).contains(&ts) => format!("{tag}@{ts:013}:{mid}"),
        _ => format!("{tag}:{mid}"),
    }
}

/// What a turn id is derived from (`nlu::turn_id`): the dedupe key as it
/// was before keys led with the time (`mid@<time>:<mid>` -> `mid:<mid>`),
/// so an event being processed across the upgrade to migration 0020 keeps
/// its fulfillment `request_id`. Every other key is its own.
pub fn turn_key(dedupe_key: &str) -> Cow<'_, str> {
    // `tag@<13 digits>:<mid>` -> `tag:<mid>`.
    let untimed = |key: &str| {
        ["mid", "postback"].into_iter().find_map(|tag| {
            let (time, mid) = key
                .strip_prefix(tag)?
                .strip_prefix('@')?
                .split_at_checked(13)?;
            let mid = mid.strip_prefix(':')?;
            time.bytes()
                .all(|b| b.is_ascii_digit())
                .then(|| format!("{tag}:{mid}"))
        })
    };
    if let Some(key) = untimed(dedupe_key) {
        return Cow::Owned(key);
    }
    // Another object's key: `object|` before it.
    match dedupe_key.split_once('|') {
        Some((object, key))
            if object
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_') =>
        {
            match untimed(key) {
                Some(key) => Cow::Owned(format!("{object}|{key}")),
                None => Cow::Borrowed(dedupe_key),
            }
        }
        _ => Cow::Borrowed(dedupe_key),
    }
}

/// Timestamps (epoch ms) up to which a mid key leads with the time: 13
/// digits, the year 2286.
const MID_KEY_TIME_END: i64 = 10_000_000_000_000;

/// Whether a decoded id can be a column on both databases: Postgres
/// refuses NUL in text, so an event naming one (no real id holds it) is
/// kept as it came rather than failing its whole delivery there.
fn storable(id: &str) -> bool {
    !id.contains('\0')
}

/// An event kept as it came, `unrecognised`, keyed by its bytes.
fn kept(object: Cow<'static, str>, page_id: &str, raw: &str, at: i64) -> WebhookEvent {
    WebhookEvent {
        dedupe_key: scoped(&object, digest_key(page_id, raw)),
        object,
        page_id: page_id.to_string(),
        psid: String::new(),
        kind: UNRECOGNISED,
        standby: false,
        event: raw.to_string(),
        received_at: at,
        inbound_at: None,
    }
}

/// An event with neither a mid nor a sender is known again by its Page and
/// its exact bytes (a redelivery repeats both).
fn digest_key(page_id: &str, raw: &str) -> String {
    let mut digest = Sha256::new();
    digest.update(page_id.as_bytes());
    digest.update([0]);
    digest.update(raw.as_bytes());
    format!("digest:{}", hex::encode(digest.finalize()))
}

/// Keys of other objects live apart from the Page's.
fn scoped(object: &str, key: String) -> String {
    match object {
        "page" => key,
        other => format!("{other}|{key}"),
    }
}

/// `sender.id` of an event that does not otherwise parse.
fn sender_of(raw: &str) -> Option<String> {
    let value: serde_json::Value = serde_json::from_str(raw).ok()?;
    let id = value.get("sender")?.get("id")?.as_str()?;
    (!id.is_empty()).then(|| id.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(events: &str) -> String {
        format!(r#"{{"object":"page","entry":[{{"id":"PAGE","time":1,"messaging":[{events}]}}]}}"#)
    }

    #[test]
    fn what_the_person_does_that_opens_metas_window_opens_it_as_it_is_stored() {
        let b = body(
            r#"{"sender":{"id":"U1"},"recipient":{"id":"PAGE"},"timestamp":10,"message":{"mid":"m.1","text":"hi"}},
               {"sender":{"id":"U1"},"recipient":{"id":"PAGE"},"timestamp":11,"postback":{"mid":"m.2","payload":"GO"}},
               {"sender":{"id":"U1"},"recipient":{"id":"PAGE"},"timestamp":12,"referral":{"ref":"x","source":"SHORTLINK","type":"OPEN_THREAD"}},
               {"sender":{"id":"U1"},"recipient":{"id":"PAGE"},"timestamp":13,"reaction":{"mid":"m.9","action":"react","reaction":"love"}},
               {"sender":{"id":"U1"},"recipient":{"id":"PAGE"},"timestamp":14,"reaction":{"mid":"m.9","action":"unreact"}},
               {"sender":{"id":"U1"},"recipient":{"id":"PAGE"},"timestamp":15,"read":{"watermark":10}},
               {"sender":{"id":"U1"},"recipient":{"id":"PAGE"},"timestamp":16,"delivery":{"watermark":10}},
               {"sender":{"id":"PAGE"},"recipient":{"id":"U1"},"timestamp":17,"message":{"mid":"m.3","is_echo":true,"text":"yo"}}"#,
        );
        let rows = inbox_events(b.as_bytes(), 0).expect("valid");
        let opened: Vec<_> = rows.iter().map(|r| (r.kind, r.inbound_at)).collect();
        assert_eq!(
            opened,
            [
                ("message", Some(10)),
                ("postback", Some(11)),
                ("referral", Some(12)),
                ("reaction", Some(13)),
                ("reaction", None),
                ("read", None),
                ("delivery", None),
                ("echo", None),
            ]
        );
    }

    #[test]
    fn messages_are_keyed_by_time_and_mid_and_other_events_by_sender_time_and_kind() {
        let b = body(
            r#"{"sender":{"id":"U1"},"recipient":{"id":"PAGE"},"timestamp":10,"message":{"mid":"m.1","text":"hi"}},
               {"sender":{"id":"U1"},"recipient":{"id":"PAGE"},"timestamp":11,"read":{"watermark":10}},
               {"sender":{"id":"PAGE"},"recipient":{"id":"U1"},"timestamp":12,"message":{"mid":"m.2","is_echo":true,"text":"yo"}},
               {"sender":{"id":"U1"},"recipient":{"id":"PAGE"},"timestamp":13,"postback":{"mid":"m.3","payload":"GO"}}"#,
        );
        let rows = inbox_events(b.as_bytes(), 0).expect("valid");
        let keys: Vec<_> = rows.iter().map(|r| r.dedupe_key.as_str()).collect();
        assert_eq!(
            keys,
            [
                "mid@0000000000010:m.1",
                "read:PAGE:U1:11",
                "mid@0000000000012:m.2",
                "postback@0000000000013:m.3"
            ]
        );
        let kinds: Vec<_> = rows.iter().map(|r| r.kind).collect();
        assert_eq!(kinds, ["message", "read", "echo", "postback"]);
        assert!(rows
            .iter()
            .all(|r| r.psid == "U1" && r.page_id == "PAGE" && r.object == "page"));
    }

    #[test]
    fn mid_keys_sort_as_the_events_were_written_whatever_their_mids() {
        let key = |ts: &str, mid: &str| {
            let b = body(&format!(
                r#"{{"sender":{{"id":"U1"}},"recipient":{{"id":"PAGE"}},"timestamp":{ts},"message":{{"mid":"{mid}","text":"hi"}}}}"#
            ));
            inbox_events(b.as_bytes(), 0).unwrap()[0].dedupe_key.clone()
        };
        let written = [
            key("999", "m_zz"),
            key("1000", "m_AA"),
            key("1700000000000", "m_9q"),
            key("1700000000001", "m_0b"),
        ];
        let mut sorted = written.clone();
        sorted.sort();
        assert_eq!(sorted, written);
        assert_eq!(key("1000", "m_AA"), written[1], "a redelivery");
        // No usable time: the mid alone, as before.
        assert_eq!(key("-1", "m_x"), "mid:m_x");
        assert_eq!(key("10000000000000", "m_x"), "mid:m_x");
        let untimed = body(
            r#"{"sender":{"id":"U1"},"recipient":{"id":"PAGE"},"message":{"mid":"m_y","text":"hi"}}"#,
        );
        assert_eq!(
            inbox_events(untimed.as_bytes(), 0).unwrap()[0].dedupe_key,
            "mid:m_y"
        );
    }

    #[test]
    fn a_turn_is_keyed_as_before_keys_led_with_the_time() {
        for (key, turn) in [
            ("mid@0000000000010:m.1", "mid:m.1"),
            ("postback@1700000000000:m_x:y", "postback:m_x:y"),
            ("instagram|mid@0000000000003:ig.1", "instagram|mid:ig.1"),
            ("mid:m.1", "mid:m.1"),
            ("mid@123:m.1", "mid@123:m.1"),
            ("mid@00000000000ab:m.1", "mid@00000000000ab:m.1"),
            ("postback:1234567890123:U1:5", "postback:1234567890123:U1:5"),
            ("read:PAGE:U1:11", "read:PAGE:U1:11"),
            ("a b|mid@0000000000010:m.1", "a b|mid@0000000000010:m.1"),
        ] {
            assert_eq!(turn_key(key), turn, "{key}");
        }
        // Whatever its mid holds.
        let b = body(
            r#"{"sender":{"id":"U1"},"recipient":{"id":"PAGE"},"timestamp":7,"message":{"mid":"m|1:@2","text":"hi"}}"#,
        );
        let key = inbox_events(b.as_bytes(), 0).unwrap()[0].dedupe_key.clone();
        assert_eq!(turn_key(&key), "mid:m|1:@2");
    }

    #[test]
    fn an_unsent_message_is_not_taken_for_the_message_again() {
        let b = body(
            r#"{"sender":{"id":"U1"},"recipient":{"id":"PAGE"},"timestamp":10,"message":{"mid":"m.1","text":"hi"}},
               {"sender":{"id":"U1"},"recipient":{"id":"PAGE"},"timestamp":20,"message":{"mid":"m.1","is_deleted":true}}"#,
        );
        let rows = inbox_events(b.as_bytes(), 0).unwrap();
        let kinds: Vec<_> = rows.iter().map(|r| r.kind).collect();
        assert_eq!(kinds, ["message", "message_deleted"]);
        assert_eq!(rows[1].dedupe_key, "message_deleted:PAGE:U1:20");
        assert_eq!(rows[1].inbound_at, None, "opens no window");
    }

    #[test]
    fn standby_events_are_stored_and_flagged() {
        let b = r#"{"object":"page","entry":[{"id":"P","time":1,"standby":[
            {"sender":{"id":"U"},"recipient":{"id":"P"},"timestamp":5,"message":{"mid":"s.1","text":"x"}}]}]}"#;
        let rows = inbox_events(b.as_bytes(), 0).expect("valid");
        assert_eq!(rows.len(), 1);
        assert!(rows[0].standby);
    }

    #[test]
    fn only_a_body_that_is_not_json_is_refused() {
        for bad in [
            &b"{not json"[..],
            b"{\"object\":\"page\",\"entry\":[",
            b"\xff\xfe",
        ] {
            assert!(
                matches!(inbox_events(bad, 0), Err(PayloadError::Malformed(_))),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
        assert!(inbox_events(br#"{"object":"page"}"#, 0).unwrap().is_empty());
    }

    #[test]
    fn an_id_holding_a_nul_is_kept_as_it_came_and_no_column_holds_one() {
        let event = |sender: &str, mid: &str| {
            format!(
                r#"{{"sender":{{"id":"{sender}"}},"recipient":{{"id":"P"}},"timestamp":5,"message":{{"mid":"{mid}","text":"x"}}}}"#
            )
        };
        let bodies = [
            format!(
                r#"{{"object":"page","entry":[{{"id":"P","messaging":[{}]}}]}}"#,
                event("U", r"m\u0000x")
            ),
            format!(
                r#"{{"object":"page","entry":[{{"id":"P","messaging":[{}]}}]}}"#,
                event(r"U\u0000", "m.1")
            ),
            format!(
                r#"{{"object":"page","entry":[{{"id":"P\u0000","messaging":[{}]}}]}}"#,
                event("U", "m.1")
            ),
            format!(
                r#"{{"object":"pa\u0000ge","entry":[{{"id":"P","messaging":[{}]}}]}}"#,
                event("U", "m.1")
            ),
            r#"{"object":"pa\u0000ge"}"#.to_string(),
            // A receipt's mids are bound as text too.
            r#"{"object":"page","entry":[{"id":"P","messaging":[{"sender":{"id":"U"},"recipient":{"id":"P"},"timestamp":5,"delivery":{"mids":["m\u0000x"],"watermark":4}}]}]}"#.to_string(),
        ];
        for body in &bodies {
            let rows = inbox_events(body.as_bytes(), 0).expect("stored, not refused");
            assert_eq!(rows.len(), 1, "{body}");
            let row = &rows[0];
            assert_eq!(row.kind, UNRECOGNISED, "{body}");
            for column in [
                row.object.as_ref(),
                &row.page_id,
                &row.psid,
                &row.dedupe_key,
            ] {
                assert!(!column.contains('\0'), "{body}: {column:?}");
            }
        }
        // The same event with clean ids is a message.
        let clean = format!(
            r#"{{"object":"page","entry":[{{"id":"P","messaging":[{}]}}]}}"#,
            event("U", "m.1")
        );
        assert_eq!(
            inbox_events(clean.as_bytes(), 0).unwrap()[0].kind,
            "message"
        );
    }

    #[test]
    fn json_that_is_no_envelope_is_one_unrecognised_row_keyed_by_its_bytes() {
        for (body, object) in [
            (&b"[]"[..], "unknown"),
            (b"[1, 2]", "unknown"),
            (br#"{"entry": []}"#, "unknown"),
            (br#"{"object": "page", "entry": {}}"#, "page"),
            (br#"{"object": 7, "entry": []}"#, "unknown"),
        ] {
            let rows = inbox_events(body, 0).expect("stored, not refused");
            assert_eq!(rows.len(), 1);
            let row = &rows[0];
            assert_eq!((row.kind, row.object.as_ref()), (UNRECOGNISED, object));
            assert_eq!(row.event.as_bytes(), body);
            let again = inbox_events(body, 5).unwrap();
            assert_eq!(again[0].dedupe_key, row.dedupe_key, "a redelivery");
        }
        let a = inbox_events(br#"{"entry": []}"#, 0).unwrap();
        let b = inbox_events(br#"{"entry": [1]}"#, 0).unwrap();
        assert_ne!(a[0].dedupe_key, b[0].dedupe_key);
    }

    #[test]
    fn events_the_service_does_not_model_are_kept_with_their_kind() {
        let b = body(
            r#"{"recipient":{"id":"PAGE"},"timestamp":1,"policy_enforcement":{"action":"block","reason":"spam"}},
               {"recipient":{"id":"PAGE"},"timestamp":2,"policy-enforcement":{"action":"unblock"}},
               {"sender":{"id":"U1"},"recipient":{"id":"PAGE"},"timestamp":3,"message_edit":{"mid":"m.1","text":"hi!","num_edit":1}},
               {"sender":{"id":"U1"},"recipient":{"id":"PAGE"},"timestamp":4,"reaction":{"reaction":"love","action":"react","mid":"m.1"}},
               {"sender":{"id":"U1"},"recipient":{"id":"PAGE"},"timestamp":5,"response_feedback":{"mid":"m.9","feedback":"Good response"}},
               {"sender":{"id":"U1"},"recipient":{"id":"PAGE"},"timestamp":6,"brand_new_thing":{"x":1}},
               {"sender":{"id":"U2"},"recipient":{"id":"PAGE"},"timestamp":7,"message":"not an object"},
               {"recipient":{"id":"PAGE"},"timestamp":8,"message":{"mid":"m.orphan","text":"from nobody"}},
               42"#,
        );
        let rows = inbox_events(b.as_bytes(), 0).expect("stored, not refused");
        let kinds: Vec<_> = rows.iter().map(|r| r.kind).collect();
        assert_eq!(
            kinds,
            [
                "policy_enforcement",
                "policy_enforcement",
                "message_edit",
                "reaction",
                "response_feedback",
                UNRECOGNISED,
                UNRECOGNISED,
                UNRECOGNISED,
                UNRECOGNISED
            ]
        );
        let psids: Vec<_> = rows.iter().map(|r| r.psid.as_str()).collect();
        assert_eq!(psids, ["", "", "U1", "U1", "U1", "U1", "U2", "", ""]);
        // An edit is not mistaken for a redelivery of the message it edits.
        assert_eq!(rows[2].dedupe_key, "message_edit:PAGE:U1:3");
        assert!(rows[0].dedupe_key.starts_with("digest:"));
        let keys: std::collections::HashSet<_> = rows.iter().map(|r| &r.dedupe_key).collect();
        assert_eq!(keys.len(), rows.len(), "every event keeps a key of its own");
    }

    #[test]
    fn an_event_without_mid_or_sender_is_keyed_by_its_page_and_bytes() {
        let event =
            r#"{"recipient":{"id":"PAGE"},"timestamp":1,"policy_enforcement":{"action":"block"}}"#;
        let key = |page: &str, event: &str| {
            let b =
                format!(r#"{{"object":"page","entry":[{{"id":"{page}","messaging":[{event}]}}]}}"#);
            inbox_events(b.as_bytes(), 0).unwrap()[0].dedupe_key.clone()
        };
        assert_eq!(key("PAGE", event), key("PAGE", event), "a redelivery");
        assert_ne!(key("PAGE", event), key("OTHER", event), "another Page");
        let later = event.replace("\"timestamp\":1", "\"timestamp\":2");
        assert_ne!(key("PAGE", event), key("PAGE", &later), "another event");
    }

    #[test]
    fn other_objects_and_other_entry_shapes_are_kept() {
        let b = r#"{"object":"instagram","entry":[
            {"id":"IG1","time":1,"messaging":[{"sender":{"id":"IGSID"},"recipient":{"id":"IG1"},"timestamp":3,"message":{"mid":"ig.1","text":"hey"}}]},
            {"id":"IG1","time":2,"changes":[{"field":"comments","value":{"id":"c1","text":"nice"}}]},
            {"id":99,"time":3,"uid":"u"},
            "odd"]}"#;
        let rows = inbox_events(b.as_bytes(), 0).expect("stored");
        assert_eq!(rows.len(), 4);
        assert!(rows.iter().all(|r| r.object == "instagram"));
        assert_eq!((rows[0].kind, rows[0].psid.as_str()), ("message", "IGSID"));
        assert_eq!(rows[0].dedupe_key, "instagram|mid@0000000000003:ig.1");
        assert_eq!(rows[1].kind, UNRECOGNISED);
        assert_eq!(
            rows[1].event,
            r#"{"field":"comments","value":{"id":"c1","text":"nice"}}"#
        );
        assert_eq!(
            (rows[2].page_id.as_str(), rows[2].kind),
            ("99", UNRECOGNISED)
        );
        assert_eq!(
            (rows[3].page_id.as_str(), rows[3].event.as_str()),
            ("", "\"odd\"")
        );
    }
}
