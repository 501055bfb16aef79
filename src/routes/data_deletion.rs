//! Meta's data-deletion callback and its status page.
//!
//! `POST /facebook/data-deletion` takes the form field `signed_request`
//! (`facebook::signed_request`, checked under the app secret); a request
//! that does not verify is refused with 400 and changes nothing. A verified
//! one erases the person now (`store::erasure`) and answers, as Meta
//! requires, `{"url": "<PUBLIC_URL>/facebook/data-deletion/status?id=<code>",
//! "confirmation_code": "<code>"}`; the code is the request's own
//! (`DeletionRequest::confirmation_code`), so the same request again is
//! answered with its first erasure and erases nothing more. `GET /facebook/data-deletion/status?id=`
//! shows what was done for that code alone; any other code is 404.

use actix_web::http::StatusCode;
use actix_web::{get, post, web, HttpRequest, HttpResponse, ResponseError};
use askama::Template;
use serde_json::json;
use tracing::{error, info, warn};

use super::site::page;
use crate::facebook::signed_request::{self, SignedRequestError};
use crate::linking::utc;
use crate::state::AppState;
use crate::store::erasure::{DeletionRecord, Subject};
use crate::store::now_ms;

/// The first value of form field `name` in an urlencoded body.
fn form_field(body: &[u8], name: &str) -> Option<String> {
    url::form_urlencoded::parse(body)
        .find(|(key, _)| key == name)
        .map(|(_, value)| value.into_owned())
}

/// Why a data-deletion request or status page is not answered as asked.
#[derive(Debug, thiserror::Error)]
pub enum DeletionError {
    /// 400: the signed request does not verify; nothing was erased.
    #[error(transparent)]
    Refused(#[from] SignedRequestError),
    /// 500: the erasure failed; nothing was erased.
    #[error("the deletion could not be done now; nothing was erased, please ask again")]
    Failed(#[source] anyhow::Error),
    /// 404: no deletion has this confirmation code.
    #[error("no such deletion request")]
    UnknownCode,
    /// 503: the status could not be read.
    #[error("the status of this request cannot be read right now")]
    StatusUnreadable(#[source] anyhow::Error),
}

impl ResponseError for DeletionError {
    fn status_code(&self) -> StatusCode {
        match self {
            DeletionError::Refused(_) => StatusCode::BAD_REQUEST,
            DeletionError::Failed(_) => StatusCode::INTERNAL_SERVER_ERROR,
            DeletionError::UnknownCode => StatusCode::NOT_FOUND,
            DeletionError::StatusUnreadable(_) => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let (heading, message) = match self {
            DeletionError::Refused(e) => {
                warn!(error = %e, "data-deletion request refused");
                return HttpResponse::BadRequest().json(json!({"error": e.to_string()}));
            }
            DeletionError::Failed(e) => {
                error!(error = %format!("{e:#}"), "a data deletion failed; nothing was erased");
                return HttpResponse::InternalServerError()
                    .json(json!({"error": self.to_string()}));
            }
            DeletionError::UnknownCode => (
                "No such deletion request",
                "This confirmation code is not one of ours. Check that the whole link was copied.",
            ),
            DeletionError::StatusUnreadable(e) => {
                error!(error = %format!("{e:#}"), "reading a data deletion failed");
                (
                    "Please try again",
                    "The status of this request cannot be read right now.",
                )
            }
        };
        page(self.status_code(), Unknown { heading, message }.render())
    }
}

#[post("/facebook/data-deletion")]
pub async fn request(
    body: web::Bytes,
    shared: web::Data<AppState>,
) -> Result<HttpResponse, DeletionError> {
    let signed = form_field(&body, "signed_request").ok_or(SignedRequestError::Missing)?;
    let secret = shared.app_secret();
    let request = signed_request::parse(&signed, secret)?;
    let erasure = shared
        .store
        .erase_person(
            Subject::FacebookUser(&request.user_id),
            "facebook",
            now_ms(),
            Some(&request.confirmation_code),
        )
        .await
        .map_err(DeletionError::Failed)?
        .ok_or_else(|| DeletionError::Failed(anyhow::anyhow!("no erasure recorded")))?;
    // The log names no one: the counts only.
    info!(
        rows = erasure.erased.total(),
        accounts = erasure.erased.accounts,
        "data deletion requested by Meta done"
    );
    Ok(HttpResponse::Ok().json(json!({
        "url": erasure.status_url(&shared.settings.public_url),
        "confirmation_code": erasure.code,
    })))
}

/// One kind of data and how many rows of it went.
struct Line {
    what: &'static str,
    rows: u64,
}

#[derive(Template)]
#[template(path = "data_deletion.html")]
struct StatusPage {
    code: String,
    requested_by: &'static str,
    completed: String,
    lines: Vec<Line>,
    nothing_found: bool,
}

impl StatusPage {
    fn new(code: String, record: DeletionRecord) -> StatusPage {
        let e = &record.erased;
        let lines = [
            ("your account", e.accounts),
            ("Messenger identities linked to you", e.messenger_identities),
            ("links between your account and Messenger", e.links),
            ("messages you wrote to the Page", e.inbox),
            ("messages sent to you", e.outbox),
            (
                "conversations (and what the assistant remembered of them)",
                e.conversations,
            ),
            ("lookups of your Messenger identity", e.psid_lookups),
            ("records of an unlink", e.link_tombstones),
            ("links waiting for your confirmation", e.pending_links),
            ("link codes", e.link_tokens),
            ("sign-in sessions", e.sessions),
        ]
        .into_iter()
        .filter(|(_, rows)| *rows > 0)
        .map(|(what, rows)| Line { what, rows })
        .collect::<Vec<_>>();
        StatusPage {
            code,
            requested_by: match record.source.as_str() {
                "facebook" => "through Facebook (Settings & Privacy, Apps and Websites)",
                _ => "by our support team, on your behalf",
            },
            completed: utc(record.completed_at),
            nothing_found: lines.is_empty(),
            lines,
        }
    }
}

#[derive(Template)]
#[template(path = "error.html")]
struct Unknown<'a> {
    heading: &'a str,
    message: &'a str,
}

#[get("/facebook/data-deletion/status")]
pub async fn status(
    req: HttpRequest,
    shared: web::Data<AppState>,
) -> Result<HttpResponse, DeletionError> {
    let code = form_field(req.query_string().as_bytes(), "id").unwrap_or_default();
    let record = shared
        .store
        .data_deletion(code.trim())
        .await
        .map_err(DeletionError::StatusUnreadable)?
        .ok_or(DeletionError::UnknownCode)?;
    Ok(page(StatusCode::OK, StatusPage::new(code, record).render()))
}
