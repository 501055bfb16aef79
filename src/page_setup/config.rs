//! `page.toml`: what `lexbridge page setup` sets on the Page's Messenger
//! Profile, checked against Messenger's rules before anything is sent.
//! Every problem is named with its field and rule at once.

use serde::Deserialize;
use serde_json::{json, Value};
use std::collections::HashSet;
use url::Url;

/// Messenger's limits on the profile.
const GREETING_MAX: usize = 160;
const PAYLOAD_MAX: usize = 1000;
const ICE_BREAKERS_MAX: usize = 4;
const MENU_ITEMS_MAX: usize = 20;
const MENU_TITLE_MAX: usize = 30;
const DOMAINS_MAX: usize = 50;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PageConfig {
    /// The Get Started button's postback payload.
    pub get_started: Option<String>,
    #[serde(default)]
    pub greeting: Vec<Greeting>,
    #[serde(default)]
    pub ice_breakers: Vec<IceBreakers>,
    #[serde(default)]
    pub persistent_menu: Vec<Menu>,
    #[serde(default)]
    pub whitelisted_domains: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Greeting {
    pub locale: String,
    pub text: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IceBreakers {
    pub locale: String,
    pub questions: Vec<Question>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Question {
    pub question: String,
    pub payload: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Menu {
    pub locale: String,
    #[serde(default)]
    pub composer_input_disabled: bool,
    pub items: Vec<MenuItem>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, tag = "type", rename_all = "snake_case")]
pub enum MenuItem {
    Postback { title: String, payload: String },
    WebUrl { title: String, url: String },
}

/// Reads `text` (TOML) into a config, or says what is wrong with it.
pub fn parse(text: &str) -> Result<PageConfig, Vec<String>> {
    toml::from_str(text).map_err(|e| vec![e.to_string().trim().to_string()])
}

impl PageConfig {
    /// The Messenger Profile this config asks for (the body of one
    /// `POST /{page}/messenger_profile`), with `public_url`'s origin among
    /// the whitelisted domains when it is https; or every rule it breaks.
    pub fn profile(&self, public_url: &Url) -> Result<Value, Vec<String>> {
        let mut problems = Vec::new();
        let mut profile = serde_json::Map::new();
        if let Some(payload) = &self.get_started {
            check_payload("get_started", payload, &mut problems);
            profile.insert("get_started".into(), json!({ "payload": payload }));
        }
        if !self.greeting.is_empty() {
            check_locales(
                "greeting",
                self.greeting.iter().map(|g| &g.locale),
                &mut problems,
            );
            for (i, g) in self.greeting.iter().enumerate() {
                let n = g.text.chars().count();
                if g.text.trim().is_empty() {
                    problems.push(format!("greeting[{i}].text: must not be empty"));
                } else if n > GREETING_MAX {
                    problems.push(format!(
                        "greeting[{i}].text: {n} characters, at most {GREETING_MAX}"
                    ));
                }
            }
            let greeting: Vec<Value> = self
                .greeting
                .iter()
                .map(|g| json!({ "locale": g.locale, "text": g.text }))
                .collect();
            profile.insert("greeting".into(), json!(greeting));
        }
        if !self.ice_breakers.is_empty() {
            check_locales(
                "ice_breakers",
                self.ice_breakers.iter().map(|b| &b.locale),
                &mut problems,
            );
            for (i, b) in self.ice_breakers.iter().enumerate() {
                let n = b.questions.len();
                if n == 0 || n > ICE_BREAKERS_MAX {
                    problems.push(format!(
                        "ice_breakers[{i}].questions: {n} questions, 1 to {ICE_BREAKERS_MAX}"
                    ));
                }
                for (j, q) in b.questions.iter().enumerate() {
                    if q.question.trim().is_empty() {
                        problems.push(format!(
                            "ice_breakers[{i}].questions[{j}].question: must not be empty"
                        ));
                    }
                    let field = format!("ice_breakers[{i}].questions[{j}].payload");
                    check_payload(&field, &q.payload, &mut problems);
                }
            }
            let breakers: Vec<Value> = self
                .ice_breakers
                .iter()
                .map(|b| {
                    let calls: Vec<Value> = b
                        .questions
                        .iter()
                        .map(|q| json!({ "question": q.question, "payload": q.payload }))
                        .collect();
                    json!({ "locale": b.locale, "call_to_actions": calls })
                })
                .collect();
            profile.insert("ice_breakers".into(), json!(breakers));
        }
        if !self.persistent_menu.is_empty() {
            if self.get_started.is_none() {
                problems.push("persistent_menu: needs get_started (Messenger shows the menu only on Pages with a Get Started button)".into());
            }
            check_locales(
                "persistent_menu",
                self.persistent_menu.iter().map(|m| &m.locale),
                &mut problems,
            );
            let menus: Vec<Value> = self
                .persistent_menu
                .iter()
                .enumerate()
                .map(|(i, m)| menu(i, m, &mut problems))
                .collect();
            profile.insert("persistent_menu".into(), json!(menus));
        }
        let domains = self.domains(public_url, &mut problems);
        if !domains.is_empty() {
            profile.insert("whitelisted_domains".into(), json!(domains));
        }
        if profile.is_empty() {
            problems.push("the config sets nothing: give at least one of get_started, greeting, ice_breakers, persistent_menu, whitelisted_domains".into());
        }
        if problems.is_empty() {
            Ok(Value::Object(profile))
        } else {
            Err(problems)
        }
    }

    /// The whitelisted domains as origins, `public_url`'s first (when it is
    /// https), each once.
    fn domains(&self, public_url: &Url, problems: &mut Vec<String>) -> Vec<String> {
        let mut domains = Vec::new();
        if public_url.scheme() == "https" {
            domains.push(public_url.origin().ascii_serialization());
        }
        for (i, d) in self.whitelisted_domains.iter().enumerate() {
            match Url::parse(d) {
                Ok(url) if url.scheme() == "https" && url.host().is_some() => {
                    let origin = url.origin().ascii_serialization();
                    if !domains.contains(&origin) {
                        domains.push(origin);
                    }
                }
                _ => problems.push(format!(
                    "whitelisted_domains[{i}]: {d:?} is not an https URL"
                )),
            }
        }
        if domains.len() > DOMAINS_MAX {
            problems.push(format!(
                "whitelisted_domains: {} domains (PUBLIC_URL's included), at most {DOMAINS_MAX}",
                domains.len()
            ));
        }
        domains
    }
}

fn menu(i: usize, m: &Menu, problems: &mut Vec<String>) -> Value {
    let n = m.items.len();
    if n == 0 || n > MENU_ITEMS_MAX {
        problems.push(format!(
            "persistent_menu[{i}].items: {n} items, 1 to {MENU_ITEMS_MAX} (nested menus are gone since Graph v8)"
        ));
    }
    let items: Vec<Value> = m
        .items
        .iter()
        .enumerate()
        .map(|(j, item)| {
            let field = format!("persistent_menu[{i}].items[{j}]");
            let title = match item {
                MenuItem::Postback { title, .. } | MenuItem::WebUrl { title, .. } => title,
            };
            let chars = title.chars().count();
            if title.trim().is_empty() || chars > MENU_TITLE_MAX {
                problems.push(format!(
                    "{field}.title: {chars} characters, 1 to {MENU_TITLE_MAX}"
                ));
            }
            match item {
                MenuItem::Postback { title, payload } => {
                    check_payload(&format!("{field}.payload"), payload, problems);
                    json!({ "type": "postback", "title": title, "payload": payload })
                }
                MenuItem::WebUrl { title, url } => {
                    if !Url::parse(url).is_ok_and(|u| matches!(u.scheme(), "http" | "https")) {
                        problems.push(format!("{field}.url: {url:?} is not an http(s) URL"));
                    }
                    json!({ "type": "web_url", "title": title, "url": url })
                }
            }
        })
        .collect();
    json!({
        "locale": m.locale,
        "composer_input_disabled": m.composer_input_disabled,
        "call_to_actions": items,
    })
}

fn check_payload(field: &str, payload: &str, problems: &mut Vec<String>) {
    let n = payload.chars().count();
    if payload.trim().is_empty() || n > PAYLOAD_MAX {
        problems.push(format!("{field}: {n} characters, 1 to {PAYLOAD_MAX}"));
    }
}

/// Each locale once, and `default` among them (Messenger requires it).
fn check_locales<'a>(
    field: &str,
    locales: impl Iterator<Item = &'a String>,
    problems: &mut Vec<String>,
) {
    let mut seen = HashSet::new();
    for locale in locales {
        if !seen.insert(locale.as_str()) {
            problems.push(format!("{field}: locale {locale:?} is given twice"));
        }
    }
    if !seen.contains("default") {
        problems.push(format!("{field}: a \"default\" locale is required"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn public() -> Url {
        Url::parse("https://bridge.example.com/").unwrap()
    }

    #[test]
    fn the_example_config_becomes_one_profile_with_public_urls_origin() {
        let text = include_str!("../../docs/page.example.toml");
        let profile = parse(text).unwrap().profile(&public()).unwrap();
        assert_eq!(profile["get_started"], json!({"payload": "GET_STARTED"}));
        assert_eq!(profile["greeting"][0]["locale"], "default");
        assert_eq!(
            profile["ice_breakers"][0]["call_to_actions"][1],
            json!({"question": "Talk to a person", "payload": "HANDOVER"})
        );
        assert_eq!(
            profile["persistent_menu"][0]["call_to_actions"][1],
            json!({"type": "web_url", "title": "My account", "url": "https://example.com/account"})
        );
        assert_eq!(
            profile["whitelisted_domains"],
            json!(["https://bridge.example.com", "https://example.com"])
        );
    }

    #[test]
    fn every_broken_rule_is_named_with_its_field() {
        let long = "x".repeat(161);
        let text = format!(
            r#"
            get_started = ""
            whitelisted_domains = ["http://example.com"]
            [[greeting]]
            locale = "en_US"
            text = "{long}"
            [[ice_breakers]]
            locale = "default"
            questions = [
              {{ question = "a", payload = "A" }}, {{ question = "b", payload = "B" }},
              {{ question = "c", payload = "C" }}, {{ question = "d", payload = "D" }},
              {{ question = "e", payload = "E" }},
            ]
            [[persistent_menu]]
            locale = "default"
            items = [
              {{ type = "postback", title = "A title far longer than thirty characters", payload = "P" }},
              {{ type = "web_url", title = "Site", url = "ftp://example.com" }},
            ]
            "#
        );
        let problems = parse(&text).unwrap().profile(&public()).unwrap_err();
        for expected in [
            "get_started: 0 characters, 1 to 1000",
            "greeting: a \"default\" locale is required",
            "greeting[0].text: 161 characters, at most 160",
            "ice_breakers[0].questions: 5 questions, 1 to 4",
            "persistent_menu[0].items[0].title: 41 characters, 1 to 30",
            "persistent_menu[0].items[1].url: \"ftp://example.com\" is not an http(s) URL",
            "whitelisted_domains[0]: \"http://example.com\" is not an https URL",
        ] {
            assert!(
                problems.iter().any(|p| p == expected),
                "{expected}: {problems:#?}"
            );
        }
        assert_eq!(problems.len(), 7, "{problems:#?}");
    }

    #[test]
    fn more_than_twenty_menu_items_or_fifty_domains_are_refused() {
        let items: Vec<String> = (0..21)
            .map(|n| format!("{{ type = \"postback\", title = \"T{n}\", payload = \"P{n}\" }}"))
            .collect();
        let domains: Vec<String> = (0..50)
            .map(|n| format!("\"https://d{n}.example.com\""))
            .collect();
        let text = format!(
            "whitelisted_domains = [{}]\n[[persistent_menu]]\nlocale = \"default\"\nitems = [{}]\n",
            domains.join(", "),
            items.join(", ")
        );
        let problems = parse(&text).unwrap().profile(&public()).unwrap_err();
        assert!(
            problems
                .iter()
                .any(|p| p.starts_with("persistent_menu[0].items: 21 items")),
            "{problems:?}"
        );
        assert!(
            problems
                .iter()
                .any(|p| p.starts_with("whitelisted_domains: 51 domains")),
            "{problems:?}"
        );
    }

    #[test]
    fn a_menu_needs_the_get_started_button() {
        let text = "[[persistent_menu]]\nlocale = \"default\"\nitems = [{ type = \"postback\", title = \"Menu\", payload = \"M\" }]\n";
        let problems = parse(text).unwrap().profile(&public()).unwrap_err();
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(problems[0].starts_with("persistent_menu: needs get_started"));
        let with = format!("get_started = \"GO\"\n{text}");
        assert!(parse(&with).unwrap().profile(&public()).is_ok());
    }

    #[test]
    fn unknown_fields_and_empty_configs_are_refused() {
        let problems = parse("greting = []").unwrap_err();
        assert!(problems[0].contains("greting"), "{problems:?}");
        let problems = parse("[[persistent_menu]]\nlocale = \"default\"\nitems = [{ type = \"nested\", title = \"x\" }]")
            .unwrap_err();
        assert!(problems[0].contains("nested"), "{problems:?}");
        // http PUBLIC_URL (a development setup) adds no domain.
        let nothing = parse("")
            .unwrap()
            .profile(&Url::parse("http://127.0.0.1:8080").unwrap());
        assert!(nothing.unwrap_err()[0].starts_with("the config sets nothing"));
    }
}
