//! `lexbridge bench bridge`: the bridge's own added latency per message —
//! webhook receipt to Send API call, minus the time spent in the fake Lex
//! and fake Graph — at a fixed message rate, through a real `serve` child
//! talking to the real Lex SDK. It also splits that time at the Lex call:
//! webhook POST to Lex (ack, store, claim) and Lex's answer to the Send API
//! (store the replies, claim, send).

use anyhow::bail;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::fakes::{echo_of, Arrivals, FakeServers, LexCalls};
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
    // A message every microsecond at most: a faster tick is no tick.
    if args.rate > 1_000_000 {
        bail!("--rate must be at most 1000000 messages a second");
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
    let sent_at: Arc<Mutex<HashMap<u64, Instant>>> = Arc::default();
    let (tx, rx) = async_channel(args.connections * 4);
    let mut workers = Vec::new();
    for _ in 0..args.connections {
        let (rx, addr, sent_at) = (rx.clone(), server.addr.clone(), Arc::clone(&sent_at));
        workers.push(tokio::spawn(async move {
            let mut client = RawClient::connect(&addr).await?;
            while let Ok(i) = rx.recv().await {
                let text = message_text(i);
                let body = format!(
                    r#"{{"object":"page","entry":[{{"id":"2000","time":1,"messaging":[{{"sender":{{"id":"{psid}"}},"recipient":{{"id":"2000"}},"timestamp":{now},"message":{{"mid":"m.bridge.{i}","text":"{text}"}}}}]}}]}}"#,
                    psid = 8_000_000 + i % super::PEOPLE,
                    now = lexbridge::store::now_ms(),
                );
                let sig = sign(BENCH_APP_SECRET.as_bytes(), body.as_bytes());
                let headers = [("Content-Type", "application/json"), ("X-Hub-Signature-256", sig.as_str())];
                sent_at.lock().map_err(|_| anyhow::anyhow!("poisoned"))?.insert(i, Instant::now());
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
    let legs = {
        let poisoned = || anyhow::anyhow!("poisoned");
        let sent = sent_at.lock().map_err(|_| poisoned())?;
        let lex = fakes.lex.lock().map_err(|_| poisoned())?;
        let arrivals = fakes.arrivals.lock().map_err(|_| poisoned())?;
        legs(&sent, &lex, &arrivals)
    };
    println!(
        "bridge benchmark: {total} messages at {} msg/s over {} connections",
        args.rate, args.connections
    );
    println!(
        "  offered rate       : {:.0} msg/s",
        total as f64 / send_secs
    );
    println!("  answered           : {} of {total}", legs.added.len());
    let ms = |micros: &[u64], p: f64| percentile(micros, p) as f64 / 1000.0;
    println!("  added latency p50  : {:.2} ms", ms(&legs.added, 50.0));
    println!("  added latency p99  : {:.2} ms", ms(&legs.added, 99.0));
    for (name, micros) in [
        ("POST to Lex", &legs.to_lex),
        ("Lex to Send API", &legs.from_lex),
    ] {
        let (p50, p99) = (ms(micros, 50.0), ms(micros, 99.0));
        println!("  {name:<19}: p50 {p50:.2} ms, p99 {p99:.2} ms");
    }
    println!("  fake Lex time/msg  : {} µs (subtracted)", legs.lex_each);
    super::print_slowest_commit(&server.addr).await;
    if let Some(rss) = server.peak_rss_mb() {
        println!("  server peak RSS    : {rss:.1} MB");
    }
    Ok(())
}

/// Each answered message's times in µs, sorted: webhook POST to Send API
/// call and its two legs, webhook POST to Lex call and Lex call to Send API
/// call, each less the mean time a call spent in the fake Lex where it
/// counts.
struct Legs {
    added: Vec<u64>,
    to_lex: Vec<u64>,
    from_lex: Vec<u64>,
    lex_each: u64,
}

fn legs(sent: &HashMap<u64, Instant>, lex: &LexCalls, arrivals: &Arrivals) -> Legs {
    let lex_each = lex.micros / (lex.by_text.len() as u64).max(1);
    let micros =
        |from: Instant, to: &Instant| to.saturating_duration_since(from).as_micros() as u64;
    let mut legs = Legs {
        added: Vec::new(),
        to_lex: Vec::new(),
        from_lex: Vec::new(),
        lex_each,
    };
    for (i, t0) in sent {
        let text = message_text(*i);
        let Some(t2) = arrivals.by_text.get(&echo_of(&text)) else {
            continue;
        };
        legs.added.push(micros(*t0, t2).saturating_sub(lex_each));
        if let Some(t1) = lex.by_text.get(&text) {
            legs.to_lex.push(micros(*t0, t1));
            legs.from_lex.push(micros(*t1, t2).saturating_sub(lex_each));
        }
    }
    for v in [&mut legs.added, &mut legs.to_lex, &mut legs.from_lex] {
        v.sort_unstable();
    }
    legs
}

/// The text of message `i`, as sent and as the fake Lex sees it.
fn message_text(i: u64) -> String {
    format!("bench message {i}")
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

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_rate_no_ticker_can_keep_is_refused_before_anything_starts() {
        for rate in [0, 1_000_001, 4_294_967_296] {
            let args = BridgeArgs {
                rate,
                seconds: 1,
                connections: 1,
            };
            let error = run(args).await.expect_err("refused").to_string();
            assert!(error.contains("--rate"), "{rate}: {error}");
        }
    }

    /// Each answered message is timed from its POST, split at its Lex call,
    /// the fake Lex's mean time taken off where it counts; an unanswered
    /// one is left out.
    #[test]
    fn legs_split_each_answered_message_at_its_lex_call() {
        let t0 = Instant::now();
        let at = |ms: u64| t0 + Duration::from_millis(ms);
        let sent = HashMap::from([(1, at(0)), (2, at(10))]);
        let lex = LexCalls {
            micros: 2_000, // 1 ms each over 2 calls
            by_text: HashMap::from([(message_text(1), at(3)), (message_text(2), at(12))]),
        };
        let arrivals = Arrivals {
            by_text: HashMap::from([(echo_of(&message_text(1)), at(7))]),
            ..Arrivals::default()
        };
        let legs = legs(&sent, &lex, &arrivals);
        assert_eq!(legs.lex_each, 1_000);
        assert_eq!(legs.added, vec![6_000]);
        assert_eq!(legs.to_lex, vec![3_000]);
        assert_eq!(legs.from_lex, vec![3_000]);
    }
}
