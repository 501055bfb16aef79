//! `lexbridge page setup --config page.toml` and `lexbridge page show`,
//! with the settings `serve` reads (the Page, its token, the app secret
//! for `appsecret_proof`, `PUBLIC_URL`).

use std::path::PathBuf;

use crate::config::Settings;
use crate::facebook::GraphClient;

use super::Target;

#[derive(clap::Subcommand)]
pub enum PageCommand {
    /// Set the Page's Messenger Profile from a config and subscribe the
    /// app to the webhook fields the service handles.
    Setup {
        /// The profile (TOML; see docs/page.example.toml).
        #[arg(long)]
        config: PathBuf,
        /// An added Page (default: FACEBOOK_PAGE_ID's).
        #[arg(long)]
        page: Option<String>,
    },
    /// Print the Page's Messenger Profile as Meta has it now, and with
    /// --config how it differs from that config.
    Show {
        #[arg(long)]
        config: Option<PathBuf>,
        /// An added Page (default: FACEBOOK_PAGE_ID's).
        #[arg(long)]
        page: Option<String>,
    },
    /// Add a Page to this deployment (or change an added one): its token is
    /// checked with Meta and stored encrypted.
    Add(crate::pages::cli::AddArgs),
    /// List the Pages this deployment answers for.
    List,
    /// Remove an added Page: its token and settings are forgotten, its
    /// queued messages cancelled.
    Remove {
        #[arg(long)]
        id: String,
    },
}

pub async fn run(command: PageCommand) -> anyhow::Result<()> {
    let settings = Settings::from_env()?;
    let graph = GraphClient::from_settings(&settings)?;
    let mut out = std::io::stdout();
    match &command {
        PageCommand::Add(args) => {
            let mut args = args.clone();
            if args.token.is_none() {
                let mut line = String::new();
                std::io::stdin().read_line(&mut line)?;
                args.token = Some(line);
            }
            let store = on_database(&settings).await?;
            return crate::pages::cli::add(&settings, &store, &graph, &args, &mut out).await;
        }
        PageCommand::List => {
            let store = on_database(&settings).await?;
            return crate::pages::cli::list(&settings, &store, &mut out).await;
        }
        PageCommand::Remove { id } => {
            let store = on_database(&settings).await?;
            return crate::pages::cli::remove(&store, id, &mut out).await;
        }
        PageCommand::Setup { .. } | PageCommand::Show { .. } => {}
    }
    let chosen = match &command {
        PageCommand::Setup { page, .. } | PageCommand::Show { page, .. } => page.clone(),
        _ => None,
    };
    let (page_id, token) = match chosen {
        Some(page) if page != settings.facebook.page_id => {
            let store = on_database(&settings).await?;
            let token = crate::pages::cli::token_for(&settings, &store, &page).await?;
            (page, token)
        }
        _ if settings.facebook.page_id.is_empty() => {
            anyhow::bail!("FACEBOOK_PAGE_ID is not set: name an added Page with --page")
        }
        _ => (
            settings.facebook.page_id.clone(),
            settings.facebook.page_access_token.clone(),
        ),
    };
    let target = Target {
        graph: &graph,
        page_id: &page_id,
        token: &token,
        public_url: &settings.public_url,
    };
    match command {
        PageCommand::Setup { config, .. } => {
            let profile = super::load(&config, target.public_url)?;
            for line in super::setup(&target, &profile).await? {
                println!("{line}");
            }
        }
        PageCommand::Show { config, .. } => {
            let wanted = match &config {
                Some(path) => Some(super::load(path, target.public_url)?),
                None => None,
            };
            print!("{}", super::show(&target, wanted.as_ref()).await?);
        }
        PageCommand::Add(_) | PageCommand::List | PageCommand::Remove { .. } => {}
    }
    Ok(())
}

/// The deployment's database, migrated.
async fn on_database(settings: &Settings) -> anyhow::Result<crate::store::Store> {
    let store = crate::store::Store::connect(&settings.database).await?;
    store.migrate().await?;
    Ok(store)
}
