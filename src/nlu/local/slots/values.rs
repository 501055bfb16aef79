//! What a span is worth as a slot's value: resolved by the slot's type
//! (built-in parser, listed built-in type, or custom values and synonyms),
//! and a default value taken the same way.

use super::multi_valued::list_of;
use super::Ctx;
use crate::nlu::local::builtins::{self, lists, Today};
use crate::nlu::local::model::SlotDef;
use crate::nlu::local::text::clean_value;
use crate::nlu::reply::SlotValue;

/// Lex's `Slot.value` for a span, or `None` when the type rejects it.
pub fn resolve(def: &SlotDef, span: &str, ctx: &Ctx<'_>, today: Today) -> Option<SlotValue> {
    let original = clean_value(span);
    if original.is_empty() {
        return None;
    }
    let value = |interpreted: String, resolved: Vec<String>| SlotValue {
        original_value: original.to_string(),
        interpreted_value: interpreted,
        resolved_values: resolved,
        values: Vec::new(),
    };
    let Some(custom) = ctx.bot.slot_types.get(&def.type_name) else {
        // A listed built-in type: the listed spelling, or the value as said.
        if lists::values(&def.type_name).is_some() {
            let fuzzy = lists::fuzzy(&def.type_name);
            let bare = original
                .get(..4)
                .filter(|the| the.eq_ignore_ascii_case("the "))
                .map_or(original, |_| original[4..].trim_start());
            let v = ctx
                .gaz
                .type_id(&def.type_name)
                .and_then(|id| {
                    ctx.gaz
                        .resolve(id, original, fuzzy)
                        .or_else(|| ctx.gaz.resolve(id, bare, fuzzy))
                })
                .unwrap_or(original)
                .to_string();
            return Some(value(v.clone(), vec![v]));
        }
        let v = builtins::resolve(&def.type_name, original, today)?;
        return Some(value(v.clone(), vec![v]));
    };
    let base = match &custom.parent {
        Some(parent) => builtins::resolve(parent, original, today)?,
        None => original.to_string(),
    };
    if let Some(re) = &custom.regex {
        if !re.is_match(&base) {
            return None;
        }
    }
    let canonical = ctx
        .gaz
        .type_id(&custom.name)
        .and_then(|id| ctx.gaz.resolve(id, original, custom.top_resolution))
        .map(str::to_string);
    match (custom.top_resolution, canonical) {
        (true, Some(c)) => Some(value(c.clone(), vec![c])),
        (true, None) if custom.values.is_empty() => Some(value(base.clone(), vec![base])),
        (true, None) => None,
        (false, c) => Some(value(base, c.into_iter().collect())),
    }
}

/// A default value (`defaultValueSpecification`) as the slot's value, or
/// `None` when its type does not take it; a multi-valued slot gets a list
/// of one.
pub fn resolve_default(def: &SlotDef, raw: &str, ctx: &Ctx<'_>, today: Today) -> Option<SlotValue> {
    let v = resolve(def, raw, ctx, today)?;
    Some(if def.multiple {
        let original = v.original_value.clone();
        list_of(vec![v], &original)
    } else {
        v
    })
}
