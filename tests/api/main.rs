//! Integration tests: one module per feature, all in one test binary.

mod browser;
mod data_deletion;
mod demo;
mod demo_support;
mod helpers;
#[path = "../support/mod.rs"]
mod support;

mod inbox;
mod instagram;
mod instances;
mod key_scopes;
mod lex;
mod lifecycle;
mod link_trust;
mod local_nlu;
mod login;
mod login_failures;
mod login_messenger;
mod login_support;
mod metrics;
mod outages;
mod outbound;
mod outbox;
mod pacing;
mod sandbox;
mod seen;
mod sessions;
mod tolerance;
mod unlink;
mod webhook;

mod fulfillment;
mod handover;
mod health;
mod lex_session;
mod page_setup;
mod pages;
mod paused_page;
mod pending_expiry;
mod planner_stats;
mod retention;
