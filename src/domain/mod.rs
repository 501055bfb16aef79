//! Domain types that parse, never panic.

pub mod message;
pub mod window;

pub use message::{
    Button, Content, GenericElement, HttpsUrl, MediaKind, MessageText, OutboundMessage, QuickReply,
    ValidationError,
};
