//! Graph batch requests: several calls in one HTTP round trip (Meta takes
//! up to 50 and counts each against the Page's limits as if made alone).
//! Used for `mark_seen`, which every message gets (`facebook::seen_queue`);
//! `read_calls` is the other side, for the Graph stand-ins (the demo's
//! sandbox, the benchmark's, the tests').

use secrecy::SecretString;
use serde::Deserialize;
use serde_json::Value;

use super::{GraphClient, GraphError, SenderAction};

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
    /// `action` for each of `psids` (at most `BATCH_MAX`) of `page_id`, in
    /// one batch request: each call's outcome in order, or the whole
    /// request's error.
    pub async fn sender_action_batch(
        &self,
        page_id: &str,
        page_token: &SecretString,
        psids: &[String],
        action: SenderAction,
    ) -> Result<Vec<Result<(), GraphError>>, GraphError> {
        if psids.len() > BATCH_MAX {
            return Err(GraphError {
                message: format!("a batch of {} calls (at most {BATCH_MAX})", psids.len()),
                ..GraphError::default()
            });
        }
        let calls: Vec<serde_json::Value> = psids
            .iter()
            .map(|psid| {
                let recipient = serde_json::json!({ "id": psid }).to_string();
                let body = url::form_urlencoded::Serializer::new(String::new())
                    .append_pair("recipient", &recipient)
                    .append_pair("sender_action", action.as_str())
                    .finish();
                serde_json::json!({
                    "method": "POST",
                    "relative_url": format!("{page_id}/messages"),
                    "body": body,
                })
            })
            .collect();
        let batch = serde_json::Value::Array(calls).to_string();
        let request = self
            .http
            .post(self.url("")?)
            .query(&self.auth(page_token))
            .form(&[("include_headers", "false"), ("batch", batch.as_str())]);
        let answers: Vec<Option<CallAnswer>> = self.execute(request).await?;
        if answers.len() != psids.len() {
            return Err(GraphError {
                http_status: Some(200),
                message: format!(
                    "a batch answer with {} answers for {} calls",
                    answers.len(),
                    psids.len()
                ),
                ..GraphError::default()
            });
        }
        Ok(answers.into_iter().map(outcome).collect())
    }
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

fn outcome(answer: Option<CallAnswer>) -> Result<(), GraphError> {
    match answer {
        Some(CallAnswer { code, .. }) if (200..300).contains(&code) => Ok(()),
        Some(CallAnswer { code, body }) => Err(GraphError::from_body(
            Some(code),
            body.unwrap_or_default().as_bytes(),
        )),
        None => Err(GraphError {
            message: "the batch gave this call no answer (it did not finish in time)".into(),
            ..GraphError::default()
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_call_of_a_batch_answers_for_itself() {
        let ok = CallAnswer {
            code: 200,
            body: Some("{}".into()),
        };
        assert!(outcome(Some(ok)).is_ok());
        let refused = CallAnswer {
            code: 400,
            body: Some(r#"{"error":{"message":"No matching user found","code":100,"error_subcode":2018001}}"#.into()),
        };
        let e = outcome(Some(refused)).unwrap_err();
        assert_eq!(
            (e.http_status, e.code, e.subcode),
            (Some(400), Some(100), Some(2018001))
        );
        assert!(outcome(None).is_err(), "no answer is no success");
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
