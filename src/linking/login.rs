//! The Graph half of Facebook Login: who the person is, a long-lived token,
//! and the PSIDs Meta says are theirs on the Page. Every Graph call is made
//! before anything is stored, so a failure leaves nothing behind.

use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use tracing::{info, warn};

use super::messenger;
use super::oauth::FacebookOAuth;
use super::LoginError;
use crate::store::linking::{LinkChange, LoginRecord, OnOtherOwner};
use crate::store::now_ms;
use crate::workers::Shared;

/// At most this many pages of `ids_for_pages` are read.
const MAX_PAGES: usize = 20;

/// A finished login.
#[derive(Debug, Clone)]
pub struct LoginResult {
    pub account_id: String,
    /// The PSIDs linked by this login (ids_for_pages, account_link).
    pub psids: Vec<String>,
}

struct Identity {
    uid: String,
    name: Option<String>,
    token: SecretString,
    expires_at: Option<i64>,
}

#[derive(Deserialize)]
struct Me {
    id: String,
    name: Option<String>,
}

#[derive(Deserialize)]
struct LongLived {
    access_token: String,
    expires_in: Option<i64>,
}

#[derive(Deserialize)]
struct PageToken {
    access_token: Option<String>,
}

#[derive(Deserialize)]
struct Paged<T> {
    #[serde(default = "Vec::new")]
    data: Vec<T>,
    paging: Option<Paging>,
}

#[derive(Deserialize)]
struct Paging {
    next: Option<String>,
}

#[derive(Deserialize)]
struct ScopedId {
    id: String,
    page: Option<IdOnly>,
}

#[derive(Deserialize)]
struct IdOnly {
    id: String,
}

/// Runs the whole login for `code`; with `account_linking_token` (Messenger's
/// account-link button) the PSID Messenger names is linked too.
pub async fn complete(
    shared: &Shared,
    oauth: &FacebookOAuth,
    code: &str,
    account_linking_token: Option<&str>,
) -> Result<LoginResult, LoginError> {
    let identity = identify(shared, oauth, code).await?;
    let page_id = shared.settings.facebook.page_id.as_str();
    let page_token = page_token(shared, oauth, &identity.token).await?;
    let psids = psids_for(shared, &page_token, &identity.uid).await?;
    let recipient = match account_linking_token {
        Some(t) => Some(messenger::recipient(shared, &page_token, t).await?),
        None => None,
    };
    let now = now_ms();
    let encrypted = shared.cipher.encrypt(&identity.token);
    let (account_id, changes) = shared
        .store
        .save_login(&LoginRecord {
            fb_uid: &identity.uid,
            name: identity.name.as_deref(),
            encrypted_token: &encrypted,
            token_expires_at: identity.expires_at,
            page_id,
            psids: &psids,
            now,
        })
        .await?;
    let mut linked = Vec::new();
    for (psid, change) in changes {
        log_change(&account_id, &psid, "ids_for_pages", &change);
        linked.push(psid);
    }
    if let Some(psid) = recipient {
        // Messenger itself vouches that this PSID is the person logging in.
        let change = shared
            .store
            .link_psid(
                page_id,
                &psid,
                &account_id,
                "account_link",
                OnOtherOwner::Move,
                now,
            )
            .await?;
        log_change(&account_id, &psid, "account_link", &change);
        if !linked.contains(&psid) {
            linked.push(psid);
        }
    }
    info!(account_id, links = linked.len(), "login completed");
    Ok(LoginResult {
        account_id,
        psids: linked,
    })
}

pub fn log_change(account_id: &str, psid: &str, source: &str, change: &LinkChange) {
    match change {
        LinkChange::Linked => info!(account_id, psid, source, "PSID linked"),
        LinkChange::Unchanged => {}
        LinkChange::Moved { from } => warn!(
            account_id,
            psid,
            source,
            from_account = from.as_str(),
            "PSID moved to another account: Meta says it belongs to this person now"
        ),
        LinkChange::Refused { owner } => warn!(
            account_id,
            psid,
            source,
            owner = owner.as_str(),
            "PSID left with the account it is linked to"
        ),
    }
}

/// code -> short-lived token -> `/me` -> long-lived token.
async fn identify(
    shared: &Shared,
    oauth: &FacebookOAuth,
    code: &str,
) -> Result<Identity, LoginError> {
    let graph = &shared.graph;
    let short = oauth
        .exchange_code(code)
        .await
        .map_err(LoginError::graph("code exchange"))?;
    let me: Me = graph
        .get("me", &short, &[("fields", "id,name")])
        .await
        .map_err(LoginError::graph("/me"))?;
    let fb = &shared.settings.facebook;
    let long: LongLived = graph
        .get(
            "oauth/access_token",
            &short,
            &[
                ("grant_type", "fb_exchange_token"),
                ("client_id", fb.app_id.as_str()),
                ("client_secret", fb.app_secret.expose_secret()),
                ("fb_exchange_token", short.expose_secret()),
            ],
        )
        .await
        .map_err(LoginError::graph("long-lived token exchange"))?;
    if me.id.trim().is_empty() || long.access_token.is_empty() {
        return Err(LoginError::Graph {
            step: "/me",
            error: crate::facebook::GraphError {
                http_status: Some(502),
                message: "an empty user id or token".into(),
                ..Default::default()
            },
        });
    }
    Ok(Identity {
        uid: me.id,
        name: me.name,
        token: SecretString::from(long.access_token),
        expires_at: long.expires_in.map(|s| now_ms() + s * 1000),
    })
}

/// The Page token for the lookups: a Page admin's fresh one when the scope
/// asks for it and Meta gives it (stored, encrypted), else the configured one.
async fn page_token(
    shared: &Shared,
    oauth: &FacebookOAuth,
    user_token: &SecretString,
) -> Result<SecretString, LoginError> {
    let fb = &shared.settings.facebook;
    if oauth.asks_for_pages() {
        match shared
            .graph
            .get::<PageToken>(&fb.page_id, user_token, &[("fields", "access_token")])
            .await
        {
            Ok(PageToken {
                access_token: Some(token),
            }) if !token.is_empty() => {
                let token = SecretString::from(token);
                shared
                    .store
                    .set_page(&fb.page_id, None, &shared.cipher.encrypt(&token), now_ms())
                    .await?;
                info!(
                    page_id = fb.page_id.as_str(),
                    "stored the Page token of a Page admin's login"
                );
                return Ok(token);
            }
            Ok(_) => {
                info!("the person does not administer the Page; using the configured Page token")
            }
            Err(e) => {
                info!(code = ?e.code, "no Page token from this login ({}); using the configured one", e.message)
            }
        }
    }
    Ok(fb.page_access_token.clone())
}

/// `GET /{uid}/ids_for_pages?page={page-id}`, every page of it. Meta refusing
/// (the app and Page in different Businesses, a missing permission) means
/// "nothing found": the account page then offers the m.me link. Transient
/// failures fail the login, since a retry may find the PSID.
async fn psids_for(
    shared: &Shared,
    page_token: &SecretString,
    uid: &str,
) -> Result<Vec<String>, LoginError> {
    let page_id = shared.settings.facebook.page_id.as_str();
    let first = shared
        .graph
        .get::<Paged<ScopedId>>(
            &format!("{uid}/ids_for_pages"),
            page_token,
            &[("page", page_id)],
        )
        .await;
    let mut batch = match first {
        Ok(batch) => batch,
        Err(e) if !e.is_transient() => {
            warn!(code = ?e.code, subcode = ?e.subcode, fbtrace_id = ?e.fbtrace_id,
                "ids_for_pages refused; the person can finish linking through m.me ({})", e.message);
            return Ok(Vec::new());
        }
        Err(e) => {
            return Err(LoginError::Graph {
                step: "ids_for_pages",
                error: e,
            })
        }
    };
    let mut psids = Vec::new();
    for _ in 0..MAX_PAGES {
        for id in batch.data {
            let on_page = id.page.as_ref().is_none_or(|p| p.id == page_id);
            if on_page && !id.id.is_empty() && !psids.contains(&id.id) {
                psids.push(id.id);
            }
        }
        let Some(next) = batch.paging.and_then(|p| p.next) else {
            break;
        };
        batch = shared
            .graph
            .get_next(&next, page_token)
            .await
            .map_err(LoginError::graph("ids_for_pages (next page)"))?;
    }
    Ok(psids)
}
