//! Load generators behind `lexbridge bench …` (the README's benchmarks).
//!
//! A module of the `lexbridge` command (`main.rs`), not of the library:
//! it drives the service from outside, over HTTP, as a load would, and
//! uses only what the library makes public.

mod api;
mod bridge;
mod fakes;
mod http;
mod server;
mod webhook;

use clap::Subcommand;

use http::RawClient;

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

/// A counter, gauge or histogram sum of the server's `/metrics`.
pub async fn metric<T: std::str::FromStr>(addr: &str, name: &str) -> anyhow::Result<T> {
    use anyhow::Context;
    let mut client = RawClient::connect(addr).await?;
    let (_, body) = client.request("GET", "/metrics", &[], b"").await?;
    let text = String::from_utf8_lossy(&body);
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' '))
        .and_then(|v| v.trim().parse().ok())
        .with_context(|| format!("no {name} in /metrics"))
}

/// Time per event the server spent (wall clock, summed over concurrent
/// work) acknowledging, in the NLU and in Send API calls.
pub async fn print_time_per_event(addr: &str, events: u64) {
    let per = |seconds: f64| seconds * 1e6 / events.max(1) as f64;
    let ack = metric::<f64>(addr, "lexbridge_webhook_ack_seconds_sum").await;
    let nlu = metric::<f64>(addr, "lexbridge_nlu_seconds_sum{backend=\"local\"}").await;
    let send = metric::<f64>(addr, "lexbridge_send_api_seconds_sum").await;
    if let (Ok(ack), Ok(nlu), Ok(send)) = (ack, nlu, send) {
        println!(
            "  time/event         : ack {:.0} µs, NLU {:.0} µs, Send API {:.0} µs (wall, so far)",
            per(ack),
            per(nlu),
            per(send)
        );
    }
}

/// The server's slowest commit: a disk flush that stalls holds up every
/// message waiting for it, which shows in the tail latencies.
pub async fn print_slowest_commit(addr: &str) {
    if let Ok(micros) = metric::<u64>(addr, "lexbridge_slowest_commit_microseconds").await {
        println!("  slowest commit     : {:.1} ms", micros as f64 / 1000.0);
    }
}
