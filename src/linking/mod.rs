//! Account linking: who a customer is on Facebook (the login) and which
//! Messenger identity (PSID) of the Page is theirs.

pub mod admin;
pub mod login;
pub mod messenger;
pub mod notice;
pub mod oauth;
pub mod tokens;

use crate::facebook::GraphError;

/// Why a login or a link attempt ended without linking. Each ends on a page
/// that names the problem and never shows a token or secret.
#[derive(Debug, thiserror::Error)]
pub enum LoginError {
    #[error("the person declined the Facebook permissions")]
    Denied,
    #[error("the login state does not match this browser's session")]
    StateMismatch,
    #[error("the login state has expired")]
    StateExpired,
    #[error("the login state was already used")]
    StateReplayed,
    #[error("a form came without this session's CSRF token")]
    FormExpired,
    #[error("the callback carries no code")]
    MissingCode,
    #[error("no such pending link of this account (decided, expired or another's)")]
    PendingGone,
    #[error("the account has no such Messenger link")]
    NoSuchLink,
    #[error("the Messenger account-linking request is malformed: {0}")]
    BadLinkRequest(&'static str),
    #[error("Graph API call {step} failed: {error}")]
    Graph {
        step: &'static str,
        error: GraphError,
    },
    #[error("{0:#}")]
    Internal(#[from] anyhow::Error),
}

impl LoginError {
    pub fn graph(step: &'static str) -> impl FnOnce(GraphError) -> LoginError {
        move |error| LoginError::Graph { step, error }
    }

    /// A heading and an explanation for the person.
    pub fn explain(&self) -> (&'static str, String) {
        match self {
            LoginError::Denied => (
                "You didn't allow the login",
                "Nothing was linked. To link your Messenger conversations, continue with Facebook again and allow the requested permissions.".into(),
            ),
            LoginError::StateMismatch | LoginError::StateReplayed => (
                "This login link is not valid",
                "The login could not be matched to this browser, or it was already used. Nothing was linked; please start again.".into(),
            ),
            LoginError::StateExpired => (
                "This login took too long",
                "The login expired before it finished. Nothing was linked; please start again.".into(),
            ),
            LoginError::FormExpired => (
                "This form has expired",
                "Nothing was changed. Please reload the page and try again.".into(),
            ),
            LoginError::MissingCode => (
                "Facebook did not finish the login",
                "Facebook sent you back without a login code. Nothing was linked; please start again.".into(),
            ),
            LoginError::PendingGone => (
                "This link request is no longer open",
                "It was already confirmed or declined, or it expired. Nothing was changed.".into(),
            ),
            LoginError::NoSuchLink => (
                "This Messenger link is not on your account",
                "Nothing was changed. Reload your account page to see its links.".into(),
            ),
            LoginError::BadLinkRequest(_) => (
                "This Messenger link is not valid",
                "Please open the link again from the Messenger conversation.".into(),
            ),
            LoginError::Graph { error, .. } => {
                let code = error
                    .code
                    .map(|c| format!(" (Facebook error {c})"))
                    .unwrap_or_default();
                let what = match error.code {
                    Some(190) => "Facebook did not accept the login",
                    Some(200) | Some(10) => "Facebook did not give the needed permission",
                    _ if error.is_transient() => "Facebook is not answering right now",
                    _ => "Facebook refused the request",
                };
                (
                    "We couldn't reach Facebook",
                    format!("{what}{code}. Nothing was linked; please try again in a moment."),
                )
            }
            LoginError::Internal(_) => (
                "Something went wrong on our side",
                "Nothing was linked; please try again in a moment.".into(),
            ),
        }
    }
}

/// `2026-11-23 15:04 UTC` for epoch milliseconds.
pub fn utc(ms: i64) -> String {
    const FORMAT: &[time::format_description::BorrowedFormatItem<'static>] =
        time::macros::format_description!("[year]-[month]-[day] [hour]:[minute] UTC");
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .ok()
        .and_then(|at| at.format(FORMAT).ok())
        .unwrap_or_else(|| ms.to_string())
}

#[cfg(test)]
mod tests {
    #[test]
    fn utc_formats_epoch_milliseconds() {
        assert_eq!(super::utc(0), "1970-01-01 00:00 UTC");
        assert_eq!(super::utc(1_795_446_240_000), "2026-11-23 15:04 UTC");
        assert_eq!(super::utc(951_782_400_000), "2000-02-29 00:00 UTC");
    }
}
