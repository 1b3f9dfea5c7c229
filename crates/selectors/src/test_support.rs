//! Helpers shared by the unit tests.

use std::collections::BTreeMap;

use crate::requirement::{Operator, Requirement};

/// A label set from pairs.
pub(crate) fn set(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// A requirement that must be valid.
pub(crate) fn req(key: &str, op: Operator, values: &[&str]) -> Requirement {
    Requirement::new(key, op, values.iter().map(|s| s.to_string()).collect())
        .expect("valid requirement")
}
