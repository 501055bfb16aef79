//! Slot-type marks: a feature of the intent classifier for each slot type
//! of which a message names a listed value.

use std::collections::HashSet;

use super::expand::{self, Piece};
use super::features::MARK;
use super::gazetteer::Match;
use super::intents::Notes;
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

    /// The listed values among a message's folded tokens
    /// (`Gazetteer::matches`) that count as values: not made only of plain
    /// words.
    fn values<'m>(
        &'m self,
        folded: &'m [&str],
        matches: &'m [Match],
    ) -> impl Iterator<Item = &'m Match> {
        matches.iter().filter(|m| {
            !folded[m.start..m.end]
                .iter()
                .all(|t| self.plain.contains(*t))
        })
    }

    /// What the intent classifier is told of a message's folded tokens,
    /// given the listed values among them (`Gazetteer::matches`): its marks,
    /// and its words outside those values.
    pub fn notes<'a>(&self, folded: &[&'a str], matches: &[Match]) -> Notes<'a> {
        Notes {
            marks: self.of(folded, matches),
            meaning: self.meaning(folded, matches),
        }
    }

    /// The marks of a message's folded tokens, given the listed values
    /// among them (`Gazetteer::matches`).
    fn of(&self, folded: &[&str], matches: &[Match]) -> Vec<String> {
        let mut types: Vec<u16> = self.values(folded, matches).map(|m| m.type_id).collect();
        types.sort_unstable();
        types.dedup();
        types.into_iter().map(|t| format!("{}{t}", MARK)).collect()
    }

    /// The tokens that are not inside a value (as `of` counts them): what
    /// a message means is said by these; a value's words mean the value
    /// ("quiet rivers" is a title, not a wish for calm water).
    fn meaning<'a>(&self, folded: &[&'a str], matches: &[Match]) -> Vec<&'a str> {
        let mut in_value = vec![false; folded.len()];
        for m in self.values(folded, matches) {
            in_value[m.start..m.end].iter_mut().for_each(|v| *v = true);
        }
        folded
            .iter()
            .zip(in_value)
            .filter(|&(_, v)| !v)
            .map(|(t, _)| *t)
            .collect()
    }
}
