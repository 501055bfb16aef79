//! `lexbridge demo`: the whole service on one machine without a Meta or AWS
//! account. SQLite and secrets in a data folder, the embedded NLU on the
//! bundled vehicle assistant, and the stand-ins of `crate::sandbox` mounted
//! beside the service, which reaches them over HTTP through its ordinary
//! settings (`GRAPH_API_URL`, `FACEBOOK_DIALOG_URL`, `FULFILLMENT_URL`).

pub mod secrets;

use anyhow::Context;
use secrecy::SecretString;
use std::collections::HashMap;
use std::net::TcpListener;
use std::path::PathBuf;
use std::sync::Arc;
use tracing::warn;
use url::Url;

use crate::config::Settings;
use crate::outbound::keys;
use crate::sandbox::people::PEOPLE;
use crate::sandbox::{self, Sandbox, SandboxConfig};
use crate::startup::{Application, Options};
use crate::store::now_ms;
use secrets::DemoSecrets;

pub const APP_ID: &str = "1000000000000099";
pub const PAGE_ID: &str = "1000000000000042";
pub const PAGE_NAME: &str = "Volta Motors";
/// The name of the demo's API key.
pub const API_KEY_NAME: &str = "demo";
/// What `--reset` deletes (nothing else in the folder is touched).
const FILES: [&str; 5] = [
    "lexbridge.db",
    "lexbridge.db-wal",
    "lexbridge.db-shm",
    "secrets.json",
    "sandbox.json",
];

#[derive(clap::Args, Debug, Clone)]
pub struct DemoArgs {
    /// The port to listen on (0: any free one).
    #[arg(long, default_value_t = 8080)]
    pub port: u16,
    /// The folder of the demo's database, secrets and conversations.
    #[arg(long, default_value = "lexbridge-demo")]
    pub data: PathBuf,
    /// Listen on every interface instead of 127.0.0.1. Anyone who reaches
    /// it can sign in as any demo person. Set PUBLIC_URL to the address
    /// browsers use.
    #[arg(long)]
    pub public: bool,
    /// Delete the demo's files in the data folder first and start over.
    #[arg(long)]
    pub reset: bool,
}

pub struct Demo {
    app: Application,
    sandbox: Arc<Sandbox>,
    pub base: String,
    pub api_key: String,
    pub data: PathBuf,
}

impl Demo {
    pub async fn build(args: &DemoArgs) -> anyhow::Result<Demo> {
        let data = &args.data;
        // The address and PUBLIC_URL first: a demo that cannot start deletes
        // nothing (`--reset` while another demo holds the port, a malformed
        // PUBLIC_URL).
        let host = if args.public { "0.0.0.0" } else { "127.0.0.1" };
        let listener = TcpListener::bind((host, args.port))
            .with_context(|| format!("listening on {host}:{}", args.port))?;
        let port = listener.local_addr()?.port();
        let local = format!("http://127.0.0.1:{port}");
        let base = match std::env::var("PUBLIC_URL") {
            Ok(url) if args.public && !url.trim().is_empty() => {
                url.trim().trim_end_matches('/').to_string()
            }
            _ => local.clone(),
        };
        crate::config::base_url(&base)
            .map_err(|why| anyhow::anyhow!("PUBLIC_URL {why}; nothing was changed"))?;
        if args.reset {
            for file in FILES {
                let path = data.join(file);
                if path.exists() {
                    std::fs::remove_file(&path)
                        .with_context(|| format!("deleting {}", path.display()))?;
                }
            }
        }
        std::fs::create_dir_all(data).with_context(|| format!("creating {}", data.display()))?;
        let db = data.join("lexbridge.db");
        let secrets_file = data.join("secrets.json");
        if db.exists() && !secrets_file.exists() {
            anyhow::bail!(
                "{} has a database but no secrets.json, so its stored tokens cannot be read; start over with --reset",
                data.display()
            );
        }
        let (secrets, _) = DemoSecrets::load_or_create(&secrets_file)?;
        let db_url = format!("sqlite://{}", db.display());
        let env = HashMap::from([
            ("DATABASE_URL", db_url),
            ("LEXBRIDGE_BIND", format!("{host}:{port}")),
            ("PUBLIC_URL", base.clone()),
            ("FACEBOOK_APP_ID", APP_ID.to_string()),
            ("FACEBOOK_APP_SECRET", secrets.app_secret.clone()),
            ("FACEBOOK_PAGE_ID", PAGE_ID.to_string()),
            ("FACEBOOK_PAGE_ACCESS_TOKEN", secrets.page_token.clone()),
            ("MESSENGER_VERIFY_TOKEN", secrets.verify_token.clone()),
            ("GRAPH_API_URL", local.clone()),
            ("FACEBOOK_DIALOG_URL", format!("{base}/sandbox/facebook/")),
            ("MESSENGER_LINK_URL", format!("{base}/sandbox/m.me/")),
            ("TOKEN_ENCRYPTION_KEY", secrets.token_encryption_key.clone()),
            ("SESSION_KEY", secrets.session_key.clone()),
            ("NLU", "local".to_string()),
            ("FULFILLMENT_URL", format!("{local}/sandbox/fulfillment")),
            ("FULFILLMENT_SECRET", secrets.fulfillment_secret.clone()),
        ]);
        let settings = Settings::from_lookup(|k| env.get(k).cloned())?;
        let config = SandboxConfig {
            app_id: APP_ID.to_string(),
            app_secret: SecretString::from(secrets.app_secret.clone()),
            page_id: PAGE_ID.to_string(),
            page_name: PAGE_NAME.to_string(),
            page_token: SecretString::from(secrets.page_token.clone()),
            public_url: Url::parse(&base)?,
            webhook_url: Url::parse(&format!("{local}/webhook"))?,
            fulfillment_secret: SecretString::from(secrets.fulfillment_secret.clone()),
            api_key: SecretString::from(secrets.api_key.clone()),
            state_file: Some(data.join("sandbox.json")),
        };
        let sandbox = Sandbox::open(config, now_ms())?;
        let sandbox = Arc::new(sandbox);
        let options = Options {
            listener: Some(listener),
            routes: Some(sandbox::routes(Arc::clone(&sandbox))),
            ..Options::default()
        };
        let app = Application::build(settings, options).await?;
        let store = &app.shared().store;
        let known = store
            .api_keys()
            .await?
            .into_iter()
            .any(|k| k.name == API_KEY_NAME);
        if !known {
            store
                .create_api_key(API_KEY_NAME, &keys::hash(&secrets.api_key), now_ms())
                .await?;
        }
        Ok(Demo {
            app,
            sandbox,
            base,
            api_key: secrets.api_key,
            data: data.clone(),
        })
    }

    pub fn port(&self) -> u16 {
        self.app.port()
    }

    /// The service's database (tests read what it did).
    pub fn store(&self) -> crate::store::Store {
        self.app.shared().store.clone()
    }

    pub fn stopper(&self) -> crate::startup::Stopper {
        self.app.stopper()
    }

    /// What `demo` prints when it starts.
    pub fn banner(&self) -> String {
        let base = &self.base;
        let person = &PEOPLE[0];
        let body = serde_json::json!({
            "to": { "psid": person.psid },
            "message": { "text": "Your car has finished charging." },
        });
        format!(
            "lexbridge demo: the service with stand-ins for Facebook (data in {data})\n\n  \
             Messenger emulator  {base}/sandbox/messenger\n  \
             Login site          {base}/\n  \
             Operator view       {base}/sandbox/ops\n  \
             API key             {key}\n\n\
             Ping {name} through the API:\n\n  \
             curl -sS {base}/api/v1/messages -H 'Authorization: Bearer {key}' \\\n    \
             -H 'Content-Type: application/json' -d '{body}'\n",
            data = self.data.display(),
            key = self.api_key,
            name = person.name(),
        )
    }

    /// Serves until stopped. Until it has reached the webhook once, each demo
    /// person's last message is delivered to it, as Meta did when they wrote.
    pub async fn run(self) -> anyhow::Result<()> {
        if !self.sandbox.history_delivered() {
            let sandbox = Arc::clone(&self.sandbox);
            tokio::spawn(async move {
                if let Err(e) = sandbox.replay_history().await {
                    warn!(error = %e, "the demo people's history could not be delivered");
                }
            });
        }
        self.app.run_until_stopped().await
    }
}
