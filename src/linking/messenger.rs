//! Messenger's own account linking: the account-link button opens
//! `/auth/messenger/link?account_linking_token&redirect_uri`; after the login
//! the PSID comes from `GET /me?fields=recipient&account_linking_token=…`
//! (Page token) and the browser returns to `redirect_uri` with an
//! `authorization_code` (or without one, which Messenger shows as a failure).

use secrecy::SecretString;
use serde::Deserialize;
use url::Url;

use super::tokens::Purpose;
use super::LoginError;
use crate::state::AppState;

#[derive(Deserialize)]
struct Recipient {
    recipient: Option<String>,
}

/// Checks the `redirect_uri` Messenger passed: only Messenger's own
/// account-linking endpoint, so the route is no open redirect.
pub fn parse_redirect(redirect_uri: &str) -> Result<Url, LoginError> {
    let url = Url::parse(redirect_uri)
        .map_err(|_| LoginError::BadLinkRequest("redirect_uri is not a URL"))?;
    let host_ok = matches!(
        url.host_str(),
        Some("www.facebook.com" | "facebook.com" | "m.facebook.com" | "www.messenger.com")
    );
    if url.scheme() != "https" || !host_ok || !url.path().starts_with("/messenger_platform/") {
        return Err(LoginError::BadLinkRequest(
            "redirect_uri is not Messenger's account-linking endpoint",
        ));
    }
    Ok(url)
}

/// The PSID behind an `account_linking_token`.
pub async fn recipient(
    shared: &AppState,
    page_token: &SecretString,
    account_linking_token: &str,
) -> Result<String, LoginError> {
    let answer: Recipient = shared
        .graph
        .get(
            "me",
            page_token,
            &[
                ("fields", "recipient"),
                ("account_linking_token", account_linking_token),
            ],
        )
        .await
        .map_err(LoginError::graph("account_linking_token lookup"))?;
    answer
        .recipient
        .filter(|r| !r.is_empty())
        .ok_or_else(|| LoginError::Graph {
            step: "account_linking_token lookup",
            error: crate::facebook::GraphError {
                http_status: Some(502),
                message: "no recipient in the answer".into(),
                ..Default::default()
            },
        })
}

/// `redirect_uri` with a fresh single-use `authorization_code` for `account_id`.
pub async fn success_redirect(
    shared: &AppState,
    redirect_uri: &Url,
    account_id: &str,
    now: i64,
) -> Result<Url, LoginError> {
    let code = shared
        .issue_link_token(Purpose::AccountLink, account_id, now)
        .await?;
    let mut url = redirect_uri.clone();
    url.query_pairs_mut()
        .append_pair("authorization_code", &code);
    Ok(url)
}
