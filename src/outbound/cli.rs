//! `lexbridge api-key create|list|revoke`, `lexbridge send` and
//! `lexbridge outbox show|failed|retry`: operators' side of the outbound API. `send` goes
//! through the same acceptance as `POST /api/v1/messages`.

use clap::{Args, Subcommand};
use serde_json::json;

use super::accept::{Outbound, Sender};
use super::answer::{Outcome, StatusAnswer};
use super::keys;
use crate::linking::utc;
use crate::store::outbound_api::{CreateKeyError, KeyScope};
use crate::store::writer::{Feeds, Writer};
use crate::store::{now_ms, Store};

#[derive(Subcommand)]
pub enum ApiKeyCommand {
    /// Make a key and print it once (only its SHA-256 is kept).
    Create {
        /// Who uses the key, e.g. `billing` (or give it as --name).
        #[arg(required_unless_present = "named", conflicts_with = "named")]
        name: Option<String>,
        /// The same as NAME.
        #[arg(long = "name", value_name = "NAME")]
        named: Option<String>,
        /// Only people on these Pages (Page ids, comma-separated); others
        /// are refused with 403. Unset: every Page.
        #[arg(long, value_delimiter = ',', num_args = 1)]
        pages: Option<Vec<String>>,
        /// At most this many requests per second (429 with Retry-After
        /// beyond it). Unset: unlimited.
        #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
        rate: Option<u32>,
    },
    /// Every key: name, created, last used, Pages, rate, revoked.
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
        ApiKeyCommand::Create {
            name,
            named,
            pages,
            rate,
        } => {
            let name = name.or(named).unwrap_or_default();
            keys::check_name(&name).map_err(anyhow::Error::msg)?;
            let scope = KeyScope {
                pages: pages
                    .map(|p| keys::check_pages(&p))
                    .transpose()
                    .map_err(anyhow::Error::msg)?,
                rate_per_second: rate,
            };
            let key = keys::generate();
            let hash = keys::hash(keys::reveal(&key));
            match store
                .create_scoped_api_key(&name, &hash, &scope, now_ms())
                .await
            {
                Ok(()) => {}
                Err(CreateKeyError::NameTaken(name)) => {
                    anyhow::bail!(
                        "an API key named {name:?} exists already (revoked keys keep their names): pick another name"
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
                let scope = k.scope();
                writeln!(
                    out,
                    "{}\tcreated {}\tlast used {}\tpages {}\trate {}\t{}",
                    k.name,
                    utc(k.created_at),
                    k.last_used_at.map_or_else(|| "never".to_string(), utc),
                    scope
                        .pages
                        .map_or_else(|| "all".to_string(), |p| p.join(",")),
                    scope
                        .rate_per_second
                        .map_or_else(|| "unlimited".to_string(), |r| format!("{r}/s")),
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
    // The Pages `serve` answers for: the default one and the added ones.
    let mut pages = vec![page_id.to_string()];
    pages.extend(store.added_pages().await?.into_iter().map(|p| p.page_id));
    // Without workers of its own: the running service sends what this queues.
    let writer = Writer::start(store.clone(), Feeds::default(), "lexbridge-send".into());
    let outbound = Outbound {
        store,
        writer: &writer,
        page_id,
        pages: &pages,
    };
    let sender = Sender {
        caller: None,
        idempotency_key: None,
    };
    let answer = outbound
        .submit_one(&sender, &serde_json::to_vec(&request)?)
        .await?;
    writeln!(out, "{}", answer.body)?;
    if answer.status != Outcome::Accepted.http_status() {
        anyhow::bail!("not sent (HTTP {} from the API's rules)", answer.status);
    }
    Ok(())
}

#[derive(Subcommand)]
pub enum OutboxCommand {
    /// A message's status as `GET /api/v1/messages/{id}` shows it, whoever
    /// sent it (an API key or `lexbridge send`).
    Show {
        /// The id `send` or the API answered with (`msg_…`).
        id: String,
    },
    /// Messages that finally failed (refused by Meta, expired, or dropped
    /// replies), with the reason.
    Failed,
    /// Queue failed messages again now, with a fresh time budget.
    Retry(crate::dead_letters::RetryArgs),
}

pub async fn outbox(
    store: &Store,
    command: OutboxCommand,
    out: &mut impl std::io::Write,
) -> anyhow::Result<()> {
    match command {
        OutboxCommand::Show { id } => match store.any_message_status(id.trim()).await? {
            Some(status) => {
                let answer = StatusAnswer::from(status);
                writeln!(out, "{}", serde_json::to_string_pretty(&answer)?)?;
            }
            None => anyhow::bail!("no message has the id {id:?}"),
        },
        OutboxCommand::Failed => crate::dead_letters::failed_outbox(store, out).await?,
        OutboxCommand::Retry(args) => crate::dead_letters::retry_outbox(store, args, out).await?,
    }
    Ok(())
}
