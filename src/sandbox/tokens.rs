//! The tokens the stand-in for Meta issues and recognises: user tokens
//! (short- and long-lived, made from the app secret so a restart keeps them
//! valid), the Page token, and single-use login codes.

use hmac::{Hmac, Mac};
use secrecy::ExposeSecret;
use sha2::Sha256;
use subtle::ConstantTimeEq;

use super::error::MetaError;
use super::people;
use super::state::{LoginCode, Sandbox, Who};

/// A login code is good for this long, once (as Meta's).
const CODE_TTL_MS: i64 = 10 * 60 * 1000;

impl Sandbox {
    fn mac(&self, what: &str) -> String {
        let mut mac =
            Hmac::<Sha256>::new_from_slice(self.config.app_secret.expose_secret().as_bytes())
                .expect("HMAC takes keys of any length");
        mac.update(b"sandbox-token:");
        mac.update(what.as_bytes());
        hex::encode(&mac.finalize().into_bytes()[..16])
    }

    /// A user token for `uid`, short- or long-lived.
    pub fn user_token(&self, uid: &str, long_lived: bool) -> String {
        let kind = if long_lived { "L" } else { "S" };
        let what = format!("{kind}.{uid}");
        format!("DEMO{what}.{}", self.mac(&what))
    }

    /// Who `token` belongs to, if it is one the stand-in issued.
    pub fn who(&self, token: &str) -> Option<Who> {
        let page = self.config.page_token.expose_secret().as_bytes();
        if !token.is_empty() && bool::from(token.as_bytes().ct_eq(page)) {
            return Some(Who::Page);
        }
        let rest = token.strip_prefix("DEMO")?;
        let (what, mac) = rest.rsplit_once('.')?;
        if !bool::from(mac.as_bytes().ct_eq(self.mac(what).as_bytes())) {
            return None;
        }
        let (kind, uid) = what.split_once('.')?;
        people::by_uid(uid)?;
        Some(Who::User {
            uid: uid.to_string(),
            long_lived: kind == "L",
        })
    }

    /// A single-use login code for `uid`, bound to `redirect_uri`.
    pub fn issue_code(&self, uid: &str, redirect_uri: &str, now: i64) -> String {
        let code = format!("democode-{}", hex::encode(rand::random::<[u8; 16]>()));
        let mut codes = self.codes.lock().expect("codes");
        codes.retain(|_, c| c.expires_at > now);
        codes.insert(
            code.clone(),
            LoginCode {
                uid: uid.to_string(),
                redirect_uri: redirect_uri.to_string(),
                expires_at: now + CODE_TTL_MS,
                used: false,
            },
        );
        code
    }

    /// The person a code was issued to; Meta's errors for an unknown, used,
    /// expired or misdirected code.
    pub fn redeem_code(
        &self,
        code: &str,
        redirect_uri: &str,
        now: i64,
    ) -> Result<String, MetaError> {
        let mut codes = self.codes.lock().expect("codes");
        let Some(entry) = codes.get_mut(code) else {
            return Err(
                MetaError::new(100, "OAuthException", "Invalid verification code format.")
                    .subcode(36007),
            );
        };
        if entry.redirect_uri != redirect_uri {
            return Err(MetaError::new(100, "OAuthException", "Error validating verification code. Please make sure your redirect_uri is identical to the one you used in the OAuth dialog request").subcode(36008));
        }
        if entry.used {
            return Err(MetaError::new(
                100,
                "OAuthException",
                "This authorization code has been used.",
            )
            .subcode(36009));
        }
        if entry.expires_at <= now {
            return Err(MetaError::new(
                100,
                "OAuthException",
                "This authorization code has expired.",
            )
            .subcode(36007));
        }
        entry.used = true;
        Ok(entry.uid.clone())
    }
}
