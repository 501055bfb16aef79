//! `lexbridge bench api`: the outbound API against a real server.
//!
//! 1. Accept: many connections POST `/api/v1/messages` to linked people
//!    spread over 20 Pages; reports 202s per second and latency.
//! 2. Delivery: the outbox drains those messages into an in-process Graph
//!    stand-in that answers at once (no rate limit asked of the server);
//!    reports messages delivered per second, first arrival to last.
//! 3. Rate limit: a second server with `SEND_RATE_PER_PAGE` (300) and a
//!    backlog on one Page; reports the Send API calls per second that Page
//!    received over a window (30 s) against the configured limit.

use anyhow::{bail, Context};
use secrecy::SecretString;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::fakes::FakeServers;
use super::server::{ChildServer, BENCH_TOKEN_KEY};
use super::{percentile, RawClient, PEOPLE};
use lexbridge::crypto::TokenCipher;
use lexbridge::outbound::keys;
use lexbridge::store::{now_ms, Store};

#[derive(clap::Args)]
pub struct ApiArgs {
    /// Messages to accept in phase 1 (and deliver in phase 2).
    #[arg(long, default_value_t = 50_000)]
    messages: u64,
    /// Concurrent connections.
    #[arg(long, default_value_t = 64)]
    concurrency: usize,
    /// Pages the people are spread over.
    #[arg(long, default_value_t = 20)]
    pages: u64,
    /// The per-Page limit checked in phase 3.
    #[arg(long, default_value_t = 300)]
    rate: u32,
    /// How long phase 3 measures.
    #[arg(long, default_value_t = 30)]
    seconds: u64,
}

/// Pages are numbered from here; the first is the server's own.
const FIRST_PAGE: u64 = 3000;

pub async fn run(args: ApiArgs) -> anyhow::Result<()> {
    if args.concurrency == 0 || args.pages == 0 || args.rate == 0 || args.seconds == 0 {
        bail!("--concurrency, --pages, --rate and --seconds must be at least 1");
    }
    accept_and_deliver(&args).await?;
    rate_limit(&args).await
}

async fn accept_and_deliver(args: &ApiArgs) -> anyhow::Result<()> {
    let fakes = FakeServers::start()?;
    let dir = tempfile::tempdir()?;
    let (url, key) = seed(&dir, args.pages).await?;
    let server = ChildServer::start(&[
        ("DATABASE_URL", url),
        ("FACEBOOK_PAGE_ID", FIRST_PAGE.to_string()),
        ("GRAPH_API_URL", fakes.graph_url.clone()),
        // "No limit": far above what one machine can send.
        ("SEND_RATE_PER_PAGE", "1000000".to_string()),
    ])
    .await?;
    let next = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..args.concurrency {
        let (addr, next, key, total) = (
            server.addr.clone(),
            Arc::clone(&next),
            key.clone(),
            args.messages,
        );
        tasks.push(tokio::spawn(async move {
            let mut client = RawClient::connect(&addr).await?;
            let auth = format!("Bearer {key}");
            let headers = [
                ("Content-Type", "application/json"),
                ("Authorization", auth.as_str()),
            ];
            let mut latencies = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= total {
                    break;
                }
                let body = format!(
                    r#"{{"to":{{"account":"acct-{}"}},"message":{{"text":"Your invoice {i} is ready."}}}}"#,
                    i % PEOPLE
                );
                let t = Instant::now();
                let (status, answer) = client
                    .request("POST", "/api/v1/messages", &headers, body.as_bytes())
                    .await?;
                latencies.push(t.elapsed().as_micros() as u64);
                if status != 202 {
                    bail!("the API answered {status}: {}", String::from_utf8_lossy(&answer));
                }
            }
            anyhow::Ok(latencies)
        }));
    }
    let mut latencies = Vec::new();
    for task in tasks {
        latencies.extend(task.await??);
    }
    let accept_secs = started.elapsed().as_secs_f64();
    latencies.sort_unstable();
    println!(
        "api benchmark: {} messages to {PEOPLE} linked people on {} Pages over {} connections",
        args.messages, args.pages, args.concurrency
    );
    println!(
        "  accepted (202) /s  : {:.0}",
        args.messages as f64 / accept_secs
    );
    println!(
        "  accept latency p50 : {:.2} ms",
        percentile(&latencies, 50.0) as f64 / 1000.0
    );
    println!(
        "  accept latency p99 : {:.2} ms",
        percentile(&latencies, 99.0) as f64 / 1000.0
    );
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        let arrived = fakes.arrivals.lock().map(|a| a.by_text.len()).unwrap_or(0) as u64;
        if arrived >= args.messages {
            break;
        }
        if Instant::now() > deadline {
            bail!(
                "only {arrived} of {} messages reached the Send API",
                args.messages
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (first, last, pages) = {
        let a = fakes
            .arrivals
            .lock()
            .map_err(|_| anyhow::anyhow!("arrivals lock poisoned"))?;
        let first = a.per_page.values().flatten().min().copied();
        let last = a.per_page.values().flatten().max().copied();
        (first, last, a.per_page.len())
    };
    let (first, last) = first.zip(last).context("no message arrived")?;
    let span = last.duration_since(first).as_secs_f64().max(1e-3);
    println!(
        "  delivered /s       : {:.0} ({} messages to {pages} Pages in {span:.1} s, first to last Send API call)",
        args.messages as f64 / span,
        args.messages
    );
    if let Some(rss) = server.peak_rss_mb() {
        println!("  server peak RSS    : {rss:.1} MB");
    }
    Ok(())
}

async fn rate_limit(args: &ApiArgs) -> anyhow::Result<()> {
    let fakes = FakeServers::start()?;
    let dir = tempfile::tempdir()?;
    let (url, key) = seed(&dir, 1).await?;
    let server = ChildServer::start(&[
        ("DATABASE_URL", url),
        ("FACEBOOK_PAGE_ID", FIRST_PAGE.to_string()),
        ("GRAPH_API_URL", fakes.graph_url.clone()),
        ("SEND_RATE_PER_PAGE", args.rate.to_string()),
    ])
    .await?;
    // A backlog larger than the window can drain, queued in batches.
    let backlog = u64::from(args.rate) * (args.seconds + 5) * 6 / 5;
    let mut client = RawClient::connect(&server.addr).await?;
    let auth = format!("Bearer {key}");
    let headers = [
        ("Content-Type", "application/json"),
        ("Authorization", auth.as_str()),
    ];
    let mut queued = 0;
    while queued < backlog {
        let n = (backlog - queued).min(1000);
        let messages: Vec<String> = (queued..queued + n)
            .map(|i| {
                format!(
                    r#"{{"to":{{"account":"acct-{}"}},"message":{{"text":"Reminder {i}"}}}}"#,
                    i % PEOPLE
                )
            })
            .collect();
        let body = format!(r#"{{"messages":[{}]}}"#, messages.join(","));
        let (status, answer) = client
            .request("POST", "/api/v1/messages/batch", &headers, body.as_bytes())
            .await?;
        if status != 200 {
            bail!(
                "the batch API answered {status}: {}",
                String::from_utf8_lossy(&answer)
            );
        }
        queued += n;
    }
    // Skip the first second (the burst allowance), then count a window.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let window_start = Instant::now();
    tokio::time::sleep(Duration::from_secs(args.seconds)).await;
    let window_end = Instant::now();
    let calls = fakes
        .arrivals
        .lock()
        .map(|a| {
            a.per_page
                .values()
                .flatten()
                .filter(|t| **t >= window_start && **t < window_end)
                .count()
        })
        .unwrap_or(0);
    let measured = calls as f64 / args.seconds as f64;
    let error = (measured - f64::from(args.rate)) / f64::from(args.rate) * 100.0;
    println!(
        "rate limit: SEND_RATE_PER_PAGE={} with {backlog} messages queued for one Page",
        args.rate
    );
    println!(
        "  Send API calls/s   : {measured:.1} over {} s ({calls} calls), {error:+.2}% from the limit",
        args.seconds
    );
    Ok(())
}

/// A scratch database with `pages` Pages (tokens encrypted as the server
/// expects), `PEOPLE` linked accounts spread over them who all wrote an
/// hour ago, and an API key; returns its URL and the key.
async fn seed(dir: &tempfile::TempDir, pages: u64) -> anyhow::Result<(String, String)> {
    let url = format!("sqlite://{}/api-bench.db", dir.path().display());
    let store = Store::connect(&lexbridge::config::DatabaseSettings::new(url.clone())).await?;
    store.migrate().await?;
    let cipher = TokenCipher::from_base64(&SecretString::from(BENCH_TOKEN_KEY))?;
    let now = now_ms();
    for p in 0..pages {
        let token = SecretString::from(format!("bench-page-token-{p}"));
        store
            .set_page(
                &(FIRST_PAGE + p).to_string(),
                None,
                &cipher.encrypt(&token),
                now,
            )
            .await?;
    }
    let Store::Sqlite { writer, .. } = &store else {
        bail!("the benchmark seeds SQLite only");
    };
    let mut tx = writer.begin().await?;
    for i in 0..PEOPLE {
        let (account, psid, page) = (
            format!("acct-{i}"),
            format!("{}", 8_000_000_000_000_000u64 + i),
            (FIRST_PAGE + i % pages).to_string(),
        );
        sqlx::query(
            "INSERT INTO accounts (id, fb_uid, name, created_at, updated_at) VALUES ($1, $2, $3, $4, $4)",
        )
        .bind(&account)
        .bind(format!("uid-{i}"))
        .bind("Bench Person")
        .bind(now)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "INSERT INTO links (page_id, psid, account_id, source, linked_at) VALUES ($1, $2, $3, 'ids_for_pages', $4)",
        )
        .bind(&page)
        .bind(&psid)
        .bind(&account)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "INSERT INTO conversations (page_id, psid, last_inbound_at, updated_at) VALUES ($1, $2, $3, $3)",
        )
        .bind(&page)
        .bind(&psid)
        .bind(now - 3_600_000)
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;
    let key = keys::generate();
    let key = keys::reveal(&key).to_string();
    store
        .create_api_key("bench", &keys::hash(&key), now)
        .await?;
    store.close().await;
    Ok((url, key))
}
