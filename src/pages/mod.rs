//! Several Pages in one deployment: the default Page (`FACEBOOK_PAGE_ID`)
//! and those an operator added with `lexbridge page add`, each answered by
//! its own NLU (a Lex bot alias or a local bot of its own, else the
//! deployment's) at its own Send API rate. Events for any other Page are
//! stored and reported, never sent to an NLU.

pub mod cli;

use std::collections::HashMap;
use std::sync::Arc;
use tracing::info;

use crate::config::{NluSettings, Settings};
use crate::crypto::TokenCipher;
use crate::facebook::rate_limit::RateLimiter;
use crate::nlu::embedded::LocalNlu;
use crate::nlu::fulfillment::Fulfillment;
use crate::nlu::lex_client::LexNlu;
use crate::nlu::Nlu;
use crate::store::pages::{AddedPage, SealedTokens};
use secrecy::SecretString;

/// The first of a Page's stored tokens that decrypts: the one `page add`
/// stored, then a Page admin's login's. One that does not (sealed under
/// another TOKEN_ENCRYPTION_KEY) is logged, never shown, and passed over.
pub fn first_stored_token(
    cipher: &TokenCipher,
    page_id: &str,
    (added, login): SealedTokens,
) -> Option<SecretString> {
    [added, login]
        .into_iter()
        .flatten()
        .find_map(|sealed| match cipher.decrypt(&sealed) {
            Ok(token) => Some(token),
            Err(e) => {
                tracing::warn!(page_id, error = %e, "a stored page token cannot be used");
                None
            }
        })
}

/// The Pages this instance answers for, read at start.
pub struct Pages {
    /// The Page a PSID given without one belongs to.
    pub default: String,
    /// Page id -> its own NLU, when it has one.
    own_nlu: HashMap<String, Arc<dyn Nlu>>,
    /// Every Page answered for, the default first.
    ids: Vec<String>,
    /// The Instagram professional accounts connected to them.
    pub instagram: InstagramAccounts,
}

/// Instagram account id -> the Page it is connected to, as Meta said
/// (`GET /{page}?fields=instagram_business_account`), asked when an event
/// names an account not known yet: one asking at a time (the others wait
/// for its answer), and not again within a minute of an answer.
#[derive(Default)]
pub struct InstagramAccounts {
    known: std::sync::RwLock<HashMap<String, String>>,
    /// Held while Meta is asked; when it last answered.
    pub asking: tokio::sync::Mutex<Option<std::time::Instant>>,
}

/// How often Meta is asked again about an account no Page had.
pub const INSTAGRAM_ASK_EVERY: std::time::Duration = std::time::Duration::from_secs(60);

impl InstagramAccounts {
    /// The Page `account` is connected to, if known.
    pub fn page_of(&self, account: &str) -> Option<String> {
        self.known
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(account)
            .cloned()
    }

    pub fn learn(&self, account: &str, page_id: &str) {
        self.known
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert(account.to_string(), page_id.to_string());
    }
}

impl Pages {
    /// Only the default Page, answered by the deployment's NLU.
    pub fn single(default: &str) -> Pages {
        Pages {
            default: default.to_string(),
            own_nlu: HashMap::new(),
            ids: vec![default.to_string()],
            instagram: InstagramAccounts::default(),
        }
    }

    /// The default Page and the added ones; an added Page's own bot is
    /// loaded (or its Lex alias connected) here, and its rate set on
    /// `limiter`. A Page whose bot cannot be loaded stops the start.
    pub async fn load(
        settings: &Settings,
        added: &[AddedPage],
        fulfillment: Option<&Fulfillment>,
        limiter: &RateLimiter,
    ) -> anyhow::Result<Pages> {
        let mut pages = Pages::single(&settings.facebook.page_id);
        for page in added {
            if !pages.contains(&page.page_id) {
                pages.ids.push(page.page_id.clone());
            }
            if let Some(rate) = page.send_rate {
                limiter.set_rate(&page.page_id, u32::try_from(rate).unwrap_or(1).max(1));
            }
            let nlu: Option<Arc<dyn Nlu>> = match (&page.lex_bot_alias_id, &page.local_bot) {
                (Some(alias), _) => {
                    let NluSettings::Lex(lex) = &settings.nlu else {
                        anyhow::bail!(
                            "Page {} answers with Lex alias {alias}, but no Lex bot is configured (LEX_BOT_ID)",
                            page.page_id
                        );
                    };
                    let mut lex = lex.clone();
                    lex.bot_alias_id = alias.clone();
                    Some(Arc::new(
                        LexNlu::from_env(lex, settings.workers.retry_base).await?,
                    ))
                }
                (None, Some(bot)) => {
                    let nlu = LocalNlu::load(Some(std::path::Path::new(bot)), fulfillment.cloned())
                        .map_err(|e| {
                            anyhow::anyhow!(
                                "Page {}'s bot {bot} does not load: {e:#}",
                                page.page_id
                            )
                        })?;
                    Some(Arc::new(nlu))
                }
                (None, None) => None,
            };
            if let Some(nlu) = nlu {
                info!(page_id = %page.page_id, nlu = nlu.name(), "this Page has a bot of its own");
                pages.own_nlu.insert(page.page_id.clone(), nlu);
            }
        }
        Ok(pages)
    }

    /// Whether this deployment answers for `page_id`.
    pub fn contains(&self, page_id: &str) -> bool {
        self.ids.iter().any(|id| id == page_id)
    }

    /// Every Page answered for, the default first.
    pub fn ids(&self) -> &[String] {
        &self.ids
    }

    /// The NLU answering on `page_id`: its own, else `default`.
    pub fn nlu_for<'a>(&'a self, page_id: &str, default: &'a Arc<dyn Nlu>) -> &'a Arc<dyn Nlu> {
        self.own_nlu.get(page_id).unwrap_or(default)
    }
}
