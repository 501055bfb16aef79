//! Answers kept for the outbound API's `Idempotency-Key` (read back by
//! `Store::remembered_answer`, forgotten by the sweeper after a day).

use super::statement::Stmt;

/// The answer to keep for an `Idempotency-Key`.
#[derive(Debug, Clone)]
pub struct Remember {
    pub api_key_id: i64,
    pub idempotency_key: String,
    pub request_hash: String,
    pub status: i64,
    pub answer: String,
}

impl Remember {
    /// Keeps the answer unless the key is taken; returns a row only when
    /// it was kept (a concurrent request with the same key won otherwise).
    pub(crate) fn statement(&self, now: i64) -> Stmt {
        let mut remember = Stmt::new(
            "INSERT INTO api_requests (api_key_id, idempotency_key, request_hash, status, answer, created_at) ",
        );
        remember.values(&[self], |row, r| {
            row.bind(r.api_key_id)
                .bind(r.idempotency_key.as_str())
                .bind(r.request_hash.as_str())
                .bind(r.status)
                .bind(r.answer.as_str())
                .bind(now);
        });
        remember.push(" ON CONFLICT (api_key_id, idempotency_key) DO NOTHING RETURNING api_key_id");
        remember
    }
}
