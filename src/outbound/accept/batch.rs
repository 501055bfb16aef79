//! A batch of messages: each checked and answered on its own, committed
//! together.

use serde::Deserialize;

use super::{parse_json, ApiAnswer, Decided, Outbound};
use crate::outbound::answer::{ApiError, BatchAnswer, BatchItem, Outcome};
use crate::outbound::keys::Caller;

/// Most messages one batch may carry.
pub const MAX_BATCH: usize = 1000;
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct BatchRequest {
    messages: Vec<serde_json::Value>,
}

impl Outbound<'_> {
    /// Checks and decides each message of a batch, in order.
    pub(super) async fn decide_batch(
        &self,
        value: serde_json::Value,
        now: i64,
        caller: Option<&Caller>,
    ) -> anyhow::Result<(ApiAnswer, Vec<Decided>)> {
        let request: BatchRequest = match parse_json(value, "") {
            Ok(r) => r,
            Err(e) => return Ok((self.refusal(e), Vec::new())),
        };
        if request.messages.len() > MAX_BATCH {
            let error = self.refusal(ApiError::invalid(
                "messages",
                format!(
                    "has {} items; a batch holds at most {MAX_BATCH}",
                    request.messages.len()
                ),
            ));
            return Ok((error, Vec::new()));
        }
        let mut decided = Vec::with_capacity(request.messages.len());
        for (i, item) in request.messages.into_iter().enumerate() {
            let prefix = format!("messages[{i}].");
            decided.push(self.decide(item, &prefix, now, caller).await?);
        }
        let results: Vec<BatchItem> = decided
            .iter()
            .enumerate()
            .map(|(index, d)| BatchItem {
                index,
                http_status: d.answer.outcome().http_status(),
                answer: d.answer.clone(),
            })
            .collect();
        let accepted = decided
            .iter()
            .filter(|d| d.answer.outcome() == Outcome::Accepted)
            .count();
        let answer = BatchAnswer {
            accepted,
            refused: results.len() - accepted,
            results,
        };
        Ok((self.answer(Outcome::Answered, &answer), decided))
    }
}
