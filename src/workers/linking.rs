//! Linking from Messenger's side: an m.me `ref` token, Messenger's
//! `account_linking` events, and the one-time `ids_for_apps` reverse lookup
//! of a PSID nobody has linked yet.

use serde::Deserialize;
use tracing::{debug, info, warn};

use super::Shared;
use crate::facebook::webhook::MessagingEvent;
use crate::linking::login::log_change;
use crate::linking::tokens::{LinkTokens, Purpose};
use crate::nlu::NluError;
use crate::store::inbox::{InboxRow, PsidLookup};
use crate::store::linking::{LinkChange, OnOtherOwner, TokenUse};
use crate::store::now_ms;

pub const LINKED: &str = "You're linked! I'll know it's you from now on.";
pub const ALREADY_LINKED_ELSEWHERE: &str =
    "This Messenger account is already linked to another account, so I left it as it is.";
pub const LINK_INVALID: &str =
    "That link has expired or was already used. Please open a new one from your account page.";
pub const UNLINKED: &str = "You're unlinked. Sign in on our website again whenever you like.";

/// What a linking event came to: the outcome to record and what to say.
pub struct Handled {
    pub outcome: String,
    pub reply: Option<String>,
}

impl Handled {
    fn quiet(outcome: impl Into<String>) -> Handled {
        Handled {
            outcome: outcome.into(),
            reply: None,
        }
    }
}

fn db(e: anyhow::Error) -> NluError {
    NluError::Transient(format!("linking: {e:#}"))
}

/// The `ref` of an m.me link, wherever Meta put it, when it is one of ours.
pub fn our_ref(event: &MessagingEvent) -> Option<&str> {
    let referral = event
        .referral
        .as_ref()
        .or_else(|| event.postback.as_ref().and_then(|p| p.referral.as_ref()))?;
    referral
        .reference
        .as_deref()
        .filter(|r| LinkTokens::looks_like_ours(r))
}

/// A referral: links the sender when the `ref` is a valid, unspent token.
pub async fn referral(
    shared: &Shared,
    row: &InboxRow,
    reference: &str,
) -> Result<Handled, NluError> {
    let Some(nonce) = shared.link_tokens.verify(Purpose::Ref, reference) else {
        warn!(
            psid = row.psid.as_str(),
            "m.me ref refused: the signature does not match"
        );
        return Ok(Handled {
            outcome: "refused: forged ref".into(),
            reply: Some(LINK_INVALID.into()),
        });
    };
    let spent = shared
        .store
        .spend_link_token(&nonce, Purpose::Ref.as_str(), &row.psid, now_ms())
        .await
        .map_err(db)?;
    link_with_token(shared, row, spent, "ref", OnOtherOwner::Keep).await
}

/// Messenger's `account_linking` event: `linked` with our authorization
/// code, or `unlinked`.
pub async fn account_linking(
    shared: &Shared,
    row: &InboxRow,
    event: &MessagingEvent,
) -> Result<Handled, NluError> {
    let Some(linking) = &event.account_linking else {
        return Ok(Handled::quiet("ignored: no account_linking object"));
    };
    match linking.status.as_str() {
        "linked" => {
            let code = linking.authorization_code.as_deref().unwrap_or("");
            let Some(nonce) = shared.link_tokens.verify(Purpose::AccountLink, code) else {
                warn!(
                    psid = row.psid.as_str(),
                    "account_linking refused: the authorization code is not ours"
                );
                return Ok(Handled::quiet("refused: forged authorization code"));
            };
            let spent = shared
                .store
                .spend_link_token(&nonce, Purpose::AccountLink.as_str(), &row.psid, now_ms())
                .await
                .map_err(db)?;
            // Messenger vouches that the sender is the person who logged in.
            link_with_token(shared, row, spent, "account_link", OnOtherOwner::Move).await
        }
        "unlinked" => {
            let removed = shared
                .store
                .unlink_psid(&row.page_id, &row.psid)
                .await
                .map_err(db)?;
            match removed {
                Some(account_id) => {
                    info!(
                        account_id,
                        psid = row.psid.as_str(),
                        "PSID unlinked from Messenger"
                    );
                    Ok(Handled {
                        outcome: "unlinked".into(),
                        reply: Some(UNLINKED.into()),
                    })
                }
                None => Ok(Handled::quiet("unlinked: was not linked")),
            }
        }
        other => Ok(Handled::quiet(format!(
            "ignored: account_linking status {other:?}"
        ))),
    }
}

async fn link_with_token(
    shared: &Shared,
    row: &InboxRow,
    spent: TokenUse,
    source: &str,
    other_owner: OnOtherOwner,
) -> Result<Handled, NluError> {
    let account_id = match spent {
        TokenUse::Spent { account_id } | TokenUse::AlreadySpentBySame { account_id } => account_id,
        refused => {
            let why = match refused {
                TokenUse::Reused => "already used",
                TokenUse::Expired => "expired",
                _ => "unknown",
            };
            warn!(
                psid = row.psid.as_str(),
                source, "link token refused: {why}"
            );
            return Ok(Handled {
                outcome: format!("refused: {source} token {why}"),
                reply: (source == "ref").then(|| LINK_INVALID.to_string()),
            });
        }
    };
    let change = shared
        .store
        .link_psid(
            &row.page_id,
            &row.psid,
            &account_id,
            source,
            other_owner,
            now_ms(),
        )
        .await
        .map_err(db)?;
    log_change(&account_id, &row.psid, source, &change);
    Ok(match change {
        LinkChange::Refused { .. } => Handled {
            outcome: format!("refused: PSID linked to another account ({source})"),
            reply: Some(ALREADY_LINKED_ELSEWHERE.into()),
        },
        _ => Handled {
            outcome: format!("linked by {source}"),
            reply: Some(LINKED.into()),
        },
    })
}

#[derive(Deserialize)]
struct AppIds {
    #[serde(default)]
    data: Vec<AppScopedId>,
}

#[derive(Deserialize)]
struct AppScopedId {
    id: String,
    app: Option<AppRef>,
}

#[derive(Deserialize)]
struct AppRef {
    id: String,
}

/// For a PSID nobody linked and nobody looked up yet (the caller knows
/// both from the conversation context): `GET /{psid}/ids_for_apps`, and a link
/// when the app-scoped id is a known account. The answer, found or not, is
/// remembered (the caller records the answer with the row's result); only
/// failures that may pass (timeouts, 5xx) are asked again. Never fails the
/// conversation; the answer has an account when the PSID got linked.
pub async fn reverse_lookup(shared: &Shared, row: &InboxRow) -> Option<PsidLookup> {
    if row.psid.starts_with("user_ref:") {
        return None;
    }
    let token = shared.page_token(&row.page_id).await?;
    let path = format!("{}/ids_for_apps", row.psid);
    let answer = match shared.graph.get::<AppIds>(&path, &token, &[]).await {
        Ok(answer) => answer,
        Err(e) if e.is_transient() => {
            debug!(error = %e, "ids_for_apps failed for now; asked again on the next message");
            return None;
        }
        Err(e) => {
            warn!(code = ?e.code, fbtrace_id = ?e.fbtrace_id, "ids_for_apps refused ({}); not asked again", e.message);
            AppIds { data: Vec::new() }
        }
    };
    let app_id = shared.settings.facebook.app_id.as_str();
    let mut found = None;
    for id in answer
        .data
        .iter()
        .filter(|i| i.app.as_ref().is_none_or(|a| a.id == app_id))
    {
        match shared.store.account_id_for_uid(&id.id).await {
            Ok(Some(account)) => {
                found = Some(account);
                break;
            }
            Ok(None) => {}
            Err(e) => {
                warn!(error = %format!("{e:#}"), "reverse lookup failed");
                return None;
            }
        }
    }
    let now = now_ms();
    if let Some(account_id) = &found {
        match shared
            .store
            .link_psid(
                &row.page_id,
                &row.psid,
                account_id,
                "ids_for_apps",
                OnOtherOwner::Keep,
                now,
            )
            .await
        {
            Ok(change) => log_change(account_id, &row.psid, "ids_for_apps", &change),
            Err(e) => {
                warn!(error = %format!("{e:#}"), "linking after ids_for_apps failed");
                return None;
            }
        }
    }
    Some(PsidLookup {
        page_id: row.page_id.clone(),
        psid: row.psid.clone(),
        account_id: found,
        at: now,
    })
}
