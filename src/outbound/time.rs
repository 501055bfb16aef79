//! Times as the API shows them: RFC 3339 in UTC, millisecond precision.

use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

/// Epoch milliseconds from an RFC 3339 timestamp (`2026-12-01T09:00:00Z`).
pub fn parse_timestamp(text: &str) -> Result<i64, String> {
    let at = OffsetDateTime::parse(text.trim(), &Rfc3339).map_err(|_| {
        format!("{text:?} is not an RFC 3339 timestamp such as 2026-12-01T09:00:00Z")
    })?;
    Ok((at.unix_timestamp_nanos() / 1_000_000) as i64)
}

/// An RFC 3339 UTC timestamp for epoch milliseconds.
pub fn format_timestamp(ms: i64) -> String {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .ok()
        .and_then(|at| at.format(&Rfc3339).ok())
        .unwrap_or_else(|| ms.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_round_trip_in_utc() {
        assert_eq!(
            parse_timestamp("2027-01-15T08:00:00Z"),
            Ok(1_800_000_000_000)
        );
        assert_eq!(
            parse_timestamp("2027-01-15T09:00:00+01:00"),
            Ok(1_800_000_000_000)
        );
        assert_eq!(format_timestamp(1_800_000_000_000), "2027-01-15T08:00:00Z");
        assert_eq!(
            format_timestamp(1_800_000_000_123),
            "2027-01-15T08:00:00.123Z"
        );
        assert!(parse_timestamp("tomorrow").is_err());
    }
}
