//! Tokens at rest: AES-256-GCM with a random 96-bit nonce per value, stored
//! as `nonce || ciphertext+tag`. The key is TOKEN_ENCRYPTION_KEY.

use aes_gcm::aead::{Aead, KeyInit, OsRng};
use aes_gcm::{AeadCore, Aes256Gcm, Key, Nonce};
use base64::Engine;
use secrecy::{ExposeSecret, SecretString};

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
