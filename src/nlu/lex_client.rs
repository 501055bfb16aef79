//! Amazon Lex V2 through aws-sdk-lexruntimev2 `RecognizeText`.

use async_trait::async_trait;
use aws_sdk_lexruntimev2::config::retry::RetryConfig;
use aws_sdk_lexruntimev2::config::timeout::TimeoutConfig;
use aws_sdk_lexruntimev2::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_lexruntimev2::operation::recognize_text::{RecognizeTextError, RecognizeTextOutput};
use aws_sdk_lexruntimev2::operation::RequestId;
use aws_sdk_lexruntimev2::types::{self as lex, SessionState};
use std::collections::BTreeMap;
use std::time::Duration;
use tracing::{error, info};

use super::lex_null_slots::NullSlotFilteringClient;
use super::lex_session::LexSession;
use super::{
    ActiveContext, CardButton, DialogAction, ImageResponseCard, IntentState, Interpretation, Nlu,
    NluAnswer, NluError, NluMessage, NluReply, NluTurn, SlotValue,
};
use crate::clock::now_ms;
use crate::config::LexSettings;
use aws_sdk_lexruntimev2::operation::delete_session::DeleteSessionError;

/// Lex accepts at most this many characters of text.
pub const MAX_LEX_TEXT: usize = 1024;

pub struct LexNlu {
    client: aws_sdk_lexruntimev2::Client,
    bot: LexSettings,
}

impl LexNlu {
    /// Region and credentials from the standard AWS chain.
    pub async fn from_env(bot: LexSettings, retry_base: Duration) -> anyhow::Result<LexNlu> {
        let sdk = aws_config::defaults(aws_config::BehaviorVersion::latest())
            .load()
            .await;
        if sdk.region().is_none() {
            anyhow::bail!("NLU=lex needs an AWS region (AWS_REGION or an AWS profile)");
        }
        Ok(LexNlu::new(&sdk, bot, retry_base))
    }

    /// Over an SDK configuration (tests give static credentials).
    pub fn new(sdk: &aws_config::SdkConfig, bot: LexSettings, retry_base: Duration) -> LexNlu {
        let mut config = aws_sdk_lexruntimev2::config::Builder::from(sdk)
            .http_client(NullSlotFilteringClient::https())
            .retry_config(
                RetryConfig::standard()
                    .with_max_attempts(3)
                    .with_initial_backoff(retry_base),
            )
            .timeout_config(
                TimeoutConfig::builder()
                    .connect_timeout(Duration::from_secs(3))
                    .operation_attempt_timeout(Duration::from_secs(8))
                    .operation_timeout(Duration::from_secs(20))
                    .build(),
            );
        if let Some(url) = &bot.endpoint_url {
            config = config.endpoint_url(url.as_str().trim_end_matches('/'));
        }
        LexNlu {
            client: aws_sdk_lexruntimev2::Client::from_conf(config.build()),
            bot,
        }
    }
}

#[async_trait]
impl Nlu for LexNlu {
    fn name(&self) -> &'static str {
        "lex"
    }

    async fn recognize(&self, turn: NluTurn) -> Result<NluAnswer, NluError> {
        let text = cut_at_word(&turn.text, MAX_LEX_TEXT);
        if text.len() < turn.text.len() {
            info!(
                session_id = %turn.session_id,
                from = turn.text.chars().count(),
                to = text.chars().count(),
                "text cut to Lex's 1024-character limit"
            );
        }
        // Lex replaces its stored attributes with these: send back what it
        // returned last turn, the bridge's own keys over them.
        let remembered = LexSession::from_stored(turn.dialog_state.as_deref(), &turn.session_id);
        let contexts = remembered.contexts_to_send(now_ms());
        let state = SessionState::builder()
            .set_session_attributes(Some(
                remembered
                    .attributes_to_send(&turn.attributes)
                    .into_iter()
                    .collect(),
            ))
            // Always a list, empty included: to Lex no list means "keep the
            // contexts you have", so after an unlink or "start over" the old
            // identity's contexts would survive.
            .set_active_contexts(Some(contexts))
            // An attachment is no answer to a slot Lex may be asking for:
            // its fixed utterance is matched against the intents.
            .set_dialog_action(turn.attachment.as_ref().and_then(|_| {
                lex::DialogAction::builder()
                    .r#type(lex::DialogActionType::ElicitIntent)
                    .build()
                    .ok()
            }))
            .build();
        let result = self
            .client
            .recognize_text()
            .bot_id(&self.bot.bot_id)
            .bot_alias_id(&self.bot.bot_alias_id)
            .locale_id(&self.bot.locale_id)
            .session_id(&turn.session_id)
            .text(text)
            .session_state(state)
            .set_request_attributes(
                turn.attachment
                    .as_ref()
                    .map(|a| a.request_attributes().into_iter().collect()),
            )
            .send()
            .await;
        match result {
            Ok(output) => {
                let kept = LexSession::remembered(output.session_state.as_ref(), now_ms());
                Ok(NluAnswer {
                    reply: reply(output),
                    dialog_state: Some(kept.to_stored()),
                })
            }
            Err(e) => Err(classify(&turn.session_id, e)),
        }
    }

    async fn reset(&self, session_id: &str) -> Result<(), NluError> {
        self.delete_session(session_id).await
    }
}

impl LexNlu {
    /// Lex `DeleteSession`. No session at Lex is no error; a refusal (e.g.
    /// the role lacks `lex:DeleteSession`) is logged and the bridge starts
    /// over all the same, as the next request replaces Lex's attributes.
    async fn delete_session(&self, session_id: &str) -> Result<(), NluError> {
        let result = self
            .client
            .delete_session()
            .bot_id(&self.bot.bot_id)
            .bot_alias_id(&self.bot.bot_alias_id)
            .locale_id(&self.bot.locale_id)
            .session_id(session_id)
            .send()
            .await;
        let Err(e) = result else {
            return Ok(());
        };
        let SdkError::ServiceError(service) = &e else {
            return Err(NluError::Transient(format!(
                "Lex unreachable: {}",
                aws_smithy_types::error::display::DisplayErrorContext(&e)
            )));
        };
        let err = service.err();
        match err {
            DeleteSessionError::ResourceNotFoundException(_) => Ok(()),
            DeleteSessionError::ThrottlingException(_)
            | DeleteSessionError::InternalServerException(_)
            | DeleteSessionError::ConflictException(_) => Err(NluError::Transient(format!(
                "Lex DeleteSession: {}",
                err.code().unwrap_or("unknown")
            ))),
            _ => {
                error!(
                    session_id,
                    error = %err.code().unwrap_or("unknown"),
                    message = %err.message().unwrap_or("no message"),
                    "Lex refused DeleteSession (does the role allow lex:DeleteSession?); starting over without it"
                );
                Ok(())
            }
        }
    }
}

/// At most `max` characters, cut at the last white space when there is one.
pub fn cut_at_word(text: &str, max: usize) -> &str {
    let Some((end, _)) = text.char_indices().nth(max) else {
        return text;
    };
    let head = &text[..end];
    match head.rfind(char::is_whitespace) {
        Some(space) if space > 0 => head[..space].trim_end(),
        _ => head,
    }
}

/// Throttling, server errors, conflicts and timeouts are worth another try
/// (the SDK has already retried); the rest is a configuration problem that
/// is logged loudly and not retried.
fn classify(
    session_id: &str,
    e: SdkError<RecognizeTextError, aws_smithy_runtime_api::http::Response>,
) -> NluError {
    let request_id = e.request_id().map(str::to_string);
    match &e {
        SdkError::ServiceError(service) => {
            let err = service.err();
            let text = format!(
                "{}: {}",
                err.code().unwrap_or("unknown"),
                err.message().unwrap_or("no message")
            );
            if matches!(
                err,
                RecognizeTextError::ThrottlingException(_)
                    | RecognizeTextError::InternalServerException(_)
                    | RecognizeTextError::BadGatewayException(_)
                    | RecognizeTextError::ConflictException(_)
                    | RecognizeTextError::DependencyFailedException(_)
            ) {
                NluError::Transient(format!("Lex {text} (request id {request_id:?})"))
            } else {
                error!(
                    session_id,
                    lex_request_id = ?request_id,
                    error = %text,
                    "Lex refused the request; check the bot, alias, locale and IAM permissions"
                );
                NluError::Permanent(format!("Lex {text} (request id {request_id:?})"))
            }
        }
        SdkError::ConstructionFailure(_) => {
            error!(session_id, error = %aws_smithy_types::error::display::DisplayErrorContext(&e), "Lex request could not be built");
            NluError::Permanent(format!("Lex request could not be built: {e}"))
        }
        _ => NluError::Transient(format!(
            "Lex unreachable: {}",
            aws_smithy_types::error::display::DisplayErrorContext(&e)
        )),
    }
}

fn reply(output: RecognizeTextOutput) -> NluReply {
    let request_id = output.request_id().map(str::to_string);
    let messages = output
        .messages
        .unwrap_or_default()
        .into_iter()
        .filter_map(message)
        .collect();
    let state = output.session_state;
    NluReply {
        messages,
        intent: state.as_ref().and_then(|s| s.intent.as_ref()).map(intent),
        dialog_action: state
            .as_ref()
            .and_then(|s| s.dialog_action.as_ref())
            .map(|a| DialogAction {
                kind: a.r#type.as_str().to_string(),
                slot_to_elicit: a.slot_to_elicit.clone(),
            }),
        interpretations: output
            .interpretations
            .unwrap_or_default()
            .into_iter()
            .filter_map(|i| {
                Some(Interpretation {
                    intent: i.intent?.name,
                    nlu_confidence: i.nlu_confidence.map(|c| c.score),
                })
            })
            .collect(),
        active_contexts: state
            .as_ref()
            .and_then(|s| s.active_contexts.as_ref())
            .map(|contexts| contexts.iter().filter_map(active_context).collect())
            .unwrap_or_default(),
        session_attributes: state
            .and_then(|s| s.session_attributes)
            .map(|m| m.into_iter().collect::<BTreeMap<_, _>>())
            .unwrap_or_default(),
        request_id,
    }
}

fn active_context(c: &lex::ActiveContext) -> Option<ActiveContext> {
    let ttl = c.time_to_live.as_ref()?;
    Some(ActiveContext {
        name: c.name.clone(),
        time_to_live_in_seconds: i64::from(ttl.time_to_live_in_seconds),
        turns_to_live: u32::try_from(ttl.turns_to_live).unwrap_or(0),
        context_attributes: c
            .context_attributes
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
    })
}

/// Lex `Slot` -> its value; a `List` slot's items go into `values`.
fn slot_value(slot: &lex::Slot) -> Option<SlotValue> {
    let v = slot.value.as_ref()?;
    Some(SlotValue {
        original_value: v.original_value.clone().unwrap_or_default(),
        interpreted_value: v.interpreted_value.clone(),
        resolved_values: v.resolved_values.clone().unwrap_or_default(),
        values: slot
            .values
            .iter()
            .flatten()
            .filter_map(slot_value)
            .collect(),
    })
}

fn message(m: lex::Message) -> Option<NluMessage> {
    let content = m.content.unwrap_or_default();
    Some(match m.content_type {
        lex::MessageContentType::PlainText => NluMessage::PlainText(content),
        lex::MessageContentType::Ssml => NluMessage::Ssml(content),
        lex::MessageContentType::CustomPayload => NluMessage::CustomPayload(content),
        lex::MessageContentType::ImageResponseCard => {
            let card = m.image_response_card?;
            NluMessage::ImageResponseCard(ImageResponseCard {
                title: card.title,
                subtitle: card.subtitle,
                image_url: card.image_url,
                buttons: card
                    .buttons
                    .unwrap_or_default()
                    .into_iter()
                    .map(|b| CardButton {
                        text: b.text,
                        value: b.value,
                    })
                    .collect(),
            })
        }
        _ if !content.is_empty() => NluMessage::PlainText(content),
        _ => return None,
    })
}

fn intent(i: &lex::Intent) -> IntentState {
    IntentState {
        name: i.name.clone(),
        state: i.state.as_ref().map(|s| s.as_str().to_string()),
        confirmation_state: i
            .confirmation_state
            .as_ref()
            .map(|s| s.as_str().to_string()),
        slots: i
            .slots
            .as_ref()
            .map(|slots| {
                slots
                    .iter()
                    .map(|(name, slot)| (name.clone(), slot_value(slot)))
                    .collect()
            })
            .unwrap_or_default(),
    }
}

#[cfg(test)]
mod tests {
    use super::cut_at_word;

    #[test]
    fn long_text_is_cut_at_a_word_boundary() {
        let text = format!("{} tail", "word ".repeat(205));
        let cut = cut_at_word(&text, 1024);
        assert!(cut.chars().count() <= 1024);
        assert!(cut.ends_with("word"));
        assert_eq!(cut_at_word("short", 1024), "short");
        let unbroken = "x".repeat(2000);
        assert_eq!(cut_at_word(&unbroken, 1024).len(), 1024);
    }
}
