//! An intent's input and output contexts as Lex takes them: names of
//! letters, digits and single underscores; an output context's lifetime
//! within Lex's bounds.

use crate::nlu::local::json::Node;
use crate::nlu::local::model::OutputContext;
use crate::nlu::local::LoadError;

/// Lex's rule for context names: letters and digits, single underscores
/// between them, 1 to 100 characters.
fn valid_context_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 100
        && !name.starts_with('_')
        && !name.contains("__")
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// A context entry's `name`, checked against Lex's rule.
fn context_name<'a>(c: &Node<'a>) -> Result<&'a str, LoadError> {
    let name = c.req_str("name")?;
    match valid_context_name(name) {
        true => Ok(name),
        false => Err(c.error(
            "name",
            format!("`{name}` is not a context name (letters, digits and single underscores)"),
        )),
    }
}

pub fn input_contexts(node: Node<'_>) -> Result<Vec<String>, LoadError> {
    let mut out = Vec::new();
    for c in node.items("inputContexts")? {
        let c = c.node();
        let name = context_name(&c)?;
        out.push(name.to_string());
    }
    Ok(out)
}

pub fn output_contexts(node: Node<'_>) -> Result<Vec<OutputContext>, LoadError> {
    let mut out = Vec::new();
    for c in node.items("outputContexts")? {
        let c = c.node();
        let name = context_name(&c)?;
        // Lex's bounds: 5 s to a day, 1 to 20 turns.
        let seconds = c.opt_f64("timeToLiveInSeconds")?.unwrap_or(86_400.0);
        if !(5.0..=86_400.0).contains(&seconds) || seconds.fract() != 0.0 {
            return Err(c.error(
                "timeToLiveInSeconds",
                "must be a whole number of seconds from 5 to 86400",
            ));
        }
        let turns = c.opt_f64("turnsToLive")?.unwrap_or(20.0);
        if !(1.0..=20.0).contains(&turns) || turns.fract() != 0.0 {
            return Err(c.error(
                "turnsToLive",
                "must be a whole number of turns from 1 to 20",
            ));
        }
        out.push(OutputContext {
            name: name.to_string(),
            time_to_live_in_seconds: seconds as i64,
            turns_to_live: turns as u32,
        });
    }
    Ok(out)
}
