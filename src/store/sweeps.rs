//! The sweeper's clean-ups (see `workers::sweep`): each a statement over
//! rows older than its age, run through the group committer.

use super::statement::{Arg, Stmt};

const HOUR_MS: i64 = 3_600_000;

/// One clean-up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sweep {
    /// Held messages whose time ran out.
    ExpireHeld,
    /// Answers kept for idempotency keys.
    IdempotencyKeys,
    /// Spent or expired link tokens.
    LinkTokens,
    /// Used login states.
    LoginStates,
    /// Pending links nobody confirmed in time.
    PendingLinks,
    /// Sessions past their idle timeout or lifetime.
    Sessions,
}

impl Sweep {
    /// Every clean-up, in the order they run.
    pub const ALL: [Sweep; 6] = [
        Sweep::ExpireHeld,
        Sweep::IdempotencyKeys,
        Sweep::LinkTokens,
        Sweep::LoginStates,
        Sweep::PendingLinks,
        Sweep::Sessions,
    ];

    /// What a row it touched means, for the log.
    pub fn what(self) -> &'static str {
        match self {
            Sweep::ExpireHeld => "held messages expired",
            Sweep::IdempotencyKeys => "idempotency keys forgotten",
            Sweep::LinkTokens => "old link tokens dropped",
            Sweep::LoginStates => "old login states dropped",
            Sweep::PendingLinks => "expired pending links dropped",
            Sweep::Sessions => "expired sessions dropped",
        }
    }

    /// The statement and how old a row must be for it.
    fn sql_and_age(self) -> (&'static str, i64) {
        match self {
            Sweep::ExpireHeld => (
                "UPDATE outbox SET state = 'expired' WHERE state = 'held' AND hold_until <= $1",
                0,
            ),
            Sweep::IdempotencyKeys => (
                "DELETE FROM api_requests WHERE created_at < $1",
                24 * HOUR_MS,
            ),
            // A day's grace keeps "expired" distinguishable from "unknown".
            Sweep::LinkTokens => (
                "DELETE FROM link_tokens WHERE expires_at < $1",
                24 * HOUR_MS,
            ),
            // Login states live ten minutes; a day of history is plenty.
            Sweep::LoginStates => ("DELETE FROM login_states WHERE used_at < $1", 24 * HOUR_MS),
            // A link the owner did not confirm in time is no link.
            Sweep::PendingLinks => ("DELETE FROM pending_links WHERE expires_at < $1", 0),
            // Past its idle timeout or lifetime a session signs nobody in.
            Sweep::Sessions => ("DELETE FROM sessions WHERE expires_at <= $1", 0),
        }
    }

    /// The clean-up as of `now`.
    pub(crate) fn statement(self, now: i64) -> Stmt {
        let (sql, age_ms) = self.sql_and_age();
        Stmt::with_args(sql, vec![Arg::Int(now - age_ms)])
    }
}
