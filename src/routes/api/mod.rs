//! `/api/v1`: the authenticated API backends use to message linked people.

pub mod caller;
pub mod error;
pub mod messages;
pub mod openapi;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::StatusCode;
use actix_web::middleware::Next;
use actix_web::{web, HttpResponse};
use futures_util::StreamExt;

use crate::outbound::accept::ApiAnswer;
use crate::outbound::answer::ErrorCode;
use error::ApiFailure;

/// The largest single-message request.
pub const MAX_MESSAGE_BODY: usize = 64 << 10;
/// The largest batch (1,000 messages of the longest text fit).
pub const MAX_BATCH_BODY: usize = 8 << 20;

pub fn configure(cfg: &mut web::ServiceConfig) {
    // The counter wraps the API's scope only: the webhook's requests never
    // pass through it.
    cfg.service(
        web::scope("/api/v1")
            .wrap(actix_web::middleware::from_fn(count_requests))
            .service(web::resource("/messages").route(web::post().to(messages::send)))
            .service(web::resource("/messages/batch").route(web::post().to(messages::send_batch)))
            .service(web::resource("/messages/{id}").route(web::get().to(messages::status)))
            .service(web::resource("/openapi.json").route(web::get().to(openapi::spec))),
    );
}

/// Counts every API answer by its status for `/metrics`.
async fn count_requests(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let shared = req.app_data::<web::Data<crate::state::AppState>>().cloned();
    let answer = next.call(req).await;
    if let Some(shared) = shared {
        let status = match &answer {
            Ok(response) => response.status(),
            Err(e) => e.as_response_error().status_code(),
        };
        shared.metrics.api_request(status.as_u16());
    }
    answer
}

/// The request body up to `limit` bytes.
async fn read_body(mut payload: web::Payload, limit: usize) -> Result<web::BytesMut, ApiFailure> {
    let mut body = web::BytesMut::new();
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|e| {
            ApiFailure::refused(
                ErrorCode::MalformedRequest,
                format!("the body could not be read: {e}"),
            )
        })?;
        if body.len() + chunk.len() > limit {
            return Err(ApiFailure::refused(
                ErrorCode::BodyTooLarge,
                format!("the body is over {limit} bytes"),
            ));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

fn respond(answer: ApiAnswer) -> HttpResponse {
    let status = StatusCode::from_u16(answer.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut response = HttpResponse::build(status);
    if answer.replayed {
        response.insert_header(("Idempotent-Replayed", "true"));
    }
    response.content_type("application/json").body(answer.body)
}
