//! `GET /webhook` (subscription check) and `POST /webhook` (events).

use actix_web::http::StatusCode;
use actix_web::{get, post, web, HttpRequest, HttpResponse, ResponseError};
use secrecy::ExposeSecret;
use serde::Deserialize;
use serde_json::json;
use subtle::ConstantTimeEq;
use tracing::{error, warn};

use crate::facebook::events::{inbox_events, PayloadError, WebhookEvent};
use crate::facebook::signature::{verify_signature, SignatureError};
use crate::pages::Pages;
use crate::state::AppState;
use crate::store::inbox::{NewInboxEvent, ThreadOwner};
use crate::store::writer::Write;
use crate::store::{now_ms, StoreError};

/// The largest webhook body accepted (Meta's are far smaller).
pub const MAX_BODY: usize = 1 << 20;

/// Why the webhook did not take a request. Meta retries what is not
/// answered 200, so only a request that can never succeed is refused 4xx.
#[derive(Debug, thiserror::Error)]
pub enum WebhookError {
    /// `GET /webhook` without `hub.mode=subscribe` and the verify token.
    #[error("verification failed")]
    Verification,
    #[error(transparent)]
    Signature(#[from] SignatureError),
    #[error(transparent)]
    Payload(#[from] PayloadError),
    /// Meta retries a failed delivery; nothing was acknowledged.
    #[error("events could not be stored")]
    Store(#[source] StoreError),
}

impl ResponseError for WebhookError {
    fn status_code(&self) -> StatusCode {
        match self {
            WebhookError::Verification | WebhookError::Signature(_) => StatusCode::FORBIDDEN,
            WebhookError::Payload(_) => StatusCode::BAD_REQUEST,
            WebhookError::Store(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        match self {
            WebhookError::Store(e) => error!(error = %e, "storing webhook events failed"),
            WebhookError::Verification => warn!("webhook verification refused"),
            refused => warn!(reason = %refused, "webhook POST refused"),
        }
        HttpResponse::build(self.status_code()).json(json!({"error": self.to_string()}))
    }
}

#[derive(Deserialize)]
struct Verification {
    #[serde(rename = "hub.mode")]
    mode: Option<String>,
    #[serde(rename = "hub.verify_token")]
    verify_token: Option<String>,
    #[serde(rename = "hub.challenge")]
    challenge: Option<String>,
}

#[get("/webhook")]
pub async fn verify(
    query: web::Query<Verification>,
    shared: web::Data<AppState>,
) -> Result<HttpResponse, WebhookError> {
    let expected = shared
        .settings
        .facebook
        .verify_token
        .expose_secret()
        .as_bytes();
    let token_ok = query
        .verify_token
        .as_deref()
        .is_some_and(|t| bool::from(t.as_bytes().ct_eq(expected)));
    match (&query.mode, &query.challenge) {
        (Some(mode), Some(challenge)) if mode == "subscribe" && token_ok => Ok(HttpResponse::Ok()
            .content_type("text/plain; charset=utf-8")
            .body(challenge.clone())),
        _ => Err(WebhookError::Verification),
    }
}

#[post("/webhook")]
pub async fn receive(
    req: HttpRequest,
    body: web::Bytes,
    shared: web::Data<AppState>,
) -> Result<HttpResponse, WebhookError> {
    let started = std::time::Instant::now();
    let answer = store_events(&req, &body, &shared).await;
    // One observation per request, accepted or refused.
    shared
        .metrics
        .webhook_ack_seconds
        .observe(started.elapsed().as_secs_f64());
    answer
}

async fn store_events(
    req: &HttpRequest,
    body: &web::Bytes,
    shared: &AppState,
) -> Result<HttpResponse, WebhookError> {
    let metrics = &shared.metrics;
    metrics.webhook_requests.inc();
    let signature = req
        .headers()
        .get("X-Hub-Signature-256")
        .and_then(|v| v.to_str().ok());
    let secret = shared.app_secret();
    if let Err(e) = verify_signature(secret, body, signature) {
        metrics.webhook_rejected.inc();
        return Err(e.into());
    }
    // Every event of a signed body is stored, whatever its kind or object:
    // only a body that is not JSON is refused (JSON that is no envelope is
    // kept as one `unrecognised` row).
    let rows: Vec<NewInboxEvent> = match inbox_events(body, now_ms()) {
        Ok(events) => events
            .into_iter()
            .map(|e| inbox_row(e, &shared.pages))
            .collect(),
        Err(e @ PayloadError::Malformed(_)) => {
            metrics.webhook_rejected.inc();
            return Err(e.into());
        }
    };
    let count = rows.len() as u64;
    if count > 0 {
        // The committer hands new rows to the inbox worker itself.
        let stored = shared
            .writer
            .write(Write::InsertInbox(rows))
            .await
            .map_err(WebhookError::Store)?;
        metrics.webhook_events_stored.inc_by(stored);
        metrics.webhook_events_duplicate.inc_by(count - stored);
    }
    Ok(HttpResponse::Ok()
        .content_type("text/plain; charset=utf-8")
        .body("EVENT_RECEIVED"))
}

/// The inbox row that keeps a webhook event. Only a Page this deployment
/// answers for has its people's windows opened (as processing would).
fn inbox_row(e: WebhookEvent, pages: &Pages) -> NewInboxEvent {
    let inbound_at = e.inbound_at.filter(|_| pages.contains(&e.page_id));
    NewInboxEvent {
        object: e.object,
        page_id: e.page_id,
        psid: e.psid,
        kind: e.kind,
        thread: ThreadOwner::from_standby(e.standby),
        dedupe_key: e.dedupe_key,
        event: e.event,
        received_at: e.received_at,
        inbound_at,
    }
}
