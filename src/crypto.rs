//! Tokens at rest: AES-256-GCM with a random 96-bit nonce per value, stored
//! as `nonce || ciphertext+tag`. The key is TOKEN_ENCRYPTION_KEY.
//!
//! Signed bodies: `sha256=<hex HMAC-SHA256(secret, body)>`, the scheme of
//! Meta's webhooks (checked in `facebook::events`) and of the requests to
//! the fulfillment backend (signed in `nlu::fulfillment`).

use aes_gcm::aead::{Aead, KeyInit, OsRng};
use aes_gcm::{AeadCore, Aes256Gcm, Key, Nonce};
use base64::Engine;
use hmac::{Hmac, Mac};
use secrecy::{ExposeSecret, SecretString};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// HMAC-SHA256 of `message` under `secret`: the one MAC behind Meta's
/// webhook signatures, `appsecret_proof` and signed requests.
pub fn hmac_sha256(secret: &[u8], message: &[u8]) -> [u8; 32] {
    let mut mac =
        <HmacSha256 as Mac>::new_from_slice(secret).expect("HMAC takes keys of any length");
    mac.update(message);
    mac.finalize().into_bytes().into()
}

/// `sha256=<hex HMAC-SHA256(secret, body)>` for `body`.
pub fn sign_body(secret: &[u8], body: &[u8]) -> String {
    format!("sha256={}", hex::encode(hmac_sha256(secret, body)))
}

/// Whether `signature` (the raw HMAC bytes, hex-decoded) is `body`'s under
/// `secret`, compared in constant time.
pub fn body_signature_matches(secret: &[u8], body: &[u8], signature: &[u8]) -> bool {
    let Ok(mut mac) = <HmacSha256 as Mac>::new_from_slice(secret) else {
        return false;
    };
    mac.update(body);
    mac.verify_slice(signature).is_ok()
}

const NONCE_LEN: usize = 12;

#[derive(Clone)]
pub struct TokenCipher {
    cipher: Aes256Gcm,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CryptoError {
    #[error("TOKEN_ENCRYPTION_KEY must be 32 bytes, base64-encoded")]
    BadKey,
    #[error("a stored token could not be decrypted (wrong TOKEN_ENCRYPTION_KEY or damaged data)")]
    Undecryptable,
}

impl TokenCipher {
    /// From the base64 form of a 32-byte key.
    pub fn from_base64(key: &SecretString) -> Result<TokenCipher, CryptoError> {
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(key.expose_secret().trim())
            .map_err(|_| CryptoError::BadKey)?;
        if bytes.len() != 32 {
            return Err(CryptoError::BadKey);
        }
        Ok(TokenCipher {
            cipher: Aes256Gcm::new(Key::<Aes256Gcm>::from_slice(&bytes)),
        })
    }

    pub fn encrypt(&self, token: &SecretString) -> Vec<u8> {
        let nonce = Aes256Gcm::generate_nonce(&mut OsRng);
        let sealed = self
            .cipher
            .encrypt(&nonce, token.expose_secret().as_bytes())
            .expect("AES-GCM encryption of an in-memory buffer cannot fail");
        let mut out = nonce.to_vec();
        out.extend_from_slice(&sealed);
        out
    }

    pub fn decrypt(&self, stored: &[u8]) -> Result<SecretString, CryptoError> {
        if stored.len() <= NONCE_LEN {
            return Err(CryptoError::Undecryptable);
        }
        let (nonce, sealed) = stored.split_at(NONCE_LEN);
        let plain = self
            .cipher
            .decrypt(Nonce::from_slice(nonce), sealed)
            .map_err(|_| CryptoError::Undecryptable)?;
        String::from_utf8(plain)
            .map(SecretString::from)
            .map_err(|_| CryptoError::Undecryptable)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(byte: u8) -> SecretString {
        SecretString::from(base64::engine::general_purpose::STANDARD.encode([byte; 32]))
    }

    #[test]
    fn tokens_round_trip_and_are_not_stored_in_clear() {
        let cipher = TokenCipher::from_base64(&key(7)).unwrap();
        let token = SecretString::from("EAAB-not-a-real-token");
        let stored = cipher.encrypt(&token);
        assert!(!stored.windows(8).any(|w| w == b"not-a-re"));
        assert_ne!(stored, cipher.encrypt(&token), "fresh nonce each time");
        assert_eq!(
            cipher.decrypt(&stored).unwrap().expose_secret(),
            "EAAB-not-a-real-token"
        );
    }

    #[test]
    fn bodies_are_signed_with_hmac_sha256() {
        // RFC 4231, test case 2.
        let signature = sign_body(b"Jefe", b"what do ya want for nothing?");
        let hex_mac = "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843";
        assert_eq!(signature, format!("sha256={hex_mac}"));
        let mac = hex::decode(hex_mac).unwrap();
        assert!(body_signature_matches(
            b"Jefe",
            b"what do ya want for nothing?",
            &mac
        ));
        assert!(!body_signature_matches(
            b"Jefe",
            b"what do ya want for nothing!",
            &mac
        ));
        assert!(!body_signature_matches(
            b"jefe",
            b"what do ya want for nothing?",
            &mac
        ));
        assert!(!body_signature_matches(
            b"Jefe",
            b"what do ya want for nothing?",
            &mac[..31]
        ));
    }

    #[test]
    fn a_wrong_key_or_damaged_data_is_refused() {
        let stored = TokenCipher::from_base64(&key(1))
            .unwrap()
            .encrypt(&SecretString::from("t"));
        let other = TokenCipher::from_base64(&key(2)).unwrap();
        assert_eq!(
            other.decrypt(&stored).unwrap_err(),
            CryptoError::Undecryptable
        );
        assert_eq!(
            other.decrypt(b"short").unwrap_err(),
            CryptoError::Undecryptable
        );
        let short_key =
            SecretString::from(base64::engine::general_purpose::STANDARD.encode([0u8; 16]));
        assert!(TokenCipher::from_base64(&short_key).is_err());
    }
}
