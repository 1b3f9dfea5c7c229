//! Go `time.Duration` text format, as used by `spec.hooks.*.webhook.timeout`.
//!
//! Kubernetes stores the field as the string the user wrote (`10s`, `1m30s`,
//! `500ms`, `1.5h`). Metacontroller parses it with Go's `time.ParseDuration`
//! and, when it re-encodes a controller object, prints it with
//! `time.Duration.String`. Both directions are reproduced here.

use std::fmt;
use std::time::Duration;

/// Default hook timeout used when `webhook.timeout` is absent or not positive.
pub const DEFAULT_HOOK_TIMEOUT: Duration = Duration::from_secs(10);

const NANOS_PER_MICRO: u64 = 1_000;
const NANOS_PER_MILLI: u64 = 1_000_000;
const NANOS_PER_SEC: u64 = 1_000_000_000;
const NANOS_PER_MIN: u64 = 60 * NANOS_PER_SEC;
const NANOS_PER_HOUR: u64 = 60 * NANOS_PER_MIN;

/// A signed duration with nanosecond resolution and the range of Go's
/// `time.Duration` (an `i64` count of nanoseconds).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct GoDuration {
    nanos: i64,
}

/// Why a duration string was rejected.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DurationError {
    /// The text does not follow the `[-+]?(<number><unit>)+` grammar.
    #[error("time: invalid duration {0:?}")]
    Invalid(String),
    /// A number is not followed by a unit.
    #[error("time: missing unit in duration {0:?}")]
    MissingUnit(String),
    /// The unit is not one of `ns`, `us`, `µs`, `μs`, `ms`, `s`, `m`, `h`.
    #[error("time: unknown unit {unit:?} in duration {input:?}")]
    UnknownUnit {
        /// The offending unit.
        unit: String,
        /// The whole input.
        input: String,
    },
    /// The value does not fit into a signed 64-bit nanosecond count.
    #[error("time: invalid duration {0:?}")]
    Overflow(String),
}

impl GoDuration {
    /// The zero duration.
    pub const ZERO: GoDuration = GoDuration { nanos: 0 };

    /// Builds a duration from a signed nanosecond count.
    pub const fn from_nanos(nanos: i64) -> Self {
        GoDuration { nanos }
    }

    /// Signed nanosecond count.
    pub const fn as_nanos(self) -> i64 {
        self.nanos
    }

    /// `true` when the duration is strictly greater than zero.
    pub const fn is_positive(self) -> bool {
        self.nanos > 0
    }

    /// The duration as a [`std::time::Duration`], or `None` when negative.
    pub fn to_std(self) -> Option<Duration> {
        u64::try_from(self.nanos).ok().map(Duration::from_nanos)
    }

    /// Parses the Go duration syntax (`time.ParseDuration`): an optional sign
    /// followed by one or more decimal numbers, each with an optional fraction
    /// and a mandatory unit (`ns`, `us`/`µs`/`μs`, `ms`, `s`, `m`, `h`).
    /// The bare string `0` is accepted as zero.
    pub fn parse(input: &str) -> Result<Self, DurationError> {
        let invalid = || DurationError::Invalid(input.to_owned());
        let mut s = input;
        let mut negative = false;
        if let Some(rest) = s.strip_prefix('-') {
            negative = true;
            s = rest;
        } else if let Some(rest) = s.strip_prefix('+') {
            s = rest;
        }
        if s == "0" {
            return Ok(GoDuration::ZERO);
        }
        if s.is_empty() {
            return Err(invalid());
        }

        // Accumulated magnitude; Go allows up to 1<<63 for the negative case.
        let limit: u64 = 1 << 63;
        let mut total: u64 = 0;
        while !s.is_empty() {
            let first = s.as_bytes()[0];
            if !(first == b'.' || first.is_ascii_digit()) {
                return Err(invalid());
            }

            // Integer part.
            let int_len = s.bytes().take_while(u8::is_ascii_digit).count();
            let (int_digits, rest) = s.split_at(int_len);
            s = rest;
            let mut int_value: u64 = 0;
            for d in int_digits.bytes() {
                int_value = int_value
                    .checked_mul(10)
                    .and_then(|v| v.checked_add(u64::from(d - b'0')))
                    .filter(|v| *v <= limit)
                    .ok_or_else(invalid)?;
            }

            // Fraction part, kept as digits/scale like Go does.
            let mut frac_value: u64 = 0;
            let mut frac_scale: f64 = 1.0;
            let mut frac_len = 0;
            if let Some(rest) = s.strip_prefix('.') {
                s = rest;
                frac_len = s.bytes().take_while(u8::is_ascii_digit).count();
                let (frac_digits, rest) = s.split_at(frac_len);
                s = rest;
                let mut overflowed = false;
                for d in frac_digits.bytes() {
                    if overflowed {
                        continue;
                    }
                    match frac_value
                        .checked_mul(10)
                        .and_then(|v| v.checked_add(u64::from(d - b'0')))
                        .filter(|v| *v <= limit)
                    {
                        Some(v) => {
                            frac_value = v;
                            frac_scale *= 10.0;
                        }
                        // Further digits cannot change the result.
                        None => overflowed = true,
                    }
                }
            }
            if int_len == 0 && frac_len == 0 {
                // "." or ".s" has no digits at all.
                return Err(invalid());
            }

            // Unit.
            let unit_len = s
                .char_indices()
                .find(|(_, c)| *c == '.' || c.is_ascii_digit())
                .map_or(s.len(), |(i, _)| i);
            if unit_len == 0 {
                return Err(DurationError::MissingUnit(input.to_owned()));
            }
            let (unit, rest) = s.split_at(unit_len);
            s = rest;
            let unit_nanos = match unit {
                "ns" => 1,
                "us" | "\u{00b5}s" | "\u{03bc}s" => NANOS_PER_MICRO,
                "ms" => NANOS_PER_MILLI,
                "s" => NANOS_PER_SEC,
                "m" => NANOS_PER_MIN,
                "h" => NANOS_PER_HOUR,
                _ => {
                    return Err(DurationError::UnknownUnit {
                        unit: unit.to_owned(),
                        input: input.to_owned(),
                    });
                }
            };

            let overflow = || DurationError::Overflow(input.to_owned());
            let mut value = int_value
                .checked_mul(unit_nanos)
                .filter(|v| *v <= limit)
                .ok_or_else(overflow)?;
            if frac_value > 0 {
                // Same float arithmetic as Go so that rounding agrees.
                #[allow(clippy::cast_precision_loss, clippy::cast_possible_truncation)]
                #[allow(clippy::cast_sign_loss)]
                let frac_nanos = (frac_value as f64 * (unit_nanos as f64 / frac_scale)) as u64;
                value = value
                    .checked_add(frac_nanos)
                    .filter(|v| *v <= limit)
                    .ok_or_else(overflow)?;
            }
            total = total
                .checked_add(value)
                .filter(|v| *v <= limit)
                .ok_or_else(overflow)?;
        }

        if negative {
            // -(1<<63) is representable.
            let nanos = 0i64.checked_sub_unsigned(total).ok_or_else(invalid)?;
            Ok(GoDuration { nanos })
        } else {
            let nanos =
                i64::try_from(total).map_err(|_| DurationError::Overflow(input.to_owned()))?;
            Ok(GoDuration { nanos })
        }
    }
}

impl From<Duration> for GoDuration {
    /// Saturates at Go's maximum duration (about 292 years).
    fn from(d: Duration) -> Self {
        GoDuration {
            nanos: i64::try_from(d.as_nanos()).unwrap_or(i64::MAX),
        }
    }
}

impl std::str::FromStr for GoDuration {
    type Err = DurationError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        GoDuration::parse(s)
    }
}

/// Writes `value / 10^digits` with trailing fractional zeros removed.
fn write_fraction(out: &mut String, value: u64, digits: u32) {
    let scale = 10u64.pow(digits);
    out.push_str(&(value / scale).to_string());
    let frac = value % scale;
    if frac != 0 {
        let text = format!("{frac:0width$}", width = digits as usize);
        out.push('.');
        out.push_str(text.trim_end_matches('0'));
    }
}

impl fmt::Display for GoDuration {
    /// Formats like Go's `time.Duration.String`: `1h2m3.5s`, `1.5ms`,
    /// `2µs`, `0s`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut out = String::new();
        if self.nanos < 0 {
            out.push('-');
        }
        let u = self.nanos.unsigned_abs();
        if u == 0 {
            return f.write_str("0s");
        }
        if u < NANOS_PER_SEC {
            if u < NANOS_PER_MICRO {
                out.push_str(&u.to_string());
                out.push_str("ns");
            } else if u < NANOS_PER_MILLI {
                write_fraction(&mut out, u, 3);
                out.push_str("\u{00b5}s");
            } else {
                write_fraction(&mut out, u, 6);
                out.push_str("ms");
            }
            return f.write_str(&out);
        }
        let hours = u / NANOS_PER_HOUR;
        let minutes = (u % NANOS_PER_HOUR) / NANOS_PER_MIN;
        let rest = u % NANOS_PER_MIN;
        if hours > 0 {
            out.push_str(&hours.to_string());
            out.push('h');
        }
        if hours > 0 || minutes > 0 {
            out.push_str(&minutes.to_string());
            out.push('m');
        }
        write_fraction(&mut out, rest, 9);
        out.push('s');
        f.write_str(&out)
    }
}

/// Resolves a hook `timeout` value the way Metacontroller does: absent → 10s;
/// zero or negative → 10s (Metacontroller logs this case); otherwise the
/// parsed value. Unparseable text is an error (the API server's
/// `format: duration` validation normally prevents it).
pub fn hook_timeout(timeout: Option<&str>) -> Result<Duration, DurationError> {
    match timeout {
        None => Ok(DEFAULT_HOOK_TIMEOUT),
        Some(text) => {
            let parsed = GoDuration::parse(text)?;
            Ok(parsed
                .to_std()
                .filter(|d| !d.is_zero())
                .unwrap_or(DEFAULT_HOOK_TIMEOUT))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nanos(s: &str) -> i64 {
        GoDuration::parse(s).unwrap().as_nanos()
    }

    #[test]
    fn parses_common_forms() {
        assert_eq!(nanos("10s"), 10 * NANOS_PER_SEC as i64);
        assert_eq!(nanos("1m30s"), 90 * NANOS_PER_SEC as i64);
        assert_eq!(nanos("500ms"), 500 * NANOS_PER_MILLI as i64);
        assert_eq!(nanos("1.5h"), 90 * NANOS_PER_MIN as i64);
        assert_eq!(nanos("0"), 0);
        assert_eq!(nanos("+5s"), 5 * NANOS_PER_SEC as i64);
        assert_eq!(nanos("-2s"), -2 * NANOS_PER_SEC as i64);
        assert_eq!(nanos("1h2m3s4ms5us6ns"), 3_723_004_005_006);
        assert_eq!(nanos("3\u{00b5}s"), 3_000);
        assert_eq!(nanos("3\u{03bc}s"), 3_000);
        assert_eq!(nanos(".5s"), 500_000_000);
        assert_eq!(nanos("1.s"), NANOS_PER_SEC as i64);
        assert_eq!(nanos("0.000000001s"), 1);
        assert_eq!(nanos("9223372036854775807ns"), i64::MAX);
        assert_eq!(nanos("-9223372036854775808ns"), i64::MIN);
    }

    #[test]
    fn rejects_bad_input() {
        for bad in [
            "",
            "s",
            "10",
            "1x",
            ".s",
            "-",
            "1s2",
            "ten seconds",
            "1 s",
            "1e3s",
        ] {
            assert!(
                GoDuration::parse(bad).is_err(),
                "{bad:?} should be rejected"
            );
        }
        assert!(matches!(
            GoDuration::parse("10"),
            Err(DurationError::MissingUnit(_))
        ));
        assert!(matches!(
            GoDuration::parse("1d"),
            Err(DurationError::UnknownUnit { .. })
        ));
        assert!(GoDuration::parse("9223372036854775808ns").is_err());
        assert!(GoDuration::parse("3000000h").is_err());
    }

    #[test]
    fn formats_like_go() {
        let cases = [
            ("0", "0s"),
            ("10s", "10s"),
            ("90s", "1m30s"),
            ("1h", "1h0m0s"),
            ("1.5s", "1.5s"),
            ("500ms", "500ms"),
            ("1.5ms", "1.5ms"),
            ("2us", "2\u{00b5}s"),
            ("7ns", "7ns"),
            ("-1m", "-1m0s"),
            ("1h0m0.000000001s", "1h0m0.000000001s"),
        ];
        for (input, expected) in cases {
            assert_eq!(
                GoDuration::parse(input).unwrap().to_string(),
                expected,
                "{input}"
            );
        }
        assert_eq!(
            GoDuration::from_nanos(i64::MIN).to_string(),
            "-2562047h47m16.854775808s"
        );
    }

    #[test]
    fn hook_timeout_defaults() {
        assert_eq!(hook_timeout(None).unwrap(), Duration::from_secs(10));
        assert_eq!(hook_timeout(Some("0s")).unwrap(), Duration::from_secs(10));
        assert_eq!(hook_timeout(Some("-3s")).unwrap(), Duration::from_secs(10));
        assert_eq!(
            hook_timeout(Some("1m30s")).unwrap(),
            Duration::from_secs(90)
        );
        assert_eq!(
            hook_timeout(Some("250ms")).unwrap(),
            Duration::from_millis(250)
        );
        assert!(hook_timeout(Some("soon")).is_err());
    }
}
