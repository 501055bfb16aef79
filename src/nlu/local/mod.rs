//! The embedded NLU engine: runs a Lex V2 bot export locally and offline,
//! answering in the same [`NluReply`](crate::nlu::reply::NluReply) shape as Lex.

mod builtins;
mod bundled;
mod classifier;
pub mod confusion;
pub mod dialog;
mod error;
pub mod eval;
mod expand;
mod features;
pub mod files;
mod gazetteer;
mod intents;
mod json;
mod loader;
mod marks;
mod messages;
mod model;
mod parallel;
mod rng;
mod sense;
mod slots;
mod tagger;
mod text;

#[cfg(test)]
mod dialog_tests;
#[cfg(test)]
mod export_tests;
#[cfg(test)]
mod lex_features_tests;
#[cfg(test)]
mod small_bot_tests;

pub use builtins::Today;
pub use dialog::{DialogState, FulfillmentRequest, Now, Turn};
pub use error::LoadError;
pub use files::FileMap;
pub use slots::Slots;

use crate::nlu::reply::Interpretation;
use gazetteer::Gazetteer;
use intents::{IntentModel, Notes};
use marks::SlotTypeMarks;
use model::BotDef;
use parallel::Job;
use std::collections::HashSet;
use std::path::Path;
use tagger::Tagger;

pub const FALLBACK: &str = "FallbackIntent";

/// How many words the value of an open slot (one that takes values its type
/// does not list) may have: Lex slot values are names of one to three words.
const WORDS_PER_OPEN_SLOT: usize = 3;

/// One ranked interpretation with the slots found for it.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Interpreted {
    pub interpretation: Interpretation,
    pub slots: Slots,
}

pub struct LocalBot {
    def: BotDef,
    /// Whether any intent has a slot that takes values its list lacks.
    open_slots: bool,
    warnings: Vec<String>,
    classifier: IntentModel,
    /// Classifier class -> index in `def.intents`.
    classes: Vec<usize>,
    gaz: Gazetteer,
    marks: SlotTypeMarks,
    /// Per intent (same order as `def.intents`).
    taggers: Vec<Option<Tagger>>,
}

impl std::fmt::Debug for LocalBot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalBot")
            .field("name", &self.def.name)
            .field("intents", &self.def.intents.len())
            .finish()
    }
}

impl LocalBot {
    /// A folder or `.zip` Lex V2 export.
    pub fn load(path: &Path) -> Result<Self, LoadError> {
        Self::from_files(&FileMap::open(path)?)
    }

    /// The vehicle assistant compiled into the binary.
    pub fn bundled() -> Result<Self, LoadError> {
        Self::from_files(&bundled::files())
    }

    pub fn from_files(files: &FileMap) -> Result<Self, LoadError> {
        let loaded = loader::load(files)?;
        let def = loaded.bot;
        let gaz = Gazetteer::build(&def);
        let marks = SlotTypeMarks::new(&def);
        let classes: Vec<usize> = (0..def.intents.len())
            .filter(|&i| !def.intents[i].fallback && !def.intents[i].utterances.is_empty())
            .collect();
        let mut rng = rng::Rng::new(42);
        let mut docs = Vec::new();
        for (class, &i) in classes.iter().enumerate() {
            let intent = &def.intents[i];
            let repeats = if intent.utterances.len() < 50 { 3 } else { 1 };
            for u in &intent.utterances {
                let n = if expand::is_template(u) { repeats } else { 1 };
                let source = docs.len();
                for _ in 0..n {
                    docs.push((expand::fill(u, intent, &def, &mut rng).text, class, source));
                }
            }
        }
        let (classifier, taggers) = {
            let ctx = slots::Ctx {
                bot: &def,
                gaz: &gaz,
            };
            let ctx = &ctx;
            let jobs: Vec<Job<'_, Option<Tagger>>> = def
                .intents
                .iter()
                .enumerate()
                .map(|(i, intent)| {
                    Box::new(move || slots::train(intent, ctx, 1000 + i as u64)) as Job<'_, _>
                })
                .collect();
            IntentModel::train(
                &docs,
                classes.len(),
                // Every other utterance goes unmarked, as a message naming
                // a value the list lacks (an open slot's) comes: a mark is
                // evidence of its intent, its absence none against it; and
                // the value's words stay in what it means, as such a
                // value's do (the list cannot set them apart).
                |i, t| match i % 2 {
                    0 => marks.notes(t, &gaz.matches(t)),
                    _ => Notes {
                        marks: Vec::new(),
                        meaning: t.to_vec(),
                    },
                },
                jobs,
            )
        };
        let open_slots = classes
            .iter()
            .any(|&i| slots::open_slots(&def.intents[i], &def) > 0);
        Ok(LocalBot {
            open_slots,
            def,
            warnings: loaded.warnings,
            classifier,
            classes,
            gaz,
            marks,
            taggers,
        })
    }

    pub fn name(&self) -> &str {
        &self.def.name
    }

    /// The locale served (`en_US` when the export has it).
    pub fn locale(&self) -> &str {
        &self.def.locale
    }

    /// Features of the export the engine does not support (log once).
    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }

    fn ctx(&self) -> slots::Ctx<'_> {
        slots::Ctx {
            bot: &self.def,
            gaz: &self.gaz,
        }
    }

    fn fallback_name(&self) -> &str {
        self.def
            .fallback()
            .map(|f| f.name.as_str())
            .unwrap_or(FALLBACK)
    }

    /// Up to five interpretations, best first, like Lex: `FallbackIntent`
    /// (without a confidence) leads when the best score is under the threshold.
    pub fn interpret(&self, text: &str) -> Vec<Interpreted> {
        self.interpret_at(text, Today::now())
    }

    /// With no context active: intents with `inputContexts` are no
    /// candidates.
    pub fn interpret_at(&self, text: &str, today: Today) -> Vec<Interpreted> {
        self.interpret_in(text, today, &[])
    }

    /// Only intents whose input contexts are all among `active` are
    /// candidates, as in Lex.
    pub fn interpret_in(&self, text: &str, today: Today, active: &[&str]) -> Vec<Interpreted> {
        let scanned = slots::Scanned::new(&self.gaz, text);
        let folded = scanned.folded();
        let mut ranked = if folded.iter().all(|t| text::is_punct(t)) {
            Vec::new()
        } else {
            let Notes { marks, mut meaning } = self.marks.notes(&folded, &scanned.matches);
            // Where an open slot could take them, words never seen in
            // training are taken for values (as the word coverage takes
            // them), not for what the message means.
            if self.open_slots {
                meaning.retain(|w| self.classifier.knows(w));
            }
            let mut marked = folded.clone();
            marked.extend(marks.iter().map(String::as_str));
            self.classifier.rank_unscaled(&marked, &meaning)
        };
        ranked.retain(|&(class, _)| {
            self.intent_of(class).is_some_and(|intent| {
                intent
                    .input_contexts
                    .iter()
                    .all(|c| active.contains(&c.as_str()))
            })
        });
        // The leading intent's slots are found before the confidence is
        // final: the words of their values count as known to the bot.
        let top = ranked.first().and_then(|&(class, _)| self.intent_of(class));
        let top_slots = top.map(|intent| self.slots_for(intent, text, &scanned, today));
        // Words of values the tagger missed, as far as the intent's open
        // slots could hold them.
        let unseen_values = top.map_or(0, |intent| {
            slots::open_slots(intent, &self.def) * WORDS_PER_OPEN_SLOT
        });
        let value_words: HashSet<String> = top_slots
            .iter()
            .flat_map(|s| s.values().flatten())
            .flat_map(|v| {
                text::tokenize(&v.original_value)
                    .into_iter()
                    .map(|t| t.norm)
            })
            .collect();
        let scale = self
            .classifier
            .scale(&folded, |w| value_words.contains(w), unseen_values);
        ranked.iter_mut().for_each(|(_, p)| *p *= scale);
        let confident = ranked
            .first()
            .is_some_and(|&(_, p)| f64::from(p) >= self.def.threshold);
        let fallback = Interpreted {
            interpretation: Interpretation {
                intent: self.fallback_name().to_string(),
                nlu_confidence: None,
            },
            slots: Slots::new(),
        };
        let mut out = Vec::new();
        if !confident {
            out.push(fallback.clone());
        }
        for (rank, &(class, p)) in ranked.iter().enumerate() {
            if out.len() >= 4 || (rank > 0 && p < 0.01) {
                break;
            }
            let Some(intent) = self.intent_of(class) else {
                continue;
            };
            let slots = if let (0, Some(slots)) = (rank, &top_slots) {
                slots.clone()
            } else if f64::from(p) >= self.def.threshold {
                self.slots_for(intent, text, &scanned, today)
            } else {
                intent
                    .slots
                    .iter()
                    .map(|s| (s.name.clone(), None))
                    .collect()
            };
            out.push(Interpreted {
                interpretation: Interpretation {
                    intent: intent.name.clone(),
                    nlu_confidence: Some((f64::from(p) * 100.0).round() / 100.0),
                },
                slots,
            });
        }
        if confident {
            out.push(fallback);
        }
        out
    }

    /// The intent of a classifier class.
    fn intent_of(&self, class: usize) -> Option<&model::IntentDef> {
        self.classes
            .get(class)
            .and_then(|&i| self.def.intents.get(i))
    }

    fn intent_index(&self, name: &str) -> Option<usize> {
        self.def.intents.iter().position(|i| i.name == name)
    }

    fn slots_for(
        &self,
        intent: &model::IntentDef,
        text: &str,
        scanned: &slots::Scanned,
        today: Today,
    ) -> Slots {
        let tagger = self
            .intent_index(&intent.name)
            .and_then(|i| self.taggers.get(i))
            .and_then(Option::as_ref);
        slots::extract(intent, tagger, &self.ctx(), text, scanned, today, true)
    }
}
