//! Background workers: the inbox (events -> NLU -> replies) and the outbox
//! (messages -> Send API).

pub mod attachment;
pub mod handover;
pub mod in_flight;
pub mod inbox;
pub mod instagram;
pub mod instances;
pub mod linking;
pub mod outbox;
pub mod pacing;
pub mod planner_stats;
pub mod policy;
pub mod retention;
pub mod retry;
pub mod reverse_lookup;
pub mod sweep;
pub mod tokens;

use std::future::Future;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use tokio::sync::watch;
use tokio::task::JoinSet;
use tracing::{debug, warn};

use crate::store::now_ms;
use crate::store::writer::{Claim, FeedReceiver, Write, Writer, LEASE_MS};
use crate::store::StoreError;

/// Retries and expired leases fall due without a hand-over; workers look
/// for them this often.
const POLL: std::time::Duration = std::time::Duration::from_millis(250);
/// Most rows a worker claims at once.
const CLAIM_BATCH: i64 = 256;

/// A worker's main loop: every row it gets — handed over by the committer,
/// or claimed on a poll — is handled in a task of its own, as long as its
/// budget allows, and the write `handle` makes of it goes to the committer.
/// A row gives its place back as its write is submitted, so the committer
/// can claim the next row in the same transaction. On shutdown the worker
/// stops taking rows and finishes the ones in hand.
pub(crate) async fn work<T, C, CF, H, HF>(
    mut feed: FeedReceiver<T>,
    writer: Writer,
    mut shutdown: watch::Receiver<bool>,
    claim: C,
    handle: H,
) where
    T: Send + 'static,
    C: Fn(Claim) -> CF,
    CF: Future<Output = Result<Vec<T>, StoreError>>,
    H: Fn(T) -> HF,
    HF: Future<Output = Write> + Send + 'static,
{
    let mut tasks = JoinSet::new();
    let spawn = |tasks: &mut JoinSet<()>, rows: Vec<T>| {
        for row in rows {
            let (budget, writer) = (Arc::clone(&feed.budget), writer.clone());
            // Boxed at once: a row's future is large (the whole NLU and
            // Graph path), and moved by value into the task it was copied
            // whole at each step (`memmove` was a quarter of the worker
            // threads' time under load).
            let handled = Box::pin(handle(row));
            tasks.spawn(async move {
                let result = Arc::new(handled.await);
                budget.fetch_add(1, Ordering::AcqRel);
                let recorded = with_retries(RECORD_RETRIES, StoreError::is_conflict, || {
                    writer.write(Arc::clone(&result))
                })
                .await;
                if let Err(e) = recorded {
                    // The lease runs out and the row is claimed again.
                    warn!(error = %format!("{e:#}"), "recording a result failed");
                }
            });
        }
    };
    // Claims for the worker's own room, on each poll.
    let claim_room = || async {
        let limit = feed.budget.load(Ordering::Acquire).min(CLAIM_BATCH);
        if limit <= 0 {
            return Vec::new();
        }
        let now = now_ms();
        let lease_until = now + LEASE_MS;
        claim(Claim {
            now,
            lease_until,
            limit,
        })
        .await
        .unwrap_or_else(|e| {
            warn!(error = %format!("{e:#}"), "claiming rows failed");
            Vec::new()
        })
    };
    while !*shutdown.borrow() {
        while tasks.try_join_next().is_some() {}
        let rows = tokio::select! {
            Some(rows) = feed.rows.recv() => rows,
            _ = tokio::time::sleep(POLL) => claim_room().await,
            _ = shutdown.changed() => Vec::new(),
        };
        spawn(&mut tasks, rows);
    }
    feed.budget.fetch_sub(i64::MAX / 2, Ordering::AcqRel);
    // Outbox rows claimed on this worker's behalf before now may reach its
    // feed after their commit, at the latest once their batch is on disk
    // (`store::writer::flush`): wait for that, so the last look below finds
    // them rather than leaving them leased.
    if let Err(e) = writer.barrier().await {
        warn!(error = %e, "the last rows claimed for a stopping worker may stay leased");
    }
    loop {
        while let Ok(rows) = feed.rows.try_recv() {
            spawn(&mut tasks, rows);
        }
        if tasks.join_next().await.is_none() {
            break;
        }
    }
}

/// The apology APOLOGY_MESSAGE says to a person whose message or reply was
/// given up on (origin `apology`: it has the long time budget, and a
/// dropped reply's apology is queued only once per person).
pub(crate) fn apology(
    page_id: &str,
    psid: &str,
    inbox_id: Option<i64>,
    text: &str,
) -> Vec<crate::store::outbox::NewOutboxMessage> {
    let reply = crate::nlu::NluReply {
        messages: vec![crate::nlu::NluMessage::PlainText(text.to_string())],
        ..Default::default()
    };
    let mut messages = crate::messenger_replies::replies(page_id, psid, 0, &reply);
    for m in &mut messages {
        m.origin = "apology";
        m.inbox_id = inbox_id;
    }
    messages
}

/// How a row's result is recorded again when recording fails. A result
/// that is not recorded leaves its row leased until the lease runs out, and
/// the row is then processed again: a message sent but not recorded would
/// be sent twice. Recording it again is safe: the committer applies a result
/// only to a row still in hand.
const RECORD_RETRIES: Retries = Retries {
    times: 5,
    base: std::time::Duration::from_millis(100),
};

/// Tries after a failure, with backoff (`retry_delay`) from `base`.
#[derive(Clone, Copy)]
struct Retries {
    times: u32,
    base: std::time::Duration,
}

/// Runs `attempt` until it succeeds; the last error when the retries are
/// used up, or the first that is `final_error`.
async fn with_retries<T, E, F, Fut>(
    retries: Retries,
    final_error: fn(&E) -> bool,
    mut attempt: F,
) -> Result<T, E>
where
    E: std::fmt::Display,
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    let mut failures = 0;
    loop {
        match attempt().await {
            Ok(done) => return Ok(done),
            Err(e) if final_error(&e) || failures == retries.times => return Err(e),
            Err(e) => {
                failures += 1;
                debug!(error = %format!("{e:#}"), "retrying a write");
                let delay = retry::retry_delay(retries.base, std::time::Duration::MAX, failures);
                tokio::time::sleep(delay).await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;
    use std::time::Duration;

    #[tokio::test]
    async fn a_failing_write_is_tried_again_then_given_up() {
        let delays = Retries {
            times: 2,
            base: Duration::from_millis(1),
        };
        let calls = AtomicUsize::new(0);
        let never = |_: &anyhow::Error| false;
        let recovered = with_retries(delays, never, || async {
            match calls.fetch_add(1, Ordering::SeqCst) {
                0 => Err(anyhow::anyhow!("database is locked")),
                n => Ok(n),
            }
        })
        .await;
        assert_eq!(recovered.unwrap(), 1);

        calls.store(0, Ordering::SeqCst);
        let failed: anyhow::Result<()> = with_retries(delays, never, || async {
            calls.fetch_add(1, Ordering::SeqCst);
            Err(anyhow::anyhow!("disk I/O error"))
        })
        .await;
        assert_eq!(failed.unwrap_err().to_string(), "disk I/O error");
        assert_eq!(calls.load(Ordering::SeqCst), 3, "one try and two retries");

        // A write the database refused is not tried again.
        calls.store(0, Ordering::SeqCst);
        let refused: anyhow::Result<()> = with_retries(
            delays,
            |e: &anyhow::Error| e.to_string() == "refused",
            || async {
                calls.fetch_add(1, Ordering::SeqCst);
                Err(anyhow::anyhow!("refused"))
            },
        )
        .await;
        assert!(refused.is_err());
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }
}
