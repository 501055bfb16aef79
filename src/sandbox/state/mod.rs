//! What the stand-in for Meta remembers: the login codes it handed out, and
//! each demo person's thread with the Page (kept in a JSON file in the demo's
//! data folder, so a restart keeps the conversations).

use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use tokio::sync::broadcast;
use tracing::warn;
use url::Url;

use super::people::PEOPLE;
use crate::facebook::signature::sign;

/// A thread keeps at most this many messages.
const MAX_ENTRIES: usize = 300;

/// The demo's Meta app and Page, as the stand-ins check them.
pub struct SandboxConfig {
    pub app_id: String,
    pub app_secret: SecretString,
    pub page_id: String,
    pub page_name: String,
    pub page_token: SecretString,
    /// The service's PUBLIC_URL: the only redirect_uri the dialog accepts.
    pub public_url: Url,
    /// Where Meta's webhooks go (the service's own `/webhook`).
    pub webhook_url: Url,
    /// Verifies the service's signed fulfillment requests.
    pub fulfillment_secret: SecretString,
    /// The demo API key, offered on the ping panel.
    pub api_key: SecretString,
    /// Where the threads are kept (`None`: in memory only).
    pub state_file: Option<PathBuf>,
}

/// Who a token belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Who {
    User { uid: String, long_lived: bool },
    Page,
}

/// One message in a thread.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    pub mid: String,
    /// `person` or `page`.
    pub from: String,
    pub at: i64,
    /// The person's words (`text`, `quick_reply`, `postback`), or the Send
    /// API `message` object the Page sent.
    pub message: Value,
    #[serde(default)]
    pub tag: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Thread {
    /// When the person last wrote (the Send API's window starts here).
    pub last_wrote: Option<i64>,
    /// When the Page last marked the thread seen.
    #[serde(default)]
    pub seen_at: Option<i64>,
    #[serde(default)]
    pub entries: Vec<Entry>,
    /// The app that owns the thread when it is not the service's
    /// (conversation routing): the person's words go out as `standby`.
    #[serde(default)]
    pub owner: Option<String>,
}

/// What the emulator page hears (server-sent events).
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ThreadEvent {
    Message {
        psid: String,
        entry: Entry,
    },
    Typing {
        psid: String,
        on: bool,
    },
    Seen {
        psid: String,
        at: i64,
    },
    /// The thread changed hands (`None`: back with the service's app).
    Owner {
        psid: String,
        owner: Option<String>,
    },
}

impl ThreadEvent {
    pub fn psid(&self) -> &str {
        match self {
            ThreadEvent::Message { psid, .. }
            | ThreadEvent::Typing { psid, .. }
            | ThreadEvent::Seen { psid, .. }
            | ThreadEvent::Owner { psid, .. } => psid,
        }
    }
}

pub(super) struct LoginCode {
    pub(super) uid: String,
    pub(super) redirect_uri: String,
    pub(super) expires_at: i64,
    pub(super) used: bool,
}

#[derive(Default, Serialize, Deserialize)]
struct Saved {
    threads: BTreeMap<String, Thread>,
    /// Whether the people's first messages reached the service's webhook.
    #[serde(default)]
    history_delivered: bool,
}

pub struct Sandbox {
    pub config: SandboxConfig,
    threads: Mutex<BTreeMap<String, Thread>>,
    history_delivered: AtomicBool,
    pub(super) codes: Mutex<HashMap<String, LoginCode>>,
    events: broadcast::Sender<ThreadEvent>,
    http: reqwest::Client,
    /// The Page's Messenger Profile and webhook subscription.
    pub profile: super::profile::PageProfile,
}

impl Sandbox {
    /// The kept threads, or fresh ones where each person who wrote to the
    /// Page did so `ago_ms` before `now` (a person who never wrote has no
    /// thread yet).
    pub fn open(config: SandboxConfig, now: i64) -> anyhow::Result<Sandbox> {
        let saved = match &config.state_file {
            Some(file) if file.exists() => {
                let text = std::fs::read_to_string(file)?;
                Some(serde_json::from_str::<Saved>(&text).map_err(|e| {
                    anyhow::anyhow!("{} is not a sandbox state file: {e}", file.display())
                })?)
            }
            _ => None,
        };
        let delivered = saved.as_ref().is_some_and(|s| s.history_delivered);
        let threads = saved.map(|s| s.threads).unwrap_or_else(|| {
            PEOPLE
                .iter()
                .filter_map(|p| p.wrote.map(|w| (p, w)))
                .map(|(p, wrote)| {
                    let at = now - wrote.ago_ms;
                    let entry = Entry {
                        mid: mid(p.psid, at),
                        from: "person".into(),
                        at,
                        message: json!({ "text": wrote.words }),
                        tag: None,
                    };
                    let thread = Thread {
                        last_wrote: Some(at),
                        seen_at: None,
                        entries: vec![entry],
                        owner: None,
                    };
                    (p.psid.to_string(), thread)
                })
                .collect()
        });
        let http = reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(10))
            .build()?;
        let sandbox = Sandbox {
            config,
            threads: Mutex::new(threads),
            history_delivered: AtomicBool::new(delivered),
            codes: Mutex::new(HashMap::new()),
            events: broadcast::channel(256).0,
            http,
            profile: Default::default(),
        };
        sandbox.save(&sandbox.threads.lock().expect("threads"))?;
        Ok(sandbox)
    }

    fn save(&self, threads: &BTreeMap<String, Thread>) -> anyhow::Result<()> {
        let Some(file) = &self.config.state_file else {
            return Ok(());
        };
        let text = serde_json::to_string(&Saved {
            threads: threads.clone(),
            history_delivered: self.history_delivered.load(Ordering::SeqCst),
        })?;
        let partial = file.with_extension("json.partial");
        std::fs::write(&partial, text)?;
        std::fs::rename(&partial, file)?;
        Ok(())
    }

    // --- threads ----------------------------------------------------------

    pub fn thread(&self, psid: &str) -> Option<Thread> {
        self.threads.lock().expect("threads").get(psid).cloned()
    }

    pub fn subscribe(&self) -> broadcast::Receiver<ThreadEvent> {
        self.events.subscribe()
    }

    pub fn announce(&self, event: ThreadEvent) {
        // Nobody listening is fine.
        let _ = self.events.send(event);
    }

    /// Adds a message to a thread (the person's words also open their
    /// window) and tells the emulator.
    pub fn record(&self, psid: &str, entry: Entry) {
        {
            let mut threads = self.threads.lock().expect("threads");
            let thread = threads.entry(psid.to_string()).or_default();
            if entry.from == "person" {
                thread.last_wrote = Some(thread.last_wrote.unwrap_or(0).max(entry.at));
            }
            thread.entries.push(entry.clone());
            let excess = thread.entries.len().saturating_sub(MAX_ENTRIES);
            thread.entries.drain(..excess);
            if let Err(e) = self.save(&threads) {
                warn!(error = %e, "the sandbox threads could not be saved");
            }
        }
        self.announce(ThreadEvent::Message {
            psid: psid.to_string(),
            entry,
        });
    }

    /// The person acted in the thread without a message (opened a link).
    /// A person who never wrote to the Page has a thread from now on: as
    /// with Meta, opening the conversation makes their PSID, which
    /// `ids_for_pages` then names.
    pub fn touch(&self, psid: &str, at: i64) {
        let mut threads = self.threads.lock().expect("threads");
        let thread = threads.entry(psid.to_string()).or_default();
        thread.last_wrote = Some(thread.last_wrote.unwrap_or(0).max(at));
        if let Err(e) = self.save(&threads) {
            warn!(error = %e, "the sandbox threads could not be saved");
        }
    }

    /// Gives a person's thread to `owner` (`None`: the service's app), as
    /// `pass_thread_control` / `take_thread_control` do, and tells the
    /// emulator.
    pub fn set_owner(&self, psid: &str, owner: Option<String>) {
        let mut threads = self.threads.lock().expect("threads");
        threads.entry(psid.to_string()).or_default().owner = owner.clone();
        if let Err(e) = self.save(&threads) {
            warn!(error = %e, "the sandbox threads could not be saved");
        }
        drop(threads);
        self.announce(ThreadEvent::Owner {
            psid: psid.to_string(),
            owner,
        });
    }

    pub fn mark_seen(&self, psid: &str, at: i64) {
        let mut threads = self.threads.lock().expect("threads");
        if let Some(thread) = threads.get_mut(psid) {
            thread.seen_at = Some(at);
            let _ = self.save(&threads);
        }
        drop(threads);
        self.announce(ThreadEvent::Seen {
            psid: psid.to_string(),
            at,
        });
    }

    /// POSTs `messaging` events to the service's `/webhook` as Meta does:
    /// one page entry, signed with the app secret. Returns the HTTP status.
    pub async fn deliver(&self, messaging: Vec<Value>, now: i64) -> Result<u16, String> {
        self.deliver_as("messaging", messaging, now).await
    }

    /// Like `deliver`, in the entry's `messaging` or `standby` list (the
    /// latter while another app owns the person's thread).
    pub async fn deliver_as(
        &self,
        list: &str,
        events: Vec<Value>,
        now: i64,
    ) -> Result<u16, String> {
        let page = self.config.page_id.clone();
        self.deliver_for("page", &page, list, events, now).await
    }

    /// Events of `object` (`page`, or `instagram` for the Page's Instagram
    /// account) under the entry `entry_id`.
    pub async fn deliver_for(
        &self,
        object: &str,
        entry_id: &str,
        list: &str,
        events: Vec<Value>,
        now: i64,
    ) -> Result<u16, String> {
        let body = json!({
            "object": object,
            "entry": [{ "id": entry_id, "time": now, list: events }],
        });
        let body = serde_json::to_vec(&body).map_err(|e| e.to_string())?;
        let signature = sign(self.config.app_secret.expose_secret().as_bytes(), &body);
        let response = self
            .http
            .post(self.config.webhook_url.clone())
            .header("Content-Type", "application/json")
            .header("X-Hub-Signature-256", signature)
            .body(body)
            .send()
            .await
            .map_err(|e| format!("the webhook could not be reached: {e}"))?;
        Ok(response.status().as_u16())
    }

    /// Whether `replay_history` has done its work (it is kept in the file).
    pub fn history_delivered(&self) -> bool {
        self.history_delivered.load(Ordering::SeqCst)
    }

    /// Delivers each person's last message before the demo started, as Meta
    /// did then (with its time), so the service knows their windows. A
    /// redelivery after an interrupted start is recognised by its `mid`.
    pub async fn replay_history(&self) -> Result<(), String> {
        let firsts: Vec<(String, Entry)> = {
            let threads = self.threads.lock().expect("threads");
            threads
                .iter()
                .filter_map(|(psid, t)| t.entries.first().map(|e| (psid.clone(), e.clone())))
                .collect()
        };
        for (psid, entry) in firsts {
            let event = self.person_event(&psid, &entry);
            let status = self.deliver(vec![event], entry.at).await?;
            if status != 200 {
                return Err(format!("the webhook answered HTTP {status}"));
            }
        }
        self.history_delivered.store(true, Ordering::SeqCst);
        let threads = self.threads.lock().expect("threads");
        self.save(&threads).map_err(|e| e.to_string())
    }

    /// The webhook `messaging` event for a person's entry.
    pub fn person_event(&self, psid: &str, entry: &Entry) -> Value {
        let mut event = json!({
            "sender": { "id": psid },
            "recipient": { "id": self.config.page_id },
            "timestamp": entry.at,
        });
        match entry.message.get("postback") {
            Some(postback) => {
                let mut postback = postback.clone();
                postback["mid"] = json!(entry.mid);
                event["postback"] = postback;
            }
            None => {
                let mut message = entry.message.clone();
                message["mid"] = json!(entry.mid);
                event["message"] = message;
            }
        }
        event
    }
}

/// A message id in Meta's style.
pub fn mid(psid: &str, at: i64) -> String {
    format!(
        "m_{}_{at}_{}",
        &psid[psid.len().saturating_sub(4)..],
        hex::encode(rand::random::<[u8; 6]>())
    )
}

#[cfg(test)]
mod tests;
