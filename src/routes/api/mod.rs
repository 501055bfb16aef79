//! `/api/v1`: the authenticated API backends use to message linked people.

pub mod messages;
pub mod openapi;

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use futures_util::StreamExt;
use tracing::error;

use crate::outbound::accept::Answer;
use crate::outbound::answer::ApiError;
use crate::outbound::key_rates::retry_after_secs;
use crate::outbound::keys::Caller;
use crate::state::AppState;

/// The largest single-message request.
pub const MAX_MESSAGE_BODY: usize = 64 << 10;
/// The largest batch (1,000 messages of the longest text fit).
pub const MAX_BATCH_BODY: usize = 8 << 20;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/api/v1/messages").route(web::post().to(messages::send)))
        .service(
            web::resource("/api/v1/messages/batch").route(web::post().to(messages::send_batch)),
        )
        .service(web::resource("/api/v1/messages/{id}").route(web::get().to(messages::status)))
        .service(web::resource("/api/v1/openapi.json").route(web::get().to(openapi::spec)));
}

/// The caller of an API request within its key's rate, or the 401 or 429
/// to answer.
async fn authenticate(shared: &AppState, req: &HttpRequest) -> Result<Caller, HttpResponse> {
    let header = req
        .headers()
        .get(actix_web::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    match shared
        .api_keys
        .authenticate(&shared.store, &shared.writer, header)
        .await
    {
        Ok(Ok(caller)) => match shared.api_keys.admit(&caller) {
            Ok(()) => Ok(caller),
            Err(wait) => Err(rate_limited(&caller, wait)),
        },
        Ok(Err(refusal)) => Err(HttpResponse::Unauthorized()
            .insert_header(("WWW-Authenticate", "Bearer"))
            .json(ApiError::new("unauthorized", refusal.message()))),
        Err(e) => Err(internal(e)),
    }
}

/// 429: the key is over its `--rate`.
fn rate_limited(caller: &Caller, wait: std::time::Duration) -> HttpResponse {
    let rate = caller.scope.rate_per_second.unwrap_or_default();
    HttpResponse::TooManyRequests()
        .insert_header(("Retry-After", retry_after_secs(wait).to_string()))
        .json(ApiError::new(
            "rate_limited",
            format!(
                "API key {:?} is limited to {rate} request(s) per second; retry after the \
                 seconds Retry-After gives",
                caller.name
            ),
        ))
}

/// The request body up to `limit` bytes, or the 413 to answer.
async fn read_body(mut payload: web::Payload, limit: usize) -> Result<web::BytesMut, HttpResponse> {
    let mut body = web::BytesMut::new();
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|e| {
            HttpResponse::BadRequest().json(ApiError::new(
                "malformed_request",
                format!("the body could not be read: {e}"),
            ))
        })?;
        if body.len() + chunk.len() > limit {
            return Err(HttpResponse::PayloadTooLarge().json(ApiError::new(
                "body_too_large",
                format!("the body is over {limit} bytes"),
            )));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

fn respond(answer: Answer) -> HttpResponse {
    let status = StatusCode::from_u16(answer.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut response = HttpResponse::build(status);
    if answer.replayed {
        response.insert_header(("Idempotent-Replayed", "true"));
    }
    response.content_type("application/json").body(answer.body)
}

fn internal(e: anyhow::Error) -> HttpResponse {
    error!(error = %format!("{e:#}"), "an API request failed");
    HttpResponse::InternalServerError().json(ApiError::new(
        "internal",
        "the request could not be completed; it is safe to retry with the same Idempotency-Key",
    ))
}
