//! Retention: processed inbox rows, finished outbox rows, `ids_for_apps`
//! answers and idle conversations older than RETENTION_DAYS go, in batches;
//! work still to do (unprocessed events, queued, held or sending messages,
//! the conversations they belong to) stays whatever its age.

use crate::helpers::*;
use lexbridge::startup::Options;
use lexbridge::store::now_ms;
use lexbridge::store::retention::{Cursor, Pace, Prune, DAY_MS};
use std::time::Duration;

const HOUR: i64 = 3_600_000;

/// An inbox row of `psid` in `state`, received at `at`.
pub async fn inbox_row(app: &TestApp, psid: &str, state: &str, at: i64) {
    let key = format!("test-{:016x}", rand::random::<u64>());
    app.exec(&format!(
        "INSERT INTO inbox (page_id, psid, kind, dedupe_key, event, state, next_attempt_at, received_at)
         VALUES ('{PAGE_ID}', '{psid}', 'message', '{key}', '{{\"message\":{{\"text\":\"my address is 1 Main St\"}}}}', '{state}', {at}, {at})"
    ))
    .await;
}

/// An outbox row to `psid` in `state`, created at `at`.
pub async fn outbox_row(app: &TestApp, psid: &str, state: &str, at: i64) {
    app.exec(&format!(
        "INSERT INTO outbox (page_id, psid, body, messaging_type, origin, state, next_attempt_at, created_at, hold_until)
         VALUES ('{PAGE_ID}', '{psid}', '{{\"message\":{{\"text\":\"your parcel\"}}}}', 'UPDATE', 'api', '{state}', {at}, {at}, {})",
        now_ms() + DAY_MS
    ))
    .await;
}

/// A conversation of `psid`: the person last wrote at `inbound`, the row
/// last changed at `updated`.
pub async fn conversation(app: &TestApp, psid: &str, inbound: i64, updated: i64) {
    app.exec(&format!(
        "INSERT INTO conversations (page_id, psid, last_inbound_at, nlu_state, updated_at)
         VALUES ('{PAGE_ID}', '{psid}', {inbound}, '{{\"dialog\":\"ordering\"}}', {updated})"
    ))
    .await;
}

pub async fn psid_lookup(app: &TestApp, psid: &str, account: Option<&str>, at: i64) {
    let account = account.map_or("NULL".to_string(), |a| format!("'{a}'"));
    app.exec(&format!(
        "INSERT INTO psid_lookups (page_id, psid, looked_up_at, account_id)
         VALUES ('{PAGE_ID}', '{psid}', {at}, {account})"
    ))
    .await;
}

/// The states of `table`'s rows (`inbox`, `outbox`), sorted.
async fn states(app: &TestApp, table: &str) -> Vec<String> {
    let mut states: Vec<String> = match table {
        "inbox" => app.inbox().await.into_iter().map(|r| r.state).collect(),
        _ => app.outbox().await.into_iter().map(|r| r.state).collect(),
    };
    states.sort();
    states
}

/// The PSIDs of the conversations, sorted.
async fn conversations(app: &TestApp) -> Vec<String> {
    let mut kept = Vec::new();
    for psid in [
        "P-IDLE",
        "P-HELD",
        "P-PENDING",
        "P-WROTE",
        "P-YOUNG",
        "P-SENDING",
        "P-QUEUED",
        "P-PROCESSING",
    ] {
        let n = app
            .count(&format!(
                "SELECT COUNT(*) FROM conversations WHERE psid = '{psid}'"
            ))
            .await;
        if n > 0 {
            kept.push(psid.to_string());
        }
    }
    kept
}

const PACE: Pace = Pace {
    batch: 500,
    pause: Duration::from_millis(1),
};

async fn prune_all(app: &TestApp, cutoff: i64) -> Vec<(Prune, u64)> {
    let mut pruned = Vec::new();
    for what in Prune::ALL {
        let n = app.store.prune(what, cutoff, PACE, || true).await.unwrap();
        pruned.push((what, n));
    }
    pruned
}

#[tokio::test]
async fn old_finished_rows_go_and_work_still_to_do_stays_whatever_its_age() {
    on_every_backend(|backend| async move {
        let app = quiet_app(&backend, &[]).await;
        let now = now_ms();
        let (old, young) = (now - 40 * DAY_MS, now - HOUR);
        for state in ["done", "dead", "pending", "processing"] {
            inbox_row(&app, "P-OLD", state, old).await;
        }
        inbox_row(&app, "P-PENDING", "pending", old).await;
        inbox_row(&app, "P-PROCESSING", "processing", old).await;
        inbox_row(&app, "P-YOUNG", "done", young).await;
        for state in ["sent", "delivered", "read", "failed", "expired", "cancelled", "queued", "held", "sending"] {
            outbox_row(&app, "P-OLD", state, old).await;
        }
        outbox_row(&app, "P-HELD", "held", old).await;
        outbox_row(&app, "P-SENDING", "sending", old).await;
        outbox_row(&app, "P-QUEUED", "queued", old).await;
        outbox_row(&app, "P-YOUNG", "sent", young).await;
        psid_lookup(&app, "P-OLD", None, old).await;
        psid_lookup(&app, "P-YOUNG", Some("acc-young"), young).await;
        conversation(&app, "P-IDLE", old, old).await;
        conversation(&app, "P-HELD", old, old).await;
        conversation(&app, "P-SENDING", old, old).await;
        conversation(&app, "P-PENDING", old, old).await;
        // Each open row alone keeps its conversation.
        conversation(&app, "P-QUEUED", old, old).await;
        conversation(&app, "P-PROCESSING", old, old).await;
        conversation(&app, "P-WROTE", young, old).await;
        conversation(&app, "P-YOUNG", young, young).await;
        // An idempotency answer inside its own 24 hours: the sweeper's, not
        // retention's.
        app.exec(&format!(
            "INSERT INTO api_requests (api_key_id, idempotency_key, request_hash, status, answer, created_at)
             VALUES (1, 'k-1', 'h', 202, '{{}}', {young})"
        ))
        .await;

        let pruned = prune_all(&app, now - 30 * DAY_MS).await;
        assert_eq!(
            pruned,
            [
                (Prune::Inbox, 2),
                (Prune::Outbox, 6),
                (Prune::PsidLookups, 1),
                (Prune::Conversations, 1)
            ],
            "{backend:?}"
        );
        assert_eq!(
            states(&app, "inbox").await,
            ["done", "pending", "pending", "processing", "processing"]
        );
        assert_eq!(
            states(&app, "outbox").await,
            ["held", "held", "queued", "queued", "sending", "sending", "sent"]
        );
        assert_eq!(app.count("SELECT COUNT(*) FROM psid_lookups WHERE psid = 'P-YOUNG'").await, 1);
        assert_eq!(app.count("SELECT COUNT(*) FROM psid_lookups").await, 1);
        assert_eq!(
            conversations(&app).await,
            [
                "P-HELD",
                "P-PENDING",
                "P-WROTE",
                "P-YOUNG",
                "P-SENDING",
                "P-QUEUED",
                "P-PROCESSING"
            ]
        );
        assert_eq!(app.count("SELECT COUNT(*) FROM api_requests").await, 1);

        // A second pass finds nothing more.
        let again: u64 = prune_all(&app, now - 30 * DAY_MS).await.iter().map(|(_, n)| n).sum();
        assert_eq!(again, 0);
        app.stop().await;
    })
    .await;
}

#[tokio::test]
async fn pruning_goes_in_batches_of_at_most_the_batch_size() {
    on_every_backend(|backend| async move {
        let app = quiet_app(&backend, &[]).await;
        let now = now_ms();
        let old = now - 40 * DAY_MS;
        let rows: Vec<String> = (0..1_203)
            .map(|i| format!("('{PAGE_ID}', 'P-{}', 'message', 'bulk-{i}', '{{}}', 'done', {old}, {old})", i % 7))
            .collect();
        app.exec(&format!(
            "INSERT INTO inbox (page_id, psid, kind, dedupe_key, event, state, next_attempt_at, received_at)
             VALUES {}",
            rows.join(", ")
        ))
        .await;
        inbox_row(&app, "P-LATE", "done", now).await;
        let cutoff = now - 30 * DAY_MS;

        let mut cursor = Cursor::Start;
        let mut batches = Vec::new();
        loop {
            let batch = app.store.prune_batch(Prune::Inbox, cutoff, &cursor, 500).await.unwrap();
            batches.push(batch.pruned);
            match batch.next {
                Some(next) => cursor = next,
                None => break,
            }
        }
        assert_eq!(batches, [500, 500, 203], "{backend:?}");
        assert_eq!(app.count("SELECT COUNT(*) FROM inbox").await, 1);

        // psid_lookups are walked by key, in the same batches.
        let rows: Vec<String> = (0..1_001)
            .map(|i| format!("('{PAGE_ID}', 'L-{i:05}', {old}, NULL)"))
            .collect();
        app.exec(&format!(
            "INSERT INTO psid_lookups (page_id, psid, looked_up_at, account_id) VALUES {}",
            rows.join(", ")
        ))
        .await;
        let first = app.store.prune_batch(Prune::PsidLookups, cutoff, &Cursor::Start, 500).await.unwrap();
        assert_eq!(first.pruned, 500);
        assert_eq!(first.next, Some(Cursor::Key(PAGE_ID.into(), "L-00499".into())));
        let rest = app.store.prune(Prune::PsidLookups, cutoff, PACE, || true).await.unwrap();
        assert_eq!(rest, 501);
        app.stop().await;
    })
    .await;
}

#[tokio::test]
async fn the_worker_prunes_soon_after_start_and_counts_in_metrics() {
    on_every_backend(|backend| async move {
        let db = TestDb::new(&backend).await;
        let graph = wiremock::MockServer::start().await;
        let app = start(db, graph, Options::default(), &[("RETENTION_DAYS", "2")]).await;
        let now = now_ms();
        // Three days old: past two days' retention, within thirty's.
        inbox_row(&app, "P-OLD", "done", now - 3 * DAY_MS).await;
        outbox_row(&app, "P-OLD", "delivered", now - 3 * DAY_MS).await;
        outbox_row(&app, "P-OLD", "read", now - DAY_MS).await;
        wait_until("old rows to be pruned", || async {
            app.count("SELECT COUNT(*) FROM inbox").await == 0
                && app.count("SELECT COUNT(*) FROM outbox").await == 1
        })
        .await;
        let metrics = app.metrics().await;
        for line in [
            "lexbridge_retention_pruned_total{table=\"inbox\"} 1",
            "lexbridge_retention_pruned_total{table=\"outbox\"} 1",
            "lexbridge_retention_pruned_total{table=\"conversations\"} 0",
        ] {
            assert!(metrics.contains(line), "{line} missing from:\n{metrics}");
        }
        app.stop().await;
    })
    .await;
}

/// Figures for the README (`cargo test --test api -- --ignored
/// retention::figures --nocapture`): pruning a backlog of 100,000 old inbox
/// rows and 100,000 old outbox rows, batch by batch. Each batch is one
/// statement that holds SQLite's write lock; none may hold it long.
#[tokio::test]
#[ignore = "a measurement, run by hand"]
async fn figures() {
    on_every_backend(|backend| async move {
        let app = quiet_app(&backend, &[]).await;
        let old = now_ms() - 40 * DAY_MS;
        for chunk in 0..10 {
            let inbox: Vec<String> = (0..10_000)
                .map(|i| format!("('{PAGE_ID}', 'P-{}', 'message', 'f-{chunk}-{i}', '{{\"message\":{{\"text\":\"hello there\"}}}}', 'done', {old}, {old})", i % 1000))
                .collect();
            app.exec(&format!(
                "INSERT INTO inbox (page_id, psid, kind, dedupe_key, event, state, next_attempt_at, received_at) VALUES {}",
                inbox.join(", ")
            ))
            .await;
            let outbox: Vec<String> = (0..10_000)
                .map(|i| format!("('{PAGE_ID}', 'P-{}', '{{\"message\":{{\"text\":\"hi\"}}}}', 'RESPONSE', 'reply', 'delivered', {old}, {old})", i % 1000))
                .collect();
            app.exec(&format!(
                "INSERT INTO outbox (page_id, psid, body, messaging_type, origin, state, next_attempt_at, created_at) VALUES {}",
                outbox.join(", ")
            ))
            .await;
        }
        let cutoff = now_ms() - 30 * DAY_MS;
        for what in [Prune::Inbox, Prune::Outbox] {
            let started = std::time::Instant::now();
            let (mut cursor, mut slowest, mut batches, mut pruned) =
                (Cursor::Start, Duration::ZERO, 0, 0);
            loop {
                let one = std::time::Instant::now();
                let batch = app.store.prune_batch(what, cutoff, &cursor, PACE.batch).await.unwrap();
                slowest = slowest.max(one.elapsed());
                batches += 1;
                pruned += batch.pruned;
                match batch.next {
                    Some(next) => cursor = next,
                    None => break,
                }
            }
            let took = started.elapsed();
            println!(
                "{backend:?} {}: {pruned} rows in {batches} batches, {took:?} without pauses, slowest batch {slowest:?}",
                what.table()
            );
            assert_eq!(pruned, 100_000);
            assert!(slowest < Duration::from_secs(1), "a batch took {slowest:?}");
        }
        app.stop().await;
    })
    .await;
}
