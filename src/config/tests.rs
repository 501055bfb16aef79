//! Settings read from a map: defaults, every problem named, secrets masked.

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
fn the_postgres_pool_holds_16_connections_unless_set() {
    assert_eq!(read(&complete()).expect("valid").database.pool_size, 16);
    let mut map = complete();
    map.insert("DATABASE_POOL_SIZE", "40");
    assert_eq!(read(&map).expect("valid").database.pool_size, 40);
    for (bad, says) in [("0", "must be at least 1"), ("many", "is malformed")] {
        map.insert("DATABASE_POOL_SIZE", bad);
        let err = read(&map).unwrap_err().to_string();
        assert!(
            err.contains(&format!("DATABASE_POOL_SIZE {says}")),
            "{bad}: {err}"
        );
    }
    // The two group committers keep a Postgres connection each.
    map.insert("DATABASE_POOL_SIZE", "1");
    assert_eq!(read(&map).expect("valid on SQLite").database.pool_size, 1);
    map.insert("DATABASE_URL", "postgres://db.example.com/lexbridge");
    let err = read(&map).unwrap_err().to_string();
    assert!(
        err.contains("DATABASE_POOL_SIZE must be at least 3 on Postgres"),
        "{err}"
    );
    map.insert("DATABASE_POOL_SIZE", "2");
    assert!(read(&map).is_err(), "two leave no connection for reads");
    map.insert("DATABASE_POOL_SIZE", "3");
    assert_eq!(read(&map).expect("valid").database.pool_size, 3);
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
    map.insert("RETENTION_DAYS", "2");
    assert_eq!(read(&map).unwrap().retention.days, 2);
    // A redelivery comes up to 36 hours later: a day would forget it.
    for short in ["0", "1"] {
        map.insert("RETENTION_DAYS", short);
        let err = read(&map).unwrap_err().to_string();
        assert!(err.contains("RETENTION_DAYS must be at least 2"), "{err}");
    }
    for bad in ["-1", "a month", "1.5"] {
        map.insert("RETENTION_DAYS", bad);
        let err = read(&map).unwrap_err().to_string();
        assert!(err.contains("RETENTION_DAYS is malformed"), "{bad}: {err}");
    }
}

#[test]
fn retries_are_bounded_by_time_and_the_attempt_counts_are_refused() {
    let mut map = complete();
    let w = read(&map).unwrap().workers;
    assert_eq!(w.inbox_retry_budget, std::time::Duration::from_secs(600));
    assert_eq!(w.reply_max_age, std::time::Duration::from_secs(900));
    assert_eq!(w.api_message_expiry, std::time::Duration::from_secs(86_400));
    assert_eq!(w.retry_max, std::time::Duration::from_secs(300));
    map.insert("INBOX_MAX_ATTEMPTS", "8");
    map.insert("OUTBOX_MAX_ATTEMPTS", "8");
    map.insert("REPLY_MAX_AGE_MS", "0");
    let err = read(&map).unwrap_err().to_string();
    assert!(
        err.contains("INBOX_MAX_ATTEMPTS was removed") && err.contains("INBOX_RETRY_BUDGET_MS"),
        "{err}"
    );
    assert!(
        err.contains("OUTBOX_MAX_ATTEMPTS was removed") && err.contains("API_MESSAGE_EXPIRY_MS"),
        "{err}"
    );
    assert!(err.contains("REPLY_MAX_AGE_MS must be at least 1"), "{err}");
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

/// The Page may come from `lexbridge page add` instead of the environment,
/// but an id without its token (or a token without its Page) is refused.
#[test]
fn the_environments_page_is_optional_but_whole() {
    let mut map = complete();
    map.remove("FACEBOOK_PAGE_ID");
    map.remove("FACEBOOK_PAGE_ACCESS_TOKEN");
    let settings = read(&map).expect("no Page in the environment is fine");
    assert_eq!(settings.facebook.page_id, "");
    map.insert("FACEBOOK_PAGE_ID", "456");
    let err = read(&map).unwrap_err().to_string();
    assert!(
        err.contains("FACEBOOK_PAGE_ID and FACEBOOK_PAGE_ACCESS_TOKEN go together"),
        "{err}"
    );
}

#[test]
fn base_urls_timeouts_long_durations_and_the_page_id_are_checked() {
    for (key, bad, says) in [
        (
            "PUBLIC_URL",
            "https://bridge.example.com/?a=b",
            "path, query or fragment",
        ),
        (
            "PUBLIC_URL",
            "https://bridge.example.com/app",
            "path, query or fragment",
        ),
        (
            "PUBLIC_URL",
            "https://bridge.example.com/#top",
            "path, query or fragment",
        ),
        (
            "GRAPH_API_URL",
            "https://graph.example.com/v1",
            "path, query or fragment",
        ),
        (
            "PUBLIC_URL",
            "https://ops:hunter2@bridge.example.com",
            "no user, path",
        ),
        ("GRAPH_CONNECT_TIMEOUT_MS", "0", "must be at least 1"),
        ("GRAPH_REQUEST_TIMEOUT_MS", "0", "must be at least 1"),
        ("RETRY_BASE_MS", "0", "must be at least 1"),
        (
            "HANDOVER_IDLE_TAKE_BACK_MS",
            "18446744073709551615",
            "must be at most",
        ),
        ("FACEBOOK_PAGE_ID", "12345x", "must be a numeric id"),
    ] {
        let mut map = complete();
        map.insert(key, bad);
        let err = read(&map).expect_err(bad).to_string();
        assert!(
            err.contains(key) && err.contains(says),
            "{key}={bad}: {err}"
        );
        assert!(!err.contains("hunter2"), "a password is never shown: {err}");
    }
    let mut map = complete();
    map.insert("PUBLIC_URL", "https://bridge.example.com/");
    map.insert("FACEBOOK_PAGE_ID", " 456 ");
    let s = read(&map).expect("valid");
    assert_eq!(
        s.facebook.page_id, "456",
        "trimmed, as an env file may leave it"
    );
}
