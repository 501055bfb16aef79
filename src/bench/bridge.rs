//! `lexbridge bench bridge`: the bridge's own added latency per message —
//! webhook receipt to Send API call, minus the time spent in the fake Lex
//! and fake Graph — at a fixed message rate, through a real `serve` child
//! talking to the real Lex SDK.

use anyhow::bail;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::fakes::FakeServers;
use super::server::{ChildServer, BENCH_APP_SECRET};
use super::{percentile, RawClient};
use lexbridge::facebook::signature::sign;

#[derive(clap::Args)]
pub struct BridgeArgs {
    /// Messages per second, sent at a steady pace.
    #[arg(long, default_value_t = 1000)]
    rate: u64,
    /// How long to send.
    #[arg(long, default_value_t = 20)]
    seconds: u64,
    /// Connections the pace is spread over.
    #[arg(long, default_value_t = 32)]
    connections: usize,
}

pub async fn run(args: BridgeArgs) -> anyhow::Result<()> {
    if args.rate == 0 || args.seconds == 0 || args.connections == 0 {
        bail!("--rate, --seconds and --connections must be at least 1");
    }
    let fakes = FakeServers::start()?;
    let server = ChildServer::start(&[
        ("NLU", "lex".to_string()),
        ("LEX_BOT_ID", "BENCHBOT".to_string()),
        ("LEX_BOT_ALIAS_ID", "BENCHALIAS".to_string()),
        ("LEX_ENDPOINT_URL", fakes.lex_url.clone()),
        ("AWS_REGION", "us-east-1".to_string()),
        ("AWS_ACCESS_KEY_ID", "AKIDBENCHFAKE".to_string()),
        ("AWS_SECRET_ACCESS_KEY", "bench-fake-secret".to_string()),
        ("GRAPH_API_URL", fakes.graph_url.clone()),
        ("SEND_RATE_PER_PAGE", "100000".to_string()),
    ])
    .await?;
    let total = args.rate * args.seconds;
    let sent_at: Arc<Mutex<HashMap<String, Instant>>> = Arc::default();
    let (tx, rx) = async_channel(args.connections * 4);
    let mut workers = Vec::new();
    for _ in 0..args.connections {
        let (rx, addr, sent_at) = (rx.clone(), server.addr.clone(), Arc::clone(&sent_at));
        workers.push(tokio::spawn(async move {
            let mut client = RawClient::connect(&addr).await?;
            while let Ok(i) = rx.recv().await {
                let text = format!("bench message {i}");
                let body = format!(
                    r#"{{"object":"page","entry":[{{"id":"2000","time":1,"messaging":[{{"sender":{{"id":"{psid}"}},"recipient":{{"id":"2000"}},"timestamp":{now},"message":{{"mid":"m.bridge.{i}","text":"{text}"}}}}]}}]}}"#,
                    psid = 8_000_000 + i % super::PEOPLE,
                    now = lexbridge::store::now_ms(),
                );
                let sig = sign(BENCH_APP_SECRET.as_bytes(), body.as_bytes());
                let headers = [("Content-Type", "application/json"), ("X-Hub-Signature-256", sig.as_str())];
                sent_at.lock().map_err(|_| anyhow::anyhow!("poisoned"))?.insert(format!("echo: {text}"), Instant::now());
                let (status, _) = client.request("POST", "/webhook", &headers, body.as_bytes()).await?;
                if status != 200 {
                    bail!("the webhook answered {status}");
                }
            }
            anyhow::Ok(())
        }));
    }
    let started = Instant::now();
    let mut ticker = tokio::time::interval(Duration::from_secs(1) / args.rate as u32);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    for i in 0..total {
        ticker.tick().await;
        if tx.send(i).await.is_err() {
            break;
        }
    }
    drop(tx);
    for w in workers {
        w.await??;
    }
    let send_secs = started.elapsed().as_secs_f64();
    // Wait for the answers to come in (at most 30 s after the last message).
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let answered = fakes.arrivals.lock().map(|a| a.by_text.len()).unwrap_or(0);
        if answered as u64 >= total || Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let lex_total = *fakes
        .lex_micros
        .lock()
        .map_err(|_| anyhow::anyhow!("poisoned"))?;
    let lex_each = lex_total / total.max(1);
    let mut added = added_latencies(&fakes, &sent_at, lex_each)?;
    added.sort_unstable();
    println!(
        "bridge benchmark: {total} messages at {} msg/s over {} connections",
        args.rate, args.connections
    );
    println!(
        "  offered rate       : {:.0} msg/s",
        total as f64 / send_secs
    );
    println!("  answered           : {} of {total}", added.len());
    println!(
        "  added latency p50  : {:.2} ms",
        percentile(&added, 50.0) as f64 / 1000.0
    );
    println!(
        "  added latency p99  : {:.2} ms",
        percentile(&added, 99.0) as f64 / 1000.0
    );
    println!("  fake Lex time/msg  : {lex_each} µs (subtracted)");
    super::print_slowest_commit(&server.addr).await;
    if let Some(rss) = server.peak_rss_mb() {
        println!("  server peak RSS    : {rss:.1} MB");
    }
    Ok(())
}

/// Webhook POST to Send API call of each answered message, in µs, minus
/// the time spent in the fake Lex.
fn added_latencies(
    fakes: &FakeServers,
    sent_at: &Mutex<HashMap<String, Instant>>,
    lex_each: u64,
) -> anyhow::Result<Vec<u64>> {
    let arrivals = fakes
        .arrivals
        .lock()
        .map_err(|_| anyhow::anyhow!("poisoned"))?;
    let sent = sent_at.lock().map_err(|_| anyhow::anyhow!("poisoned"))?;
    Ok(sent
        .iter()
        .filter_map(|(text, t0)| {
            arrivals
                .by_text
                .get(text)
                .map(|t1| t1.duration_since(*t0).as_micros() as u64)
        })
        .map(|us| us.saturating_sub(lex_each))
        .collect())
}

/// A bounded multi-consumer channel (tokio's mpsc has one consumer).
fn async_channel(capacity: usize) -> (Sender, Receiver) {
    let (tx, rx) = tokio::sync::mpsc::channel(capacity);
    (Sender(tx), Receiver(Arc::new(tokio::sync::Mutex::new(rx))))
}

struct Sender(tokio::sync::mpsc::Sender<u64>);
#[derive(Clone)]
struct Receiver(Arc<tokio::sync::Mutex<tokio::sync::mpsc::Receiver<u64>>>);

impl Sender {
    async fn send(&self, v: u64) -> Result<(), ()> {
        self.0.send(v).await.map_err(|_| ())
    }
}

impl Receiver {
    async fn recv(&self) -> Result<u64, ()> {
        self.0.lock().await.recv().await.ok_or(())
    }
}
