//! A server killed with SIGKILL under webhook load.

use lexbridge::store::Store;
use std::collections::HashSet;
use std::time::Duration;

use crate::support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_killed_under_load_answers_every_acknowledged_event_after_its_restart() {
    let events = load_size();
    let graph = graph().await;
    let dir = tempfile::tempdir().expect("temp dir");
    let database_url = format!("sqlite://{}/faults.db", dir.path().display());
    let first = Server::start(&database_url, &graph).await;
    let bases = [first.base.clone()];
    let acknowledged = load_until_killed(&bases, events, || first.kill()).await;
    // What the killed server had in hand: only these can be sent twice.
    let in_flight = sending(&database_url).await;
    let _second = Server::start(&database_url, &graph).await;
    every_acknowledged_event_answered(
        &graph,
        &database_url,
        &acknowledged,
        &in_flight,
        events,
        Duration::from_secs(120),
    )
    .await;
}

/// Two instances on one Postgres database (`LEXBRIDGE_TEST_POSTGRES_URL`),
/// one killed under load: the other answers every event either of them
/// acknowledged, taking the killed one's rows once it has been silent for
/// the staleness limit (10 s) rather than after their 2-minute lease.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_of_two_instances_killed_under_load_loses_nothing() {
    let Some(base) = std::env::var("LEXBRIDGE_TEST_POSTGRES_URL")
        .ok()
        .filter(|u| !u.trim().is_empty())
    else {
        return;
    };
    let name = format!("lexbridge_t_{:016x}", rand::random::<u64>());
    let database_url = create_database(&base, &name).await;

    let events = load_size();
    let graph = graph().await;
    let first = Server::start(&database_url, &graph).await;
    let survivor = Server::start(&database_url, &graph).await;
    let started = std::time::Instant::now();
    let readyz: serde_json::Value = reqwest::get(format!("{}/readyz", first.base))
        .await
        .expect("/readyz answers")
        .json()
        .await
        .expect("JSON");
    let killed = readyz["instance"]
        .as_str()
        .expect("the instance's id")
        .to_string();
    let bases = [first.base.clone(), survivor.base.clone()];
    let acknowledged = load_until_killed(&bases, events, || first.kill()).await;
    // Only the killed instance's sends in flight can go twice.
    let store = Store::connect(&lexbridge::config::DatabaseSettings::new(
        database_url.clone(),
    ))
    .await
    .expect("the database opens");
    let Store::Postgres(pool) = &store else {
        unreachable!("a Postgres URL")
    };
    let in_flight: HashSet<String> =
        sqlx::query_scalar("SELECT psid FROM outbox WHERE state = 'sending' AND claimed_by = $1")
            .bind(&killed)
            .fetch_all(pool)
            .await
            .expect("the killed instance's rows")
            .into_iter()
            .collect();
    store.close().await;
    // Well before the killed instance's 2-minute leases end.
    every_acknowledged_event_answered(
        &graph,
        &database_url,
        &acknowledged,
        &in_flight,
        events,
        Duration::from_secs(40),
    )
    .await;
    eprintln!(
        "all answered {:.1} s after the load began",
        started.elapsed().as_secs_f64()
    );
    drop(survivor);
}
