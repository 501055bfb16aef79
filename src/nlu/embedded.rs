//! The embedded engine behind the `Nlu` trait: dialog state lives in the
//! conversation row, fulfillment goes to the operator's backend when one is
//! configured.

use async_trait::async_trait;
use serde_json::json;
use std::path::Path;
use std::sync::Arc;
use tracing::{info, warn};

use super::fulfillment::Fulfillment;
use super::local::{DialogState, LocalBot, Now, Turn};
use super::{Nlu, NluAnswer, NluError, NluTurn};

pub struct LocalNlu {
    bot: Arc<LocalBot>,
    fulfillment: Option<Fulfillment>,
}

impl LocalNlu {
    /// The export at `path`, or the bundled demo bot; unsupported features
    /// of the export are logged once here.
    pub fn load(path: Option<&Path>, fulfillment: Option<Fulfillment>) -> anyhow::Result<LocalNlu> {
        let started = std::time::Instant::now();
        let bot = match path {
            Some(path) => LocalBot::load(path)?,
            None => LocalBot::bundled()?,
        };
        for warning in bot.warnings() {
            warn!(bot = bot.name(), "{warning}");
        }
        info!(
            bot = bot.name(),
            locale = bot.locale(),
            load_ms = started.elapsed().as_millis() as u64,
            "answering with the embedded NLU engine"
        );
        Ok(LocalNlu::new(bot, fulfillment))
    }

    pub fn new(bot: LocalBot, fulfillment: Option<Fulfillment>) -> LocalNlu {
        LocalNlu {
            bot: Arc::new(bot),
            fulfillment,
        }
    }
}

#[async_trait]
impl Nlu for LocalNlu {
    fn name(&self) -> &'static str {
        "local"
    }

    async fn recognize(&self, turn: NluTurn) -> Result<NluAnswer, NluError> {
        let state = turn.dialog_state.as_deref().and_then(|stored| {
            serde_json::from_str::<DialogState>(stored)
                .map_err(|e| warn!(session_id = %turn.session_id, error = %e, "stored dialog state unreadable; starting afresh"))
                .ok()
        });
        let routed = match &turn.attachment {
            None => Some(self.bot.turn(state, &turn.text, &turn.attributes)),
            Some(attachment) => self.bot.attachment_turn_at(
                state,
                &attachment.utterances(),
                &turn.attributes,
                Now::system(),
            ),
        };
        // An attachment no intent routes: nothing to say, nothing changed.
        let Some(routed) = routed else {
            return Ok(NluAnswer::default());
        };
        let (reply, state) = match routed {
            Turn::Reply { reply, state } => (reply, state),
            Turn::Fulfill { request, state } => match &self.fulfillment {
                None => self.bot.close_without_backend(state),
                Some(backend) => {
                    let account = turn
                        .attributes
                        .get("account_id")
                        .map(|id| json!({"id": id, "name": turn.attributes.get("name")}));
                    let body = json!({
                        "intent": request.intent,
                        "slots": request.slots,
                        "confirmation_state": request.confirmation_state,
                        "session_attributes": request.session_attributes,
                        "account": account,
                        "psid": turn.psid,
                        "page_id": turn.page_id,
                        "attachment": turn.attachment,
                    });
                    let outcome = backend.fulfil(&turn.turn_id, &body).await;
                    if let Err(e) = &outcome {
                        warn!(intent = %request.intent, error = %e, "fulfillment failed; the intent's failure response is sent");
                    }
                    self.bot.finish_fulfillment(state, outcome)
                }
            },
        };
        let stored = serde_json::to_string(&state)
            .map_err(|e| NluError::Permanent(format!("dialog state cannot be stored: {e}")))?;
        Ok(NluAnswer {
            reply,
            dialog_state: Some(stored),
        })
    }
}
