//! `GET /debug_token?input_token=…` with the app's token (`{app-id}|{app
//! secret}`): whether a token is valid and until when.

use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

use super::graph::{GraphClient, GraphError};

/// What Meta says of a token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenStatus {
    pub is_valid: bool,
    /// When it expires, in epoch milliseconds; `None` when it never does
    /// (Meta's `expires_at: 0`) or Meta gave no time.
    pub expires_at_ms: Option<i64>,
    /// Meta's reason when it is invalid (its `error.message`), if any.
    pub problem: Option<String>,
    /// `PAGE`, `USER`, `APP`, … as Meta says.
    pub kind: Option<String>,
    /// For a Page token, the Page it speaks for.
    pub profile_id: Option<String>,
}

#[derive(Deserialize)]
struct Answer {
    data: Data,
}

#[derive(Deserialize)]
struct Data {
    is_valid: bool,
    #[serde(default)]
    expires_at: Option<i64>,
    #[serde(default)]
    error: Option<Problem>,
    #[serde(default, rename = "type")]
    kind: Option<String>,
    #[serde(default, deserialize_with = "super::events::id_text")]
    profile_id: Option<String>,
}

#[derive(Deserialize)]
struct Problem {
    #[serde(default)]
    message: String,
}

impl GraphClient {
    /// Inspects `input` with the app token of `app_id` and this client's
    /// app secret. Neither token appears in an error.
    pub async fn debug_token(
        &self,
        app_id: &str,
        input: &SecretString,
    ) -> Result<TokenStatus, GraphError> {
        let app_token =
            SecretString::from(format!("{app_id}|{}", self.app_secret().expose_secret()));
        let answer: Answer = self
            .get(
                "debug_token",
                &app_token,
                &[("input_token", input.expose_secret())],
            )
            .await?;
        Ok(TokenStatus {
            is_valid: answer.data.is_valid,
            expires_at_ms: answer
                .data
                .expires_at
                .filter(|s| *s > 0)
                .map(|s| s.saturating_mul(1000)),
            problem: answer.data.error.map(|e| e.message),
            kind: answer.data.kind,
            profile_id: answer.data.profile_id,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn never_expiring_and_invalid_tokens_are_read() {
        let never: Answer =
            serde_json::from_str(r#"{"data":{"is_valid":true,"expires_at":0,"type":"PAGE"}}"#)
                .unwrap();
        assert!(never.data.is_valid);
        assert_eq!(never.data.expires_at.filter(|s| *s > 0), None);
        let invalid: Answer = serde_json::from_str(
            r#"{"data":{"is_valid":false,"expires_at":1352419328,
                "error":{"code":190,"message":"Session has expired","subcode":463}}}"#,
        )
        .unwrap();
        assert!(!invalid.data.is_valid);
        assert_eq!(invalid.data.error.unwrap().message, "Session has expired");
    }
}
