//! lexbridge: Facebook Messenger <-> Amazon Lex V2, with account linking and
//! an outbound API for backend systems.
//!
//! # Three flows, and the modules they pass through
//!
//! **A Messenger message.** `routes::webhook` checks Meta's signature
//! (`facebook::signature`, with `crypto`) and splits the body into events
//! (`facebook::envelope`, types in `facebook::events`); the group committer
//! (`store::writer`) stores each as an inbox row and hands it to
//! `workers::inbox`, which asks the NLU (`nlu::lex_client` for Amazon Lex,
//! or `nlu::embedded` over the engine in `nlu::local`), turns its answer
//! into Messenger messages (`messenger_replies`) and commits them to the
//! outbox; `workers::outbox` renders each (`facebook::render`) and sends it
//! with `facebook::graph`, within the Page's rate (`facebook::rate_limit`).
//! Failures are retried within a time budget (`workers::retry`; a Page that
//! Graph rate-limits cools down as a whole, `facebook::page_cooldown`);
//! what finally fails is kept with its reason, listed and put back by
//! `dead_letters` (`lexbridge inbox|outbox failed|retry`).
//!
//! **A login.** `routes::auth` sends the browser to Facebook Login
//! (`linking::oauth`); its callback has `linking::login` ask Graph who the
//! person is and which of the Page's PSIDs are theirs (`linking::messenger`
//! for Messenger's account-link button), and stores the account and its
//! links in one transaction (`store::linking`), with each new link's
//! announcement (`linking::notice`) queued in the outbox; a PSID Meta did
//! not vouch for waits (`store::pending_links`) until the owner confirms it
//! (`routes::pending`). `routes::session` keeps the signed-in cookie,
//! `routes::signed_in` gives handlers the signed-in visitor and their
//! CSRF-checked forms, and `routes::account` shows the links.
//!
//! **An outbound ping.** `routes::api::caller` authenticates the backend's
//! key (`outbound::keys`, `outbound::key_rates`); `routes::api::messages`
//! hands the body to `outbound::accept`, which parses it
//! (`outbound::request`, into `domain::message`), finds the recipient's
//! link (`store::outbound_api`), applies the messaging window of
//! `domain::window` and an idempotency key, and commits it to the outbox
//! through the group committer; `workers::outbox` delivers it as above.
//!
//! # The HTTP boundary
//!
//! Each boundary has one error type that becomes the response:
//! `routes::webhook::WebhookError`, `routes::site_error::SiteError` (the
//! login site), `routes::api::error::ApiFailure` and
//! `routes::data_deletion::DeletionError`; handlers return
//! `Result<HttpResponse, _>` of their boundary's error. Statuses are chosen
//! under `routes`, except the outbound API's: its table is
//! `outbound::answer::Outcome::http_status`, because its JSON carries them
//! too (each batch item's `http_status`, an idempotent replay's status).
//!
//! **Operations.** `routes::health` answers `/healthz` (alive), `/readyz`
//! (from `readiness`: database, migrations, the workers' liveness guards,
//! Pages paused for an invalid token) and `/metrics` (`metrics`).
//! `token_health` checks Page and user tokens with Graph's `debug_token`
//! (`facebook::debug_token`; at start and daily, `workers::tokens`) and
//! pauses a Page whose token Meta refuses (a 190 from the Send API in
//! `workers::outbox`) until a valid one is found.
//!
//! Every route, feature and worker is handed the application state
//! (`state::AppState`), built in `startup`; settings come from `config`.
//! Dependencies run one way (`tests/layers.rs` checks them): `facebook` and
//! `nlu` take nothing from `store`, `nlu` nothing from `facebook`, only
//! `startup` reaches `workers`, and the embedded engine `nlu::local` only the
//! reply types (`nlu::reply`). The load generators behind `lexbridge bench`
//! are part of the command (`src/bench/`, a module of `main.rs`), not of
//! this library.
#![forbid(unsafe_code)]

pub mod clock;
pub mod config;
pub mod crypto;
pub mod dead_letters;
pub mod demo;
pub mod domain;
pub mod facebook;
pub mod linking;
pub mod messenger_replies;
pub mod metrics;
pub mod nlu;
pub mod outbound;
pub mod page_setup;
pub mod pages;
pub mod readiness;
pub mod routes;
pub mod sandbox;
pub mod startup;
pub mod state;
pub mod store;
pub mod telemetry;
pub mod token_health;
pub mod workers;
