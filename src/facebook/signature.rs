//! Meta's webhook signature: `X-Hub-Signature-256` over the raw body.

use crate::crypto::body_signature_matches;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SignatureError {
    #[error("the X-Hub-Signature-256 header is missing")]
    Missing,
    #[error("the X-Hub-Signature-256 header is not of the form sha256=<hex>")]
    Malformed,
    #[error("the X-Hub-Signature-256 signature does not match the body")]
    Mismatch,
}

/// Checks Meta's `X-Hub-Signature-256: sha256=<hex HMAC-SHA256(app secret, raw body)>`
/// in constant time.
pub fn verify_signature(
    app_secret: &[u8],
    body: &[u8],
    header: Option<&str>,
) -> Result<(), SignatureError> {
    let header = header.ok_or(SignatureError::Missing)?;
    let hex_sig = header
        .trim()
        .strip_prefix("sha256=")
        .ok_or(SignatureError::Malformed)?;
    let expected = hex::decode(hex_sig).map_err(|_| SignatureError::Malformed)?;
    match body_signature_matches(app_secret, body, &expected) {
        true => Ok(()),
        false => Err(SignatureError::Mismatch),
    }
}

/// `sha256=<hex>` for `body`: what Meta sends (and what the load generator signs).
pub use crate::crypto::sign_body as sign;

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &[u8] = b"test-app-secret";

    #[test]
    fn a_correct_signature_is_accepted() {
        let body = br#"{"object":"page"}"#;
        let header = sign(SECRET, body);
        assert_eq!(verify_signature(SECRET, body, Some(&header)), Ok(()));
    }

    #[test]
    fn signatures_that_do_not_match_are_rejected() {
        let body = br#"{"object":"page"}"#;
        let header = sign(SECRET, body);
        assert_eq!(
            verify_signature(SECRET, b"{\"object\":\"page\" }", Some(&header)),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify_signature(b"other-secret", body, Some(&header)),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify_signature(SECRET, body, None),
            Err(SignatureError::Missing)
        );
        assert_eq!(
            verify_signature(SECRET, body, Some("sha1=abcd")),
            Err(SignatureError::Malformed)
        );
        assert_eq!(
            verify_signature(SECRET, body, Some("sha256=zz")),
            Err(SignatureError::Malformed)
        );
    }
}
