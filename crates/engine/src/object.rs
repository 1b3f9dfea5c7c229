//! Kubernetes objects as raw JSON.
//!
//! The engine keeps every object it watches as an immutable, shared
//! `Arc<serde_json::Value>`: hooks receive JSON, the dynamic-apply merge works
//! on JSON, and writes send JSON back. [`RawObject`] is the type handed to
//! kube-rs (`Api<RawObject>`, `watcher`): it deserializes the wire bytes
//! straight into a `Value` (nothing is lost or reordered, unknown fields
//! included) and carries only the few metadata fields kube-rs itself reads.
//!
//! The free functions read common metadata out of a `Value` without
//! allocating.

use std::borrow::Cow;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::core::{ApiResource, DynamicResourceScope, Resource};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value};

/// A Kubernetes object of any type, kept as raw JSON.
#[derive(Clone, Debug, Default)]
pub struct RawObject {
    /// Name, namespace, uid and resourceVersion (what kube-rs reads).
    meta: ObjectMeta,
    /// The whole object.
    value: Value,
}

impl RawObject {
    /// Wraps a JSON object.
    pub fn new(value: Value) -> Self {
        RawObject {
            meta: meta_of(&value),
            value,
        }
    }

    /// The JSON object.
    pub fn value(&self) -> &Value {
        &self.value
    }

    /// The JSON object, consuming `self`.
    pub fn into_value(self) -> Value {
        self.value
    }
}

impl From<Value> for RawObject {
    fn from(value: Value) -> Self {
        RawObject::new(value)
    }
}

fn meta_of(value: &Value) -> ObjectMeta {
    let s = |field: &str| {
        value
            .get("metadata")
            .and_then(|m| m.get(field))
            .and_then(Value::as_str)
            .map(str::to_owned)
    };
    ObjectMeta {
        name: s("name"),
        namespace: s("namespace"),
        uid: s("uid"),
        resource_version: s("resourceVersion"),
        ..ObjectMeta::default()
    }
}

impl<'de> Deserialize<'de> for RawObject {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Value::deserialize(deserializer).map(RawObject::new)
    }
}

impl Serialize for RawObject {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.value.serialize(serializer)
    }
}

impl Resource for RawObject {
    type DynamicType = ApiResource;
    type Scope = DynamicResourceScope;

    fn kind(dt: &ApiResource) -> Cow<'_, str> {
        dt.kind.as_str().into()
    }

    fn group(dt: &ApiResource) -> Cow<'_, str> {
        dt.group.as_str().into()
    }

    fn version(dt: &ApiResource) -> Cow<'_, str> {
        dt.version.as_str().into()
    }

    fn api_version(dt: &ApiResource) -> Cow<'_, str> {
        dt.api_version.as_str().into()
    }

    fn plural(dt: &ApiResource) -> Cow<'_, str> {
        dt.plural.as_str().into()
    }

    fn meta(&self) -> &ObjectMeta {
        &self.meta
    }

    fn meta_mut(&mut self) -> &mut ObjectMeta {
        &mut self.meta
    }
}

// ---------------------------------------------------------------------------
// Metadata accessors
// ---------------------------------------------------------------------------

fn meta_str<'a>(obj: &'a Value, field: &str) -> Option<&'a str> {
    obj.get("metadata")?.get(field)?.as_str()
}

/// `metadata.name` (empty when missing).
pub fn name(obj: &Value) -> &str {
    meta_str(obj, "name").unwrap_or_default()
}

/// `metadata.namespace`, `None` when missing or empty.
pub fn namespace(obj: &Value) -> Option<&str> {
    meta_str(obj, "namespace").filter(|ns| !ns.is_empty())
}

/// `metadata.uid` (empty when missing).
pub fn uid(obj: &Value) -> &str {
    meta_str(obj, "uid").unwrap_or_default()
}

/// `metadata.resourceVersion` (empty when missing).
pub fn resource_version(obj: &Value) -> &str {
    meta_str(obj, "resourceVersion").unwrap_or_default()
}

/// `metadata.generation` (0 when missing).
pub fn generation(obj: &Value) -> i64 {
    obj.get("metadata")
        .and_then(|m| m.get("generation"))
        .and_then(Value::as_i64)
        .unwrap_or(0)
}

/// `apiVersion` (empty when missing).
pub fn api_version(obj: &Value) -> &str {
    obj.get("apiVersion")
        .and_then(Value::as_str)
        .unwrap_or_default()
}

/// `kind` (empty when missing).
pub fn kind(obj: &Value) -> &str {
    obj.get("kind").and_then(Value::as_str).unwrap_or_default()
}

/// Whether `metadata.deletionTimestamp` is set.
pub fn is_deleting(obj: &Value) -> bool {
    obj.get("metadata")
        .and_then(|m| m.get("deletionTimestamp"))
        .is_some_and(|t| !t.is_null())
}

/// `metadata.finalizers` as strings.
pub fn finalizers(obj: &Value) -> impl Iterator<Item = &str> {
    obj.get("metadata")
        .and_then(|m| m.get("finalizers"))
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
}

/// Whether `metadata.finalizers` contains `finalizer`.
pub fn has_finalizer(obj: &Value, finalizer: &str) -> bool {
    finalizers(obj).any(|f| f == finalizer)
}

/// Adds `finalizer` to `metadata.finalizers`; returns whether it was added.
pub fn add_finalizer(obj: &mut Value, finalizer: &str) -> bool {
    if has_finalizer(obj, finalizer) {
        return false;
    }
    let Some(meta) = metadata_mut(obj) else {
        return false;
    };
    let list = meta
        .entry("finalizers")
        .or_insert_with(|| Value::Array(Vec::new()));
    if !list.is_array() {
        *list = Value::Array(Vec::new());
    }
    if let Value::Array(items) = list {
        items.push(Value::String(finalizer.to_owned()));
    }
    true
}

/// Removes every occurrence of `finalizer`; returns whether one was present.
pub fn remove_finalizer(obj: &mut Value, finalizer: &str) -> bool {
    let Some(Value::Array(items)) = obj
        .get_mut("metadata")
        .and_then(|m| m.get_mut("finalizers"))
    else {
        return false;
    };
    let before = items.len();
    items.retain(|f| f.as_str() != Some(finalizer));
    items.len() != before
}

/// `metadata` as a mutable map, created when missing.
pub fn metadata_mut(obj: &mut Value) -> Option<&mut Map<String, Value>> {
    let root = obj.as_object_mut()?;
    let meta = root
        .entry("metadata")
        .or_insert_with(|| Value::Object(Map::new()));
    if !meta.is_object() {
        *meta = Value::Object(Map::new());
    }
    meta.as_object_mut()
}

/// Cache and queue key: `namespace/name`, or `name` for cluster-scoped
/// objects (client-go's `MetaNamespaceKeyFunc`).
pub fn key(obj: &Value) -> String {
    key_of(namespace(obj), name(obj))
}

/// Key for a namespace and a name.
pub fn key_of(namespace: Option<&str>, name: &str) -> String {
    match namespace {
        Some(ns) if !ns.is_empty() => format!("{ns}/{name}"),
        _ => name.to_owned(),
    }
}

/// Splits a key into `(namespace, name)`.
pub fn split_key(key: &str) -> (Option<&str>, &str) {
    match key.split_once('/') {
        Some((ns, name)) => (Some(ns), name),
        None => (None, key),
    }
}

/// `Kind namespace/name` (or `Kind name`) for messages.
pub fn describe(obj: &Value) -> String {
    match namespace(obj) {
        Some(ns) => format!("{} {}/{}", kind(obj), ns, name(obj)),
        None => format!("{} {}", kind(obj), name(obj)),
    }
}

/// JSON equality where numbers compare by value (`1`, `1.0` and `1e0` are
/// equal), as Go's decoding into `int64`/`float64` followed by re-encoding
/// makes them interchangeable on the wire.
pub fn semantic_eq(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => numbers_eq(x, y),
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(a, b)| semantic_eq(a, b))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.get(k).is_some_and(|w| semantic_eq(v, w)))
        }
        _ => a == b,
    }
}

fn numbers_eq(x: &serde_json::Number, y: &serde_json::Number) -> bool {
    if x == y {
        return true;
    }
    match (x.as_i64(), y.as_i64(), x.as_u64(), y.as_u64()) {
        (Some(a), Some(b), _, _) => a == b,
        (_, _, Some(a), Some(b)) => a == b,
        _ => match (x.as_f64(), y.as_f64()) {
            (Some(a), Some(b)) => a == b,
            _ => false,
        },
    }
}

/// Rewrites floating-point numbers with an integral value (and within the
/// range where `f64` is exact) as integers, recursively: what a round trip
/// through the API server does to `1.0`.
pub fn normalize_numbers(value: &mut Value) {
    const EXACT: f64 = 9_007_199_254_740_992.0; // 2^53
    match value {
        Value::Number(n) if n.is_f64() => {
            if let Some(f) = n.as_f64()
                && f.fract() == 0.0
                && f.abs() <= EXACT
            {
                *value = Value::from(f as i64);
            }
        }
        Value::Array(items) => items.iter_mut().for_each(normalize_numbers),
        Value::Object(map) => map.values_mut().for_each(normalize_numbers),
        _ => {}
    }
}

/// Whether two versions of an object differ in more than `status`,
/// `metadata.resourceVersion` and `metadata.managedFields`.
pub fn differs_beyond_status(old: &Value, new: &Value) -> bool {
    let (Some(old), Some(new)) = (old.as_object(), new.as_object()) else {
        return old != new;
    };
    if maps_differ_except(old, new, &["status", "metadata"]) {
        return true;
    }
    let empty = serde_json::Map::new();
    let old_meta = old
        .get("metadata")
        .and_then(Value::as_object)
        .unwrap_or(&empty);
    let new_meta = new
        .get("metadata")
        .and_then(Value::as_object)
        .unwrap_or(&empty);
    maps_differ_except(old_meta, new_meta, &["resourceVersion", "managedFields"])
}

fn maps_differ_except(
    a: &serde_json::Map<String, Value>,
    b: &serde_json::Map<String, Value>,
    skip: &[&str],
) -> bool {
    let relevant = |k: &String| !skip.contains(&k.as_str());
    a.iter()
        .filter(|(k, _)| relevant(k))
        .any(|(k, v)| b.get(k) != Some(v))
        || b.keys().filter(|k| relevant(k)).any(|k| !a.contains_key(k))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn raw_object_round_trip_keeps_everything() {
        let text = r#"{"apiVersion":"v1","kind":"Pod","metadata":{"name":"a","namespace":"ns","uid":"u","resourceVersion":"7","x-unknown":{"b":1}},"spec":{"z":1,"a":[1.5]}}"#;
        let obj: RawObject = serde_json::from_str(text).unwrap();
        assert_eq!(obj.meta().name.as_deref(), Some("a"));
        assert_eq!(obj.meta().namespace.as_deref(), Some("ns"));
        assert_eq!(obj.meta().resource_version.as_deref(), Some("7"));
        let back: Value = serde_json::from_str(&serde_json::to_string(&obj).unwrap()).unwrap();
        let want: Value = serde_json::from_str(text).unwrap();
        assert_eq!(back, want);
    }

    #[test]
    fn accessors() {
        let obj = json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "a", "namespace": "ns", "uid": "u", "generation": 3,
                "finalizers": ["x", "y"], "deletionTimestamp": "2024-01-01T00:00:00Z"}
        });
        assert_eq!(name(&obj), "a");
        assert_eq!(namespace(&obj), Some("ns"));
        assert_eq!(uid(&obj), "u");
        assert_eq!(generation(&obj), 3);
        assert!(is_deleting(&obj));
        assert!(has_finalizer(&obj, "y"));
        assert!(!has_finalizer(&obj, "z"));
        assert_eq!(key(&obj), "ns/a");
        assert_eq!(describe(&obj), "Pod ns/a");
        let cluster = json!({"kind": "Node", "metadata": {"name": "n", "namespace": ""}});
        assert_eq!(namespace(&cluster), None);
        assert_eq!(key(&cluster), "n");
        assert_eq!(split_key("ns/a"), (Some("ns"), "a"));
        assert_eq!(split_key("a"), (None, "a"));
    }

    #[test]
    fn finalizer_edits() {
        let mut obj = json!({"metadata": {"name": "a"}});
        assert!(add_finalizer(&mut obj, "f"));
        assert!(!add_finalizer(&mut obj, "f"));
        assert_eq!(obj["metadata"]["finalizers"], json!(["f"]));
        assert!(remove_finalizer(&mut obj, "f"));
        assert!(!remove_finalizer(&mut obj, "f"));
        assert_eq!(obj["metadata"]["finalizers"], json!([]));
    }

    #[test]
    fn semantic_equality_of_numbers() {
        assert!(semantic_eq(&json!({"a": 1}), &json!({"a": 1.0})));
        assert!(semantic_eq(&json!([1, 2.5]), &json!([1.0, 2.5])));
        assert!(!semantic_eq(&json!({"a": 1}), &json!({"a": 2})));
        assert!(!semantic_eq(&json!({"a": 1}), &json!({"a": 1, "b": 2})));
        assert!(!semantic_eq(&json!({"a": "1"}), &json!({"a": 1})));
        assert!(semantic_eq(&json!(u64::MAX), &json!(u64::MAX)));
        assert!(!semantic_eq(&json!(-1), &json!(u64::MAX)));
    }

    #[test]
    fn normalizes_integral_floats() {
        let mut v = json!({"a": 1.0, "b": [2.5, 3.0], "c": -0.0, "d": 1e300, "e": 7});
        normalize_numbers(&mut v);
        assert_eq!(
            v,
            json!({"a": 1, "b": [2.5, 3], "c": 0, "d": 1e300, "e": 7})
        );
        assert!(v["a"].is_i64());
    }

    #[test]
    fn status_only_changes_are_recognised() {
        let a = json!({"spec": {"x": 1}, "status": {"a": 1},
            "metadata": {"name": "p", "resourceVersion": "1", "generation": 1, "managedFields": []}});
        let mut b = a.clone();
        b["status"]["a"] = json!(2);
        b["metadata"]["resourceVersion"] = json!("2");
        b["metadata"]["managedFields"] = json!([{"manager": "x"}]);
        assert!(!differs_beyond_status(&a, &b));
        let mut c = b.clone();
        c["metadata"]["labels"] = json!({"l": "v"});
        assert!(differs_beyond_status(&a, &c));
        let mut d = b.clone();
        d["spec"]["x"] = json!(2);
        assert!(differs_beyond_status(&a, &d));
        let mut e = b.clone();
        e["metadata"]["deletionTimestamp"] = json!("2024-01-01T00:00:00Z");
        assert!(differs_beyond_status(&a, &e));
        let mut f = b;
        f.as_object_mut().unwrap().remove("spec");
        assert!(differs_beyond_status(&a, &f));
    }
}
