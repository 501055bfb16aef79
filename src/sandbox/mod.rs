//! Stand-ins for Meta, mounted only by `lexbridge demo`: the Graph API
//! calls the service makes, the Facebook Login dialog, a Messenger emulator,
//! an operator view and a fulfillment backend. The service reaches them
//! through its ordinary clients over HTTP (`GRAPH_API_URL`,
//! `FACEBOOK_DIALOG_URL`, `FULFILLMENT_URL` point at itself).

pub mod dialog;
pub mod error;
pub mod fulfillment;
pub mod graph;
pub mod messenger;
pub mod mme;
pub mod ops;
pub mod people;
pub mod profile;
pub mod send;
pub mod state;
pub mod tokens;

use actix_web::{web, HttpResponse};
use std::sync::Arc;

pub use state::{Sandbox, SandboxConfig};

const STYLESHEET: &str = include_str!("../../static/sandbox/sandbox.css");
const SCRIPT: &str = include_str!("../../static/sandbox/messenger.js");
const CAR: &str = include_str!("../../static/sandbox/car.svg");

/// The routes of the stand-ins, for `startup::Options::routes`.
pub fn routes(sandbox: Arc<Sandbox>) -> crate::startup::ExtraRoutes {
    let data = web::Data::from(sandbox);
    Arc::new(move |cfg: &mut web::ServiceConfig| {
        cfg.app_data(data.clone())
            .route(
                "/sandbox/static/sandbox.css",
                web::get().to(|| asset("text/css; charset=utf-8", STYLESHEET)),
            )
            .route(
                "/sandbox/static/messenger.js",
                web::get().to(|| asset("text/javascript; charset=utf-8", SCRIPT)),
            )
            .route(
                "/sandbox/static/car.svg",
                web::get().to(|| asset("image/svg+xml", CAR)),
            );
        dialog::configure(cfg);
        messenger::configure(cfg);
        mme::configure(cfg);
        ops::configure(cfg);
        fulfillment::configure(cfg);
        // Last: `/{version}/…` would match little else, but keep it so.
        graph::configure(cfg);
    })
}

async fn asset(content_type: &'static str, body: &'static str) -> HttpResponse {
    HttpResponse::Ok()
        .content_type(content_type)
        .insert_header(("Cache-Control", "no-cache"))
        .body(body)
}
