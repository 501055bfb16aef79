//! Meta: Graph API client, webhook events, Send API rendering, and the
//! per-Page Send API rate limit.

pub mod batch_queue;
pub mod debug_token;
pub mod envelope;
pub mod events;
pub mod graph;
pub mod messenger_profile;
pub mod page_cooldown;
pub mod rate_limit;
pub mod render;
pub mod signature;
pub mod signed_request;
pub mod thread_control;

pub use graph::{GraphClient, GraphError, SendResponse, SenderAction};
