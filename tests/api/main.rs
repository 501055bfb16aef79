//! Integration tests: one module per feature, all in one test binary.

mod helpers;
#[path = "../support/mod.rs"]
mod support;

mod inbox;
mod lex;
mod outbox;
mod webhook;
