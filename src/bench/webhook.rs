//! `lexbridge bench webhook`: many connections POST signed Messenger events;
//! reports committed events/s, ack latency and the server's peak RSS.

use anyhow::bail;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use super::fakes::FakeServers;
use super::server::{ChildServer, BENCH_APP_SECRET};
use super::{percentile, RawClient};
use lexbridge::facebook::signature::sign;

#[derive(clap::Args)]
pub struct WebhookArgs {
    /// A running server (host:port), or several sharing one database (the
    /// option repeated; connections are spread over them). Without it a
    /// server is started on a scratch SQLite database (synchronous=FULL).
    #[arg(long)]
    addr: Vec<String>,
    /// The app secret of the servers given by --addr.
    #[arg(long, default_value = BENCH_APP_SECRET)]
    app_secret: String,
    /// Page id the events are addressed to.
    #[arg(long, default_value = "2000")]
    page_id: String,
    /// Events to send in all.
    #[arg(long, default_value_t = 100_000)]
    events: u64,
    /// Concurrent connections.
    #[arg(long, default_value_t = 64)]
    concurrency: usize,
    /// Events per POST (Meta batches under load; 1 is the hardest case).
    #[arg(long, default_value_t = 1)]
    batch: u64,
    /// Random mids, as Meta's are (`m_` and 86 random characters), rather
    /// than this run's numbered ones: every event's key then lands on its
    /// own page of the dedupe index unless keys lead with the time.
    #[arg(long)]
    random_mids: bool,
}

pub async fn run(args: WebhookArgs) -> anyhow::Result<()> {
    if args.batch == 0 || args.concurrency == 0 {
        bail!("--batch and --concurrency must be at least 1");
    }
    // The server answers with its default (embedded) NLU; its replies go to
    // an in-process Graph stand-in, with no send rate to keep to: at Meta's
    // pace (`SEND_RATE_PER_PAGE`) the server would process only as fast as
    // its answers can leave (`workers::pacing`), and this benchmark
    // measures what processing can do.
    let fakes = FakeServers::start()?;
    let child = if args.addr.is_empty() {
        Some(
            ChildServer::start(&[
                ("GRAPH_API_URL", fakes.graph_url.clone()),
                ("SEND_RATE_PER_PAGE", "1000000".to_string()),
            ])
            .await?,
        )
    } else {
        None
    };
    let addrs = match &child {
        Some(c) => vec![c.addr.clone()],
        None => args.addr.clone(),
    };
    let cpu_before = child.as_ref().map(|c| c.cpu_ticks_by_thread());
    let run_id: u32 = rand::random();
    let next = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for connection in 0..args.concurrency {
        let (addr, next, secret, page) = (
            addrs[connection % addrs.len()].clone(),
            Arc::clone(&next),
            args.app_secret.clone(),
            args.page_id.clone(),
        );
        let (total, batch, random_mids) = (args.events, args.batch, args.random_mids);
        tasks.push(tokio::spawn(async move {
            let mut client = RawClient::connect(&addr).await?;
            let mut latencies = Vec::new();
            loop {
                let first = next.fetch_add(batch, Ordering::Relaxed);
                if first >= total {
                    break;
                }
                let body = body(&page, run_id, first, batch.min(total - first), random_mids);
                let signature = sign(secret.as_bytes(), body.as_bytes());
                let headers = [
                    ("Content-Type", "application/json"),
                    ("X-Hub-Signature-256", signature.as_str()),
                ];
                let t = Instant::now();
                let (status, answer) = client
                    .request("POST", "/webhook", &headers, body.as_bytes())
                    .await?;
                latencies.push(t.elapsed().as_micros() as u64);
                if status != 200 {
                    bail!(
                        "the webhook answered {status}: {}",
                        String::from_utf8_lossy(&answer)
                    );
                }
            }
            anyhow::Ok(latencies)
        }));
    }
    let mut latencies = Vec::new();
    for task in tasks {
        latencies.extend(task.await??);
    }
    let elapsed = started.elapsed().as_secs_f64();
    latencies.sort_unstable();
    println!(
        "webhook benchmark: {} events in {} requests of {} over {} connections to {} server(s)",
        args.events,
        latencies.len(),
        args.batch,
        args.concurrency,
        addrs.len()
    );
    println!("  committed events/s : {:.0}", args.events as f64 / elapsed);
    println!(
        "  requests/s         : {:.0}",
        latencies.len() as f64 / elapsed
    );
    println!(
        "  ack latency p50    : {:.2} ms",
        percentile(&latencies, 50.0) as f64 / 1000.0
    );
    println!(
        "  ack latency p99    : {:.2} ms",
        percentile(&latencies, 99.0) as f64 / 1000.0
    );
    // Acknowledged is not answered: the rate that holds up under a
    // sustained load is the slower of storing and processing.
    match processed_after(&addrs[0], started).await {
        Ok(took) => println!(
            "  processed events/s : {:.0} (the last event processed {took:.1} s after the first was sent)",
            args.events as f64 / took
        ),
        Err(e) => println!("  processed events/s : unknown ({e:#})"),
    }
    if let (Some(c), Some(before)) = (&child, &cpu_before) {
        print_cpu_per_event(before, &c.cpu_ticks_by_thread(), args.events);
        super::print_time_per_event(&addrs[0], args.events).await;
    }
    for addr in &addrs {
        if addrs.len() > 1 {
            println!("  server {addr}:");
        }
        let stored = super::metric::<u64>(addr, "lexbridge_webhook_events_stored_total")
            .await
            .unwrap_or(0);
        println!("  events stored (server's count) : {stored}");
        super::print_slowest_commit(addr).await;
        let rss = match &child {
            Some(c) => c.peak_rss_mb(),
            None => super::metric::<f64>(addr, "lexbridge_peak_rss_bytes")
                .await
                .ok()
                .map(|bytes| bytes / (1024.0 * 1024.0)),
        };
        if let Some(rss) = rss {
            println!("  server peak RSS    : {rss:.1} MB");
        }
    }
    Ok(())
}

/// Seconds from `started` until the servers' inbox (one database, so any
/// server's `/metrics` tells) holds no event waiting or in hand. Each look
/// counts the backlog (on Postgres some 13 ms for 20,000 rows waiting), so
/// it looks four times a second, not more: the figure is good to 0.25 s.
async fn processed_after(addr: &str, started: Instant) -> anyhow::Result<f64> {
    let depth = |state: &'static str| {
        let name = format!("lexbridge_inbox_depth{{state=\"{state}\"}}");
        async move { super::metric::<u64>(addr, &name).await }
    };
    let give_up = Instant::now() + std::time::Duration::from_secs(600);
    loop {
        if depth("pending").await? + depth("processing").await? == 0 {
            return Ok(started.elapsed().as_secs_f64());
        }
        if Instant::now() > give_up {
            bail!("events still open 10 minutes after the last was acknowledged");
        }
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    }
}

/// The server's CPU per event over the run, by thread: where the cost of
/// an event goes.
fn print_cpu_per_event(
    before: &std::collections::BTreeMap<String, u64>,
    after: &std::collections::BTreeMap<String, u64>,
    events: u64,
) {
    // /proc counts in USER_HZ ticks: 10 ms each on Linux.
    let micros = |ticks: u64| ticks as f64 * 10_000.0 / events.max(1) as f64;
    let used: Vec<(&String, u64)> = after
        .iter()
        .map(|(name, t)| {
            (
                name,
                t.saturating_sub(before.get(name).copied().unwrap_or(0)),
            )
        })
        .filter(|(_, t)| *t > 0)
        .collect();
    let total: u64 = used.iter().map(|(_, t)| t).sum();
    let parts: Vec<String> = used
        .iter()
        .map(|(name, t)| format!("{name} {:.0}", micros(*t)))
        .collect();
    println!(
        "  server CPU/event   : {:.0} µs ({})",
        micros(total),
        parts.join(", ")
    );
}

/// One signed webhook body with `count` message events from distinct people.
fn body(page: &str, run_id: u32, first: u64, count: u64, random_mids: bool) -> String {
    use base64::Engine;
    let now = lexbridge::store::now_ms();
    let events: Vec<String> = (first..first + count)
        .map(|i| {
            let random = || {
                base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(rand::random::<[u8; 32]>())
            };
            let mid = match random_mids {
                true => format!("m_{}{}", random(), random()),
                false => format!("m_{run_id:08x}_{i}"),
            };
            format!(
                r#"{{"sender":{{"id":"{psid}"}},"recipient":{{"id":"{page}"}},"timestamp":{now},"message":{{"mid":"{mid}","text":"Is my car locked? It is parked on Main Street, number {i}."}}}}"#,
                psid = 7_000_000_000_000_000u64 + (i % super::PEOPLE),
            )
        })
        .collect();
    format!(
        r#"{{"object":"page","entry":[{{"id":"{page}","time":{now},"messaging":[{}]}}]}}"#,
        events.join(",")
    )
}
