//! The `lexbridge` command line.
#![forbid(unsafe_code)]

/// The load generators and their fakes: part of this command, not of the
/// library the service links.
mod bench;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

use lexbridge::config::{DatabaseSettings, Settings};
use lexbridge::linking::admin::AccountsCommand;
use lexbridge::startup::{Application, Options};
use lexbridge::store::Store;

/// glibc malloc was an eighth of the service's CPU under load (perf); mimalloc
/// keeps per-thread free lists.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "lexbridge",
    version,
    about = "Messenger <-> Amazon Lex V2 bridge"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the service (webhook, workers) with settings from the environment.
    Serve,
    /// Apply database migrations to DATABASE_URL and exit.
    Migrate,
    /// Accounts of the login site (never their tokens).
    Accounts {
        #[command(subcommand)]
        which: AccountsCommand,
    },
    /// The embedded NLU engine: try an utterance, or score a bot on cases.
    Nlu {
        #[command(subcommand)]
        which: lexbridge::nlu::cli::NluCommand,
    },
    /// Keys for the outbound API (`Authorization: Bearer <key>`).
    ApiKey {
        #[command(subcommand)]
        which: lexbridge::outbound::cli::ApiKeyCommand,
    },
    /// Message a linked person through the outbound API's rules.
    Send(lexbridge::outbound::cli::SendArgs),
    /// Inbound events: those given up on, and putting them back.
    Inbox {
        #[command(subcommand)]
        which: lexbridge::dead_letters::InboxCommand,
    },
    /// Outbound messages, whoever sent them.
    Outbox {
        #[command(subcommand)]
        which: lexbridge::outbound::cli::OutboxCommand,
    },
    /// The Page's Messenger Profile and webhook subscription.
    Page {
        #[command(subcommand)]
        which: lexbridge::page_setup::cli::PageCommand,
    },
    /// Everything on this machine, no Meta or AWS account: stand-ins for
    /// Facebook, a Messenger emulator, the bundled bot.
    Demo(lexbridge::demo::DemoArgs),
    /// Load generators for the README's benchmarks.
    Bench {
        #[command(subcommand)]
        which: bench::BenchCommand,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();

    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async move {
        match cli.command {
            Command::Serve => serve().await,
            Command::Page { which } => lexbridge::page_setup::cli::run(which).await,
            Command::Migrate => migrate().await,
            Command::Accounts { which } => accounts(which).await,
            Command::ApiKey { which } => api_key(which).await,
            Command::Send(args) => send(args).await,
            Command::Inbox { which } => inbox(which).await,
            Command::Outbox { which } => outbox(which).await,
            Command::Bench { which } => bench::run(which).await,
            Command::Demo(args) => demo(args).await,
            Command::Nlu { which } => lexbridge::nlu::cli::run(which),
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn serve() -> anyhow::Result<()> {
    lexbridge::telemetry::init("info");
    let settings = Settings::from_env()?;
    let app = Application::build(settings, Options::default()).await?;
    app.run_until_stopped().await
}

async fn demo(args: lexbridge::demo::DemoArgs) -> anyhow::Result<()> {
    lexbridge::telemetry::init("warn");
    let demo = lexbridge::demo::Demo::build(&args).await?;
    println!("{}", demo.banner());
    demo.run().await
}

async fn migrate() -> anyhow::Result<()> {
    lexbridge::telemetry::init("info");
    let store = Store::connect(&database_from_env()).await?;
    store.migrate().await?;
    println!("migrations applied");
    Ok(())
}

/// Runs an operator command on the migrated database, printing to stdout.
async fn on_database(
    command: impl AsyncFnOnce(&Store, &mut std::io::StdoutLock<'static>) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    let store = Store::connect(&database_from_env()).await?;
    store.migrate().await?;
    let mut out = std::io::stdout().lock();
    let result = command(&store, &mut out).await;
    store.close().await;
    result
}

async fn accounts(which: AccountsCommand) -> anyhow::Result<()> {
    on_database(async |store, out| lexbridge::linking::admin::run(store, which, out).await).await
}

async fn api_key(which: lexbridge::outbound::cli::ApiKeyCommand) -> anyhow::Result<()> {
    on_database(async |store, out| lexbridge::outbound::cli::api_key(store, which, out).await).await
}

async fn send(args: lexbridge::outbound::cli::SendArgs) -> anyhow::Result<()> {
    let page_id = std::env::var("FACEBOOK_PAGE_ID").unwrap_or_default();
    on_database(async |store, out| lexbridge::outbound::cli::send(store, &page_id, args, out).await)
        .await
}

async fn inbox(which: lexbridge::dead_letters::InboxCommand) -> anyhow::Result<()> {
    on_database(async |store, out| lexbridge::dead_letters::inbox(store, which, out).await).await
}

async fn outbox(which: lexbridge::outbound::cli::OutboxCommand) -> anyhow::Result<()> {
    on_database(async |store, out| lexbridge::outbound::cli::outbox(store, which, out).await).await
}

/// DATABASE_URL alone: the commands that only touch the database need no
/// other setting.
fn database_from_env() -> DatabaseSettings {
    let url = std::env::var("DATABASE_URL").unwrap_or_else(|_| "sqlite://lexbridge.db".into());
    DatabaseSettings::new(url)
}
