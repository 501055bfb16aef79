//! Built-in types recognised by their shape: `AMAZON.Percentage` (`10
//! percent` -> `10%`, a bare number stays a number) and `AMAZON.Duration`
//! (`two hours and 30 minutes` -> ISO-8601 `PT2H30M`).

use super::number;

pub fn percentage(span: &str) -> Option<String> {
    let s = span.trim().to_lowercase();
    let (num, percent) = if let Some(n) = s.strip_suffix('%') {
        (n, true)
    } else if let Some(n) = s.strip_suffix("per cent") {
        (n, true)
    } else if let Some(n) = s.strip_suffix("percent") {
        (n, true)
    } else {
        (s.as_str(), false)
    };
    let n = number::parse(num.trim())?;
    Some(if percent { format!("{n}%") } else { n })
}

/// (unit words, ISO-8601 designator, whether it belongs after the `T`).
const UNITS: [(&[&str], char, bool); 7] = [
    (&["year", "years", "yr", "yrs"], 'Y', false),
    (&["month", "months"], 'M', false),
    (&["week", "weeks", "wk", "wks"], 'W', false),
    (&["day", "days"], 'D', false),
    (&["hour", "hours", "hr", "hrs", "h"], 'H', true),
    (&["minute", "minutes", "min", "mins"], 'M', true),
    (&["second", "seconds", "sec", "secs", "s"], 'S', true),
];

/// Amounts with units, e.g. `an hour`, `3 days`, `1 hour and 15 minutes`.
pub fn duration(span: &str) -> Option<String> {
    let lower = span.trim().to_lowercase();
    let words: Vec<&str> = lower
        .split(|c: char| c.is_whitespace() || c == ',')
        .filter(|w| !w.is_empty() && *w != "and" && *w != "for")
        .collect();
    let mut amounts: Vec<Option<String>> = vec![None; UNITS.len()];
    let mut pending: Vec<&str> = Vec::new();
    let mut any = false;
    for w in words {
        if let Some(u) = UNITS.iter().position(|(names, _, _)| names.contains(&w)) {
            let amount = match pending.as_slice() {
                [] => return None,
                ["a"] | ["an"] | ["one"] => "1".to_string(),
                words => number::parse(&words.join(" "))?,
            };
            if amounts[u].is_some() || amount.starts_with('-') {
                return None;
            }
            amounts[u] = Some(amount);
            pending.clear();
            any = true;
        } else {
            pending.push(w);
        }
    }
    if !any || !pending.is_empty() {
        return None;
    }
    let mut out = String::from("P");
    let mut timed = false;
    for ((_, designator, time), amount) in UNITS.iter().zip(&amounts) {
        if let Some(a) = amount {
            if *time && !timed {
                out.push('T');
                timed = true;
            }
            out.push_str(a);
            out.push(*designator);
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentages_keep_the_sign_a_bare_number_stays_a_number() {
        assert_eq!(percentage("10 percent").as_deref(), Some("10%"));
        assert_eq!(percentage("twenty percent").as_deref(), Some("20%"));
        assert_eq!(percentage("12.5%").as_deref(), Some("12.5%"));
        assert_eq!(percentage("5").as_deref(), Some("5"));
        assert_eq!(percentage("lots"), None);
        assert_eq!(percentage("percent"), None);
    }

    #[test]
    fn durations_are_iso_8601() {
        assert_eq!(duration("five minutes").as_deref(), Some("PT5M"));
        assert_eq!(duration("an hour").as_deref(), Some("PT1H"));
        assert_eq!(
            duration("2 hours and 30 minutes").as_deref(),
            Some("PT2H30M")
        );
        assert_eq!(duration("3 days").as_deref(), Some("P3D"));
        assert_eq!(
            duration("1 week, 2 days and 4 hours").as_deref(),
            Some("P1W2DT4H")
        );
        assert_eq!(duration("minutes"), None);
        assert_eq!(duration("5 minutes 5 minutes"), None);
        assert_eq!(duration("five"), None);
        assert_eq!(duration("5 minutes please"), None);
    }
}
