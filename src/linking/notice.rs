//! What the people on both ends of a link are shown: the announcement of a
//! new link in the Messenger thread (with its Unlink button), the question
//! an m.me link Meta does not vouch for asks in the thread first (quick
//! replies Link / Don't link), and the Page-scoped profile of a Messenger identity the
//! account owner must recognise before it is linked.

use secrecy::SecretString;
use serde::Deserialize;
use tracing::info;

use crate::domain::{Button, OutboundMessage, QuickReply};
use crate::facebook::render::outbox_body;
use crate::facebook::{GraphClient, GraphError};
use crate::linking::tokens::LinkTokens;

/// What the postback payload of the announcement's Unlink button starts
/// with; a MAC of the Page and PSID follows (`LinkTokens::unlink_mac`).
pub const UNLINK_PAYLOAD_PREFIX: &str = "LEXBRIDGE_UNLINK:";

/// The Unlink button's payload for one Messenger identity.
pub fn unlink_payload(tokens: &LinkTokens, page_id: &str, psid: &str) -> String {
    format!(
        "{UNLINK_PAYLOAD_PREFIX}{}",
        tokens.unlink_mac(page_id, psid)
    )
}

/// Whether `payload` is the Unlink button of this identity's own
/// announcement: a button planted in the thread by anyone else (an API key,
/// a bot reply) carries no valid MAC and is an ordinary postback.
pub fn is_unlink_payload(tokens: &LinkTokens, page_id: &str, psid: &str, payload: &str) -> bool {
    payload
        .strip_prefix(UNLINK_PAYLOAD_PREFIX)
        .is_some_and(|mac| tokens.unlink_mac_ok(page_id, psid, mac))
}

/// The outbox body announcing that this thread (`page_id`, `psid`) is now
/// linked to the account of `account_name`, with an Unlink button.
pub fn link_announcement(
    tokens: &LinkTokens,
    page_id: &str,
    psid: &str,
    account_name: Option<&str>,
) -> String {
    let whose = match account_name.map(str::trim).filter(|n| !n.is_empty()) {
        Some(name) => format!("the account of {}", clip(name, 200)),
        None => "an account".to_string(),
    };
    let text = format!(
        "This Messenger conversation is now linked to {whose} on our website. \
         If that wasn't you, tap Unlink."
    );
    let payload = unlink_payload(tokens, page_id, psid);
    let message = Button::postback("notice.buttons[0]", "Unlink", &payload)
        .and_then(|unlink| OutboundMessage::buttons("notice", &text, vec![unlink]));
    match message {
        Ok(message) => outbox_body(&message),
        // Only an impossible text length gets here; the plain words remain.
        Err(_) => serde_json::json!({ "message": { "text": text } }).to_string(),
    }
}

/// What the payload of the Link quick reply of `link_question` starts
/// with; `{account id}:{expiry, ms}:{MAC}` follow
/// (`LinkTokens::consent_mac`).
pub const LINK_PAYLOAD_PREFIX: &str = "LEXBRIDGE_LINK:";
/// The payload of its "Don't link" quick reply (declining changes nothing,
/// so it needs no MAC).
pub const NO_LINK_PAYLOAD: &str = "LEXBRIDGE_NO_LINK";

/// What the question says. It names no account: a link that leaked
/// against its owner's will must not tell whoever opens it who the owner
/// is.
pub const LINK_QUESTION: &str = "This link asks to connect this conversation to an account on our \
     website. Tap Link only if you opened it from your own account page: that account will then \
     see your name and picture, and confirm. Otherwise tap Don't link.";

/// The outbox body asking the person of this thread (`page_id`, `psid`)
/// whether to link it to the account `account_id`, whose m.me link they
/// opened although Meta does not vouch that they are its owner (a link
/// someone sent them, perhaps to learn who they are): nothing about them is
/// read or shown to anyone unless they tap Link before `expires_at`. Quick
/// replies, which Messenger and Instagram both show (Instagram's web client
/// shows no button template).
pub fn link_question(
    tokens: &LinkTokens,
    page_id: &str,
    psid: &str,
    account_id: &str,
    expires_at: i64,
) -> String {
    let mac = tokens.consent_mac(page_id, psid, account_id, expires_at);
    let link = format!("{LINK_PAYLOAD_PREFIX}{account_id}:{expires_at}:{mac}");
    let message = OutboundMessage::text("question", LINK_QUESTION).and_then(|mut question| {
        question.quick_replies = vec![
            QuickReply::parse("question.quick_replies[0]", "Link", &link)?,
            QuickReply::parse("question.quick_replies[1]", "Don't link", NO_LINK_PAYLOAD)?,
        ];
        Ok(question)
    });
    match message {
        Ok(message) => outbox_body(&message),
        // An account id too long for a payload: nothing to tap.
        Err(_) => serde_json::json!({ "message": { "text": LINK_QUESTION } }).to_string(),
    }
}

/// A tap on a quick reply of `link_question`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Consent {
    /// Link, in the thread the question was asked in, in time.
    Link { account_id: String },
    /// Don't link.
    Declined,
    /// Our prefix with a MAC that is not this thread's, or too late.
    Refused,
}

/// What the `payload` of a tap in the thread (`page_id`, `psid`) at `at`
/// (the event's time, signed by Meta: a tap made in time is not refused for
/// waiting in the inbox) says of a link question; `None` when it is no
/// answer to one. "Don't link" cancels nothing: the Link reply still works
/// until it expires, and only ever in the thread it was asked in.
pub fn read_consent(
    tokens: &LinkTokens,
    page_id: &str,
    psid: &str,
    payload: &str,
    at: i64,
) -> Option<Consent> {
    if payload == NO_LINK_PAYLOAD {
        return Some(Consent::Declined);
    }
    let rest = payload.strip_prefix(LINK_PAYLOAD_PREFIX)?;
    let mut parts = rest.rsplitn(3, ':');
    let (mac, expires_at, account_id) = (parts.next(), parts.next(), parts.next());
    let (Some(mac), Some(Ok(expires_at)), Some(account_id)) =
        (mac, expires_at.map(str::parse::<i64>), account_id)
    else {
        return Some(Consent::Refused);
    };
    if !tokens.consent_mac_ok(page_id, psid, account_id, expires_at, mac) || at > expires_at {
        return Some(Consent::Refused);
    }
    Some(Consent::Link {
        account_id: account_id.to_string(),
    })
}

fn clip(text: &str, max: usize) -> String {
    text.chars().take(max).collect()
}

/// A Messenger identity as the account owner sees it before confirming.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Profile {
    pub name: Option<String>,
    /// An https URL of the profile picture.
    pub profile_pic: Option<String>,
}

#[derive(Deserialize)]
struct ProfileAnswer {
    first_name: Option<String>,
    last_name: Option<String>,
    name: Option<String>,
    profile_pic: Option<String>,
}

/// `GET /{psid}?fields=first_name,last_name,profile_pic` with the Page token
/// (the User Profile API). A refusal (no permission, a PSID Meta will not
/// describe) is an empty profile; a failure that may pass is an error.
pub async fn profile(
    graph: &GraphClient,
    page_token: &SecretString,
    psid: &str,
) -> Result<Profile, GraphError> {
    // A PSID is a path segment: anything but an id's characters is no PSID.
    if psid.is_empty()
        || !psid
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        return Ok(Profile::default());
    }
    let answer = graph
        .get::<ProfileAnswer>(
            psid,
            page_token,
            &[("fields", "first_name,last_name,profile_pic")],
        )
        .await;
    let answer = match answer {
        Ok(answer) => answer,
        Err(e) if !e.is_transient() => {
            info!(code = ?e.code, "no Page-scoped profile for a PSID ({})", e.message);
            return Ok(Profile::default());
        }
        Err(e) => return Err(e),
    };
    let full = [answer.first_name, answer.last_name]
        .into_iter()
        .flatten()
        .map(|p| p.trim().to_string())
        .filter(|p| !p.is_empty())
        .collect::<Vec<_>>()
        .join(" ");
    let name = Some(full)
        .filter(|n| !n.is_empty())
        .or(answer.name)
        .map(|n| clip(n.trim(), 200))
        .filter(|n| !n.is_empty());
    let profile_pic = answer
        .profile_pic
        .filter(|u| u.len() <= 2048)
        .filter(|u| url::Url::parse(u).is_ok_and(|u| u.scheme() == "https"));
    Ok(Profile { name, profile_pic })
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::SecretString;

    fn tokens(key: &str) -> LinkTokens {
        LinkTokens::from_session_key(&SecretString::from(key.to_string()))
    }

    #[test]
    fn the_announcement_names_the_account_and_carries_the_unlink_button() {
        let tokens = tokens("test key");
        let body: serde_json::Value =
            serde_json::from_str(&link_announcement(&tokens, "P", "U1", Some("Ada Example")))
                .unwrap();
        let payload = &body["message"]["attachment"]["payload"];
        assert!(payload["text"].as_str().unwrap().contains("Ada Example"));
        assert_eq!(payload["buttons"][0]["type"], "postback");
        let unlink = payload["buttons"][0]["payload"].as_str().unwrap();
        assert_eq!(unlink, unlink_payload(&tokens, "P", "U1"));
        assert!(is_unlink_payload(&tokens, "P", "U1", unlink));
        let anonymous: serde_json::Value =
            serde_json::from_str(&link_announcement(&tokens, "P", "U1", None)).unwrap();
        assert!(anonymous["message"]["attachment"]["payload"]["text"]
            .as_str()
            .unwrap()
            .contains("an account"));
    }

    /// The payload of the question's quick reply `i`.
    fn question_button(body: &str, i: usize) -> String {
        let body: serde_json::Value = serde_json::from_str(body).unwrap();
        body["message"]["quick_replies"][i]["payload"]
            .as_str()
            .unwrap()
            .to_string()
    }

    #[test]
    fn a_link_question_works_in_its_own_thread_for_its_account_in_time_only() {
        let tokens = tokens("test key");
        let question = link_question(&tokens, "P", "U1", "acc-1", 1_000);
        let body: serde_json::Value = serde_json::from_str(&question).unwrap();
        assert_eq!(body["message"]["text"], LINK_QUESTION);
        assert_eq!(body["message"]["quick_replies"][0]["title"], "Link");
        assert_eq!(body["message"]["quick_replies"][1]["title"], "Don't link");
        let yes = question_button(&question, 0);
        let no = question_button(&question, 1);
        let linked = Some(Consent::Link {
            account_id: "acc-1".into(),
        });
        assert_eq!(read_consent(&tokens, "P", "U1", &yes, 1_000), linked);
        assert_eq!(
            read_consent(&tokens, "P", "U1", &no, 5_000),
            Some(Consent::Declined)
        );
        assert_eq!(read_consent(&tokens, "P", "U1", "GET_STARTED", 0), None);
        let refused = Some(Consent::Refused);
        // Too late; in another thread or Page; made with another key; the
        // account or the expiry changed; the bare prefix.
        assert_eq!(read_consent(&tokens, "P", "U1", &yes, 1_001), refused);
        assert_eq!(read_consent(&tokens, "P", "U2", &yes, 0), refused);
        assert_eq!(read_consent(&tokens, "Q", "U1", &yes, 0), refused);
        let foreign = link_question(&super::tests::tokens("other"), "P", "U1", "acc-1", 1_000);
        assert_eq!(
            read_consent(&tokens, "P", "U1", &question_button(&foreign, 0), 0),
            refused
        );
        let mac = yes.rsplit(':').next().unwrap();
        for forged in [
            format!("{LINK_PAYLOAD_PREFIX}acc-2:1000:{mac}"),
            format!("{LINK_PAYLOAD_PREFIX}acc-1:9999:{mac}"),
            LINK_PAYLOAD_PREFIX.to_string(),
            format!("{LINK_PAYLOAD_PREFIX}acc-1:soon:{mac}"),
        ] {
            assert_eq!(
                read_consent(&tokens, "P", "U1", &forged, 0),
                refused,
                "{forged}"
            );
        }
        // An account id may hold the separator.
        let odd = link_question(&tokens, "P", "U1", "a:b", 1_000);
        assert_eq!(
            read_consent(&tokens, "P", "U1", &question_button(&odd, 0), 0),
            Some(Consent::Link {
                account_id: "a:b".into()
            })
        );
    }

    #[test]
    fn an_unlink_payload_works_only_for_its_own_identity_and_key() {
        let tokens = tokens("test key");
        let mine = unlink_payload(&tokens, "P", "U1");
        assert!(is_unlink_payload(&tokens, "P", "U1", &mine));
        // Planted: the bare prefix, a forged MAC, another person's button,
        // another Page's, a button made with another key.
        for (psid, page, payload) in [
            ("U1", "P", "LEXBRIDGE_UNLINK".to_string()),
            (
                "U1",
                "P",
                format!("{UNLINK_PAYLOAD_PREFIX}{}", "0".repeat(32)),
            ),
            ("U2", "P", mine.clone()),
            ("U1", "Q", mine.clone()),
            (
                "U1",
                "P",
                unlink_payload(&super::tests::tokens("other key"), "P", "U1"),
            ),
        ] {
            assert!(
                !is_unlink_payload(&tokens, page, psid, &payload),
                "{payload}"
            );
        }
    }
}
