//! The account owner's decision on a Messenger identity Meta did not vouch
//! for: `POST /account/links/confirm` links it, `POST /account/links/decline`
//! drops it. Both are forms of the signed-in owner with the session's CSRF
//! token. A decision on a login from Messenger's Log in button finishes it:
//! back to Messenger with an `authorization_code` only when linked.

use actix_web::http::header;
use actix_web::{post, web, HttpRequest, HttpResponse};
use serde::Deserialize;
use tracing::{info, warn};

use super::auth::csrf_refused;
use super::session::SessionCookies;
use super::site::error_page;
use crate::linking::notice::link_announcement;
use crate::linking::{login::log_change, messenger, LoginError};
use crate::state::AppState;
use crate::store::linking::LinkChange;
use crate::store::now_ms;

#[derive(Deserialize)]
pub struct DecisionForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    id: String,
}

#[post("/account/links/confirm")]
pub async fn confirm(
    req: HttpRequest,
    form: web::Form<DecisionForm>,
    shared: web::Data<AppState>,
    cookies: web::Data<SessionCookies>,
) -> HttpResponse {
    decide(&req, &form, &shared, &cookies, true).await
}

#[post("/account/links/decline")]
pub async fn decline(
    req: HttpRequest,
    form: web::Form<DecisionForm>,
    shared: web::Data<AppState>,
    cookies: web::Data<SessionCookies>,
) -> HttpResponse {
    decide(&req, &form, &shared, &cookies, false).await
}

fn see_other(to: &str) -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header((header::LOCATION, to))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .finish()
}

async fn decide(
    req: &HttpRequest,
    form: &DecisionForm,
    shared: &AppState,
    cookies: &SessionCookies,
    confirmed: bool,
) -> HttpResponse {
    let session = cookies.read(req).await;
    let Some(account_id) = session.account_id.as_deref() else {
        return see_other("/");
    };
    if !session.csrf_ok(&form.csrf) {
        warn!("a pending link decision refused: bad or missing CSRF token");
        return csrf_refused();
    }
    let now = now_ms();
    let decided = shared
        .store
        .decide_pending_link(&form.id, account_id, confirmed, now, &|page: &str,
                                                                     psid: &str,
                                                                     name: Option<
            &str,
        >| {
            link_announcement(&shared.link_tokens, page, psid, name)
        })
        .await;
    let decided = match decided {
        Ok(Some(decided)) => decided,
        Ok(None) => return error_page(&LoginError::PendingGone),
        Err(e) => return error_page(&LoginError::Internal(e)),
    };
    let link = &decided.link;
    let linked = match &decided.change {
        Some(change) => {
            log_change(account_id, &link.psid, "confirmed", change);
            !matches!(change, LinkChange::Refused { .. } | LinkChange::Tombstoned)
        }
        None => {
            info!(
                account_id,
                psid = link.psid.as_str(),
                "the owner declined a pending link"
            );
            false
        }
    };
    // Messenger shows success only for a link that exists.
    let back = link
        .redirect_uri
        .as_deref()
        .and_then(|uri| messenger::parse_redirect(uri).ok());
    match (back, linked) {
        (Some(uri), true) => match messenger::success_redirect(shared, &uri, account_id, now).await
        {
            Ok(url) => see_other(url.as_str()),
            Err(e) => error_page(&e),
        },
        (Some(uri), false) => see_other(uri.as_str()),
        (None, _) => see_other("/account"),
    }
}
