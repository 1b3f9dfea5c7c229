//! `Retry-After` header parsing.

use std::time::Duration;

use jiff::Timestamp;
use jiff::fmt::rfc2822::DateTimeParser;

/// Parses a `Retry-After` value: either a whole number of seconds or an HTTP
/// date (RFC 1123 / IMF-fixdate, e.g. `Sun, 06 Nov 1994 08:49:37 GMT`),
/// taken relative to `now` and rounded up to whole seconds.
///
/// Delays in the past (or negative second counts) become zero; an empty or
/// unreadable value gives `None`.
pub(crate) fn parse_retry_after(value: &str, now: Timestamp) -> Option<Duration> {
    let value = value.trim();
    if value.is_empty() {
        return None;
    }
    if let Ok(secs) = value.parse::<i64>() {
        return Some(Duration::from_secs(secs.max(0).unsigned_abs()));
    }
    let at = DateTimeParser::new().parse_timestamp(value).ok()?;
    let delta = at.duration_since(now);
    if delta.is_negative() || delta.is_zero() {
        return Some(Duration::ZERO);
    }
    let mut secs = delta.as_secs().unsigned_abs();
    if delta.subsec_nanos() != 0 {
        secs += 1;
    }
    Some(Duration::from_secs(secs))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> Timestamp {
        "2024-01-10T10:34:40Z".parse().unwrap()
    }

    #[test]
    fn integer_seconds() {
        assert_eq!(parse_retry_after("5", now()), Some(Duration::from_secs(5)));
        assert_eq!(
            parse_retry_after(" 120 ", now()),
            Some(Duration::from_secs(120))
        );
        assert_eq!(parse_retry_after("0", now()), Some(Duration::ZERO));
        assert_eq!(parse_retry_after("-3", now()), Some(Duration::ZERO));
    }

    #[test]
    fn http_date() {
        assert_eq!(
            parse_retry_after("Wed, 10 Jan 2024 10:34:45 GMT", now()),
            Some(Duration::from_secs(5))
        );
        // In the past.
        assert_eq!(
            parse_retry_after("Wed, 10 Jan 2024 10:30:00 GMT", now()),
            Some(Duration::ZERO)
        );
    }

    #[test]
    fn http_date_rounds_up() {
        let now: Timestamp = "2024-01-10T10:34:40.2Z".parse().unwrap();
        assert_eq!(
            parse_retry_after("Wed, 10 Jan 2024 10:34:45 GMT", now),
            Some(Duration::from_secs(5))
        );
    }

    #[test]
    fn garbage_is_none() {
        assert_eq!(parse_retry_after("", now()), None);
        assert_eq!(parse_retry_after("soon", now()), None);
        assert_eq!(parse_retry_after("1.5", now()), None);
        assert_eq!(parse_retry_after("Wed, 99 Foo 2024", now()), None);
    }
}
