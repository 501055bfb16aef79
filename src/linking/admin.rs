//! `lexbridge accounts list|show <id>`: what operators may see of accounts.
//! Tokens are never printed, only whether one is stored and until when.

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
            for a in accounts {
                writeln!(
                    out,
                    "{}\tfb_uid={}\tname={}\tlinks={}\ttoken={}",
                    a.id,
                    a.fb_uid,
                    a.name.as_deref().unwrap_or("-"),
                    a.links,
                    token_status(&a)
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
            writeln!(out, "token:      {}", token_status(&a))?;
            writeln!(out, "created:    {}", utc(a.created_at))?;
            writeln!(out, "updated:    {}", utc(a.updated_at))?;
            let links = store.links_for_account(&a.id).await?;
            writeln!(out, "links:      {}", links.len())?;
            for l in links {
                writeln!(
                    out,
                    "  page {} psid {} via {} since {}",
                    l.page_id,
                    l.psid,
                    l.source,
                    utc(l.linked_at)
                )?;
            }
        }
    }
    Ok(())
}

fn token_status(a: &AccountSummary) -> String {
    match (a.has_token, a.token_expires_at) {
        (false, _) => "none".to_string(),
        (true, Some(at)) => format!("stored, expires {}", utc(at)),
        (true, None) => "stored, no expiry given".to_string(),
    }
}
