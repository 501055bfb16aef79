//! Built-in slot types that need a list (`AMAZON.City`, `Country`,
//! `FirstName`, `LastName`, `State`): the lists ship in the binary (the
//! `lists/*.txt` files beside this one), a listed value resolves to its
//! canonical spelling, and anything else is still taken as said.

use std::sync::OnceLock;

/// One listed value and the other names it goes by.
#[derive(Debug, Clone, PartialEq)]
pub struct Listed {
    pub value: &'static str,
    pub synonyms: Vec<&'static str>,
}

const CITIES: &str = include_str!("lists/cities.txt");
const COUNTRIES: &str = include_str!("lists/countries.txt");
const FIRST_NAMES: &str = include_str!("lists/first_names.txt");
const LAST_NAMES: &str = include_str!("lists/last_names.txt");
const STATES: &str = include_str!("lists/states.txt");

/// The list behind a type name (Lex V2's names and the V1 names public
/// examples still use), and whether a span a typo or two away from a
/// listed value resolves to it (places yes; names no: Anne is not Anna).
fn source(type_name: &str) -> Option<(usize, &'static str, bool)> {
    Some(match type_name {
        "AMAZON.City" | "AMAZON.US_CITY" | "AMAZON.EUROPE_CITY" | "AMAZON.AT_CITY"
        | "AMAZON.DE_CITY" | "AMAZON.GB_CITY" => (0, CITIES, true),
        "AMAZON.Country" => (1, COUNTRIES, true),
        "AMAZON.FirstName"
        | "AMAZON.US_FIRST_NAME"
        | "AMAZON.GB_FIRST_NAME"
        | "AMAZON.DE_FIRST_NAME" => (2, FIRST_NAMES, false),
        "AMAZON.LastName" => (3, LAST_NAMES, false),
        "AMAZON.State" | "AMAZON.US_STATE" => (4, STATES, true),
        _ => return None,
    })
}

/// Every type name with a shipped list.
#[cfg(test)]
const LISTED: [&str; 14] = [
    "AMAZON.City",
    "AMAZON.US_CITY",
    "AMAZON.EUROPE_CITY",
    "AMAZON.AT_CITY",
    "AMAZON.DE_CITY",
    "AMAZON.GB_CITY",
    "AMAZON.Country",
    "AMAZON.FirstName",
    "AMAZON.US_FIRST_NAME",
    "AMAZON.GB_FIRST_NAME",
    "AMAZON.DE_FIRST_NAME",
    "AMAZON.LastName",
    "AMAZON.State",
    "AMAZON.US_STATE",
];

fn parse(text: &'static str) -> Vec<Listed> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| {
            let mut names = l.split('|').map(str::trim).filter(|n| !n.is_empty());
            Listed {
                value: names.next().unwrap_or(l),
                synonyms: names.collect(),
            }
        })
        .collect()
}

/// The list for a type, parsed once.
pub fn values(type_name: &str) -> Option<&'static [Listed]> {
    static PARSED: [OnceLock<Vec<Listed>>; 5] = [
        OnceLock::new(),
        OnceLock::new(),
        OnceLock::new(),
        OnceLock::new(),
        OnceLock::new(),
    ];
    let (i, text, _) = source(type_name)?;
    Some(PARSED[i].get_or_init(|| parse(text)).as_slice())
}

/// Whether a near miss (a typo) of a listed value resolves to it.
pub fn fuzzy(type_name: &str) -> bool {
    source(type_name).is_some_and(|(_, _, fuzzy)| fuzzy)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_lists_are_there_and_well_formed() {
        for (name, at_least) in [
            ("AMAZON.City", 300),
            ("AMAZON.Country", 190),
            ("AMAZON.FirstName", 300),
            ("AMAZON.LastName", 200),
            ("AMAZON.US_STATE", 50),
        ] {
            let list = values(name).expect(name);
            assert!(list.len() >= at_least, "{name}: {}", list.len());
            let mut seen = std::collections::HashSet::new();
            for v in list {
                assert!(
                    seen.insert(v.value.to_lowercase()),
                    "{name}: {} twice",
                    v.value
                );
            }
        }
        let us = values("AMAZON.Country")
            .unwrap()
            .iter()
            .find(|v| v.value == "United States")
            .expect("United States");
        assert!(us.synonyms.contains(&"USA"));
        // Words people say for other things are not names of places here.
        for word in ["in", "or", "me", "ok", "us", "split"] {
            for name in LISTED {
                let hit = values(name).unwrap().iter().any(|v| {
                    v.value.eq_ignore_ascii_case(word)
                        || v.synonyms.iter().any(|s| s.eq_ignore_ascii_case(word))
                });
                assert!(!hit, "{name} lists `{word}`");
            }
        }
        assert!(values("AMAZON.Airport").is_none());
    }
}
