//! Custom slot type values and synonyms, matched on folded tokens so case,
//! accents and spacing do not matter.

use super::builtins::lists;
use super::features::hash;
use super::model::BotDef;
use super::text::tokenize;
use std::collections::HashMap;

const SEED: u64 = 0x5851_f42d_4c95_7f2d;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Match {
    /// Token range.
    pub start: usize,
    pub end: usize,
    pub type_id: u16,
    /// Index of the canonical value within the type.
    pub value: u32,
}

#[derive(Debug, Default)]
pub struct Gazetteer {
    entries: HashMap<u64, Vec<(u16, u32)>>,
    max_len: usize,
    names: Vec<String>,
    /// Per type: canonical values.
    values: Vec<Vec<String>>,
    /// Per type: (folded key, canonical index) for fuzzy resolution.
    keys: Vec<Vec<(String, u32)>>,
}

fn combine(h: u64, token: &str) -> u64 {
    (h ^ hash(SEED, token.as_bytes())).wrapping_mul(0x9e37_79b9_7f4a_7c15)
}

fn sequence_hash(tokens: &[&str]) -> u64 {
    tokens.iter().fold(SEED, |h, t| combine(h, t))
}

impl Gazetteer {
    /// The bot's custom slot types, then the shipped lists of the built-in
    /// types its slots use (`AMAZON.City`…), under the built-in's name.
    pub fn build(bot: &BotDef) -> Self {
        let mut g = Gazetteer::default();
        let custom = bot.slot_types.iter().map(|(name, def)| {
            let values: Vec<(&str, Vec<&str>)> = def
                .values
                .iter()
                .map(|v| {
                    (
                        v.value.as_str(),
                        v.synonyms.iter().map(String::as_str).collect(),
                    )
                })
                .collect();
            (name.as_str(), values)
        });
        let mut used: Vec<&str> = bot
            .intents
            .iter()
            .flat_map(|i| &i.slots)
            .map(|s| s.type_name.as_str())
            .filter(|t| lists::values(t).is_some())
            .collect();
        used.sort_unstable();
        used.dedup();
        let builtin = used.into_iter().map(|name| {
            let values: Vec<(&str, Vec<&str>)> = lists::values(name)
                .unwrap_or_default()
                .iter()
                .map(|v| (v.value, v.synonyms.clone()))
                .collect();
            (name, values)
        });
        for (type_id, (name, values)) in custom.chain(builtin).enumerate() {
            let type_id = type_id as u16;
            g.names.push(name.to_string());
            let mut canon = Vec::new();
            let mut keys = Vec::new();
            for (i, (value, synonyms)) in values.iter().enumerate() {
                canon.push(value.to_string());
                for surface in std::iter::once(value).chain(synonyms) {
                    let toks: Vec<String> = tokenize(surface).into_iter().map(|t| t.norm).collect();
                    if toks.is_empty() {
                        continue;
                    }
                    let refs: Vec<&str> = toks.iter().map(String::as_str).collect();
                    g.max_len = g.max_len.max(refs.len());
                    let list = g.entries.entry(sequence_hash(&refs)).or_default();
                    if !list.iter().any(|&(t, _)| t == type_id) {
                        list.push((type_id, i as u32));
                    }
                    keys.push((refs.join(" "), i as u32));
                }
            }
            g.values.push(canon);
            g.keys.push(keys);
        }
        g
    }

    pub fn type_id(&self, name: &str) -> Option<u16> {
        self.names.iter().position(|n| n == name).map(|i| i as u16)
    }

    /// Every listed value occurring in the folded tokens.
    pub fn matches(&self, tokens: &[&str]) -> Vec<Match> {
        let mut out = Vec::new();
        for start in 0..tokens.len() {
            let mut h = SEED;
            for end in start + 1..=(start + self.max_len).min(tokens.len()) {
                h = combine(h, tokens[end - 1]);
                if let Some(list) = self.entries.get(&h) {
                    for &(type_id, value) in list {
                        out.push(Match {
                            start,
                            end,
                            type_id,
                            value,
                        });
                    }
                }
            }
        }
        out
    }

    pub fn canonical(&self, type_id: u16, value: u32) -> Option<&str> {
        self.values
            .get(type_id as usize)?
            .get(value as usize)
            .map(String::as_str)
    }

    /// The canonical value for a span: exact (folded) match first, then, if
    /// `fuzzy`, one or two typos away for longer words.
    pub fn resolve(&self, type_id: u16, span: &str, fuzzy: bool) -> Option<&str> {
        let toks: Vec<String> = tokenize(span).into_iter().map(|t| t.norm).collect();
        let refs: Vec<&str> = toks.iter().map(String::as_str).collect();
        let exact = self
            .entries
            .get(&sequence_hash(&refs))
            .and_then(|list| list.iter().find(|&&(t, _)| t == type_id));
        if let Some(&(_, value)) = exact {
            return self.canonical(type_id, value);
        }
        if !fuzzy {
            return None;
        }
        let k = refs.join(" ");
        let keys = self.keys.get(type_id as usize)?;
        let budget = match k.chars().count() {
            0..=3 => 0,
            4..=8 => 1,
            _ => 2,
        };
        let mut best: Option<(usize, u32)> = None;
        for (candidate, value) in keys {
            if budget > 0 && candidate.len().abs_diff(k.len()) <= budget {
                let d = edit_distance(candidate, &k);
                if d <= budget && best.is_none_or(|(bd, _)| d < bd) {
                    best = Some((d, *value));
                }
            }
        }
        best.and_then(|(_, v)| self.canonical(type_id, v))
    }

    /// The longest listed value of `type_id` in the tokens.
    pub fn longest(&self, type_id: u16, tokens: &[&str]) -> Option<Match> {
        self.matches(tokens)
            .into_iter()
            .filter(|m| m.type_id == type_id)
            .max_by_key(|m| (m.end - m.start, usize::MAX - m.start))
    }
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(ca != *cb);
            cur[j + 1] = sub.min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nlu::local::model::{SlotTypeDef, SlotTypeValue};

    fn bot() -> BotDef {
        let mut types = std::collections::BTreeMap::new();
        types.insert(
            "Place".to_string(),
            SlotTypeDef {
                name: "Place".into(),
                values: vec![SlotTypeValue {
                    value: "Home".into(),
                    synonyms: vec!["my house".into(), "Café du Monde".into()],
                }],
                top_resolution: true,
                ..SlotTypeDef::default()
            },
        );
        BotDef {
            name: "T".into(),
            locale: "en_US".into(),
            threshold: 0.4,
            intents: vec![],
            slot_types: types,
        }
    }

    #[test]
    fn matches_synonyms_tolerantly_and_resolves() {
        let g = Gazetteer::build(&bot());
        let m = g.matches(&["near", "cafe", "du", "monde"]);
        assert_eq!(m.len(), 1);
        assert_eq!((m[0].start, m[0].end), (1, 4));
        assert_eq!(g.canonical(0, m[0].value), Some("Home"));
        assert_eq!(g.resolve(0, "My  HOUSE", false), Some("Home"));
        assert_eq!(g.resolve(0, "my hous", true), Some("Home"));
        assert_eq!(g.resolve(0, "office", true), None);
    }
}
