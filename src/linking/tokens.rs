//! Link tokens: the `ref` of an m.me link and the `authorization_code` of
//! Messenger account linking. A token is a random nonce with an HMAC over
//! its purpose, so a forged one is refused before the database is asked;
//! the nonce's row makes it single-use and gives it an expiry.

use hmac::{Hmac, Mac};
use secrecy::{ExposeSecret, SecretString};
use sha2::Sha256;
use subtle::ConstantTimeEq;

type HmacSha256 = Hmac<Sha256>;

/// How long an m.me link or an account-linking code stays usable.
pub const LINK_TOKEN_TTL_MS: i64 = 15 * 60 * 1000;

/// What a token was issued for; a token of one purpose never passes as another.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// `https://m.me/{page}?ref=…`
    Ref,
    /// `authorization_code` handed back to Messenger's account linking.
    AccountLink,
}

impl Purpose {
    pub fn as_str(self) -> &'static str {
        match self {
            Purpose::Ref => "ref",
            Purpose::AccountLink => "account_link",
        }
    }

    fn prefix(self) -> &'static str {
        match self {
            Purpose::Ref => "lbr",
            Purpose::AccountLink => "lba",
        }
    }
}

/// Issues and checks link tokens with a key derived from SESSION_KEY.
#[derive(Clone)]
pub struct LinkTokens {
    key: [u8; 32],
}

/// A freshly issued token and the nonce to store for it.
pub struct IssuedToken {
    pub token: String,
    pub nonce: String,
}

impl LinkTokens {
    pub fn from_session_key(session_key: &SecretString) -> LinkTokens {
        let mut mac = HmacSha256::new_from_slice(session_key.expose_secret().as_bytes())
            .expect("HMAC takes keys of any length");
        mac.update(b"lexbridge link tokens v1");
        LinkTokens {
            key: mac.finalize().into_bytes().into(),
        }
    }

    /// A new token: `{prefix}_{nonce}_{mac}`, characters m.me's `ref` allows.
    pub fn issue(&self, purpose: Purpose) -> IssuedToken {
        let nonce = hex::encode(rand::random::<[u8; 16]>());
        let token = format!(
            "{}_{}_{}",
            purpose.prefix(),
            nonce,
            self.mac(purpose, &nonce)
        );
        IssuedToken { token, nonce }
    }

    /// The nonce of a well-formed token whose MAC is right, else `None`.
    pub fn verify(&self, purpose: Purpose, token: &str) -> Option<String> {
        let mut parts = token.trim().split('_');
        let (prefix, nonce, mac) = (parts.next()?, parts.next()?, parts.next()?);
        if parts.next().is_some() || prefix != purpose.prefix() || nonce.len() != 32 {
            return None;
        }
        same(&self.mac(purpose, nonce), mac).then(|| nonce.to_string())
    }

    /// The MAC that binds an Unlink button to one Messenger identity, so a
    /// button carrying it cannot be planted in someone else's thread (by an
    /// API key or a bot reply) to unlink them.
    pub fn unlink_mac(&self, page_id: &str, psid: &str) -> String {
        let mut mac = HmacSha256::new_from_slice(&self.key).expect("HMAC takes keys of any length");
        mac.update(b"unlink:");
        mac.update(page_id.as_bytes());
        mac.update(b":");
        mac.update(psid.as_bytes());
        hex::encode(&mac.finalize().into_bytes()[..16])
    }

    /// Whether `mac` is `unlink_mac(page_id, psid)`, compared in constant time.
    pub fn unlink_mac_ok(&self, page_id: &str, psid: &str, mac: &str) -> bool {
        same(&self.unlink_mac(page_id, psid), mac)
    }

    /// The MAC that binds the Link button of the question an unvouched m.me
    /// link asks (`notice::link_question`) to one Messenger identity, one
    /// account and its expiry: the button works in that thread only, for
    /// that account only, and not after `expires_at`.
    pub fn consent_mac(
        &self,
        page_id: &str,
        psid: &str,
        account_id: &str,
        expires_at: i64,
    ) -> String {
        let mut mac = HmacSha256::new_from_slice(&self.key).expect("HMAC takes keys of any length");
        for part in [
            "link-consent",
            page_id,
            psid,
            account_id,
            &expires_at.to_string(),
        ] {
            // Each part with its length, so no two lists of parts meet.
            mac.update(&(part.len() as u64).to_be_bytes());
            mac.update(part.as_bytes());
        }
        hex::encode(&mac.finalize().into_bytes()[..16])
    }

    /// Whether `mac` is `consent_mac(…)` of these, compared in constant time.
    pub fn consent_mac_ok(
        &self,
        page_id: &str,
        psid: &str,
        account_id: &str,
        expires_at: i64,
        mac: &str,
    ) -> bool {
        same(
            &self.consent_mac(page_id, psid, account_id, expires_at),
            mac,
        )
    }

    /// Whether `token` looks like one of ours (any purpose), signed or not.
    pub fn looks_like_ours(token: &str) -> bool {
        token.starts_with("lbr_") || token.starts_with("lba_")
    }

    fn mac(&self, purpose: Purpose, nonce: &str) -> String {
        let mut mac = HmacSha256::new_from_slice(&self.key).expect("HMAC takes keys of any length");
        mac.update(purpose.as_str().as_bytes());
        mac.update(b":");
        mac.update(nonce.as_bytes());
        hex::encode(&mac.finalize().into_bytes()[..16])
    }
}

/// Whether the MAC `given` is `expected`, compared in constant time.
fn same(expected: &str, given: &str) -> bool {
    bool::from(expected.as_bytes().ct_eq(given.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tokens(key: &str) -> LinkTokens {
        LinkTokens::from_session_key(&SecretString::from(key.to_string()))
    }

    #[test]
    fn an_issued_token_verifies_for_its_purpose_only() {
        let t = tokens("k1");
        let issued = t.issue(Purpose::Ref);
        assert_eq!(t.verify(Purpose::Ref, &issued.token), Some(issued.nonce));
        assert_eq!(t.verify(Purpose::AccountLink, &issued.token), None);
        assert!(issued
            .token
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_'));
        assert!(LinkTokens::looks_like_ours(&issued.token));
    }

    #[test]
    fn forged_and_foreign_tokens_are_refused() {
        let issued = tokens("k1").issue(Purpose::Ref);
        assert_eq!(tokens("k2").verify(Purpose::Ref, &issued.token), None);
        let mut forged = issued.token.clone();
        let last = forged.pop();
        forged.push(if last == Some('0') { '1' } else { '0' });
        assert_eq!(tokens("k1").verify(Purpose::Ref, &forged), None);
        for bad in ["", "lbr", "lbr__", "summer-campaign", "lbr_x_y_z"] {
            assert_eq!(tokens("k1").verify(Purpose::Ref, bad), None, "{bad}");
        }
    }
}
