//! `/account`: who is signed in, the linked Messenger identities, the m.me
//! link that finishes linking, and unlinking.

use actix_web::http::{header, StatusCode};
use actix_web::{get, post, web, HttpRequest, HttpResponse};
use askama::Template;
use tracing::info;

use super::auth::{csrf_refused, CsrfForm};
use super::session::SessionCookies;
use super::site::{error_page, page};
use crate::linking::tokens::Purpose;
use crate::linking::{utc, LoginError};
use crate::store::now_ms;
use crate::workers::Shared;

struct LinkView {
    psid: String,
    source: String,
    linked_at: String,
}

#[derive(Template)]
#[template(path = "account.html")]
struct AccountPage {
    account_id: String,
    name: Option<String>,
    token_status: String,
    links: Vec<LinkView>,
    messenger_url: Option<String>,
    can_unlink: bool,
    csrf: String,
}

fn to_home() -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header((header::LOCATION, "/"))
        .finish()
}

#[get("/account")]
pub async fn account(
    req: HttpRequest,
    shared: web::Data<Shared>,
    cookies: web::Data<SessionCookies>,
) -> HttpResponse {
    let session = cookies.read(&req);
    let Some(account_id) = session.account_id.clone() else {
        return to_home();
    };
    match view(&shared, &account_id, session.csrf.clone()).await {
        Ok(Some(view)) => {
            let mut response = page(StatusCode::OK, view.render());
            // Keeps a freshly minted CSRF token in the cookie.
            let _ = response.add_cookie(&cookies.cookie(&session));
            response
        }
        Ok(None) => HttpResponse::SeeOther()
            .insert_header((header::LOCATION, "/"))
            .cookie(cookies.removal())
            .finish(),
        Err(e) => error_page(&LoginError::Internal(e)),
    }
}

async fn view(
    shared: &Shared,
    account_id: &str,
    csrf: String,
) -> anyhow::Result<Option<AccountPage>> {
    let Some(summary) = shared.store.account(account_id).await? else {
        return Ok(None);
    };
    let links = shared.store.links_for_account(account_id).await?;
    let messenger_url = if links.is_empty() {
        Some(messenger_url(shared, account_id).await?)
    } else {
        None
    };
    let token_status = match (summary.has_token, summary.token_expires_at) {
        (false, _) => "not stored (unlinked)".to_string(),
        (true, Some(at)) => format!("valid until {}", utc(at)),
        (true, None) => "valid".to_string(),
    };
    Ok(Some(AccountPage {
        account_id: summary.id,
        name: summary.name,
        token_status,
        can_unlink: summary.has_token || !links.is_empty(),
        links: links
            .into_iter()
            .map(|l| LinkView {
                psid: l.psid,
                source: l.source,
                linked_at: utc(l.linked_at),
            })
            .collect(),
        messenger_url,
        csrf,
    }))
}

/// `https://m.me/{page}?ref={token}` (or under MESSENGER_LINK_URL): a fresh
/// single-use token each time.
async fn messenger_url(shared: &Shared, account_id: &str) -> anyhow::Result<String> {
    let token = shared
        .issue_link_token(Purpose::Ref, account_id, now_ms())
        .await?;
    let fb = &shared.settings.facebook;
    let mut url = fb.messenger_link_url.clone();
    url.path_segments_mut()
        .map_err(|_| anyhow::anyhow!("MESSENGER_LINK_URL cannot take a path"))?
        .pop_if_empty()
        .push(&fb.page_id);
    url.query_pairs_mut().append_pair("ref", &token);
    Ok(url.to_string())
}

#[post("/account/unlink")]
pub async fn unlink(
    req: HttpRequest,
    form: web::Form<CsrfForm>,
    shared: web::Data<Shared>,
    cookies: web::Data<SessionCookies>,
) -> HttpResponse {
    let session = cookies.read(&req);
    let Some(account_id) = session.account_id.as_deref() else {
        return to_home();
    };
    if !session.csrf_ok(form.csrf()) {
        return csrf_refused();
    }
    match shared.store.unlink_account(account_id, now_ms()).await {
        Ok(removed) => {
            info!(
                account_id,
                links_removed = removed,
                "account unlinked; user token forgotten"
            );
            HttpResponse::SeeOther()
                .insert_header((header::LOCATION, "/account"))
                .finish()
        }
        Err(e) => error_page(&LoginError::Internal(e)),
    }
}
