//! The login site's session: one cookie, encrypted and authenticated with
//! SESSION_KEY (actix-web's private cookie jar), HttpOnly, SameSite=Lax, and
//! Secure when PUBLIC_URL is https.

use actix_web::cookie::{time, Cookie, CookieJar, Key, SameSite};
use actix_web::HttpRequest;
use base64::Engine;
use secrecy::ExposeSecret;
use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;

use crate::config::Settings;

const COOKIE: &str = "lexbridge_session";
/// A signed-in session lasts this long.
const SESSION_DAYS: i64 = 7;
/// A login must come back from Facebook within this.
pub const LOGIN_STATE_TTL_MS: i64 = 10 * 60 * 1000;

pub struct SessionCookies {
    key: Key,
    secure: bool,
}

/// What the cookie holds.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Session {
    /// The signed-in account.
    #[serde(default)]
    pub account_id: Option<String>,
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

impl SessionCookies {
    pub fn new(settings: &Settings) -> anyhow::Result<SessionCookies> {
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(settings.session_key.expose_secret().trim())
            .map_err(|_| anyhow::anyhow!("SESSION_KEY must be 64 bytes, base64-encoded"))?;
        let key = Key::try_from(bytes.as_slice())
            .map_err(|_| anyhow::anyhow!("SESSION_KEY must be 64 bytes, base64-encoded"))?;
        Ok(SessionCookies {
            key,
            secure: settings.public_url.scheme() == "https",
        })
    }

    /// The session of a request; a missing, forged or unreadable cookie is a
    /// fresh session.
    pub fn read(&self, req: &HttpRequest) -> Session {
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
                .max_age(time::Duration::days(SESSION_DAYS))
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

    #[test]
    fn a_session_survives_its_cookie() {
        let mut env = std::collections::HashMap::new();
        for (k, v) in [
            ("FACEBOOK_APP_ID", "1"),
            ("FACEBOOK_APP_SECRET", "s"),
            ("FACEBOOK_PAGE_ID", "2"),
            ("FACEBOOK_PAGE_ACCESS_TOKEN", "t"),
            ("MESSENGER_VERIFY_TOKEN", "v"),
            ("TOKEN_ENCRYPTION_KEY", "AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE="),
            ("SESSION_KEY", "AgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAg=="),
        ] {
            env.insert(k, v.to_string());
        }
        let settings = Settings::from_lookup(|k| env.get(k).cloned()).unwrap();
        let cookies = SessionCookies::new(&settings).unwrap();
        let session = Session {
            account_id: Some("acc".into()),
            csrf: "c".into(),
            pending: None,
        };
        let cookie = cookies.cookie(&session);
        println!("{cookie}");
        let req = TestRequest::default()
            .insert_header(("Cookie", format!("{}={}", cookie.name(), cookie.value())))
            .to_http_request();
        let back = cookies.read(&req);
        assert_eq!(back.account_id.as_deref(), Some("acc"));
        assert_eq!(back.csrf, "c");
    }
}
