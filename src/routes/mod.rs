//! HTTP routes. Routes store and answer; they never call Meta or the NLU,
//! except the login callback, whose Graph calls are the login itself.

pub mod account;
pub mod api;
pub mod auth;
pub mod data_deletion;
pub mod health;
pub mod pending;
pub mod session;
pub mod signed_in;
pub mod site;
pub mod site_error;
pub mod webhook;

use actix_web::web;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(webhook::verify)
        .service(webhook::receive)
        .service(health::health)
        .service(health::healthz)
        .service(health::readyz)
        .service(health::metrics)
        .service(site::home)
        .service(site::stylesheet)
        .service(auth::login)
        .service(auth::callback)
        .service(auth::messenger_link)
        .service(auth::sign_out)
        .service(account::account)
        .service(account::unlink)
        .service(account::unlink_one)
        .service(pending::confirm)
        .service(pending::decline)
        .service(data_deletion::request)
        .service(data_deletion::status)
        .configure(api::configure);
}
