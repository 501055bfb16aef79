//! The login site's pages: templates and the stylesheet (the error page is
//! `site_error`).

use actix_web::http::header::{self, ContentType};
use actix_web::http::StatusCode;
use actix_web::{get, web, HttpRequest, HttpResponse, HttpResponseBuilder};
use askama::Template;
use tracing::error;

use super::session::SessionCookies;

const STYLESHEET: &str = include_str!("../../static/site.css");

#[derive(Template)]
#[template(path = "home.html")]
struct Home {
    signed_in: bool,
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
