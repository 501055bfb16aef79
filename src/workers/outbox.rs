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
use crate::token_health;

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
        shared.metrics.outbox_failed.inc();
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
    let timer = std::time::Instant::now();
    let sent = shared.graph.send(&row.page_id, &token, &payload).await;
    shared
        .metrics
        .send_api_seconds
        .observe(timer.elapsed().as_secs_f64());
    match sent {
        Ok(response) => {
            shared.metrics.send_outcome("ok");
            OutboxOutcome::Sent {
                id: row.id,
                attempts,
                message_id: response.message_id,
                at: started,
            }
        }
        Err(e) if e.code == Some(TOKEN_REFUSED) => token_refused(shared, row, attempts, e).await,
        Err(e) => classify(shared, row, attempts, e),
    }
}

/// Graph's code for an access token it refuses.
const TOKEN_REFUSED: i64 = 190;

/// The Page's token was refused: the Page is paused (`token_health`) and
/// the message stays queued, due again once the Page resumes.
async fn token_refused(
    shared: &AppState,
    row: &OutboxRow,
    attempts: i64,
    e: GraphError,
) -> OutboxOutcome {
    shared.metrics.send_outcome("190");
    let why = format!("Send API error 190 (subcode {:?})", e.subcode);
    if let Err(failed) = token_health::token_refused(shared, &row.page_id, &why).await {
        warn!(outbox_id = row.id, error = %format!("{failed:#}"), "pausing the Page failed");
    }
    let delay = retry_delay(
        shared.settings.workers.retry_base,
        shared.settings.workers.retry_max,
        attempts as u32,
    );
    OutboxOutcome::Retry {
        id: row.id,
        attempts,
        next_attempt_at: now_ms() + delay.as_millis() as i64,
        failure: SendFailure {
            code: e.code,
            subcode: e.subcode,
            message: e.message,
        },
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
        shared.metrics.outbox_retried.inc();
        OutboxOutcome::Retry {
            id: row.id,
            attempts,
            next_attempt_at: now_ms() + delay.as_millis() as i64,
            failure,
        }
    } else {
        warn!(outbox_id = row.id, attempts, error = %e, "send failed for good");
        shared.metrics.outbox_failed.inc();
        OutboxOutcome::Failed {
            id: row.id,
            attempts,
            failure,
        }
    }
}
