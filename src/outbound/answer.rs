//! What the outbound API answers, as JSON.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::time::format_timestamp;
use crate::store::outbound_api::MessageStatus;
use crate::store::outbox::OutboxState;

/// 202: the message is committed and will be sent (or is held).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Accepted {
    /// The id to ask `GET /api/v1/messages/{id}` about.
    #[schema(example = "msg_6f1c2e9a0b7d4c3e8f5a1b2c3d4e5f60")]
    pub id: String,
    /// `queued`, or `held` until the person writes again.
    pub status: OutboxState,
    /// `UPDATE` inside the 24-hour window, `MESSAGE_TAG` with `HUMAN_AGENT`.
    pub messaging_type: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tag: Option<String>,
    /// A held message expires at this time (RFC 3339).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hold_until: Option<String>,
}

/// The stable code of a refusal; `Outcome::http_status` gives its status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    Unauthorized,
    MalformedRequest,
    MalformedJson,
    BodyTooLarge,
    InvalidRequest,
    RecipientNotFound,
    RecipientNotLinked,
    OutsideMessagingWindow,
    ThreadOwnedByAnotherApp,
    IdempotencyConflict,
    NotFound,
    PageNotAllowed,
    RateLimited,
    Internal,
}

/// What became of a request, or of one message of a batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Committed: queued or held (202).
    Accepted,
    /// A batch, answered message by message (200).
    Answered,
    Refused(ErrorCode),
}

impl Outcome {
    /// The HTTP status of the outcome: the API's one table of statuses
    /// (the answer's status, and each batch item's `http_status`).
    pub fn http_status(self) -> u16 {
        match self {
            Outcome::Accepted => 202,
            Outcome::Answered => 200,
            Outcome::Refused(code) => match code {
                ErrorCode::MalformedRequest | ErrorCode::MalformedJson => 400,
                ErrorCode::Unauthorized => 401,
                ErrorCode::PageNotAllowed => 403,
                ErrorCode::RecipientNotFound
                | ErrorCode::RecipientNotLinked
                | ErrorCode::NotFound => 404,
                ErrorCode::IdempotencyConflict | ErrorCode::ThreadOwnedByAnotherApp => 409,
                ErrorCode::BodyTooLarge => 413,
                ErrorCode::InvalidRequest | ErrorCode::OutsideMessagingWindow => 422,
                ErrorCode::RateLimited => 429,
                ErrorCode::Internal => 500,
            },
        }
    }
}

/// Every refusal: a stable `error` code, a sentence, and what it concerns.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ApiError {
    #[schema(example = "invalid_request")]
    pub error: ErrorCode,
    pub message: String,
    /// The request field at fault (`message.quick_replies[2].title`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// With `outside_messaging_window`: when the window closed (RFC 3339;
    /// absent when the person never wrote).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub window_closed_at: Option<String>,
}

impl ApiError {
    pub fn new(error: ErrorCode, message: impl Into<String>) -> ApiError {
        ApiError {
            error,
            message: message.into(),
            field: None,
            window_closed_at: None,
        }
    }

    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> ApiError {
        let field = field.into();
        ApiError {
            message: format!("{field}: {}", message.into()),
            field: Some(field),
            ..ApiError::new(ErrorCode::InvalidRequest, "")
        }
    }
}

/// The answer about one message: accepted, or refused.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(untagged)]
pub enum ItemAnswer {
    Accepted(Accepted),
    Refused(ApiError),
}

impl ItemAnswer {
    /// What became of the message.
    pub fn outcome(&self) -> Outcome {
        match self {
            ItemAnswer::Accepted(_) => Outcome::Accepted,
            ItemAnswer::Refused(e) => Outcome::Refused(e.error),
        }
    }
}

/// One message of a batch: its position, the HTTP status it would have had
/// alone, and that answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct BatchItem {
    pub index: usize,
    #[schema(example = 202)]
    pub http_status: u16,
    #[serde(flatten)]
    pub answer: ItemAnswer,
}

/// `POST /api/v1/messages/batch` answer (200), in request order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct BatchAnswer {
    pub accepted: usize,
    pub refused: usize,
    pub results: Vec<BatchItem>,
}

/// `GET /api/v1/messages/{id}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct StatusAnswer {
    pub id: String,
    /// `queued`, `held`, `sending`, `sent`, `delivered`, `read`, `failed`,
    /// `expired`, or `cancelled` (the person unlinked before it was sent).
    pub status: OutboxState,
    pub page_id: String,
    pub psid: String,
    pub messaging_type: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tag: Option<String>,
    /// Send attempts made so far.
    pub attempts: i64,
    /// The Send API's `message_id` once sent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message_id: Option<String>,
    /// Meta's error of the last failed attempt (kept while retrying).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<SendError>,
    pub created_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sent_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hold_until: Option<String>,
}

/// A Graph API error as Meta gave it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct SendError {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subcode: Option<i64>,
    pub message: String,
}

impl From<MessageStatus> for StatusAnswer {
    fn from(s: MessageStatus) -> StatusAnswer {
        let error = match (&s.error_message, s.error_code) {
            (None, None) => None,
            (message, code) => Some(SendError {
                code,
                subcode: s.error_subcode,
                message: message.clone().unwrap_or_default(),
            }),
        };
        StatusAnswer {
            id: s.public_id,
            status: s.state,
            page_id: s.page_id,
            psid: s.psid,
            messaging_type: s.messaging_type,
            tag: s.tag,
            attempts: s.attempts,
            message_id: s.message_id,
            error,
            created_at: format_timestamp(s.created_at),
            sent_at: s.sent_at.map(format_timestamp),
            hold_until: s.hold_until.map(format_timestamp),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_outcome_has_its_documented_status() {
        let refused = |code| Outcome::Refused(code).http_status();
        assert_eq!(Outcome::Accepted.http_status(), 202);
        assert_eq!(Outcome::Answered.http_status(), 200);
        assert_eq!(refused(ErrorCode::MalformedRequest), 400);
        assert_eq!(refused(ErrorCode::MalformedJson), 400);
        assert_eq!(refused(ErrorCode::Unauthorized), 401);
        assert_eq!(refused(ErrorCode::PageNotAllowed), 403);
        assert_eq!(refused(ErrorCode::RecipientNotFound), 404);
        assert_eq!(refused(ErrorCode::RecipientNotLinked), 404);
        assert_eq!(refused(ErrorCode::NotFound), 404);
        assert_eq!(refused(ErrorCode::IdempotencyConflict), 409);
        assert_eq!(refused(ErrorCode::ThreadOwnedByAnotherApp), 409);
        assert_eq!(refused(ErrorCode::BodyTooLarge), 413);
        assert_eq!(refused(ErrorCode::InvalidRequest), 422);
        assert_eq!(refused(ErrorCode::OutsideMessagingWindow), 422);
        assert_eq!(refused(ErrorCode::RateLimited), 429);
        assert_eq!(refused(ErrorCode::Internal), 500);
    }
}
