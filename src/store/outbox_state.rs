//! The states of an outbox message.

/// Where an outbox message is. The database keeps the lower-case name
/// (`outbox.state`); SQL statements name the states they read or set.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize, utoipa::ToSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum OutboxState {
    /// Waiting for its turn (and for its Page's rate).
    Queued,
    /// Outside the messaging window: sent as `queued` once the person
    /// writes again, or `expired` at `hold_until`.
    Held,
    /// Claimed by an outbox worker, under a lease.
    Sending,
    Sent,
    Delivered,
    Read,
    /// Meta refused it, or its attempts ran out.
    Failed,
    /// Held until `hold_until` and the person never wrote.
    Expired,
    /// The person unlinked before it was sent.
    Cancelled,
}

impl OutboxState {
    const ALL: [OutboxState; 9] = [
        OutboxState::Queued,
        OutboxState::Held,
        OutboxState::Sending,
        OutboxState::Sent,
        OutboxState::Delivered,
        OutboxState::Read,
        OutboxState::Failed,
        OutboxState::Expired,
        OutboxState::Cancelled,
    ];

    /// The name the database keeps.
    pub fn as_str(self) -> &'static str {
        match self {
            OutboxState::Queued => "queued",
            OutboxState::Held => "held",
            OutboxState::Sending => "sending",
            OutboxState::Sent => "sent",
            OutboxState::Delivered => "delivered",
            OutboxState::Read => "read",
            OutboxState::Failed => "failed",
            OutboxState::Expired => "expired",
            OutboxState::Cancelled => "cancelled",
        }
    }
}

impl TryFrom<String> for OutboxState {
    type Error = anyhow::Error;

    fn try_from(name: String) -> anyhow::Result<OutboxState> {
        OutboxState::ALL
            .into_iter()
            .find(|s| s.as_str() == name)
            .ok_or_else(|| anyhow::anyhow!("{name:?} is not an outbox state"))
    }
}
