//! The application state every route, feature and worker is handed.

use secrecy::{ExposeSecret, SecretString};
use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use tracing::{debug, warn};

use crate::config::Settings;
use crate::crypto::TokenCipher;
use crate::facebook::batch_queue::BatchQueue;
use crate::facebook::graph::{QueuedSend, Unsent};
use crate::facebook::page_cooldown::PageCooldowns;
use crate::facebook::rate_limit::RateLimiter;
use crate::facebook::{GraphClient, GraphError, SendResponse, SenderAction};
use crate::linking::tokens::{LinkTokens, Purpose, LINK_TOKEN_TTL_MS};
use crate::metrics::Metrics;
use crate::nlu::Nlu;
use crate::outbound::keys::ApiKeys;
use crate::readiness::WorkerLiveness;
use crate::store::writer::Writer;
use crate::store::{now_ms, Store};

/// The longest a sender action waits for the Page's rate limit.
const SENDER_ACTION_MAX_WAIT: std::time::Duration = std::time::Duration::from_millis(200);

/// The application state: settings, the store and its committer, the
/// clients of Meta and the NLU, and the keys and caches the routes, the
/// features and the workers all use. Built once in `startup`.
pub struct AppState {
    pub settings: Settings,
    pub store: Store,
    pub writer: Writer,
    pub graph: GraphClient,
    /// The deployment's NLU; a Page may have its own (`pages`).
    pub nlu: Arc<dyn Nlu>,
    /// The Pages answered for, with their own NLUs.
    pub pages: crate::pages::Pages,
    pub metrics: Metrics,
    pub limiter: Arc<RateLimiter>,
    /// Pages whose sends wait out a rate limit or a burst of Graph failures.
    pub cooldowns: PageCooldowns,
    pub cipher: TokenCipher,
    /// Page access tokens as resolved by `page_token` (stored ones
    /// decrypted once).
    pub page_tokens: RwLock<PageTokenCache>,
    /// Signs m.me `ref` tokens and account-linking codes.
    pub link_tokens: LinkTokens,
    /// The keys the outbound API accepts.
    pub api_keys: ApiKeys,
    /// Which background workers run (for `/readyz`).
    pub workers: WorkerLiveness,
    /// This instance among those sharing the database (`store::instances`):
    /// the rows it claims name it.
    pub instance_id: String,
    /// When its heartbeat last reached the database.
    pub heartbeat: crate::store::instances::Heartbeat,
    /// `mark_seen` calls waiting to go in batches (`mark_seen`).
    pub seen: Arc<BatchQueue<String>>,
    /// Send API messages waiting to go, in batches when several wait
    /// (`send_message`).
    pub sends: Arc<BatchQueue<QueuedSend>>,
}

impl AppState {
    /// The app secret: the key of Meta's webhook signatures and signed
    /// requests.
    pub fn app_secret(&self) -> &[u8] {
        self.settings.facebook.app_secret.expose_secret().as_bytes()
    }

    /// The access token to send for a Page, cached once resolved. The first
    /// found wins: the token `page add` stored, then one a Page admin's
    /// login stored, then, for the default Page, `FACEBOOK_PAGE_ACCESS_TOKEN`.
    pub async fn page_token(&self, page_id: &str) -> Option<SecretString> {
        let (cached, forgotten) = {
            let cache = self.page_tokens.read().unwrap_or_else(|p| p.into_inner());
            (cache.tokens.get(page_id).cloned(), cache.forgotten)
        };
        if cached.is_some() {
            return cached;
        }
        let facebook = &self.settings.facebook;
        let configured = (page_id == facebook.page_id)
            .then(|| facebook.page_access_token.clone())
            .filter(|t| !t.expose_secret().is_empty());
        let stored = match self.store.page_tokens(page_id).await {
            Ok(stored) => stored,
            Err(e) => {
                // Not cached: a stored token must not be shadowed for good.
                warn!(page_id, error = %format!("{e:#}"), "reading a page token failed");
                return configured;
            }
        };
        let token =
            crate::pages::first_stored_token(&self.cipher, page_id, stored).or(configured)?;
        // Not if a token was forgotten while this one was read: it may be
        // the one a new token (an admin's login) just replaced.
        let mut cache = self.page_tokens.write().unwrap_or_else(|p| p.into_inner());
        if cache.forgotten == forgotten {
            cache.tokens.insert(page_id.to_string(), token.clone());
        }
        Some(token)
    }

    /// Forgets the Page's cached token: the next send resolves it again.
    pub fn forget_page_token(&self, page_id: &str) {
        let mut cache = self.page_tokens.write().unwrap_or_else(|p| p.into_inner());
        cache.tokens.remove(page_id);
        cache.forgotten += 1;
    }

    /// A fresh single-use link token of `purpose` for `account_id`, stored
    /// with its expiry.
    pub async fn issue_link_token(
        &self,
        purpose: Purpose,
        account_id: &str,
        now: i64,
    ) -> anyhow::Result<String> {
        let issued = self.link_tokens.issue(purpose);
        self.store
            .store_link_token(
                &issued.nonce,
                purpose.as_str(),
                account_id,
                now + LINK_TOKEN_TTL_MS,
            )
            .await?;
        Ok(issued.token)
    }

    /// A best-effort sender action (`mark_seen`, `typing_on`) within the
    /// Page's rate limit. It is skipped when the Page's budget is spent (a
    /// late indicator is worthless, and messages need the budget more);
    /// failures are only logged.
    pub async fn sender_action(&self, page_id: &str, psid: &str, action: SenderAction) {
        self.sender_actions(page_id, &[psid.to_string()], action)
            .await
    }

    /// `mark_seen` for a person, best effort: in a Graph batch request
    /// with the others of the Page waiting at the time, or alone
    /// (`facebook::batch_queue`); skipped when too many wait.
    pub fn mark_seen(self: &Arc<Self>, page_id: &str, psid: &str) {
        let shared = Arc::clone(self);
        let flush = move |page_id: String, mut psids: Vec<String>| {
            let shared = Arc::clone(&shared);
            async move {
                // A person with two messages waiting is marked once.
                let mut seen = std::collections::HashSet::new();
                psids.retain(|psid| seen.insert(psid.clone()));
                shared
                    .sender_actions(&page_id, &psids, SenderAction::MarkSeen)
                    .await;
            }
        };
        if self.seen.submit(page_id, psid.to_string(), flush).is_err() {
            debug!("mark_seen skipped: too many wait");
        }
    }

    /// A Send API call for a Page (`payload` as `GraphClient::send` takes),
    /// in a batch request with the others of the Page that wait while all
    /// its flushers are busy, or alone (`facebook::batch_queue`). Its own
    /// outcome either way. A call whose Page started cooling down while it
    /// waited is not sent (`Unsent::Later`, from the cool-down's end); nor
    /// is one whose instance lost its heartbeat meanwhile, or one refused
    /// because too many wait.
    pub async fn send_message(
        self: &Arc<Self>,
        page_id: &str,
        token: &SecretString,
        payload: serde_json::Value,
    ) -> Result<SendResponse, Unsent> {
        let (answer, answered) = tokio::sync::oneshot::channel();
        let call = QueuedSend {
            token: token.clone(),
            payload,
            answer,
        };
        let shared = Arc::clone(self);
        let flush = move |page_id: String, calls: Vec<QueuedSend>| {
            let shared = Arc::clone(&shared);
            async move {
                // Checked again as the batch leaves: it may have waited.
                let now = now_ms();
                // The instant to try again from (`None`: soon), if not now.
                let later = match shared.cooldowns.cooling_until(&page_id, now) {
                    Some(until) => Some(Some(until)),
                    // Cut off from the database: the rows may be another
                    // instance's by now (`workers::instances`).
                    None if !shared.heartbeat.may_send(now) => Some(None),
                    None => None,
                };
                if let Some(at) = later {
                    for call in calls {
                        let _ = call.answer.send(Err(Unsent::Later(at)));
                    }
                    return;
                }
                let metrics = &shared.metrics;
                let took = |took: std::time::Duration| {
                    metrics.send_api_seconds.observe(took.as_secs_f64());
                };
                shared.graph.send_queued(&page_id, calls, took).await
            }
        };
        if self.sends.submit(page_id, call, flush).is_err() {
            debug!("too many Send API calls wait: the message waits its next turn");
            return Err(Unsent::Later(None));
        }
        // No answer: its flush panicked, before or after the call (Meta
        // may have it): a failure like a timeout, an attempt counted.
        answered.await.unwrap_or_else(|_| {
            Err(Unsent::Graph(GraphError {
                message: "the send's batch ended without an answer".into(),
                ..GraphError::default()
            }))
        })
    }

    /// `sender_action` for several people of one Page (at most
    /// `BATCH_MAX`), in one Graph batch request when more than one is
    /// within the Page's budget. Each call takes its own share of the
    /// budget, as Meta counts it, and is skipped rather than kept waiting
    /// past `SENDER_ACTION_MAX_WAIT`; failures are only logged.
    pub async fn sender_actions(&self, page_id: &str, psids: &[String], action: SenderAction) {
        let Some(token) = self.page_token(page_id).await else {
            return;
        };
        let now = tokio::time::Instant::now();
        let mut wait = std::time::Duration::ZERO;
        let mut within = Vec::with_capacity(psids.len());
        for psid in psids {
            match self
                .limiter
                .try_reserve(page_id, now, SENDER_ACTION_MAX_WAIT)
            {
                Some(w) => {
                    wait = wait.max(w);
                    within.push(psid.clone());
                }
                None => debug!(
                    action = action.as_str(),
                    "sender action skipped: the page's send budget is spent"
                ),
            }
        }
        if !wait.is_zero() {
            tokio::time::sleep(wait).await;
        }
        if within.is_empty() {
            return;
        }
        let failed = match self
            .graph
            .sender_action_batch(page_id, &token, &within, action)
            .await
        {
            Ok(outcomes) => outcomes.into_iter().find_map(Result::err),
            Err(e) => Some(e),
        };
        if let Some(e) = failed {
            debug!(action = action.as_str(), calls = within.len(), error = %e, "sender action failed");
        }
    }
}

/// Resolved Page tokens, and how many were forgotten: a token read from
/// the database before a forget is not cached after it (a send resolving
/// the token while an admin's login stored a new one would otherwise keep
/// the old one until a restart).
#[derive(Default)]
pub struct PageTokenCache {
    tokens: HashMap<String, SecretString>,
    forgotten: u64,
}
