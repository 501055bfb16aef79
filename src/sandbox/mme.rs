//! m.me links (`MESSENGER_LINK_URL` points at `/sandbox/m.me/`): the person
//! opening one picks who they are on Messenger, and Meta's `referral`
//! webhook (`SHORTLINK`, `OPEN_THREAD`, with the link's `ref`) goes to the
//! service before the emulator opens their thread.

use actix_web::http::{header, StatusCode};
use actix_web::{web, HttpResponse};
use askama::Template;
use serde::Deserialize;
use serde_json::json;

use super::people::{self, PEOPLE};
use super::state::Sandbox;
use crate::routes::site::page;
use crate::store::now_ms;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/sandbox/m.me/{page}", web::get().to(open))
        .route("/sandbox/m.me/{page}", web::post().to(opened));
}

#[derive(Deserialize)]
struct Link {
    #[serde(default, rename = "ref")]
    reference: String,
}

#[derive(Deserialize)]
struct Opened {
    #[serde(default, rename = "ref")]
    reference: String,
    #[serde(default)]
    psid: String,
}

struct Choosable {
    psid: &'static str,
    name: String,
}

#[derive(Template)]
#[template(path = "sandbox/mme.html")]
struct OpenAs {
    page_id: String,
    page_name: String,
    reference: String,
    people: Vec<Choosable>,
}

#[derive(Template)]
#[template(path = "sandbox/dialog_error.html")]
struct NotFound<'a> {
    message: &'a str,
}

fn unknown_page() -> HttpResponse {
    let message = "This Page isn't available on Messenger.";
    page(StatusCode::NOT_FOUND, NotFound { message }.render())
}

async fn open(
    path: web::Path<String>,
    link: web::Query<Link>,
    sandbox: web::Data<Sandbox>,
) -> HttpResponse {
    if *path != sandbox.config.page_id {
        return unknown_page();
    }
    let view = OpenAs {
        page_id: sandbox.config.page_id.clone(),
        page_name: sandbox.config.page_name.clone(),
        reference: link.reference.clone(),
        people: PEOPLE
            .iter()
            .map(|p| Choosable {
                psid: p.psid,
                name: p.name(),
            })
            .collect(),
    };
    page(StatusCode::OK, view.render())
}

async fn opened(
    path: web::Path<String>,
    form: web::Form<Opened>,
    sandbox: web::Data<Sandbox>,
) -> HttpResponse {
    if *path != sandbox.config.page_id {
        return unknown_page();
    }
    if people::by_psid(&form.psid).is_none() {
        return HttpResponse::BadRequest().json(json!({ "error": "no such demo person" }));
    }
    let now = now_ms();
    if !form.reference.is_empty() {
        // Opening the thread from a link is the person's own action: the
        // Page may answer it.
        sandbox.touch(&form.psid, now);
        let event = json!({
            "sender": { "id": form.psid },
            "recipient": { "id": sandbox.config.page_id },
            "timestamp": now,
            "referral": { "ref": form.reference, "source": "SHORTLINK", "type": "OPEN_THREAD" },
        });
        match sandbox.deliver(vec![event], now).await {
            Ok(200) => {}
            Ok(status) => {
                return HttpResponse::BadGateway()
                    .json(json!({ "error": format!("the webhook answered HTTP {status}") }))
            }
            Err(e) => return HttpResponse::BadGateway().json(json!({ "error": e })),
        }
    }
    HttpResponse::SeeOther()
        .insert_header((
            header::LOCATION,
            format!("/sandbox/messenger?psid={}", form.psid),
        ))
        .finish()
}
