//! Helpers shared by the unit tests.

use serde_json::Value;

/// Parses test JSON, panicking on a typo.
pub(crate) fn parse(s: &str) -> Value {
    serde_json::from_str(s).unwrap_or_else(|e| panic!("bad test JSON {s}: {e}"))
}
