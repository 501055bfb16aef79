//! The one-time `ids_for_apps` reverse lookup of a PSID nobody has linked
//! yet: Meta names the person's app-scoped id, and a known account is
//! linked. A person who unlinked is never linked this way again.

use serde::Deserialize;
use tracing::{debug, warn};

use crate::linking::login::log_change;
use crate::linking::notice::link_announcement;
use crate::state::AppState;
use crate::store::inbox::{InboxRow, PsidLookup};
use crate::store::linking::{LinkChange, NewLink, OnOtherOwner};
use crate::store::now_ms;

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
/// both from the conversation context, which also says whether the person
/// unlinked): `GET /{psid}/ids_for_apps`, and a link
/// when the app-scoped id is a known account. The answer, found or not, is
/// remembered (the caller records the answer with the row's result); only
/// failures that may pass (timeouts, 5xx) are asked again. Never fails the
/// conversation; the answer has an account when the PSID got linked.
pub async fn reverse_lookup(shared: &AppState, row: &InboxRow) -> Option<PsidLookup> {
    if row.psid.starts_with("user_ref:") {
        return None;
    }
    let now = now_ms();
    let remembered = |account_id| PsidLookup {
        page_id: row.page_id.clone(),
        psid: row.psid.clone(),
        account_id,
        at: now,
    };
    // The person unlinked: they are not linked again behind their back, and
    // Meta is not asked (the answer is remembered as "nobody"). The claim
    // read the tombstone with the conversation; one that stands since is
    // found again when linking.
    if row.context.unlinked {
        debug!(
            psid = row.psid.as_str(),
            "no reverse lookup: the person unlinked"
        );
        return Some(remembered(None));
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
        match shared.store.linkable_account_for_uid(&id.id).await {
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
    if let Some(account_id) = &found {
        let link = NewLink {
            page_id: &row.page_id,
            psid: &row.psid,
            account_id,
            source: "ids_for_apps",
            now,
            announcement: &|page: &str, psid: &str, name: Option<&str>| {
                link_announcement(&shared.link_tokens, page, psid, name)
            },
        };
        match shared.store.link_psid(link, OnOtherOwner::Keep).await {
            Ok(LinkChange::Tombstoned) => return Some(remembered(None)),
            Ok(change) => log_change(
                &shared.metrics,
                account_id,
                &row.psid,
                "ids_for_apps",
                &change,
            ),
            Err(e) => {
                warn!(error = %format!("{e:#}"), "linking after ids_for_apps failed");
                return None;
            }
        }
    }
    Some(remembered(found))
}
