//! Lex's built-in slot types: sample values for training the tagger, and
//! the resolution of a span to Lex's interpreted value.

mod date;
pub mod lists;
mod number;
mod shape;

pub use date::Today;

/// Values used to expand `{slot}` references of a built-in type.
pub fn samples(type_name: &str) -> &'static [&'static str] {
    match type_name {
        "AMAZON.Number" => &[
            "1",
            "2",
            "3",
            "5",
            "10",
            "12",
            "25",
            "100",
            "250",
            "1000",
            "one",
            "two",
            "three",
            "five",
            "ten",
            "twenty",
            "fifty",
            "a hundred",
            "2.5",
            "500",
        ],
        "AMAZON.Date" => &[
            "today",
            "tomorrow",
            "monday",
            "friday",
            "next tuesday",
            "march 3rd",
            "july 4",
            "2026-12-01",
            "12/25",
            "the 5th of may",
            "saturday",
        ],
        "AMAZON.Time" => &[
            "3 pm",
            "10:30",
            "noon",
            "7 am",
            "8:15 pm",
            "midnight",
            "6 o'clock",
        ],
        "AMAZON.Confirmation" => &["yes", "no", "sure", "nope"],
        "AMAZON.AlphaNumeric" => &["A123", "XK42B", "abc123", "7HG2"],
        "AMAZON.EmailAddress" => &["jane@example.com", "bob.smith@mail.org"],
        "AMAZON.PhoneNumber" => &["555-123-4567", "+1 202 555 0199", "(415) 555-2671"],
        "AMAZON.FreeFormInput" => &["anything at all", "something else entirely"],
        "AMAZON.Percentage" => &["10 percent", "5%", "twenty percent", "50", "12.5%"],
        "AMAZON.Duration" => &[
            "five minutes",
            "an hour",
            "3 days",
            "2 hours and 30 minutes",
            "a week",
        ],
        "AMAZON.StreetName" => &[
            "main street",
            "fifth avenue",
            "baker street",
            "sunset boulevard",
            "elm road",
            "oak lane",
            "market street",
            "high street",
            "broadway",
            "park avenue",
        ],
        _ => &["paris", "new york", "the office", "main street"],
    }
}

/// Whether the engine knows the built-in type: by its shape or parser, or
/// from a list it ships ([`lists`]). Any other `AMAZON.*` type is accepted
/// as free text (and reported at load).
pub fn recognised(type_name: &str) -> bool {
    SHAPED.contains(&type_name) || lists::values(type_name).is_some()
}

/// The built-in types recognised by their shape or parser.
const SHAPED: [&str; 10] = [
    "AMAZON.Number",
    "AMAZON.Date",
    "AMAZON.Time",
    "AMAZON.Confirmation",
    "AMAZON.EmailAddress",
    "AMAZON.PhoneNumber",
    "AMAZON.AlphaNumeric",
    "AMAZON.FreeFormInput",
    "AMAZON.Percentage",
    "AMAZON.Duration",
];

/// Lex's interpreted value for `span` (already located in the utterance),
/// or `None` when the span is not a value of this type.
pub fn resolve(type_name: &str, span: &str, today: Today) -> Option<String> {
    let span = span.trim();
    if span.is_empty() {
        return None;
    }
    match type_name {
        "AMAZON.Number" => number::parse(span),
        "AMAZON.Date" => date::parse_date(span, today),
        "AMAZON.Time" => date::parse_time(span),
        "AMAZON.Confirmation" => confirmation(span).map(str::to_string),
        "AMAZON.EmailAddress" => email(span),
        "AMAZON.PhoneNumber" => phone(span),
        "AMAZON.Percentage" => shape::percentage(span),
        "AMAZON.Duration" => shape::duration(span),
        "AMAZON.AlphaNumeric" => {
            let compact: String = span.split_whitespace().collect();
            compact
                .chars()
                .all(|c| c.is_alphanumeric() || c == '-')
                .then_some(compact)
        }
        _ => Some(span.to_string()),
    }
}

/// Finds a value of the type anywhere in a free reply (when the person
/// answers a prompt with a sentence).
pub fn find(type_name: &str, text: &str, today: Today) -> Option<(String, String)> {
    if let Some(v) = resolve(type_name, text, today) {
        return Some((text.trim().to_string(), v));
    }
    let words: Vec<&str> = text.split_whitespace().collect();
    for len in (1..words.len().min(6)).rev() {
        for start in 0..=words.len() - len {
            let span = words[start..start + len].join(" ");
            let span =
                span.trim_matches(|c: char| c.is_ascii_punctuation() && c != '+' && c != '(');
            if let Some(v) = resolve(type_name, span, today) {
                return Some((span.to_string(), v));
            }
        }
    }
    None
}

pub fn confirmation(text: &str) -> Option<&'static str> {
    let folded = super::text::key(text);
    const YES: &[&str] = &[
        "yes",
        "yeah",
        "yep",
        "yup",
        "sure",
        "ok",
        "okay",
        "correct",
        "right",
        "confirm",
        "confirmed",
        "affirmative",
        "absolutely",
        "of course",
        "please do",
        "do it",
        "go ahead",
        "that's right",
        "y",
    ];
    const NO: &[&str] = &[
        "no",
        "nope",
        "nah",
        "cancel",
        "don't",
        "do not",
        "negative",
        "stop",
        "not now",
        "never mind",
        "nevermind",
        "n",
    ];
    let words: Vec<&str> = folded.split(' ').collect();
    let has = |list: &[&str]| {
        list.iter().any(|p| {
            folded == *p
                || folded.starts_with(&format!("{p} "))
                || (!p.contains(' ') && words.contains(p) && words.len() <= 4)
        })
    };
    match (has(NO), has(YES)) {
        (true, _) => Some("No"),
        (false, true) => Some("Yes"),
        _ => None,
    }
}

fn email(span: &str) -> Option<String> {
    let s = span.trim_end_matches('.');
    let (user, domain) = s.split_once('@')?;
    let ok = !user.is_empty()
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && s.chars()
            .all(|c| c.is_alphanumeric() || "@._+-".contains(c));
    ok.then(|| s.to_lowercase())
}

fn phone(span: &str) -> Option<String> {
    if !span
        .chars()
        .all(|c| c.is_ascii_digit() || " +-().".contains(c))
    {
        return None;
    }
    let digits: String = span.chars().filter(char::is_ascii_digit).collect();
    if !(7..=15).contains(&digits.len()) {
        return None;
    }
    Some(if span.trim_start().starts_with('+') {
        format!("+{digits}")
    } else {
        digits
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn today() -> Today {
        Today::from_ymd(2026, 11, 23)
    }

    #[test]
    fn resolves_simple_types() {
        assert_eq!(
            resolve("AMAZON.Number", "twenty five", today()).as_deref(),
            Some("25")
        );
        assert_eq!(
            resolve("AMAZON.Confirmation", "yes please", today()).as_deref(),
            Some("Yes")
        );
        assert_eq!(
            resolve("AMAZON.Confirmation", "no thanks", today()).as_deref(),
            Some("No")
        );
        assert_eq!(
            resolve("AMAZON.EmailAddress", "Jane@Example.com", today()).as_deref(),
            Some("jane@example.com")
        );
        assert_eq!(
            resolve("AMAZON.PhoneNumber", "(415) 555-2671", today()).as_deref(),
            Some("4155552671")
        );
        assert_eq!(
            resolve("AMAZON.AlphaNumeric", "AB 12", today()).as_deref(),
            Some("AB12")
        );
        assert_eq!(resolve("AMAZON.Number", "blue", today()), None);
    }

    #[test]
    fn finds_a_value_inside_a_sentence() {
        let (span, v) = find("AMAZON.Number", "make it 300 meters please", today()).expect("num");
        assert_eq!((span.as_str(), v.as_str()), ("300", "300"));
        let (_, d) = find("AMAZON.Date", "how about next friday then", today()).expect("date");
        assert_eq!(d, "2026-11-27");
    }
}
