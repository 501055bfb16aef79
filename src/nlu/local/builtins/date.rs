//! `AMAZON.Date` and `AMAZON.Time`: relative and explicit expressions to
//! ISO-8601 (`2026-11-24`, `15:30`).

use super::number;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Date {
    pub year: i64,
    pub month: u32,
    pub day: u32,
}

/// The reference day for relative dates (UTC).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Today {
    days: i64,
}

impl Today {
    pub fn now() -> Self {
        let secs = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        Today {
            days: (secs / 86_400) as i64,
        }
    }

    pub fn from_ymd(year: i64, month: u32, day: u32) -> Self {
        Today {
            days: days_from_civil(year, month, day),
        }
    }

    fn date(self) -> Date {
        civil_from_days(self.days)
    }

    /// 0 = Monday.
    fn weekday(self) -> i64 {
        (self.days + 3).rem_euclid(7)
    }
}

/// How many days ahead or back a relative date may be: a hundred years.
const MAX_DAYS_AHEAD: i64 = 36_525;

/// Whether the calendar has `day` in `month` of `year` (2026-02-31 is no
/// date).
fn exists(year: i64, month: u32, day: u32) -> bool {
    let month = u8::try_from(month)
        .ok()
        .and_then(|m| time::Month::try_from(m).ok());
    match (i32::try_from(year), month, u8::try_from(day)) {
        (Ok(year), Some(month), Ok(day)) => {
            time::Date::from_calendar_date(year, month, day).is_ok()
        }
        _ => false,
    }
}

fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(z: i64) -> Date {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    Date { year, month, day }
}

fn iso(d: Date) -> String {
    format!("{:04}-{:02}-{:02}", d.year, d.month, d.day)
}

const WEEKDAYS: [&str; 7] = [
    "monday",
    "tuesday",
    "wednesday",
    "thursday",
    "friday",
    "saturday",
    "sunday",
];
const MONTHS: [&str; 12] = [
    "january",
    "february",
    "march",
    "april",
    "may",
    "june",
    "july",
    "august",
    "september",
    "october",
    "november",
    "december",
];

fn month_of(w: &str) -> Option<u32> {
    MONTHS
        .iter()
        .position(|m| *m == w || (w.len() >= 3 && m.starts_with(w)))
        .map(|i| i as u32 + 1)
}

fn day_of(w: &str) -> Option<u32> {
    let digits = w.trim_end_matches(|c: char| c.is_ascii_alphabetic());
    let d: u32 = if digits.is_empty() {
        ordinal_word(w)?
    } else {
        digits.parse().ok()?
    };
    (1..=31).contains(&d).then_some(d)
}

fn ordinal_word(w: &str) -> Option<u32> {
    const ORD: [&str; 10] = [
        "first", "second", "third", "fourth", "fifth", "sixth", "seventh", "eighth", "ninth",
        "tenth",
    ];
    ORD.iter().position(|o| *o == w).map(|i| i as u32 + 1)
}

pub fn parse_date(span: &str, today: Today) -> Option<String> {
    let s = super::super::text::key(span);
    let words: Vec<&str> = s
        .split(' ')
        .filter(|w| !matches!(*w, "on" | "the" | "of" | "," | "this" | "for"))
        .collect();
    let rel = |n: i64| Some(iso(civil_from_days(today.days + n)));
    match words.as_slice() {
        ["today"] | ["tonight"] => return rel(0),
        ["tomorrow"] => return rel(1),
        ["yesterday"] => return rel(-1),
        ["day", "after", "tomorrow"] => return rel(2),
        ["in", n, unit] if unit.starts_with("day") || unit.starts_with("week") => {
            let n: i64 = number::parse(n)?.parse().ok()?;
            let days = if unit.starts_with("week") {
                n.checked_mul(7)?
            } else {
                n
            };
            // Beyond the years a date names (and the calendar's arithmetic).
            if days.abs() > MAX_DAYS_AHEAD {
                return None;
            }
            return rel(days);
        }
        _ => {}
    }
    let (next, rest) = match words.as_slice() {
        ["next", rest @ ..] => (true, rest),
        rest => (false, rest),
    };
    if let [w] = rest {
        if let Some(i) = WEEKDAYS.iter().position(|d| d == w) {
            let mut ahead = (i as i64 - today.weekday()).rem_euclid(7);
            if next && ahead == 0 {
                ahead = 7;
            }
            return rel(ahead);
        }
    }
    explicit(span.trim(), &words, today)
}

fn explicit(raw: &str, words: &[&str], today: Today) -> Option<String> {
    let now = today.date();
    let parts: Vec<&str> = raw.split(['-', '/']).collect();
    let nums: Option<Vec<i64>> = parts.iter().map(|p| p.trim().parse().ok()).collect();
    // A month or day that does not fit is no date (not one cut to 32 bits).
    let md = |m: &i64, d: &i64| Some((u32::try_from(*m).ok()?, u32::try_from(*d).ok()?));
    let (year, month, day, has_year) = match (nums.as_deref(), words) {
        (Some([y, m, d]), _) if raw.contains('-') && *y > 31 => {
            let (m, d) = md(m, d)?;
            (*y, m, d, true)
        }
        (Some([m, d, y]), _) if raw.contains('/') => {
            let (m, d) = md(m, d)?;
            (if *y < 100 { 2000 + y } else { *y }, m, d, true)
        }
        (Some([m, d]), _) if raw.contains('/') => {
            let (m, d) = md(m, d)?;
            (now.year, m, d, false)
        }
        (_, [m, d, rest @ ..]) if month_of(m).is_some() && rest.len() <= 1 => {
            let year = year_of(rest.first(), now.year)?;
            (year, month_of(m)?, day_of(d)?, !rest.is_empty())
        }
        (_, [d, m, rest @ ..]) if month_of(m).is_some() && rest.len() <= 1 => {
            let year = year_of(rest.first(), now.year)?;
            (year, month_of(m)?, day_of(d)?, !rest.is_empty())
        }
        _ => return None,
    };
    if !(1..=9999).contains(&year) || !exists(year, month, day) {
        return None;
    }
    let date = Date { year, month, day };
    // A date without a year that already passed means next year, as Lex does.
    if !has_year && days_from_civil(year, month, day) < today.days {
        return Some(iso(Date {
            year: year + 1,
            ..date
        }));
    }
    Some(iso(date))
}

fn year_of(w: Option<&&str>, default: i64) -> Option<i64> {
    match w {
        None => Some(default),
        Some(y) => y.parse().ok().filter(|y| (1900..=2200).contains(y)),
    }
}

pub fn parse_time(span: &str) -> Option<String> {
    let s = super::super::text::key(span)
        .replace("o'clock", "")
        .replace('.', "");
    let s = s.trim().trim_start_matches("at ").trim();
    match s {
        "noon" | "midday" => return Some("12:00".into()),
        "midnight" => return Some("00:00".into()),
        _ => {}
    }
    let (body, pm) = if let Some(b) = s.strip_suffix("pm").or_else(|| s.strip_suffix("p m")) {
        (b.trim(), Some(true))
    } else if let Some(b) = s.strip_suffix("am").or_else(|| s.strip_suffix("a m")) {
        (b.trim(), Some(false))
    } else {
        (s, None)
    };
    let (h, m) = match body.split_once(':') {
        Some((h, m)) => (h.trim().parse::<u32>().ok()?, m.trim().parse::<u32>().ok()?),
        None => (number::parse(body)?.parse::<u32>().ok()?, 0),
    };
    let h = match pm {
        Some(true) if h < 12 => h + 12,
        Some(false) if h == 12 => 0,
        _ => h,
    };
    (h < 24 && m < 60).then(|| format!("{h:02}:{m:02}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn today() -> Today {
        Today::from_ymd(2026, 11, 23) // a Monday
    }

    #[test]
    fn dates_that_do_not_exist_are_no_dates() {
        let d = |s| parse_date(s, today());
        assert_eq!(d("2026-02-31"), None);
        assert_eq!(d("2026-04-31"), None);
        assert_eq!(d("2028-02-29").as_deref(), Some("2028-02-29"));
        assert_eq!(d("2026-02-29"), None);
        // Not cut to 32 bits (4294967298 became 2), nor past any calendar.
        assert_eq!(d("2026-4294967298-05"), None);
        assert_eq!(d("in 9223372036854775807 days"), None);
        assert_eq!(d("in 2000000000000000000 weeks"), None);
        assert_eq!(d("99999999999-01-01"), None);
        assert_eq!(d("in 3 weeks").as_deref(), Some("2026-12-14"));
    }

    #[test]
    fn relative_and_explicit_dates() {
        let d = |s| parse_date(s, today());
        assert_eq!(d("today").as_deref(), Some("2026-11-23"));
        assert_eq!(d("tomorrow").as_deref(), Some("2026-11-24"));
        assert_eq!(d("friday").as_deref(), Some("2026-11-27"));
        assert_eq!(d("next monday").as_deref(), Some("2026-11-30"));
        assert_eq!(d("march 3rd").as_deref(), Some("2027-03-03"));
        assert_eq!(d("the 5th of december").as_deref(), Some("2026-12-05"));
        assert_eq!(d("2026-12-01").as_deref(), Some("2026-12-01"));
        assert_eq!(d("12/25").as_deref(), Some("2026-12-25"));
        assert_eq!(d("in 3 days").as_deref(), Some("2026-11-26"));
        assert_eq!(d("banana"), None);
    }

    #[test]
    fn times() {
        assert_eq!(parse_time("3 pm").as_deref(), Some("15:00"));
        assert_eq!(parse_time("8:15 pm").as_deref(), Some("20:15"));
        assert_eq!(parse_time("noon").as_deref(), Some("12:00"));
        assert_eq!(parse_time("12 am").as_deref(), Some("00:00"));
        assert_eq!(parse_time("10:30").as_deref(), Some("10:30"));
        assert_eq!(parse_time("later"), None);
    }
}
