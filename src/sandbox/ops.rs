//! The operator view (`/sandbox/ops`): the links, the newest events and the
//! outbox with each message's state, read from the service's database.

use actix_web::http::StatusCode;
use actix_web::{web, HttpResponse};
use askama::Template;

use crate::linking::utc;
use crate::routes::site::page;
use crate::state::AppState;

/// Rows of each table shown.
const ROWS: i64 = 40;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/sandbox/ops", web::get().to(ops));
}

struct LinkRow {
    account: String,
    name: String,
    psid: String,
    source: String,
    linked_at: String,
}

struct EventRow {
    id: i64,
    psid: String,
    who: &'static str,
    kind: String,
    state: String,
    outcome: String,
}

struct MessageRow {
    id: i64,
    psid: String,
    who: &'static str,
    origin: String,
    what: String,
    delivery: String,
    state: String,
    error: String,
    created_at: String,
}

#[derive(Template)]
#[template(path = "sandbox/ops.html")]
struct Ops {
    links: Vec<LinkRow>,
    events: Vec<EventRow>,
    messages: Vec<MessageRow>,
}

async fn ops(shared: web::Data<AppState>) -> HttpResponse {
    match view(&shared).await {
        Ok(view) => page(StatusCode::OK, view.render()),
        Err(e) => {
            tracing::error!(error = %format!("{e:#}"), "the operator view failed");
            HttpResponse::InternalServerError().body("the database could not be read")
        }
    }
}

/// The demo person's first name behind a PSID.
fn who(psid: &str) -> &'static str {
    super::people::by_psid(psid).map_or("", |p| p.first_name)
}

/// A short description of a stored Send API body.
fn what(body: &str) -> String {
    let value: serde_json::Value = serde_json::from_str(body).unwrap_or_default();
    if let Some(action) = value.get("sender_action").and_then(|a| a.as_str()) {
        return action.to_string();
    }
    let message = value.get("message").unwrap_or(&value);
    let text = message.get("text").and_then(|t| t.as_str()).or_else(|| {
        message
            .pointer("/attachment/payload/text")
            .or_else(|| message.pointer("/attachment/payload/elements/0/title"))
            .and_then(|t| t.as_str())
    });
    let mut shown: String = text.unwrap_or("(attachment)").chars().take(70).collect();
    if text.is_some_and(|t| t.chars().count() > 70) {
        shown.push('…');
    }
    shown
}

async fn view(shared: &AppState) -> anyhow::Result<Ops> {
    let store = &shared.store;
    let mut links = Vec::new();
    for account in store.accounts().await? {
        for link in store.links_for_account(&account.id).await? {
            links.push(LinkRow {
                account: account.id.clone(),
                name: account.name.clone().unwrap_or_default(),
                psid: link.psid,
                source: link.source,
                linked_at: utc(link.linked_at),
            });
        }
    }
    let events = store
        .recent_inbox(ROWS)
        .await?
        .into_iter()
        .map(|r| EventRow {
            id: r.id,
            who: who(&r.psid),
            psid: r.psid,
            kind: r.kind,
            state: r.state,
            outcome: r.outcome.or(r.last_error).unwrap_or_default(),
        })
        .collect();
    let messages = store
        .recent_outbox(ROWS)
        .await?
        .into_iter()
        .map(|r| MessageRow {
            id: r.id,
            who: who(&r.psid),
            psid: r.psid,
            origin: r.origin,
            what: what(&r.body),
            delivery: match r.tag {
                Some(tag) => format!("{} {tag}", r.messaging_type),
                None => r.messaging_type,
            },
            state: r.state,
            error: match (r.error_code, r.error_subcode, r.error_message) {
                (Some(code), sub, message) => format!(
                    "#{code}{} {}",
                    sub.map(|s| format!("/{s}")).unwrap_or_default(),
                    message.unwrap_or_default()
                ),
                (None, _, Some(message)) => message,
                _ => String::new(),
            },
            created_at: utc(r.created_at),
        })
        .collect();
    Ok(Ops {
        links,
        events,
        messages,
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_stored_body_is_summarised() {
        assert_eq!(super::what(r#"{"message":{"text":"hi"}}"#), "hi");
        assert_eq!(super::what(r#"{"sender_action":"typing_on"}"#), "typing_on");
        assert_eq!(
            super::what(
                r#"{"message":{"attachment":{"type":"template","payload":{"template_type":"button","text":"Sign in"}}}}"#
            ),
            "Sign in"
        );
        assert_eq!(
            super::what(&format!(r#"{{"message":{{"text":"{}"}}}}"#, "a".repeat(80)))
                .chars()
                .count(),
            71
        );
    }
}
