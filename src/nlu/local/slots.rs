//! Slot filling for one intent: the tagger is trained on the expanded
//! templates and locates spans, then each span is resolved by its slot type
//! (built-in parser, or listed values and synonyms); an answer to a slot's
//! prompt is matched against the slot's own utterances. What a span is
//! worth as a value is in `values`; the items of a multi-valued slot in
//! `multi_valued`.

mod multi_valued;
mod values;

pub use values::resolve_default;

use super::builtins::{self, lists, Today};
use super::expand::{self, Piece};
use super::features::hash;
use super::gazetteer::{Gazetteer, Match};
use super::model::{BotDef, IntentDef, SlotDef};
use super::rng::Rng;
use super::tagger::{self, Sentence, Tagger};
use super::text::{tokenize, Token};
use crate::nlu::reply::SlotValue;
use multi_valued::{list_value, type_matches};
use std::collections::BTreeMap;
use values::resolve;

/// Sentences per intent the templates are expanded to (at least once each).
const TARGET_SENTENCES: usize = 3000;
/// The most text an intent's tagger is trained on (its expanded sentences'
/// characters, all repeats together). Sample utterances naming many long
/// slot values expand into long sentences; past this their repeats are cut
/// (each template still expands at least once), so a small export cannot
/// make training take gigabytes. The benchmark bots' intents expand to
/// under a fifth of it.
const MAX_TRAINING_CHARS: usize = 1_000_000;
const EPOCHS: usize = 6;

pub type Slots = BTreeMap<String, Option<SlotValue>>;

/// Built-in types found anywhere in a sentence when the tagger missed them.
const SCANNED: [&str; 4] = [
    "AMAZON.Number",
    "AMAZON.Date",
    "AMAZON.Time",
    "AMAZON.EmailAddress",
];

pub struct Ctx<'a> {
    pub bot: &'a BotDef,
    pub gaz: &'a Gazetteer,
}

fn custom_types(intent: &IntentDef, gaz: &Gazetteer) -> Vec<u16> {
    let mut ids: Vec<u16> = intent
        .slots
        .iter()
        .filter_map(|s| gaz.type_id(&s.type_name))
        .collect();
    ids.sort_unstable();
    ids.dedup();
    ids
}

/// A message's tokens and the listed values among them, found once per
/// message and shared by the intent classifier's slot-type marks and each
/// intent's slot tagger.
pub struct Scanned {
    pub tokens: Vec<Token>,
    /// `Gazetteer::matches` of the folded tokens.
    pub matches: Vec<Match>,
}

impl Scanned {
    pub fn new(gaz: &Gazetteer, text: &str) -> Scanned {
        let tokens = tokenize(text);
        let matches = gaz.matches(&folded(&tokens));
        Scanned { tokens, matches }
    }

    pub fn folded(&self) -> Vec<&str> {
        folded(&self.tokens)
    }
}

fn folded(tokens: &[Token]) -> Vec<&str> {
    tokens.iter().map(|t| t.norm.as_str()).collect()
}

/// Gazetteer hits of the `types` as tagger features, per token.
fn marks(types: &[u16], scanned: &Scanned) -> Vec<Vec<u64>> {
    let mut out = vec![Vec::new(); scanned.tokens.len()];
    for m in &scanned.matches {
        if !types.contains(&m.type_id) {
            continue;
        }
        for (i, mark) in out.iter_mut().enumerate().take(m.end).skip(m.start) {
            let pos: &[u8] = if i == m.start { b"B" } else { b"I" };
            mark.push(hash(u64::from(m.type_id) + 101, pos));
        }
    }
    out
}

/// Expands the intent's templates and trains its tagger (`None` without slots).
pub fn train(intent: &IntentDef, ctx: &Ctx<'_>, seed: u64) -> Option<Tagger> {
    if intent.slots.is_empty() {
        return None;
    }
    let types = custom_types(intent, ctx.gaz);
    let templates: Vec<&String> = intent
        .utterances
        .iter()
        .chain(intent.slots.iter().flat_map(|s| &s.utterances))
        .collect();
    let with_slots = templates.iter().filter(|t| expand::is_template(t)).count();
    let repeats = TARGET_SENTENCES.div_ceil(with_slots.max(1)).clamp(1, 40);
    // One expansion of each template, from a random stream of its own (the
    // training's stays as it was), says how long a pass of them is.
    let mut probe = Rng::new(seed ^ 0x9e37_79b9);
    let pass: usize = templates
        .iter()
        .map(|t| expand::fill(t, intent, ctx.bot, &mut probe).text.len())
        .sum();
    let repeats = repeats.min((MAX_TRAINING_CHARS / pass.max(1)).max(1));
    let mut rng = Rng::new(seed);
    let mut sentences = Vec::new();
    for template in templates {
        let n = if expand::is_template(template) {
            repeats
        } else {
            1
        };
        for _ in 0..n {
            let ex = expand::fill(template, intent, ctx.bot, &mut rng);
            let scanned = Scanned::new(ctx.gaz, &ex.text);
            let tokens = &scanned.tokens;
            let mut gold = vec![0u16; tokens.len()];
            let mut m = marks(&types, &scanned);
            for &(start, end, slot) in &ex.spans {
                let inside: Vec<usize> = (0..tokens.len())
                    .filter(|&i| tokens[i].start >= start && tokens[i].end <= end)
                    .collect();
                // Hide the list sometimes so values not listed are still found.
                let hide = rng.chance(0.5);
                for (k, &i) in inside.iter().enumerate() {
                    gold[i] = (1 + 2 * slot + usize::from(k > 0)) as u16;
                    if hide {
                        m[i].clear();
                    }
                }
            }
            let features = tagger::token_features(&ex.text, tokens, &m);
            sentences.push(Sentence { features, gold });
        }
    }
    Some(Tagger::train(
        &sentences,
        1 + 2 * intent.slots.len(),
        EPOCHS,
        seed ^ 0x5eed,
    ))
}

/// The intent's slots that take values their type does not list: custom
/// types that keep the original value (unless a built-in parent such as
/// `AMAZON.Number` decides), and free-form input.
pub fn open_slots(intent: &IntentDef, bot: &BotDef) -> usize {
    let open = |type_name: &str| match bot.slot_types.get(type_name) {
        Some(custom) => {
            !custom.top_resolution
                && custom
                    .parent
                    .as_deref()
                    .is_none_or(|p| p == "AMAZON.FreeFormInput")
        }
        // Free-form input, the listed types (a value outside the list is
        // taken as said) and the types the engine does not know.
        None => {
            type_name == "AMAZON.FreeFormInput"
                || lists::values(type_name).is_some()
                || !builtins::recognised(type_name)
        }
    };
    intent.slots.iter().filter(|s| open(&s.type_name)).count()
}

/// Every slot of the intent, `None` where nothing was found.
pub fn extract(
    intent: &IntentDef,
    tagger: Option<&Tagger>,
    ctx: &Ctx<'_>,
    text: &str,
    scanned: &Scanned,
    today: Today,
    scan: bool,
) -> Slots {
    let mut slots: Slots = intent
        .slots
        .iter()
        .map(|s| (s.name.clone(), None))
        .collect();
    let Some(tagger) = tagger else { return slots };
    let tokens = &scanned.tokens;
    let m = marks(&custom_types(intent, ctx.gaz), scanned);
    let labels = tagger.tag(&tagger::token_features(text, tokens, &m));
    // A multi-valued slot gathers every span tagged for it.
    let mut lists: BTreeMap<usize, Vec<(usize, usize)>> = BTreeMap::new();
    for (start, end, slot) in tagger::spans(&labels) {
        let Some(def) = intent.slots.get(slot) else {
            continue;
        };
        if def.multiple {
            lists.entry(slot).or_default().push((start, end));
            continue;
        }
        if matches!(slots.get(&def.name), Some(Some(_))) {
            continue;
        }
        let span = &text[tokens[start].start..tokens[end - 1].end];
        if let Some(v) = resolve(def, span, ctx, today) {
            slots.insert(def.name.clone(), Some(v));
        }
    }
    for (slot, regions) in lists {
        let def = &intent.slots[slot];
        if let Some(v) = list_value(def, ctx, text, tokens, &regions, today) {
            slots.insert(def.name.clone(), Some(v));
        }
    }
    if scan {
        scan_unfilled(intent, ctx, text, tokens, today, &mut slots);
    }
    slots
}

/// Built-in and listed values the tagger missed, when only one slot of the
/// intent could take them.
fn scan_unfilled(
    intent: &IntentDef,
    ctx: &Ctx<'_>,
    text: &str,
    tokens: &[Token],
    today: Today,
    slots: &mut Slots,
) {
    for def in &intent.slots {
        if matches!(slots.get(&def.name), Some(Some(_))) {
            continue;
        }
        let unique = intent
            .slots
            .iter()
            .filter(|s| s.type_name == def.type_name)
            .count()
            == 1;
        if !unique {
            continue;
        }
        let found = if SCANNED.contains(&def.type_name.as_str()) {
            builtins::find(&def.type_name, text, today)
                .and_then(|(span, _)| resolve(def, &span, ctx, today))
        } else if ctx
            .bot
            .slot_types
            .get(&def.type_name)
            .is_some_and(|t| t.top_resolution)
        {
            listed(def, ctx, tokens, text, today)
        } else {
            None
        };
        if let Some(v) = found {
            slots.insert(def.name.clone(), Some(v));
        }
    }
}

fn listed(
    def: &SlotDef,
    ctx: &Ctx<'_>,
    tokens: &[Token],
    text: &str,
    today: Today,
) -> Option<SlotValue> {
    let type_id = ctx.gaz.type_id(&def.type_name)?;
    let folded: Vec<&str> = tokens.iter().map(|t| t.norm.as_str()).collect();
    if def.multiple {
        let regions: Vec<(usize, usize)> = type_matches(ctx, def, tokens)
            .iter()
            .map(|m| (m.start, m.end))
            .collect();
        return list_value(def, ctx, text, tokens, &regions, today);
    }
    let m = ctx.gaz.longest(type_id, &folded)?;
    resolve(
        def,
        &text[tokens[m.start].start..tokens[m.end - 1].end],
        ctx,
        today,
    )
}

/// The value of `slot` in an answer to its prompt.
pub fn answer(
    slot: &SlotDef,
    extracted: &Slots,
    ctx: &Ctx<'_>,
    text: &str,
    today: Today,
) -> Option<SlotValue> {
    if let Some(Some(v)) = extracted.get(&slot.name) {
        return Some(v.clone());
    }
    let tokens = tokenize(text);
    let own = format!("{{{}}}", slot.name);
    for template in slot
        .utterances
        .iter()
        .map(String::as_str)
        .chain([own.as_str()])
    {
        if let Some(span) = match_template(template, &slot.name, text, &tokens) {
            let found = if slot.multiple {
                let at = span.as_ptr() as usize - text.as_ptr() as usize;
                let inside: Vec<usize> = (0..tokens.len())
                    .filter(|&i| tokens[i].start >= at && tokens[i].end <= at + span.len())
                    .collect();
                match (inside.first(), inside.last()) {
                    (Some(&a), Some(&b)) => {
                        list_value(slot, ctx, text, &tokens, &[(a, b + 1)], today)
                    }
                    _ => None,
                }
            } else {
                resolve(slot, span, ctx, today)
            };
            if let Some(v) = found {
                return Some(v);
            }
        }
    }
    if let Some((span, _)) = builtins::find(&slot.type_name, text, today).filter(|_| !slot.multiple)
    {
        return resolve(slot, &span, ctx, today);
    }
    if ctx.bot.slot_types.contains_key(&slot.type_name) {
        if let Some(v) = listed(slot, ctx, &tokens, text, today) {
            return Some(v);
        }
    }
    None
}

/// `it's {place} please` against the answer: the text between the literal
/// prefix and suffix (compared on folded tokens).
fn match_template<'t>(
    template: &str,
    slot: &str,
    text: &'t str,
    tokens: &[Token],
) -> Option<&'t str> {
    let parts = expand::pieces(template);
    let at = parts.iter().position(|p| *p == Piece::Slot(slot))?;
    let words = |ps: &[Piece<'_>]| -> Option<Vec<String>> {
        let mut out = Vec::new();
        for p in ps {
            match p {
                Piece::Text(t) => out.extend(tokenize(t).into_iter().map(|t| t.norm)),
                Piece::Slot(_) => return None,
            }
        }
        Some(out)
    };
    let (before, after) = (words(&parts[..at])?, words(&parts[at + 1..])?);
    let n = tokens.len();
    if n <= before.len() + after.len() {
        return None;
    }
    let fits = |range: std::ops::Range<usize>, lit: &[String]| {
        tokens[range].iter().zip(lit).all(|(t, w)| t.norm == *w)
    };
    let tail = n - after.len();
    if !fits(0..before.len(), &before) || !fits(tail..n, &after) {
        return None;
    }
    text.get(tokens[before.len()].start..tokens[tail - 1].end)
}
