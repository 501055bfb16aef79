//! Multi-valued slots: the regions tagged for such a slot widened over the
//! listed values beside them, split into items at separators, each item
//! resolved on its own, and the items joined into Lex's list value.

use super::values::resolve;
use super::Ctx;
use crate::nlu::local::builtins::Today;
use crate::nlu::local::gazetteer::Match;
use crate::nlu::local::model::SlotDef;
use crate::nlu::local::text::{clean_value, Token};
use crate::nlu::reply::SlotValue;

/// The longest item the list does not have that a list may carry between
/// two it has.
const WORDS_PER_ITEM: usize = 3;

/// What separates the items of a list: Lex takes commas, `and` and spaces.
fn is_separator(token: &Token) -> bool {
    matches!(token.norm.as_str(), "," | ";" | "and" | "&" | "plus")
}

/// The slot type's listed values in the tokens.
pub fn type_matches(ctx: &Ctx<'_>, def: &SlotDef, tokens: &[Token]) -> Vec<Match> {
    let Some(id) = ctx.gaz.type_id(&def.type_name) else {
        return Vec::new();
    };
    let folded: Vec<&str> = tokens.iter().map(|t| t.norm.as_str()).collect();
    ctx.gaz
        .matches(&folded)
        .into_iter()
        .filter(|m| m.type_id == id)
        .collect()
}

/// Widens a tagged region over the listed values next to it, with or
/// without separators between (`pepperoni` in `pepperoni, ham and olives`).
fn widen(
    matches: &[Match],
    tokens: &[Token],
    (mut start, mut end): (usize, usize),
) -> (usize, usize) {
    let listed_at = |k: usize| matches.iter().filter(|m| m.start == k).map(|m| m.end).max();
    loop {
        let mut k = end;
        while k < tokens.len() && is_separator(&tokens[k]) {
            k += 1;
        }
        if let Some(next) = listed_at(k) {
            end = next;
            continue;
        }
        // An item the list does not have, between separators, when a
        // listed one follows (`ham, anchovies and olives`).
        if k == end {
            break;
        }
        let stop =
            (k..tokens.len().min(k + WORDS_PER_ITEM + 1)).find(|&j| is_separator(&tokens[j]));
        let Some(mut j) = stop.filter(|&j| j > k) else {
            break;
        };
        while j < tokens.len() && is_separator(&tokens[j]) {
            j += 1;
        }
        match listed_at(j) {
            Some(next) => end = next,
            None => break,
        }
    }
    loop {
        let mut k = start;
        while k > 0 && is_separator(&tokens[k - 1]) {
            k -= 1;
        }
        match matches.iter().filter(|m| m.end == k).map(|m| m.start).min() {
            Some(before) => start = before,
            None => break,
        }
    }
    (start, end)
}

/// The items of a region: listed values (longest first, so `salt and
/// pepper` stays whole when it is listed) and, between separators, what
/// is not listed.
fn items(matches: &[Match], tokens: &[Token], (start, end): (usize, usize)) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut chunk: Option<usize> = None;
    let mut i = start;
    while i < end {
        if is_separator(&tokens[i]) {
            if let Some(c) = chunk.take() {
                out.push((c, i));
            }
            i += 1;
            continue;
        }
        let listed = matches
            .iter()
            .filter(|m| m.start == i && m.end <= end)
            .map(|m| m.end)
            .max();
        if let Some(stop) = listed {
            if let Some(c) = chunk.take() {
                out.push((c, i));
            }
            out.push((i, stop));
            i = stop;
            continue;
        }
        chunk.get_or_insert(i);
        i += 1;
    }
    if let Some(c) = chunk {
        out.push((c, end));
    }
    out
}

/// A multi-valued slot's value from the token regions found for it: each
/// item resolved on its own (those the type rejects left out, repeats once).
pub fn list_value(
    def: &SlotDef,
    ctx: &Ctx<'_>,
    text: &str,
    tokens: &[Token],
    regions: &[(usize, usize)],
    today: Today,
) -> Option<SlotValue> {
    let matches = type_matches(ctx, def, tokens);
    let mut values: Vec<SlotValue> = Vec::new();
    let mut bounds: Option<(usize, usize)> = None;
    let mut regions: Vec<(usize, usize)> = regions
        .iter()
        .map(|&r| widen(&matches, tokens, r))
        .collect();
    regions.sort_unstable();
    regions.dedup();
    let mut covered = 0;
    for region in regions {
        let region = (region.0.max(covered), region.1);
        if region.0 >= region.1 {
            continue;
        }
        covered = region.1;
        for (a, b) in items(&matches, tokens, region) {
            let span = &text[tokens[a].start..tokens[b - 1].end];
            let Some(v) = resolve(def, span, ctx, today) else {
                continue;
            };
            if !values
                .iter()
                .any(|x| x.interpreted_value == v.interpreted_value)
            {
                values.push(v);
            }
            let (from, to) = bounds.unwrap_or((tokens[a].start, tokens[b - 1].end));
            bounds = Some((from.min(tokens[a].start), to.max(tokens[b - 1].end)));
        }
    }
    let (from, to) = bounds?;
    Some(list_of(values, &text[from..to]))
}

/// Lex's value of a multi-valued slot: the items in `values`, and as the
/// slot's own value what was said and the items joined (`pepperoni and
/// pineapple`; `ham, olives and onions`).
pub fn list_of(values: Vec<SlotValue>, said: &str) -> SlotValue {
    let names: Vec<&str> = values
        .iter()
        .map(|v| v.interpreted_value.as_str())
        .collect();
    let joined = match names.split_last() {
        None => String::new(),
        Some((last, [])) => last.to_string(),
        Some((last, rest)) => format!("{} and {last}", rest.join(", ")),
    };
    SlotValue {
        original_value: clean_value(said).to_string(),
        interpreted_value: joined.clone(),
        resolved_values: vec![joined],
        values,
    }
}
