//! Logging: `tracing` with an env filter (`RUST_LOG`), JSON when stderr is
//! not a terminal. Secrets are never fields of any event.

use std::io::IsTerminal;
use tracing_subscriber::EnvFilter;

pub fn init(default_filter: &str) {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_filter));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = if std::io::stderr().is_terminal() {
        builder.try_init()
    } else {
        builder.json().try_init()
    };
}

/// Request spans as tracing-actix-web's default, except that the query
/// values that are credentials (OAuth codes and states, account-linking
/// tokens, the webhook verify token, link tokens) are never recorded.
pub struct RedactedRootSpan;

/// Query parameters whose values never reach a log.
const SECRET_PARAMS: &[&str] = &[
    "code",
    "state",
    "account_linking_token",
    "authorization_code",
    "access_token",
    // debug_token's token under inspection, and the proof of a Graph call
    // (logged when the demo serves its stand-in Graph routes).
    "input_token",
    "appsecret_proof",
    // The long-lived token exchange's app secret and short-lived token
    // (logged when the demo serves its stand-in Graph routes).
    "client_secret",
    "fb_exchange_token",
    "hub.verify_token",
    "ref",
    "redirect_uri",
    // A data-deletion confirmation code (its status page).
    "id",
];

impl tracing_actix_web::RootSpanBuilder for RedactedRootSpan {
    fn on_request_start(request: &actix_web::dev::ServiceRequest) -> tracing::Span {
        use actix_web::HttpMessage;
        let route = request
            .match_pattern()
            .unwrap_or_else(|| "default".to_string());
        let request_id = request
            .extensions()
            .get::<tracing_actix_web::RequestId>()
            .map(|id| id.to_string())
            .unwrap_or_default();
        let method = request.method().clone();
        tracing::info_span!(
            "HTTP request",
            http.method = %method,
            http.route = %route,
            http.target = %redacted_target(request.uri()),
            http.status_code = tracing::field::Empty,
            otel.name = %format!("{method} {route}"),
            otel.kind = "server",
            otel.status_code = tracing::field::Empty,
            request_id = %request_id,
            exception.message = tracing::field::Empty,
            exception.details = tracing::field::Empty,
        )
    }

    fn on_request_end<B: actix_web::body::MessageBody>(
        span: tracing::Span,
        outcome: &Result<actix_web::dev::ServiceResponse<B>, actix_web::Error>,
    ) {
        tracing_actix_web::DefaultRootSpanBuilder::on_request_end(span, outcome);
    }
}

/// The path and query of `uri` with secret values replaced.
pub fn redacted_target(uri: &actix_web::http::Uri) -> String {
    let Some(query) = uri.query() else {
        return uri.path().to_string();
    };
    let pairs: Vec<String> = query
        .split('&')
        .map(|pair| match pair.split_once('=') {
            // The name as the handlers read it (`%63ode` and `code` alike).
            Some((key, _)) if is_secret(key) => format!("{key}=[redacted]"),
            _ => pair.to_string(),
        })
        .collect();
    format!("{}?{}", uri.path(), pairs.join("&"))
}

/// Whether the query parameter named `key` (as written in the URL) is one
/// of `SECRET_PARAMS` once decoded.
fn is_secret(key: &str) -> bool {
    url::form_urlencoded::parse(key.as_bytes())
        .next()
        .is_some_and(|(name, _)| SECRET_PARAMS.contains(&name.as_ref()))
}

#[cfg(test)]
mod tests {
    /// `target` (a path and query) as the request log records it.
    fn redacted(target: &str) -> String {
        super::redacted_target(&target.parse().expect("a path and query"))
    }

    #[test]
    fn the_token_exchange_secrets_are_redacted() {
        assert_eq!(redacted("/v25.0/oauth/access_token?grant_type=fb_exchange_token&client_id=1&client_secret=s3&fb_exchange_token=t0"), "/v25.0/oauth/access_token?grant_type=fb_exchange_token&client_id=1&client_secret=[redacted]&fb_exchange_token=[redacted]");
    }

    #[test]
    fn a_percent_encoded_name_is_redacted_too() {
        assert_eq!(redacted("/auth/facebook/callback?%63ode=abc&access%5Ftoken=t0k&st%61te=x&other=1"), "/auth/facebook/callback?%63ode=[redacted]&access%5Ftoken=[redacted]&st%61te=[redacted]&other=1");
    }

    #[test]
    fn credentials_in_the_query_are_redacted() {
        assert_eq!(
            redacted("/auth/facebook/callback?code=abc&state=xyz&error=access_denied"),
            "/auth/facebook/callback?code=[redacted]&state=[redacted]&error=access_denied"
        );
        assert_eq!(
            redacted("/webhook?hub.mode=subscribe&hub.verify_token=s&hub.challenge=1"),
            "/webhook?hub.mode=subscribe&hub.verify_token=[redacted]&hub.challenge=1"
        );
        assert_eq!(redacted("/debug_token?input_token=t0k&access_token=1%7Cs&appsecret_proof=ab12"), "/debug_token?input_token=[redacted]&access_token=[redacted]&appsecret_proof=[redacted]");
        assert_eq!(
            redacted("/facebook/data-deletion/status?id=0123abcd"),
            "/facebook/data-deletion/status?id=[redacted]"
        );
        assert_eq!(redacted("/health"), "/health");
    }
}
