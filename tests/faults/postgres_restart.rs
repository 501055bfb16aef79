//! Postgres restarted under load, on a cluster of the test's own.

use std::collections::HashSet;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::support::*;

/// A Postgres cluster of the test's own (its own folder and port, never
/// the shared server), run as the `postgres` user.
struct PrivateCluster {
    dir: tempfile::TempDir,
    port: u16,
}

impl PrivateCluster {
    const BIN: &'static str = "/usr/lib/postgresql/15/bin";

    fn pg_ctl(&self, args: &[&str]) {
        let data = self.dir.path().join("data");
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1",
            self.port,
            self.dir.path().display()
        );
        let status = Command::new("runuser")
            .args(["-u", "postgres", "--"])
            .arg(format!("{}/pg_ctl", Self::BIN))
            .arg("-D")
            .arg(&data)
            .args(["-o", &options, "-l"])
            .arg(self.dir.path().join("log"))
            .args(["-w", "-m", "fast"])
            .args(args)
            .stdout(Stdio::null())
            .status()
            .expect("pg_ctl runs (as root, through runuser)");
        assert!(status.success(), "pg_ctl {args:?} failed");
    }

    fn start() -> PrivateCluster {
        let dir = tempfile::tempdir().expect("temp dir");
        // The postgres user owns what it writes here.
        std::fs::set_permissions(
            dir.path(),
            std::os::unix::fs::PermissionsExt::from_mode(0o777),
        )
        .expect("chmod");
        let status = Command::new("runuser")
            .args(["-u", "postgres", "--"])
            .arg(format!("{}/initdb", Self::BIN))
            .arg("-D")
            .arg(dir.path().join("data"))
            .args(["-A", "trust", "-U", "postgres"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .expect("initdb runs (Debian's postgresql-15, as root through runuser)");
        assert!(status.success(), "initdb failed");
        let cluster = PrivateCluster {
            dir,
            port: free_port(),
        };
        cluster.pg_ctl(&["start"]);
        cluster
    }

    fn url(&self, database: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{database}", self.port)
    }
}

impl Drop for PrivateCluster {
    fn drop(&mut self) {
        let _ = Command::new("runuser")
            .args(["-u", "postgres", "--"])
            .arg(format!("{}/pg_ctl", Self::BIN))
            .arg("-D")
            .arg(self.dir.path().join("data"))
            .args(["-w", "-m", "immediate", "stop"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

/// Postgres restarted under load (down for two seconds): events arriving
/// meanwhile wait for the database or are refused (never acknowledged
/// unstored), `/readyz` says the database is unreachable, and afterwards
/// the service recovers with no one's help, takes new events, and answers
/// every event it acknowledged, once. Runs where the
/// integration suite runs on Postgres (`LEXBRIDGE_TEST_POSTGRES_URL`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_postgres_restart_under_load_is_survived_without_manual_action() {
    if std::env::var("LEXBRIDGE_TEST_POSTGRES_URL").map_or(true, |u| u.trim().is_empty()) {
        return;
    }
    let cluster = PrivateCluster::start();
    let database_url = create_database(&cluster.url("postgres"), "lexbridge").await;
    let graph = graph().await;
    let server = Server::start(&database_url, &graph).await;

    // Four connections, each an event every 20 ms, until two seconds after
    // the recovery.
    let acknowledged = Arc::new(Mutex::new(HashSet::new()));
    let refused = Arc::new(AtomicUsize::new(0));
    let next = Arc::new(AtomicUsize::new(0));
    let (stop_load, load_stopped) = tokio::sync::watch::channel(false);
    let mut load = Vec::new();
    for _ in 0..4 {
        let (acknowledged, refused, next) = (
            Arc::clone(&acknowledged),
            Arc::clone(&refused),
            Arc::clone(&next),
        );
        let load_stopped = load_stopped.clone();
        let base = server.base.clone();
        load.push(tokio::spawn(async move {
            let http = reqwest::Client::new();
            while !*load_stopped.borrow() {
                let n = next.fetch_add(1, Ordering::Relaxed);
                match post_event(&http, &base, n).await {
                    Ok(r) if r.status() == 200 => {
                        acknowledged.lock().unwrap().insert(format!("P{n}"));
                    }
                    // Meta would deliver it again later; here it is let go.
                    _ => {
                        refused.fetch_add(1, Ordering::Relaxed);
                    }
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    cluster.pg_ctl(&["stop"]);
    let readyz = format!("{}/readyz", server.base);
    let mut said_why = false;
    for _ in 0..100 {
        if let Ok(r) = reqwest::get(&readyz).await {
            if r.status() == 503 && r.text().await.unwrap_or_default().contains("database") {
                said_why = true;
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    cluster.pg_ctl(&["start"]);
    let mut ready = false;
    let mut acknowledged_when_ready = usize::MAX;
    for _ in 0..600 {
        if reqwest::get(&readyz).await.is_ok_and(|r| r.status() == 200) {
            ready = true;
            acknowledged_when_ready = acknowledged.lock().unwrap().len();
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let _ = stop_load.send(true);
    for task in load {
        task.await.expect("load task");
    }
    assert!(said_why, "/readyz did not say the database was unreachable");
    assert!(ready, "/readyz did not recover after Postgres came back");
    let acknowledged = acknowledged.lock().unwrap().clone();
    assert!(
        acknowledged.len() > acknowledged_when_ready,
        "no event was taken after the recovery: the load ended too early"
    );
    eprintln!(
        "{} events refused during the outage",
        refused.load(Ordering::Relaxed)
    );
    every_acknowledged_event_answered(
        &graph,
        &database_url,
        &acknowledged,
        &HashSet::new(),
        next.load(Ordering::Relaxed),
        Duration::from_secs(120),
    )
    .await;
    drop(server);
}
