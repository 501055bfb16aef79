//! `lexbridge page setup` and `page show`: the Page's Messenger Profile
//! (Get Started, greeting, ice breakers, persistent menu, whitelisted
//! domains) from a `page.toml`, and the app's webhook subscription on the
//! Page. A config that breaks a rule is refused whole, before any call.

pub mod cli;
pub mod config;

use anyhow::Context;
use secrecy::SecretString;
use serde_json::Value;
use url::Url;

use crate::facebook::messenger_profile::{PROFILE_FIELDS, WEBHOOK_FIELDS};
use crate::facebook::GraphClient;
pub use config::PageConfig;

/// The Page to set up and how to reach it.
pub struct Target<'a> {
    pub graph: &'a GraphClient,
    pub page_id: &'a str,
    pub token: &'a SecretString,
    pub public_url: &'a Url,
}

/// Reads and checks a config file: every broken rule, named, or the
/// profile to send.
pub fn load(path: &std::path::Path, public_url: &Url) -> anyhow::Result<Value> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let refuse = |problems: Vec<String>| {
        anyhow::anyhow!(
            "{} is not a valid page config; nothing was sent:\n  {}",
            path.display(),
            problems.join("\n  ")
        )
    };
    config::parse(&text)
        .and_then(|config| config.profile(public_url))
        .map_err(refuse)
}

/// Sets the profile in one call, then subscribes the app to the webhook
/// fields the service handles; what was done, line by line.
pub async fn setup(target: &Target<'_>, profile: &Value) -> anyhow::Result<Vec<String>> {
    let mut done = Vec::new();
    if profile.get("ice_breakers").is_some() && profile.get("get_started").is_some() {
        done.push(
            "note: Messenger shows the ice breakers, not the Get Started button, when both are set"
                .to_string(),
        );
    }
    target
        .graph
        .set_messenger_profile(target.page_id, target.token, profile)
        .await
        .context("setting the Messenger Profile")?;
    let fields: Vec<&str> = profile
        .as_object()
        .map(|o| o.keys().map(String::as_str).collect())
        .unwrap_or_default();
    done.push(format!("profile set: {}", fields.join(", ")));
    target
        .graph
        .subscribe_app(target.page_id, target.token, &WEBHOOK_FIELDS)
        .await
        .with_context(|| {
            format!(
                "{}; but subscribing the app to the Page's webhook failed (setting the profile again is not needed)",
                done.join("; ")
            )
        })?;
    done.push(format!(
        "webhook fields subscribed: {}",
        WEBHOOK_FIELDS.join(", ")
    ));
    Ok(done)
}

/// What Meta has now, field by field, and how it differs from `wanted`
/// (a config's profile), when given.
pub async fn show(target: &Target<'_>, wanted: Option<&Value>) -> anyhow::Result<String> {
    let current = target
        .graph
        .messenger_profile(target.page_id, target.token)
        .await
        .context("reading the Messenger Profile")?;
    Ok(compare(&current, wanted))
}

/// One paragraph per managed field: Meta's value, then `same`, `differs`
/// (with the config's value) or nothing when no config is given.
pub fn compare(current: &Value, wanted: Option<&Value>) -> String {
    let mut out = String::new();
    for field in PROFILE_FIELDS {
        let now = current.get(field);
        let want = wanted.and_then(|w| w.get(field));
        let shown = now.map_or("(not set)".to_string(), Value::to_string);
        out.push_str(&format!("{field}: {shown}\n"));
        if wanted.is_some() {
            let verdict = match (now, want) {
                (None, None) => "  same (neither sets it)".to_string(),
                (Some(a), Some(b)) if a == b => "  same as the config".to_string(),
                (_, Some(b)) => format!("  differs: the config says {b}"),
                (Some(_), None) => "  differs: the config does not set it".to_string(),
            };
            out.push_str(&verdict);
            out.push('\n');
        }
    }
    out
}
