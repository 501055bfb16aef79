//! A photo, a voice message, a file, a location or a sticker as an NLU turn.
//!
//! Lex has no attachment input, so both engines receive the same fixed
//! utterance per kind (`sent an image`, `sent a location`, …, and
//! `sent an attachment` for the rest) beside request attributes naming what
//! came. A bot author routes them by adding that utterance to an intent;
//! a bot that has nothing for them leaves the bridge's `ATTACHMENT_REPLY`.

use serde::Serialize;
use std::collections::BTreeMap;

/// The utterance of an attachment of a kind no other names.
pub const ANY: &str = "sent an attachment";

/// Request attribute keys (Lex `requestAttributes`).
pub const TYPE_KEY: &str = "lexbridge:attachment-type";
pub const URL_KEY: &str = "lexbridge:attachment-url";
pub const LATITUDE_KEY: &str = "lexbridge:latitude";
pub const LONGITUDE_KEY: &str = "lexbridge:longitude";
pub const COUNT_KEY: &str = "lexbridge:attachment-count";

/// What the person sent, as the NLU is told.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AttachmentTurn {
    /// Messenger's type: `image`, `video`, `audio`, `file`, `location`,
    /// `sticker`, or whatever else Meta sends (`fallback`, `reel`, …).
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub latitude: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub longitude: Option<f64>,
    /// How many attachments the message carried (an album counts each).
    pub count: usize,
}

impl AttachmentTurn {
    /// The fixed utterance for this kind.
    pub fn utterance(&self) -> &'static str {
        match self.kind.as_str() {
            "image" => "sent an image",
            "video" => "sent a video",
            "audio" => "sent an audio clip",
            "file" => "sent a file",
            "location" => "sent a location",
            "sticker" => "sent a sticker",
            _ => ANY,
        }
    }

    /// The utterances that route it, most specific first.
    pub fn utterances(&self) -> Vec<&'static str> {
        let own = self.utterance();
        if own == ANY {
            vec![ANY]
        } else {
            vec![own, ANY]
        }
    }

    /// What Lex's `requestAttributes` carry for it.
    pub fn request_attributes(&self) -> BTreeMap<String, String> {
        let mut attributes = BTreeMap::from([
            (TYPE_KEY.to_string(), self.kind.clone()),
            (COUNT_KEY.to_string(), self.count.to_string()),
        ]);
        if let Some(url) = &self.url {
            attributes.insert(URL_KEY.to_string(), url.clone());
        }
        if let (Some(lat), Some(long)) = (self.latitude, self.longitude) {
            attributes.insert(LATITUDE_KEY.to_string(), lat.to_string());
            attributes.insert(LONGITUDE_KEY.to_string(), long.to_string());
        }
        attributes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn turn(kind: &str) -> AttachmentTurn {
        AttachmentTurn {
            kind: kind.into(),
            url: None,
            latitude: None,
            longitude: None,
            count: 1,
        }
    }

    #[test]
    fn each_kind_has_its_utterance_and_the_rest_share_one() {
        assert_eq!(turn("image").utterance(), "sent an image");
        assert_eq!(turn("location").utterances(), vec!["sent a location", ANY]);
        assert_eq!(turn("ig_reel").utterances(), vec![ANY]);
    }

    #[test]
    fn request_attributes_name_what_came() {
        let mut media = turn("image");
        media.url = Some("https://cdn.test/a.jpg".into());
        media.count = 2;
        let attrs = media.request_attributes();
        assert_eq!(attrs[TYPE_KEY], "image");
        assert_eq!(attrs[URL_KEY], "https://cdn.test/a.jpg");
        assert_eq!(attrs[COUNT_KEY], "2");
        assert!(!attrs.contains_key(LATITUDE_KEY));
        let mut place = turn("location");
        place.latitude = Some(48.137);
        place.longitude = Some(11.575);
        let attrs = place.request_attributes();
        assert_eq!(attrs[LATITUDE_KEY], "48.137");
        assert_eq!(attrs[LONGITUDE_KEY], "11.575");
        assert!(!attrs.contains_key(URL_KEY));
    }
}
