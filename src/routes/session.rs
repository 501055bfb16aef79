//! The login site's session: one cookie, encrypted and authenticated with
//! SESSION_KEY (actix-web's private cookie jar), HttpOnly, SameSite=Lax, and
//! Secure when PUBLIC_URL is https.
//!
//! A signed-in cookie carries only a random session id; the account it
//! signs in lives in a server-side record (`sessions`, by the id's SHA-256),
//! honoured while it exists, within SESSION_LIFETIME_HOURS of sign-in and
//! SESSION_IDLE_TIMEOUT_MINUTES of the last request. Sign-out and unlink
//! delete records, so a copied cookie stops working with them.

use actix_web::cookie::{time, Cookie, CookieJar, Key, SameSite};
use actix_web::HttpRequest;
use base64::Engine;
use secrecy::ExposeSecret;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use tracing::error;

use crate::config::Settings;
use crate::store::{now_ms, Store};

const COOKIE: &str = "lexbridge_session";
/// A login must come back from Facebook within this.
pub const LOGIN_STATE_TTL_MS: i64 = 10 * 60 * 1000;
/// A session's last use is written at most this often.
const TOUCH_EVERY_MS: i64 = 60 * 1000;

pub struct SessionCookies {
    key: Key,
    secure: bool,
    store: Store,
    lifetime_ms: i64,
    idle_ms: i64,
}

/// What the cookie holds, and who it signs in.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Session {
    /// The signed-in account: set by `SessionCookies::read` from a live
    /// session record, never taken from the cookie.
    #[serde(skip)]
    pub account_id: Option<String>,
    /// The session id (random; the database keeps its SHA-256).
    #[serde(default)]
    sid: Option<String>,
    /// Token of the forms that change things (unlink, sign out).
    #[serde(default)]
    pub csrf: String,
    /// A login sent to Facebook and not yet back.
    #[serde(default)]
    pub pending: Option<PendingLogin>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PendingLogin {
    pub state: String,
    pub started_at: i64,
    /// Set when the login was opened by Messenger's account-link button.
    #[serde(default)]
    pub messenger: Option<MessengerLink>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MessengerLink {
    pub account_linking_token: String,
    pub redirect_uri: String,
}

fn id_hash(sid: &str) -> String {
    hex::encode(Sha256::digest(sid.as_bytes()))
}

fn millis(d: std::time::Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

impl SessionCookies {
    pub fn new(settings: &Settings, store: Store) -> anyhow::Result<SessionCookies> {
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(settings.session_key.expose_secret().trim())
            .map_err(|_| anyhow::anyhow!("SESSION_KEY must be 64 bytes, base64-encoded"))?;
        let key = Key::try_from(bytes.as_slice())
            .map_err(|_| anyhow::anyhow!("SESSION_KEY must be 64 bytes, base64-encoded"))?;
        Ok(SessionCookies {
            key,
            secure: settings.public_url.scheme() == "https",
            store,
            lifetime_ms: millis(settings.sessions.lifetime),
            idle_ms: millis(settings.sessions.idle_timeout),
        })
    }

    /// The session of a request, signed in only while its record is live; a
    /// missing, forged or unreadable cookie is a fresh session. When the
    /// record cannot be read the request is treated as signed out.
    pub async fn read(&self, req: &HttpRequest) -> Session {
        let mut session = self.decode(req);
        if let Some(sid) = session.sid.clone() {
            match self.account_of(&sid, now_ms()).await {
                Ok(Some(account_id)) => session.account_id = Some(account_id),
                Ok(None) => session.sid = None,
                Err(e) => error!(error = %format!("{e:#}"), "a session could not be checked"),
            }
        }
        session
    }

    /// What the cookie says, without asking the database.
    fn decode(&self, req: &HttpRequest) -> Session {
        let mut jar = CookieJar::new();
        if let Some(cookie) = req.cookie(COOKIE) {
            jar.add_original(cookie);
        }
        let mut session = jar
            .private(&self.key)
            .get(COOKIE)
            .and_then(|c| serde_json::from_str::<Session>(c.value()).ok())
            .unwrap_or_default();
        if session.csrf.is_empty() {
            session.csrf = hex::encode(rand::random::<[u8; 16]>());
        }
        session
    }

    /// The account of a live session `sid` at `now`; its last use is
    /// recorded at most once a minute.
    async fn account_of(&self, sid: &str, now: i64) -> anyhow::Result<Option<String>> {
        let hash = id_hash(sid);
        let Some(record) = self.store.session(&hash).await? else {
            return Ok(None);
        };
        let live = now < record.created_at.saturating_add(self.lifetime_ms)
            && now < record.last_seen_at.saturating_add(self.idle_ms);
        if !live {
            return Ok(None);
        }
        if now - record.last_seen_at >= TOUCH_EVERY_MS {
            let expires_at = self.expires_at(record.created_at, now);
            self.store.touch_session(&hash, now, expires_at).await?;
        }
        Ok(Some(record.account_id))
    }

    /// When a session made at `created_at` and last used at `seen_at` ends.
    fn expires_at(&self, created_at: i64, seen_at: i64) -> i64 {
        created_at
            .saturating_add(self.lifetime_ms)
            .min(seen_at.saturating_add(self.idle_ms))
    }

    /// Signs `account_id` in: a new session record and id (a session the
    /// cookie had before is ended, so an id planted before sign-in is
    /// worthless) and a new CSRF token.
    pub async fn sign_in(&self, session: &mut Session, account_id: &str) -> anyhow::Result<()> {
        self.sign_out(session).await?;
        let sid = hex::encode(rand::random::<[u8; 32]>());
        let now = now_ms();
        self.store
            .create_session(&id_hash(&sid), account_id, now, self.expires_at(now, now))
            .await?;
        session.sid = Some(sid);
        session.account_id = Some(account_id.to_string());
        session.csrf = hex::encode(rand::random::<[u8; 16]>());
        Ok(())
    }

    /// Ends the session on the server: its cookie, and every copy of it,
    /// is signed out from now on.
    pub async fn sign_out(&self, session: &mut Session) -> anyhow::Result<()> {
        if let Some(sid) = session.sid.take() {
            self.store.end_session(&id_hash(&sid)).await?;
        }
        session.account_id = None;
        Ok(())
    }

    /// The cookie that stores `session`.
    pub fn cookie(&self, session: &Session) -> Cookie<'static> {
        let value = serde_json::to_string(session).unwrap_or_default();
        let mut jar = CookieJar::new();
        jar.private_mut(&self.key).add(
            Cookie::build(COOKIE, value)
                .path("/")
                .http_only(true)
                .same_site(SameSite::Lax)
                .secure(self.secure)
                .max_age(time::Duration::milliseconds(self.lifetime_ms))
                .finish(),
        );
        jar.get(COOKIE)
            .cloned()
            .unwrap_or_else(|| Cookie::new(COOKIE, ""))
    }

    /// A cookie that ends the session.
    pub fn removal(&self) -> Cookie<'static> {
        let mut cookie = Cookie::build(COOKIE, "")
            .path("/")
            .http_only(true)
            .same_site(SameSite::Lax)
            .secure(self.secure)
            .finish();
        cookie.make_removal();
        cookie
    }
}

impl Session {
    /// Whether a submitted form carries this session's CSRF token.
    pub fn csrf_ok(&self, submitted: &str) -> bool {
        !self.csrf.is_empty() && bool::from(self.csrf.as_bytes().ct_eq(submitted.as_bytes()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::test::TestRequest;

    const HOUR: i64 = 3_600_000;

    fn settings() -> Settings {
        let mut env = std::collections::HashMap::new();
        for (k, v) in [
            ("FACEBOOK_APP_ID", "1"),
            ("FACEBOOK_APP_SECRET", "s"),
            ("FACEBOOK_PAGE_ID", "2"),
            ("FACEBOOK_PAGE_ACCESS_TOKEN", "t"),
            ("MESSENGER_VERIFY_TOKEN", "v"),
            ("TOKEN_ENCRYPTION_KEY", "AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE="),
            ("SESSION_KEY", "AgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAg=="),
            ("SESSION_LIFETIME_HOURS", "3"),
            ("SESSION_IDLE_TIMEOUT_MINUTES", "60"),
        ] {
            env.insert(k, v.to_string());
        }
        Settings::from_lookup(|k| env.get(k).cloned()).unwrap()
    }

    /// Session cookies over a fresh SQLite database with account `acct-owner` (not hex, so it cannot turn up inside a random id by chance).
    async fn cookies() -> (SessionCookies, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}/s.db", dir.path().display());
        let store = Store::connect(&crate::config::DatabaseSettings::new(url))
            .await
            .unwrap();
        store.migrate().await.unwrap();
        let Store::Sqlite { writer, .. } = &store else {
            unreachable!()
        };
        sqlx::query(
            "INSERT INTO accounts (id, fb_uid, created_at, updated_at) VALUES ('acct-owner', 'u', 1, 1)",
        )
        .execute(writer)
        .await
        .unwrap();
        (SessionCookies::new(&settings(), store).unwrap(), dir)
    }

    fn request_with(cookies: &SessionCookies, session: &Session) -> actix_web::HttpRequest {
        let cookie = cookies.cookie(session);
        TestRequest::default()
            .insert_header(("Cookie", format!("{}={}", cookie.name(), cookie.value())))
            .to_http_request()
    }

    #[tokio::test]
    async fn the_cookie_carries_a_session_id_and_the_account_comes_from_its_record() {
        let (cookies, _dir) = cookies().await;
        let mut session = cookies.decode(&TestRequest::default().to_http_request());
        cookies.sign_in(&mut session, "acct-owner").await.unwrap();
        let json = serde_json::to_string(&session).unwrap();
        assert!(
            !json.contains("acct-owner"),
            "no account id in the cookie: {json}"
        );
        let back = cookies.read(&request_with(&cookies, &session)).await;
        assert_eq!(back.account_id.as_deref(), Some("acct-owner"));
        assert_eq!(back.csrf, session.csrf);

        // A cookie naming an account but no live session signs nobody in.
        let forged: Session =
            serde_json::from_str(r#"{"account_id": "acct-owner", "sid": "guessed", "csrf": "c"}"#)
                .unwrap();
        let back = cookies.read(&request_with(&cookies, &forged)).await;
        assert_eq!(back.account_id, None);
        assert_eq!(back.sid, None);

        let mut ended = session.clone();
        cookies.sign_out(&mut ended).await.unwrap();
        let back = cookies.read(&request_with(&cookies, &session)).await;
        assert_eq!(back.account_id, None, "the copy made before sign-out");
    }

    #[tokio::test]
    async fn a_session_ends_when_idle_and_at_its_lifetime_even_in_use() {
        let (cookies, _dir) = cookies().await;
        let t0 = now_ms();
        let (idle, busy) = ("idle-session", "busy-session");
        for sid in [idle, busy] {
            let expires = cookies.expires_at(t0, t0);
            assert_eq!(expires, t0 + HOUR);
            cookies
                .store
                .create_session(&id_hash(sid), "acct-owner", t0, expires)
                .await
                .unwrap();
        }
        let seen = |sid: &'static str| {
            let store = cookies.store.clone();
            async move {
                store
                    .session(&id_hash(sid))
                    .await
                    .unwrap()
                    .unwrap()
                    .last_seen_at
            }
        };
        // Within a minute of the last write nothing is written.
        assert!(cookies
            .account_of(busy, t0 + 30_000)
            .await
            .unwrap()
            .is_some());
        assert_eq!(seen(busy).await, t0);
        assert!(cookies
            .account_of(busy, t0 + 50 * 60_000)
            .await
            .unwrap()
            .is_some());
        assert_eq!(seen(busy).await, t0 + 50 * 60_000);
        assert!(cookies
            .account_of(busy, t0 + 100 * 60_000)
            .await
            .unwrap()
            .is_some());
        assert!(cookies
            .account_of(busy, t0 + 150 * 60_000)
            .await
            .unwrap()
            .is_some());
        let record = cookies
            .store
            .session(&id_hash(busy))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(record.expires_at, t0 + 3 * HOUR, "capped by the lifetime");
        assert!(cookies
            .account_of(busy, t0 + 3 * HOUR)
            .await
            .unwrap()
            .is_none());

        // Unused for the idle timeout: ended, though within its lifetime.
        assert!(cookies.account_of(idle, t0 + HOUR).await.unwrap().is_none());
    }
}
