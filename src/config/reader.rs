//! Reading settings one by one, each problem collected rather than the
//! first one returned.

use secrecy::SecretString;
use std::fmt;
use std::time::Duration;
use url::Url;

pub(super) struct Reader<'a> {
    pub(super) lookup: &'a dyn Fn(&str) -> Option<String>,
    pub(super) problems: Vec<String>,
}

impl Reader<'_> {
    pub(super) fn get(&self, key: &str) -> Option<String> {
        (self.lookup)(key).filter(|v| !v.trim().is_empty())
    }

    pub(super) fn optional(&mut self, key: &str, default: &str) -> String {
        self.get(key).unwrap_or_else(|| default.to_string())
    }

    pub(super) fn required(&mut self, key: &str) -> String {
        self.get(key).unwrap_or_else(|| {
            self.problems.push(format!("{key} is required"));
            String::new()
        })
    }

    pub(super) fn secret(&mut self, key: &str) -> SecretString {
        SecretString::from(self.required(key))
    }

    pub(super) fn parsed<T: std::str::FromStr>(&mut self, key: &str, default: &str) -> T
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

    pub(super) fn url(&mut self, key: &str, default: &str) -> Url {
        let url: Url = self.parsed(key, default);
        if !matches!(url.scheme(), "http" | "https") {
            self.problems.push(format!("{key} must be an http(s) URL"));
        }
        url
    }

    /// An http(s) URL that other paths are put under (`super::base_url`).
    pub(super) fn base_url(&mut self, key: &str, default: &str) -> Url {
        match super::base_url(&self.optional(key, default)) {
            Ok(url) => url,
            Err(why) => {
                self.problems.push(format!("{key} {why}"));
                Url::parse(default).unwrap_or_else(|_| unreachable!("defaults parse"))
            }
        }
    }

    /// A numeric Meta id (a Page's), trimmed; empty when not set.
    pub(super) fn optional_numeric_id(&mut self, key: &str) -> String {
        let raw = self.optional(key, "").trim().to_string();
        if !raw.is_empty() && !raw.bytes().all(|b| b.is_ascii_digit()) {
            self.problems
                .push(format!("{key} must be a numeric id (digits only): {raw:?}"));
        }
        raw
    }

    pub(super) fn positive(&mut self, key: &str, default: u32) -> u32 {
        let v: u32 = self.parsed(key, &default.to_string());
        if v == 0 {
            self.problems.push(format!("{key} must be at least 1"));
        }
        v
    }

    /// Days stored events are kept: at least 2. The stored events are how a
    /// redelivered webhook event is known again, and Meta redelivers one
    /// for up to 36 hours; a day's retention let a redelivery after it be
    /// stored and answered a second time.
    pub(super) fn retention_days(&mut self, key: &str, default: u32) -> u32 {
        let v: u32 = self.parsed(key, &default.to_string());
        if v < 2 {
            self.problems.push(format!(
                "{key} must be at least 2 (Meta redelivers a webhook event for up to 36 hours, and the events kept are how a redelivery is known)"
            ));
        }
        v
    }

    /// A required base64 secret of exactly `len` bytes.
    pub(super) fn base64_key(&mut self, key: &str, len: usize) -> SecretString {
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

    pub(super) fn flag(&mut self, key: &str, default: bool) -> bool {
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

    /// A duration in milliseconds, at most `i64::MAX` (times are kept as
    /// `i64` milliseconds: a larger one would wrap to a negative).
    pub(super) fn millis(&mut self, key: &str, default: Duration) -> Duration {
        let ms: u64 = self.parsed(key, &default.as_millis().to_string());
        if ms > i64::MAX as u64 {
            self.problems
                .push(format!("{key} must be at most {} (milliseconds)", i64::MAX));
            return default;
        }
        Duration::from_millis(ms)
    }

    /// A duration in milliseconds that must not be zero.
    pub(super) fn positive_millis(&mut self, key: &str, default: Duration) -> Duration {
        let v = self.millis(key, default);
        if v.is_zero() {
            self.problems.push(format!("{key} must be at least 1"));
        }
        v
    }

    /// A setting that no longer exists: refused, naming what replaced it,
    /// so a deployment never runs believing it still applies.
    pub(super) fn removed(&mut self, key: &str, replacement: &str) {
        if self.get(key).is_some() {
            self.problems.push(format!(
                "{key} was removed: retries are bounded by time now; set {replacement} instead"
            ));
        }
    }

    /// An optional secret sent as `Authorization: Bearer <token>`: visible
    /// ASCII without spaces (RFC 6750's token68 and more), so any client can
    /// send it in a header.
    pub(super) fn bearer_token(&mut self, key: &str) -> Option<SecretString> {
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
pub(super) fn mask_url_password(url: &str) -> String {
    match Url::parse(url) {
        Ok(mut parsed) if parsed.password().is_some() => {
            let _ = parsed.set_password(Some("***"));
            parsed.to_string()
        }
        _ => url.to_string(),
    }
}
