//! The login site's one error type: every page handler returns
//! `Result<HttpResponse, SiteError>`, and this is where a failure becomes an
//! HTTP status and the error page (or, signed out, a way back home).

use actix_web::cookie::Cookie;
use actix_web::http::{header, StatusCode};
use actix_web::{HttpResponse, ResponseError};
use askama::Template;
use tracing::{error, warn};

use super::site::page;
use crate::linking::LoginError;

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage<'a> {
    heading: &'a str,
    message: &'a str,
}

/// Why a page of the login site is not the page asked for.
#[derive(Debug, thiserror::Error)]
pub enum SiteError {
    /// The page is for a signed-in account: back to the home page.
    #[error("not signed in")]
    SignedOut,
    /// The error page that names the problem.
    #[error(transparent)]
    Login(#[from] LoginError),
    /// A form body that could not be read (actix-web's own answer).
    #[error("the form could not be read: {0}")]
    Form(actix_web::Error),
    /// The error page, rewriting the session cookie too (a spent login
    /// state must not stay in the browser).
    #[error("{0}")]
    LoginWithCookie(LoginError, SessionCookie),
}

/// The session cookie an error page sets. Its value is the encrypted
/// session, which replays as the session: debug output names it only.
pub struct SessionCookie(pub Box<Cookie<'static>>);

impl std::fmt::Debug for SessionCookie {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<session cookie>")
    }
}

impl From<anyhow::Error> for SiteError {
    fn from(e: anyhow::Error) -> SiteError {
        SiteError::Login(LoginError::Internal(e))
    }
}

/// The HTTP status of each login failure.
fn login_status(err: &LoginError) -> StatusCode {
    match err {
        LoginError::Denied | LoginError::FormExpired => StatusCode::FORBIDDEN,
        LoginError::StateMismatch
        | LoginError::StateExpired
        | LoginError::StateReplayed
        | LoginError::MissingCode
        | LoginError::BadLinkRequest(_) => StatusCode::BAD_REQUEST,
        LoginError::PendingGone | LoginError::NoSuchLink => StatusCode::NOT_FOUND,
        LoginError::Graph { error, .. } if error.http_status.is_none() => {
            StatusCode::GATEWAY_TIMEOUT
        }
        LoginError::Graph { .. } => StatusCode::BAD_GATEWAY,
        LoginError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// A `303 See Other` to `to`, never cached.
pub fn see_other(to: &str) -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header((header::LOCATION, to))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .finish()
}

/// The error page for `err`, logged once with its cause (never a token).
fn error_page(err: &LoginError) -> HttpResponse {
    let status = login_status(err);
    if status.is_server_error() {
        error!(error = %err, status = status.as_u16(), "login failed");
    } else {
        warn!(error = %err, status = status.as_u16(), "login refused");
    }
    let (heading, message) = err.explain();
    page(
        status,
        ErrorPage {
            heading,
            message: &message,
        }
        .render(),
    )
}

impl ResponseError for SiteError {
    fn status_code(&self) -> StatusCode {
        match self {
            SiteError::SignedOut => StatusCode::SEE_OTHER,
            SiteError::Form(e) => e.as_response_error().status_code(),
            SiteError::Login(e) | SiteError::LoginWithCookie(e, _) => login_status(e),
        }
    }

    fn error_response(&self) -> HttpResponse {
        match self {
            SiteError::SignedOut => see_other("/"),
            SiteError::Form(e) => e.error_response(),
            SiteError::Login(e) => error_page(e),
            SiteError::LoginWithCookie(e, SessionCookie(cookie)) => {
                let mut response = error_page(e);
                if let Err(e) = response.add_cookie(cookie) {
                    warn!(error = %e, "the session cookie could not be set");
                }
                response
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::facebook::GraphError;

    #[test]
    fn each_failure_has_its_status() {
        let graph = |http_status| LoginError::Graph {
            step: "me",
            error: GraphError {
                http_status,
                ..GraphError::default()
            },
        };
        for (err, status) in [
            (SiteError::SignedOut, 303),
            (LoginError::Denied.into(), 403),
            (LoginError::FormExpired.into(), 403),
            (LoginError::StateReplayed.into(), 400),
            (LoginError::PendingGone.into(), 404),
            (graph(None).into(), 504),
            (graph(Some(500)).into(), 502),
            (anyhow::anyhow!("disk").into(), 500),
        ] {
            assert_eq!(err.status_code().as_u16(), status, "{err}");
            assert_eq!(err.error_response().status().as_u16(), status, "{err}");
        }
        let home = SiteError::SignedOut.error_response();
        assert_eq!(home.headers().get(header::LOCATION).unwrap(), "/");
    }

    #[test]
    fn a_failed_login_rewrites_the_cookie_and_never_shows_it() {
        let cookie = Cookie::new("lexbridge_session", "encrypted-session-value");
        let err =
            SiteError::LoginWithCookie(LoginError::StateMismatch, SessionCookie(Box::new(cookie)));
        let response = err.error_response();
        assert_eq!(response.status().as_u16(), 400);
        let set = response
            .headers()
            .get(header::SET_COOKIE)
            .expect("a Set-Cookie");
        assert!(set.to_str().unwrap().contains("encrypted-session-value"));
        let shown = format!("{err:?} {err}");
        assert!(!shown.contains("encrypted-session-value"), "{shown}");
    }
}
