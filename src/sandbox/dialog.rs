//! The Facebook Login dialog's stand-in (`FACEBOOK_DIALOG_URL` points at
//! `/sandbox/facebook/`): it checks the app id, `response_type` and that
//! `redirect_uri` is the service's callback, lists the demo people, and
//! sends the browser back with a single-use code (or Meta's "denied").

use actix_web::http::{header, StatusCode};
use actix_web::{web, HttpResponse};
use askama::Template;
use serde::Deserialize;
use url::Url;

use super::people::{self, PEOPLE};
use super::state::Sandbox;
use crate::linking::oauth::redirect_uri;
use crate::routes::site::page;
use crate::store::now_ms;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route(
        r"/sandbox/facebook/{version:v[0-9]+\.[0-9]+}/dialog/oauth",
        web::get().to(dialog),
    )
    .route("/sandbox/facebook/dialog/choose", web::post().to(choose));
}

#[derive(Deserialize)]
struct DialogQuery {
    #[serde(default)]
    client_id: String,
    #[serde(default)]
    redirect_uri: String,
    #[serde(default)]
    response_type: String,
    #[serde(default)]
    state: String,
    #[serde(default)]
    scope: String,
}

#[derive(Deserialize)]
struct Choice {
    #[serde(default)]
    client_id: String,
    #[serde(default)]
    redirect_uri: String,
    #[serde(default)]
    state: String,
    /// A demo person's uid, or empty for "Cancel".
    #[serde(default)]
    uid: String,
}

struct Choosable {
    uid: &'static str,
    name: String,
    initials: String,
}

#[derive(Template)]
#[template(path = "sandbox/dialog.html")]
struct DialogPage {
    app_id: String,
    page_name: String,
    redirect_uri: String,
    state: String,
    scope: String,
    people: Vec<Choosable>,
}

#[derive(Template)]
#[template(path = "sandbox/dialog_error.html")]
struct DialogError<'a> {
    message: &'a str,
}

fn refused(message: &str) -> HttpResponse {
    page(StatusCode::BAD_REQUEST, DialogError { message }.render())
}

/// What Meta checks before it shows the dialog.
fn check(sandbox: &Sandbox, client_id: &str, redirect: &str) -> Result<Url, &'static str> {
    if client_id != sandbox.config.app_id {
        return Err("Invalid App ID: the app_id is not a valid app ID.");
    }
    let allowed = redirect_uri(&sandbox.config.public_url).map_err(|_| "URL blocked")?;
    match Url::parse(redirect) {
        Ok(url) if url == allowed => Ok(url),
        _ => Err("URL blocked: this redirect failed because the redirect URI is not whitelisted in the app's Client OAuth Settings."),
    }
}

async fn dialog(query: web::Query<DialogQuery>, sandbox: web::Data<Sandbox>) -> HttpResponse {
    if let Err(message) = check(&sandbox, &query.client_id, &query.redirect_uri) {
        return refused(message);
    }
    if query.response_type != "code" {
        return refused("This app asks for a response_type other than code.");
    }
    let dialog = DialogPage {
        app_id: sandbox.config.app_id.clone(),
        page_name: sandbox.config.page_name.clone(),
        redirect_uri: query.redirect_uri.clone(),
        state: query.state.clone(),
        scope: query.scope.clone(),
        people: PEOPLE
            .iter()
            .map(|p| Choosable {
                uid: p.uid,
                name: p.name(),
                initials: p.initials(),
            })
            .collect(),
    };
    page(StatusCode::OK, dialog.render())
}

async fn choose(form: web::Form<Choice>, sandbox: web::Data<Sandbox>) -> HttpResponse {
    let mut back = match check(&sandbox, &form.client_id, &form.redirect_uri) {
        Ok(url) => url,
        Err(message) => return refused(message),
    };
    {
        let mut query = back.query_pairs_mut();
        if form.uid.is_empty() {
            query
                .append_pair("error", "access_denied")
                .append_pair("error_code", "200")
                .append_pair("error_description", "Permissions error")
                .append_pair("error_reason", "user_denied");
        } else if people::by_uid(&form.uid).is_some() {
            let code = sandbox.issue_code(&form.uid, &form.redirect_uri, now_ms());
            query.append_pair("code", &code);
        } else {
            drop(query);
            return refused("There is no such demo person.");
        }
        query.append_pair("state", &form.state);
    }
    HttpResponse::Found()
        .insert_header((header::LOCATION, back.to_string()))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .finish()
}
