//! The label sets a selector is matched against: maps of strings, JSON
//! objects, and the `metadata.labels` / `metadata.annotations` of an object.

use std::collections::{BTreeMap, HashMap};

use serde_json::{Map, Value};

/// A read-only set of labels (or annotations) a selector can be matched
/// against.
pub trait Labels {
    /// The value of `key`, if present.
    fn get(&self, key: &str) -> Option<&str>;

    /// Whether `key` is present.
    fn has(&self, key: &str) -> bool {
        self.get(key).is_some()
    }
}

impl<T: Labels + ?Sized> Labels for &T {
    fn get(&self, key: &str) -> Option<&str> {
        (**self).get(key)
    }
}

impl Labels for BTreeMap<String, String> {
    fn get(&self, key: &str) -> Option<&str> {
        BTreeMap::get(self, key).map(String::as_str)
    }
}

impl<S: std::hash::BuildHasher> Labels for HashMap<String, String, S> {
    fn get(&self, key: &str) -> Option<&str> {
        HashMap::get(self, key).map(String::as_str)
    }
}

/// A JSON object of labels; entries whose value is not a string are treated
/// as absent.
impl Labels for Map<String, Value> {
    fn get(&self, key: &str) -> Option<&str> {
        Map::get(self, key).and_then(Value::as_str)
    }
}

/// An optional JSON labels object, typically the result of
/// [`object_labels`]: `None` (or anything that is not an object) is the
/// empty label set.
impl Labels for Option<&Value> {
    fn get(&self, key: &str) -> Option<&str> {
        self.and_then(|v| v.get(key)).and_then(Value::as_str)
    }
}

/// An optional JSON labels map; `None` is the empty label set.
impl Labels for Option<&Map<String, Value>> {
    fn get(&self, key: &str) -> Option<&str> {
        self.and_then(|m| m.get(key)).and_then(Value::as_str)
    }
}

/// `obj.metadata.labels`, if present.
pub fn object_labels(obj: &Value) -> Option<&Value> {
    obj.get("metadata")?.get("labels")
}

/// `obj.metadata.annotations`, if present.
pub fn object_annotations(obj: &Value) -> Option<&Value> {
    obj.get("metadata")?.get("annotations")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::selector::Selector;

    use serde_json::json;

    #[test]
    fn labels_impls_edge_cases() {
        let sel = Selector::parse("a").expect("parse");
        // Non-string JSON values are not labels.
        let map = json!({"a": 1});
        assert!(!sel.matches(&map.as_object()));
        assert!(sel.matches(&json!({"a": "1"}).as_object()));
        // Missing metadata / labels = empty set.
        assert!(!sel.matches(&object_labels(&json!({}))));
        assert!(!sel.matches(&object_labels(&json!({"metadata": {}}))));
        assert!(
            Selector::parse("!a")
                .expect("parse")
                .matches(&object_labels(&json!({})))
        );
        assert!(Selector::everything().matches(&object_labels(&json!({}))));
        assert!(!Selector::nothing().matches(&object_labels(&json!({}))));
        let none: Option<&Value> = None;
        assert!(!sel.matches(&none));
    }
}
