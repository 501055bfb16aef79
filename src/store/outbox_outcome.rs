//! How a claimed outbox row ends its turn: sent, tried again later, held
//! for the messaging window, failed for good, dropped with an apology, or
//! deferred without an attempt while its Page cools down.

use super::outbox::NewOutboxMessage;
use super::statement::Stmt;

/// What the Send API said (or why no attempt was made), as the outbox keeps it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SendFailure {
    pub code: Option<i64>,
    pub subcode: Option<i64>,
    pub message: String,
}

/// The end of one turn of a claimed row. `attempts` counts Send API calls
/// made for the row, this one included.
#[derive(Debug, Clone, PartialEq)]
pub enum OutboxOutcome {
    Sent {
        id: i64,
        attempts: i64,
        message_id: Option<String>,
        at: i64,
    },
    Retry {
        id: i64,
        attempts: i64,
        next_attempt_at: i64,
        failure: SendFailure,
    },
    Failed {
        id: i64,
        attempts: i64,
        failure: SendFailure,
        /// Whether this turn was an attempt (counted in `attempts`), or
        /// the row failed before any call (its window closed, its time ran
        /// out).
        attempted: bool,
    },
    /// No call was made (the Page is cooling down): queued again at
    /// `next_attempt_at`, `attempts` unchanged.
    Deferred {
        id: i64,
        attempts: i64,
        next_attempt_at: i64,
    },
    /// No call was made: the messaging window closed and the request said
    /// `hold`, so the row waits for the person until `until`.
    Held { id: i64, attempts: i64, until: i64 },
    /// No call was made: the person unlinked after the message was
    /// accepted, as unlinking cancels the messages still waiting for them.
    Cancelled { id: i64, attempts: i64 },
    /// A reply too old to make sense any more: failed with `failure`, and
    /// `apology` queued unless one for the person is already queued, or was
    /// queued after this row (see `apology_statement`).
    Dropped {
        id: i64,
        attempts: i64,
        failure: SendFailure,
        attempted: bool,
        apology: Box<NewOutboxMessage>,
    },
}

/// An outcome and the turn it ends: the lease the row was claimed with.
/// A row whose lease ran out may be claimed again (by another instance, or
/// after a stall), and an outcome of the earlier turn must not land on the
/// later one (a deferral would put back in the queue a row being sent).
#[derive(Debug, Clone, PartialEq)]
pub struct OutboxTurn {
    pub outcome: OutboxOutcome,
    pub lease_until: i64,
}

impl OutboxOutcome {
    pub fn id(&self) -> i64 {
        match self {
            OutboxOutcome::Sent { id, .. }
            | OutboxOutcome::Retry { id, .. }
            | OutboxOutcome::Failed { id, .. }
            | OutboxOutcome::Deferred { id, .. }
            | OutboxOutcome::Held { id, .. }
            | OutboxOutcome::Cancelled { id, .. }
            | OutboxOutcome::Dropped { id, .. } => *id,
        }
    }
}

/// The columns one outcome writes.
struct Columns<'a> {
    id: i64,
    state: &'static str,
    attempts: i64,
    /// `attempts` of the row while it was in hand.
    in_hand: i64,
    next: i64,
    message_id: Option<&'a str>,
    sent_at: Option<i64>,
    failure: Option<&'a SendFailure>,
    hold_until: Option<i64>,
    /// Keep the last attempt's error (no attempt was made).
    keep_error: bool,
}

fn columns(outcome: &OutboxOutcome) -> Columns<'_> {
    let base = |id: i64, state, attempts: i64| Columns {
        id,
        state,
        attempts,
        in_hand: attempts - 1,
        next: 0,
        message_id: None,
        sent_at: None,
        failure: None,
        hold_until: None,
        keep_error: false,
    };
    match outcome {
        OutboxOutcome::Sent {
            id,
            attempts,
            message_id,
            at,
        } => Columns {
            next: *at,
            message_id: message_id.as_deref(),
            sent_at: Some(*at),
            ..base(*id, "sent", *attempts)
        },
        OutboxOutcome::Retry {
            id,
            attempts,
            next_attempt_at,
            failure,
        } => Columns {
            next: *next_attempt_at,
            failure: Some(failure),
            ..base(*id, "queued", *attempts)
        },
        OutboxOutcome::Failed {
            id,
            attempts,
            failure,
            attempted,
        }
        | OutboxOutcome::Dropped {
            id,
            attempts,
            failure,
            attempted,
            ..
        } => Columns {
            failure: Some(failure),
            in_hand: attempts - i64::from(*attempted),
            ..base(*id, "failed", *attempts)
        },
        OutboxOutcome::Deferred {
            id,
            attempts,
            next_attempt_at,
        } => Columns {
            in_hand: *attempts,
            next: *next_attempt_at,
            keep_error: true,
            ..base(*id, "queued", *attempts)
        },
        OutboxOutcome::Held {
            id,
            attempts,
            until,
        } => Columns {
            in_hand: *attempts,
            hold_until: Some(*until),
            keep_error: true,
            ..base(*id, "held", *attempts)
        },
        OutboxOutcome::Cancelled { id, attempts } => Columns {
            in_hand: *attempts,
            keep_error: true,
            ..base(*id, "cancelled", *attempts)
        },
    }
}

/// Records how a chunk of turns ended. An outcome applies only to the turn
/// in hand (the row still `sending` by the lease it was claimed with, or
/// by none: its holder was taken for dead, `store::instances`, and no
/// claim has taken the row since, so a send that was on its way when the
/// holder fell silent still counts):
/// written twice, it cannot undo a delivery receipt recorded between, nor
/// land on the message's next turn, nor on a turn of another claim after
/// its lease ran out. A deferral or hold keeps
/// the last error (the reason the Page cools down is the one shown).
pub(crate) fn outcome_statement(turns: &[&OutboxTurn]) -> Stmt {
    let mut update = Stmt::new(
        "UPDATE outbox SET state = v.column2, attempts = v.column3, next_attempt_at = v.column5,
                claimed_by = NULL,
                message_id = COALESCE(v.column6, outbox.message_id),
                sent_at = COALESCE(v.column7, outbox.sent_at),
                error_code = CASE WHEN v.column12 = 1 THEN outbox.error_code ELSE v.column8 END,
                error_subcode = CASE WHEN v.column12 = 1 THEN outbox.error_subcode ELSE v.column9 END,
                error_message = CASE WHEN v.column12 = 1 THEN outbox.error_message ELSE v.column10 END,
                hold_until = COALESCE(v.column11, outbox.hold_until),
                locked_until = NULL
         FROM (",
    );
    update.values(turns, |row, turn| {
        let c = columns(&turn.outcome);
        row.bind_bigint(c.id)
            .bind(c.state)
            .bind_bigint(c.attempts)
            .bind_bigint(c.in_hand)
            .bind_bigint(c.next)
            .bind(c.message_id)
            .bind_bigint(c.sent_at)
            .bind_bigint(c.failure.and_then(|f| f.code))
            .bind_bigint(c.failure.and_then(|f| f.subcode))
            .bind(c.failure.map(|f| f.message.as_str()))
            .bind_bigint(c.hold_until)
            .bind_bigint(i64::from(c.keep_error))
            .bind_bigint(turn.lease_until);
    });
    update.push(
        ") AS v WHERE outbox.id = v.column1 AND outbox.state = 'sending'
            AND outbox.attempts = v.column4
            AND (outbox.locked_until = v.column13 OR outbox.locked_until = 0)",
    );
    update
}

/// Queues a dropped reply's apology when the drop was recorded (the row is
/// `failed` at its attempt count) and the person has no apology queued, nor
/// one queued after the dropped row: a person's messages go in id order, so
/// such an apology is sent after this drop and covers it. However many
/// replies are dropped, the person hears one apology.
pub(crate) fn apology_statement(
    dropped_id: i64,
    attempts: i64,
    apology: &NewOutboxMessage,
    now: i64,
) -> Stmt {
    let mut insert = Stmt::new(
        "INSERT INTO outbox (page_id, psid, body, messaging_type, tag, origin, inbox_id, state,
                             next_attempt_at, created_at)
         SELECT ",
    );
    insert
        .bind(apology.page_id.as_str())
        .push(", ")
        .bind(apology.psid.as_str())
        .push(", ")
        .bind(apology.body.as_str())
        .push(", ")
        .bind(apology.messaging_type.as_str())
        .push(", ")
        .bind(apology.tag.as_deref())
        .push(", ")
        .bind(apology.origin)
        .push(", ")
        .bind(apology.inbox_id)
        .push(", 'queued', ")
        .bind(now)
        .push(", ")
        .bind(now)
        .push(" WHERE EXISTS (SELECT 1 FROM outbox d WHERE d.id = ")
        .bind(dropped_id)
        .push(" AND d.state = 'failed' AND d.attempts = ")
        .bind(attempts)
        .push(") AND NOT EXISTS (SELECT 1 FROM outbox a WHERE a.page_id = ")
        .bind(apology.page_id.as_str())
        .push(" AND a.psid = ")
        .bind(apology.psid.as_str())
        .push(" AND a.origin = 'apology' AND (a.state IN ('queued', 'sending') OR a.id > ")
        .bind(dropped_id)
        .push("))");
    insert
}
