//! Inbox worker: claims stored webhook events and processes them, in order
//! per conversation and concurrently across conversations.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;
use tokio::sync::watch;
use tracing::{info, warn};

use super::handover;
use super::linking;
use super::retry::{deadline, next_attempt_within};
use crate::facebook::envelope::turn_key;
use crate::facebook::events::{
    MessagingEvent, Read, PASS_THREAD_CONTROL, POLICY_ENFORCEMENT, REQUEST_THREAD_CONTROL,
    TAKE_THREAD_CONTROL, UNRECOGNISED,
};
use crate::facebook::SenderAction;
use crate::nlu::start_over::is_start_over;
use crate::nlu::{session_id, turn_id, NluError, NluTurn};
use crate::state::AppState;
use crate::store::accounts::LinkedAccount;
use crate::store::conversations::UNKNOWN_OWNER;
use crate::store::inbox::{ConversationUpdate, InboxRow, InboxState, InboxUpdate, ThreadOwner};
use crate::store::now_ms;
use crate::store::receipts::Receipt;
use crate::store::writer::{Claim, FeedReceiver, Write};

pub async fn run(
    shared: Arc<AppState>,
    feed: FeedReceiver<InboxRow>,
    shutdown: watch::Receiver<bool>,
) {
    let claim = |claim: Claim| {
        let shared = Arc::clone(&shared);
        async move { shared.writer.claim_inbox(claim).await }
    };
    let handle = |row: InboxRow| {
        let shared = Arc::clone(&shared);
        async move { Write::FinishInbox(Box::new(process(&shared, row).await)) }
    };
    let writer = shared.writer.clone();
    // Several instances on one database each hold their share (a SQLite
    // file has one instance: nothing to follow).
    if shared.store.is_postgres() {
        tokio::spawn(super::in_flight::follow_instances(
            Arc::clone(&shared),
            Arc::clone(&feed.budget),
            feed.capacity,
            shutdown.clone(),
        ));
    }
    super::work(feed, writer, shutdown, claim, handle).await;
    info!("inbox worker stopped");
}

/// Processes one claimed row and says how it ended.
async fn process(shared: &Arc<AppState>, mut row: InboxRow) -> InboxUpdate {
    let attempts = row.attempts + 1;
    let mut update = InboxUpdate {
        id: row.id,
        state: InboxState::Done,
        outcome: None,
        attempts,
        next_attempt_at: 0,
        last_error: None,
        replies: Vec::new(),
        conversation: None,
        receipt: None,
        lookup: None,
    };
    // Instagram: the conversation of the Page the account is connected to.
    if row.object == "instagram" {
        match instagram_row(shared, &row).await {
            Ok(Some(as_page)) => row = as_page,
            Ok(None) => {
                let what = format!(
                    "Instagram account {} is connected to none of this deployment's Pages",
                    row.page_id
                );
                return not_answered_for(shared, update, &row, what);
            }
            Err(e) => return fail(shared, update, &row, e),
        }
    }
    // Kept, never retried: another object's events (for the code that will
    // handle them) and events this service does not understand.
    if row.object != "page" && row.object != "instagram" {
        shared.metrics.inbox_other_object.inc();
        update.outcome = Some(format!("kept: {:?} events are not handled", row.object));
        return update;
    }
    // A Page this deployment does not answer for (not FACEBOOK_PAGE_ID, not
    // added): kept and reported, never sent to an NLU.
    if !shared.pages.contains(&row.page_id) {
        let what = format!(
            "Page {} is not one this deployment answers for",
            row.page_id
        );
        return not_answered_for(shared, update, &row, what);
    }
    if row.kind == UNRECOGNISED {
        shared.metrics.inbox_unrecognised.inc();
        update.outcome = Some("kept: unrecognised event".to_string());
        return update;
    }
    let event: MessagingEvent = match serde_json::from_str(&row.event) {
        Ok(e) => e,
        Err(e) => {
            update.state = InboxState::Dead;
            update.last_error = Some(format!("stored event does not parse: {e}"));
            shared.metrics.inbox_dead.inc();
            return update;
        }
    };
    let timestamp = event.timestamp.unwrap_or_else(now_ms);
    let outcome = match row.kind.as_str() {
        "delivery" => {
            let d = event.delivery.as_ref();
            update.receipt = Some(Receipt::Delivered {
                page_id: row.page_id.clone(),
                psid: row.psid.clone(),
                mids: d.map(|d| d.mids.clone()).unwrap_or_default(),
                watermark: d.and_then(|d| d.watermark),
            });
            "recorded".to_string()
        }
        "read" => {
            update.receipt = match event.read.as_ref() {
                Some(Read {
                    watermark: Some(watermark),
                    ..
                }) => Some(Receipt::Read {
                    page_id: row.page_id.clone(),
                    psid: row.psid.clone(),
                    watermark: *watermark,
                }),
                Some(Read { mid: Some(mid), .. }) => Some(Receipt::ReadUpTo {
                    page_id: row.page_id.clone(),
                    psid: row.psid.clone(),
                    mid: mid.clone(),
                }),
                _ => None,
            };
            "recorded".to_string()
        }
        "reaction" if event.opens_window() => {
            // A reaction opens the window as a message does (its held
            // messages go), and asks the bot nothing.
            update.conversation = Some(window_opened(&row, timestamp, false));
            "recorded: the messaging window is open".to_string()
        }
        "referral" | "account_linking" if row.thread == ThreadOwner::ThisApp => {
            if event.opens_window() {
                update.conversation = Some(window_opened(&row, timestamp, false));
            }
            let handled = match linking::our_ref(&event) {
                Some(reference) => linking::referral(shared, &row, reference).await,
                None if row.kind == "account_linking" => {
                    linking::account_linking(shared, &row, &event).await
                }
                None => Ok(linking::Handled {
                    outcome: "ignored: referral without a link token".into(),
                    reply: None,
                }),
            };
            match handled {
                Ok(handled) => said_back(&mut update, &row, handled),
                Err(e) => return fail(shared, update, &row, e),
            }
        }
        "message" | "postback" => {
            // This app handed the person over and the pass is still queued:
            // Meta routes them here until it is sent, but the bot is done.
            let passing = match (row.thread, &row.context.thread_owner) {
                (ThreadOwner::ThisApp, Some(_)) => {
                    match shared.store.control_pending(&row.page_id, &row.psid).await {
                        Ok(pending) => pending,
                        Err(e) => {
                            let e =
                                NluError::Transient(format!("reading pending handovers: {e:#}"));
                            return fail(shared, update, &row, e);
                        }
                    }
                }
                _ => false,
            };
            update.conversation = Some(window_opened(&row, timestamp, passing));
            if row.thread == ThreadOwner::AnotherApp {
                "standby: another app owns the thread".to_string()
            } else if passing {
                "not answered: the handover is on its way".to_string()
            } else if linking::is_unlink(shared, &row, &event) {
                // The announcement's Unlink button: no NLU turn, and the
                // dialog state goes with the link.
                if let Some(c) = update.conversation.as_mut() {
                    c.nlu_state = Some(None);
                }
                match linking::unlink(shared, &row, "postback").await {
                    Ok(handled) => said_back(&mut update, &row, handled),
                    Err(e) => return fail(shared, update, &row, e),
                }
            } else if let Some(consented) =
                linking::consent(shared, &row, payload(&event), timestamp).await
            {
                // A tap on the question an m.me link asked: no NLU turn.
                match consented {
                    Ok(handled) => said_back(&mut update, &row, handled),
                    Err(e) => return fail(shared, update, &row, e),
                }
            } else if payload(&event) == Some(handover::HANDOVER_PAYLOAD) {
                handover::hand_over(shared, &row, &mut update, "payload HANDOVER", |text| {
                    replies_from_text(&row, text)
                })
            } else if let Some(reference) = linking::our_ref(&event) {
                // "Get started" from an m.me link: the link is the answer.
                match linking::referral(shared, &row, reference).await {
                    Ok(handled) => said_back(&mut update, &row, handled),
                    Err(e) => return fail(shared, update, &row, e),
                }
            } else {
                // A paused Page sends nothing, sender actions included.
                if shared.settings.replies.mark_seen && attempts == 1 && !row.context.page_paused {
                    shared.mark_seen(&row.page_id, &row.psid);
                }
                match converse(shared, &row, &event, &mut update).await {
                    Ok(outcome) => outcome,
                    Err(e) => return fail(shared, update, &row, e),
                }
            }
        }
        PASS_THREAD_CONTROL | TAKE_THREAD_CONTROL | REQUEST_THREAD_CONTROL => {
            handover::on_event(shared, &row, &event, &mut update)
        }
        POLICY_ENFORCEMENT => match super::policy::enforce(shared, &row, &event).await {
            Ok(outcome) => outcome,
            Err(e) => return fail(shared, update, &row, e),
        },
        _ => "ignored".to_string(),
    };
    update.outcome = Some(outcome);
    shared.metrics.inbox_processed.inc();
    update
}

/// An event of a Page (or Instagram account) this deployment does not
/// answer for: kept, counted and logged, never sent to an NLU (`lexbridge
/// page add` adds a Page).
fn not_answered_for(
    shared: &AppState,
    mut update: InboxUpdate,
    row: &InboxRow,
    what: String,
) -> InboxUpdate {
    shared.metrics.inbox_unknown_page.inc();
    warn!(inbox_id = row.id, "an event was kept, not answered: {what}");
    update.outcome = Some(format!("kept: {what}"));
    update
}

/// An Instagram row as its Page's: the Page in place of the account, and
/// the conversation read again under that Page.
async fn instagram_row(shared: &AppState, row: &InboxRow) -> Result<Option<InboxRow>, NluError> {
    let Some(page_id) = super::instagram::page_of(shared, &row.page_id).await? else {
        return Ok(None);
    };
    let read = |e: anyhow::Error| NluError::Transient(format!("reading the conversation: {e:#}"));
    let mut context = shared
        .store
        .conversation_context(&page_id, &row.psid)
        .await
        .map_err(read)?;
    context.page_paused = !shared
        .store
        .page_pause_reasons(&page_id)
        .await
        .map_err(read)?
        .is_empty();
    Ok(Some(InboxRow {
        page_id,
        context,
        ..row.clone()
    }))
}

/// The person opened the messaging window at `at`: their held messages go
/// if the thread is this app's and not being passed on (`passing`: this
/// app's pass is still queued; another app owning the thread may send).
fn window_opened(row: &InboxRow, at: i64, passing: bool) -> ConversationUpdate {
    ConversationUpdate {
        page_id: row.page_id.clone(),
        psid: row.psid.clone(),
        inbound_at: Some(at),
        nlu_state: None,
        release_held: row.thread == ThreadOwner::ThisApp && !passing,
        thread: if passing { None } else { thread_seen(row) },
    }
}

/// What a message event says of the thread's owner: one in `messaging[]`
/// is this app's (Meta routed it here), one in `standby[]` another's.
/// `None` when that is what was known already.
fn thread_seen(row: &InboxRow) -> Option<Option<String>> {
    match (row.thread, &row.context.thread_owner) {
        (ThreadOwner::ThisApp, Some(_)) => Some(None),
        (ThreadOwner::AnotherApp, None) => Some(Some(UNKNOWN_OWNER.to_string())),
        _ => None,
    }
}

/// The postback or quick-reply payload of the event, if any (never typed
/// text: a person typing a payload's name does not trigger it).
fn payload(event: &MessagingEvent) -> Option<&str> {
    let quick = event.message.as_ref().and_then(|m| m.quick_reply.as_ref());
    match quick {
        Some(q) => Some(q.payload.as_str()),
        None => event.postback.as_ref().and_then(|p| p.payload.as_deref()),
    }
}

/// What the person said, as the NLU should read it.
fn said(event: &MessagingEvent) -> Option<String> {
    if let Some(m) = &event.message {
        if let Some(q) = &m.quick_reply {
            return Some(q.payload.clone());
        }
        return m.text.clone();
    }
    event
        .postback
        .as_ref()
        .and_then(|p| p.payload.clone().or_else(|| p.title.clone()))
}

/// Sends the person's words to the NLU; returns the outcome to record.
async fn converse(
    shared: &Arc<AppState>,
    row: &InboxRow,
    event: &MessagingEvent,
    update: &mut InboxUpdate,
) -> Result<String, NluError> {
    // Claimed rows carry their conversation as it stood at the claim.
    let mut context = row.context.clone();
    if context.account.is_none() && !context.looked_up {
        update.lookup = super::reverse_lookup::reverse_lookup(shared, row).await;
        if update
            .lookup
            .as_ref()
            .is_some_and(|l| l.account_id.is_some())
        {
            // The lookup linked the person just now.
            context = shared
                .store
                .conversation_context(&row.page_id, &row.psid)
                .await
                .map_err(|e| NluError::Transient(format!("reading the conversation: {e:#}")))?;
        }
    }
    let typed = said(event).filter(|t| !t.trim().is_empty());
    let attachment = match &typed {
        Some(_) => None,
        None => event
            .message
            .as_ref()
            .and_then(|m| super::attachment::attachment_turn(&m.attachments)),
    };
    let text = match (typed, &attachment) {
        (Some(text), _) => text,
        (None, Some(a)) => a.utterance().to_string(),
        (None, None) => {
            shared.metrics.inbox_unanswered.inc();
            return Ok("unanswered: nothing to interpret".to_string());
        }
    };
    let nlu = shared.pages.nlu_for(&row.page_id, &shared.nlu);
    if attachment.is_none() && is_start_over(&text) {
        return start_over(shared, row, update).await;
    }
    let turn = NluTurn {
        session_id: session_id(&row.page_id, &row.psid),
        page_id: row.page_id.clone(),
        psid: row.psid.clone(),
        text,
        attributes: session_attributes(row, context.account),
        dialog_state: context.nlu_state,
        turn_id: turn_id(&turn_key(&row.dedupe_key)),
        attachment: attachment.clone(),
    };
    let started = Instant::now();
    let answer = typing_while(shared, row, nlu.recognize(turn)).await;
    let took = started.elapsed();
    shared.metrics.nlu_calls.inc();
    shared.metrics.nlu_micros.inc_by(took.as_micros() as u64);
    shared.metrics.nlu_time(nlu.name(), took);
    let answer = answer?;
    if let (Some(state), Some(c)) = (answer.dialog_state, update.conversation.as_mut()) {
        c.nlu_state = Some(Some(state));
    }
    if let Some(a) = &attachment {
        // A bot with nothing for it leaves the bridge's polite reply.
        let unrouted = answer.reply.messages.is_empty()
            || answer
                .reply
                .intent
                .as_ref()
                .is_some_and(|i| i.name == crate::nlu::local::FALLBACK);
        if unrouted {
            update.replies = replies_from_text(row, &shared.settings.replies.attachment_reply);
            return Ok(format!("answered: {} attachment", a.kind));
        }
    }
    update.replies =
        crate::messenger_replies::replies(&row.page_id, &row.psid, row.id, &answer.reply);
    let intent = answer.reply.intent.as_ref().map(|i| i.name.as_str());
    if handover::is_handover_intent(shared, intent) {
        let why = format!("intent {}", intent.unwrap_or_default());
        return Ok(handover::hand_over(shared, row, update, &why, |text| {
            replies_from_text(row, text)
        }));
    }
    Ok(match &attachment {
        Some(a) => format!("answered: {} attachment by {}", a.kind, nlu.name()),
        None => format!("answered by {}", nlu.name()),
    })
}

/// The person asked to start over: the engine forgets the session, the
/// stored dialog state is cleared with this row's result, and the bridge
/// says so itself (see `nlu::start_over`).
async fn start_over(
    shared: &Arc<AppState>,
    row: &InboxRow,
    update: &mut InboxUpdate,
) -> Result<String, NluError> {
    shared
        .pages
        .nlu_for(&row.page_id, &shared.nlu)
        .reset(&session_id(&row.page_id, &row.psid))
        .await?;
    if let Some(c) = update.conversation.as_mut() {
        c.nlu_state = Some(None);
    }
    update.replies = replies_from_text(row, &shared.settings.replies.start_over);
    Ok("started over".to_string())
}

/// Awaits `answer`, showing `typing_on` once it has taken longer than the
/// typing delay. The indicator is sent (or given up) before this returns, so
/// it can never land after the reply it announces.
async fn typing_while<T>(
    shared: &AppState,
    row: &InboxRow,
    answer: impl std::future::Future<Output = T>,
) -> T {
    let replies = &shared.settings.replies;
    // A paused Page sends nothing (the pause is read with the claim).
    if !replies.typing_indicator || row.context.page_paused {
        return answer.await;
    }
    tokio::pin!(answer);
    if !replies.typing_after.is_zero() {
        tokio::select! {
            biased;
            done = &mut answer => return done,
            () = tokio::time::sleep(replies.typing_after) => {}
        }
    }
    let typing = shared.sender_action(&row.page_id, &row.psid, SenderAction::TypingOn);
    let (done, ()) = tokio::join!(answer, typing);
    done
}

/// Queues the answer to a linking event; returns the outcome to record.
fn said_back(update: &mut InboxUpdate, row: &InboxRow, handled: linking::Handled) -> String {
    match handled.reply {
        Some(linking::Reply::Text(text)) => update.replies = replies_from_text(row, &text),
        Some(linking::Reply::Body(body)) => {
            update.replies = vec![crate::store::outbox::NewOutboxMessage::reply(
                &row.page_id,
                &row.psid,
                row.id,
                body,
            )]
        }
        None => {}
    }
    handled.outcome
}

/// Outbox rows saying `text` to the person of `row`.
fn replies_from_text(row: &InboxRow, text: &str) -> Vec<crate::store::outbox::NewOutboxMessage> {
    let reply = crate::nlu::NluReply {
        messages: vec![crate::nlu::NluMessage::PlainText(text.to_string())],
        ..Default::default()
    };
    crate::messenger_replies::replies(&row.page_id, &row.psid, row.id, &reply)
}

/// What a Lex code hook needs to know the person: who they are on
/// Messenger and, when linked, which account they are.
fn session_attributes(row: &InboxRow, account: Option<LinkedAccount>) -> BTreeMap<String, String> {
    let mut attributes = BTreeMap::from([
        ("psid".to_string(), row.psid.clone()),
        ("page_id".to_string(), row.page_id.clone()),
        ("linked".to_string(), account.is_some().to_string()),
    ]);
    if let Some(a) = account {
        attributes.insert("account_id".to_string(), a.account_id);
        if let Some(name) = a.name {
            attributes.insert("name".to_string(), name);
        }
    }
    attributes
}

/// Whether an event of `kind` is the person asking the bot something (a
/// message, a button or link tapped, Messenger's own Link or Unlink): one
/// that fails for good is apologised for.
fn asked_something(kind: &str) -> bool {
    matches!(
        kind,
        "message" | "postback" | "referral" | "account_linking"
    )
}

/// A failed attempt: retried with backoff while the row's time budget
/// (`INBOX_RETRY_BUDGET_MS` from its first attempt or an operator's retry) lasts,
/// dead-lettered with one apology after it.
fn fail(
    shared: &AppState,
    mut update: InboxUpdate,
    row: &InboxRow,
    error: NluError,
) -> InboxUpdate {
    let workers = &shared.settings.workers;
    update.last_error = Some(error.to_string());
    update.replies.clear();
    let next = error.is_transient().then(|| {
        next_attempt_within(
            now_ms(),
            deadline(row.since, workers.inbox_retry_budget),
            workers.retry_base,
            workers.retry_max,
            update.attempts as u32,
        )
    });
    if let Some(Some(at)) = next {
        update.state = InboxState::Pending;
        update.next_attempt_at = at;
        shared.metrics.inbox_retried.inc();
        warn!(inbox_id = row.id, attempts = update.attempts, error = %error, "inbox row will be retried");
    } else {
        update.state = InboxState::Dead;
        if next.is_some() {
            update.last_error = Some(format!(
                "gave up after INBOX_RETRY_BUDGET_MS ({} ms): {error}",
                workers.inbox_retry_budget.as_millis()
            ));
        }
        // Never silence: the person hears once that this failed. The apology
        // is queued in the same transaction that dead-letters the row. An
        // event about the Page alone has nobody to apologise to, a receipt,
        // echo or reaction asked nothing, and an Instagram event whose
        // Page could not be found has no Page to apologise through.
        if row.psid.is_empty() || !asked_something(&row.kind) {
            update.outcome = Some("dead-lettered".to_string());
        } else if !shared.pages.contains(&row.page_id) {
            update.outcome = Some(format!(
                "dead-lettered; no apology: Page {} is not one this deployment answers for",
                row.page_id
            ));
        } else {
            update.outcome = Some("dead-lettered; apology sent".to_string());
            update.replies = super::apology(
                &row.page_id,
                &row.psid,
                Some(row.id),
                &shared.settings.replies.apology,
            );
        }
        shared.metrics.inbox_dead.inc();
        warn!(inbox_id = row.id, attempts = update.attempts, error = %error, "inbox row dead-lettered");
    }
    update
}

#[cfg(test)]
mod tests {
    use super::asked_something;

    #[test]
    fn only_what_asks_the_bot_something_is_apologised_for() {
        for kind in ["message", "postback", "referral", "account_linking"] {
            assert!(asked_something(kind), "{kind}");
        }
        for kind in [
            "read",
            "delivery",
            "echo",
            "reaction",
            "message_edit",
            "unrecognised",
        ] {
            assert!(!asked_something(kind), "{kind}");
        }
    }
}
