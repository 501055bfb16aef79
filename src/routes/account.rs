//! `/account`: who is signed in, the linked Messenger identities, the m.me
//! link that finishes linking, and unlinking.

use actix_web::http::StatusCode;
use actix_web::{get, post, web, HttpResponse};
use askama::Template;
use tracing::info;

use super::session::SessionCookies;
use super::signed_in::{CsrfOnly, HasCsrf, SignedIn, SignedInForm};
use super::site::page;
use super::site_error::{see_other, SiteError};
use crate::linking::tokens::Purpose;
use crate::linking::{utc, LoginError};
use crate::state::AppState;
use crate::store::now_ms;
use crate::store::pending_links::PendingLink;

/// A link this new is announced at the top of its entry.
const NEW_LINK_MS: i64 = 7 * 24 * 3_600_000;

struct LinkView {
    page_id: String,
    psid: String,
    source: String,
    linked_at: String,
    is_new: bool,
}

/// A Messenger identity waiting for the owner, as the owner sees it.
struct PendingView {
    id: String,
    name: Option<String>,
    profile_pic: Option<String>,
    how: &'static str,
    expires: String,
}

impl From<PendingLink> for PendingView {
    fn from(p: PendingLink) -> PendingView {
        PendingView {
            id: p.id,
            name: p.name,
            profile_pic: p.profile_pic,
            how: match p.source.as_str() {
                "ref" => "opened the Messenger link from your account page",
                _ => "tapped Log in in Messenger, and you signed in with that link",
            },
            expires: utc(p.expires_at),
        }
    }
}

#[derive(Template)]
#[template(path = "account.html")]
struct AccountPage {
    account_id: String,
    name: Option<String>,
    token_status: String,
    links: Vec<LinkView>,
    pending: Vec<PendingView>,
    messenger_url: Option<String>,
    can_unlink: bool,
    csrf: String,
}

#[get("/account")]
pub async fn account(
    visitor: SignedIn,
    shared: web::Data<AppState>,
    cookies: web::Data<SessionCookies>,
) -> Result<HttpResponse, SiteError> {
    let session = &visitor.session;
    match view(&shared, &visitor.account_id, session.csrf.clone()).await? {
        Some(view) => {
            let mut response = page(StatusCode::OK, view.render());
            // Keeps a freshly minted CSRF token in the cookie.
            let _ = response.add_cookie(&cookies.cookie(session));
            Ok(response)
        }
        None => {
            let mut home = see_other("/");
            let _ = home.add_cookie(&cookies.removal());
            Ok(home)
        }
    }
}

async fn view(
    shared: &AppState,
    account_id: &str,
    csrf: String,
) -> anyhow::Result<Option<AccountPage>> {
    let Some(summary) = shared.store.account(account_id).await? else {
        return Ok(None);
    };
    let now = now_ms();
    let links = shared.store.links_for_account(account_id).await?;
    let pending = shared.store.pending_links(account_id, now).await?;
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
                page_id: l.page_id,
                psid: l.psid,
                source: l.source,
                linked_at: utc(l.linked_at),
                is_new: now - l.linked_at < NEW_LINK_MS,
            })
            .collect(),
        pending: pending.into_iter().map(PendingView::from).collect(),
        messenger_url,
        csrf,
    }))
}

/// `https://m.me/{page}?ref={token}` (or under MESSENGER_LINK_URL): a fresh
/// single-use token each time.
async fn messenger_url(shared: &AppState, account_id: &str) -> anyhow::Result<String> {
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
    form: SignedInForm<CsrfOnly>,
    shared: web::Data<AppState>,
) -> Result<HttpResponse, SiteError> {
    let account_id = form.account_id.as_str();
    let removed = shared.store.unlink_account(account_id, now_ms()).await?;
    info!(
        account_id,
        links_removed = removed,
        "account unlinked; user token forgotten"
    );
    Ok(see_other("/account"))
}

#[derive(serde::Deserialize)]
pub struct UnlinkOneForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    page_id: String,
    #[serde(default)]
    psid: String,
}

impl HasCsrf for UnlinkOneForm {
    fn csrf(&self) -> &str {
        &self.csrf
    }
}

/// Unlinks one Messenger identity of the signed-in account: the unlink
/// sticks, and what waits for that identity is cancelled.
#[post("/account/links/unlink")]
pub async fn unlink_one(
    checked: SignedInForm<UnlinkOneForm>,
    shared: web::Data<AppState>,
) -> Result<HttpResponse, SiteError> {
    let account_id = checked.account_id.as_str();
    let form = &checked.form;
    let unlinked = shared
        .store
        .unlink_account_psid(account_id, &form.page_id, &form.psid, now_ms())
        .await?
        .ok_or(LoginError::NoSuchLink)?;
    info!(
        account_id,
        psid = form.psid.as_str(),
        cancelled = unlinked.cancelled,
        "PSID unlinked on the account page"
    );
    Ok(see_other("/account"))
}
