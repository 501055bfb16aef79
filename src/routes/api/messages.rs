//! `POST /api/v1/messages`, `POST /api/v1/messages/batch`,
//! `GET /api/v1/messages/{id}`. Each answers from the store: nothing here
//! calls Meta; the outbox worker sends.

use actix_web::{web, HttpRequest, HttpResponse};

use super::caller::ApiCaller;
use super::error::ApiFailure;
use super::{read_body, respond, MAX_BATCH_BODY, MAX_MESSAGE_BODY};
use crate::outbound::accept::{Outbound, Sender};
use crate::outbound::answer::{ApiError, ErrorCode, StatusAnswer};
use crate::state::AppState;

/// Queue a message for one person.
#[utoipa::path(
    post,
    path = "/api/v1/messages",
    tag = "messages",
    request_body = crate::outbound::request::MessageRequest,
    params(
        ("Idempotency-Key" = Option<String>, Header,
         description = "Repeat a request safely: the same key and body get the first answer again; \
                        the same key with another body gets 409."),
    ),
    responses(
        (status = 202, description = "Committed: queued, or held until the person writes", body = crate::outbound::answer::Accepted),
        (status = 400, description = "The body is not JSON", body = ApiError),
        (status = 401, description = "Missing, unknown or revoked API key", body = ApiError),
        (status = 403, description = "The PSID recipient's Page is outside the API key's Pages (`page_not_allowed`; keys made with `api-key create --pages`)", body = ApiError),
        (status = 404, description = "Unknown recipient (also an account or uid the key reaches only on Pages outside its `--pages`: answered like an unknown one), or an account with no linked Messenger identity", body = ApiError),
        (status = 409, description = "The Idempotency-Key was used with another body", body = ApiError),
        (status = 413, description = "The body is over 64 KiB", body = ApiError),
        (status = 422, description = "A field breaks a rule (`field` names it), or the messaging window is closed (`outside_messaging_window`)", body = ApiError),
        (status = 429, description = "The API key is over its requests per second (`rate_limited`; keys made with `api-key create --rate N`); every request of the key counts", body = ApiError, headers(("Retry-After" = u64, description = "Seconds until the key may send again"))),
    ),
    security(("api_key" = []))
)]
pub async fn send(
    caller: ApiCaller,
    shared: web::Data<AppState>,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiFailure> {
    submit(&shared, &caller, &req, payload, false).await
}

/// Queue up to 1,000 messages, each checked and answered on its own.
#[utoipa::path(
    post,
    path = "/api/v1/messages/batch",
    tag = "messages",
    request_body(content = inline(BatchRequestSchema), description = "Up to 1,000 messages"),
    params(
        ("Idempotency-Key" = Option<String>, Header, description = "As for a single message, for the whole batch."),
    ),
    responses(
        (status = 200, description = "One answer per message, in order", body = crate::outbound::answer::BatchAnswer),
        (status = 400, description = "The body is not JSON", body = ApiError),
        (status = 401, description = "Missing, unknown or revoked API key", body = ApiError),
        (status = 409, description = "The Idempotency-Key was used with another body", body = ApiError),
        (status = 413, description = "The body is over 8 MiB", body = ApiError),
        (status = 422, description = "Not a batch, or over 1,000 messages", body = ApiError),
        (status = 429, description = "The API key is over its requests per second (`rate_limited`; keys made with `api-key create --rate N`); every request of the key counts", body = ApiError, headers(("Retry-After" = u64, description = "Seconds until the key may send again"))),
    ),
    security(("api_key" = []))
)]
pub async fn send_batch(
    caller: ApiCaller,
    shared: web::Data<AppState>,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiFailure> {
    submit(&shared, &caller, &req, payload, true).await
}

/// The batch request, for the spec.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
pub struct BatchRequestSchema {
    messages: Vec<crate::outbound::request::MessageRequest>,
}

async fn submit(
    shared: &AppState,
    ApiCaller(caller): &ApiCaller,
    req: &HttpRequest,
    payload: web::Payload,
    batch: bool,
) -> Result<HttpResponse, ApiFailure> {
    let limit = if batch {
        MAX_BATCH_BODY
    } else {
        MAX_MESSAGE_BODY
    };
    let body = read_body(payload, limit).await?;
    let idempotency_key = req
        .headers()
        .get("Idempotency-Key")
        .map(|v| v.to_str().unwrap_or("\u{fffd}"));
    let outbound = Outbound {
        store: &shared.store,
        writer: &shared.writer,
        page_id: &shared.settings.facebook.page_id,
        pages: shared.pages.ids(),
    };
    let sender = Sender {
        caller: Some(caller),
        idempotency_key,
    };
    let answer = match batch {
        true => outbound.submit_batch(&sender, &body).await?,
        false => outbound.submit_one(&sender, &body).await?,
    };
    Ok(respond(answer))
}

/// Where a message is: queued, held, sending, sent, delivered, read,
/// failed, expired or cancelled (the person unlinked before it was sent),
/// with Meta's error when it failed.
#[utoipa::path(
    get,
    path = "/api/v1/messages/{id}",
    tag = "messages",
    params(("id" = String, Path, description = "The id the 202 answer gave")),
    responses(
        (status = 200, description = "The message's status", body = StatusAnswer),
        (status = 401, description = "Missing, unknown or revoked API key", body = ApiError),
        (status = 404, description = "No message of this API key has this id (another key's messages and those sent with `lexbridge send` are not shown; `lexbridge outbox show ID` shows any)", body = ApiError),
        (status = 429, description = "The API key is over its requests per second (`rate_limited`; keys made with `api-key create --rate N`); every request of the key counts", body = ApiError, headers(("Retry-After" = u64, description = "Seconds until the key may send again"))),
    ),
    security(("api_key" = []))
)]
pub async fn status(
    ApiCaller(caller): ApiCaller,
    shared: web::Data<AppState>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiFailure> {
    let not_found = || {
        ApiFailure::refused(
            ErrorCode::NotFound,
            format!("no message has the id {:?}", id.as_str()),
        )
    };
    // No id holds a control character (and Postgres refuses NUL in text).
    if id.chars().any(char::is_control) {
        return Err(not_found());
    }
    let status = shared
        .store
        .message_status(&id, caller.key_id)
        .await?
        .ok_or_else(not_found)?;
    Ok(HttpResponse::Ok().json(StatusAnswer::from(status)))
}
