//! The part of the Graph API the service calls, at `/{version}/…`: tokens,
//! `/me`, the Page, `ids_for_pages`, `ids_for_apps`, profiles, the Send
//! API, and the Page's Messenger Profile and webhook subscription (`page
//! setup`). Every call with a token must carry its `appsecret_proof`, as an app
//! with "Require App Secret" demands.

use actix_web::{web, HttpRequest, HttpResponse};
use secrecy::ExposeSecret;
use serde_json::{json, Value};
use std::collections::HashMap;
use subtle::ConstantTimeEq;

use super::error::MetaError;
use super::people::{self, Person};
use super::send::{self, Outgoing};
use super::state::{mid, Entry, Sandbox, ThreadEvent, Who};
use crate::facebook::graph::{appsecret_proof, read_calls, BATCH_MAX};
use crate::store::now_ms;

/// Long-lived user tokens last 60 days, short-lived ones 2 hours.
const LONG_LIVED_S: i64 = 5_183_944;
const SHORT_LIVED_S: i64 = 7_200;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource(r"/{version:v[0-9]+\.[0-9]+}/{path:.*}")
            .route(web::get().to(graph))
            .route(web::post().to(graph)),
    );
}

type Params = HashMap<String, String>;

async fn graph(req: HttpRequest, body: web::Bytes, sandbox: web::Data<Sandbox>) -> HttpResponse {
    let mut params: Params = url::form_urlencoded::parse(req.query_string().as_bytes())
        .into_owned()
        .collect();
    let is_form = req
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
    if is_form {
        params.extend(url::form_urlencoded::parse(&body).into_owned());
    }
    let path = req.match_info().get("path").unwrap_or_default().to_string();
    let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let post = req.method() == actix_web::http::Method::POST;
    let answer = match (post, segments.as_slice()) {
        (_, ["oauth", "access_token"]) => access_token(&sandbox, &params),
        (false, ["debug_token"]) => debug_token(&sandbox, &params),
        (false, ["me"]) => {
            authenticate(&sandbox, &params).and_then(|who| me(&sandbox, &who, &params))
        }
        (false, [id, "ids_for_pages"]) => {
            authenticate(&sandbox, &params).and_then(|_| ids_for_pages(&sandbox, id, &params))
        }
        (false, [psid, "ids_for_apps"]) => {
            authenticate(&sandbox, &params).and_then(|who| ids_for_apps(&sandbox, &who, psid))
        }
        (true, [page, "messages"]) => match authenticate(&sandbox, &params) {
            Ok(who) => return send_api(&sandbox, &who, page, &body).await,
            Err(e) => Err(e),
        },
        (true, [page, "messenger_profile"]) => {
            page_call(&sandbox, &params, page).and_then(|()| sandbox.profile.set(&body))
        }
        (false, [page, "messenger_profile"]) => page_call(&sandbox, &params, page).map(|()| {
            let wanted = params.get("fields").map(String::as_str).unwrap_or_default();
            sandbox.profile.get(wanted)
        }),
        (true, [page, edge @ ("pass_thread_control" | "take_thread_control")]) => {
            page_call(&sandbox, &params, page).and_then(|()| thread_control(&sandbox, edge, &body))
        }
        (true, []) if params.contains_key("batch") => batch(&sandbox, &params).await,
        (true, [page, "subscribed_apps"]) => {
            page_call(&sandbox, &params, page).and_then(|()| super::profile::subscribe(&body))
        }
        (false, [id]) => {
            authenticate(&sandbox, &params).and_then(|who| object(&sandbox, &who, id, &params))
        }
        (true, _) => Err(MetaError::unsupported("post")),
        (false, _) => Err(MetaError::unsupported("get")),
    };
    match answer {
        Ok(value) => HttpResponse::Ok().json(value),
        Err(e) => e.response(),
    }
}

/// The token of the call, checked with its `appsecret_proof`.
fn authenticate(sandbox: &Sandbox, params: &Params) -> Result<Who, MetaError> {
    let token = params
        .get("access_token")
        .map(String::as_str)
        .unwrap_or_default();
    if token.is_empty() {
        return Err(MetaError::new(
            2500,
            "OAuthException",
            "An active access token must be used to query information about the current user.",
        ));
    }
    let who = sandbox.who(token).ok_or_else(|| {
        MetaError::bad_token("Invalid OAuth access token - Cannot parse access token")
    })?;
    let expected = appsecret_proof(sandbox.config.app_secret.expose_secret(), token);
    match params.get("appsecret_proof") {
        None => Err(MetaError::new(
            100,
            "GraphMethodException",
            "API calls from the server require an appsecret_proof argument",
        )),
        Some(proof) if !bool::from(proof.as_bytes().ct_eq(expected.as_bytes())) => {
            Err(MetaError::new(
                100,
                "GraphMethodException",
                "Invalid appsecret_proof provided in the API argument",
            ))
        }
        Some(_) => Ok(who),
    }
}

/// `debug_token`: called with the app token (`{app-id}|{app-secret}`, and
/// its proof), it says whether `input_token` is one of the sandbox's and
/// when it expires (the Page token never does), as Meta answers: 200 with
/// `is_valid: false` and an error object for a token it does not know.
fn debug_token(sandbox: &Sandbox, params: &Params) -> Result<Value, MetaError> {
    let config = &sandbox.config;
    let get = |k: &str| params.get(k).map(String::as_str).unwrap_or_default();
    let app_token = format!("{}|{}", config.app_id, config.app_secret.expose_secret());
    let token = get("access_token");
    if token.is_empty() || !bool::from(token.as_bytes().ct_eq(app_token.as_bytes())) {
        return Err(MetaError::bad_token(
            "Invalid OAuth access token - Cannot parse access token",
        ));
    }
    let proof = appsecret_proof(config.app_secret.expose_secret(), token);
    if !bool::from(get("appsecret_proof").as_bytes().ct_eq(proof.as_bytes())) {
        return Err(MetaError::new(
            100,
            "GraphMethodException",
            "Invalid appsecret_proof provided in the API argument",
        ));
    }
    let now_s = now_ms() / 1000;
    let data = match sandbox.who(get("input_token")) {
        Some(Who::Page) => json!({"app_id": config.app_id, "type": "PAGE", "is_valid": true,
            "expires_at": 0, "profile_id": config.page_id}),
        Some(Who::User { uid, long_lived }) => {
            let lasts = if long_lived {
                LONG_LIVED_S
            } else {
                SHORT_LIVED_S
            };
            json!({"app_id": config.app_id, "type": "USER", "is_valid": true,
                "expires_at": now_s + lasts, "user_id": uid})
        }
        None => json!({"is_valid": false, "scopes": [], "error": {"code": 190,
            "message": "Invalid OAuth access token - Cannot parse access token"}}),
    };
    Ok(json!({ "data": data }))
}

fn person(who: &Who) -> Option<&'static Person> {
    match who {
        Who::User { uid, .. } => people::by_uid(uid),
        Who::Page => None,
    }
}

/// Both grants: `authorization_code` (the login's code) and
/// `fb_exchange_token` (a short-lived user token for a long-lived one).
fn access_token(sandbox: &Sandbox, params: &Params) -> Result<Value, MetaError> {
    let config = &sandbox.config;
    let get = |k: &str| params.get(k).map(String::as_str).unwrap_or_default();
    if get("client_id") != config.app_id {
        return Err(MetaError::new(
            101,
            "OAuthException",
            "Error validating application. Invalid application ID.",
        ));
    }
    let secret = config.app_secret.expose_secret().as_bytes();
    if !bool::from(get("client_secret").as_bytes().ct_eq(secret)) {
        return Err(MetaError::new(
            1,
            "OAuthException",
            "Error validating client secret.",
        ));
    }
    let (uid, long_lived) = match get("grant_type") {
        "fb_exchange_token" => match sandbox.who(get("fb_exchange_token")) {
            Some(Who::User { uid, .. }) => (uid, true),
            _ => {
                return Err(MetaError::bad_token(
                    "Invalid OAuth access token - Cannot parse access token",
                ))
            }
        },
        "" | "authorization_code" => {
            let code = get("code");
            if code.is_empty() {
                return Err(MetaError::param("Missing authorization code"));
            }
            (
                sandbox.redeem_code(code, get("redirect_uri"), now_ms())?,
                false,
            )
        }
        other => {
            return Err(MetaError::param(format!(
                "Unsupported grant_type {other:?}"
            )))
        }
    };
    let expires_in = if long_lived {
        LONG_LIVED_S
    } else {
        SHORT_LIVED_S
    };
    Ok(json!({
        "access_token": sandbox.user_token(&uid, long_lived),
        "token_type": "bearer",
        "expires_in": expires_in,
    }))
}

/// `/me`: the person of a user token; with a Page token, the Page (and an
/// `account_linking_token` the stand-in never issued is refused).
fn me(sandbox: &Sandbox, who: &Who, params: &Params) -> Result<Value, MetaError> {
    if let Some(p) = person(who) {
        return Ok(json!({ "id": p.uid, "name": p.name() }));
    }
    if params.contains_key("account_linking_token") {
        return Err(MetaError::param("Invalid account_linking_token"));
    }
    Ok(json!({ "id": sandbox.config.page_id, "name": sandbox.config.page_name }))
}

/// `/{uid}/ids_for_pages?page=`: the person's PSID on the Page once they
/// have written to it.
fn ids_for_pages(sandbox: &Sandbox, uid: &str, params: &Params) -> Result<Value, MetaError> {
    let p = people::by_uid(uid).ok_or_else(|| MetaError::unsupported("get"))?;
    let page_id = &sandbox.config.page_id;
    let wanted = params.get("page").is_none_or(|p| p == page_id);
    let has_written = sandbox
        .thread(p.psid)
        .is_some_and(|t| t.last_wrote.is_some());
    let data: Vec<Value> = (wanted && has_written)
        .then(
            || json!({ "id": p.psid, "page": { "id": page_id, "name": sandbox.config.page_name } }),
        )
        .into_iter()
        .collect();
    Ok(json!({ "data": data }))
}

/// `/{psid}/ids_for_apps` (Page token): the person's id in this app.
fn ids_for_apps(sandbox: &Sandbox, who: &Who, psid: &str) -> Result<Value, MetaError> {
    if *who != Who::Page {
        return Err(MetaError::new(
            200,
            "OAuthException",
            "(#200) This call requires a Page access token",
        ));
    }
    let p = people::by_psid(psid).ok_or_else(|| MetaError::unsupported("get"))?;
    Ok(
        json!({ "data": [{ "id": p.uid, "app": { "id": sandbox.config.app_id, "name": "lexbridge demo" } }] }),
    )
}

/// `/{id}?fields=`: the Page, or a person's Page-scoped profile.
fn object(sandbox: &Sandbox, who: &Who, id: &str, params: &Params) -> Result<Value, MetaError> {
    let fields: Vec<&str> = params
        .get("fields")
        .map(|f| f.split(',').map(str::trim).collect())
        .unwrap_or_default();
    if id == sandbox.config.page_id {
        if fields.contains(&"access_token") {
            // No demo person administers the Page.
            return Err(MetaError::new(
                200,
                "OAuthException",
                "(#200) The user must be an administrator of the Page to read its access token",
            ));
        }
        let mut page = json!({ "id": id, "name": sandbox.config.page_name });
        if fields.contains(&"instagram_business_account") {
            page["instagram_business_account"] = json!({ "id": people::INSTAGRAM_ACCOUNT });
        }
        return Ok(page);
    }
    let p = people::by_psid(id).ok_or_else(|| MetaError::unsupported("get"))?;
    if *who != Who::Page {
        return Err(MetaError::unsupported("get"));
    }
    let mut profile = json!({ "id": p.psid });
    for field in fields {
        let value = match field {
            "name" => json!(p.name()),
            "first_name" => json!(p.first_name),
            "last_name" => json!(p.last_name),
            "profile_pic" => {
                let pic = sandbox
                    .config
                    .public_url
                    .join(&format!("sandbox/avatar/{}.svg", p.psid));
                json!(pic.map(|u| u.to_string()).unwrap_or_default())
            }
            "id" | "" => continue,
            other => {
                return Err(MetaError::param(format!(
                    "Tried accessing nonexisting field ({other}) on node type (User)"
                )))
            }
        };
        profile[field] = value;
    }
    Ok(profile)
}

/// Only the Page's own token may act for the Page.
fn page_only(sandbox: &Sandbox, who: &Who, page: &str) -> Result<(), MetaError> {
    if *who != Who::Page || page != sandbox.config.page_id {
        return Err(MetaError::new(
            200,
            "OAuthException",
            "(#200) This endpoint requires the Page's access token",
        ));
    }
    Ok(())
}

/// A call on the Page's own edges: authenticated, with the Page's token.
fn page_call(sandbox: &Sandbox, params: &Params, page: &str) -> Result<(), MetaError> {
    authenticate(sandbox, params).and_then(|who| page_only(sandbox, &who, page))
}

/// `POST /{page}/pass_thread_control` (to `target_app_id`) or
/// `/take_thread_control` (to the calling app, the service's).
fn thread_control(sandbox: &Sandbox, edge: &str, body: &[u8]) -> Result<Value, MetaError> {
    let body: Value = serde_json::from_slice(body)
        .map_err(|_| MetaError::param("The request body must be JSON"))?;
    let psid = send::recipient(&body)?.to_string();
    if sandbox.thread(&psid).is_none() {
        return Err(MetaError::param("No matching user found").subcode(2018001));
    }
    let owner = match edge {
        "pass_thread_control" => {
            let target = crate::facebook::events::id_text(body["target_app_id"].clone())
                .ok()
                .flatten()
                .ok_or_else(|| MetaError::param("The parameter target_app_id is required"))?;
            Some(target).filter(|t| *t != sandbox.config.app_id)
        }
        _ => None,
    };
    sandbox.set_owner(&psid, owner);
    Ok(json!({ "success": true }))
}

/// `POST /` with `batch` (a Graph batch request): each call answered in
/// order as `{code, body}`. The sandbox takes Send API calls (sender
/// actions and messages, their form fields JSON where they hold JSON);
/// any other call is answered as unsupported.
async fn batch(sandbox: &Sandbox, params: &Params) -> Result<Value, MetaError> {
    let who = authenticate(sandbox, params)?;
    // Every call is read before any runs: a malformed batch changes
    // nothing.
    let batch = params.get("batch").map(String::as_str).unwrap_or_default();
    let calls = read_calls(batch).map_err(MetaError::param)?;
    if calls.is_empty() || calls.len() > BATCH_MAX {
        return Err(MetaError::param(
            "A batch holds 1 to 50 requests. Maximum batch size is 50",
        ));
    }
    let mut answers = Vec::with_capacity(calls.len());
    for call in &calls {
        let path = call.relative_url.split('?').next().unwrap_or_default();
        let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
        let response = match (call.method.as_str(), segments.as_slice()) {
            ("POST", [page, "messages"]) => {
                send_api(sandbox, &who, page, call.body.to_string().as_bytes()).await
            }
            _ => MetaError::unsupported(&call.method.to_ascii_lowercase()).response(),
        };
        let code = response.status().as_u16();
        let body = actix_web::body::to_bytes(response.into_body())
            .await
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default();
        answers.push(json!({ "code": code, "body": body }));
    }
    Ok(Value::Array(answers))
}

/// `POST /{page}/messages`: checked, recorded in the thread, shown in the
/// emulator.
async fn send_api(sandbox: &Sandbox, who: &Who, page: &str, body: &[u8]) -> HttpResponse {
    let result = (|| -> Result<_, MetaError> {
        page_only(sandbox, who, page)?;
        let body: Value = serde_json::from_slice(body)
            .map_err(|_| MetaError::param("The request body must be JSON"))?;
        let psid = send::recipient(&body)?.to_string();
        let thread = sandbox
            .thread(&psid)
            .ok_or_else(|| MetaError::param("No matching user found").subcode(2018001))?;
        let now = now_ms();
        let outgoing = send::check(&body, now, thread.last_wrote)?;
        // Only the thread's owner may message the person; sender actions
        // from another app are ignored by Messenger, not refused.
        if thread.owner.is_some() && matches!(outgoing, Outgoing::Message { .. }) {
            return Err(MetaError::thread_elsewhere());
        }
        Ok((psid.clone(), outgoing, now))
    })();
    let (psid, outgoing, now) = match result {
        Ok(ok) => ok,
        Err(e) => return e.response(),
    };
    match outgoing {
        Outgoing::Action(action) => {
            match action.as_str() {
                "mark_seen" => sandbox.mark_seen(&psid, now),
                on_off => sandbox.announce(ThreadEvent::Typing {
                    psid: psid.clone(),
                    on: on_off == "typing_on",
                }),
            }
            HttpResponse::Ok().json(json!({ "recipient_id": psid }))
        }
        Outgoing::Message { message, tag } => {
            let entry = Entry {
                mid: mid(&psid, now),
                from: "page".into(),
                at: now,
                message,
                tag,
            };
            let message_id = entry.mid.clone();
            sandbox.announce(ThreadEvent::Typing {
                psid: psid.clone(),
                on: false,
            });
            sandbox.record(&psid, entry);
            HttpResponse::Ok().json(json!({ "recipient_id": psid, "message_id": message_id }))
        }
    }
}
