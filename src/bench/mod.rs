//! Load generators behind `lexbridge bench …` (the README's benchmarks).

mod api;
mod bridge;
mod fakes;
mod http;
mod server;
mod webhook;

use clap::Subcommand;

pub use http::RawClient;
pub use server::ChildServer;

#[derive(Subcommand)]
pub enum BenchCommand {
    /// Signed, realistic webhook POSTs: committed events/s, ack latency, peak RSS.
    Webhook(webhook::WebhookArgs),
    /// The bridge's own latency per message through the real Lex SDK, at a steady rate.
    Bridge(bridge::BridgeArgs),
    /// The outbound API: accepted/s, delivered/s across Pages, rate-limit accuracy.
    Api(api::ApiArgs),
}

pub async fn run(command: BenchCommand) -> anyhow::Result<()> {
    match command {
        BenchCommand::Webhook(args) => webhook::run(args).await,
        BenchCommand::Bridge(args) => bridge::run(args).await,
        BenchCommand::Api(args) => api::run(args).await,
    }
}

/// How many people benchmark messages come from: each writes again every
/// few seconds, as on a busy Page, and the first message of each is also
/// looked up with `ids_for_apps`.
pub const PEOPLE: u64 = 5_000;

/// p-th percentile (0..=100) of sorted samples.
pub fn percentile(sorted: &[u64], p: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}
