//! The Messenger emulator (`/sandbox/messenger`): a demo person's side of
//! the conversation. What they send becomes a signed webhook POST to the
//! service's real `/webhook` (signed here: the app secret never reaches the
//! browser); what the Page sends arrives from the stand-in Send API as
//! server-sent events.

use actix_web::http::StatusCode;
use actix_web::{web, HttpResponse};
use askama::Template;
use futures_util::stream;
use secrecy::ExposeSecret;
use serde::Deserialize;
use serde_json::{json, Value};
use std::time::Duration;
use tokio::sync::broadcast::error::RecvError;

use super::people::{self, PEOPLE};
use super::state::{mid, Entry, Sandbox};
use crate::routes::site::page;
use crate::store::now_ms;

/// A comment line this often keeps the event stream open through proxies.
const KEEP_ALIVE: Duration = Duration::from_secs(15);

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/sandbox/messenger", web::get().to(emulator))
        .route("/sandbox/messenger/history", web::get().to(history))
        .route("/sandbox/messenger/events", web::get().to(events))
        .route("/sandbox/messenger/send", web::post().to(send))
        .route("/sandbox/messenger/read", web::post().to(read))
        .route("/sandbox/messenger/hand-back", web::post().to(hand_back))
        .route("/sandbox/avatar/{psid}.svg", web::get().to(avatar));
}

#[derive(Deserialize)]
struct Pick {
    psid: Option<String>,
    /// `instagram`: the person's Instagram conversation with the Page's
    /// connected account.
    channel: Option<String>,
}

struct PersonView {
    psid: &'static str,
    name: String,
    selected: bool,
}

#[derive(Template)]
#[template(path = "sandbox/messenger.html")]
struct Emulator {
    people: Vec<PersonView>,
    /// The id the person has in this conversation (PSID, or IGSID).
    psid: String,
    /// The person's PSID, for the channel switch.
    messenger_psid: String,
    instagram: bool,
    name: String,
    page_name: String,
    api_key: String,
    public_url: String,
}

async fn emulator(query: web::Query<Pick>, sandbox: web::Data<Sandbox>) -> HttpResponse {
    let chosen = query
        .psid
        .as_deref()
        .and_then(people::by_psid)
        .unwrap_or(&PEOPLE[0]);
    let instagram = query.channel.as_deref() == Some("instagram");
    let view = Emulator {
        people: PEOPLE
            .iter()
            .map(|p| PersonView {
                psid: p.psid,
                name: p.name(),
                selected: p.psid == chosen.psid,
            })
            .collect(),
        psid: match instagram {
            true => chosen.igsid(),
            false => chosen.psid.to_string(),
        },
        messenger_psid: chosen.psid.to_string(),
        instagram,
        name: chosen.name(),
        page_name: sandbox.config.page_name.clone(),
        api_key: sandbox.config.api_key.expose_secret().to_string(),
        public_url: sandbox
            .config
            .public_url
            .as_str()
            .trim_end_matches('/')
            .to_string(),
    };
    page(StatusCode::OK, view.render())
}

#[derive(Deserialize)]
struct Of {
    psid: String,
}

/// A person's thread; empty for one who never wrote to the Page.
async fn history(query: web::Query<Of>, sandbox: web::Data<Sandbox>) -> HttpResponse {
    if people::by_id(&query.psid).is_none() {
        return HttpResponse::NotFound().json(json!({ "error": "no such demo person" }));
    }
    HttpResponse::Ok()
        .insert_header(("Cache-Control", "no-store"))
        .json(sandbox.thread(&query.psid).unwrap_or_default())
}

/// `text/event-stream` of one person's thread: messages, typing, seen.
async fn events(query: web::Query<Of>, sandbox: web::Data<Sandbox>) -> HttpResponse {
    if people::by_id(&query.psid).is_none() {
        return HttpResponse::NotFound().json(json!({ "error": "no such demo person" }));
    }
    let psid = query.psid.clone();
    let receiver = sandbox.subscribe();
    let stream = stream::unfold((receiver, psid), |(mut receiver, psid)| async move {
        loop {
            let line = match tokio::time::timeout(KEEP_ALIVE, receiver.recv()).await {
                Err(_) => ": keep-alive\n\n".to_string(),
                Ok(Ok(event)) if event.psid() == psid => {
                    let data = serde_json::to_string(&event).unwrap_or_default();
                    format!("data: {data}\n\n")
                }
                Ok(Ok(_)) => continue,
                // The page reloads the history when it hears this.
                Ok(Err(RecvError::Lagged(_))) => "data: {\"type\":\"lagged\"}\n\n".to_string(),
                Ok(Err(RecvError::Closed)) => return None,
            };
            return Some((
                Ok::<_, actix_web::Error>(web::Bytes::from(line)),
                (receiver, psid),
            ));
        }
    });
    HttpResponse::Ok()
        .content_type("text/event-stream")
        .insert_header(("Cache-Control", "no-store"))
        .insert_header(("X-Accel-Buffering", "no"))
        .streaming(stream)
}

/// What the person did: typed, tapped a quick reply, or pressed a button.
#[derive(Deserialize)]
struct Said {
    psid: String,
    #[serde(default)]
    text: Option<String>,
    #[serde(default)]
    quick_reply: Option<Choice>,
    #[serde(default)]
    postback: Option<Choice>,
}

#[derive(Deserialize)]
struct Choice {
    title: String,
    payload: String,
}

fn bad(message: &str) -> HttpResponse {
    HttpResponse::BadRequest().json(json!({ "error": message }))
}

/// The Messenger `message`/`postback` the person's action becomes.
fn words(said: &Said) -> Result<Value, &'static str> {
    let text = said.text.as_deref().map(str::trim).unwrap_or_default();
    match (&said.postback, &said.quick_reply) {
        (Some(p), None) if text.is_empty() => {
            Ok(json!({ "postback": { "title": p.title, "payload": p.payload } }))
        }
        (None, Some(q)) if text.is_empty() => {
            Ok(json!({ "text": q.title, "quick_reply": { "payload": q.payload } }))
        }
        (None, None) if text.is_empty() => Err("type a message first"),
        (None, None) if text.chars().count() > 2000 => Err("a message has at most 2000 characters"),
        (None, None) => Ok(json!({ "text": text })),
        _ => Err("send text, a quick reply or a postback"),
    }
}

async fn send(said: web::Json<Said>, sandbox: web::Data<Sandbox>) -> HttpResponse {
    let Some((_, instagram)) = people::by_id(&said.psid) else {
        return bad("no such demo person");
    };
    let message = match words(&said) {
        Ok(m) => m,
        Err(e) => return bad(e),
    };
    let now = now_ms();
    let entry = Entry {
        mid: mid(&said.psid, now),
        from: "person".into(),
        at: now,
        message,
        tag: None,
    };
    let mut event = sandbox.person_event(&said.psid, &entry);
    if instagram {
        event["recipient"]["id"] = json!(people::INSTAGRAM_ACCOUNT);
    }
    // While the Page's people own the thread, Meta sends the person's
    // words to the service as standby.
    let list = match sandbox.thread(&said.psid).and_then(|t| t.owner) {
        Some(_) => "standby",
        None => "messaging",
    };
    sandbox.record(&said.psid, entry.clone());
    let (object, entry_id) = match instagram {
        true => ("instagram", people::INSTAGRAM_ACCOUNT),
        false => ("page", sandbox.config.page_id.as_str()),
    };
    match sandbox
        .deliver_for(object, entry_id, list, vec![event], now)
        .await
    {
        Ok(200) => HttpResponse::Ok().json(json!({ "mid": entry.mid, "at": now })),
        Ok(status) => HttpResponse::BadGateway().json(
            json!({ "mid": entry.mid, "error": format!("the webhook answered HTTP {status}") }),
        ),
        Err(e) => HttpResponse::BadGateway().json(json!({ "mid": entry.mid, "error": e })),
    }
}

/// The emulator showed the Page's messages: Messenger's delivery and read
/// webhooks, as the person's app would cause them.
async fn read(of: web::Json<Of>, sandbox: web::Data<Sandbox>) -> HttpResponse {
    let Some((_, instagram)) = people::by_id(&of.psid) else {
        return bad("no such demo person");
    };
    let thread = sandbox.thread(&of.psid).unwrap_or_default();
    let now = now_ms();
    let mids: Vec<&str> = thread
        .entries
        .iter()
        .rev()
        .take_while(|e| e.from == "page")
        .map(|e| e.mid.as_str())
        .collect();
    if mids.is_empty() {
        return HttpResponse::Ok().json(json!({ "receipts": 0 }));
    }
    let who = |kind: &str, value: Value| {
        json!({ "sender": { "id": of.psid }, "recipient": { "id": sandbox.config.page_id },
                "timestamp": now, kind: value })
    };
    // Instagram has no delivery receipt; its read receipt names the message.
    let delivered = match instagram {
        true => {
            let mut read = who("read", json!({ "mid": mids[0] }));
            read["recipient"]["id"] = json!(people::INSTAGRAM_ACCOUNT);
            sandbox
                .deliver_for(
                    "instagram",
                    people::INSTAGRAM_ACCOUNT,
                    "messaging",
                    vec![read],
                    now,
                )
                .await
        }
        false => {
            let events = vec![
                who("delivery", json!({ "mids": mids, "watermark": now })),
                who("read", json!({ "watermark": now })),
            ];
            sandbox.deliver(events, now).await
        }
    };
    match delivered {
        Ok(200) => HttpResponse::Ok().json(json!({ "receipts": mids.len() })),
        Ok(status) => HttpResponse::BadGateway()
            .json(json!({ "error": format!("the webhook answered HTTP {status}") })),
        Err(e) => HttpResponse::BadGateway().json(json!({ "error": e })),
    }
}

/// The Page's people (the Page Inbox, in the emulator's stead) hand the
/// thread back to the bot: `pass_thread_control` to the service's app, and
/// its `messaging_handovers` webhook.
async fn hand_back(of: web::Json<Of>, sandbox: web::Data<Sandbox>) -> HttpResponse {
    let Some(thread) = sandbox.thread(&of.psid) else {
        return bad("no such demo person");
    };
    let Some(previous) = thread.owner else {
        return bad("the bot has this conversation already");
    };
    sandbox.set_owner(&of.psid, None);
    let now = now_ms();
    let event = json!({
        "sender": { "id": of.psid }, "recipient": { "id": sandbox.config.page_id },
        "timestamp": now,
        "pass_thread_control": {
            "previous_owner_app_id": previous,
            "new_owner_app_id": sandbox.config.app_id,
            "metadata": "handed back from the demo's Page Inbox",
        },
    });
    match sandbox.deliver(vec![event], now).await {
        Ok(200) => HttpResponse::Ok().json(json!({ "owner": null })),
        Ok(status) => HttpResponse::BadGateway()
            .json(json!({ "error": format!("the webhook answered HTTP {status}") })),
        Err(e) => HttpResponse::BadGateway().json(json!({ "error": e })),
    }
}

/// A profile picture: the person's initials on a colour of their own.
async fn avatar(path: web::Path<String>) -> HttpResponse {
    let Some((p, _)) = people::by_id(&path) else {
        return HttpResponse::NotFound().finish();
    };
    let hue = p
        .psid
        .bytes()
        .fold(0u32, |h, b| h.wrapping_mul(31).wrapping_add(u32::from(b)))
        % 360;
    let svg = format!(
        r##"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 64 64"><circle cx="32" cy="32" r="32" fill="hsl({hue},55%,48%)"/><text x="32" y="41" font-family="sans-serif" font-size="24" font-weight="600" text-anchor="middle" fill="#fff">{}</text></svg>"##,
        p.initials()
    );
    HttpResponse::Ok()
        .content_type("image/svg+xml")
        .insert_header(("Cache-Control", "public, max-age=3600"))
        .body(svg)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn said(text: Option<&str>, quick: bool, postback: bool) -> Said {
        let choice = || Choice {
            title: "Yes".into(),
            payload: "YES".into(),
        };
        Said {
            psid: "P".into(),
            text: text.map(str::to_string),
            quick_reply: quick.then(choice),
            postback: postback.then(choice),
        }
    }

    #[test]
    fn the_person_sends_exactly_one_thing() {
        assert_eq!(
            words(&said(Some(" hi "), false, false)).unwrap(),
            json!({"text": "hi"})
        );
        assert_eq!(
            words(&said(None, true, false)).unwrap(),
            json!({"text": "Yes", "quick_reply": {"payload": "YES"}})
        );
        assert_eq!(
            words(&said(None, false, true)).unwrap(),
            json!({"postback": {"title": "Yes", "payload": "YES"}})
        );
        assert!(words(&said(Some("  "), false, false)).is_err());
        assert!(words(&said(None, true, true)).is_err());
        assert!(words(&said(Some("hi"), true, false)).is_err());
        assert!(words(&said(Some(&"x".repeat(2001)), false, false)).is_err());
    }
}
