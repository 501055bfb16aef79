//! Minimal in-process stand-ins for the Lex V2 runtime and the Graph Send
//! API, for benchmarks: they answer at once and note when each call came.

use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use lexbridge::facebook::graph::read_calls;

/// What the fake Lex saw: its total time in µs and each text's arrival.
#[derive(Default)]
pub struct LexCalls {
    pub micros: u64,
    pub by_text: HashMap<String, Instant>,
}

/// Arrival times of Send API messages, by message text, and per Page.
#[derive(Default)]
pub struct Arrivals {
    pub by_text: HashMap<String, Instant>,
    pub per_page: HashMap<String, Vec<Instant>>,
}

pub struct FakeServers {
    pub lex_url: String,
    pub graph_url: String,
    pub arrivals: Arc<Mutex<Arrivals>>,
    /// Time spent inside the fake Lex handler, and when each text came.
    pub lex: Arc<Mutex<LexCalls>>,
    handles: Vec<actix_web::dev::ServerHandle>,
}

impl FakeServers {
    pub fn start() -> anyhow::Result<FakeServers> {
        let arrivals = Arc::new(Mutex::new(Arrivals::default()));
        let lex_calls = Arc::new(Mutex::new(LexCalls::default()));
        let (lex_url, lex) = serve(web::Data::from(Arc::clone(&lex_calls)), lex_handler)?;
        let (graph_url, graph) = serve(web::Data::from(Arc::clone(&arrivals)), graph_handler)?;
        Ok(FakeServers {
            lex_url,
            graph_url,
            arrivals,
            lex: lex_calls,
            handles: vec![lex, graph],
        })
    }
}

impl Drop for FakeServers {
    fn drop(&mut self) {
        for handle in &self.handles {
            let handle = handle.clone();
            tokio::spawn(async move { handle.stop(false).await });
        }
    }
}

fn serve<T, F>(
    data: web::Data<T>,
    handler: F,
) -> anyhow::Result<(String, actix_web::dev::ServerHandle)>
where
    T: Send + Sync + 'static,
    F: actix_web::Handler<(HttpRequest, web::Bytes, web::Data<T>)> + Clone + Send + 'static,
    F::Output: actix_web::Responder + 'static,
{
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    let url = format!("http://{}", listener.local_addr()?);
    let server = HttpServer::new(move || {
        App::new()
            .app_data(data.clone())
            .app_data(web::PayloadConfig::new(1 << 20))
            .default_service(web::to(handler.clone()))
    })
    .listen(listener)?
    .workers(1)
    .disable_signals()
    .run();
    let handle = server.handle();
    tokio::spawn(server);
    Ok((url, handle))
}

/// What the fake Lex answers to `text`.
pub fn echo_of(text: &str) -> String {
    format!("echo: {text}")
}

/// RecognizeText: echoes the text as one PlainText message, noting when
/// the text came.
async fn lex_handler(
    _req: HttpRequest,
    body: web::Bytes,
    calls: web::Data<Mutex<LexCalls>>,
) -> HttpResponse {
    let started = Instant::now();
    let text = serde_json::from_slice::<Value>(&body)
        .ok()
        .and_then(|v| v["text"].as_str().map(str::to_string))
        .unwrap_or_default();
    let answer = json!({
        "messages": [{"contentType": "PlainText", "content": echo_of(&text)}],
        "sessionState": {"dialogAction": {"type": "Close"},
                         "intent": {"name": "Echo", "slots": {"Unused": null}, "state": "Fulfilled",
                                    "confirmationState": "None"}},
        "interpretations": [{"intent": {"name": "Echo", "slots": {}}, "nluConfidence": {"score": 1.0}}],
        "sessionId": "bench"
    });
    let response = HttpResponse::Ok()
        .content_type("application/json")
        .insert_header(("x-amzn-RequestId", "bench"))
        .body(answer.to_string());
    if let Ok(mut calls) = calls.lock() {
        calls.micros += started.elapsed().as_micros() as u64;
        calls.by_text.insert(text, started);
    }
    response
}

/// Send API: notes when each message (by text) and each call (by Page) came.
async fn graph_handler(
    req: HttpRequest,
    body: web::Bytes,
    arrivals: web::Data<Mutex<Arrivals>>,
) -> HttpResponse {
    let now = Instant::now();
    // A batch request (marks, or messages that waited together): a call
    // each, answered in order.
    let batch = url::form_urlencoded::parse(&body)
        .find(|(name, _)| name == "batch")
        .and_then(|(_, calls)| read_calls(&calls).ok());
    if let Some(calls) = batch {
        if let Ok(mut a) = arrivals.lock() {
            for call in &calls {
                let page = call.relative_url.split('/').next().unwrap_or_default();
                a.per_page.entry(page.to_string()).or_default().push(now);
                if let Some(text) = call.body["message"]["text"].as_str() {
                    a.by_text.insert(text.to_string(), now);
                }
            }
        }
        let sent = r#"{"recipient_id":"1","message_id":"m.bench"}"#;
        let answers = vec![json!({"code": 200, "body": sent}); calls.len()];
        return HttpResponse::Ok().json(answers);
    }
    let page = req
        .path()
        .split('/')
        .rev()
        .nth(1)
        .unwrap_or_default()
        .to_string();
    let text = serde_json::from_slice::<Value>(&body)
        .ok()
        .and_then(|v| v["message"]["text"].as_str().map(str::to_string));
    if let Ok(mut a) = arrivals.lock() {
        a.per_page.entry(page).or_default().push(now);
        if let Some(text) = text {
            a.by_text.insert(text, now);
        }
    }
    HttpResponse::Ok()
        .content_type("application/json")
        .body(r#"{"recipient_id":"1","message_id":"m.bench"}"#)
}
