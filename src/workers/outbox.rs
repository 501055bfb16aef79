//! Outbox worker: claims queued messages and sends them through the Send
//! API, the oldest open message of each recipient at a time, within the
//! per-Page rate limit. No transaction is open during the HTTP call.

use std::sync::Arc;
use tokio::sync::watch;
use tracing::{info, warn};

use super::retry::retry_delay;
use crate::facebook::render::send_payload;
use crate::facebook::GraphError;
use crate::state::AppState;
use crate::store::now_ms;
use crate::store::outbox::{OutboxOutcome, OutboxRow, SendFailure};
use crate::store::writer::{Claim, FeedReceiver, Write};

pub async fn run(
    shared: Arc<AppState>,
    feed: FeedReceiver<OutboxRow>,
    shutdown: watch::Receiver<bool>,
) {
    let claim = |claim: Claim| {
        let shared = Arc::clone(&shared);
        async move { shared.writer.claim_outbox(claim).await }
    };
    let handle = |row: OutboxRow| {
        let shared = Arc::clone(&shared);
        async move { Write::FinishOutbox(deliver(&shared, &row).await) }
    };
    let writer = shared.writer.clone();
    super::work(feed, writer, shutdown, claim, handle).await;
    info!("outbox worker stopped");
}

/// One send attempt.
async fn deliver(shared: &AppState, row: &OutboxRow) -> OutboxOutcome {
    let attempts = row.attempts + 1;
    let Some(token) = shared.page_token(&row.page_id).await else {
        return OutboxOutcome::Failed {
            id: row.id,
            attempts,
            failure: SendFailure {
                message: format!("no access token is configured for page {}", row.page_id),
                ..SendFailure::default()
            },
        };
    };
    shared.limiter.acquire(&row.page_id).await;
    let payload = send_payload(
        &row.psid,
        &row.messaging_type,
        row.tag.as_deref(),
        &row.body,
    );
    let started = now_ms();
    match shared.graph.send(&row.page_id, &token, &payload).await {
        Ok(response) => {
            shared.metrics.send_outcome("ok");
            OutboxOutcome::Sent {
                id: row.id,
                attempts,
                message_id: response.message_id,
                at: started,
            }
        }
        Err(e) => classify(shared, row, attempts, e),
    }
}

fn classify(shared: &AppState, row: &OutboxRow, attempts: i64, e: GraphError) -> OutboxOutcome {
    shared.metrics.send_outcome(
        &e.code
            .map_or_else(|| "transport".to_string(), |c| c.to_string()),
    );
    let failure = SendFailure {
        code: e.code,
        subcode: e.subcode,
        message: e.message.clone(),
    };
    let limit = i64::from(shared.settings.workers.outbox_max_attempts);
    if e.is_transient() && attempts < limit {
        let delay = retry_delay(
            shared.settings.workers.retry_base,
            shared.settings.workers.retry_max,
            attempts as u32,
        );
        warn!(outbox_id = row.id, attempts, error = %e, "send failed; will retry");
        OutboxOutcome::Retry {
            id: row.id,
            attempts,
            next_attempt_at: now_ms() + delay.as_millis() as i64,
            failure,
        }
    } else {
        warn!(outbox_id = row.id, attempts, error = %e, "send failed for good");
        OutboxOutcome::Failed {
            id: row.id,
            attempts,
            failure,
        }
    }
}
