//! Outbox worker: claims queued messages and sends them through the Send
//! API, the oldest open message of each recipient at a time, within the
//! per-Page rate limit. No transaction is open during the HTTP call.
//!
//! Retries are bounded by time (`WorkerSettings`): a reply goes within
//! `reply_max_age` of being queued or is dropped for one apology; an API
//! message (or apology) keeps trying for `api_message_expiry`, checking the
//! messaging window before each attempt. A Page that Graph rate-limits or
//! answers with a burst of failures cools down as a whole
//! (`facebook::page_cooldown`): its rows are deferred without a call.

use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use tracing::{info, warn};

use super::retry::{deadline, next_attempt_within, retry_delay};
use crate::config::WorkerSettings;
use crate::domain::window::Decision;
use crate::facebook::graph::Unsent;
use crate::facebook::page_cooldown::Trouble;
use crate::facebook::render::send_payload;
use crate::facebook::thread_control::ThreadControl;
use crate::facebook::{GraphError, SendResponse};
use crate::outbound::time::format_timestamp;
use crate::state::AppState;
use crate::store::conversations::{ThreadAssumes, ThreadChange, UNKNOWN_OWNER};
use crate::store::now_ms;
use crate::store::outbox::{OutboxOutcome, OutboxRow, OutboxTurn, SendFailure};
use crate::store::writer::{Claim, FeedReceiver, Write, LEASE_MS};
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
    let stopping = shutdown.clone();
    let handle = |row: OutboxRow| {
        let shared = Arc::clone(&shared);
        let stopping = stopping.clone();
        async move {
            let outcome = deliver(&shared, &row, stopping).await;
            // Every final failure counted once, whatever its cause.
            if matches!(
                outcome,
                OutboxOutcome::Failed { .. } | OutboxOutcome::Dropped { .. }
            ) {
                shared.metrics.outbox_failed.inc();
            }
            Write::FinishOutbox(OutboxTurn {
                outcome,
                lease_until: row.lease_until,
            })
        }
    };
    let writer = shared.writer.clone();
    super::work(feed, writer, shutdown, claim, handle).await;
    info!("outbox worker stopped");
}

/// How long a row of `origin` keeps trying, and the setting that says so.
fn budget(workers: &WorkerSettings, origin: &str) -> (Duration, &'static str) {
    match origin {
        // A handover is as urgent as the reply before it.
        "reply" | "control" => (workers.reply_max_age, "REPLY_MAX_AGE_MS"),
        _ => (workers.api_message_expiry, "API_MESSAGE_EXPIRY_MS"),
    }
}

fn failure(message: String) -> SendFailure {
    SendFailure {
        message,
        ..SendFailure::default()
    }
}

/// The longest a claimed row waits in hand for its Page's send rate: half
/// its lease, so that the call itself (its timeouts, a Graph batch's) ends
/// well before the lease does.
const MOST_RATE_WAIT: Duration = Duration::from_millis(LEASE_MS as u64 / 2);

/// One turn of a claimed row: given up, deferred, held, or one attempt.
/// A row still waiting for its Page's send rate when the instance stops
/// goes back to the queue at once (`Deferred` to now): another instance,
/// or this one after its restart, sends it without waiting out a lease.
async fn deliver(
    shared: &Arc<AppState>,
    row: &OutboxRow,
    mut stopping: watch::Receiver<bool>,
) -> OutboxOutcome {
    let now = now_ms();
    let workers = &shared.settings.workers;
    let until = deadline(row.since, budget(workers, &row.origin).0);
    if now >= until {
        let last = failure(row.last_error.clone().unwrap_or_else(|| "none".into()));
        return out_of_time(shared, row, row.attempts, false, last);
    }
    if let Some(cooling) = shared.cooldowns.cooling_until(&row.page_id, now) {
        return cooling_down(shared, row, cooling, now);
    }
    let attempts = row.attempts + 1;
    let Some(token) = shared.page_token(&row.page_id).await else {
        let why = format!("no access token is configured for page {}", row.page_id);
        return OutboxOutcome::Failed {
            id: row.id,
            attempts,
            failure: failure(why),
            attempted: true,
        };
    };
    // A row waits for its Page's send rate in hand, leased: one whose turn
    // comes later than `MOST_RATE_WAIT` goes back to the queue until then,
    // or its lease could run out while it waits and a second claim send it
    // again (a Page at a rate of a few calls a second and a big batch).
    let reply = row.origin == "reply";
    let wait = match shared.limiter.reserve_within(
        &row.page_id,
        tokio::time::Instant::now(),
        reply,
        MOST_RATE_WAIT,
    ) {
        Ok(wait) => wait,
        Err(turn) => return defer(row, now_ms() + turn.as_millis() as i64, workers.retry_base),
    };
    if *stopping.borrow() {
        return defer(row, now_ms(), Duration::ZERO);
    }
    if !wait.is_zero() {
        tokio::select! {
            biased;
            Ok(_) = stopping.wait_for(|stop| *stop) => return defer(row, now_ms(), Duration::ZERO),
            () = tokio::time::sleep(wait) => {}
        }
    }
    if !shared.heartbeat.may_send(now_ms()) {
        // Cut off from the database long enough that another instance
        // may take this row: it is theirs to send (see `workers::instances`).
        warn!(
            outbox_id = row.id,
            "this instance's heartbeat is failing: the message is left to the others"
        );
        return defer(row, now_ms(), workers.retry_base);
    }
    // After the wait: the person may have unlinked, or the window closed,
    // while the row waited for its turn.
    let (messaging_type, tag) = match person_now(shared, row, now_ms()).await {
        Ok(send_as) => send_as,
        Err(outcome) => return outcome,
    };
    let control = match row.origin.as_str() {
        "control" => ThreadControl::from_outbox_body(&row.body),
        _ => None,
    };
    let started = now_ms();
    let sent = match &control {
        Some(call) => {
            let timer = std::time::Instant::now();
            let done = shared
                .graph
                .thread_control(&row.page_id, &token, &row.psid, call)
                .await;
            shared
                .metrics
                .send_api_seconds
                .observe(timer.elapsed().as_secs_f64());
            done.map(|()| SendResponse {
                recipient_id: None,
                message_id: None,
            })
            .map_err(Unsent::Graph)
        }
        // Timed as its request leaves the Page's queue (see
        // `AppState::send_message`).
        None => {
            let payload = send_payload(&row.psid, messaging_type, tag, &row.body);
            shared.send_message(&row.page_id, &token, payload).await
        }
    };
    let sent = match sent {
        // Not tried now, through no failure of its own: no attempt counted.
        Err(Unsent::Later(Some(cooling))) => {
            return cooling_down(shared, row, cooling, now_ms());
        }
        Err(Unsent::Later(None)) => return defer(row, now_ms(), workers.retry_base),
        Err(Unsent::Graph(e)) => Err(e),
        Ok(response) => Ok(response),
    };
    match sent {
        Ok(response) => {
            shared.metrics.send_outcome("ok");
            if shared.cooldowns.succeeded(&row.page_id, now_ms()) {
                share_cooldown(shared, &row.page_id, None);
            }
            OutboxOutcome::Sent {
                id: row.id,
                attempts,
                message_id: response.message_id,
                at: started,
            }
        }
        Err(e) if e.is_token_refused() => token_refused(shared, row, attempts, e).await,
        Err(e) if e.is_thread_elsewhere() && control.is_none() => {
            thread_elsewhere(shared, row, attempts, until, started, e).await
        }
        Err(e) => classify(shared, row, attempts, until, e),
    }
}

/// What a row checks of its person just before its call. An API message
/// or a link notice accepted before the person unlinked is cancelled, as
/// unlinking cancels what waits for them (one in hand then, being sent or
/// waiting for its Page's rate, or queued again by an operator, is caught
/// here); an API message's messaging window decides how it goes, or that
/// it is held or fails. `Ok`: the `messaging_type` and `tag` to send with.
async fn person_now<'a>(
    shared: &AppState,
    row: &'a OutboxRow,
    now: i64,
) -> Result<(&'a str, Option<&'a str>), OutboxOutcome> {
    let as_queued = (row.messaging_type.as_str(), row.tag.as_deref());
    if row.window.is_none() && row.origin != "link_notice" {
        return Ok(as_queued);
    }
    let person = match shared.store.recipient_now(&row.page_id, &row.psid).await {
        Ok(person) => person,
        Err(e) => {
            warn!(outbox_id = row.id, error = %format!("{e:#}"), "reading the messaging window failed");
            return Err(defer(row, now, shared.settings.workers.retry_base));
        }
    };
    if person.unlinked_at.is_some_and(|at| at >= row.created_at) {
        info!(
            outbox_id = row.id,
            "the person unlinked since the message was accepted: cancelled"
        );
        return Err(OutboxOutcome::Cancelled {
            id: row.id,
            attempts: row.attempts,
        });
    }
    let Some(rule) = row.window else {
        return Ok(as_queued);
    };
    match rule.decide(now, person.last_inbound_at) {
        Decision::Send(delivery) => Ok((delivery.messaging_type(), delivery.tag())),
        Decision::Hold { until } => {
            info!(
                outbox_id = row.id,
                "the messaging window closed while the message waited: held"
            );
            Err(held(row, until))
        }
        Decision::Reject { closed_at } => {
            let closed = closed_at.map_or("never opened".to_string(), |at| {
                format!("closed at {}", format_timestamp(at))
            });
            let why = format!(
                "outside_messaging_window: the messaging window {closed} before the message could be sent (if_outside_window: reject)"
            );
            Err(OutboxOutcome::Failed {
                id: row.id,
                attempts: row.attempts,
                failure: failure(why),
                attempted: false,
            })
        }
    }
}

/// The row's Page cools down until `cooling`: the row waits for its end,
/// and so does the processing of a reply's Page (its answers could not
/// go before then).
fn cooling_down(shared: &AppState, row: &OutboxRow, cooling: i64, now: i64) -> OutboxOutcome {
    if row.origin == "reply" {
        let left = Duration::from_millis(cooling.saturating_sub(now) as u64);
        shared
            .limiter
            .hold_replies_until(&row.page_id, tokio::time::Instant::now() + left);
    }
    defer(row, cooling, shared.settings.workers.retry_base)
}

/// Graph says another app owns the thread: the conversation is marked so
/// (the bot stays out, API messages are held at acceptance), an API message
/// waits for the thread to come back (within its own expiry), and anything
/// else — a bot reply, an apology — fails: only the owner may speak.
async fn thread_elsewhere(
    shared: &AppState,
    row: &OutboxRow,
    attempts: i64,
    until: i64,
    started: i64,
    e: GraphError,
) -> OutboxOutcome {
    shared.metrics.send_outcome("10");
    // Unless the thread changed hands since the send began (a pass back
    // recorded meanwhile is newer news).
    let change = ThreadChange {
        page_id: row.page_id.clone(),
        psid: row.psid.clone(),
        owner: Some(UNKNOWN_OWNER.to_string()),
        at: now_ms(),
        assumes: ThreadAssumes::OursSince(started),
    };
    if let Err(failed) = shared.writer.write(Write::Thread(change)).await {
        warn!(outbox_id = row.id, error = %format!("{failed:#}"), "recording the thread's owner failed");
    }
    if row.origin == "api" {
        info!(
            outbox_id = row.id,
            "another app owns the thread: the message waits for it to come back"
        );
        // Not past the end its request gave a hold, if it gave one.
        let until = row
            .window
            .and_then(|w| w.hold_until())
            .map_or(until, |asked| until.min(asked));
        return held(row, until);
    }
    warn!(outbox_id = row.id, error = %e, "another app owns the thread: not sent");
    OutboxOutcome::Failed {
        id: row.id,
        attempts,
        failure: SendFailure {
            code: e.code,
            subcode: e.subcode,
            message: format!("another app owns the thread: {}", e.message),
        },
        attempted: true,
    }
}

/// Held until `until`, without an attempt counted.
fn held(row: &OutboxRow, until: i64) -> OutboxOutcome {
    OutboxOutcome::Held {
        id: row.id,
        attempts: row.attempts,
        until,
    }
}

/// Queued again at `at` (plus jitter, so a Page's rows do not all come back
/// at once), without an attempt.
fn defer(row: &OutboxRow, at: i64, spread: Duration) -> OutboxOutcome {
    let jitter = retry_delay(spread, spread, 1).as_millis() as i64;
    OutboxOutcome::Deferred {
        id: row.id,
        attempts: row.attempts,
        next_attempt_at: at + jitter,
    }
}

/// The row's time ran out: its reason names the budget and `last`, the
/// last error (whose code it keeps).
fn out_of_time(
    shared: &AppState,
    row: &OutboxRow,
    attempts: i64,
    attempted: bool,
    last: SendFailure,
) -> OutboxOutcome {
    let (budget, setting) = budget(&shared.settings.workers, &row.origin);
    let message = format!(
        "not sent within {setting} ({} ms) of being queued; last error: {}",
        budget.as_millis(),
        last.message
    );
    give_up(
        shared,
        row,
        attempts,
        attempted,
        SendFailure { message, ..last },
    )
}

/// The row's time is up: an API message (or apology) fails with the
/// reason; a reply is dropped and its person gets one apology instead. A
/// send outcome is counted only when no call was made now (a call counted
/// its own).
fn give_up(
    shared: &AppState,
    row: &OutboxRow,
    attempts: i64,
    attempted: bool,
    mut failure: SendFailure,
) -> OutboxOutcome {
    if !attempted {
        shared.metrics.send_outcome("expired");
    }
    if row.origin == "reply" {
        warn!(outbox_id = row.id, attempts, reason = %failure.message, "reply dropped; the person gets one apology");
        failure.message = format!("dropped: {}", failure.message);
        let apology = super::apology(
            &row.page_id,
            &row.psid,
            None,
            &shared.settings.replies.apology,
        );
        if let Some(apology) = apology.into_iter().next() {
            return OutboxOutcome::Dropped {
                id: row.id,
                attempts,
                failure,
                attempted,
                apology: Box::new(apology),
            };
        }
    }
    warn!(outbox_id = row.id, attempts, reason = %failure.message, "message expired");
    failure.message = format!("expired: {}", failure.message);
    OutboxOutcome::Failed {
        id: row.id,
        attempts,
        failure,
        attempted,
    }
}

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

/// Tells the other instances on the database (Postgres) that `page_id`
/// cools down for `rest_ms` (they adopt it with their next heartbeat), or
/// with `None` that a send got through and its cool-down is over (one
/// success ends it everywhere), without holding up the send's outcome.
fn share_cooldown(shared: &AppState, page_id: &str, rest_ms: Option<i64>) {
    let (store, page_id) = (shared.store.clone(), page_id.to_string());
    tokio::spawn(async move {
        let written = match rest_ms {
            Some(ms) => store.share_cooldown(&page_id, ms).await,
            None => store.end_cooldown(&page_id).await,
        };
        if let Err(e) = written {
            warn!(page_id = %page_id, error = %format!("{e:#}"), "sharing the Page's cool-down failed");
        }
    });
}

fn classify(
    shared: &AppState,
    row: &OutboxRow,
    attempts: i64,
    until: i64,
    e: GraphError,
) -> OutboxOutcome {
    shared.metrics.send_outcome(
        &e.code
            .map_or_else(|| "transport".to_string(), |c| c.to_string()),
    );
    let now = now_ms();
    let was_cooling = shared.cooldowns.cooling_until(&row.page_id, now).is_some();
    let cooling = shared.cooldowns.failed(&row.page_id, Trouble::of(&e), now);
    if let Some(cooling) = cooling {
        warn!(page_id = %row.page_id, error = %e, cooling_until = %format_timestamp(cooling),
            "Graph is rate-limiting or failing this Page: its sends pause");
        if !was_cooling {
            share_cooldown(shared, &row.page_id, Some(cooling - now));
        }
    }
    let failure = SendFailure {
        code: e.code,
        subcode: e.subcode,
        message: e.message.clone(),
    };
    if !e.is_transient() {
        warn!(outbox_id = row.id, attempts, error = %e, "send failed for good");
        return OutboxOutcome::Failed {
            id: row.id,
            attempts,
            failure,
            attempted: true,
        };
    }
    let workers = &shared.settings.workers;
    let next = next_attempt_within(
        now,
        until,
        workers.retry_base,
        workers.retry_max,
        attempts as u32,
    );
    match next {
        Some(at) => {
            warn!(outbox_id = row.id, attempts, error = %e, "send failed; will retry");
            shared.metrics.outbox_retried.inc();
            OutboxOutcome::Retry {
                id: row.id,
                attempts,
                next_attempt_at: at.max(cooling.unwrap_or(0)),
                failure,
            }
        }
        None => out_of_time(shared, row, attempts, true, failure),
    }
}
