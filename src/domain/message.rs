//! Outbound Messenger messages as parsed types: Messenger's limits are
//! checked once, here, and everything inside takes the parsed types.

use url::Url;

/// A field that breaks a Messenger rule, named the way the caller wrote it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {reason}")]
pub struct ValidationError {
    pub field: String,
    pub reason: String,
}

impl ValidationError {
    pub fn new(field: impl Into<String>, reason: impl Into<String>) -> Self {
        ValidationError {
            field: field.into(),
            reason: reason.into(),
        }
    }
}

pub const MAX_TEXT: usize = 2000;
pub const MAX_BUTTON_TEXT: usize = 640;
pub const MAX_TITLE: usize = 20;
pub const MAX_ELEMENT_TITLE: usize = 80;
pub const MAX_PAYLOAD: usize = 1000;
pub const MAX_QUICK_REPLIES: usize = 13;
pub const MAX_BUTTONS: usize = 3;
pub const MAX_ELEMENTS: usize = 10;

/// `value`, not blank and at most `max` characters.
pub fn bounded(field: &str, value: &str, max: usize) -> Result<String, ValidationError> {
    if value.trim().is_empty() {
        return Err(ValidationError::new(field, "must not be empty"));
    }
    let chars = value.chars().count();
    if chars > max {
        return Err(ValidationError::new(
            field,
            format!("is {chars} characters; Messenger allows at most {max}"),
        ));
    }
    Ok(value.to_string())
}

/// Message text: 1 to 2000 characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageText(String);

impl MessageText {
    pub fn parse(field: &str, value: &str) -> Result<MessageText, ValidationError> {
        bounded(field, value, MAX_TEXT).map(MessageText)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// An https URL (Messenger fetches media and opens links only over https).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpsUrl(Url);

impl HttpsUrl {
    pub fn parse(field: &str, value: &str) -> Result<HttpsUrl, ValidationError> {
        let url = Url::parse(value)
            .map_err(|e| ValidationError::new(field, format!("is not a URL: {e}")))?;
        if url.scheme() != "https" {
            return Err(ValidationError::new(field, "must be an https URL"));
        }
        Ok(HttpsUrl(url))
    }

    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }
}

/// A text quick reply: title up to 20 characters, payload up to 1000.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuickReply {
    pub title: String,
    pub payload: String,
}

impl QuickReply {
    pub fn parse(field: &str, title: &str, payload: &str) -> Result<QuickReply, ValidationError> {
        Ok(QuickReply {
            title: bounded(&format!("{field}.title"), title, MAX_TITLE)?,
            payload: bounded(&format!("{field}.payload"), payload, MAX_PAYLOAD)?,
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Button {
    Postback { title: String, payload: String },
    WebUrl { title: String, url: HttpsUrl },
}

impl Button {
    pub fn postback(field: &str, title: &str, payload: &str) -> Result<Button, ValidationError> {
        Ok(Button::Postback {
            title: bounded(&format!("{field}.title"), title, MAX_TITLE)?,
            payload: bounded(&format!("{field}.payload"), payload, MAX_PAYLOAD)?,
        })
    }

    pub fn web_url(field: &str, title: &str, url: &str) -> Result<Button, ValidationError> {
        Ok(Button::WebUrl {
            title: bounded(&format!("{field}.title"), title, MAX_TITLE)?,
            url: HttpsUrl::parse(&format!("{field}.url"), url)?,
        })
    }
}

/// One card of a generic template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GenericElement {
    pub title: String,
    pub subtitle: Option<String>,
    pub image_url: Option<HttpsUrl>,
    pub buttons: Vec<Button>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MediaKind {
    Image,
    Audio,
    Video,
    File,
}

impl MediaKind {
    pub fn parse(field: &str, value: &str) -> Result<MediaKind, ValidationError> {
        match value {
            "image" => Ok(MediaKind::Image),
            "audio" => Ok(MediaKind::Audio),
            "video" => Ok(MediaKind::Video),
            "file" => Ok(MediaKind::File),
            _ => Err(ValidationError::new(
                field,
                "must be one of image, audio, video, file",
            )),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            MediaKind::Image => "image",
            MediaKind::Audio => "audio",
            MediaKind::Video => "video",
            MediaKind::File => "file",
        }
    }
}

/// What a message shows; quick replies may accompany any of them.
#[derive(Debug, Clone, PartialEq)]
pub enum Content {
    Text(MessageText),
    /// Button template: text up to 640 characters and 1 to 3 buttons.
    Buttons {
        text: String,
        buttons: Vec<Button>,
    },
    /// Generic template: 1 to 10 cards.
    Generic(Vec<GenericElement>),
    Media {
        kind: MediaKind,
        url: HttpsUrl,
    },
    /// A Messenger `message` object passed through as given (a Lex custom
    /// payload), already checked to be a JSON object with content.
    Raw(serde_json::Value),
}

/// A message to one person.
#[derive(Debug, Clone, PartialEq)]
pub struct OutboundMessage {
    pub content: Content,
    pub quick_replies: Vec<QuickReply>,
}

impl OutboundMessage {
    pub fn text(field: &str, text: &str) -> Result<OutboundMessage, ValidationError> {
        Ok(OutboundMessage {
            content: Content::Text(MessageText::parse(field, text)?),
            quick_replies: Vec::new(),
        })
    }

    pub fn buttons(
        field: &str,
        text: &str,
        buttons: Vec<Button>,
    ) -> Result<OutboundMessage, ValidationError> {
        let text = bounded(&format!("{field}.text"), text, MAX_BUTTON_TEXT)?;
        check_count(&format!("{field}.buttons"), buttons.len(), 1, MAX_BUTTONS)?;
        Ok(OutboundMessage {
            content: Content::Buttons { text, buttons },
            quick_replies: Vec::new(),
        })
    }

    pub fn generic(
        field: &str,
        elements: Vec<GenericElement>,
    ) -> Result<OutboundMessage, ValidationError> {
        check_count(field, elements.len(), 1, MAX_ELEMENTS)?;
        for (i, e) in elements.iter().enumerate() {
            bounded(&format!("{field}[{i}].title"), &e.title, MAX_ELEMENT_TITLE)?;
            check_count(
                &format!("{field}[{i}].buttons"),
                e.buttons.len(),
                0,
                MAX_BUTTONS,
            )?;
        }
        Ok(OutboundMessage {
            content: Content::Generic(elements),
            quick_replies: Vec::new(),
        })
    }

    pub fn with_quick_replies(
        mut self,
        field: &str,
        quick_replies: Vec<QuickReply>,
    ) -> Result<OutboundMessage, ValidationError> {
        check_count(field, quick_replies.len(), 0, MAX_QUICK_REPLIES)?;
        self.quick_replies = quick_replies;
        Ok(self)
    }
}

fn check_count(field: &str, n: usize, min: usize, max: usize) -> Result<(), ValidationError> {
    if n < min || n > max {
        return Err(ValidationError::new(
            field,
            format!("has {n} items; Messenger allows {min} to {max}"),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_limited_to_2000_characters() {
        assert!(MessageText::parse("text", &"é".repeat(2000)).is_ok());
        let err = MessageText::parse("text", &"a".repeat(2001)).unwrap_err();
        assert_eq!(err.field, "text");
        assert!(MessageText::parse("text", "   ").is_err());
    }

    #[test]
    fn quick_replies_and_buttons_follow_messenger_limits() {
        assert!(QuickReply::parse("qr[0]", &"t".repeat(21), "p").is_err());
        assert!(QuickReply::parse("qr[0]", "ok", &"p".repeat(1001)).is_err());
        let many = vec![QuickReply::parse("q", "a", "b").unwrap(); 14];
        let msg = OutboundMessage::text("text", "hi").unwrap();
        assert_eq!(
            msg.with_quick_replies("quick_replies", many)
                .unwrap_err()
                .field,
            "quick_replies"
        );
        let b = Button::postback("b", "Go", "GO").unwrap();
        assert!(OutboundMessage::buttons("m", "pick", vec![b.clone(); 4]).is_err());
        assert!(OutboundMessage::buttons("m", "pick", vec![b; 3]).is_ok());
    }

    #[test]
    fn urls_must_be_https() {
        assert!(HttpsUrl::parse("url", "https://example.com/a.png").is_ok());
        assert_eq!(
            Button::web_url("buttons[0]", "Open", "http://example.com")
                .unwrap_err()
                .field,
            "buttons[0].url"
        );
    }
}
