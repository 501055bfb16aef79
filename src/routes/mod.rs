//! HTTP routes. Routes store and answer; they never call Meta or the NLU.

pub mod health;
pub mod webhook;

use actix_web::web;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(webhook::verify)
        .service(webhook::receive)
        .service(health::health)
        .service(health::metrics);
}
