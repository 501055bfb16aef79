//! Slot-type marks: a feature of the intent classifier for each slot type
//! of which a message names a listed value.

use std::collections::HashSet;

use super::expand::{self, Piece};
use super::features::MARK;
use super::gazetteer::Match;
use super::model::BotDef;
use super::text;

/// Marks (`features::MARK`) for the slot types of which a message holds a
/// listed value: a title the sample utterances never had still says "a
/// movie was named", as the templates' `{movie}` did once filled, so a
/// small bot learns a slot's place from its values, not only its few
/// sample words. A match made only of words the sample utterances use as
/// plain words ("play", "the") marks nothing: long value lists hold such
/// words as titles, and in a message they are mostly just words.
pub struct SlotTypeMarks {
    plain: HashSet<String>,
}

impl SlotTypeMarks {
    pub fn new(def: &BotDef) -> SlotTypeMarks {
        let plain = def
            .intents
            .iter()
            .flat_map(|i| &i.utterances)
            .flat_map(|u| expand::pieces(u))
            .filter_map(|p| match p {
                Piece::Text(t) => Some(t),
                Piece::Slot(_) => None,
            })
            .flat_map(text::tokenize)
            .map(|t| t.norm)
            .collect();
        SlotTypeMarks { plain }
    }

    /// The marks of a message's folded tokens, given the listed values
    /// among them (`Gazetteer::matches`).
    pub fn of(&self, folded: &[&str], matches: &[Match]) -> Vec<String> {
        let mut types: Vec<u16> = matches
            .iter()
            .filter(|m| {
                !folded[m.start..m.end]
                    .iter()
                    .all(|t| self.plain.contains(*t))
            })
            .map(|m| m.type_id)
            .collect();
        types.sort_unstable();
        types.dedup();
        types.into_iter().map(|t| format!("{}{t}", MARK)).collect()
    }
}
