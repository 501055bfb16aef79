//! The API's HTTP statuses: the one table from what became of a request
//! (`outbound::answer::Outcome`) to its status.

use actix_web::http::StatusCode;

use crate::outbound::answer::{ErrorCode, Outcome};

/// The HTTP status of `outcome`.
pub fn status_of(outcome: Outcome) -> StatusCode {
    match outcome {
        Outcome::Accepted => StatusCode::ACCEPTED,
        Outcome::Answered => StatusCode::OK,
        Outcome::Refused(code) => match code {
            ErrorCode::MalformedRequest | ErrorCode::MalformedJson => StatusCode::BAD_REQUEST,
            ErrorCode::Unauthorized => StatusCode::UNAUTHORIZED,
            ErrorCode::PageNotAllowed => StatusCode::FORBIDDEN,
            ErrorCode::RecipientNotFound | ErrorCode::RecipientNotLinked | ErrorCode::NotFound => {
                StatusCode::NOT_FOUND
            }
            ErrorCode::IdempotencyConflict => StatusCode::CONFLICT,
            ErrorCode::BodyTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ErrorCode::InvalidRequest | ErrorCode::OutsideMessagingWindow => {
                StatusCode::UNPROCESSABLE_ENTITY
            }
            ErrorCode::RateLimited => StatusCode::TOO_MANY_REQUESTS,
            ErrorCode::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        },
    }
}

/// `status_of` as a number, for `outbound::accept::Outbound`.
pub fn http_status(outcome: Outcome) -> u16 {
    status_of(outcome).as_u16()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_have_the_documented_statuses() {
        let refused = |code| http_status(Outcome::Refused(code));
        assert_eq!(http_status(Outcome::Accepted), 202);
        assert_eq!(http_status(Outcome::Answered), 200);
        assert_eq!(refused(ErrorCode::MalformedJson), 400);
        assert_eq!(refused(ErrorCode::Unauthorized), 401);
        assert_eq!(refused(ErrorCode::PageNotAllowed), 403);
        assert_eq!(refused(ErrorCode::RecipientNotLinked), 404);
        assert_eq!(refused(ErrorCode::IdempotencyConflict), 409);
        assert_eq!(refused(ErrorCode::BodyTooLarge), 413);
        assert_eq!(refused(ErrorCode::OutsideMessagingWindow), 422);
        assert_eq!(refused(ErrorCode::RateLimited), 429);
        assert_eq!(refused(ErrorCode::Internal), 500);
    }
}
