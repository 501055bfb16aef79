//! Facebook Login: `/auth/facebook/login`, its callback, Messenger's
//! account-link entry point and sign-out.

use actix_web::http::header;
use actix_web::{get, post, web, HttpRequest, HttpResponse};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use tracing::{info, warn};

use super::session::{MessengerLink, PendingLogin, Session, SessionCookies, LOGIN_STATE_TTL_MS};
use super::signed_in::{CsrfOnly, SignedInForm};
use super::site_error::{see_other, SessionCookie, SiteError};
use crate::linking::login::{AccountLinkRequest, LoginResult, MessengerLinking};
use crate::linking::oauth::FacebookOAuth;
use crate::linking::{login as facebook_login, messenger, LoginError};
use crate::state::AppState;
use crate::store::now_ms;

#[derive(Deserialize)]
pub struct Callback {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
    error_reason: Option<String>,
}

#[derive(Deserialize)]
pub struct LinkRequest {
    account_linking_token: Option<String>,
    redirect_uri: Option<String>,
}

/// A redirect that also stores the session.
fn redirect(to: &str, cookies: &SessionCookies, session: &Session) -> HttpResponse {
    HttpResponse::Found()
        .insert_header((header::LOCATION, to))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .cookie(cookies.cookie(session))
        .finish()
}

/// Starts a login: a fresh `state` in the session, then Meta's dialog.
async fn start_login(
    req: &HttpRequest,
    oauth: &FacebookOAuth,
    cookies: &SessionCookies,
    messenger: Option<MessengerLink>,
) -> HttpResponse {
    let mut session = cookies.read(req).await;
    let (url, state) = oauth.authorize_url();
    session.pending = Some(PendingLogin {
        state,
        started_at: now_ms(),
        messenger,
    });
    redirect(url.as_str(), cookies, &session)
}

#[get("/auth/facebook/login")]
pub async fn login(
    req: HttpRequest,
    oauth: web::Data<FacebookOAuth>,
    cookies: web::Data<SessionCookies>,
) -> HttpResponse {
    start_login(&req, &oauth, &cookies, None).await
}

#[get("/auth/messenger/link")]
pub async fn messenger_link(
    req: HttpRequest,
    query: web::Query<LinkRequest>,
    oauth: web::Data<FacebookOAuth>,
    cookies: web::Data<SessionCookies>,
) -> Result<HttpResponse, SiteError> {
    let token = query
        .account_linking_token
        .as_deref()
        .map(str::trim)
        .filter(|t| !t.is_empty() && t.len() <= 1024);
    let token = token.ok_or(LoginError::BadLinkRequest(
        "account_linking_token is missing",
    ))?;
    let redirect_uri = messenger::parse_redirect(query.redirect_uri.as_deref().unwrap_or(""))?;
    let link = MessengerLink {
        account_linking_token: token.to_string(),
        redirect_uri: redirect_uri.to_string(),
    };
    Ok(start_login(&req, &oauth, &cookies, Some(link)).await)
}

#[get("/auth/facebook/callback")]
pub async fn callback(
    req: HttpRequest,
    query: web::Query<Callback>,
    shared: web::Data<AppState>,
    oauth: web::Data<FacebookOAuth>,
    cookies: web::Data<SessionCookies>,
) -> Result<HttpResponse, SiteError> {
    let mut session = cookies.read(&req).await;
    let failed = |e: LoginError, session: &Session| {
        SiteError::LoginWithCookie(e, SessionCookie(Box::new(cookies.cookie(session))))
    };
    // Whatever happens next, this login state is spent.
    let pending = session.pending.take();
    let messenger = pending.as_ref().and_then(|p| p.messenger.clone());
    match finish(&shared, &oauth, &query, pending).await {
        Ok(result) => {
            let account_id = result.account_id;
            info!(account_id, psids = result.psids.len(), "signed in");
            // A new session record, id and CSRF token.
            if let Err(e) = cookies.sign_in(&mut session, &account_id).await {
                return Err(failed(LoginError::Internal(e), &session));
            }
            let to = match (&messenger, result.messenger) {
                (Some(m), Some(MessengerLinking::Linked)) => {
                    match messenger_success(&shared, m, &account_id).await {
                        Ok(url) => url,
                        Err(e) => return Err(failed(e, &session)),
                    }
                }
                // The owner confirms on the account page, which then sends
                // the browser back to Messenger.
                (Some(_), Some(MessengerLinking::Pending { .. })) => {
                    "/account#pending-links".to_string()
                }
                _ => "/account".to_string(),
            };
            Ok(redirect(&to, &cookies, &session))
        }
        Err(e) => match messenger.and_then(|m| messenger::parse_redirect(&m.redirect_uri).ok()) {
            // Messenger shows its own failure when no authorization_code comes back.
            Some(url) if !matches!(e, LoginError::StateMismatch | LoginError::StateReplayed) => {
                warn!(error = %e, "Messenger account linking failed");
                Ok(redirect(url.as_str(), &cookies, &session))
            }
            _ => Err(failed(e, &session)),
        },
    }
}

/// Checks the state and runs the login.
async fn finish(
    shared: &AppState,
    oauth: &FacebookOAuth,
    query: &Callback,
    pending: Option<PendingLogin>,
) -> Result<LoginResult, LoginError> {
    let now = now_ms();
    let (pending, state) = check_state(pending, query.state.as_deref(), now)?;
    let state_hash = hex::encode(Sha256::digest(state.as_bytes()));
    if !shared.store.spend_login_state(&state_hash, now).await? {
        return Err(LoginError::StateReplayed);
    }
    if let Some(error) = &query.error {
        info!(
            error,
            reason = query.error_reason.as_deref().unwrap_or(""),
            "Facebook Login declined"
        );
        return Err(LoginError::Denied);
    }
    let code = query
        .code
        .as_deref()
        .filter(|c| !c.trim().is_empty())
        .ok_or(LoginError::MissingCode)?;
    let account_link = pending.messenger.as_ref().map(|m| AccountLinkRequest {
        token: &m.account_linking_token,
        redirect_uri: &m.redirect_uri,
    });
    facebook_login::complete(shared, oauth, code, account_link).await
}

/// The pending login, when `state` is its state and it is fresh.
fn check_state(
    pending: Option<PendingLogin>,
    state: Option<&str>,
    now: i64,
) -> Result<(PendingLogin, &str), LoginError> {
    let (Some(pending), Some(state)) = (pending, state) else {
        return Err(LoginError::StateMismatch);
    };
    if !bool::from(pending.state.as_bytes().ct_eq(state.as_bytes())) {
        return Err(LoginError::StateMismatch);
    }
    if now - pending.started_at > LOGIN_STATE_TTL_MS {
        return Err(LoginError::StateExpired);
    }
    Ok((pending, state))
}

async fn messenger_success(
    shared: &AppState,
    link: &MessengerLink,
    account_id: &str,
) -> Result<String, LoginError> {
    let url = messenger::parse_redirect(&link.redirect_uri)?;
    let url = messenger::success_redirect(shared, &url, account_id, now_ms()).await?;
    Ok(url.to_string())
}

#[post("/auth/signout")]
pub async fn sign_out(
    form: Result<SignedInForm<CsrfOnly>, SiteError>,
    cookies: web::Data<SessionCookies>,
) -> Result<HttpResponse, SiteError> {
    // Signing out without a session is a form that expired, not a way home.
    let mut session = match form {
        Ok(form) => form.session,
        Err(SiteError::SignedOut) => {
            warn!("sign-out refused: not signed in");
            return Err(LoginError::FormExpired.into());
        }
        Err(e) => return Err(e),
    };
    cookies.sign_out(&mut session).await?;
    let mut home = see_other("/");
    let _ = home.add_cookie(&cookies.removal());
    Ok(home)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pending(started_at: i64) -> Option<PendingLogin> {
        Some(PendingLogin {
            state: "s1".into(),
            started_at,
            messenger: None,
        })
    }

    #[test]
    fn a_state_must_match_the_session_and_be_fresh() {
        let now = 1_000_000_000;
        assert!(check_state(pending(now - 1000), Some("s1"), now).is_ok());
        assert!(matches!(
            check_state(pending(now), Some("s2"), now),
            Err(LoginError::StateMismatch)
        ));
        assert!(matches!(
            check_state(None, Some("s1"), now),
            Err(LoginError::StateMismatch)
        ));
        assert!(matches!(
            check_state(pending(now), None, now),
            Err(LoginError::StateMismatch)
        ));
        assert!(matches!(
            check_state(pending(now - LOGIN_STATE_TTL_MS - 1), Some("s1"), now),
            Err(LoginError::StateExpired)
        ));
    }
}
