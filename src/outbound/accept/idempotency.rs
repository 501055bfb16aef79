//! `Idempotency-Key`: the same key and body get the first answer again;
//! the same key with another body gets a conflict.

use sha2::{Digest, Sha256};

use super::{ApiAnswer, Outbound};
use crate::outbound::answer::{ApiError, ErrorCode};

/// Longest `Idempotency-Key`.
pub(super) const MAX_IDEMPOTENCY_KEY: usize = 255;

impl Outbound<'_> {
    /// The remembered answer to `key`, or 409 when it was for another body.
    pub(super) async fn replay(
        &self,
        key_id: i64,
        key: &str,
        hash: &str,
    ) -> anyhow::Result<Option<ApiAnswer>> {
        let Some(first) = self.store.remembered_answer(key_id, key).await? else {
            return Ok(None);
        };
        // The remembered answer was read outside the committer: its
        // messages may be committed but not yet on disk (see
        // `store::writer::flush`); repeat a 202 only once they are.
        self.writer.barrier().await?;
        if first.request_hash != hash {
            return Ok(Some(self.refusal(ApiError::new(
                ErrorCode::IdempotencyConflict,
                "this Idempotency-Key was used with a different request body",
            ))));
        }
        Ok(Some(ApiAnswer {
            status: u16::try_from(first.status).unwrap_or(500),
            body: first.answer,
            replayed: true,
        }))
    }
}

/// The same request, whatever its whitespace or key order.
pub(super) fn request_hash(value: &serde_json::Value, batch: bool) -> String {
    let mut hasher = Sha256::new();
    hasher.update(if batch { b"batch:" as &[u8] } else { b"one:" });
    hasher.update(serde_json::to_vec(value).unwrap_or_default());
    hex::encode(hasher.finalize())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_request_hash_ignores_layout_but_not_content() {
        let a: serde_json::Value = serde_json::from_str(r#"{"a": 1, "b": [1, 2]}"#).unwrap();
        let b: serde_json::Value = serde_json::from_str(r#"{"b":[1,2],"a":1}"#).unwrap();
        assert_eq!(request_hash(&a, false), request_hash(&b, false));
        assert_ne!(request_hash(&a, false), request_hash(&a, true));
        assert_ne!(
            request_hash(&a, false),
            request_hash(&json!({"a": 2, "b": [1, 2]}), false)
        );
    }
}
