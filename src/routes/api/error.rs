//! The API's error type: what a handler of `/api/v1` returns when it does
//! not answer, turned into the JSON refusal and its status here.

use std::time::Duration;

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use tracing::error;

use crate::outbound::answer::{ApiError, ErrorCode, Outcome};
use crate::outbound::key_rates::retry_after_secs;

/// `outcome`'s status as actix-web's type.
fn status_of(outcome: Outcome) -> StatusCode {
    StatusCode::from_u16(outcome.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
}

/// A refused or failed API request.
#[derive(Debug, thiserror::Error)]
pub enum ApiFailure {
    /// A refusal with its code and sentence (401, 404, 413, …).
    #[error("{}", .0.message)]
    Refused(ApiError),
    /// 429: the key is over its `--rate`; retry after `wait`.
    #[error("{}", .error.message)]
    RateLimited { error: ApiError, wait: Duration },
    /// 500: logged with its cause; the caller is told only to retry.
    #[error("{0:#}")]
    Internal(#[from] anyhow::Error),
}

impl ApiFailure {
    pub fn refused(code: ErrorCode, message: impl Into<String>) -> ApiFailure {
        ApiFailure::Refused(ApiError::new(code, message))
    }
}

impl ResponseError for ApiFailure {
    fn status_code(&self) -> StatusCode {
        match self {
            ApiFailure::Refused(e) => status_of(Outcome::Refused(e.error)),
            ApiFailure::RateLimited { .. } => status_of(Outcome::Refused(ErrorCode::RateLimited)),
            ApiFailure::Internal(_) => status_of(Outcome::Refused(ErrorCode::Internal)),
        }
    }

    fn error_response(&self) -> HttpResponse {
        let mut response = HttpResponse::build(self.status_code());
        match self {
            ApiFailure::Refused(e) => {
                if e.error == ErrorCode::Unauthorized {
                    response.insert_header(("WWW-Authenticate", "Bearer"));
                }
                response.json(e)
            }
            ApiFailure::RateLimited { error, wait } => response
                .insert_header(("Retry-After", retry_after_secs(*wait).to_string()))
                .json(error),
            ApiFailure::Internal(e) => {
                error!(error = %format!("{e:#}"), "an API request failed");
                response.json(ApiError::new(
                    ErrorCode::Internal,
                    "the request could not be completed; it is safe to retry with the same \
                     Idempotency-Key",
                ))
            }
        }
    }
}
