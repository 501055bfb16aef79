//! Linking from Messenger's side: an m.me `ref` token, Messenger's
//! `account_linking` events and the Unlink button (the one-time
//! `ids_for_apps` reverse lookup is in `reverse_lookup`).

use tracing::{info, warn};

use crate::facebook::events::MessagingEvent;
use crate::linking::login::{log_change, psids_on};
use crate::linking::notice::{self, link_announcement, link_question, read_consent, Consent};
use crate::linking::tokens::{LinkTokens, Purpose, LINK_TOKEN_TTL_MS};
use crate::nlu::NluError;
use crate::state::AppState;
use crate::store::accounts::AccountSummary;
use crate::store::inbox::InboxRow;
use crate::store::linking::{LinkChange, NewLink, OnOtherOwner, TokenUse};
use crate::store::now_ms;
use crate::store::pending_links::NewPendingLink;

pub const LINKED: &str = "You're linked! I'll know it's you from now on.";
pub const ALREADY_LINKED_ELSEWHERE: &str =
    "This Messenger account is already linked to another account, so I left it as it is.";
pub const LINK_INVALID: &str =
    "That link has expired or was already used. Please open a new one from your account page.";
pub const UNLINKED: &str = "You're unlinked. Sign in on our website again whenever you like.";
pub const CONFIRM_ON_WEBSITE: &str = "Almost there: the account's owner must confirm this link on our website before it takes effect.";

pub const NOT_LINKED: &str = "All right, nothing was linked.";

/// What a linking event came to: the outcome to record and what to say.
pub struct Handled {
    pub outcome: String,
    pub reply: Option<Reply>,
}

/// What to say back: words, or a message already made (an outbox body).
pub enum Reply {
    Text(String),
    Body(String),
}

impl From<&str> for Reply {
    fn from(text: &str) -> Reply {
        Reply::Text(text.to_string())
    }
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

/// A referral with one of our `ref` tokens. A valid, unspent token links
/// the sender only when Meta vouches that the sender is the token's account
/// owner (their `ids_for_pages` holds the PSID). Otherwise the link may be
/// one its owner sent to someone on purpose, to learn who they are or to
/// tie their Messenger to the owner's account: the person is asked first,
/// in the thread (`notice::link_question`, which names no account), and
/// nothing about them is read or shown to anyone unless they tap Link
/// (`consent`). A PSID linked to another account is left there.
pub async fn referral(
    shared: &AppState,
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
    let account_id = match token_account(row, spent, "ref") {
        Ok(account_id) => account_id,
        Err(handled) => return Ok(handled),
    };
    if let Some(handled) = linked_already(shared, row, &account_id) {
        return Ok(handled);
    }
    let account = shared.store.account(&account_id).await.map_err(db)?;
    if let Some(account) = &account {
        if vouched(shared, row, account).await? {
            return link(shared, row, &account_id, "ref").await;
        }
    }
    // A spent token reopened by the same PSID asks again: only ever in the
    // opener's own thread.
    let question = link_question(
        &shared.link_tokens,
        &row.page_id,
        &row.psid,
        &account_id,
        now_ms() + LINK_TOKEN_TTL_MS,
    );
    Ok(Handled {
        outcome: "asked: the person confirms in Messenger first (ref)".into(),
        reply: Some(Reply::Body(question)),
    })
}

/// What is said when the sender's PSID is linked already: to `account_id`,
/// or to another account (which keeps it); `None` when it is not linked.
fn linked_already(shared: &AppState, row: &InboxRow, account_id: &str) -> Option<Handled> {
    let owner = &row.context.account.as_ref()?.account_id;
    if owner == account_id {
        return Some(Handled {
            outcome: "linked by ref (already)".into(),
            reply: Some(LINKED.into()),
        });
    }
    log_change(
        &shared.metrics,
        account_id,
        &row.psid,
        "ref",
        &LinkChange::Refused {
            owner: owner.clone(),
        },
    );
    Some(Handled {
        outcome: "refused: PSID linked to another account (ref)".into(),
        reply: Some(ALREADY_LINKED_ELSEWHERE.into()),
    })
}

/// A tap on the Link or Don't link quick reply of the question `referral`
/// asked, when `payload` (of a quick reply or a postback, made at `at`) is
/// one. Link in time, in the thread asked, shows the person to the
/// account's owner, who confirms on the website (or links at once if Meta
/// vouches by now); nothing else changes anything.
pub async fn consent(
    shared: &AppState,
    row: &InboxRow,
    payload: Option<&str>,
    at: i64,
) -> Option<Result<Handled, NluError>> {
    let consent = read_consent(&shared.link_tokens, &row.page_id, &row.psid, payload?, at)?;
    Some(match consent {
        Consent::Declined => Ok(Handled {
            outcome: "declined in Messenger (ref)".into(),
            reply: Some(NOT_LINKED.into()),
        }),
        Consent::Refused => {
            warn!(
                psid = row.psid.as_str(),
                "a Link button refused: expired, or not this thread's"
            );
            Ok(Handled {
                outcome: "refused: link question expired or not this thread's (ref)".into(),
                reply: Some(LINK_INVALID.into()),
            })
        }
        Consent::Link { account_id } => agreed(shared, row, &account_id).await,
    })
}

/// The person tapped Link for `account_id`.
async fn agreed(shared: &AppState, row: &InboxRow, account_id: &str) -> Result<Handled, NluError> {
    if let Some(handled) = linked_already(shared, row, account_id) {
        return Ok(handled);
    }
    let Some(account) = shared.store.account(account_id).await.map_err(db)? else {
        return Ok(Handled {
            outcome: "refused: the account is gone (ref)".into(),
            reply: Some(LINK_INVALID.into()),
        });
    };
    if vouched(shared, row, &account).await? {
        return link(shared, row, account_id, "ref").await;
    }
    let token = shared
        .page_token(&row.page_id)
        .await
        .ok_or_else(|| NluError::Transient(format!("no token for page {}", row.page_id)))?;
    let profile = notice::profile(&shared.graph, &token, &row.psid)
        .await
        .map_err(|e| NluError::Transient(format!("the Page-scoped profile: {e}")))?;
    shared
        .store
        .create_pending_link(&NewPendingLink {
            page_id: &row.page_id,
            psid: &row.psid,
            account_id,
            source: "ref",
            name: profile.name.as_deref(),
            profile_pic: profile.profile_pic.as_deref(),
            redirect_uri: None,
            now: now_ms(),
        })
        .await
        .map_err(db)?;
    warn!(
        account_id,
        psid = row.psid.as_str(),
        "m.me link agreed to in Messenger by a PSID Meta does not vouch for: the owner must confirm it"
    );
    Ok(Handled {
        outcome: "pending: the owner confirms on the website (ref)".into(),
        reply: Some(CONFIRM_ON_WEBSITE.into()),
    })
}

/// Whether the account's `ids_for_pages` answer holds the sender's PSID.
/// No answer (a refusal, another Business, a region without it) is "no";
/// a failure that may pass is retried.
async fn vouched(
    shared: &AppState,
    row: &InboxRow,
    account: &AccountSummary,
) -> Result<bool, NluError> {
    // Any of the deployment's Pages, asked with its own token, as a login
    // asks them (`link_other_pages`).
    let Some(token) = shared.page_token(&row.page_id).await else {
        return Ok(false);
    };
    match psids_on(shared, &row.page_id, &token, &account.fb_uid).await {
        Ok(psids) => Ok(psids.contains(&row.psid)),
        Err(e) => Err(NluError::Transient(format!("ids_for_pages: {e}"))),
    }
}

/// Whether the event is a tap on the Unlink button of this person's own
/// link announcement (its payload carries a MAC of their Page and PSID).
pub fn is_unlink(shared: &AppState, row: &InboxRow, event: &MessagingEvent) -> bool {
    event
        .postback
        .as_ref()
        .and_then(|p| p.payload.as_deref())
        .is_some_and(|p| notice::is_unlink_payload(&shared.link_tokens, &row.page_id, &row.psid, p))
}

/// Unlinks the sender at their request in Messenger (`how`: the
/// account_linking event or the announcement's Unlink button): the unlink
/// sticks (no reverse lookup links them again), what waits for them is
/// cancelled and their NLU state forgotten.
pub async fn unlink(shared: &AppState, row: &InboxRow, how: &str) -> Result<Handled, NluError> {
    let unlinked = shared
        .store
        .unlink_psid(&row.page_id, &row.psid, how, now_ms())
        .await
        .map_err(db)?;
    info!(
        account_id = unlinked.account_id.as_deref().unwrap_or("-"),
        psid = row.psid.as_str(),
        cancelled = unlinked.cancelled,
        how,
        "PSID unlinked from Messenger"
    );
    let outcome = match unlinked.account_id {
        Some(_) => format!("unlinked ({how})"),
        None => format!("unlinked ({how}): was not linked"),
    };
    Ok(Handled {
        outcome,
        reply: Some(UNLINKED.into()),
    })
}

/// Messenger's `account_linking` event: `linked` with our authorization
/// code, or `unlinked`.
pub async fn account_linking(
    shared: &AppState,
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
            let account_id = match token_account(row, spent, "account_link") {
                Ok(account_id) => account_id,
                Err(handled) => return Ok(handled),
            };
            // The event only acknowledges: the link was made (and announced)
            // when Meta vouched or the owner confirmed on the website. The
            // thread it comes from proves nothing.
            let linked = shared
                .store
                .conversation_context(&row.page_id, &row.psid)
                .await
                .map_err(db)?
                .account
                .is_some_and(|a| a.account_id == account_id);
            if linked {
                Ok(Handled::quiet("linked: confirmed by Messenger"))
            } else {
                warn!(
                    account_id,
                    psid = row.psid.as_str(),
                    "account_linking for a PSID that is not linked to the code's account"
                );
                Ok(Handled::quiet("refused: not linked to the code's account"))
            }
        }
        "unlinked" => unlink(shared, row, "messenger").await,
        other => Ok(Handled::quiet(format!(
            "ignored: account_linking status {other:?}"
        ))),
    }
}

/// The account of a spent token, or what to record when it was refused.
fn token_account(row: &InboxRow, spent: TokenUse, source: &str) -> Result<String, Handled> {
    match spent {
        TokenUse::Spent { account_id } | TokenUse::AlreadySpentBySame { account_id } => {
            Ok(account_id)
        }
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
            Err(Handled {
                outcome: format!("refused: {source} token {why}"),
                reply: (source == "ref").then(|| LINK_INVALID.into()),
            })
        }
    }
}

/// Links the sender (vouched for by Meta) to `account_id`.
async fn link(
    shared: &AppState,
    row: &InboxRow,
    account_id: &str,
    source: &str,
) -> Result<Handled, NluError> {
    let change = shared
        .store
        .link_psid(
            NewLink {
                page_id: &row.page_id,
                psid: &row.psid,
                account_id,
                source,
                now: now_ms(),
                announcement: &|page: &str, psid: &str, name: Option<&str>| {
                    link_announcement(&shared.link_tokens, page, psid, name)
                },
            },
            OnOtherOwner::Keep,
        )
        .await
        .map_err(db)?;
    log_change(&shared.metrics, account_id, &row.psid, source, &change);
    Ok(match change {
        LinkChange::Refused { .. } => Handled {
            outcome: format!("refused: PSID linked to another account ({source})"),
            reply: Some(ALREADY_LINKED_ELSEWHERE.into()),
        },
        // Only a reverse lookup honours tombstones; said for completeness.
        LinkChange::Tombstoned => {
            Handled::quiet(format!("refused: the person unlinked ({source})"))
        }
        _ => Handled {
            outcome: format!("linked by {source}"),
            reply: Some(LINKED.into()),
        },
    })
}
