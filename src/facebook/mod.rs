//! Meta: Graph API client, webhook events, Send API rendering.

pub mod envelope;
pub mod graph;
pub mod render;
pub mod webhook;

pub use graph::{GraphClient, GraphError, SendResponse, SenderAction};
