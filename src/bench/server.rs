//! Runs `lexbridge serve` as a child process on a scratch SQLite database, so
//! a benchmark measures a real server and can read its peak RSS.

use anyhow::{bail, Context};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use super::RawClient;

pub struct ChildServer {
    child: Child,
    pub addr: String,
    _dir: tempfile::TempDir,
}

/// Settings the child gets unless the caller overrides them.
pub const BENCH_APP_SECRET: &str = "bench-app-secret";
/// The token encryption key of the child (32 bytes, base64; nothing real).
pub const BENCH_TOKEN_KEY: &str = "YmVuY2gtdG9rZW4ta2V5LTMyLWJ5dGVzLWxvbmchISE=";

impl ChildServer {
    pub async fn start(extra_env: &[(&str, String)]) -> anyhow::Result<ChildServer> {
        let dir = tempfile::tempdir()?;
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let addr = format!("127.0.0.1:{port}");
        // LEXBRIDGE_BENCH_SERVER: another build to serve, measured by this
        // one's load and stand-ins (an A/B of servers, the client the same).
        let server = match std::env::var_os("LEXBRIDGE_BENCH_SERVER") {
            Some(path) => std::path::PathBuf::from(path),
            None => std::env::current_exe()?,
        };
        let mut command = Command::new(&server);
        command
            .arg("serve")
            .env(
                "DATABASE_URL",
                format!("sqlite://{}/bench.db", dir.path().display()),
            )
            .env("LEXBRIDGE_BIND", &addr)
            .env("FACEBOOK_APP_ID", "1000")
            .env("FACEBOOK_APP_SECRET", BENCH_APP_SECRET)
            .env("FACEBOOK_PAGE_ID", "2000")
            .env("FACEBOOK_PAGE_ACCESS_TOKEN", "bench-page-token")
            .env("MESSENGER_VERIFY_TOKEN", "bench-verify")
            .env("GRAPH_API_URL", "http://127.0.0.1:9")
            .env("TOKEN_ENCRYPTION_KEY", BENCH_TOKEN_KEY)
            .env("SESSION_KEY", "YmVuY2gtc2Vzc2lvbi1rZXktNjQtYnl0ZXMtbG9uZy4uLi4uLi4uLi4uLi4uLi4uLi4uLi4uLi4uLi4uLi4uLg==")
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit());
        for (k, v) in extra_env {
            command.env(k, v);
        }
        let child = command
            .spawn()
            .with_context(|| format!("starting {} serve", server.display()))?;
        let mut server = ChildServer {
            child,
            addr,
            _dir: dir,
        };
        for _ in 0..200 {
            if let Ok(mut c) = RawClient::connect(&server.addr).await {
                if let Ok((200, _)) = c.request("GET", "/health", &[], b"").await {
                    return Ok(server);
                }
            }
            if let Some(status) = server.child.try_wait()? {
                bail!("lexbridge serve exited early: {status}");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        bail!("lexbridge serve did not become healthy")
    }

    /// CPU time the server's threads have used so far, in clock ticks
    /// (USER_HZ: 100 a second on Linux), summed by thread name: the group
    /// committer (`lexbridge-write`), the runtime that answers HTTP and runs
    /// the workers, the NLU and the Graph calls (`tokio-rt-worker`), and the
    /// rest.
    pub fn cpu_ticks_by_thread(&self) -> std::collections::BTreeMap<String, u64> {
        let mut ticks = std::collections::BTreeMap::new();
        let Ok(tasks) = std::fs::read_dir(format!("/proc/{}/task", self.child.id())) else {
            return ticks;
        };
        for task in tasks.flatten() {
            let path = task.path();
            let name = std::fs::read_to_string(path.join("comm")).unwrap_or_default();
            let Ok(stat) = std::fs::read_to_string(path.join("stat")) else {
                continue;
            };
            // The fields after the parenthesised name: utime and stime are
            // the 14th and 15th of the whole line.
            let Some(rest) = stat.rsplit_once(')').map(|(_, rest)| rest) else {
                continue;
            };
            let fields: Vec<&str> = rest.split_whitespace().collect();
            let used: u64 = [11, 12]
                .iter()
                .filter_map(|&i| fields.get(i).and_then(|f| f.parse::<u64>().ok()))
                .sum();
            *ticks.entry(name.trim().to_string()).or_default() += used;
        }
        ticks
    }

    /// Peak resident set size of the server so far, in MiB.
    pub fn peak_rss_mb(&self) -> Option<f64> {
        let bytes = lexbridge::metrics::peak_rss_bytes(&self.child.id().to_string())?;
        Some(bytes as f64 / (1024.0 * 1024.0))
    }
}

impl Drop for ChildServer {
    fn drop(&mut self) {
        // SIGTERM for a graceful stop, then make sure it is gone.
        let _ = Command::new("kill")
            .arg(self.child.id().to_string())
            .status();
        for _ in 0..100 {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
