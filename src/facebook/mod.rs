//! Meta: Graph API client, webhook events, Send API rendering, and the
//! per-Page Send API rate limit.

pub mod envelope;
pub mod graph;
pub mod rate_limit;
pub mod render;
pub mod signed_request;
pub mod webhook;

pub use graph::{GraphClient, GraphError, SendResponse, SenderAction};
