//! `lexbridge inbox failed|retry` and `lexbridge outbox failed|retry`: what
//! finally failed, with its reason, and putting it back. Nothing is dropped
//! silently: a row stays listed here until it is retried or RETENTION_DAYS
//! prune it.

use clap::Subcommand;

use crate::linking::utc;
use crate::store::failures::Retry;
use crate::store::{now_ms, Store};

#[derive(Subcommand)]
pub enum InboxCommand {
    /// Inbound events given up on (dead-lettered), with the last error.
    Failed,
    /// Put dead events back to be processed now, with a fresh
    /// INBOX_RETRY_BUDGET_MS.
    Retry(RetryArgs),
}

#[derive(clap::Args)]
pub struct RetryArgs {
    /// The row's id, as `failed` lists it (the outbox also takes `msg_…`).
    #[arg(required_unless_present = "all", conflicts_with = "all")]
    pub id: Option<String>,
    /// Every failed row.
    #[arg(long)]
    pub all: bool,
}

impl RetryArgs {
    pub fn which(self) -> Retry {
        match self.id {
            Some(id) if !self.all => Retry::One(id),
            _ => Retry::All,
        }
    }
}

pub async fn inbox(
    store: &Store,
    command: InboxCommand,
    out: &mut impl std::io::Write,
) -> anyhow::Result<()> {
    match command {
        InboxCommand::Failed => {
            let rows = store.failed_inbox().await?;
            writeln!(out, "{} dead inbox row(s)", rows.len())?;
            for r in rows {
                writeln!(
                    out,
                    "{}\t{}\tpage {} psid {}\t{} attempt(s)\treceived {}\t{}",
                    r.id,
                    r.kind,
                    r.page_id,
                    r.psid,
                    r.attempts,
                    utc(r.received_at),
                    r.last_error.as_deref().unwrap_or("(no error kept)")
                )?;
            }
        }
        InboxCommand::Retry(args) => {
            let which = args.which();
            let n = store.retry_inbox(&which, now_ms()).await?;
            if n == 0 {
                if let Retry::One(id) = which {
                    anyhow::bail!("no dead inbox row has the id {id}");
                }
            }
            writeln!(out, "{n} inbox row(s) put back")?;
        }
    }
    Ok(())
}

/// `lexbridge outbox failed`.
pub async fn failed_outbox(store: &Store, out: &mut impl std::io::Write) -> anyhow::Result<()> {
    let rows = store.failed_outbox().await?;
    writeln!(out, "{} failed outbox message(s)", rows.len())?;
    for r in rows {
        let code = r
            .error_code
            .map_or(String::new(), |c| format!("code {c}: "));
        writeln!(
            out,
            "{}\t{}\t{}\tpage {} psid {}\t{} attempt(s)\tqueued {}\t{code}{}",
            r.id,
            r.public_id.as_deref().unwrap_or("-"),
            r.origin,
            r.page_id,
            r.psid,
            r.attempts,
            utc(r.created_at),
            r.error_message.as_deref().unwrap_or("(no error kept)")
        )?;
    }
    Ok(())
}

/// `lexbridge outbox retry ID|--all`.
pub async fn retry_outbox(
    store: &Store,
    args: RetryArgs,
    out: &mut impl std::io::Write,
) -> anyhow::Result<()> {
    let which = args.which();
    let n = store.retry_outbox(&which, now_ms()).await?;
    if n == 0 {
        if let Retry::One(id) = which {
            anyhow::bail!(
                "no failed outbox message has the id {id}, or its person unlinked since it was accepted (it stays failed)"
            );
        }
    }
    writeln!(out, "{n} outbox message(s) queued again")?;
    Ok(())
}
