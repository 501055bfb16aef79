//! The API key check as an extractor: a handler that takes `ApiCaller`
//! runs only for a known, unrevoked key within its rate.

use std::future::Future;
use std::pin::Pin;

use actix_web::dev::Payload;
use actix_web::http::header::AUTHORIZATION;
use actix_web::{web, FromRequest, HttpRequest};

use super::error::ApiFailure;
use crate::outbound::answer::{ApiError, ErrorCode};
use crate::outbound::keys::Caller;
use crate::state::AppState;

/// The backend an API request comes from.
pub struct ApiCaller(pub Caller);

impl FromRequest for ApiCaller {
    type Error = ApiFailure;
    type Future = Pin<Box<dyn Future<Output = Result<ApiCaller, ApiFailure>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move {
            let shared = req
                .app_data::<web::Data<AppState>>()
                .ok_or_else(|| anyhow::anyhow!("the application state is not configured"))?;
            let header = req
                .headers()
                .get(AUTHORIZATION)
                .and_then(|v| v.to_str().ok());
            let caller = shared
                .api_keys
                .authenticate(&shared.store, &shared.writer, header)
                .await?
                .map_err(|refusal| {
                    ApiFailure::refused(ErrorCode::Unauthorized, refusal.message())
                })?;
            shared
                .api_keys
                .admit(&caller)
                .map_err(|wait| ApiFailure::RateLimited {
                    error: rate_limited(&caller),
                    wait,
                })?;
            Ok(ApiCaller(caller))
        })
    }
}

/// The refusal of a key over its `--rate`.
fn rate_limited(caller: &Caller) -> ApiError {
    let rate = caller.scope.rate_per_second.unwrap_or_default();
    ApiError::new(
        ErrorCode::RateLimited,
        format!(
            "API key {:?} is limited to {rate} request(s) per second; retry after the seconds \
             Retry-After gives",
            caller.name
        ),
    )
}
