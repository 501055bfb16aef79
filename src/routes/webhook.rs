//! `GET /webhook` (subscription check) and `POST /webhook` (events).

use actix_web::{get, post, web, HttpRequest, HttpResponse};
use secrecy::ExposeSecret;
use serde::Deserialize;
use serde_json::json;
use subtle::ConstantTimeEq;
use tracing::{error, warn};

use crate::facebook::webhook::{inbox_events, verify_signature, PayloadError, WebhookEvent};
use crate::metrics::Metrics;
use crate::state::AppState;
use crate::store::inbox::NewInboxEvent;
use crate::store::now_ms;
use crate::store::writer::Write;

/// The largest webhook body accepted (Meta's are far smaller).
pub const MAX_BODY: usize = 1 << 20;

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
pub async fn verify(query: web::Query<Verification>, shared: web::Data<AppState>) -> HttpResponse {
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
        (Some(mode), Some(challenge)) if mode == "subscribe" && token_ok => HttpResponse::Ok()
            .content_type("text/plain; charset=utf-8")
            .body(challenge.clone()),
        _ => {
            warn!("webhook verification refused");
            HttpResponse::Forbidden().json(json!({"error": "verification failed"}))
        }
    }
}

#[post("/webhook")]
pub async fn receive(
    req: HttpRequest,
    body: web::Bytes,
    shared: web::Data<AppState>,
) -> HttpResponse {
    let metrics = &shared.metrics;
    Metrics::add(&metrics.webhook_requests, 1);
    let signature = req
        .headers()
        .get("X-Hub-Signature-256")
        .and_then(|v| v.to_str().ok());
    let secret = shared
        .settings
        .facebook
        .app_secret
        .expose_secret()
        .as_bytes();
    if let Err(e) = verify_signature(secret, &body, signature) {
        Metrics::add(&metrics.webhook_rejected, 1);
        warn!(reason = %e, "webhook POST refused");
        return HttpResponse::Forbidden().json(json!({"error": e.to_string()}));
    }
    // Every event of a signed body is stored, whatever its kind or object:
    // only a body that is not JSON is refused (JSON that is no envelope is
    // kept as one `unrecognised` row).
    let rows: Vec<NewInboxEvent> = match inbox_events(&body, now_ms()) {
        Ok(events) => events.into_iter().map(inbox_row).collect(),
        Err(e @ PayloadError::Malformed(_)) => {
            Metrics::add(&metrics.webhook_rejected, 1);
            warn!(reason = %e, "webhook POST refused");
            return HttpResponse::BadRequest().json(json!({"error": e.to_string()}));
        }
    };
    let count = rows.len() as u64;
    if count > 0 {
        match shared.writer.write(Write::InsertInbox(rows)).await {
            // The committer hands new rows to the inbox worker itself.
            Ok(stored) => {
                Metrics::add(&metrics.webhook_events_stored, stored);
                Metrics::add(&metrics.webhook_events_duplicate, count - stored);
            }
            Err(e) => {
                // Meta retries a failed delivery; nothing was acknowledged.
                error!(error = %format!("{e:#}"), "storing webhook events failed");
                return HttpResponse::InternalServerError()
                    .json(json!({"error": "events could not be stored"}));
            }
        }
    }
    HttpResponse::Ok()
        .content_type("text/plain; charset=utf-8")
        .body("EVENT_RECEIVED")
}

/// The inbox row that keeps a webhook event.
fn inbox_row(e: WebhookEvent) -> NewInboxEvent {
    NewInboxEvent {
        object: e.object,
        page_id: e.page_id,
        psid: e.psid,
        kind: e.kind,
        standby: e.standby,
        dedupe_key: e.dedupe_key,
        event: e.event,
        received_at: e.received_at,
    }
}
