//! `GET /health`, `GET /healthz` (alive), `GET /readyz` (ready to work)
//! and `GET /metrics`.

use actix_web::http::header;
use actix_web::{get, web, HttpRequest, HttpResponse};
use secrecy::ExposeSecret;
use serde_json::json;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::metrics::Scrape;
use crate::readiness;
use crate::state::AppState;
use crate::store::now_ms;

#[get("/health")]
pub async fn health(shared: web::Data<AppState>) -> HttpResponse {
    match shared.store.ping().await {
        Ok(()) => HttpResponse::Ok().json(json!({"status": "ok"})),
        Err(_) => {
            HttpResponse::ServiceUnavailable().json(json!({"status": "database unavailable"}))
        }
    }
}

/// Alive: 200 whenever the process serves requests (nothing is checked).
#[get("/healthz")]
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(json!({"status": "alive"}))
}

/// Ready: 200 when the database answers, every migration is applied, the
/// workers run and no Page's token is known to be invalid; 503 otherwise,
/// naming each failing reason. Both name this instance (the id its claimed
/// rows carry on Postgres, see `store::instances`).
#[get("/readyz")]
pub async fn readyz(shared: web::Data<AppState>) -> HttpResponse {
    let failing = readiness::check(&shared).await;
    let instance = &shared.instance_id;
    if failing.is_empty() {
        HttpResponse::Ok().json(json!({"status": "ready", "instance": instance}))
    } else {
        HttpResponse::ServiceUnavailable()
            .json(json!({"status": "not ready", "failing": failing, "instance": instance}))
    }
}

/// Prometheus text. With `METRICS_TOKEN` set, only for
/// `Authorization: Bearer <token>` (401 otherwise). Each scrape reads the
/// queue depths and oldest open rows through partial indexes of open rows
/// and the tiny
/// `page_pauses` table: never a count of a whole table.
#[get("/metrics")]
pub async fn metrics(req: HttpRequest, shared: web::Data<AppState>) -> HttpResponse {
    if let Some(token) = &shared.settings.metrics_token {
        if !bearer_matches(&req, token.expose_secret()) {
            return HttpResponse::Unauthorized()
                .insert_header(("WWW-Authenticate", "Bearer realm=\"metrics\""))
                .json(json!({"error": "a valid bearer token is required"}));
        }
    }
    let inbox = shared.store.inbox_depths().await.unwrap_or_default();
    let outbox = shared.store.outbox_depths().await.unwrap_or_default();
    let pauses = shared.store.page_pauses().await.unwrap_or_default();
    let oldest = shared.store.oldest_open(now_ms()).await.unwrap_or_default();
    let body = shared.metrics.render(&Scrape {
        commits: shared.writer.stats(),
        checkpoints: shared.writer.checkpoints(),
        depths: &[("inbox", inbox), ("outbox", outbox)],
        oldest_ms: &oldest,
        pauses: &pauses,
        instances: shared.limiter.shared_among(),
        peak_rss_bytes: crate::metrics::peak_rss_bytes("self"),
    });
    HttpResponse::Ok()
        .content_type("application/openmetrics-text; version=1.0.0; charset=utf-8")
        .body(body)
}

/// Whether the request carries `Authorization: Bearer <expected>`. Both
/// sides are hashed first, so the comparison takes the same time whatever
/// the token's length or its first differing byte.
fn bearer_matches(req: &HttpRequest, expected: &str) -> bool {
    let presented = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim());
    let Some(presented) = presented else {
        return false;
    };
    let digest = |s: &str| Sha256::digest(s.as_bytes());
    bool::from(digest(presented).ct_eq(&digest(expected)))
}
