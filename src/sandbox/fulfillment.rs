//! The demo's fulfillment backend (`FULFILLMENT_URL` points here): it checks
//! the request's signature, then answers the vehicle assistant's intents from
//! the linked account's own car, or asks an unlinked person to sign in.

use actix_web::{web, HttpRequest, HttpResponse};
use secrecy::ExposeSecret;
use serde::Deserialize;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::Mutex;
use tracing::warn;

use super::state::Sandbox;
use crate::facebook::signature::verify_signature;
use crate::nlu::fulfillment::SIGNATURE_HEADER;
use crate::nlu::NluMessage;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.app_data(web::Data::new(Garage::default()))
        .route("/sandbox/fulfillment", web::post().to(fulfil));
}

/// One account's car, as the operator's systems know it.
#[derive(Debug, Clone, PartialEq)]
pub struct Car {
    pub model: &'static str,
    pub locked: bool,
    pub battery: u8,
    pub parked_at: &'static str,
}

/// How long the car takes to answer.
const CAR_LATENCY: std::time::Duration = std::time::Duration::from_millis(700);

const MODELS: [&str; 3] = ["Volta E3", "Kestrel GT", "Aurora Tourer"];
const PLACES: [&str; 3] = ["Home", "the office", "Main Street"];

impl Car {
    /// Every account starts with a car of its own, from its id.
    fn of(account_id: &str) -> Car {
        let seed = account_id
            .bytes()
            .fold(7u32, |h, b| h.wrapping_mul(31).wrapping_add(u32::from(b)));
        Car {
            model: MODELS[seed as usize % MODELS.len()],
            locked: seed % 2 == 0,
            battery: 55 + (seed / 7 % 45) as u8,
            parked_at: PLACES[(seed / 3) as usize % PLACES.len()],
        }
    }
}

#[derive(Default)]
pub struct Garage {
    cars: Mutex<HashMap<String, Car>>,
}

/// What the service sends (unknown fields are ignored: the body grows).
#[derive(Deserialize)]
struct Request {
    intent: String,
    #[serde(default)]
    slots: Value,
    #[serde(default)]
    account: Option<Account>,
}

#[derive(Deserialize)]
struct Account {
    id: String,
    #[serde(default)]
    name: Option<String>,
}

async fn fulfil(
    req: HttpRequest,
    body: web::Bytes,
    sandbox: web::Data<Sandbox>,
    garage: web::Data<Garage>,
) -> HttpResponse {
    let signature = req
        .headers()
        .get(SIGNATURE_HEADER)
        .and_then(|v| v.to_str().ok());
    let secret = sandbox.config.fulfillment_secret.expose_secret().as_bytes();
    if let Err(e) = verify_signature(secret, &body, signature) {
        warn!(reason = %e, "demo fulfillment refused a request");
        return HttpResponse::Unauthorized().json(json!({ "error": e.to_string() }));
    }
    let request: Request = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => return HttpResponse::BadRequest().json(json!({ "error": e.to_string() })),
    };
    // The engine asks about every intent; for those that are not about the
    // car, no messages means "use the bot's own responses".
    let about_the_car = matches!(
        request.intent.as_str(),
        "CheckStatus" | "LockDoors" | "SetGeofence"
    );
    if about_the_car && request.account.is_some() {
        // Reaching a car takes a moment (long enough for Messenger's typing
        // bubble to show).
        tokio::time::sleep(CAR_LATENCY).await;
    }
    let messages = match &request.account {
        _ if !about_the_car => Vec::new(),
        None => sign_in_first(&sandbox),
        Some(account) => {
            let mut cars = garage.cars.lock().expect("garage");
            let car = cars
                .entry(account.id.clone())
                .or_insert_with(|| Car::of(&account.id));
            answer(&request, account, car, &sandbox)
        }
    };
    HttpResponse::Ok().json(json!({ "messages": messages }))
}

fn slot(slots: &Value, name: &str) -> Option<String> {
    let value = slots.get(name)?;
    value
        .get("interpreted_value")
        .or_else(|| value.pointer("/value/interpretedValue"))
        .or(Some(value))
        .and_then(Value::as_str)
        .map(str::to_string)
}

fn first_name(account: &Account) -> String {
    account
        .name
        .as_deref()
        .and_then(|n| n.split_whitespace().next())
        .unwrap_or("there")
        .to_string()
}

fn status(car: &Car) -> String {
    format!(
        "your car is {}, battery {}%",
        if car.locked { "locked" } else { "unlocked" },
        car.battery
    )
}

fn answer(
    request: &Request,
    account: &Account,
    car: &mut Car,
    sandbox: &Sandbox,
) -> Vec<NluMessage> {
    let name = first_name(account);
    match request.intent.as_str() {
        "CheckStatus" => vec![
            NluMessage::PlainText(format!("{name}, {}.", status(car))),
            NluMessage::CustomPayload(card(car, sandbox).to_string()),
        ],
        "LockDoors" if car.locked => vec![NluMessage::PlainText(format!(
            "All doors were already locked, {name}. Battery {}%.",
            car.battery
        ))],
        "LockDoors" => {
            car.locked = true;
            vec![NluMessage::PlainText(format!(
                "Done, {name}: your {} is locked now.",
                car.model
            ))]
        }
        "SetGeofence" => {
            let radius = slot(&request.slots, "radius").unwrap_or_else(|| "500".into());
            let place = slot(&request.slots, "place").unwrap_or_else(|| car.parked_at.into());
            vec![NluMessage::PlainText(format!(
                "Geofence saved, {name}: I'll tell you if your {} goes more than {radius} m from {place}.",
                car.model
            ))]
        }
        _ => Vec::new(),
    }
}

/// A generic card with the car's picture, its state and two buttons.
fn card(car: &Car, sandbox: &Sandbox) -> Value {
    let base = sandbox.config.public_url.as_str().trim_end_matches('/');
    let mut buttons =
        vec![json!({"type": "web_url", "title": "Your account", "url": format!("{base}/account")})];
    if !car.locked {
        buttons.insert(
            0,
            json!({"type": "postback", "title": "Lock the doors", "payload": "lock the doors"}),
        );
    }
    json!({ "attachment": { "type": "template", "payload": { "template_type": "generic", "elements": [{
        "title": car.model,
        "subtitle": format!("{} · battery {}% · at {}", if car.locked { "Locked" } else { "Unlocked" }, car.battery, car.parked_at),
        "image_url": format!("{base}/sandbox/static/car.svg"),
        "buttons": buttons,
    }]}}})
}

/// An unlinked person: a button to the login site.
fn sign_in_first(sandbox: &Sandbox) -> Vec<NluMessage> {
    let base = sandbox.config.public_url.as_str().trim_end_matches('/');
    let message = json!({ "attachment": { "type": "template", "payload": {
        "template_type": "button",
        "text": "I don't know whose car this is yet. Sign in on our website to link your Messenger, then ask me again.",
        "buttons": [{ "type": "web_url", "title": "Sign in", "url": format!("{base}/") }],
    }}});
    vec![NluMessage::CustomPayload(message.to_string())]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_account_has_its_own_car_and_it_stays_the_same() {
        let a = Car::of("acc-1");
        assert_eq!(a, Car::of("acc-1"));
        assert!((55..100).contains(&a.battery));
        let differs = (0..20).any(|i| Car::of(&format!("acc-{i}")) != a);
        assert!(differs);
    }

    #[test]
    fn slots_are_read_in_either_shape() {
        let slots = json!({"radius": {"interpreted_value": "200"}, "place": {"value": {"interpretedValue": "home"}}});
        assert_eq!(slot(&slots, "radius").as_deref(), Some("200"));
        assert_eq!(slot(&slots, "place").as_deref(), Some("home"));
        assert_eq!(slot(&slots, "other"), None);
    }
}
