//! `AMAZON.Number`: digits or English number words.

pub fn parse(span: &str) -> Option<String> {
    let s = span.trim().trim_end_matches('.').replace(',', "");
    if let Ok(v) = s.parse::<f64>() {
        if v.is_finite() {
            return Some(s.trim_start_matches('+').to_string());
        }
    }
    words(&s.to_lowercase()).map(|n| n.to_string())
}

fn unit(w: &str) -> Option<i64> {
    const UNITS: [&str; 20] = [
        "zero",
        "one",
        "two",
        "three",
        "four",
        "five",
        "six",
        "seven",
        "eight",
        "nine",
        "ten",
        "eleven",
        "twelve",
        "thirteen",
        "fourteen",
        "fifteen",
        "sixteen",
        "seventeen",
        "eighteen",
        "nineteen",
    ];
    const TENS: [&str; 8] = [
        "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety",
    ];
    if let Some(i) = UNITS.iter().position(|u| *u == w) {
        return Some(i as i64);
    }
    TENS.iter()
        .position(|t| *t == w)
        .map(|i| (i as i64 + 2) * 10)
}

fn words(s: &str) -> Option<i64> {
    let mut total = 0i64;
    let mut current = 0i64;
    let mut any = false;
    let mut only_article = true;
    for w in s.split(|c: char| c.is_whitespace() || c == '-') {
        match w {
            "" | "and" => continue,
            "a" | "an" if !any => {
                current = 1;
                any = true;
                continue;
            }
            // Checked: "ten hundred hundred …" names no number an i64 holds.
            "hundred" => current = current.max(1).checked_mul(100)?,
            "thousand" | "million" => {
                let scale = if w == "thousand" { 1_000 } else { 1_000_000 };
                total = total.checked_add(current.max(1).checked_mul(scale)?)?;
                current = 0;
            }
            _ => current = current.checked_add(unit(w)?)?,
        }
        any = true;
        only_article = false;
    }
    (any && !only_article)
        .then(|| total.checked_add(current))
        .flatten()
}

#[cfg(test)]
mod tests {
    #[test]
    fn reads_digits_and_words() {
        assert_eq!(super::parse("1,500").as_deref(), Some("1500"));
        assert_eq!(super::parse("2.5").as_deref(), Some("2.5"));
        assert_eq!(super::parse("a hundred").as_deref(), Some("100"));
        assert_eq!(
            super::parse("two thousand three hundred and five").as_deref(),
            Some("2305")
        );
        assert_eq!(super::parse("forty-two").as_deref(), Some("42"));
        assert_eq!(super::parse("many"), None);
        assert_eq!(super::parse("a"), None);
        // More than an i64 holds names no number (it wrapped negative).
        let huge = format!("ten{}", " hundred".repeat(10));
        assert_eq!(super::parse(&huge), None);
    }
}
