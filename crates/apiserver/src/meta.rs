//! Small facts about stored objects that every write path shares: the
//! timestamp format, the store key of a name, an object as served at a
//! version, its annotations, and which part of it a write addresses.

use std::sync::Arc;

use serde_json::{Map, Value};

use crate::registry::ResourceInfo;
use crate::store::Key;

/// Which part of an object a write addresses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sub {
    /// The object itself (status changes ignored when a status subresource exists).
    Main,
    /// `/status`: only `.status` changes.
    Status,
    /// `/finalize` of a namespace: only `.spec.finalizers` changes.
    Finalize,
}

/// RFC 3339 with second precision, as `metav1.Time` marshals.
pub fn now() -> String {
    jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

/// The object as served at `info`'s version (custom resources are stored at
/// their storage version and converted with the `None` strategy: only
/// `apiVersion` changes).
pub fn at_version(obj: &Arc<Value>, info: &ResourceInfo) -> Arc<Value> {
    let want = info.api_version();
    if obj.get("apiVersion").and_then(Value::as_str) == Some(want.as_str()) {
        return obj.clone();
    }
    let mut o = (**obj).clone();
    o["apiVersion"] = Value::String(want);
    Arc::new(o)
}

/// The store key of object `name`: cluster-scoped objects have no namespace,
/// whatever the URL says.
pub fn key_for(info: &ResourceInfo, url_ns: Option<&str>, name: &str) -> Key {
    let ns = if info.namespaced {
        url_ns.unwrap_or("").to_string()
    } else {
        String::new()
    };
    (ns, name.to_string())
}

/// `metadata.annotations`, an empty map counting as none (Kubernetes compares
/// them with `equality.Semantic`, for which nil and empty maps are equal).
pub fn annotations(obj: &Value) -> Option<&Map<String, Value>> {
    obj.get("metadata")
        .and_then(|m| m.get("annotations"))
        .and_then(Value::as_object)
        .filter(|a| !a.is_empty())
}
