//! The time the service stamps rows and requests with.

/// Milliseconds since the Unix epoch: the one time format in both databases.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}
