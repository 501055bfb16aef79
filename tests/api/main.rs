//! Integration tests: one module per feature, all in one test binary.

mod browser;
mod helpers;
#[path = "../support/mod.rs"]
mod support;

mod inbox;
mod lex;
mod local_nlu;
mod login;
mod login_failures;
mod login_messenger;
mod login_support;
mod metrics;
mod outbound;
mod outbox;
mod tolerance;
mod webhook;
