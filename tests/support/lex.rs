//! A wire-compatible fake of the Lex V2 runtime's `RecognizeText`, served
//! over HTTP in-process so the real aws-sdk-lexruntimev2 client talks to it.
//!
//! It answers on the real path, percent-decodes the path labels, replies in
//! Lex's JSON shapes (unfilled slots as `null`, as Lex does), fails with
//! `x-amzn-ErrorType` when scripted to, refuses overlapping requests of one
//! session with a ConflictException like Lex, and records every request.
//!
//! Like Lex it keeps each session's attributes and active contexts: each
//! field a request's `sessionState` holds replaces them (an absent field
//! keeps them, an empty list clears them), a code hook (`code_hook`, or the
//! `sessionAttributes` of a scripted reply) adds to them, every answer
//! returns them, and `DeleteSession` forgets the session.

use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
use serde_json::{json, Value};
use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// One recorded `RecognizeText` call.
#[derive(Debug, Clone)]
pub struct LexRequest {
    pub bot_id: String,
    pub bot_alias_id: String,
    pub locale_id: String,
    pub session_id: String,
    pub text: String,
    pub session_attributes: Value,
    pub active_contexts: Value,
    /// `requestAttributes`, `Null` when the request has none.
    pub request_attributes: Value,
    /// `sessionState.dialogAction`, `Null` when the request sets none.
    pub dialog_action: Value,
    pub signed: bool,
}

/// What Lex keeps of one session.
#[derive(Debug, Clone, Default)]
struct Session {
    attributes: serde_json::Map<String, Value>,
    contexts: Vec<Value>,
}

/// What the fake does with the next request.
#[derive(Debug, Clone)]
pub enum Step {
    /// Answer with this JSON body (use `lex_reply` to build one).
    Reply(Value),
    /// Fail with this HTTP status and Lex error type.
    Fail(u16, &'static str),
}

#[derive(Default)]
struct State {
    script: VecDeque<Step>,
    /// Used when the script is empty; `None` echoes the text.
    fallback: Option<Step>,
    requests: Vec<LexRequest>,
    in_flight: HashSet<String>,
    conflicts: usize,
    delay: Duration,
    sessions: HashMap<String, Session>,
    /// Text -> what a code hook sets when that text is recognised.
    hooks: HashMap<String, Value>,
    deleted: Vec<String>,
}

pub struct FakeLex {
    pub uri: String,
    state: Arc<Mutex<State>>,
    handle: actix_web::dev::ServerHandle,
}

impl FakeLex {
    pub async fn start() -> FakeLex {
        let state = Arc::new(Mutex::new(State::default()));
        let shared = web::Data::from(Arc::clone(&state));
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind fake Lex");
        let uri = format!("http://{}", listener.local_addr().unwrap());
        let server = HttpServer::new(move || {
            App::new()
                .app_data(shared.clone())
                .default_service(web::to(recognize_text))
        })
        .listen(listener)
        .expect("listen")
        .workers(1)
        .disable_signals()
        .run();
        let handle = server.handle();
        tokio::spawn(server);
        FakeLex { uri, state, handle }
    }

    /// Queues what the next requests get, in order.
    pub fn then(&self, step: Step) -> &Self {
        self.state.lock().unwrap().script.push_back(step);
        self
    }

    /// What every request gets once the script is used up.
    pub fn always(&self, step: Step) {
        self.state.lock().unwrap().fallback = Some(step);
    }

    /// How long each answer takes.
    pub fn set_delay(&self, delay: Duration) {
        self.state.lock().unwrap().delay = delay;
    }

    pub fn requests(&self) -> Vec<LexRequest> {
        self.state.lock().unwrap().requests.clone()
    }

    /// When a request's text is `text`, a code hook sets `sets` (an object
    /// with `sessionAttributes` and / or `activeContexts`) in the session.
    pub fn code_hook(&self, text: &str, sets: Value) {
        self.state
            .lock()
            .unwrap()
            .hooks
            .insert(text.to_string(), sets);
    }

    /// The attributes Lex keeps for `session_id` (`null` for no session).
    pub fn stored_attributes(&self, session_id: &str) -> Value {
        let state = self.state.lock().unwrap();
        state
            .sessions
            .get(session_id)
            .map_or(Value::Null, |s| Value::Object(s.attributes.clone()))
    }

    /// The active contexts Lex keeps for `session_id` (empty for none).
    pub fn stored_contexts(&self, session_id: &str) -> Vec<Value> {
        let state = self.state.lock().unwrap();
        state
            .sessions
            .get(session_id)
            .map(|s| s.contexts.clone())
            .unwrap_or_default()
    }

    /// Sessions deleted with `DeleteSession`, in order.
    pub fn deleted(&self) -> Vec<String> {
        self.state.lock().unwrap().deleted.clone()
    }

    /// Requests refused because their session already had one in flight.
    pub fn conflicts(&self) -> usize {
        self.state.lock().unwrap().conflicts
    }
}

impl Drop for FakeLex {
    fn drop(&mut self) {
        let handle = self.handle.clone();
        tokio::spawn(async move { handle.stop(false).await });
    }
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let Ok(b) = u8::from_str_radix(&s[i + 1..i + 3], 16) {
                out.push(b);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// `POST /bots/{botId}/botAliases/{botAliasId}/botLocales/{localeId}/sessions/{sessionId}/text`
async fn recognize_text(
    req: HttpRequest,
    body: web::Bytes,
    state: web::Data<Mutex<State>>,
) -> HttpResponse {
    let labels: Vec<&str> = req
        .uri()
        .path()
        .trim_start_matches('/')
        .split('/')
        .collect();
    if req.method() == actix_web::http::Method::DELETE && labels.len() == 8 {
        return delete_session(&labels, &state);
    }
    let well_formed = req.method() == actix_web::http::Method::POST
        && labels.len() == 9
        && labels[0] == "bots"
        && labels[2] == "botAliases"
        && labels[4] == "botLocales"
        && labels[6] == "sessions"
        && labels[8] == "text";
    if !well_formed {
        return error(404, "ResourceNotFoundException", "no such operation");
    }
    let input: Value = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(_) => return error(400, "ValidationException", "body is not JSON"),
    };
    let request = LexRequest {
        bot_id: percent_decode(labels[1]),
        bot_alias_id: percent_decode(labels[3]),
        locale_id: percent_decode(labels[5]),
        session_id: percent_decode(labels[7]),
        text: input["text"].as_str().unwrap_or_default().to_string(),
        session_attributes: input["sessionState"]["sessionAttributes"].clone(),
        active_contexts: input["sessionState"]["activeContexts"].clone(),
        request_attributes: input["requestAttributes"].clone(),
        dialog_action: input["sessionState"]["dialogAction"].clone(),
        signed: req
            .headers()
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("AWS4-HMAC-SHA256")),
    };
    let (step, delay) = {
        let mut s = state.lock().unwrap();
        s.requests.push(request.clone());
        if !s.in_flight.insert(request.session_id.clone()) {
            s.conflicts += 1;
            return error(
                409,
                "ConflictException",
                "a request for this session is in progress",
            );
        }
        let step = s.script.pop_front().or_else(|| s.fallback.clone());
        (step, s.delay)
    };
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    let mut s = state.lock().unwrap();
    s.in_flight.remove(&request.session_id);
    let body = match step {
        Some(Step::Fail(status, kind)) => return error(status, kind, "scripted failure"),
        Some(Step::Reply(body)) => body,
        None => {
            let mut echo = lex_reply(
                json!([{"contentType": "PlainText", "content": format!("echo: {}", request.text)}]),
                "EchoIntent",
            );
            echo["sessionState"]
                .as_object_mut()
                .unwrap()
                .remove("sessionAttributes");
            echo
        }
    };
    let hook = s.hooks.get(&request.text).cloned();
    let session = s.sessions.entry(request.session_id.clone()).or_default();
    // Each field of the request's session state replaces what Lex kept, as
    // Lex does; an absent field keeps it (an empty list clears it).
    let sent = &input["sessionState"];
    if let Some(attributes) = sent.get("sessionAttributes").and_then(Value::as_object) {
        session.attributes = attributes.clone();
    }
    if let Some(contexts) = sent.get("activeContexts").and_then(Value::as_array) {
        session.contexts = contexts.clone();
    }
    for sets in hook.iter().chain([&body["sessionState"]]) {
        if let Some(attributes) = sets["sessionAttributes"].as_object() {
            session.attributes.extend(attributes.clone());
        }
        for context in sets["activeContexts"].as_array().into_iter().flatten() {
            session.contexts.retain(|c| c["name"] != context["name"]);
            session.contexts.push(context.clone());
        }
    }
    let mut body = body;
    body["sessionState"]["sessionAttributes"] = Value::Object(session.attributes.clone());
    if !session.contexts.is_empty() {
        body["sessionState"]["activeContexts"] = Value::Array(session.contexts.clone());
    }
    ok(body, &request.session_id)
}

/// `DELETE /bots/{botId}/botAliases/{botAliasId}/botLocales/{localeId}/sessions/{sessionId}`
fn delete_session(labels: &[&str], state: &Mutex<State>) -> HttpResponse {
    let session_id = percent_decode(labels[7]);
    let mut s = state.lock().unwrap();
    if s.sessions.remove(&session_id).is_none() {
        return error(404, "ResourceNotFoundException", "no such session");
    }
    s.deleted.push(session_id.clone());
    HttpResponse::Ok()
        .insert_header(("x-amzn-RequestId", "fake-request-del1"))
        .content_type("application/json")
        .body(
            json!({"botId": percent_decode(labels[1]), "botAliasId": percent_decode(labels[3]),
                   "localeId": percent_decode(labels[5]), "sessionId": session_id})
            .to_string(),
        )
}

fn ok(mut body: Value, session_id: &str) -> HttpResponse {
    body["sessionId"] = json!(session_id);
    HttpResponse::Ok()
        .insert_header(("x-amzn-RequestId", "fake-request-0001"))
        .content_type("application/json")
        .body(body.to_string())
}

fn error(status: u16, kind: &str, message: &str) -> HttpResponse {
    HttpResponse::build(actix_web::http::StatusCode::from_u16(status).unwrap())
        .insert_header((
            "x-amzn-ErrorType",
            format!(
                "{kind}:http://internal.amazon.com/coral/com.amazonaws.deepsense.runtimeservice/"
            ),
        ))
        .insert_header(("x-amzn-RequestId", "fake-request-err1"))
        .content_type("application/json")
        .body(json!({"message": message}).to_string())
}

/// A Lex reply with `messages`, an in-progress `intent` whose `Place` slot is
/// unfilled (`null`, as Lex sends it) and two interpretations.
pub fn lex_reply(messages: Value, intent: &str) -> Value {
    let intent_state = json!({
        "name": intent,
        "slots": {"Place": null, "Radius": {"value": {
            "originalValue": "two", "interpretedValue": "2", "resolvedValues": ["2"]}}},
        "state": "InProgress",
        "confirmationState": "None"
    });
    json!({
        "messages": messages,
        "sessionState": {
            "dialogAction": {"type": "ElicitSlot", "slotToElicit": "Place"},
            "intent": intent_state,
            "sessionAttributes": {"seen": "1"},
            "originatingRequestId": "fake-request-0001"
        },
        "interpretations": [
            {"intent": intent_state, "nluConfidence": {"score": 0.91}},
            {"intent": {"name": "FallbackIntent", "slots": {}, "state": "InProgress", "confirmationState": "None"}}
        ],
        "requestAttributes": {}
    })
}
