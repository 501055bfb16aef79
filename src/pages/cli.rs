//! `lexbridge page add`, `page list` and `page remove`: the Pages of a
//! deployment, kept in the database with their encrypted tokens. `serve`
//! reads them at start.

use secrecy::SecretString;
use std::io::Write;

use crate::config::{NluSettings, Settings};
use crate::crypto::TokenCipher;
use crate::facebook::GraphClient;
use crate::store::pages::AddedPage;
use crate::store::{now_ms, Store};

/// The most Send API calls per second a Page may be given (Meta allows
/// about 300 per Page).
const MAX_RATE: i64 = 1000;

/// `page add`'s arguments.
/// No `Debug`: it carries the Page token.
#[derive(clap::Args, Clone)]
pub struct AddArgs {
    /// The Page's id.
    #[arg(long)]
    pub id: String,
    /// The Page access token (checked with `debug_token`, stored
    /// encrypted). Without it, the token is read from standard input, so it
    /// stays out of the shell history and the process list.
    #[arg(long)]
    pub token: Option<String>,
    /// Answer this Page with this alias of the deployment's Lex bot.
    #[arg(long, conflicts_with = "local_bot")]
    pub lex_alias: Option<String>,
    /// Answer this Page with this Lex V2 export (folder or .zip) in the
    /// embedded engine.
    #[arg(long)]
    pub local_bot: Option<String>,
    /// Send API calls per second for this Page (default SEND_RATE_PER_PAGE).
    #[arg(long)]
    pub rate: Option<i64>,
}

/// Checks `args`, the token with Meta, and stores the Page. Nothing is
/// stored when anything is wrong.
pub async fn add(
    settings: &Settings,
    store: &Store,
    graph: &GraphClient,
    args: &AddArgs,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    let id = args.id.trim();
    if id.is_empty() || !id.bytes().all(|b| b.is_ascii_digit()) {
        anyhow::bail!("--id must be the Page's numeric id; nothing was stored");
    }
    let raw = args.token.as_deref().unwrap_or_default().trim();
    if raw.is_empty() {
        anyhow::bail!("the token is empty; nothing was stored");
    }
    if let Some(rate) = args.rate {
        if !(1..=MAX_RATE).contains(&rate) {
            anyhow::bail!("--rate must be 1 to {MAX_RATE} calls per second; nothing was stored");
        }
    }
    if let Some(alias) = &args.lex_alias {
        if !matches!(settings.nlu, NluSettings::Lex(_)) {
            anyhow::bail!(
                "--lex-alias {alias} needs the deployment's Lex bot (LEX_BOT_ID); nothing was stored"
            );
        }
        if alias.trim().is_empty() {
            anyhow::bail!("--lex-alias is empty; nothing was stored");
        }
    }
    // Stored as an absolute path: `serve` may start from another folder.
    let local_bot = match &args.local_bot {
        Some(bot) => {
            let path = std::fs::canonicalize(bot).map_err(|e| {
                anyhow::anyhow!(
                    "--local-bot {bot} does not load (it cannot be read: {e}); nothing was stored"
                )
            })?;
            // The bot must load now, not at the next start of `serve`.
            crate::nlu::local::LocalBot::load(&path).map_err(|e| {
                anyhow::anyhow!("--local-bot {bot} does not load ({e}); nothing was stored")
            })?;
            let path = path.to_str().ok_or_else(|| {
                anyhow::anyhow!("--local-bot {bot} is not a UTF-8 path; nothing was stored")
            })?;
            Some(path.to_string())
        }
        None => None,
    };
    let token = SecretString::from(raw.to_string());
    let status = graph
        .debug_token(&settings.facebook.app_id, &token)
        .await
        .map_err(|e| {
            anyhow::anyhow!(
                "Meta could not check the token ({}); nothing was stored",
                e.message
            )
        })?;
    if !status.is_valid {
        anyhow::bail!(
            "Meta says the token is not valid ({}); nothing was stored",
            status.problem.as_deref().unwrap_or("no reason given")
        );
    }
    if status.kind.as_deref() != Some("PAGE") {
        anyhow::bail!(
            "the token is a {} token, not a Page token; nothing was stored",
            status.kind.as_deref().unwrap_or("untyped")
        );
    }
    match status.profile_id.as_deref() {
        Some(owner) if owner == id => {}
        Some(owner) => {
            anyhow::bail!("the token is Page {owner}'s, not Page {id}'s; nothing was stored")
        }
        None => anyhow::bail!("Meta does not say which Page the token is for; nothing was stored"),
    }
    #[derive(serde::Deserialize)]
    struct Named {
        name: Option<String>,
    }
    let name = graph
        .get::<Named>(id, &token, &[("fields", "name")])
        .await
        .ok()
        .and_then(|n| n.name);
    let cipher = TokenCipher::from_base64(&settings.token_encryption_key)?;
    let now = now_ms();
    let page = AddedPage {
        page_id: id.to_string(),
        name: name.clone(),
        added_at: now,
        lex_bot_alias_id: args.lex_alias.as_deref().map(|a| a.trim().to_string()),
        local_bot,
        send_rate: args.rate,
    };
    store.add_page(&page, &cipher.encrypt(&token), now).await?;
    writeln!(
        out,
        "added Page {id}{}: answered by {}, {} Send API calls/s{}",
        name.map(|n| format!(" ({n})")).unwrap_or_default(),
        answered_by(&page),
        page.send_rate
            .unwrap_or(i64::from(settings.workers.send_rate_per_page)),
        match status.expires_at_ms {
            Some(at) => format!(
                "; the token expires {}",
                crate::outbound::time::format_timestamp(at)
            ),
            None => String::new(),
        }
    )?;
    writeln!(
        out,
        "restart `lexbridge serve` (every instance) to answer it"
    )?;
    Ok(())
}

fn answered_by(page: &AddedPage) -> String {
    match (&page.lex_bot_alias_id, &page.local_bot) {
        (Some(alias), _) => format!("Lex alias {alias}"),
        (None, Some(bot)) => format!("local bot {bot}"),
        (None, None) => "the deployment's NLU".to_string(),
    }
}

/// The token stored for `page_id` (the one `page add` stored, else a Page
/// admin's login's), for `page setup --page`.
pub async fn token_for(
    settings: &Settings,
    store: &Store,
    page_id: &str,
) -> anyhow::Result<SecretString> {
    let cipher = TokenCipher::from_base64(&settings.token_encryption_key)?;
    let stored = store.page_tokens(page_id).await?;
    super::first_stored_token(&cipher, page_id, stored).ok_or_else(|| {
        anyhow::anyhow!("no token is stored for Page {page_id}: add it with `lexbridge page add`")
    })
}

/// `page list`: the default Page and the added ones.
pub async fn list(settings: &Settings, store: &Store, out: &mut impl Write) -> anyhow::Result<()> {
    let default = &settings.facebook.page_id;
    if !default.is_empty() {
        writeln!(out, "{default}  default (FACEBOOK_PAGE_ID)")?;
    }
    let added = store.added_pages().await?;
    for page in &added {
        writeln!(
            out,
            "{}  {}added {}; answered by {}; {} calls/s",
            page.page_id,
            page.name
                .as_deref()
                .map(|n| format!("{n}; "))
                .unwrap_or_default(),
            crate::outbound::time::format_timestamp(page.added_at),
            answered_by(page),
            page.send_rate
                .map_or_else(|| "the default".to_string(), |r| r.to_string()),
        )?;
    }
    if default.is_empty() && added.is_empty() {
        writeln!(
            out,
            "no Page: set FACEBOOK_PAGE_ID or run `lexbridge page add`"
        )?;
    }
    Ok(())
}

/// `page remove --id`: the Page's token and settings are forgotten and its
/// queued messages cancelled.
pub async fn remove(store: &Store, id: &str, out: &mut impl Write) -> anyhow::Result<()> {
    let removed = store.remove_page(id, now_ms()).await?;
    if !removed.page {
        anyhow::bail!("no Page {id} was added (`lexbridge page list`); nothing changed");
    }
    writeln!(
        out,
        "removed Page {id}: {} queued message(s) cancelled; restart `lexbridge serve` to stop answering it",
        removed.cancelled
    )?;
    Ok(())
}
