//! lexbridge: Facebook Messenger <-> Amazon Lex V2, with account linking and
//! an outbound API for backend systems.
#![forbid(unsafe_code)]

pub mod clock;
pub mod config;
pub mod crypto;
pub mod demo;
pub mod domain;
pub mod facebook;
pub mod linking;
pub mod metrics;
pub mod nlu;
pub mod outbound;
pub mod relay;
pub mod routes;
pub mod sandbox;
pub mod startup;
pub mod state;
pub mod store;
pub mod telemetry;
pub mod workers;
