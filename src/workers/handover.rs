//! Conversation routing (Meta's successor to the Handover Protocol): the
//! bot passes a person to the Page's people when asked (the payload
//! `HANDOVER`, or an intent of `HANDOVER_INTENTS`), keeps out while another
//! app owns the thread, and resumes when the thread comes back — passed
//! back, taken back by this app, or after `HANDOVER_IDLE_TAKE_BACK_MS` of
//! silence.
//!
//! Who owns each thread is kept in the conversation row (`thread_owner`,
//! `NULL` for this app). The pass goes through the outbox after the
//! messages before it, so the person reads the goodbye before the thread
//! moves; from the moment it is queued, API messages to the person are
//! held or refused (only the owner can send).

use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use tracing::{debug, info, warn};

use crate::facebook::events::{
    MessagingEvent, PASS_THREAD_CONTROL, REQUEST_THREAD_CONTROL, TAKE_THREAD_CONTROL,
};
use crate::facebook::thread_control::ThreadControl;
use crate::state::AppState;
use crate::store::conversations::{ThreadAssumes, ThreadChange, UNKNOWN_OWNER};
use crate::store::inbox::{ConversationUpdate, InboxRow, InboxUpdate};
use crate::store::now_ms;
use crate::store::outbox::NewOutboxMessage;
use crate::store::writer::Write;

/// The postback or quick-reply payload that asks for a person.
pub const HANDOVER_PAYLOAD: &str = "HANDOVER";

/// Idle threads taken back per round.
pub const TAKE_BACK_BATCH: i64 = 100;

/// The `control` outbox row making `call` for the person of `row`.
fn control_row(row: &InboxRow, call: &ThreadControl) -> NewOutboxMessage {
    NewOutboxMessage {
        origin: "control",
        ..NewOutboxMessage::reply(&row.page_id, &row.psid, row.id, call.outbox_body())
    }
}

/// The conversation change giving the thread to `owner` (`None`: this app).
fn thread_to(row: &InboxRow, owner: Option<String>) -> ConversationUpdate {
    ConversationUpdate {
        page_id: row.page_id.clone(),
        psid: row.psid.clone(),
        // Back with this app: what waited for the thread goes now.
        release_held: owner.is_none(),
        thread: Some(owner),
        ..ConversationUpdate::default()
    }
}

/// Whether an answer of `intent` passes the thread on.
pub fn is_handover_intent(shared: &AppState, intent: Option<&str>) -> bool {
    intent.is_some_and(|name| shared.settings.handover.intents.iter().any(|i| i == name))
}

/// Passes the thread to the configured app after `update.replies` (or,
/// when the NLU said nothing, `HANDOVER_MESSAGE`, from `say`). `why` goes
/// to the other app as the pass's metadata.
pub fn hand_over(
    shared: &AppState,
    row: &InboxRow,
    update: &mut InboxUpdate,
    why: &str,
    say: impl FnOnce(&str) -> Vec<NewOutboxMessage>,
) -> String {
    let handover = &shared.settings.handover;
    if update.replies.is_empty() {
        update.replies = say(&handover.message);
    }
    let pass = ThreadControl::PassThreadControl {
        target_app_id: handover.target_app_id.clone(),
        metadata: Some(why.to_string()),
    };
    update.replies.push(control_row(row, &pass));
    let owner = Some(handover.target_app_id.clone());
    match update.conversation.as_mut() {
        Some(c) => {
            c.thread = Some(owner);
            c.release_held = false;
        }
        None => update.conversation = Some(thread_to(row, owner)),
    }
    shared.metrics.handovers.inc();
    info!(page_id = %row.page_id, inbox_id = row.id, target_app_id = %handover.target_app_id, reason = why, "conversation handed over");
    format!("handed over to app {} ({why})", handover.target_app_id)
}

/// A `messaging_handovers` event: who owns the thread now.
pub fn on_event(
    shared: &AppState,
    row: &InboxRow,
    event: &MessagingEvent,
    update: &mut InboxUpdate,
) -> String {
    let ours = &shared.settings.facebook.app_id;
    let owner_after = |new_owner: Option<&String>| match new_owner {
        Some(id) if id == ours => None,
        Some(id) => Some(id.clone()),
        None => Some(UNKNOWN_OWNER.to_string()),
    };
    match row.kind.as_str() {
        PASS_THREAD_CONTROL | TAKE_THREAD_CONTROL => {
            // Both name the new owner; the words differ.
            let (control, to_us, to_them) = match row.kind.as_str() {
                PASS_THREAD_CONTROL => (&event.pass_thread_control, "passed back to", "passed to"),
                _ => (&event.take_thread_control, "taken by", "taken by"),
            };
            let owner = owner_after(control.as_ref().and_then(|c| c.new_owner_app_id.as_ref()));
            let outcome = match &owner {
                None => format!("thread {to_us} this app"),
                Some(app) => format!("thread {to_them} app {app}"),
            };
            update.conversation = Some(thread_to(row, owner));
            outcome
        }
        REQUEST_THREAD_CONTROL => {
            let requester = event
                .request_thread_control
                .as_ref()
                .and_then(|c| c.requested_owner_app_id.clone());
            match requester {
                // Another app (a human's, most often) asks for a thread this
                // app holds: people outrank the bot.
                Some(app) if row.context.thread_owner.is_none() && &app != ours => {
                    let pass = ThreadControl::PassThreadControl {
                        target_app_id: app.clone(),
                        metadata: Some("requested".to_string()),
                    };
                    update.replies.push(control_row(row, &pass));
                    update.conversation = Some(thread_to(row, Some(app.clone())));
                    format!("thread passed to app {app} on its request")
                }
                Some(app) => {
                    format!("ignored: app {app} asked for a thread this app does not hold")
                }
                None => "ignored: a request naming no app".to_string(),
            }
        }
        _ => "ignored".to_string(),
    }
}

/// Takes back threads another app has held, the person silent, for
/// `HANDOVER_IDLE_TAKE_BACK_MS` (started only when it is set).
pub async fn take_back_idle(shared: Arc<AppState>, mut shutdown: watch::Receiver<bool>) {
    let Some(idle) = shared.settings.handover.idle_take_back else {
        return;
    };
    let every = (idle / 4).clamp(Duration::from_millis(50), Duration::from_secs(60));
    while !*shutdown.borrow() {
        let now = now_ms();
        let before = now - idle.as_millis() as i64;
        match shared.store.idle_threads(before, TAKE_BACK_BATCH).await {
            Ok(threads) => {
                for (page_id, psid, owner) in threads {
                    take_back(&shared, page_id, psid, owner).await;
                }
            }
            Err(e) => warn!(error = %format!("{e:#}"), "reading idle threads failed"),
        }
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = shutdown.changed() => {}
        }
    }
    info!("idle thread take-back stopped");
}

/// One idle thread: `take_thread_control`, then the thread is this app's
/// and the person's held messages go. A refusal starts the idle time anew
/// (no hammering); Graph not answering leaves it for the next round.
async fn take_back(shared: &AppState, page_id: String, psid: String, owner: String) {
    // What a thread not taken back now records: its idle time starts anew
    // (`thread_since`), so it waits another idle period behind the others.
    let wait = |page_id: String, psid: String, owner: String| ThreadChange {
        page_id,
        psid,
        owner: Some(owner.clone()),
        at: now_ms(),
        assumes: ThreadAssumes::Owner(owner),
    };
    let Some(token) = shared.page_token(&page_id).await else {
        // A Page removed, or whose token is gone: left as it was, the
        // oldest threads of such Pages would fill every round, and no
        // other thread would ever be taken back.
        debug!(%page_id, "no access token for this Page: its idle thread is not taken back");
        if let Err(e) = shared
            .writer
            .write(Write::Thread(wait(page_id, psid, owner)))
            .await
        {
            warn!(error = %format!("{e:#}"), "recording an idle thread's wait failed");
        }
        return;
    };
    shared.limiter.acquire(&page_id).await;
    let take = ThreadControl::TakeThreadControl {
        metadata: Some("idle".to_string()),
    };
    let result = shared
        .graph
        .thread_control(&page_id, &token, &psid, &take)
        .await;
    let change = match result {
        Ok(()) => {
            info!(%page_id, previous_owner = %owner, "idle thread taken back");
            ThreadChange {
                page_id,
                psid,
                owner: None,
                at: now_ms(),
                assumes: ThreadAssumes::Owner(owner),
            }
        }
        Err(e) if e.is_transient() => {
            warn!(%page_id, error = %e, "taking an idle thread back failed; trying again later");
            return;
        }
        Err(e) => {
            warn!(%page_id, error = %e, "Graph refused to take an idle thread back; waiting another idle period");
            wait(page_id, psid, owner)
        }
    };
    if let Err(e) = shared.writer.write(Write::Thread(change)).await {
        warn!(error = %format!("{e:#}"), "recording a thread taken back failed");
    }
}
