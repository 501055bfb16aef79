//! lexbridge: Facebook Messenger <-> Amazon Lex V2, with account linking and
//! an outbound API for backend systems.
//!
//! # Three flows, and the modules they pass through
//!
//! **A Messenger message.** `routes::webhook` checks Meta's signature
//! (`facebook::webhook`, with `crypto`) and splits the body into events
//! (`facebook::envelope`); the group committer (`store::writer`) stores each
//! as an inbox row and hands it to `workers::inbox`, which asks the NLU
//! (`nlu::lex` for Amazon Lex, or `nlu::embedded` over the engine in
//! `nlu::local`), turns its answer into Messenger messages (`relay`) and
//! commits them to the outbox; `workers::outbox` renders each
//! (`facebook::render`) and sends it with `facebook::graph`, within the
//! Page's rate (`facebook::rate_limit`).
//!
//! **A login.** `routes::auth` sends the browser to Facebook Login
//! (`linking::oauth`); its callback has `linking::login` ask Graph who the
//! person is and which of the Page's PSIDs are theirs (`linking::messenger`
//! for Messenger's account-link button), and stores the account and its
//! links in one transaction (`store::linking`), with each new link's
//! announcement (`linking::notice`) queued in the outbox; a PSID Meta did
//! not vouch for waits (`store::pending_links`) until the owner confirms it
//! (`routes::pending`). `routes::session` keeps the signed-in cookie and
//! `routes::account` shows the links.
//!
//! **An outbound ping.** `routes::api` authenticates the backend's key
//! (`outbound::keys`, `outbound::key_rates`); `routes::api::messages` parses
//! the request (`outbound::request`, into `domain::message`) and accepts it
//! (`outbound::accept`: the recipient's link, the messaging window of
//! `domain::window`, an idempotency key) into the outbox through the group
//! committer; `workers::outbox` delivers it as above.
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
