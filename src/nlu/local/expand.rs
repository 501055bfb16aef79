//! Sample utterance templates (`add {song} to {playlist}`) and their
//! expansion into labelled sentences by filling values from the slot types.

use super::builtins;
use super::model::{BotDef, IntentDef};
use super::rng::Rng;

#[derive(Debug, Clone, PartialEq)]
pub enum Piece<'a> {
    Text(&'a str),
    Slot(&'a str),
}

pub fn pieces(template: &str) -> Vec<Piece<'_>> {
    let mut out = Vec::new();
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        let Some(close) = rest[open..].find('}').map(|c| open + c) else {
            break;
        };
        if open > 0 {
            out.push(Piece::Text(&rest[..open]));
        }
        out.push(Piece::Slot(rest[open + 1..close].trim()));
        rest = &rest[close + 1..];
    }
    if !rest.is_empty() {
        out.push(Piece::Text(rest));
    }
    out
}

/// A filled template: text plus byte spans labelled with slot indices.
#[derive(Debug, Clone, Default)]
pub struct Example {
    pub text: String,
    pub spans: Vec<(usize, usize, usize)>,
}

/// Fills every `{slot}` with a value of its type (sometimes a synonym).
pub fn fill(template: &str, intent: &IntentDef, bot: &BotDef, rng: &mut Rng) -> Example {
    let mut ex = Example::default();
    for piece in pieces(template) {
        match piece {
            Piece::Text(t) => ex.text.push_str(t),
            Piece::Slot(name) => {
                let Some(index) = intent.slots.iter().position(|s| s.name == name) else {
                    ex.text.push_str(name);
                    continue;
                };
                let slot = &intent.slots[index];
                let mut value = sample(&slot.type_name, bot, rng);
                // A multi-valued slot is also trained on lists of values.
                if slot.multiple && rng.chance(0.4) {
                    let more = 1 + rng.below(2);
                    for k in 0..more {
                        let sep = if k + 1 < more || rng.chance(0.3) {
                            ", "
                        } else {
                            " and "
                        };
                        value.push_str(sep);
                        value.push_str(&sample(&slot.type_name, bot, rng));
                    }
                }
                let start = ex.text.len();
                ex.text.push_str(&value);
                ex.spans.push((start, ex.text.len(), index));
            }
        }
    }
    ex
}

pub fn sample(type_name: &str, bot: &BotDef, rng: &mut Rng) -> String {
    if let Some(def) = bot.slot_types.get(type_name) {
        if !def.values.is_empty() {
            let v = &def.values[rng.below(def.values.len())];
            if !v.synonyms.is_empty() && rng.chance(0.4) {
                return v.synonyms[rng.below(v.synonyms.len())].clone();
            }
            return v.value.clone();
        }
        if let Some(parent) = &def.parent {
            return sample(parent, bot, rng);
        }
    }
    if let Some(listed) = builtins::lists::values(type_name) {
        if !listed.is_empty() {
            return listed[rng.below(listed.len())].value.to_string();
        }
    }
    let list = builtins::samples(type_name);
    list[rng.below(list.len())].to_string()
}

/// Whether the utterance refers to any `{slot}`.
pub fn is_template(utterance: &str) -> bool {
    pieces(utterance)
        .iter()
        .any(|p| matches!(p, Piece::Slot(_)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_templates() {
        assert_eq!(
            pieces("add {song} to {playlist}!"),
            [
                Piece::Text("add "),
                Piece::Slot("song"),
                Piece::Text(" to "),
                Piece::Slot("playlist"),
                Piece::Text("!")
            ]
        );
        assert!(!is_template("hello there"));
    }
}
