//! Meta's `messaging_policy_enforcement` events. A `block` means Meta has
//! stopped (or is about to stop) this app messaging for the Page: it is
//! logged loudly and pauses the Page's outbox (reason `policy_block`) until
//! an `unblock` clears that reason. Messages keep queueing meanwhile. Each
//! event's `timestamp` is kept per reason: a `block` (or `unblock`) older
//! than the latest one applied, e.g. a block Meta redelivers after its
//! unblock, is ignored rather than pausing the Page for good.

use tracing::{error, info, warn};

use crate::facebook::events::MessagingEvent;
use crate::nlu::NluError;
use crate::state::AppState;
use crate::store::inbox::InboxRow;
use crate::store::now_ms;
use crate::store::pauses::{PauseChange, POLICY_BLOCK};
use crate::store::writer::Write;

fn db(e: impl Into<anyhow::Error>) -> NluError {
    let e = e.into();
    NluError::Transient(format!("pausing the page: {e:#}"))
}

/// Acts on a policy enforcement event; returns the outcome to record. The
/// pause is committed before the row is finished, and a Page's events are
/// handled in order, so an `unblock` never overtakes its `block`.
pub async fn enforce(
    shared: &AppState,
    row: &InboxRow,
    event: &MessagingEvent,
) -> Result<String, NluError> {
    let Some(enforcement) = &event.policy_enforcement else {
        return Ok("ignored: no policy_enforcement object".into());
    };
    let recipient = event.recipient.as_ref().and_then(|r| r.id.as_deref());
    let page_id = match (row.page_id.as_str(), recipient) {
        ("", Some(id)) => id,
        (id, _) => id,
    };
    if page_id.is_empty() {
        return Ok("ignored: policy enforcement for no page".into());
    }
    let reason = enforcement.reason.as_deref().unwrap_or("");
    let action = enforcement.action.as_str();
    let event_at = event.timestamp.unwrap_or_else(now_ms);
    if matches!(action, "block" | "unblock") {
        let latest = shared
            .store
            .latest_pause_event(page_id, POLICY_BLOCK)
            .await
            .map_err(db)?;
        if let Some(latest) = latest.filter(|latest| *latest > event_at) {
            warn!(
                page_id,
                action,
                event_at,
                latest,
                "a policy {action} older than the latest policy event applied: ignored"
            );
            return Ok(format!(
                "ignored: a policy {action} older than the latest one applied"
            ));
        }
    }
    match action {
        "block" => {
            let changes =
                PauseChange::pause(page_id, POLICY_BLOCK, Some(reason), now_ms(), event_at)
                    .map_err(db)?;
            for change in changes {
                shared
                    .writer
                    .write(Write::Pause(change))
                    .await
                    .map_err(db)?;
            }
            let reasons = paused_by(shared, page_id).await;
            error!(
                page_id,
                reason,
                pause_reasons = ?reasons,
                "Meta blocked this Page for a Messenger policy violation: its outbox is paused (messages stay queued) until Meta unblocks it"
            );
            Ok("policy block: the page's sends are paused".into())
        }
        "unblock" => {
            let [resume, record] =
                PauseChange::resume(page_id, POLICY_BLOCK, event_at).map_err(db)?;
            let was_blocked = shared
                .writer
                .write(Write::Pause(resume))
                .await
                .map_err(db)?
                > 0;
            shared
                .writer
                .write(Write::Pause(record))
                .await
                .map_err(db)?;
            let reasons = paused_by(shared, page_id).await;
            if reasons.is_empty() {
                warn!(
                    page_id,
                    was_blocked, "Meta unblocked this Page: its queued messages are sent again"
                );
            } else {
                warn!(page_id, was_blocked, pause_reasons = ?reasons,
                    "Meta unblocked this Page, but it stays paused for its other reasons");
            }
            Ok("policy unblock: the policy block is cleared".into())
        }
        "warning" => {
            warn!(
                page_id,
                reason, "Meta warned this Page about a Messenger policy violation"
            );
            Ok("policy warning logged".into())
        }
        other => {
            info!(
                page_id,
                action = other,
                "an unknown policy enforcement action"
            );
            Ok(format!("ignored: policy enforcement action {other:?}"))
        }
    }
}

/// The Page's pause reasons now, for the log (best effort).
async fn paused_by(shared: &AppState, page_id: &str) -> Vec<String> {
    shared
        .store
        .page_pause_reasons(page_id)
        .await
        .unwrap_or_else(|e| vec![format!("unknown: {e:#}")])
}
