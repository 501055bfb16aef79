//! Meta's `signed_request` (the data-deletion callback's form field):
//! `base64url(HMAC-SHA256(app secret, P)) "." P`, where `P` is the
//! base64url text of a JSON payload naming `"algorithm": "HMAC-SHA256"` and
//! the person's app-scoped `user_id`. The HMAC is over `P` as sent (the
//! encoded text, not the JSON), checked in constant time before the payload
//! is read at all. Padding (`=`) is optional in both parts: Meta has sent
//! signatures with and without it.

use base64::alphabet;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use base64::Engine;
use serde::Deserialize;

use crate::crypto::{body_signature_matches, hmac_sha256};

/// base64url, padded or not.
const URL_SAFE_LENIENT: GeneralPurpose = GeneralPurpose::new(
    &alphabet::URL_SAFE,
    GeneralPurposeConfig::new()
        .with_encode_padding(false)
        .with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// The longest `signed_request` read (Meta's are a few hundred bytes).
pub const MAX_LEN: usize = 8 * 1024;

/// Why a `signed_request` is refused. Nothing is done for a refused one.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SignedRequestError {
    #[error("signed_request is missing")]
    Missing,
    #[error("signed_request must be <base64url signature>.<base64url payload>")]
    Shape,
    #[error("signed_request's signature does not match its payload")]
    Signature,
    #[error("signed_request's payload is not a JSON object")]
    Payload,
    #[error("signed_request's algorithm must be HMAC-SHA256")]
    Algorithm,
    #[error("signed_request's payload names no user_id")]
    UserId,
}

/// A verified data-deletion request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeletionRequest {
    /// The person's app-scoped Facebook user id (an account's `fb_uid`).
    pub user_id: String,
    /// When Meta issued it (seconds since the epoch), if it says.
    pub issued_at: Option<i64>,
    /// The request's confirmation code: the same for the same signed
    /// request (a retry by Meta, or a replay by whoever holds it, finds the
    /// first erasure rather than erasing again), unguessable without the
    /// app secret, and in the shape of the random codes (32 hex digits).
    pub confirmation_code: String,
}

/// The confirmation code of the signed `payload` (its base64url text).
fn confirmation_code(app_secret: &[u8], payload: &str) -> String {
    let mut keyed = b"lexbridge data-deletion confirmation code\n".to_vec();
    keyed.extend_from_slice(payload.as_bytes());
    hex::encode(&hmac_sha256(app_secret, &keyed)[..16])
}

#[derive(Deserialize)]
struct Payload {
    algorithm: Option<String>,
    user_id: Option<serde_json::Value>,
    issued_at: Option<i64>,
}

/// Verifies `signed_request` under `app_secret` and reads its payload.
pub fn parse(
    signed_request: &str,
    app_secret: &[u8],
) -> Result<DeletionRequest, SignedRequestError> {
    let signed_request = signed_request.trim();
    if signed_request.is_empty() {
        return Err(SignedRequestError::Missing);
    }
    if signed_request.len() > MAX_LEN {
        return Err(SignedRequestError::Shape);
    }
    let (signature, encoded) = signed_request
        .split_once('.')
        .ok_or(SignedRequestError::Shape)?;
    if signature.is_empty() || encoded.is_empty() || encoded.contains('.') {
        return Err(SignedRequestError::Shape);
    }
    let signature = URL_SAFE_LENIENT
        .decode(signature)
        .map_err(|_| SignedRequestError::Shape)?;
    // Constant time; a signature of the wrong length fails here too.
    if !body_signature_matches(app_secret, encoded.as_bytes(), &signature) {
        return Err(SignedRequestError::Signature);
    }
    let json = URL_SAFE_LENIENT
        .decode(encoded)
        .map_err(|_| SignedRequestError::Payload)?;
    let payload: Payload =
        serde_json::from_slice(&json).map_err(|_| SignedRequestError::Payload)?;
    match payload.algorithm.as_deref() {
        Some(a) if a.eq_ignore_ascii_case("HMAC-SHA256") => {}
        _ => return Err(SignedRequestError::Algorithm),
    }
    // Meta sends the id as a string; a number is read the same way.
    let user_id = match payload.user_id {
        Some(serde_json::Value::String(s)) => s,
        Some(serde_json::Value::Number(n)) if n.is_u64() => n.to_string(),
        _ => return Err(SignedRequestError::UserId),
    };
    if user_id.is_empty() || user_id.len() > 128 || !user_id.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(SignedRequestError::UserId);
    }
    Ok(DeletionRequest {
        user_id,
        issued_at: payload.issued_at,
        confirmation_code: confirmation_code(app_secret, encoded),
    })
}

/// A `signed_request` for `payload` under `secret`, as Meta builds one
/// (tests and the demo's stand-in sign with it).
pub fn sign(secret: &[u8], payload: &serde_json::Value) -> String {
    signed(secret, &URL_SAFE_LENIENT.encode(payload.to_string()))
}

/// `encoded`, a payload already base64url-encoded, signed under `secret`.
fn signed(secret: &[u8], encoded: &str) -> String {
    let signature = URL_SAFE_LENIENT.encode(hmac_sha256(secret, encoded.as_bytes()));
    format!("{signature}.{encoded}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const SECRET: &[u8] = b"unit-test-app-secret";

    fn payload(user_id: &str) -> serde_json::Value {
        json!({"algorithm": "HMAC-SHA256", "expires": 1_700_000_300, "issued_at": 1_700_000_000,
               "user_id": user_id})
    }

    #[test]
    fn a_request_signed_with_the_app_secret_is_read() {
        let signed = sign(SECRET, &payload("4242"));
        let request = parse(&signed, SECRET).unwrap();
        assert_eq!(request.user_id, "4242");
        assert_eq!(request.issued_at, Some(1_700_000_000));
    }

    #[test]
    fn the_confirmation_code_is_the_same_for_the_same_request_only() {
        let code = |secret: &[u8], signed: &str| parse(signed, secret).unwrap().confirmation_code;
        let signed = sign(SECRET, &payload("4242"));
        let first = code(SECRET, &signed);
        assert_eq!(first.len(), 32);
        assert!(first
            .bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()));
        assert_eq!(
            code(SECRET, &signed),
            first,
            "a retry or replay: the same code"
        );
        let mut later = payload("4242");
        later["issued_at"] = json!(1_700_000_060);
        assert_ne!(
            code(SECRET, &sign(SECRET, &later)),
            first,
            "a new request: a new code"
        );
        assert_ne!(code(SECRET, &sign(SECRET, &payload("4243"))), first);
        // Without the app secret nobody can tell the code from the request.
        let other: &[u8] = b"another-app-secret";
        assert_ne!(code(other, &sign(other, &payload("4242"))), first);
    }

    #[test]
    fn the_signature_may_come_padded_or_not() {
        let signed = sign(SECRET, &payload("12345"));
        let (sig, body) = signed.split_once('.').unwrap();
        assert_eq!(sig.len() % 4, 3, "a 32-byte signature unpadded");
        assert!(parse(&format!("{sig}=.{body}"), SECRET).is_ok());
    }

    #[test]
    fn another_secret_or_a_changed_payload_is_refused() {
        let signed = sign(b"another-app-secret", &payload("4242"));
        assert_eq!(parse(&signed, SECRET), Err(SignedRequestError::Signature));

        let genuine = sign(SECRET, &payload("4242"));
        let (sig, _) = genuine.split_once('.').unwrap();
        let other = URL_SAFE_LENIENT.encode(payload("9999").to_string());
        assert_eq!(
            parse(&format!("{sig}.{other}"), SECRET),
            Err(SignedRequestError::Signature)
        );
    }

    #[test]
    fn only_hmac_sha256_is_accepted_even_when_signed() {
        for algorithm in [json!("none"), json!("HS256"), json!(null)] {
            let mut p = payload("4242");
            p["algorithm"] = algorithm.clone();
            assert_eq!(
                parse(&sign(SECRET, &p), SECRET),
                Err(SignedRequestError::Algorithm),
                "{algorithm}"
            );
        }
        // `alg: none` with an empty signature never reaches the payload.
        let unsigned = format!(
            ".{}",
            URL_SAFE_LENIENT.encode(json!({"algorithm": "none", "user_id": "4242"}).to_string())
        );
        assert_eq!(parse(&unsigned, SECRET), Err(SignedRequestError::Shape));
    }

    #[test]
    fn malformed_requests_are_named() {
        assert_eq!(parse("", SECRET), Err(SignedRequestError::Missing));
        assert_eq!(parse("nodot", SECRET), Err(SignedRequestError::Shape));
        assert_eq!(parse("a.b.c", SECRET), Err(SignedRequestError::Shape));
        assert_eq!(parse("!!!.e30", SECRET), Err(SignedRequestError::Shape));
        let huge = format!("{}.{}", "A".repeat(MAX_LEN), "e30");
        assert_eq!(parse(&huge, SECRET), Err(SignedRequestError::Shape));

        let no_user = sign(SECRET, &json!({"algorithm": "HMAC-SHA256"}));
        assert_eq!(parse(&no_user, SECRET), Err(SignedRequestError::UserId));
        let blank = sign(SECRET, &payload(""));
        assert_eq!(parse(&blank, SECRET), Err(SignedRequestError::UserId));
        let not_json = signed(SECRET, &URL_SAFE_LENIENT.encode("not json"));
        assert_eq!(parse(&not_json, SECRET), Err(SignedRequestError::Payload));
    }
}
