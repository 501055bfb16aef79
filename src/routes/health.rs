//! `GET /health` and `GET /metrics`.

use actix_web::{get, web, HttpResponse};
use serde_json::json;

use crate::workers::Shared;

#[get("/health")]
pub async fn health(shared: web::Data<Shared>) -> HttpResponse {
    match shared.store.ping().await {
        Ok(()) => HttpResponse::Ok().json(json!({"status": "ok"})),
        Err(_) => {
            HttpResponse::ServiceUnavailable().json(json!({"status": "database unavailable"}))
        }
    }
}

#[get("/metrics")]
pub async fn metrics(shared: web::Data<Shared>) -> HttpResponse {
    let inbox = shared.store.inbox_depths().await.unwrap_or_default();
    let outbox = shared.store.outbox_depths().await.unwrap_or_default();
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4")
        .body(shared.metrics.render(
            shared.writer.stats(),
            &[("inbox", inbox), ("outbox", outbox)],
        ))
}
