//! The Graph half of Facebook Login: who the person is, a long-lived token,
//! and the PSIDs Meta says are theirs on the Page. Every Graph call is made
//! before anything is stored, so a failure leaves nothing behind.

use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use tracing::{info, warn};

use super::messenger;
use super::notice::{self, link_announcement};
use super::oauth::FacebookOAuth;
use super::LoginError;
use crate::state::AppState;
use crate::store::linking::{Announcement, LinkChange, LoginRecord, NewLink, OnOtherOwner};
use crate::store::now_ms;
use crate::store::pending_links::NewPendingLink;

/// At most this many pages of `ids_for_pages` are read.
const MAX_PAGES: usize = 20;

/// A finished login.
#[derive(Debug, Clone)]
pub struct LoginResult {
    pub account_id: String,
    /// The PSIDs linked to the account by this login (ids_for_pages).
    pub psids: Vec<String>,
    /// For a login from Messenger's Log in button: what became of its PSID.
    pub messenger: Option<MessengerLinking>,
}

/// Messenger's account-link button: its `account_linking_token` and where
/// Messenger wants the browser back.
#[derive(Debug, Clone, Copy)]
pub struct AccountLinkRequest<'a> {
    pub token: &'a str,
    pub redirect_uri: &'a str,
}

/// What a login from Messenger's Log in button did with its PSID.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MessengerLinking {
    /// Meta vouches (the person's `ids_for_pages` holds it), or it was
    /// linked to this account before: linked.
    Linked,
    /// Not vouched for: the account owner confirms it on the website.
    Pending { id: String },
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

/// Runs the whole login for `code`. With a Messenger account-link request,
/// the PSID behind its token is linked only when Meta vouches that it is the
/// person signing in (their `ids_for_pages` holds it); otherwise it waits,
/// with its Page-scoped name and picture, for the account owner to confirm
/// on the website: in a hijack attempt the button was tapped in someone
/// else's thread and sent to the person signing in.
pub async fn complete(
    shared: &AppState,
    oauth: &FacebookOAuth,
    code: &str,
    account_link: Option<AccountLinkRequest<'_>>,
) -> Result<LoginResult, LoginError> {
    let identity = identify(shared, oauth, code).await?;
    let page_id = shared.settings.facebook.page_id.as_str();
    let page_token = page_token(shared, oauth, &identity.token).await?;
    let psids = psids_for(shared, &page_token, &identity.uid).await?;
    let recipient = match account_link {
        Some(request) => Some(messenger::recipient(shared, &page_token, request.token).await?),
        None => None,
    };
    let now = now_ms();
    let announce = |page: &str, psid: &str, name: Option<&str>| {
        link_announcement(&shared.link_tokens, page, psid, name)
    };
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
            announcement: &announce,
        })
        .await?;
    let mut linked = Vec::new();
    for (psid, change) in changes {
        log_change(
            &shared.metrics,
            &account_id,
            &psid,
            "ids_for_pages",
            &change,
        );
        linked.push(psid);
    }
    link_other_pages(shared, &identity.uid, &account_id, now, &announce).await?;
    let messenger = match (recipient, account_link) {
        (Some(psid), Some(request)) => {
            Some(messenger_psid(shared, &page_token, &account_id, &psid, &linked, request).await?)
        }
        _ => None,
    };
    info!(account_id, links = linked.len(), pending = ?messenger, "login completed");
    Ok(LoginResult {
        account_id,
        psids: linked,
        messenger,
    })
}

/// Links the person on each of the deployment's Pages but the default one:
/// Meta names their PSID there when that Page's own token asks. A Page
/// Meta does not answer for now is left to the person's next login.
async fn link_other_pages(
    shared: &AppState,
    uid: &str,
    account_id: &str,
    now: i64,
    announce: Announcement<'_>,
) -> Result<(), LoginError> {
    let default = shared.settings.facebook.page_id.as_str();
    for other in shared.pages.ids().iter().filter(|p| *p != default) {
        let Some(token) = shared.page_token(other).await else {
            continue;
        };
        let found = match psids_on(shared, other, &token, uid).await {
            Ok(found) => found,
            Err(e) => {
                warn!(page_id = %other, error = %e, "ids_for_pages failed for this Page; its link waits for the next login");
                continue;
            }
        };
        for psid in found {
            let link = NewLink {
                page_id: other,
                psid: &psid,
                account_id,
                source: "ids_for_pages",
                now,
                announcement: announce,
            };
            let change = shared.store.link_psid(link, OnOtherOwner::Move).await?;
            log_change(&shared.metrics, account_id, &psid, "ids_for_pages", &change);
        }
    }
    Ok(())
}

/// The PSID of Messenger's account-link button: linked when vouched for
/// (or already this account's), else a pending link for the owner.
async fn messenger_psid(
    shared: &AppState,
    page_token: &SecretString,
    account_id: &str,
    psid: &str,
    vouched: &[String],
    request: AccountLinkRequest<'_>,
) -> Result<MessengerLinking, LoginError> {
    let page_id = shared.settings.facebook.page_id.as_str();
    if vouched.iter().any(|p| p == psid) {
        return Ok(MessengerLinking::Linked);
    }
    let context = shared.store.conversation_context(page_id, psid).await?;
    if context.account.is_some_and(|a| a.account_id == account_id) {
        return Ok(MessengerLinking::Linked);
    }
    let profile = notice::profile(&shared.graph, page_token, psid)
        .await
        .unwrap_or_else(|e| {
            warn!(error = %e, "no Page-scoped profile for the PSID to confirm");
            notice::Profile::default()
        });
    let id = shared
        .store
        .create_pending_link(&NewPendingLink {
            page_id,
            psid,
            account_id,
            source: "account_link",
            name: profile.name.as_deref(),
            profile_pic: profile.profile_pic.as_deref(),
            redirect_uri: Some(request.redirect_uri),
            now: now_ms(),
        })
        .await?;
    warn!(
        account_id,
        psid, "Meta does not vouch for the PSID of this login: the owner must confirm it"
    );
    Ok(MessengerLinking::Pending { id })
}

/// Logs a link change and counts the links made (new or moved) by source.
pub fn log_change(
    metrics: &crate::metrics::Metrics,
    account_id: &str,
    psid: &str,
    source: &str,
    change: &LinkChange,
) {
    if matches!(change, LinkChange::Linked | LinkChange::Moved { .. }) {
        metrics.link_made(source);
    }
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
        LinkChange::Tombstoned => info!(
            account_id,
            psid, source, "PSID not linked: its person unlinked; only a login links it again"
        ),
    }
}

/// code -> short-lived token -> `/me` -> long-lived token.
async fn identify(
    shared: &AppState,
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
    shared: &AppState,
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
                    "stored the Page token of a Page admin's login; it is used for sending unless `page add` gave the Page one"
                );
                if let Err(e) = crate::token_health::page_token_stored(shared, &fb.page_id).await {
                    warn!(error = %format!("{e:#}"), "lifting the Page's token_invalid pause failed");
                }
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
pub(crate) async fn psids_for(
    shared: &AppState,
    page_token: &SecretString,
    uid: &str,
) -> Result<Vec<String>, LoginError> {
    psids_on(shared, &shared.settings.facebook.page_id, page_token, uid).await
}

/// Like `psids_for`, on any of the deployment's Pages.
pub(crate) async fn psids_on(
    shared: &AppState,
    page_id: &str,
    page_token: &SecretString,
    uid: &str,
) -> Result<Vec<String>, LoginError> {
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
