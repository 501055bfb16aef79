//! The outbound API's logic: API keys, requests, the messaging window,
//! acceptance into the outbox, and the answers — shared by the HTTP routes
//! and the operator commands.

pub mod accept;
pub mod answer;
pub mod cli;
pub mod key_rates;
pub mod keys;
pub mod request;
pub mod time;
