//! Typed settings, read from the environment (see the configuration table in
//! the README). Every problem is collected so `serve` can name them all at once.

use secrecy::{ExposeSecret, SecretString};
use std::fmt;
use std::net::SocketAddr;
use std::time::Duration;
use url::Url;

#[derive(Clone, Debug)]
pub struct Settings {
    pub database: DatabaseSettings,
    pub bind: SocketAddr,
    pub public_url: Url,
    pub facebook: FacebookSettings,
    pub workers: WorkerSettings,
    pub nlu: NluSettings,
    pub replies: ReplySettings,
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
    /// days are pruned. At least 1: a day outlasts the 24 hours an
    /// idempotency answer is kept, so none names a pruned message.
    pub days: u32,
}

#[derive(Clone)]
pub struct DatabaseSettings {
    pub url: SecretString,
}

impl fmt::Debug for DatabaseSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DatabaseSettings")
            .field("url", &mask_url_password(self.url.expose_secret()))
            .finish()
    }
}

impl DatabaseSettings {
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

/// Which NLU answers conversations.
#[derive(Clone, Debug)]
pub enum NluSettings {
    /// Amazon Lex V2 (`NLU=lex`).
    Lex(LexSettings),
    /// The embedded engine over a Lex V2 export (`NLU=local`); `None` is the
    /// bundled demo bot.
    Local {
        bot: Option<std::path::PathBuf>,
        fulfillment: Option<FulfillmentSettings>,
    },
}

/// The backend that fulfils intents of the embedded engine.
#[derive(Clone, Debug)]
pub struct FulfillmentSettings {
    pub url: Url,
    /// Signs each request (`X-Lexbridge-Signature-256`).
    pub secret: SecretString,
}

#[derive(Clone, Debug, PartialEq)]
pub struct LexSettings {
    pub bot_id: String,
    pub bot_alias_id: String,
    pub locale_id: String,
    /// `LEX_ENDPOINT_URL` or `AWS_ENDPOINT_URL_LEX_RUNTIME_V2`: another
    /// endpoint than AWS's (a test double, a VPC endpoint).
    pub endpoint_url: Option<Url>,
}

/// What the bot says on its own, and the Messenger niceties around replies.
#[derive(Clone, Debug)]
pub struct ReplySettings {
    /// Answer to a photo, sticker, file or location (no NLU call).
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

/// Knobs of the background workers; defaults suit production.
#[derive(Clone, Debug)]
pub struct WorkerSettings {
    /// Send API calls per second per Page (token bucket).
    pub send_rate_per_page: u32,
    /// Attempts before an inbox row is dead-lettered.
    pub inbox_max_attempts: u32,
    /// Attempts before an outbox row fails for good on transient errors.
    pub outbox_max_attempts: u32,
    /// First retry delay; doubles each attempt, with jitter.
    pub retry_base: Duration,
    /// Ceiling of the retry delay.
    pub retry_max: Duration,
    /// Connect / whole-request timeouts of Graph API calls.
    pub graph_connect_timeout: Duration,
    pub graph_request_timeout: Duration,
}

impl Default for WorkerSettings {
    fn default() -> Self {
        Self {
            send_rate_per_page: 250,
            inbox_max_attempts: 8,
            outbox_max_attempts: 8,
            retry_base: Duration::from_millis(500),
            retry_max: Duration::from_secs(300),
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
        let settings = Settings {
            database: DatabaseSettings {
                url: SecretString::from(r.optional("DATABASE_URL", "sqlite://lexbridge.db")),
            },
            bind: r.parsed("LEXBRIDGE_BIND", "127.0.0.1:8080"),
            public_url: r.url("PUBLIC_URL", "http://127.0.0.1:8080"),
            facebook: FacebookSettings {
                app_id: r.required("FACEBOOK_APP_ID"),
                app_secret: r.secret("FACEBOOK_APP_SECRET"),
                page_id: r.required("FACEBOOK_PAGE_ID"),
                page_access_token: r.secret("FACEBOOK_PAGE_ACCESS_TOKEN"),
                verify_token: r.secret("MESSENGER_VERIFY_TOKEN"),
                graph_api_url: r.url("GRAPH_API_URL", "https://graph.facebook.com"),
                graph_api_version: r.optional("GRAPH_API_VERSION", "v25.0"),
                dialog_url: r.url("FACEBOOK_DIALOG_URL", "https://www.facebook.com"),
                login_scope: r.optional("FACEBOOK_LOGIN_SCOPE", "public_profile"),
                messenger_link_url: r.url("MESSENGER_LINK_URL", "https://m.me/"),
            },
            workers: WorkerSettings {
                send_rate_per_page: r.positive("SEND_RATE_PER_PAGE", defaults.send_rate_per_page),
                inbox_max_attempts: r.positive("INBOX_MAX_ATTEMPTS", defaults.inbox_max_attempts),
                outbox_max_attempts: r
                    .positive("OUTBOX_MAX_ATTEMPTS", defaults.outbox_max_attempts),
                retry_base: r.millis("RETRY_BASE_MS", defaults.retry_base),
                retry_max: r.millis("RETRY_MAX_MS", defaults.retry_max),
                graph_connect_timeout: r
                    .millis("GRAPH_CONNECT_TIMEOUT_MS", defaults.graph_connect_timeout),
                graph_request_timeout: r
                    .millis("GRAPH_REQUEST_TIMEOUT_MS", defaults.graph_request_timeout),
            },
            nlu: nlu_settings(&mut r),
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
            sessions: SessionSettings {
                lifetime: Duration::from_secs(
                    3600 * u64::from(r.positive("SESSION_LIFETIME_HOURS", 7 * 24)),
                ),
                idle_timeout: Duration::from_secs(
                    60 * u64::from(r.positive("SESSION_IDLE_TIMEOUT_MINUTES", 24 * 60)),
                ),
            },
            retention: RetentionSettings {
                days: r.positive("RETENTION_DAYS", 30),
            },
            metrics_token: r.bearer_token("METRICS_TOKEN"),
        };
        let db = settings.database.url.expose_secret();
        if !(db.starts_with("sqlite:") || settings.database.is_postgres()) {
            r.problems
                .push("DATABASE_URL must start with sqlite:// or postgres://".to_string());
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

fn nlu_settings(r: &mut Reader) -> NluSettings {
    let lex_bot = r.get("LEX_BOT_ID");
    let default = if lex_bot.is_some() { "lex" } else { "local" };
    match r.optional("NLU", default).as_str() {
        "lex" => {
            if lex_bot.is_none() {
                r.problems.push("NLU=lex needs LEX_BOT_ID".to_string());
            }
            if r.get("LEX_BOT_ALIAS_ID").is_none() {
                r.problems
                    .push("NLU=lex needs LEX_BOT_ALIAS_ID".to_string());
            }
            let endpoint = ["LEX_ENDPOINT_URL", "AWS_ENDPOINT_URL_LEX_RUNTIME_V2"]
                .into_iter()
                .find(|k| r.get(k).is_some())
                .map(|k| r.url(k, "http://localhost"));
            NluSettings::Lex(LexSettings {
                bot_id: lex_bot.unwrap_or_default(),
                bot_alias_id: r.get("LEX_BOT_ALIAS_ID").unwrap_or_default(),
                locale_id: r.optional("LEX_LOCALE_ID", "en_US"),
                endpoint_url: endpoint,
            })
        }
        "local" => NluSettings::Local {
            bot: r.get("LOCAL_BOT").map(std::path::PathBuf::from),
            fulfillment: r.get("FULFILLMENT_URL").map(|_| FulfillmentSettings {
                url: fulfillment_url(r),
                secret: r.secret("FULFILLMENT_SECRET"),
            }),
        },
        other => {
            r.problems
                .push(format!("NLU must be lex or local, not {other:?}"));
            NluSettings::Local {
                bot: None,
                fulfillment: None,
            }
        }
    }
}

/// FULFILLMENT_URL: https, or plain http only to this machine (the signed
/// requests carry customers' data and must not cross a network in clear).
fn fulfillment_url(r: &mut Reader) -> Url {
    let url = r.url("FULFILLMENT_URL", "http://localhost");
    if url.scheme() == "http" && !is_loopback(&url) {
        r.problems.push(
            "FULFILLMENT_URL must be an https:// URL (plain http is allowed only for a loopback host: localhost, 127.0.0.0/8, [::1])"
                .to_string(),
        );
    }
    url
}

/// Whether `url` names this machine.
fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(name)) => name.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

struct Reader<'a> {
    lookup: &'a dyn Fn(&str) -> Option<String>,
    problems: Vec<String>,
}

impl Reader<'_> {
    fn get(&self, key: &str) -> Option<String> {
        (self.lookup)(key).filter(|v| !v.trim().is_empty())
    }

    fn optional(&mut self, key: &str, default: &str) -> String {
        self.get(key).unwrap_or_else(|| default.to_string())
    }

    fn required(&mut self, key: &str) -> String {
        self.get(key).unwrap_or_else(|| {
            self.problems.push(format!("{key} is required"));
            String::new()
        })
    }

    fn secret(&mut self, key: &str) -> SecretString {
        SecretString::from(self.required(key))
    }

    fn parsed<T: std::str::FromStr>(&mut self, key: &str, default: &str) -> T
    where
        T::Err: fmt::Display,
    {
        let raw = self.optional(key, default);
        match raw.parse() {
            Ok(v) => v,
            Err(e) => {
                self.problems.push(format!("{key} is malformed: {e}"));
                default
                    .parse()
                    .unwrap_or_else(|_| unreachable!("defaults parse"))
            }
        }
    }

    fn url(&mut self, key: &str, default: &str) -> Url {
        let url: Url = self.parsed(key, default);
        if !matches!(url.scheme(), "http" | "https") {
            self.problems.push(format!("{key} must be an http(s) URL"));
        }
        url
    }

    fn positive(&mut self, key: &str, default: u32) -> u32 {
        let v: u32 = self.parsed(key, &default.to_string());
        if v == 0 {
            self.problems.push(format!("{key} must be at least 1"));
        }
        v
    }

    /// A required base64 secret of exactly `len` bytes.
    fn base64_key(&mut self, key: &str, len: usize) -> SecretString {
        use base64::Engine;
        let raw = self.required(key);
        if !raw.is_empty() {
            match base64::engine::general_purpose::STANDARD.decode(raw.trim()) {
                Ok(bytes) if bytes.len() == len => {}
                _ => self
                    .problems
                    .push(format!("{key} must be {len} random bytes, base64-encoded (e.g. openssl rand -base64 {len})")),
            }
        }
        SecretString::from(raw)
    }

    fn flag(&mut self, key: &str, default: bool) -> bool {
        match self
            .get(key)
            .as_deref()
            .map(str::to_ascii_lowercase)
            .as_deref()
        {
            None => default,
            Some("1" | "true" | "yes" | "on") => true,
            Some("0" | "false" | "no" | "off") => false,
            Some(_) => {
                self.problems.push(format!("{key} must be true or false"));
                default
            }
        }
    }

    fn millis(&mut self, key: &str, default: Duration) -> Duration {
        Duration::from_millis(self.parsed(key, &default.as_millis().to_string()))
    }

    /// An optional secret sent as `Authorization: Bearer <token>`: visible
    /// ASCII without spaces (RFC 6750's token68 and more), so any client can
    /// send it in a header.
    fn bearer_token(&mut self, key: &str) -> Option<SecretString> {
        let raw = self.get(key)?;
        if !raw.bytes().all(|b| b.is_ascii_graphic()) {
            self.problems.push(format!(
                "{key} must be printable ASCII without spaces (e.g. openssl rand -hex 32)"
            ));
        }
        Some(SecretString::from(raw))
    }
}

/// `postgres://user:secret@host/db` -> `postgres://user:***@host/db`.
fn mask_url_password(url: &str) -> String {
    match Url::parse(url) {
        Ok(mut parsed) if parsed.password().is_some() => {
            let _ = parsed.set_password(Some("***"));
            parsed.to_string()
        }
        _ => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn complete() -> HashMap<&'static str, &'static str> {
        HashMap::from([
            ("FACEBOOK_APP_ID", "123"),
            ("FACEBOOK_APP_SECRET", "app-secret"),
            ("FACEBOOK_PAGE_ID", "456"),
            ("FACEBOOK_PAGE_ACCESS_TOKEN", "page-token"),
            ("MESSENGER_VERIFY_TOKEN", "verify"),
            ("TOKEN_ENCRYPTION_KEY", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="),
            (
                "SESSION_KEY",
                "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA==",
            ),
        ])
    }

    fn read(map: &HashMap<&str, &str>) -> Result<Settings, ConfigError> {
        Settings::from_lookup(|k| map.get(k).map(|v| v.to_string()))
    }

    #[test]
    fn defaults_apply_when_only_required_settings_are_given() {
        let s = read(&complete()).expect("valid");
        assert_eq!(s.bind.to_string(), "127.0.0.1:8080");
        assert_eq!(s.facebook.graph_api_version, "v25.0");
        assert_eq!(s.workers.send_rate_per_page, 250);
        assert_eq!(s.facebook.messenger_link_url.as_str(), "https://m.me/");
        assert!(!s.database.is_postgres());
    }

    #[test]
    fn sessions_last_a_week_and_a_day_idle_unless_set() {
        let s = read(&complete()).expect("valid");
        assert_eq!(s.sessions.lifetime, Duration::from_secs(7 * 24 * 3600));
        assert_eq!(s.sessions.idle_timeout, Duration::from_secs(24 * 3600));
        let mut map = complete();
        map.insert("SESSION_LIFETIME_HOURS", "12");
        map.insert("SESSION_IDLE_TIMEOUT_MINUTES", "30");
        let s = read(&map).expect("valid");
        assert_eq!(s.sessions.lifetime, Duration::from_secs(12 * 3600));
        assert_eq!(s.sessions.idle_timeout, Duration::from_secs(30 * 60));
        map.insert("SESSION_LIFETIME_HOURS", "0");
        map.insert("SESSION_IDLE_TIMEOUT_MINUTES", "soon");
        let err = read(&map).expect_err("invalid").to_string();
        assert!(err.contains("SESSION_LIFETIME_HOURS"), "{err}");
        assert!(err.contains("SESSION_IDLE_TIMEOUT_MINUTES"), "{err}");
    }

    #[test]
    fn retention_is_thirty_days_unless_set_and_never_zero() {
        let mut map = complete();
        assert_eq!(read(&map).unwrap().retention.days, 30);
        map.insert("RETENTION_DAYS", "7");
        assert_eq!(read(&map).unwrap().retention.days, 7);
        map.insert("RETENTION_DAYS", "0");
        let err = read(&map).unwrap_err().to_string();
        assert!(err.contains("RETENTION_DAYS must be at least 1"), "{err}");
        for bad in ["-1", "a month", "1.5"] {
            map.insert("RETENTION_DAYS", bad);
            let err = read(&map).unwrap_err().to_string();
            assert!(err.contains("RETENTION_DAYS is malformed"), "{bad}: {err}");
        }
    }

    #[test]
    fn every_problem_is_named_at_once() {
        let mut map = HashMap::new();
        map.insert("LEXBRIDGE_BIND", "not-an-address");
        map.insert("SEND_RATE_PER_PAGE", "0");
        let err = read(&map).expect_err("invalid");
        let text = err.to_string();
        for key in [
            "FACEBOOK_APP_ID",
            "FACEBOOK_APP_SECRET",
            "FACEBOOK_PAGE_ID",
            "FACEBOOK_PAGE_ACCESS_TOKEN",
            "MESSENGER_VERIFY_TOKEN",
            "LEXBRIDGE_BIND",
            "SEND_RATE_PER_PAGE",
            "TOKEN_ENCRYPTION_KEY",
            "SESSION_KEY",
        ] {
            assert!(text.contains(key), "{key} missing from: {text}");
        }
    }

    #[test]
    fn lex_is_chosen_when_a_bot_is_configured_and_must_be_complete() {
        let mut map = complete();
        assert!(matches!(
            read(&map).unwrap().nlu,
            NluSettings::Local {
                bot: None,
                fulfillment: None
            }
        ));
        map.insert("LEX_BOT_ID", "BOT1");
        let err = read(&map).expect_err("alias missing").to_string();
        assert!(err.contains("LEX_BOT_ALIAS_ID"), "{err}");
        map.insert("LEX_BOT_ALIAS_ID", "ALIAS1");
        map.insert("AWS_ENDPOINT_URL_LEX_RUNTIME_V2", "http://127.0.0.1:9999");
        let NluSettings::Lex(lex) = read(&map).unwrap().nlu else {
            panic!("lex expected")
        };
        assert_eq!(lex.locale_id, "en_US");
        assert_eq!(lex.endpoint_url.unwrap().as_str(), "http://127.0.0.1:9999/");
        map.insert("NLU", "watson");
        assert!(read(&map).unwrap_err().to_string().contains("NLU must be"));
    }

    #[test]
    fn fulfillment_must_be_https_unless_it_is_on_this_machine() {
        let mut map = complete();
        map.insert("FULFILLMENT_SECRET", "shh");
        for (url, ok) in [
            ("https://backend.example.com/fulfil", true),
            ("http://127.0.0.1:9000/fulfil", true),
            ("http://127.8.0.1/fulfil", true),
            ("http://localhost:9000/fulfil", true),
            ("http://[::1]:9000/fulfil", true),
            ("http://backend.example.com/fulfil", false),
            ("http://10.0.0.5/fulfil", false),
            ("http://localhost.example.com/fulfil", false),
        ] {
            map.insert("FULFILLMENT_URL", url);
            let result = read(&map);
            assert_eq!(result.is_ok(), ok, "{url}");
            if !ok {
                let err = result.unwrap_err().to_string();
                assert!(
                    err.contains("FULFILLMENT_URL must be an https:// URL"),
                    "{err}"
                );
            }
        }
    }

    #[test]
    fn a_metrics_token_is_optional_and_must_fit_a_header() {
        let mut map = complete();
        assert!(read(&map).unwrap().metrics_token.is_none());
        map.insert("METRICS_TOKEN", "s3cr3t-metrics-t0ken");
        let token = read(&map).unwrap().metrics_token.expect("set");
        assert_eq!(token.expose_secret(), "s3cr3t-metrics-t0ken");
        map.insert("METRICS_TOKEN", "two words");
        let err = read(&map).unwrap_err().to_string();
        assert!(
            err.contains("METRICS_TOKEN must be printable ASCII"),
            "{err}"
        );
    }

    #[test]
    fn secrets_never_reach_debug_output() {
        let mut map = complete();
        map.insert("METRICS_TOKEN", "metrics-secret-value");
        map.insert("DATABASE_URL", "postgres://app:hunter2@db/lexbridge");
        let s = read(&map).expect("valid");
        let debug = format!("{s:?}");
        assert!(!debug.contains("app-secret"));
        assert!(!debug.contains("page-token"));
        assert!(!debug.contains("hunter2"));
        assert!(!debug.contains("metrics-secret-value"));
        assert!(debug.contains("app:***@db"));
    }
}
