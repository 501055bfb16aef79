//! `/metrics` is cheap and can be closed: no table is read whole on a
//! scrape or a receipt, and `METRICS_TOKEN` asks for a bearer token.

use crate::helpers::*;
use lexbridge::startup::Options;
use lexbridge::store::inbox::{self, INBOX_DEAD_SQL, INBOX_DEPTH_SQL};
use lexbridge::store::inbox_walk;
use lexbridge::store::outbox::{
    self, DELIVERED_MID_SQL, DELIVERED_WATERMARK_SQL, OUTBOX_DEPTH_SQL, OUTBOX_HELD_SQL,
    READ_WATERMARK_SQL,
};
use lexbridge::store::queue_age::{INBOX_OLDEST_SQL, OUTBOX_OLDEST_SQL};
use lexbridge::store::Store;
use sqlx::Row;

const TOKEN: &str = "metrics-test-token-not-real";

#[tokio::test]
async fn metrics_token_asks_for_the_bearer_token() {
    on_every_backend(|backend| async move {
        let db = TestDb::new(&backend).await;
        let graph = wiremock::MockServer::start().await;
        let app = start(db, graph, Options::default(), &[("METRICS_TOKEN", TOKEN)]).await;
        let get = |authorization: Option<String>| {
            let mut request = app.http.get(format!("{}/metrics", app.address));
            if let Some(value) = authorization {
                request = request.header("Authorization", value);
            }
            request.send()
        };
        for refused in [
            None,
            Some("Bearer wrong-token".to_string()),
            Some(format!("Bearer {TOKEN}x")),
            Some(format!("Basic {TOKEN}")),
            Some(TOKEN.to_string()),
        ] {
            let response = get(refused.clone()).await.unwrap();
            assert_eq!(response.status(), 401, "{refused:?}");
            assert!(response.headers().contains_key("www-authenticate"));
            assert!(!response.text().await.unwrap().contains("lexbridge_"));
        }
        for allowed in [format!("Bearer {TOKEN}"), format!("bearer {TOKEN}")] {
            let response = get(Some(allowed)).await.unwrap();
            assert_eq!(response.status(), 200);
            let text = response.text().await.unwrap();
            assert!(
                text.contains("lexbridge_webhook_requests_total 0\n"),
                "{text}"
            );
            assert!(
                text.contains("lexbridge_inbox_depth{state=\"pending\"} 0\n"),
                "{text}"
            );
            assert!(text.contains("lexbridge_paused_pages 0\n"), "{text}");
        }
        let health = app
            .http
            .get(format!("{}/health", app.address))
            .send()
            .await
            .unwrap();
        assert_eq!(health.status(), 200, "only /metrics is closed");
        app.stop().await;
    })
    .await;
}

/// The plan of `sql` (its `$N` bound to `args`) as lines of text. On
/// Postgres sequential scans are priced out, so a plan that still scans the
/// table has no index it could use.
async fn plan(store: &Store, sql: &str, args: &[&str]) -> Vec<String> {
    match store {
        Store::Sqlite { reader, .. } => {
            let explain = format!("EXPLAIN QUERY PLAN {sql}");
            let mut query = sqlx::query(&explain);
            for arg in args {
                query = query.bind(*arg);
            }
            let rows = query.fetch_all(reader).await.expect("explain");
            rows.iter().map(|r| r.get::<String, _>("detail")).collect()
        }
        Store::Postgres(pool) => {
            let mut conn = pool.acquire().await.expect("connection");
            sqlx::query("SET enable_seqscan = off")
                .execute(&mut *conn)
                .await
                .expect("set");
            let explain = format!("EXPLAIN {sql}");
            let mut query = sqlx::query(&explain);
            for arg in args {
                query = match arg.parse::<i64>() {
                    Ok(n) => query.bind(n),
                    Err(_) => query.bind(*arg),
                };
            }
            let rows = query.fetch_all(&mut *conn).await.expect("explain");
            sqlx::query("RESET enable_seqscan")
                .execute(&mut *conn)
                .await
                .expect("reset");
            rows.iter().map(|r| r.get::<String, _>(0)).collect()
        }
    }
}

#[tokio::test]
async fn scrapes_and_receipts_read_indexes_of_the_rows_they_need() {
    on_every_backend(|backend| async move {
        let app = spawn_app(&backend).await;
        // Each statement and the partial indexes (of open, dead, held or
        // unreceipted rows only) it may read.
        let cases: [(&str, &[&str], &[&str]); 9] = [
            (INBOX_OLDEST_SQL, &[], &["inbox_waiting"]),
            (OUTBOX_OLDEST_SQL, &[], &["outbox_waiting"]),
            (
                INBOX_DEPTH_SQL,
                &[],
                &[
                    "inbox_waiting",
                    "inbox_open",
                    "inbox_in_hand",
                    "inbox_leases",
                ],
            ),
            (INBOX_DEAD_SQL, &[], &["inbox_dead"]),
            (OUTBOX_DEPTH_SQL, &[], &["outbox_waiting", "outbox_open"]),
            (OUTBOX_HELD_SQL, &[], &["outbox_held", "outbox_hold_expiry"]),
            (
                DELIVERED_WATERMARK_SQL,
                &["P1", "U1", "5"],
                &["outbox_receipts"],
            ),
            (READ_WATERMARK_SQL, &["P1", "U1", "5"], &["outbox_receipts"]),
            (DELIVERED_MID_SQL, &["m.1"], &["outbox_message_id"]),
        ];
        for (sql, args, indexes) in cases {
            let lines = plan(&app.store, sql, args).await;
            let text = lines.join("\n");
            assert!(indexes.iter().any(|i| text.contains(i)), "{sql}\n{text}");
            assert!(!scans_a_table(&lines), "{sql}\n{text}");
        }
        app.stop().await;
    })
    .await;
}

/// A plan line that reads a work table whole (SQLite names the table, or
/// its alias `r` or `p` in the claims; Postgres says `Seq Scan`).
fn scans_a_table(lines: &[String]) -> bool {
    lines.iter().any(|l| {
        l.contains("Seq Scan")
            || (["SCAN inbox", "SCAN outbox", "SCAN r", "SCAN p"]
                .iter()
                .any(|scan| l.trim_start().starts_with(scan))
                && !l.contains("INDEX"))
    })
}

/// A claim finds the rows waiting by id and the rows in hand by the end of
/// their lease, each through its own index: the rows a worker holds (up to
/// 512 in an outbox waiting for its Page's send rate) are never stepped
/// over, and no table is read whole. SQLite, not knowing how few rows are
/// in hand, would walk the table in id order instead (it did, until the
/// claims named their indexes). The claims made on a worker's behalf in
/// every batch look at waiting rows only.
#[tokio::test]
async fn a_claim_reads_the_waiting_rows_and_the_leases_apart() {
    on_every_backend(|backend| async move {
        let app = spawn_app(&backend).await;
        let postgres = matches!(app.store, Store::Postgres(_));
        for lapsed in [true, false] {
            let inbox = postgres.then(|| inbox::claim_sql(lapsed));
            let claims = inbox.map(|sql| (sql, "inbox")).into_iter();
            for (sql, table) in claims.chain([(outbox::claim_sql(postgres, lapsed), "outbox")]) {
                let args: &[&str] = match postgres {
                    true => &["200", "100", "10", "instance-a"],
                    false => &["200", "100", "10"],
                };
                let lines = plan(&app.store, sql, args).await;
                let text = lines.join("\n");
                assert!(
                    text.contains(&format!("{table}_waiting")),
                    "{table}\n{text}"
                );
                assert_eq!(
                    text.contains(&format!("{table}_leases")),
                    lapsed,
                    "{table}, lapsed leases {lapsed}\n{text}"
                );
                assert!(!scans_a_table(&lines), "{table} claim\n{text}");
            }
        }
        if !postgres {
            // SQLite's inbox claim walks: each step of waiting rows, the
            // rows whose lease ran out (with their conversations' rows in
            // hand), and the conversations in hand.
            for (sql, args, indexes) in [
                (
                    inbox_walk::WAITING,
                    ["100", "0", "256"].as_slice(),
                    ["inbox_waiting"].as_slice(),
                ),
                (
                    inbox_walk::LAPSED,
                    ["100", "10"].as_slice(),
                    ["inbox_leases", "inbox_in_hand"].as_slice(),
                ),
                (
                    inbox_walk::IN_HAND,
                    [].as_slice(),
                    ["inbox_in_hand"].as_slice(),
                ),
            ] {
                let lines = plan(&app.store, sql, args).await;
                let text = lines.join("\n");
                for index in indexes {
                    assert!(text.contains(index), "{sql}\n{text}");
                }
                assert!(!scans_a_table(&lines), "{sql}\n{text}");
            }
        }
        app.stop().await;
    })
    .await;
}

/// Postgres plans a claim from the statistics of `state`. Taken after a
/// quiet spell they say nearly every row is done; then a burst arrives.
/// Planned as an anti-join, each candidate's conversation check read the
/// whole open set (a claim among 20,000 waiting rows took 2 s); it must
/// look up the candidate's own conversation, and the candidates must come
/// from the waiting rows' index, whatever the statistics say.
#[tokio::test]
async fn a_claim_after_a_quiet_spell_looks_up_each_conversation_through_its_index() {
    use sqlx::Connection;
    let Some((db, store)) = postgres_store().await else {
        return;
    };
    store.close().await;
    let mut conn = sqlx::PgConnection::connect(&db.url).await.expect("connect");
    let people = "'u' || (g % 300)";
    let quiet_then_burst = [
        // Autovacuum would analyze the burst before the test looks.
        "ALTER TABLE inbox SET (autovacuum_enabled = false)".to_string(),
        "ALTER TABLE outbox SET (autovacuum_enabled = false)".to_string(),
        format!(
            "INSERT INTO inbox (page_id, psid, kind, dedupe_key, event, state, next_attempt_at, received_at)
             SELECT 'P1', {people}, 'message', 'd' || g, '{{}}', 'done', 0, 0 FROM generate_series(1, 3000) g"
        ),
        format!(
            "INSERT INTO outbox (page_id, psid, body, messaging_type, state, next_attempt_at, created_at, origin)
             SELECT 'P1', {people}, '{{}}', 'RESPONSE', 'sent', 0, 0, 'reply' FROM generate_series(1, 3000) g"
        ),
        "ANALYZE inbox".to_string(),
        "ANALYZE outbox".to_string(),
        format!(
            "INSERT INTO inbox (page_id, psid, kind, dedupe_key, event, next_attempt_at, received_at)
             SELECT 'P1', {people}, 'message', 'w' || g, '{{}}', 0, 0 FROM generate_series(1, 3000) g"
        ),
        format!(
            "INSERT INTO outbox (page_id, psid, body, messaging_type, next_attempt_at, created_at, origin)
             SELECT 'P1', {people}, '{{}}', 'RESPONSE', 0, 0, 'reply' FROM generate_series(1, 3000) g"
        ),
    ];
    for statement in &quiet_then_burst {
        sqlx::query(statement)
            .execute(&mut conn)
            .await
            .unwrap_or_else(|e| panic!("{statement}: {e}"));
    }
    for lapsed in [false, true] {
        for (sql, table) in [
            (inbox::claim_sql(lapsed), "inbox"),
            (outbox::claim_sql(true, lapsed), "outbox"),
        ] {
            let explain = format!("EXPLAIN {sql}");
            let lines: Vec<String> = sqlx::query(&explain)
                .bind(1_000_000i64)
                .bind(1_000i64)
                .bind(256i64)
                .bind("instance-a")
                .fetch_all(&mut conn)
                .await
                .expect("explain")
                .iter()
                .map(|r| r.get::<String, _>(0))
                .collect();
            let text = lines.join("\n");
            let checks: Vec<usize> = (0..lines.len())
                .filter(|&i| lines[i].contains(&format!("on {table} p")))
                .collect();
            assert!(!checks.is_empty(), "{table}\n{text}");
            for i in checks {
                let condition = lines.get(i + 1).map_or("", String::as_str);
                assert!(
                    lines[i].contains(&format!("{table}_open"))
                        && condition.contains("Index Cond: ((page_id = r")
                        && condition.contains("(psid = r"),
                    "{table}, lapsed leases {lapsed}: a conversation check not by conversation\n{text}"
                );
            }
            if !lapsed {
                assert!(
                    !lines
                        .iter()
                        .any(|l| l.contains(&format!("on {table} r")) && !l.contains("_waiting")),
                    "{table}: candidates not from the waiting rows\n{text}"
                );
            }
        }
    }
}
