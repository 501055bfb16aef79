//! Background workers: the inbox (events -> NLU -> replies) and the outbox
//! (messages -> Send API).

pub mod inbox;
pub mod outbox;
pub mod rate_limit;
pub mod retry;

use std::sync::Arc;
use tokio::sync::Notify;

use crate::config::Settings;
use crate::facebook::GraphClient;
use crate::metrics::Metrics;
use crate::nlu::Nlu;
use crate::store::writer::Writer;
use crate::store::Store;
use rate_limit::RateLimiter;

/// What the routes and workers share.
pub struct Shared {
    pub settings: Settings,
    pub store: Store,
    pub writer: Writer,
    pub graph: GraphClient,
    pub nlu: Option<Arc<dyn Nlu>>,
    pub metrics: Metrics,
    pub limiter: RateLimiter,
    /// Woken when inbox rows may be ready (new events, a finished row).
    pub inbox_wake: Notify,
    /// Woken when outbox rows may be ready.
    pub outbox_wake: Notify,
}
