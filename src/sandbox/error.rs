//! Meta's error answers: `{"error": {message, type, code, error_subcode,
//! fbtrace_id}}` with the HTTP status Graph gives them.

use actix_web::http::StatusCode;
use actix_web::HttpResponse;
use serde_json::json;

/// One Graph error, as Meta words and numbers it.
#[derive(Debug, Clone, PartialEq)]
pub struct MetaError {
    pub status: u16,
    pub kind: &'static str,
    pub code: i64,
    pub subcode: Option<i64>,
    pub message: String,
}

impl MetaError {
    pub fn new(code: i64, kind: &'static str, message: impl Into<String>) -> MetaError {
        MetaError {
            status: 400,
            kind,
            code,
            subcode: None,
            message: message.into(),
        }
    }

    pub fn subcode(mut self, subcode: i64) -> MetaError {
        self.subcode = Some(subcode);
        self
    }

    /// `(#100) …`: a parameter is missing or breaks a rule.
    pub fn param(message: impl std::fmt::Display) -> MetaError {
        MetaError::new(100, "OAuthException", format!("(#100) {message}"))
    }

    /// A path Graph does not know, or an object the token may not see.
    pub fn unsupported(what: &str) -> MetaError {
        MetaError::new(
            100,
            "GraphMethodException",
            format!("Unsupported {what} request. Object with ID does not exist, cannot be loaded due to missing permissions, or does not support this operation."),
        )
        .subcode(33)
    }

    /// Code 190: a token Graph cannot use.
    pub fn bad_token(message: &str) -> MetaError {
        MetaError::new(190, "OAuthException", message)
    }

    /// Code 10 / 2018278: the Send API outside the person's window.
    pub fn outside_window() -> MetaError {
        MetaError::new(
            10,
            "OAuthException",
            "(#10) This message is sent outside of allowed window. Learn more about the new policy here: https://developers.facebook.com/docs/messenger-platform/policy-overview",
        )
        .subcode(2018278)
    }

    /// Code 10 / 2018300: another app owns the person's thread.
    pub fn thread_elsewhere() -> MetaError {
        MetaError::new(
            10,
            "OAuthException",
            "(#10) Another app is controlling this thread now.",
        )
        .subcode(2018300)
    }

    /// The JSON body Meta sends.
    pub fn body(&self) -> serde_json::Value {
        let mut error = json!({
            "message": self.message,
            "type": self.kind,
            "code": self.code,
            "fbtrace_id": fbtrace_id(),
        });
        if let Some(subcode) = self.subcode {
            error["error_subcode"] = json!(subcode);
        }
        json!({ "error": error })
    }

    pub fn response(&self) -> HttpResponse {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::BAD_REQUEST);
        HttpResponse::build(status)
            .insert_header(("WWW-Authenticate", "OAuth \"Facebook Platform\""))
            .json(self.body())
    }
}

/// A trace id in Meta's style (random, only for telling answers apart).
fn fbtrace_id() -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(rand::random::<[u8; 8]>())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::facebook::GraphError;

    #[test]
    fn the_product_reads_a_sandbox_error_as_a_graph_error() {
        let error = MetaError::outside_window();
        let body = serde_json::to_vec(&error.body()).unwrap();
        let read = GraphError::from_body(Some(400), &body);
        assert_eq!(read.code, Some(10));
        assert_eq!(read.subcode, Some(2018278));
        assert!(read.fbtrace_id.is_some());
        assert!(!read.is_transient());
    }
}
