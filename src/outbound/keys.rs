//! API keys: made once and shown once, kept only as their SHA-256, checked
//! in constant time against every known key.

use base64::Engine;
use rand::RngCore;
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};
use subtle::ConstantTimeEq;

use super::answer::{ApiError, ErrorCode};
use super::key_rates::KeyRates;
use crate::store::now_ms;
use crate::store::outbound_api::KeyScope;
use crate::store::writer::{Write, Writer};
use crate::store::Store;

/// How a key starts, so a leaked one is recognisable in a scan.
const PREFIX: &str = "lxb_";
/// How long the keys read from the database are trusted: a key revoked by
/// `lexbridge api-key revoke` stops working within this time.
const REFRESH: Duration = Duration::from_secs(1);
/// How stale the copy may be when a key is not in it.
const UNKNOWN_REFRESH: Duration = Duration::from_millis(100);

/// A new random key (256 bits), as the caller must send it.
pub fn generate() -> SecretString {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    let encoded = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
    SecretString::from(format!("{PREFIX}{encoded}"))
}

/// The hex SHA-256 kept for a key.
pub fn hash(key: &str) -> String {
    hex::encode(Sha256::digest(key.as_bytes()))
}

/// A key name: 1 to 64 of letters, digits, `.`, `_`, `-`.
pub fn check_name(name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    match ok {
        true => Ok(()),
        false => Err(format!(
            "API key name {name:?} must be 1 to 64 letters, digits, '.', '_' or '-'"
        )),
    }
}

/// The Pages of `--pages`: Page ids (digits), each once, at least one.
pub fn check_pages(pages: &[String]) -> Result<Vec<String>, String> {
    let mut checked: Vec<String> = Vec::new();
    for page in pages.iter().map(|p| p.trim()) {
        if page.is_empty() || page.len() > 32 || !page.bytes().all(|b| b.is_ascii_digit()) {
            return Err(format!(
                "--pages: {page:?} is not a Page id (the digits Meta gives a Page)"
            ));
        }
        if !checked.iter().any(|p| p == page) {
            checked.push(page.to_string());
        }
    }
    if checked.is_empty() {
        return Err("--pages needs at least one Page id".to_string());
    }
    Ok(checked)
}

/// Who is calling.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    pub key_id: i64,
    pub name: String,
    /// The Pages it may message and its rate.
    pub scope: KeyScope,
}

impl Caller {
    /// Whether the key may message people on `page_id`.
    pub fn may_reach(&self, page_id: &str) -> bool {
        self.scope
            .pages
            .as_ref()
            .is_none_or(|pages| pages.iter().any(|p| p == page_id))
    }

    /// The refusal of a recipient on a Page outside the key's `--pages`.
    pub fn out_of_scope(&self) -> ApiError {
        let pages = self.scope.pages.as_deref().unwrap_or_default().join(", ");
        ApiError::new(
            ErrorCode::PageNotAllowed,
            format!(
                "the recipient is on a Page this API key may not message; API key {:?} may \
                 message Page {pages} only",
                self.name
            ),
        )
    }
}

/// Why a request is not let in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    Missing,
    Unknown,
    Revoked,
}

impl Refusal {
    pub fn message(self) -> &'static str {
        match self {
            Refusal::Missing => "send the API key as Authorization: Bearer <key>",
            Refusal::Unknown => "the API key is not known",
            Refusal::Revoked => "the API key was revoked",
        }
    }
}

struct Known {
    id: i64,
    name: String,
    hash: [u8; 32],
    revoked: bool,
    scope: KeyScope,
}

#[derive(Default)]
struct Cache {
    read_at: Option<Instant>,
    keys: Vec<Known>,
    /// Last use of each key since the last flush.
    used: HashMap<i64, i64>,
}

/// The keys the API accepts, re-read from the database at most once a
/// second; last-use times are written back at the same pace.
#[derive(Default)]
pub struct ApiKeys {
    cache: Mutex<Cache>,
    refreshing: tokio::sync::Mutex<()>,
    rates: KeyRates,
}

impl ApiKeys {
    /// Checks an `Authorization` header value.
    pub async fn authenticate(
        &self,
        store: &Store,
        writer: &Writer,
        authorization: Option<&str>,
    ) -> anyhow::Result<Result<Caller, Refusal>> {
        let Some(presented) = authorization.and_then(bearer) else {
            return Ok(Err(Refusal::Missing));
        };
        let digest: [u8; 32] = Sha256::digest(presented.as_bytes()).into();
        self.refresh(store, writer, REFRESH).await?;
        let mut answer = self.check(&digest);
        if answer == Err(Refusal::Unknown) {
            // A key made a moment ago works within `UNKNOWN_REFRESH`; unknown
            // keys re-read the table no more often than that.
            self.refresh(store, writer, UNKNOWN_REFRESH).await?;
            answer = self.check(&digest);
        }
        Ok(answer)
    }

    fn check(&self, digest: &[u8; 32]) -> Result<Caller, Refusal> {
        let mut cache = self.lock();
        // Every key is compared, in constant time, whichever matches.
        let mut found: Option<&Known> = None;
        for known in &cache.keys {
            if bool::from(known.hash.ct_eq(digest)) {
                found = Some(known);
            }
        }
        let answer = match found {
            None => Err(Refusal::Unknown),
            Some(k) if k.revoked => Err(Refusal::Revoked),
            Some(k) => Ok(Caller {
                key_id: k.id,
                name: k.name.clone(),
                scope: k.scope.clone(),
            }),
        };
        if let Ok(caller) = &answer {
            cache.used.insert(caller.key_id, now_ms());
        }
        answer
    }

    /// Re-reads the keys when the copy is older than `max_age`, and records
    /// the last uses seen since. One request refreshes; the others wait for
    /// it rather than judge keys by a stale or empty copy.
    async fn refresh(
        &self,
        store: &Store,
        writer: &Writer,
        max_age: Duration,
    ) -> anyhow::Result<()> {
        let fresh = |cache: &Cache| cache.read_at.is_some_and(|at| at.elapsed() < max_age);
        if fresh(&self.lock()) {
            return Ok(());
        }
        let _refreshing = self.refreshing.lock().await;
        let used = {
            let mut cache = self.lock();
            if fresh(&cache) {
                return Ok(());
            }
            std::mem::take(&mut cache.used)
        };
        for (id, at) in used {
            writer.write(Write::ApiKeyUsed { id, at }).await?;
        }
        let keys = store
            .api_keys()
            .await?
            .into_iter()
            .filter_map(|k| {
                let mut hash = [0u8; 32];
                hex::decode_to_slice(&k.key_hash, &mut hash).ok()?;
                Some(Known {
                    scope: k.scope(),
                    id: k.id,
                    name: k.name,
                    hash,
                    revoked: k.revoked_at.is_some(),
                })
            })
            .collect();
        let mut cache = self.lock();
        cache.keys = keys;
        cache.read_at = Some(Instant::now());
        Ok(())
    }

    /// Admits one request of `caller` within its key's rate, or says how
    /// long until one would be admitted.
    pub fn admit(&self, caller: &Caller) -> Result<(), Duration> {
        match caller.scope.rate_per_second {
            None => Ok(()),
            Some(rate) => self.rates.admit(caller.key_id, rate, Instant::now()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Cache> {
        self.cache.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The key of `Bearer <key>`.
fn bearer(header: &str) -> Option<&str> {
    let (scheme, key) = header.trim().split_once(' ')?;
    let key = key.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !key.is_empty()).then_some(key)
}

/// Shows a new key to the operator, the one time it is shown.
pub fn reveal(key: &SecretString) -> &str {
    key.expose_secret()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_random_prefixed_and_hashed() {
        let a = generate();
        let b = generate();
        assert!(reveal(&a).starts_with(PREFIX));
        assert_eq!(reveal(&a).len(), PREFIX.len() + 43);
        assert_ne!(reveal(&a), reveal(&b));
        assert_eq!(hash(reveal(&a)).len(), 64);
        assert_ne!(hash(reveal(&a)), hash(reveal(&b)));
    }

    #[test]
    fn only_a_bearer_header_carries_a_key() {
        assert_eq!(bearer("Bearer lxb_abc"), Some("lxb_abc"));
        assert_eq!(bearer("bearer  lxb_abc "), Some("lxb_abc"));
        assert_eq!(bearer("Basic dXNlcjpwYXNz"), None);
        assert_eq!(bearer("Bearer "), None);
        assert_eq!(bearer("lxb_abc"), None);
    }

    #[test]
    fn a_key_reaches_only_the_pages_of_its_scope() {
        let caller = |pages: Option<Vec<&str>>| Caller {
            key_id: 1,
            name: "k".into(),
            scope: KeyScope {
                pages: pages.map(|p| p.into_iter().map(str::to_string).collect()),
                rate_per_second: None,
            },
        };
        assert!(caller(None).may_reach("1111"));
        assert!(caller(Some(vec!["1111", "2222"])).may_reach("2222"));
        assert!(!caller(Some(vec!["1111"])).may_reach("2222"));
        assert!(!caller(Some(vec!["11"])).may_reach("1111"));
    }

    #[test]
    fn pages_of_a_scope_are_page_ids() {
        let list = |p: &[&str]| p.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            check_pages(&list(&["1111", " 2222", "1111"])).unwrap(),
            list(&["1111", "2222"])
        );
        assert!(check_pages(&list(&[])).is_err());
        assert!(check_pages(&list(&[""])).is_err());
        assert!(check_pages(&list(&["11a1"])).unwrap_err().contains("11a1"));
    }

    #[test]
    fn names_are_short_and_plain() {
        assert!(check_name("billing").is_ok());
        assert!(check_name("iot.fleet-2_eu").is_ok());
        assert!(check_name("").is_err());
        assert!(check_name("has space").is_err());
        assert!(check_name(&"x".repeat(65)).is_err());
    }
}
