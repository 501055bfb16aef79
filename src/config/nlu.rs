//! The NLU's settings: Amazon Lex V2 or the embedded engine, and the
//! embedded engine's fulfillment backend.

use secrecy::SecretString;
use url::Url;

use super::reader::Reader;

/// Which NLU answers conversations.
#[derive(Clone, Debug)]
pub enum NluSettings {
    /// Amazon Lex V2 (`NLU=lex`).
    Lex(LexSettings),
    /// The embedded engine over a Lex V2 export (`NLU=local`); `None` is the
    /// bundled demo bot.
    Local {
        bot: Option<std::path::PathBuf>,
        fulfillment: Option<FulfillmentSettings>,
    },
}

/// The backend that fulfils intents of the embedded engine.
#[derive(Clone, Debug)]
pub struct FulfillmentSettings {
    pub url: Url,
    /// Signs each request (`X-Lexbridge-Signature-256`).
    pub secret: SecretString,
}

#[derive(Clone, Debug, PartialEq)]
pub struct LexSettings {
    pub bot_id: String,
    pub bot_alias_id: String,
    pub locale_id: String,
    /// `LEX_ENDPOINT_URL` or `AWS_ENDPOINT_URL_LEX_RUNTIME_V2`: another
    /// endpoint than AWS's (a test double, a VPC endpoint).
    pub endpoint_url: Option<Url>,
}

pub(super) fn nlu_settings(r: &mut Reader) -> NluSettings {
    let lex_bot = r.get("LEX_BOT_ID");
    let default = if lex_bot.is_some() { "lex" } else { "local" };
    match r.optional("NLU", default).as_str() {
        "lex" => {
            if lex_bot.is_none() {
                r.problems.push("NLU=lex needs LEX_BOT_ID".to_string());
            }
            if r.get("LEX_BOT_ALIAS_ID").is_none() {
                r.problems
                    .push("NLU=lex needs LEX_BOT_ALIAS_ID".to_string());
            }
            let endpoint = ["LEX_ENDPOINT_URL", "AWS_ENDPOINT_URL_LEX_RUNTIME_V2"]
                .into_iter()
                .find(|k| r.get(k).is_some())
                .map(|k| r.url(k, "http://localhost"));
            NluSettings::Lex(LexSettings {
                bot_id: lex_bot.unwrap_or_default(),
                bot_alias_id: r.get("LEX_BOT_ALIAS_ID").unwrap_or_default(),
                locale_id: r.optional("LEX_LOCALE_ID", "en_US"),
                endpoint_url: endpoint,
            })
        }
        "local" => NluSettings::Local {
            bot: r.get("LOCAL_BOT").map(std::path::PathBuf::from),
            fulfillment: r.get("FULFILLMENT_URL").map(|_| FulfillmentSettings {
                url: fulfillment_url(r),
                secret: r.secret("FULFILLMENT_SECRET"),
            }),
        },
        other => {
            r.problems
                .push(format!("NLU must be lex or local, not {other:?}"));
            NluSettings::Local {
                bot: None,
                fulfillment: None,
            }
        }
    }
}

/// FULFILLMENT_URL: https, or plain http only to this machine (the signed
/// requests carry customers' data and must not cross a network in clear).
fn fulfillment_url(r: &mut Reader) -> Url {
    let url = r.url("FULFILLMENT_URL", "http://localhost");
    if url.scheme() == "http" && !is_loopback(&url) {
        r.problems.push(
            "FULFILLMENT_URL must be an https:// URL (plain http is allowed only for a loopback host: localhost, 127.0.0.0/8, [::1])"
                .to_string(),
        );
    }
    url
}

/// Whether `url` names this machine.
fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(name)) => name.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}
