//! Instagram messaging through the same service: an `instagram` webhook
//! event names the professional account (`entry.id`); it is answered as a
//! conversation of the Page that account is connected to, through that
//! Page's Send API with its token (`/{page}/messages`, the IGSID as the
//! recipient).

use serde::Deserialize;
use tracing::{info, warn};

use crate::nlu::NluError;
use crate::pages::INSTAGRAM_ASK_EVERY;
use crate::state::AppState;

#[derive(Deserialize)]
struct Connected {
    instagram_business_account: Option<Account>,
}

#[derive(Deserialize)]
struct Account {
    id: String,
}

/// The Page `account` is connected to: known, or asked of Meta for every
/// Page of the deployment (at most once a minute while it is unknown).
/// `Ok(None)`: connected to none of them.
pub async fn page_of(shared: &AppState, account: &str) -> Result<Option<String>, NluError> {
    let accounts = &shared.pages.instagram;
    if let Some(page) = accounts.page_of(account) {
        return Ok(Some(page));
    }
    // One asking at a time: the others wait for its answer.
    let mut answered = accounts.asking.lock().await;
    if let Some(page) = accounts.page_of(account) {
        return Ok(Some(page));
    }
    if answered.is_some_and(|at| at.elapsed() < INSTAGRAM_ASK_EVERY) {
        return Ok(None);
    }
    for page_id in shared.pages.ids() {
        let Some(token) = shared.page_token(page_id).await else {
            continue;
        };
        let asked = shared
            .graph
            .get::<Connected>(page_id, &token, &[("fields", "instagram_business_account")])
            .await;
        match asked {
            Ok(Connected {
                instagram_business_account: Some(connected),
            }) => {
                info!(page_id, instagram_account = %connected.id, "this Page's Instagram account is answered too");
                accounts.learn(&connected.id, page_id);
            }
            Ok(_) => {}
            Err(e) if e.is_transient() => {
                return Err(NluError::Transient(format!(
                    "asking Meta which Instagram account Page {page_id} has: {}",
                    e.message
                )));
            }
            Err(e) => {
                warn!(page_id, error = %e, "Meta did not say which Instagram account this Page has")
            }
        }
    }
    *answered = Some(std::time::Instant::now());
    Ok(accounts.page_of(account))
}
