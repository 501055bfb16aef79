//! A scripted NLU: answers `echo: <text>`, can fail a number of times first,
//! and counts and records its calls.

use async_trait::async_trait;
use lexbridge::nlu::{Nlu, NluAnswer, NluError, NluMessage, NluReply, NluTurn};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Duration;

#[derive(Default)]
pub struct ScriptedNlu {
    /// Fail this many calls (transiently) before answering.
    pub fail_first: usize,
    /// Fail every call permanently.
    pub always_permanent: bool,
    /// Time each call takes.
    pub delay: Duration,
    pub calls: AtomicUsize,
    pub turns: Mutex<Vec<NluTurn>>,
    pub in_flight: Mutex<Vec<String>>,
    pub overlaps: AtomicUsize,
    /// The most calls that ran at once.
    pub most_at_once: AtomicUsize,
}

impl ScriptedNlu {
    pub fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }

    /// Calls that started while another call of the same session ran.
    pub fn overlaps(&self) -> usize {
        self.overlaps.load(Ordering::SeqCst)
    }
}

#[async_trait]
impl Nlu for ScriptedNlu {
    fn name(&self) -> &'static str {
        "scripted"
    }

    async fn recognize(&self, turn: NluTurn) -> Result<NluAnswer, NluError> {
        let n = self.calls.fetch_add(1, Ordering::SeqCst);
        {
            let mut in_flight = self.in_flight.lock().unwrap();
            if in_flight.contains(&turn.session_id) {
                self.overlaps.fetch_add(1, Ordering::SeqCst);
            }
            in_flight.push(turn.session_id.clone());
            self.most_at_once
                .fetch_max(in_flight.len(), Ordering::SeqCst);
        }
        if !self.delay.is_zero() {
            tokio::time::sleep(self.delay).await;
        }
        {
            let mut in_flight = self.in_flight.lock().unwrap();
            if let Some(i) = in_flight.iter().position(|s| *s == turn.session_id) {
                in_flight.remove(i);
            }
        }
        self.turns.lock().unwrap().push(turn.clone());
        if self.always_permanent {
            return Err(NluError::Permanent("scripted permanent failure".into()));
        }
        if n < self.fail_first {
            return Err(NluError::Transient(format!("scripted failure {}", n + 1)));
        }
        Ok(NluAnswer {
            reply: NluReply {
                messages: vec![NluMessage::PlainText(format!("echo: {}", turn.text))],
                ..NluReply::default()
            },
            dialog_state: None,
        })
    }
}
