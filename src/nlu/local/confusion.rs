//! `nlu eval --details`: per intent, how many cases were right, which intents
//! took the others and how many fell back, so a bot author sees what to add.

use serde::Serialize;
use std::collections::BTreeMap;

#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct IntentTally {
    pub cases: usize,
    pub correct: usize,
    /// Went to the fallback intent (which was not the expected one).
    pub fell_back: usize,
    /// Mistaken for these intents (fallback excluded), with counts.
    pub mistaken_for: BTreeMap<String, usize>,
}

#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct Confusion {
    /// By expected intent.
    pub intents: BTreeMap<String, IntentTally>,
    /// In-scope cases that went to the fallback intent.
    pub fell_back: usize,
}

impl Confusion {
    /// One case: the intent expected and the one that came out first.
    pub fn add(&mut self, expected: &str, predicted: &str, fallback: &str) {
        let tally = self.intents.entry(expected.to_string()).or_default();
        tally.cases += 1;
        if predicted == expected {
            tally.correct += 1;
        } else if predicted == fallback {
            tally.fell_back += 1;
            self.fell_back += 1;
        } else {
            *tally.mistaken_for.entry(predicted.to_string()).or_default() += 1;
        }
    }

    /// Intents with mistakes, most first, then the total that fell back.
    pub fn table(&self) -> String {
        let mut rows: Vec<(&String, &IntentTally)> = self
            .intents
            .iter()
            .filter(|(_, t)| t.correct < t.cases)
            .collect();
        rows.sort_by_key(|(name, t)| (std::cmp::Reverse(t.cases - t.correct), name.as_str()));
        let mut out =
            String::from("intent confusion (expected: right/cases, fell back, mistaken for)\n");
        if rows.is_empty() {
            out.push_str("  no mistakes\n");
        }
        for (name, t) in rows {
            let mut taken: Vec<(&String, &usize)> = t.mistaken_for.iter().collect();
            taken.sort_by_key(|&(n, c)| (std::cmp::Reverse(*c), n.as_str()));
            let taken: Vec<String> = taken.iter().map(|(n, c)| format!("{n} {c}")).collect();
            let taken = if taken.is_empty() {
                "-".to_string()
            } else {
                taken.join(", ")
            };
            out.push_str(&format!(
                "  {name}: {}/{}, fell back {}, mistaken for {taken}\n",
                t.correct, t.cases, t.fell_back
            ));
        }
        out.push_str(&format!("fell back in all: {}\n", self.fell_back));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_mistakes_by_intent_and_fallbacks_apart() {
        let mut c = Confusion::default();
        for (expected, predicted) in [
            ("Weather", "Weather"),
            ("Weather", "Music"),
            ("Weather", "Music"),
            ("Weather", "FallbackIntent"),
            ("Music", "Music"),
            ("FallbackIntent", "FallbackIntent"),
            ("FallbackIntent", "Music"),
        ] {
            c.add(expected, predicted, "FallbackIntent");
        }
        let weather = &c.intents["Weather"];
        assert_eq!(
            (weather.cases, weather.correct, weather.fell_back),
            (4, 1, 1)
        );
        assert_eq!(weather.mistaken_for["Music"], 2);
        assert_eq!(c.fell_back, 1);
        assert_eq!(c.intents["FallbackIntent"].mistaken_for["Music"], 1);
        let table = c.table();
        assert!(
            table.contains("  Weather: 1/4, fell back 1, mistaken for Music 2\n"),
            "{table}"
        );
        assert!(table.contains("  FallbackIntent: 1/2, fell back 0, mistaken for Music 1\n"));
        assert!(!table.contains("  Music:"), "no mistakes, no row: {table}");
        // The intent with more mistakes comes first.
        assert!(
            table.find("Weather").unwrap_or(usize::MAX)
                < table.find("FallbackIntent:").unwrap_or(0)
        );
        assert!(table.ends_with("fell back in all: 1\n"));
    }
}
