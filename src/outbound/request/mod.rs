//! The JSON a backend sends to `/api/v1/messages`, and its parsing into a
//! `Ping`: Messenger's limits are checked here, each error names its field.

use serde::Deserialize;
use utoipa::ToSchema;

use super::time::parse_timestamp;
use crate::domain::message::{bounded, MAX_ELEMENT_TITLE};
use crate::domain::window::{OutsideWindow, DEFAULT_HOLD_MS};
use crate::domain::{
    Button, Content, GenericElement, HttpsUrl, MediaKind, OutboundMessage, QuickReply,
    ValidationError,
};

/// One message for one person.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MessageRequest {
    pub to: RecipientSpec,
    pub message: MessageSpec,
    /// `HUMAN_AGENT` lets a human's reply reach a person up to 7 days after
    /// they last wrote. No other tag is accepted: Meta withdrew them in
    /// April 2026.
    #[schema(example = "HUMAN_AGENT")]
    pub tag: Option<String>,
    /// What to do when the person's 24-hour window is closed: `reject`
    /// (the default, answered with 422 `outside_messaging_window`) or `hold`
    /// (sent the moment the person writes again).
    pub if_outside_window: Option<IfOutsideWindow>,
    /// With `hold`: when to give up (RFC 3339); the default is 7 days.
    #[schema(example = "2026-12-01T09:00:00Z")]
    pub hold_until: Option<String>,
}

/// Who receives the message: exactly one of `account`, `uid`, `psid`, or
/// `instagram`.
/// With `psid`, `page_id` is its Page (the default Page if not given); with
/// `account` or `uid`, it picks the person's link on that Page (without it,
/// the Page the person last wrote to).
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RecipientSpec {
    /// The account id on the operator's website.
    pub account: Option<String>,
    /// The person's app-scoped Facebook user id.
    pub uid: Option<String>,
    /// The person's Page-scoped id.
    pub psid: Option<String>,
    pub page_id: Option<String>,
    /// A person on Instagram, by their Instagram-scoped id, reached through
    /// the Page their conversation is with.
    pub instagram: Option<InstagramRecipient>,
}

/// `{"instagram": {"igsid": "…", "page_id": "…"}}`: `page_id` is the Page
/// the Instagram professional account is connected to (the default Page
/// if not given).
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct InstagramRecipient {
    pub igsid: String,
    pub page_id: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum IfOutsideWindow {
    Reject,
    Hold,
}

/// Text (with optional buttons), an attachment, or generic-template cards
/// (`elements`); quick replies may go with any of them.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MessageSpec {
    /// Up to 2000 characters; up to 640 with buttons.
    pub text: Option<String>,
    /// Up to 13.
    #[serde(default)]
    pub quick_replies: Vec<QuickReplySpec>,
    /// Up to 3; they need `text`.
    #[serde(default)]
    pub buttons: Vec<ButtonSpec>,
    pub attachment: Option<AttachmentSpec>,
    /// A generic template: 1 to 10 cards, shown as a carousel.
    #[serde(default)]
    pub elements: Vec<ElementSpec>,
}

/// One card of a generic template.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ElementSpec {
    /// Up to 80 characters.
    pub title: String,
    /// Up to 80 characters.
    pub subtitle: Option<String>,
    /// An https URL of the card's image.
    pub image_url: Option<String>,
    /// Up to 3.
    #[serde(default)]
    pub buttons: Vec<ButtonSpec>,
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct QuickReplySpec {
    /// Up to 20 characters.
    pub title: String,
    /// Up to 1000 characters; comes back as the person's answer.
    pub payload: String,
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, tag = "type", rename_all = "snake_case")]
pub enum ButtonSpec {
    Postback { title: String, payload: String },
    WebUrl { title: String, url: String },
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AttachmentSpec {
    /// `image`, `audio`, `video` or `file`.
    #[serde(rename = "type")]
    pub kind: String,
    /// An https URL Messenger fetches.
    pub url: String,
}

/// Who a parsed request is for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    Account {
        id: String,
        page_id: Option<String>,
    },
    Uid {
        uid: String,
        page_id: Option<String>,
    },
    Psid {
        page_id: String,
        psid: String,
    },
}

/// A request that passed every check.
#[derive(Debug, Clone, PartialEq)]
pub struct Ping {
    pub target: Target,
    pub message: OutboundMessage,
    pub human_agent: bool,
    pub outside: OutsideWindow,
}

/// Tags Meta withdrew in April 2026 (with the Recurring Notifications).
const WITHDRAWN_TAGS: [&str; 3] = [
    "ACCOUNT_UPDATE",
    "CONFIRMED_EVENT_UPDATE",
    "POST_PURCHASE_UPDATE",
];

/// Longest id a recipient may be given by.
const MAX_ID: usize = 256;

impl MessageRequest {
    /// Checks the request at `now`; `page_id` is the Page a PSID without
    /// one belongs to. `prefix` names fields inside a batch (`messages[3].`).
    pub fn parse(&self, now: i64, page_id: &str, prefix: &str) -> Result<Ping, ValidationError> {
        let field = |name: &str| format!("{prefix}{name}");
        let target = self.to.parse(page_id, prefix)?;
        let message = self.message.parse(prefix)?;
        let human_agent = match self.tag.as_deref() {
            None => false,
            Some("HUMAN_AGENT") => true,
            Some(tag) if WITHDRAWN_TAGS.contains(&tag) => {
                return Err(ValidationError::new(
                    field("tag"),
                    format!(
                        "{tag} was withdrawn by Meta in April 2026; only HUMAN_AGENT is accepted"
                    ),
                ))
            }
            Some(_) => {
                return Err(ValidationError::new(
                    field("tag"),
                    "must be HUMAN_AGENT, the only message tag Meta still accepts",
                ))
            }
        };
        let hold_until = match &self.hold_until {
            None => None,
            Some(text) => {
                let at = parse_timestamp(text)
                    .map_err(|reason| ValidationError::new(field("hold_until"), reason))?;
                if at <= now {
                    return Err(ValidationError::new(
                        field("hold_until"),
                        "must be in the future",
                    ));
                }
                Some(at)
            }
        };
        let outside = match self.if_outside_window.unwrap_or(IfOutsideWindow::Reject) {
            IfOutsideWindow::Hold => OutsideWindow::Hold {
                until: hold_until.unwrap_or(now + DEFAULT_HOLD_MS),
            },
            IfOutsideWindow::Reject if hold_until.is_some() => {
                return Err(ValidationError::new(
                    field("hold_until"),
                    "only applies with if_outside_window: hold",
                ))
            }
            IfOutsideWindow::Reject => OutsideWindow::Reject,
        };
        Ok(Ping {
            target,
            message,
            human_agent,
            outside,
        })
    }
}

impl RecipientSpec {
    fn parse(&self, default_page: &str, prefix: &str) -> Result<Target, ValidationError> {
        let field = |name: &str| format!("{prefix}to.{name}");
        let id = |name: &str, value: &str| -> Result<String, ValidationError> {
            let value = value.trim();
            if value.is_empty() || value.len() > MAX_ID {
                return Err(ValidationError::new(
                    field(name),
                    format!("must be 1 to {MAX_ID} bytes"),
                ));
            }
            // No id holds one, and Postgres refuses NUL in text.
            if value.chars().any(char::is_control) {
                return Err(ValidationError::new(
                    field(name),
                    "must not hold control characters",
                ));
            }
            Ok(value.to_string())
        };
        let page = |page_id: &Option<String>| -> Result<Option<String>, ValidationError> {
            page_id.as_deref().map(|p| id("page_id", p)).transpose()
        };
        if let Some(ig) = &self.instagram {
            let alone = self.account.is_none() && self.uid.is_none() && self.psid.is_none();
            if !alone || self.page_id.is_some() {
                return Err(ValidationError::new(
                    format!("{prefix}to"),
                    "instagram goes alone (its page_id inside it)",
                ));
            }
            let page_id = ig.page_id.as_deref().unwrap_or(default_page);
            return Ok(Target::Psid {
                psid: id("instagram.igsid", &ig.igsid)?,
                page_id: id("instagram.page_id", page_id)?,
            });
        }
        let target =
            match (&self.account, &self.uid, &self.psid) {
                (Some(account), None, None) => Target::Account {
                    id: id("account", account)?,
                    page_id: page(&self.page_id)?,
                },
                (None, Some(uid), None) => Target::Uid {
                    uid: id("uid", uid)?,
                    page_id: page(&self.page_id)?,
                },
                (None, None, Some(psid)) => Target::Psid {
                    psid: id("psid", psid)?,
                    page_id: id("page_id", self.page_id.as_deref().unwrap_or(default_page))?,
                },
                _ => return Err(ValidationError::new(
                    format!("{prefix}to"),
                    "must be exactly one of {\"account\"}, {\"uid\"} or {\"psid\"}, each with an optional \"page_id\"",
                )),
            };
        Ok(target)
    }
}

impl MessageSpec {
    fn parse(&self, prefix: &str) -> Result<OutboundMessage, ValidationError> {
        let field = |name: &str| format!("{prefix}message.{name}");
        let buttons = parse_buttons(&field("buttons"), &self.buttons)?;
        if !self.elements.is_empty() {
            let other = [
                (self.text.is_some(), "text"),
                (self.attachment.is_some(), "attachment"),
                (!buttons.is_empty(), "buttons"),
            ];
            if let Some((_, name)) = other.iter().find(|(given, _)| *given) {
                return Err(ValidationError::new(
                    field(name),
                    "cannot be combined with elements (buttons go inside each element)",
                ));
            }
        }
        let message = match (&self.text, &self.attachment) {
            (None, None) if !self.elements.is_empty() => {
                let elements = self
                    .elements
                    .iter()
                    .enumerate()
                    .map(|(i, e)| e.parse(&field(&format!("elements[{i}]"))))
                    .collect::<Result<Vec<_>, _>>()?;
                OutboundMessage::generic(&field("elements"), elements)?
            }
            (Some(_), Some(_)) => {
                return Err(ValidationError::new(
                    field("attachment"),
                    "cannot be combined with text; send two messages",
                ))
            }
            (None, None) => {
                return Err(ValidationError::new(
                    format!("{prefix}message"),
                    "needs text, an attachment or elements",
                ))
            }
            (Some(text), None) if buttons.is_empty() => {
                OutboundMessage::text(&field("text"), text)?
            }
            (Some(text), None) => {
                OutboundMessage::buttons(&format!("{prefix}message"), text, buttons)?
            }
            (None, Some(attachment)) => {
                if !buttons.is_empty() {
                    return Err(ValidationError::new(field("buttons"), "need text"));
                }
                OutboundMessage {
                    content: Content::Media {
                        kind: MediaKind::parse(&field("attachment.type"), &attachment.kind)?,
                        url: HttpsUrl::parse(&field("attachment.url"), &attachment.url)?,
                    },
                    quick_replies: Vec::new(),
                }
            }
        };
        let quick_replies = self
            .quick_replies
            .iter()
            .enumerate()
            .map(|(i, q)| {
                QuickReply::parse(&field(&format!("quick_replies[{i}]")), &q.title, &q.payload)
            })
            .collect::<Result<Vec<_>, _>>()?;
        message.with_quick_replies(&field("quick_replies"), quick_replies)
    }
}

impl ElementSpec {
    fn parse(&self, field: &str) -> Result<GenericElement, ValidationError> {
        let name = |n: &str| format!("{field}.{n}");
        Ok(GenericElement {
            title: bounded(&name("title"), &self.title, MAX_ELEMENT_TITLE)?,
            subtitle: self
                .subtitle
                .as_deref()
                .map(|s| bounded(&name("subtitle"), s, MAX_ELEMENT_TITLE))
                .transpose()?,
            image_url: self
                .image_url
                .as_deref()
                .map(|u| HttpsUrl::parse(&name("image_url"), u))
                .transpose()?,
            buttons: parse_buttons(&name("buttons"), &self.buttons)?,
        })
    }
}

fn parse_buttons(field: &str, specs: &[ButtonSpec]) -> Result<Vec<Button>, ValidationError> {
    specs
        .iter()
        .enumerate()
        .map(|(i, b)| {
            let name = format!("{field}[{i}]");
            match b {
                ButtonSpec::Postback { title, payload } => Button::postback(&name, title, payload),
                ButtonSpec::WebUrl { title, url } => Button::web_url(&name, title, url),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests;
