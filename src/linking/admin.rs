//! `lexbridge accounts list|show <id>`: what operators may see of accounts.
//! Tokens are never printed, only whether one is stored and until when;
//! `list` marks those expired or expiring within 7 days (the daily token
//! check keeps the expiry Meta's `debug_token` gives).
//! `accounts delete <id>` erases the person as Meta's data-deletion
//! callback does and prints the confirmation code and its status page
//! (under `PUBLIC_URL`).

use clap::Subcommand;
use std::io::Write;

use super::utc;
use crate::store::accounts::AccountSummary;
use crate::store::Store;

#[derive(Subcommand)]
pub enum AccountsCommand {
    /// Every account: id, Facebook user id, name, links, token expiry.
    List,
    /// One account with its linked Messenger identities.
    Show {
        /// The account id (as `list` prints it).
        id: String,
    },
    /// Erase an account and everything of the person (links, tokens,
    /// sessions, messages, conversations); prints a confirmation code.
    Delete {
        /// The account id (as `list` prints it).
        id: String,
    },
}

/// Runs `command` against `store`, printing to `out`.
pub async fn run(
    store: &Store,
    command: AccountsCommand,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    match command {
        AccountsCommand::List => {
            let accounts = store.accounts().await?;
            if accounts.is_empty() {
                writeln!(out, "no accounts")?;
            }
            let now = crate::store::now_ms();
            let expiring = accounts
                .iter()
                .filter(|a| expires_soon(a, now).is_some())
                .count();
            for a in accounts {
                writeln!(
                    out,
                    "{}\tfb_uid={}\tname={}\tlinks={}\ttoken={}",
                    a.id,
                    a.fb_uid,
                    a.name.as_deref().unwrap_or("-"),
                    a.links,
                    token_status(&a, now)
                )?;
            }
            if expiring > 0 {
                writeln!(
                    out,
                    "{expiring} user token(s) expired or expiring within 7 days: those people renew them by signing in again"
                )?;
            }
        }
        AccountsCommand::Show { id } => {
            let Some(a) = store.account(&id).await? else {
                anyhow::bail!("no account {id:?}");
            };
            writeln!(out, "account:    {}", a.id)?;
            writeln!(out, "fb_uid:     {}", a.fb_uid)?;
            writeln!(out, "name:       {}", a.name.as_deref().unwrap_or("-"))?;
            writeln!(
                out,
                "token:      {}",
                token_status(&a, crate::store::now_ms())
            )?;
            writeln!(out, "created:    {}", utc(a.created_at))?;
            writeln!(out, "updated:    {}", utc(a.updated_at))?;
            let links = store.links_for_account(&a.id).await?;
            writeln!(out, "links:      {}", links.len())?;
            for l in links {
                let thread = match l.thread_owner.as_deref() {
                    None => "the bot".to_string(),
                    Some(crate::config::PAGE_INBOX_APP_ID) => "the Page Inbox".to_string(),
                    Some(crate::store::conversations::UNKNOWN_OWNER) => "another app".to_string(),
                    Some(app) => format!("app {app}"),
                };
                writeln!(
                    out,
                    "  page {} psid {} via {} since {}; thread: {thread}",
                    l.page_id,
                    l.psid,
                    l.source,
                    utc(l.linked_at)
                )?;
            }
        }
        AccountsCommand::Delete { id } => {
            // The status page's address, read as `serve` reads PUBLIC_URL
            // (and checked before anything is erased).
            let public_url = match std::env::var("PUBLIC_URL") {
                Ok(raw) if !raw.trim().is_empty() => crate::config::base_url(&raw)
                    .map_err(|why| anyhow::anyhow!("PUBLIC_URL {why}; nothing was erased"))?,
                _ => url::Url::parse("http://127.0.0.1:8080").expect("a URL"),
            };
            let subject = crate::store::erasure::Subject::Account(&id);
            let Some(erasure) = store
                .erase_person(subject, "operator", crate::store::now_ms(), None)
                .await?
            else {
                anyhow::bail!("no account {id:?}; nothing was erased");
            };
            let e = &erasure.erased;
            writeln!(
                out,
                "erased account {id}: {} Messenger identities, {} messages received, {} sent, {} conversations",
                e.messenger_identities, e.inbox, e.outbox, e.conversations
            )?;
            writeln!(out, "confirmation code: {}", erasure.code)?;
            writeln!(out, "status page: {}", erasure.status_url(&public_url))?;
        }
    }
    Ok(())
}

/// The token's expiry when it has passed or comes within 7 days of `now`.
fn expires_soon(a: &AccountSummary, now: i64) -> Option<i64> {
    a.token_expires_at
        .filter(|at| a.has_token && *at - now < crate::token_health::EXPIRY_WARNING_MS)
}

fn token_status(a: &AccountSummary, now: i64) -> String {
    match (a.has_token, a.token_expires_at) {
        (false, _) => "none".to_string(),
        (true, Some(at)) if at <= now => format!("stored, EXPIRED {}", utc(at)),
        (true, Some(at)) if expires_soon(a, now).is_some() => {
            format!("stored, EXPIRES WITHIN 7 DAYS {}", utc(at))
        }
        (true, Some(at)) => format!("stored, expires {}", utc(at)),
        (true, None) => "stored, no expiry given".to_string(),
    }
}
