//! Typed settings, read from the environment (see the configuration table in
//! the README). Every problem is collected so `serve` can name them all at once.

mod nlu;
mod reader;

use secrecy::{ExposeSecret, SecretString};
use std::fmt;
use std::net::SocketAddr;
use std::time::Duration;
use url::Url;

pub use nlu::{FulfillmentSettings, LexSettings, NluSettings};

/// `raw` as a base URL, one that other paths are put under (`PUBLIC_URL`,
/// the Graph API's): http(s), with no path but `/`, no query and no
/// fragment, which would end up inside every address made from it. The
/// error says why, to follow the setting's name. `serve`, `demo` and
/// `accounts delete` all read `PUBLIC_URL` through it.
pub fn base_url(raw: &str) -> Result<url::Url, String> {
    let url = url::Url::parse(raw.trim()).map_err(|e| format!("is malformed: {e}"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err("must be an http(s) URL".into());
    }
    // No user or password either: the URL goes into every address made
    // under it (Meta's redirect_uri, the data-deletion status URL).
    if url.path() != "/"
        || url.query().is_some()
        || url.fragment().is_some()
        || !url.username().is_empty()
        || url.password().is_some()
    {
        return Err(format!(
            "must be a scheme, host and port only (no user, path, query or fragment): {}",
            mask_url_password(url.as_str())
        ));
    }
    Ok(url)
}
use reader::{mask_url_password, Reader};

#[derive(Clone, Debug)]
pub struct Settings {
    pub database: DatabaseSettings,
    pub bind: SocketAddr,
    pub public_url: Url,
    pub facebook: FacebookSettings,
    pub workers: WorkerSettings,
    pub nlu: NluSettings,
    pub replies: ReplySettings,
    /// When the bot passes a conversation to people (conversation routing).
    pub handover: HandoverSettings,
    /// 32 bytes, base64: encrypts stored user and page tokens.
    pub token_encryption_key: SecretString,
    /// 64 bytes, base64: signs and encrypts the login session cookie.
    pub session_key: SecretString,
    /// How long a login site session may last.
    pub sessions: SessionSettings,
    /// What is kept, and how long.
    pub retention: RetentionSettings,
    /// METRICS_TOKEN: when set, `/metrics` answers only requests with
    /// `Authorization: Bearer <token>`.
    pub metrics_token: Option<SecretString>,
}

/// Limits of a signed-in session of the login site.
#[derive(Clone, Debug, PartialEq)]
pub struct SessionSettings {
    /// SESSION_LIFETIME_HOURS: a session ends this long after sign-in.
    pub lifetime: Duration,
    /// SESSION_IDLE_TIMEOUT_MINUTES: a session ends after this long without
    /// a request.
    pub idle_timeout: Duration,
}

/// How long what people wrote is kept (see `store::retention`).
#[derive(Clone, Debug, PartialEq)]
pub struct RetentionSettings {
    /// RETENTION_DAYS: processed inbox rows, finished outbox rows,
    /// `ids_for_apps` answers and idle conversations older than this many
    /// days are pruned. At least 2: longer than Meta redelivers a webhook
    /// event (the stored events are how a redelivery is known), and than
    /// the 24 hours an idempotency answer is kept (none names a pruned
    /// message).
    pub days: u32,
}

#[derive(Clone)]
pub struct DatabaseSettings {
    pub url: SecretString,
    /// Most connections to Postgres (`DATABASE_POOL_SIZE`); SQLite keeps
    /// its own small pools.
    pub pool_size: u32,
}

impl fmt::Debug for DatabaseSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DatabaseSettings")
            .field("url", &mask_url_password(self.url.expose_secret()))
            .field("pool_size", &self.pool_size)
            .finish()
    }
}

impl DatabaseSettings {
    /// Connections to Postgres unless `DATABASE_POOL_SIZE` says otherwise.
    pub const DEFAULT_POOL_SIZE: u32 = 16;

    /// `url` with the default pool size.
    pub fn new(url: impl Into<String>) -> DatabaseSettings {
        DatabaseSettings {
            url: SecretString::from(url.into()),
            pool_size: Self::DEFAULT_POOL_SIZE,
        }
    }

    pub fn is_postgres(&self) -> bool {
        let url = self.url.expose_secret();
        url.starts_with("postgres://") || url.starts_with("postgresql://")
    }
}

#[derive(Clone, Debug)]
pub struct FacebookSettings {
    pub app_id: String,
    pub app_secret: SecretString,
    pub page_id: String,
    pub page_access_token: SecretString,
    pub verify_token: SecretString,
    pub graph_api_url: Url,
    pub graph_api_version: String,
    pub dialog_url: Url,
    /// FACEBOOK_LOGIN_SCOPE: permissions the login dialog asks for, as Meta
    /// spells them (comma-separated). With `pages_show_list`, a Page admin's
    /// login also fetches a fresh Page token.
    pub login_scope: String,
    /// MESSENGER_LINK_URL: where the account page's "Open Messenger" link
    /// goes, `{this}/{page-id}?ref=…` (Messenger's m.me by default).
    pub messenger_link_url: Url,
}

/// What the bot says on its own, and the Messenger niceties around replies.
#[derive(Clone, Debug)]
pub struct ReplySettings {
    /// Answer to a photo, sticker, file or location the bot has nothing for.
    pub attachment_reply: String,
    /// Said once when a message finally cannot be answered.
    pub apology: String,
    /// Send `mark_seen` when a message arrives.
    pub mark_seen: bool,
    /// Show `typing_on` while the NLU thinks.
    pub typing_indicator: bool,
    /// How long the NLU may take before `typing_on` is shown: an answer
    /// faster than this arrives without a typing bubble flickering before it
    /// (and without a Send API call spent on one). Zero shows it at once.
    pub typing_after: Duration,
    /// Said when the person starts over ("start over", "restart" or the
    /// payload `START_OVER`): what the NLU remembered of them is forgotten.
    pub start_over: String,
}

/// Conversation routing: when the bot hands a person to the Page's people,
/// and when it takes an idle thread back.
#[derive(Clone, Debug, PartialEq)]
pub struct HandoverSettings {
    /// HANDOVER_INTENTS: intents (comma-separated) whose answer passes the
    /// thread on, after their messages. The payload `HANDOVER` always does.
    pub intents: Vec<String>,
    /// HANDOVER_MESSAGE: said before the thread passes when the NLU said
    /// nothing.
    pub message: String,
    /// HANDOVER_APP_ID: the app the thread passes to; the Page Inbox by
    /// default.
    pub target_app_id: String,
    /// HANDOVER_IDLE_TAKE_BACK_MS: a thread another app has held this long
    /// without the person writing is taken back (`take_thread_control`);
    /// `None` (0, the default) leaves it to the other app to pass it back.
    pub idle_take_back: Option<Duration>,
}

/// Meta's Page Inbox, the app of the Page's people.
pub const PAGE_INBOX_APP_ID: &str = "263902037430900";

/// Knobs of the background workers; defaults suit production.
#[derive(Clone, Debug)]
pub struct WorkerSettings {
    /// Send API calls per second per Page (token bucket).
    pub send_rate_per_page: u32,
    /// How long an inbound message keeps being retried (from its first
    /// attempt, or from an operator's `inbox retry`) before it is dead-lettered with
    /// one apology to the person.
    pub inbox_retry_budget: Duration,
    /// A bot reply (or apology-worthy notice) not sent this long after it
    /// was queued is dropped: one apology goes instead once Graph answers.
    pub reply_max_age: Duration,
    /// How long an API message (and any other non-reply message) keeps
    /// being retried after it became sendable before it fails as expired.
    pub api_message_expiry: Duration,
    /// First retry delay; doubles each attempt, with jitter.
    pub retry_base: Duration,
    /// Ceiling of the retry delay.
    pub retry_max: Duration,
    /// How long a Page's sends pause after a rate limit (Graph codes 4, 32,
    /// 613) or a burst of 5xx answers; doubles while it recurs, up to
    /// `retry_max`.
    pub page_cooldown: Duration,
    /// Connect / whole-request timeouts of Graph API calls.
    pub graph_connect_timeout: Duration,
    pub graph_request_timeout: Duration,
}

impl Default for WorkerSettings {
    fn default() -> Self {
        Self {
            send_rate_per_page: 250,
            inbox_retry_budget: Duration::from_secs(600),
            reply_max_age: Duration::from_secs(900),
            api_message_expiry: Duration::from_secs(24 * 3600),
            retry_base: Duration::from_millis(500),
            retry_max: Duration::from_secs(300),
            page_cooldown: Duration::from_secs(30),
            graph_connect_timeout: Duration::from_secs(5),
            graph_request_timeout: Duration::from_secs(20),
        }
    }
}

/// Every problem found while reading settings.
#[derive(Debug, thiserror::Error)]
#[error("invalid configuration:\n  - {}", .problems.join("\n  - "))]
pub struct ConfigError {
    pub problems: Vec<String>,
}

impl Settings {
    /// Reads settings from the process environment.
    pub fn from_env() -> Result<Settings, ConfigError> {
        Self::from_lookup(|key| std::env::var(key).ok())
    }

    /// Reads settings through `lookup` (the environment, or a map in tests).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Settings, ConfigError> {
        let mut r = Reader {
            lookup: &lookup,
            problems: Vec::new(),
        };
        let defaults = WorkerSettings::default();
        r.removed("INBOX_MAX_ATTEMPTS", "INBOX_RETRY_BUDGET_MS");
        r.removed(
            "OUTBOX_MAX_ATTEMPTS",
            "REPLY_MAX_AGE_MS and API_MESSAGE_EXPIRY_MS",
        );
        let settings = Settings {
            database: DatabaseSettings {
                url: SecretString::from(r.optional("DATABASE_URL", "sqlite://lexbridge.db")),
                pool_size: r.positive("DATABASE_POOL_SIZE", DatabaseSettings::DEFAULT_POOL_SIZE),
            },
            bind: r.parsed("LEXBRIDGE_BIND", "127.0.0.1:8080"),
            public_url: r.base_url("PUBLIC_URL", "http://127.0.0.1:8080"),
            facebook: FacebookSettings {
                app_id: r.required("FACEBOOK_APP_ID"),
                app_secret: r.secret("FACEBOOK_APP_SECRET"),
                page_id: r.optional_numeric_id("FACEBOOK_PAGE_ID"),
                page_access_token: SecretString::from(r.optional("FACEBOOK_PAGE_ACCESS_TOKEN", "")),
                verify_token: r.secret("MESSENGER_VERIFY_TOKEN"),
                graph_api_url: r.base_url("GRAPH_API_URL", "https://graph.facebook.com"),
                graph_api_version: r.optional("GRAPH_API_VERSION", "v25.0"),
                dialog_url: r.url("FACEBOOK_DIALOG_URL", "https://www.facebook.com"),
                login_scope: r.optional("FACEBOOK_LOGIN_SCOPE", "public_profile"),
                messenger_link_url: r.url("MESSENGER_LINK_URL", "https://m.me/"),
            },
            workers: WorkerSettings {
                send_rate_per_page: r.positive("SEND_RATE_PER_PAGE", defaults.send_rate_per_page),
                inbox_retry_budget: r
                    .positive_millis("INBOX_RETRY_BUDGET_MS", defaults.inbox_retry_budget),
                reply_max_age: r.positive_millis("REPLY_MAX_AGE_MS", defaults.reply_max_age),
                api_message_expiry: r
                    .positive_millis("API_MESSAGE_EXPIRY_MS", defaults.api_message_expiry),
                retry_base: r.positive_millis("RETRY_BASE_MS", defaults.retry_base),
                retry_max: r.positive_millis("RETRY_MAX_MS", defaults.retry_max),
                page_cooldown: r.positive_millis("PAGE_COOLDOWN_MS", defaults.page_cooldown),
                graph_connect_timeout: r
                    .positive_millis("GRAPH_CONNECT_TIMEOUT_MS", defaults.graph_connect_timeout),
                graph_request_timeout: r
                    .positive_millis("GRAPH_REQUEST_TIMEOUT_MS", defaults.graph_request_timeout),
            },
            nlu: nlu::nlu_settings(&mut r),
            token_encryption_key: r.base64_key("TOKEN_ENCRYPTION_KEY", 32),
            session_key: r.base64_key("SESSION_KEY", 64),
            replies: ReplySettings {
                attachment_reply: r.optional(
                    "ATTACHMENT_REPLY",
                    "Thanks for sending that! I can only read text for now, so could you type your question?",
                ),
                apology: r.optional(
                    "APOLOGY_MESSAGE",
                    "Sorry, something went wrong on our side and I couldn't answer that. Please try again in a little while.",
                ),
                mark_seen: r.flag("MESSENGER_MARK_SEEN", true),
                typing_indicator: r.flag("MESSENGER_TYPING_INDICATOR", true),
                typing_after: r.millis("MESSENGER_TYPING_AFTER_MS", Duration::from_millis(300)),
                start_over: r.optional(
                    "START_OVER_REPLY",
                    "Okay, let's start over. What can I do for you?",
                ),
            },
            handover: HandoverSettings {
                intents: r
                    .optional("HANDOVER_INTENTS", "")
                    .split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(str::to_string)
                    .collect(),
                message: r.optional(
                    "HANDOVER_MESSAGE",
                    "I'm passing you to someone from our team; they will answer here.",
                ),
                target_app_id: r.optional("HANDOVER_APP_ID", PAGE_INBOX_APP_ID),
                idle_take_back: Some(
                    r.millis("HANDOVER_IDLE_TAKE_BACK_MS", Duration::ZERO),
                )
                .filter(|d| !d.is_zero()),
            },
            sessions: SessionSettings {
                lifetime: Duration::from_secs(
                    3600 * u64::from(r.positive("SESSION_LIFETIME_HOURS", 7 * 24)),
                ),
                idle_timeout: Duration::from_secs(
                    60 * u64::from(r.positive("SESSION_IDLE_TIMEOUT_MINUTES", 24 * 60)),
                ),
            },
            retention: RetentionSettings {
                days: r.retention_days("RETENTION_DAYS", 30),
            },
            metrics_token: r.bearer_token("METRICS_TOKEN"),
        };
        let db = settings.database.url.expose_secret();
        if !(db.starts_with("sqlite:") || settings.database.is_postgres()) {
            r.problems
                .push("DATABASE_URL must start with sqlite:// or postgres://".to_string());
        }
        if settings.database.is_postgres() && settings.database.pool_size < 3 {
            r.problems.push(
                "DATABASE_POOL_SIZE must be at least 3 on Postgres (the two group committers keep one connection each)"
                    .to_string(),
            );
        }
        let facebook = &settings.facebook;
        if facebook.page_id.is_empty() != facebook.page_access_token.expose_secret().is_empty() {
            r.problems.push(
                "FACEBOOK_PAGE_ID and FACEBOOK_PAGE_ACCESS_TOKEN go together (or neither, with Pages added by `lexbridge page add`)"
                    .to_string(),
            );
        }
        let app_id = &settings.handover.target_app_id;
        if app_id.is_empty() || !app_id.bytes().all(|b| b.is_ascii_digit()) {
            r.problems
                .push("HANDOVER_APP_ID must be a Meta app id (digits)".to_string());
        }
        if !settings.facebook.graph_api_version.starts_with('v') {
            r.problems
                .push("GRAPH_API_VERSION must look like v25.0".to_string());
        }
        if r.problems.is_empty() {
            Ok(settings)
        } else {
            Err(ConfigError {
                problems: r.problems,
            })
        }
    }
}

#[cfg(test)]
mod tests;
