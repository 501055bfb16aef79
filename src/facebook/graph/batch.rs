//! Graph batch requests: several calls in one HTTP round trip (Meta takes
//! up to 50 and counts each against the Page's limits as if made alone).
//! Used for `mark_seen`, which every message gets (`facebook::seen_queue`).

use secrecy::SecretString;
use serde::Deserialize;

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
}
