//! The `lexbridge` command line.
#![forbid(unsafe_code)]

use clap::{Parser, Subcommand};
use std::process::ExitCode;

use lexbridge::bench;
use lexbridge::config::Settings;
use lexbridge::startup::{Application, Options};
use lexbridge::store::Store;

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
            Command::Migrate => migrate().await,
            Command::Bench { which } => bench::run(which).await,
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

async fn migrate() -> anyhow::Result<()> {
    lexbridge::telemetry::init("info");
    let url = std::env::var("DATABASE_URL").unwrap_or_else(|_| "sqlite://lexbridge.db".into());
    let database = lexbridge::config::DatabaseSettings { url: url.into() };
    let store = Store::connect(&database).await?;
    store.migrate().await?;
    println!("migrations applied");
    Ok(())
}
