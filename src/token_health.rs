//! Page and user token health. A Page whose token Meta refuses (Graph
//! error 190 from the Send API, or `debug_token` saying it is invalid) is
//! paused with reason `token_invalid`: its messages stay queued, `/readyz`
//! names it, and one loud line names the Page (never the token). A valid
//! token found later (`debug_token`, or a Page admin's login storing a new
//! one) resumes it. Stored user tokens are checked too, and their expiry
//! kept for `lexbridge accounts list`.

use tracing::{error, info, warn};

use crate::state::AppState;
use crate::store::now_ms;
use crate::store::pauses::{PauseChange, TOKEN_INVALID};
use crate::store::writer::Write;

/// A token expiring sooner than this is warned about.
pub const EXPIRY_WARNING_MS: i64 = 7 * 24 * 3_600_000;

/// Pauses `page_id` for an invalid token; true when the pause is new (the
/// loud line is then logged, once). The cached token is forgotten, so the
/// next send reads the store again (another instance may have stored a new
/// one).
pub async fn token_refused(shared: &AppState, page_id: &str, why: &str) -> anyhow::Result<bool> {
    shared.forget_page_token(page_id);
    let now = now_ms();
    let [pause, record] = PauseChange::pause(page_id, TOKEN_INVALID, Some(why), now, now)?;
    let new = shared.writer.write(Write::Pause(pause)).await? > 0;
    shared.writer.write(Write::Pause(record)).await?;
    if new {
        error!(
            page_id,
            why,
            "Meta refuses this Page's access token: its outbox is paused (messages stay queued) until a valid token is found (a Page admin's login, or the next token check)"
        );
    }
    Ok(new)
}

/// Resumes `page_id` from a `token_invalid` pause after a valid token was
/// found (`how`); true when it was paused.
pub async fn token_valid(shared: &AppState, page_id: &str, how: &str) -> anyhow::Result<bool> {
    let [resume, record] = PauseChange::resume(page_id, TOKEN_INVALID, now_ms())?;
    let was_paused = shared.writer.write(Write::Pause(resume)).await? > 0;
    shared.writer.write(Write::Pause(record)).await?;
    if was_paused {
        warn!(
            page_id,
            how, "this Page's access token is valid again: its queued messages are sent"
        );
    }
    Ok(was_paused)
}

/// A Page admin's login stored a new Page token: it is used from now on
/// (unless `page add` gave the Page a token, which comes first), and a
/// `token_invalid` pause is lifted.
pub async fn page_token_stored(shared: &AppState, page_id: &str) -> anyhow::Result<()> {
    shared.forget_page_token(page_id);
    token_valid(shared, page_id, "a Page admin's login stored a new token").await?;
    Ok(())
}

/// Checks the sending token of every Page with one.
pub async fn check_pages(shared: &AppState) {
    let pages = match shared.store.page_ids().await {
        Ok(pages) => pages,
        Err(e) => {
            warn!(error = %format!("{e:#}"), "listing pages for the token check failed");
            return;
        }
    };
    let app_id = shared.settings.facebook.app_id.as_str();
    for page_id in pages {
        shared.forget_page_token(&page_id);
        let Some(token) = shared.page_token(&page_id).await else {
            continue;
        };
        match shared.graph.debug_token(app_id, &token).await {
            Ok(status) if status.is_valid => {
                if let Err(e) = token_valid(shared, &page_id, "debug_token").await {
                    warn!(page_id, error = %format!("{e:#}"), "resuming the Page failed");
                }
                if let Some(at) = status.expires_at_ms {
                    if at - now_ms() < EXPIRY_WARNING_MS {
                        warn!(
                            page_id,
                            expires_at = at,
                            "this Page's access token expires within 7 days"
                        );
                    }
                }
            }
            Ok(status) => {
                let why = format!(
                    "debug_token: invalid ({})",
                    status.problem.as_deref().unwrap_or("no reason given")
                );
                if let Err(e) = token_refused(shared, &page_id, &why).await {
                    warn!(page_id, error = %format!("{e:#}"), "pausing the Page failed");
                }
            }
            // Meta not answering says nothing about the token.
            Err(e) => warn!(page_id, code = ?e.code, http_status = ?e.http_status,
                "the Page token could not be checked ({})", e.message),
        }
    }
}

/// Checks every stored user token and records its expiry; an invalid one is
/// logged with its account (the person signs in again to renew it).
pub async fn check_user_tokens(shared: &AppState) {
    let tokens = match shared.store.user_tokens().await {
        Ok(tokens) => tokens,
        Err(e) => {
            warn!(error = %format!("{e:#}"), "listing user tokens for the token check failed");
            return;
        }
    };
    let app_id = shared.settings.facebook.app_id.as_str();
    let (mut valid, mut invalid) = (0, 0);
    for (account_id, sealed) in tokens {
        let Ok(token) = shared.cipher.decrypt(&sealed) else {
            warn!(
                account_id,
                "a stored user token cannot be decrypted (another TOKEN_ENCRYPTION_KEY?)"
            );
            continue;
        };
        match shared.graph.debug_token(app_id, &token).await {
            Ok(status) if status.is_valid => {
                valid += 1;
                if let Err(e) = shared
                    .store
                    .set_user_token_expiry(&account_id, status.expires_at_ms)
                    .await
                {
                    warn!(account_id, error = %format!("{e:#}"), "recording a token expiry failed");
                }
            }
            Ok(status) => {
                invalid += 1;
                warn!(
                    account_id,
                    problem = status.problem.as_deref().unwrap_or("none given"),
                    "a stored user token is invalid: the person renews it by signing in again"
                );
            }
            Err(e) => {
                warn!(account_id, code = ?e.code, "a user token could not be checked ({})", e.message);
                // Meta is unreachable or refuses the app: the rest would fare alike.
                if e.is_transient() {
                    break;
                }
            }
        }
    }
    info!(valid, invalid, "user tokens checked");
}
