//! The `pattern` and string `format` checks of validation
//! (`k8s.io/kube-openapi/pkg/validation/strfmt`).

use std::collections::HashMap;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::sync::LazyLock;

use base64::Engine;
use parking_lot::Mutex;
use regex::Regex;

/// Compiled `pattern`s (CRDs reuse a handful of them for every object).
pub(super) static PATTERNS: LazyLock<Mutex<HashMap<String, Option<Regex>>>> =
    LazyLock::new(|| Mutex::new(HashMap::new()));

/// Whether `v` matches `pattern`; `None` for a pattern that does not compile.
pub(super) fn pattern_matches(pattern: &str, v: &str) -> Option<bool> {
    let mut cache = PATTERNS.lock();
    if cache.len() > 1024 {
        cache.clear();
    }
    cache
        .entry(pattern.to_string())
        .or_insert_with(|| Regex::new(pattern).ok())
        .as_ref()
        .map(|re| re.is_match(v))
}

pub(super) fn regex_matches(re: &'static LazyLock<Regex>, v: &str) -> bool {
    re.is_match(v)
}

pub(super) static UUID: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)^[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}$").unwrap()
});
pub(super) static UUID3: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)^[0-9a-f]{8}-?[0-9a-f]{4}-?3[0-9a-f]{3}-?[0-9a-f]{4}-?[0-9a-f]{12}$").unwrap()
});
pub(super) static UUID4: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)^[0-9a-f]{8}-?[0-9a-f]{4}-?4[0-9a-f]{3}-?[89ab][0-9a-f]{3}-?[0-9a-f]{12}$")
        .unwrap()
});
pub(super) static UUID5: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)^[0-9a-f]{8}-?[0-9a-f]{4}-?5[0-9a-f]{3}-?[89ab][0-9a-f]{3}-?[0-9a-f]{12}$")
        .unwrap()
});
pub(super) static HOSTNAME: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^([a-zA-Z0-9\p{S}\p{L}]((-?[a-zA-Z0-9\p{S}\p{L}]{0,62})?)|([a-zA-Z0-9\p{S}\p{L}](([a-zA-Z0-9-\p{S}\p{L}]{0,61}[a-zA-Z0-9\p{S}\p{L}])?)(\.)){1,}([a-zA-Z\p{L}]){2,63})$").unwrap()
});
pub(super) static MAC: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^(?:[0-9A-Fa-f]{2}(?:[:-][0-9A-Fa-f]{2}){5}|[0-9A-Fa-f]{2}(?:[:-][0-9A-Fa-f]{2}){7}|[0-9A-Fa-f]{2}(?:[:-][0-9A-Fa-f]{2}){19}|[0-9A-Fa-f]{4}(?:\.[0-9A-Fa-f]{4}){2}|[0-9A-Fa-f]{4}(?:\.[0-9A-Fa-f]{4}){3}|[0-9A-Fa-f]{4}(?:\.[0-9A-Fa-f]{4}){9})$").unwrap()
});
pub(super) static HEXCOLOR: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^#?([0-9a-fA-F]{3}|[0-9a-fA-F]{6})$").unwrap());
pub(super) static RGBCOLOR: LazyLock<Regex> = LazyLock::new(|| {
    let c = r"\s*(0|[1-9]\d?|1\d\d?|2[0-4]\d|25[0-5])\s*";
    Regex::new(&format!(r"^rgb\({c},{c},{c}\)$")).unwrap()
});
pub(super) static EMAIL: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^[^@\s<>()\[\],;:]+@[^@\s<>()\[\],;:]+$").unwrap());

/// Whether `v` is a valid string of `format`; formats Kubernetes does not
/// check are always valid.
pub(super) fn format_matches(format: &str, v: &str) -> bool {
    match format {
        "byte" => base64::engine::general_purpose::STANDARD.decode(v).is_ok(),
        "date" => v.len() == 10 && v.parse::<jiff::civil::Date>().is_ok(),
        "date-time" | "datetime" => v.parse::<jiff::Timestamp>().is_ok(),
        "uuid" => regex_matches(&UUID, v),
        "uuid3" => regex_matches(&UUID3, v),
        "uuid4" => regex_matches(&UUID4, v),
        "uuid5" => regex_matches(&UUID5, v),
        "ipv4" => v.parse::<Ipv4Addr>().is_ok(),
        "ipv6" => v.contains(':') && v.parse::<Ipv6Addr>().is_ok(),
        "cidr" => {
            let Some((ip, bits)) = v.split_once('/') else {
                return false;
            };
            let Ok(bits) = bits.parse::<u8>() else {
                return false;
            };
            if bits.to_string().len() != v.len() - ip.len() - 1 {
                return false;
            }
            (ip.parse::<Ipv4Addr>().is_ok() && bits <= 32)
                || (ip.parse::<Ipv6Addr>().is_ok() && bits <= 128)
        }
        "mac" => regex_matches(&MAC, v),
        "hostname" => v.len() <= 255 && regex_matches(&HOSTNAME, v),
        "email" => regex_matches(&EMAIL, v),
        "hexcolor" => regex_matches(&HEXCOLOR, v),
        "rgbcolor" => regex_matches(&RGBCOLOR, v),
        _ => true,
    }
}
