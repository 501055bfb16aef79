//! Graph batch requests: several calls in one HTTP round trip (Meta takes
//! up to 50 and counts each against the Page's limits as if made alone).
//! Used for sender actions and, when several wait for one Page, the Send
//! API's messages (`facebook::batch_queue`); `read_calls` is the other
//! side, for the Graph stand-ins (the demo's sandbox, the benchmark's, the
//! tests').

use secrecy::SecretString;
use serde::Deserialize;
use serde_json::Value;

use super::{GraphClient, GraphError, SendResponse, SenderAction};

/// Most calls one batch request may carry.
pub const BATCH_MAX: usize = 50;

/// One call's answer inside a batch's answer (`include_headers=false`).
/// Meta answers `null` for a call it did not get to in time.
#[derive(Deserialize)]
struct CallAnswer {
    code: u16,
    #[serde(default)]
    body: Option<String>,
}

impl GraphClient {
    /// Send API calls for `page_id` (each a payload as `send` takes; at
    /// most `BATCH_MAX`) in one batch request, or a lone one as an ordinary
    /// call: each call's outcome in order (`Unsent::Later` for a call Meta
    /// did not get to in time), or the whole batch request's error.
    pub async fn send_batch(
        &self,
        page_id: &str,
        page_token: &SecretString,
        payloads: &[&Value],
    ) -> Result<Vec<Result<SendResponse, Unsent>>, GraphError> {
        if payloads.len() > BATCH_MAX {
            return Err(GraphError {
                message: format!("a batch of {} calls (at most {BATCH_MAX})", payloads.len()),
                ..GraphError::default()
            });
        }
        if let [payload] = payloads {
            let sent = self.send(page_id, page_token, payload).await;
            return Ok(vec![sent.map_err(Unsent::Graph)]);
        }
        let relative_url = format!("{page_id}/messages");
        let calls: Vec<Value> = payloads
            .iter()
            .map(|payload| {
                serde_json::json!({
                    "method": "POST",
                    "relative_url": relative_url,
                    "body": form_body(payload),
                })
            })
            .collect();
        let batch = Value::Array(calls).to_string();
        // Longer than a lone call's: Meta answers a call it could not
        // finish in time with `null` (retried), better than no answer for
        // all of them.
        let request = self
            .http
            .post(self.url("")?)
            .query(&self.auth(page_token))
            .timeout(self.batch_timeout)
            .form(&[("include_headers", "false"), ("batch", batch.as_str())]);
        let answers: Vec<Option<CallAnswer>> = self.execute(request).await?;
        if answers.len() != payloads.len() {
            // Not what Meta answers: a bad gateway, to retry.
            return Err(GraphError {
                http_status: Some(502),
                message: format!(
                    "a batch answer with {} answers for {} calls",
                    answers.len(),
                    payloads.len()
                ),
                ..GraphError::default()
            });
        }
        Ok(answers.into_iter().map(outcome).collect())
    }

    /// `action` for each of `psids` (at most `BATCH_MAX`) of `page_id`, in
    /// one batch request, or one ordinary call (see `send_batch`).
    pub async fn sender_action_batch(
        &self,
        page_id: &str,
        page_token: &SecretString,
        psids: &[String],
        action: SenderAction,
    ) -> Result<Vec<Result<(), GraphError>>, GraphError> {
        let payloads: Vec<Value> = psids.iter().map(|psid| action.payload(psid)).collect();
        let payloads: Vec<&Value> = payloads.iter().collect();
        let outcomes = self.send_batch(page_id, page_token, &payloads).await?;
        let outcome = |o: Result<SendResponse, Unsent>| o.map(|_| ()).map_err(Unsent::into_error);
        Ok(outcomes.into_iter().map(outcome).collect())
    }

    /// Sends `calls` of one Page, each answered on its own, through
    /// `send_batch` under the newest call's token (a Page's token changes
    /// rarely). A batch that fails as a whole with an error that may pass
    /// (5xx, timeout, rate limit) is one failure: the first call carries
    /// it, the others are to be tried again; one that will not pass (a
    /// refused token, a permission) is each call's, as it would be alone.
    /// `took` hears how long the request took, once per call it settled
    /// (an answer or the call's own failure), before any call is answered:
    /// each call's own Send API time, without the time it waited for its
    /// turn. A call sent back to wait (the rest of a batch that failed as a
    /// whole, a `null` answer) is timed when it goes again, so each outcome
    /// is timed once.
    pub async fn send_queued(
        &self,
        page_id: &str,
        calls: Vec<QueuedSend>,
        took: impl Fn(std::time::Duration),
    ) {
        let Some(newest) = calls.last() else {
            return;
        };
        let token = newest.token.clone();
        let payloads: Vec<&Value> = calls.iter().map(|c| &c.payload).collect();
        let started = std::time::Instant::now();
        let sent = self.send_batch(page_id, &token, &payloads).await;
        let elapsed = started.elapsed();
        let answers: Vec<Result<SendResponse, Unsent>> = match sent {
            Ok(outcomes) => outcomes,
            Err(e) if !e.is_transient() => calls
                .iter()
                .map(|_| Err(Unsent::Graph(e.clone())))
                .collect(),
            Err(e) => std::iter::once(Err(Unsent::Graph(e)))
                .chain(std::iter::repeat_with(|| Err(Unsent::Later(None))))
                .take(calls.len())
                .collect(),
        };
        answers
            .iter()
            .filter(|a| !matches!(a, Err(Unsent::Later(_))))
            .for_each(|_| took(elapsed));
        for (call, answer) in calls.into_iter().zip(answers) {
            let _ = call.answer.send(answer);
        }
    }
}

/// A Send API call waiting in `AppState::sends` for its answer.
pub struct QueuedSend {
    pub token: SecretString,
    pub payload: Value,
    pub answer: tokio::sync::oneshot::Sender<Result<SendResponse, Unsent>>,
}

/// Why a queued Send API call was not sent.
#[derive(Debug)]
pub enum Unsent {
    /// Its own failure: Graph's answer to it, or the failure of a lone
    /// call or of the batch it was first in.
    Graph(GraphError),
    /// Not its own failure: to try again from `at` (ms) or soon (`None`),
    /// no attempt counted. Its Page cools down, or its batch failed as a
    /// whole (the batch's first call carries that failure, so it counts
    /// once toward the Page's cool-down), or it never got its turn.
    Later(Option<i64>),
}

impl Unsent {
    /// As an error, for a caller that only logs it.
    pub fn into_error(self) -> GraphError {
        match self {
            Unsent::Graph(e) => e,
            Unsent::Later(_) => GraphError {
                message: "not sent now: to try again later".into(),
                ..GraphError::default()
            },
        }
    }
}

/// A call's JSON body as a batch call's form-encoded body: each field's
/// text, objects (`recipient`, `message`) as their JSON.
fn form_body(payload: &Value) -> String {
    let mut form = url::form_urlencoded::Serializer::new(String::new());
    for (name, value) in payload.as_object().into_iter().flatten() {
        match value {
            Value::String(text) => form.append_pair(name, text),
            other => form.append_pair(name, &other.to_string()),
        };
    }
    form.finish()
}

/// One call of a batch request, as a Graph stand-in reads it.
#[derive(Debug)]
pub struct BatchCall {
    pub method: String,
    pub relative_url: String,
    /// Its form-encoded body as the JSON body the call would have alone:
    /// each field a string, or the object its text holds (`recipient`,
    /// `message`).
    pub body: Value,
}

/// The calls of a batch request's `batch` field; the error names the
/// first malformed one.
pub fn read_calls(batch: &str) -> Result<Vec<BatchCall>, String> {
    let calls: Vec<Value> = serde_json::from_str(batch)
        .map_err(|_| "The parameter batch must be a JSON array".to_string())?;
    let read = |(index, call): (usize, &Value)| {
        let text = |name: &str| call.get(name).map(|v| v.as_str().map(str::to_string));
        match (text("method"), text("relative_url"), text("body")) {
            (Some(Some(method)), Some(Some(relative_url)), body @ (None | Some(Some(_)))) => {
                Ok(BatchCall {
                    method,
                    relative_url,
                    body: json_body(&body.flatten().unwrap_or_default()),
                })
            }
            _ => Err(format!(
                "Batch request {index}: method and relative_url must be strings, and body a form-encoded string"
            )),
        }
    };
    calls.iter().enumerate().map(read).collect()
}

fn json_body(form: &str) -> Value {
    let fields = url::form_urlencoded::parse(form.as_bytes()).map(|(name, value)| {
        let value = serde_json::from_str::<Value>(&value)
            .ok()
            .filter(Value::is_object)
            .unwrap_or_else(|| Value::String(value.into_owned()));
        (name.into_owned(), value)
    });
    Value::Object(fields.collect())
}

/// A call's answer as `send`'s would have been; `null` (Meta did not get
/// to it in time) is no failure of the call's own.
fn outcome(answer: Option<CallAnswer>) -> Result<SendResponse, Unsent> {
    match answer {
        Some(CallAnswer { code, body }) if (200..300).contains(&code) => {
            let body = body.unwrap_or_default();
            serde_json::from_str(&body).map_err(|e| {
                Unsent::Graph(GraphError {
                    http_status: Some(code),
                    message: format!("unexpected Graph API answer: {e}"),
                    ..GraphError::default()
                })
            })
        }
        Some(CallAnswer { code, body }) => Err(Unsent::Graph(GraphError::from_body(
            Some(code),
            body.unwrap_or_default().as_bytes(),
        ))),
        None => Err(Unsent::Later(None)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_call_of_a_batch_answers_for_itself() {
        let ok = CallAnswer {
            code: 200,
            body: Some(r#"{"recipient_id":"U1","message_id":"m.1"}"#.into()),
        };
        let sent = outcome(Some(ok)).expect("sent");
        assert_eq!(sent.message_id.as_deref(), Some("m.1"));
        let refused = CallAnswer {
            code: 400,
            body: Some(r#"{"error":{"message":"No matching user found","code":100,"error_subcode":2018001}}"#.into()),
        };
        let Err(Unsent::Graph(e)) = outcome(Some(refused)) else {
            panic!("a refusal is the call's own failure");
        };
        assert_eq!(
            (e.http_status, e.code, e.subcode),
            (Some(400), Some(100), Some(2018001))
        );
        assert!(
            matches!(outcome(None), Err(Unsent::Later(None))),
            "no answer is no success, and no failure of the call's own"
        );
    }

    #[test]
    fn a_batched_send_carries_the_body_the_call_would_have_alone() {
        let payload = serde_json::json!({
            "recipient": {"id": "U1"},
            "messaging_type": "MESSAGE_TAG",
            "tag": "ACCOUNT_UPDATE",
            "message": {"text": "a & b = c?", "quick_replies": [{"content_type": "text", "title": "ok", "payload": "OK"}]},
        });
        let batch = serde_json::json!([{
            "method": "POST",
            "relative_url": "P/messages",
            "body": form_body(&payload),
        }]);
        let calls = read_calls(&batch.to_string()).expect("well formed");
        assert_eq!(calls[0].body, payload);
    }

    #[test]
    fn a_stand_in_reads_each_call_as_its_json_body_and_refuses_a_malformed_one() {
        let calls = read_calls(
            r#"[{"method":"POST","relative_url":"P/messages","body":"recipient=%7B%22id%22%3A%22U1%22%7D&sender_action=mark_seen"},
                {"method":"GET","relative_url":"me"}]"#,
        )
        .expect("well formed");
        assert_eq!(
            calls[0].body,
            serde_json::json!({"recipient": {"id": "U1"}, "sender_action": "mark_seen"})
        );
        assert_eq!(
            (calls[1].method.as_str(), calls[1].relative_url.as_str()),
            ("GET", "me")
        );
        let object_body = r#"[{"method":"GET","relative_url":"me"},{"method":"POST","relative_url":"P/messages","body":{}}]"#;
        assert!(read_calls(object_body)
            .unwrap_err()
            .contains("Batch request 1"));
        assert!(read_calls("{}").is_err());
    }
}
