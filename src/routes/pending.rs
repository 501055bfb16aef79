//! The account owner's decision on a Messenger identity Meta did not vouch
//! for: `POST /account/links/confirm` links it, `POST /account/links/decline`
//! drops it. Both are forms of the signed-in owner with the session's CSRF
//! token. A decision on a login from Messenger's Log in button finishes it:
//! back to Messenger with an `authorization_code` only when linked.

use actix_web::{post, web, HttpResponse};
use serde::Deserialize;
use tracing::info;

use super::signed_in::{HasCsrf, SignedInForm};
use super::site_error::{see_other, SiteError};
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

impl HasCsrf for DecisionForm {
    fn csrf(&self) -> &str {
        &self.csrf
    }
}

#[post("/account/links/confirm")]
pub async fn confirm(
    form: SignedInForm<DecisionForm>,
    shared: web::Data<AppState>,
) -> Result<HttpResponse, SiteError> {
    decide(&form, &shared, true).await
}

#[post("/account/links/decline")]
pub async fn decline(
    form: SignedInForm<DecisionForm>,
    shared: web::Data<AppState>,
) -> Result<HttpResponse, SiteError> {
    decide(&form, &shared, false).await
}

async fn decide(
    checked: &SignedInForm<DecisionForm>,
    shared: &AppState,
    confirmed: bool,
) -> Result<HttpResponse, SiteError> {
    let account_id = checked.account_id.as_str();
    let form = &checked.form;
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
        .await?
        .ok_or(LoginError::PendingGone)?;
    let link = &decided.link;
    let linked = match &decided.change {
        Some(change) => {
            log_change(&shared.metrics, account_id, &link.psid, "confirmed", change);
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
    Ok(match (back, linked) {
        (Some(uri), true) => {
            let url = messenger::success_redirect(shared, &uri, account_id, now).await?;
            see_other(url.as_str())
        }
        (Some(uri), false) => see_other(uri.as_str()),
        (None, _) => see_other("/account"),
    })
}
