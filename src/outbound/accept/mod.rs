//! Accepting messages from backends: one code path for the HTTP API and
//! `lexbridge send`. A request is checked, its recipient found, the
//! messaging window applied, and the message committed (queued or held)
//! before it is answered; an `Idempotency-Key` replays the first answer.

mod batch;
mod idempotency;

pub use batch::MAX_BATCH;
use idempotency::{request_hash, MAX_IDEMPOTENCY_KEY};

use rand::RngCore;

use super::answer::{Accepted, ApiError, ErrorCode, ItemAnswer, Outcome};
use super::keys::Caller;
use super::request::{MessageRequest, Ping, Target};
use super::time::format_timestamp;
use crate::domain::window::{decide, Decision, OutsideWindow, WindowRule};
use crate::facebook::render::outbox_body;
use crate::store::idempotency::Remember;
use crate::store::outbound_api::Recipient;
use crate::store::outbox::{NewOutboxMessage, OutboxState};
use crate::store::writer::{Acceptance, Write, Writer};
use crate::store::Store;

/// An answer ready to send: HTTP status and JSON body.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiAnswer {
    pub status: u16,
    pub body: String,
    /// The answer is the one first given to this `Idempotency-Key`.
    pub replayed: bool,
}

/// Who sends, and with which `Idempotency-Key`.
pub struct Sender<'a> {
    /// `None` for operators on the command line.
    pub caller: Option<&'a Caller>,
    pub idempotency_key: Option<&'a str>,
}

/// What accepting needs.
pub struct Outbound<'a> {
    pub store: &'a Store,
    pub writer: &'a Writer,
    /// The Page a PSID given without one belongs to, and the one preferred
    /// for accounts linked on several.
    pub page_id: &'a str,
    /// Every Page the deployment answers for (the default first): a link
    /// on any other (a Page removed) reaches nobody.
    pub pages: &'a [String],
}

/// One message checked and decided, before it is committed.
struct Decided {
    answer: ItemAnswer,
    message: Option<NewOutboxMessage>,
}

impl Outbound<'_> {
    /// `body` as the answer for `outcome`.
    fn answer(&self, outcome: Outcome, body: &impl serde::Serialize) -> ApiAnswer {
        ApiAnswer {
            status: outcome.http_status(),
            body: serde_json::to_string(body).unwrap_or_else(|_| "{}".into()),
            replayed: false,
        }
    }

    /// The answer that refuses the whole request.
    fn refusal(&self, error: ApiError) -> ApiAnswer {
        self.answer(Outcome::Refused(error.error), &error)
    }

    /// `POST /api/v1/messages`: 202, or the refusal.
    pub async fn submit_one(&self, sender: &Sender<'_>, body: &[u8]) -> anyhow::Result<ApiAnswer> {
        self.submit(sender, body, false).await
    }

    /// `POST /api/v1/messages/batch`: 200 with an answer per message, or a
    /// refusal of the whole request when it is not a batch.
    pub async fn submit_batch(
        &self,
        sender: &Sender<'_>,
        body: &[u8],
    ) -> anyhow::Result<ApiAnswer> {
        self.submit(sender, body, true).await
    }

    async fn submit(
        &self,
        sender: &Sender<'_>,
        body: &[u8],
        batch: bool,
    ) -> anyhow::Result<ApiAnswer> {
        let value: serde_json::Value = match serde_json::from_slice(body) {
            Ok(v) => v,
            Err(e) => {
                return Ok(self.refusal(ApiError::new(
                    ErrorCode::MalformedJson,
                    format!("the body is not JSON: {e}"),
                )))
            }
        };
        let remember = match (sender.caller, sender.idempotency_key) {
            (Some(caller), Some(key)) => {
                if key.is_empty()
                    || key.len() > MAX_IDEMPOTENCY_KEY
                    || !key.bytes().all(|b| b.is_ascii_graphic())
                {
                    return Ok(self.refusal(ApiError::invalid(
                        "Idempotency-Key",
                        format!("must be 1 to {MAX_IDEMPOTENCY_KEY} visible ASCII characters"),
                    )));
                }
                let hash = request_hash(&value, batch);
                if let Some(answer) = self.replay(caller.key_id, key, &hash).await? {
                    return Ok(answer);
                }
                Some((caller.key_id, key, hash))
            }
            _ => None,
        };
        let now = crate::store::now_ms();
        let (answer, decided) = if batch {
            self.decide_batch(value, now, sender.caller).await?
        } else {
            let d = self.decide(value, "", now, sender.caller).await?;
            (self.answer(d.answer.outcome(), &d.answer), vec![d])
        };
        let messages: Vec<NewOutboxMessage> =
            decided.into_iter().filter_map(|d| d.message).collect();
        // Every answer past the key check is kept, so the key stays bound to
        // this body even when the answer was a refusal.
        let remember = remember.map(|(api_key_id, key, hash)| Remember {
            api_key_id,
            idempotency_key: key.to_string(),
            request_hash: hash,
            status: i64::from(answer.status),
            answer: answer.body.clone(),
        });
        if messages.is_empty() && remember.is_none() {
            return Ok(answer);
        }
        let raced = remember.as_ref().map(|r| {
            (
                r.api_key_id,
                r.idempotency_key.clone(),
                r.request_hash.clone(),
            )
        });
        let stored = self
            .writer
            .write(Write::Accept(Box::new(Acceptance { messages, remember })))
            .await?;
        if stored == 0 {
            // A concurrent request with the same key was committed first.
            if let Some((key_id, key, hash)) = raced {
                if let Some(answer) = self.replay(key_id, &key, &hash).await? {
                    return Ok(answer);
                }
            }
            anyhow::bail!("an idempotent request was neither stored nor remembered");
        }
        Ok(answer)
    }

    /// Checks one message, finds its recipient and applies the window.
    async fn decide(
        &self,
        value: serde_json::Value,
        prefix: &str,
        now: i64,
        caller: Option<&Caller>,
    ) -> anyhow::Result<Decided> {
        let refused = |error: ApiError| Decided {
            answer: ItemAnswer::Refused(error),
            message: None,
        };
        let request: MessageRequest = match parse_json(value, prefix) {
            Ok(r) => r,
            Err(e) => return Ok(refused(e)),
        };
        let ping = match request.parse(now, self.page_id, prefix) {
            Ok(p) => p,
            Err(e) => return Ok(refused(ApiError::invalid(e.field, e.reason))),
        };
        // A named Page is known before anyone is looked up.
        let named = match &ping.target {
            Target::Psid { page_id, .. } => Some(page_id),
            Target::Account { page_id, .. } | Target::Uid { page_id, .. } => page_id.as_ref(),
        };
        if let (Some(caller), Some(page_id)) = (caller, named) {
            if !caller.may_reach(page_id) {
                return Ok(refused(caller.out_of_scope()));
            }
        }
        if let Some(page_id) = named.filter(|p| !self.pages.contains(p)) {
            return Ok(refused(ApiError::invalid(
                format!("{prefix}to"),
                format!(
                    "Page {page_id} is not one this deployment answers for (`lexbridge page list`)"
                ),
            )));
        }
        let scope = caller.and_then(|c| c.scope.pages.as_deref());
        let (page_id, psid, last_inbound_at, thread_owner) =
            match self.recipient(&ping.target, scope).await? {
                Recipient::Found {
                    page_id,
                    psid,
                    last_inbound_at,
                    thread_owner,
                } => (page_id, psid, last_inbound_at, thread_owner),
                Recipient::Unknown => {
                    let error = ApiError::new(ErrorCode::RecipientNotFound, unknown(&ping.target));
                    return Ok(refused(error));
                }
                Recipient::Unlinked => {
                    let error = ApiError::new(
                    ErrorCode::RecipientNotLinked,
                    "the account has no linked Messenger identity yet: the person has to sign in \
                     on the login site or open the Page's m.me link",
                );
                    return Ok(refused(error));
                }
            };
        if caller.is_some_and(|c| !c.may_reach(&page_id)) {
            // An account or uid reached only outside the key's Pages is
            // answered like an unknown one: no 403 tells the key who exists.
            // (A PSID's Page was checked above, before any lookup.)
            let error = ApiError::new(ErrorCode::RecipientNotFound, unknown(&ping.target));
            return Ok(refused(error));
        }
        let (state, delivery, hold_until) =
            match decide(now, last_inbound_at, ping.human_agent, ping.outside) {
                Decision::Reject { closed_at } => {
                    return Ok(refused(outside_window(&ping, closed_at)));
                }
                Decision::Hold { until } => (OutboxState::Held, None, Some(until)),
                // Only the thread's owner can send, whatever the tag: the
                // message waits for the thread to come back, or is refused.
                Decision::Send(_) if thread_owner.is_some() => match ping.outside {
                    OutsideWindow::Hold { until } => (OutboxState::Held, None, Some(until)),
                    OutsideWindow::Reject => {
                        return Ok(refused(thread_elsewhere(thread_owner.as_deref())));
                    }
                },
                Decision::Send(delivery) => (OutboxState::Queued, Some(delivery), None),
            };
        let public_id = new_public_id();
        // A held message goes as an UPDATE once the person writes again.
        let messaging_type = delivery.map_or("UPDATE", |d| d.messaging_type());
        let tag = delivery.and_then(|d| d.tag());
        let accepted = Accepted {
            id: public_id.clone(),
            status: state,
            messaging_type: messaging_type.to_string(),
            tag: tag.map(str::to_string),
            hold_until: hold_until.map(format_timestamp),
        };
        let message = NewOutboxMessage {
            page_id,
            psid,
            body: outbox_body(&ping.message),
            messaging_type: messaging_type.to_string(),
            tag: tag.map(str::to_string),
            origin: "api",
            inbox_id: None,
            state,
            public_id: Some(public_id),
            api_key_id: caller.map(|c| c.key_id),
            hold_until,
            window: Some(WindowRule {
                outside: ping.outside,
                human_agent: ping.human_agent,
            }),
        };
        Ok(Decided {
            answer: ItemAnswer::Accepted(accepted),
            message: Some(message),
        })
    }

    /// Where `target` is reached; with `within`, preferably on those Pages.
    async fn recipient(
        &self,
        target: &Target,
        within: Option<&[String]>,
    ) -> anyhow::Result<Recipient> {
        let page = self.page_id;
        match target {
            Target::Account { id, page_id } => {
                let on = page_id.as_deref();
                self.store
                    .recipient_for_account(id, page, on, within, self.pages)
                    .await
            }
            Target::Uid { uid, page_id } => {
                let on = page_id.as_deref();
                self.store
                    .recipient_for_uid(uid, page, on, within, self.pages)
                    .await
            }
            Target::Psid { page_id, psid } => self.store.recipient_for_psid(page_id, psid).await,
        }
    }
}

/// Deserializes with the path of the field at fault in the error.
fn parse_json<T: serde::de::DeserializeOwned>(
    value: serde_json::Value,
    prefix: &str,
) -> Result<T, ApiError> {
    serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        let field = match path.as_str() {
            "." => prefix.trim_end_matches('.').to_string(),
            p => format!("{prefix}{p}"),
        };
        let field = if field.is_empty() {
            "body".to_string()
        } else {
            field
        };
        ApiError::invalid(field, e.into_inner().to_string())
    })
}

fn unknown(target: &Target) -> String {
    match target {
        Target::Account { id, .. } => format!("no account {id:?} is known"),
        Target::Uid { uid, .. } => format!("no account has the Facebook user id {uid:?}"),
        Target::Psid { page_id, psid } => {
            format!("PSID {psid:?} never wrote to Page {page_id} and is not linked")
        }
    }
}

fn outside_window(ping: &Ping, closed_at: Option<i64>) -> ApiError {
    let message = match (closed_at, ping.human_agent) {
        (None, _) => "the person has never written to the Page, so no messaging window is open; \
                      send with if_outside_window: hold to deliver when they write"
            .to_string(),
        (Some(at), false) => format!(
            "the 24-hour messaging window closed at {}; a human agent may answer with tag \
             HUMAN_AGENT within 7 days, or send with if_outside_window: hold",
            format_timestamp(at)
        ),
        (Some(at), true) => format!(
            "the 7-day HUMAN_AGENT window closed at {}; send with if_outside_window: hold to \
             deliver when the person writes again",
            format_timestamp(at)
        ),
    };
    ApiError {
        window_closed_at: closed_at.map(format_timestamp),
        ..ApiError::new(ErrorCode::OutsideMessagingWindow, message)
    }
}

fn thread_elsewhere(owner: Option<&str>) -> ApiError {
    let who = match owner {
        Some(crate::config::PAGE_INBOX_APP_ID) => "the Page Inbox (the Page's people)".to_string(),
        Some(id) if id.bytes().all(|b| b.is_ascii_digit()) => format!("app {id}"),
        _ => "another app".to_string(),
    };
    ApiError::new(
        ErrorCode::ThreadOwnedByAnotherApp,
        format!(
            "{who} owns this conversation's thread, and only its owner can send; send with \
             if_outside_window: hold to deliver when the thread comes back to the bot"
        ),
    )
}

/// The id callers know a message by: 128 random bits.
fn new_public_id() -> String {
    let mut bytes = [0u8; 16];
    rand::thread_rng().fill_bytes(&mut bytes);
    format!("msg_{}", hex::encode(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn shape_errors_name_the_field() {
        let err = parse_json::<MessageRequest>(
            json!({"to": {"account": "a"}, "message": {"text": 5}}),
            "",
        )
        .unwrap_err();
        assert_eq!(err.field.as_deref(), Some("message.text"));
        let err = parse_json::<MessageRequest>(json!({"message": {"text": "x"}}), "messages[2].")
            .unwrap_err();
        assert_eq!(err.field.as_deref(), Some("messages[2]"));
        assert!(
            err.message.contains("missing field `to`"),
            "{}",
            err.message
        );
        let err = parse_json::<MessageRequest>(
            json!({"to": {"account": "a"}, "message": {"text": "x"}, "colour": "red"}),
            "",
        )
        .unwrap_err();
        assert!(err.message.contains("colour"), "{}", err.message);
    }

    #[test]
    fn public_ids_are_random() {
        let a = new_public_id();
        assert!(a.starts_with("msg_") && a.len() == 36);
        assert_ne!(a, new_public_id());
    }
}
