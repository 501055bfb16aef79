//! `GET /api/v1/openapi.json`: the API's OpenAPI 3.1 description, generated
//! from the handlers and types above.

use actix_web::HttpResponse;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::outbound::{answer, request};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "lexbridge outbound API",
        description = "Message the people linked to your accounts on Messenger, within Messenger's \
                       24-hour window rules. Keys come from `lexbridge api-key create`."
    ),
    paths(super::messages::send, super::messages::send_batch, super::messages::status),
    components(schemas(
        request::MessageRequest, request::RecipientSpec, request::MessageSpec,
        request::QuickReplySpec, request::ButtonSpec, request::AttachmentSpec, request::ElementSpec, request::InstagramRecipient,
        request::IfOutsideWindow, answer::Accepted, answer::ApiError, answer::ItemAnswer,
        answer::BatchItem, answer::BatchAnswer, answer::StatusAnswer, answer::SendError
    )),
    modifiers(&BearerKeys)
)]
pub struct ApiDoc;

struct BearerKeys;

impl Modify for BearerKeys {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "api_key",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// The document, built once.
static SPEC: std::sync::LazyLock<String> =
    std::sync::LazyLock::new(|| ApiDoc::openapi().to_json().unwrap_or_default());

pub async fn spec() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/json")
        .body(SPEC.as_str())
}
