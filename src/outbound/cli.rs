//! `lexbridge api-key create|list|revoke` and `lexbridge send`: operators'
//! side of the outbound API. `send` goes through the same acceptance as
//! `POST /api/v1/messages`.

use clap::{Args, Subcommand};
use serde_json::json;

use super::accept::{Outbound, Sender};
use super::keys;
use crate::linking::utc;
use crate::store::api::CreateKeyError;
use crate::store::writer::{Feeds, Writer};
use crate::store::{now_ms, Store};

#[derive(Subcommand)]
pub enum ApiKeyCommand {
    /// Make a key and print it once (only its SHA-256 is kept).
    Create {
        /// Who uses the key, e.g. `billing`.
        #[arg(long)]
        name: String,
    },
    /// Every key: name, created, last used, revoked.
    List,
    /// Stop a key from working (within a second on a running server).
    Revoke {
        /// The key's name.
        name: String,
    },
}

#[derive(Args)]
pub struct SendArgs {
    /// `account:ID`, `uid:FB_UID` or `psid:PSID` (on FACEBOOK_PAGE_ID unless
    /// given as `psid:PSID@PAGE_ID`).
    #[arg(long)]
    pub to: String,
    /// Send with tag HUMAN_AGENT (a human's reply, up to 7 days after the
    /// person last wrote).
    #[arg(long)]
    pub human_agent: bool,
    /// Outside the 24-hour window, hold the message until the person writes.
    #[arg(long)]
    pub hold: bool,
    /// With --hold: give up at this time (RFC 3339).
    #[arg(long, requires = "hold")]
    pub hold_until: Option<String>,
    /// The message text.
    pub text: String,
}

pub async fn api_key(
    store: &Store,
    command: ApiKeyCommand,
    out: &mut impl std::io::Write,
) -> anyhow::Result<()> {
    match command {
        ApiKeyCommand::Create { name } => {
            keys::check_name(&name).map_err(anyhow::Error::msg)?;
            let key = keys::generate();
            match store
                .create_api_key(&name, &keys::hash(keys::reveal(&key)), now_ms())
                .await
            {
                Ok(()) => {}
                Err(CreateKeyError::NameTaken(name)) => {
                    anyhow::bail!(
                        "an API key named {name:?} exists already; revoke it or pick another name"
                    )
                }
                Err(CreateKeyError::Store(e)) => return Err(e),
            }
            writeln!(out, "{}", keys::reveal(&key))?;
            eprintln!(
                "API key {name:?} created. It is shown only now: store it in the backend's secrets."
            );
        }
        ApiKeyCommand::List => {
            let keys = store.api_keys().await?;
            if keys.is_empty() {
                writeln!(out, "no API keys")?;
            }
            for k in keys {
                writeln!(
                    out,
                    "{}\tcreated {}\tlast used {}\t{}",
                    k.name,
                    utc(k.created_at),
                    k.last_used_at.map_or_else(|| "never".to_string(), utc),
                    k.revoked_at
                        .map_or_else(|| "active".to_string(), |at| format!("revoked {}", utc(at)))
                )?;
            }
        }
        ApiKeyCommand::Revoke { name } => {
            if !store.revoke_api_key(&name, now_ms()).await? {
                anyhow::bail!("no API key is named {name:?}");
            }
            writeln!(out, "API key {name:?} revoked")?;
        }
    }
    Ok(())
}

/// Sends one text the way the API would; fails unless it was accepted.
pub async fn send(
    store: &Store,
    page_id: &str,
    args: SendArgs,
    out: &mut impl std::io::Write,
) -> anyhow::Result<()> {
    let to = match args.to.split_once(':') {
        Some(("account", id)) => json!({ "account": id }),
        Some(("uid", uid)) => json!({ "uid": uid }),
        Some(("psid", spec)) => match spec.split_once('@') {
            Some((psid, page)) => json!({ "psid": psid, "page_id": page }),
            None if page_id.is_empty() => anyhow::bail!(
                "--to psid:{spec} needs a Page: set FACEBOOK_PAGE_ID or write psid:{spec}@PAGE_ID"
            ),
            None => json!({ "psid": spec }),
        },
        _ => anyhow::bail!(
            "--to {:?} must be account:ID, uid:FB_UID or psid:PSID[@PAGE_ID]",
            args.to
        ),
    };
    let mut request = json!({ "to": to, "message": { "text": args.text } });
    if args.human_agent {
        request["tag"] = json!("HUMAN_AGENT");
    }
    if args.hold {
        request["if_outside_window"] = json!("hold");
    }
    if let Some(until) = args.hold_until {
        request["hold_until"] = json!(until);
    }
    // Without workers of its own: the running service sends what this queues.
    let writer = Writer::start(store.clone(), Feeds::default());
    let outbound = Outbound {
        store,
        writer: &writer,
        page_id,
    };
    let sender = Sender {
        caller: None,
        idempotency_key: None,
    };
    let answer = outbound
        .submit_one(&sender, &serde_json::to_vec(&request)?)
        .await?;
    writeln!(out, "{}", answer.body)?;
    if answer.status != 202 {
        anyhow::bail!("not sent (HTTP {} from the API's rules)", answer.status);
    }
    Ok(())
}
