//! The login site's pages: templates, the stylesheet and the error page.

use actix_web::http::header::{self, ContentType};
use actix_web::http::StatusCode;
use actix_web::{get, web, HttpRequest, HttpResponse, HttpResponseBuilder};
use askama::Template;
use tracing::{error, warn};

use super::session::{Session, SessionCookies};
use crate::linking::LoginError;

const STYLESHEET: &str = include_str!("../../static/site.css");

#[derive(Template)]
#[template(path = "home.html")]
struct Home {
    signed_in: bool,
}

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage<'a> {
    heading: &'a str,
    message: &'a str,
}

/// Pages are never cached: they show who is signed in.
pub fn page(status: StatusCode, body: askama::Result<String>) -> HttpResponse {
    match body {
        Ok(html) => HttpResponseBuilder::new(status)
            .content_type(ContentType::html())
            .insert_header((header::CACHE_CONTROL, "no-store"))
            .insert_header(("X-Frame-Options", "DENY"))
            .insert_header((
                "Content-Security-Policy",
                // Profile pictures come from Meta's CDN; a decision on a
                // link from Messenger's Log in button goes back to Messenger.
                "default-src 'self'; img-src 'self' https:; frame-ancestors 'none'; \
                 form-action 'self' https://www.facebook.com https://facebook.com \
                 https://m.facebook.com https://www.messenger.com",
            ))
            .body(html),
        Err(e) => {
            error!(error = %e, "a page template failed");
            HttpResponse::InternalServerError()
                .content_type(ContentType::plaintext())
                .body("Something went wrong on our side.")
        }
    }
}

/// The error page for `err`, logged once with its cause (never a token).
pub fn error_page(err: &LoginError) -> HttpResponse {
    let status = StatusCode::from_u16(err.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
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

/// The error page, with the session cookie rewritten (a spent login state
/// must not stay in the browser).
pub fn error_page_with(
    err: &LoginError,
    cookies: &SessionCookies,
    session: &Session,
) -> HttpResponse {
    let mut response = error_page(err);
    if let Err(e) = response.add_cookie(&cookies.cookie(session)) {
        warn!(error = %e, "the session cookie could not be set");
    }
    response
}

#[get("/")]
pub async fn home(req: HttpRequest, cookies: web::Data<SessionCookies>) -> HttpResponse {
    let session = cookies.read(&req).await;
    page(
        StatusCode::OK,
        Home {
            signed_in: session.account_id.is_some(),
        }
        .render(),
    )
}

#[get("/static/site.css")]
pub async fn stylesheet() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/css; charset=utf-8")
        .insert_header((header::CACHE_CONTROL, "public, max-age=3600"))
        .body(STYLESHEET)
}
