//! Integration tests: one module per feature, all in one test binary.

mod browser;
mod demo;
mod demo_support;
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
mod outbound;
mod outbox;
mod sandbox;
mod unlink;
mod webhook;
