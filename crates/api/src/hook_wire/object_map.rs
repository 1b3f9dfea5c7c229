//! The `children` / `attachments` / `related` maps of hook requests.
//!
//! The outer key names the type as `<Kind>.<apiVersion>` (`Pod.v1`,
//! `StatefulSet.apps/v1`); the inner key names the object. How the inner key
//! is built depends on the hook version:
//!
//! | parent \ object                      | v1 (relative)  | v2 (uniform)     |
//! |--------------------------------------|----------------|------------------|
//! | namespaced parent, object in its ns  | `name`         | `namespace/name` |
//! | namespaced parent, other namespace   | *left out*     | `namespace/name` |
//! | namespaced parent, cluster object    | *left out*     | `name`           |
//! | cluster parent, namespaced object    | `namespace/name` | `namespace/name` |
//! | cluster parent, cluster object       | `name`         | `name`           |

use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;

use crate::v1alpha1::HookVersion;

/// Objects of one type, by inner key.
pub type ObjectMap = BTreeMap<String, Value>;

/// `<Kind>.<apiVersion>` → inner key → object. Serializes as a JSON object
/// with sorted keys; `null` decodes as empty.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
#[serde(transparent)]
pub struct ObjectMaps(BTreeMap<String, ObjectMap>);

/// Outer key of an object map: `Kind.apiVersion`, e.g. `Pod.v1` or
/// `StatefulSet.apps/v1`.
pub fn type_key(kind: &str, api_version: &str) -> String {
    format!("{kind}.{api_version}")
}

/// Splits an outer key into `(kind, apiVersion)` at the first dot.
pub fn parse_type_key(key: &str) -> Option<(&str, &str)> {
    key.split_once('.')
}

/// Splits `apiVersion` into `(group, version)`; the core group is `""`.
pub fn split_api_version(api_version: &str) -> (&str, &str) {
    api_version.split_once('/').unwrap_or(("", api_version))
}

fn namespace_of(ns: Option<&str>) -> Option<&str> {
    ns.filter(|n| !n.is_empty())
}

/// Inner key of an object for the given hook version, or `None` when a v1
/// request leaves the object out (namespaced parent, object outside the
/// parent's namespace — including cluster-scoped objects).
///
/// Namespaces are `None` (or empty) for cluster-scoped objects.
pub fn object_key(
    version: HookVersion,
    parent_namespace: Option<&str>,
    object_namespace: Option<&str>,
    name: &str,
) -> Option<String> {
    let parent_ns = namespace_of(parent_namespace);
    let object_ns = namespace_of(object_namespace);
    match version {
        HookVersion::V2 => Some(match object_ns {
            Some(ns) => format!("{ns}/{name}"),
            None => name.to_owned(),
        }),
        HookVersion::V1 => match (parent_ns, object_ns) {
            (None, Some(ns)) => Some(format!("{ns}/{name}")),
            (None, None) => Some(name.to_owned()),
            (Some(p), Some(o)) if p == o => Some(name.to_owned()),
            (Some(_), _) => None,
        },
    }
}

fn str_at<'a>(object: &'a Value, pointer: &str) -> Option<&'a str> {
    object.pointer(pointer).and_then(Value::as_str)
}

impl ObjectMaps {
    /// An empty map.
    pub fn new() -> Self {
        ObjectMaps::default()
    }

    /// Makes sure the type has an entry, so it is sent as `{}` even without
    /// objects. Every declared child/attachment type must be initialised.
    pub fn init_group(&mut self, kind: &str, api_version: &str) -> &mut ObjectMap {
        self.0.entry(type_key(kind, api_version)).or_default()
    }

    /// Inserts an object under its own `kind`/`apiVersion` with the inner key
    /// given by [`object_key`]. Returns `false` (and drops the object) when the
    /// hook version leaves it out.
    pub fn insert(
        &mut self,
        version: HookVersion,
        parent_namespace: Option<&str>,
        object: Value,
    ) -> bool {
        let kind = str_at(&object, "/kind").unwrap_or_default();
        let api_version = str_at(&object, "/apiVersion").unwrap_or_default();
        let name = str_at(&object, "/metadata/name").unwrap_or_default();
        let namespace = str_at(&object, "/metadata/namespace");
        let Some(key) = object_key(version, parent_namespace, namespace, name) else {
            return false;
        };
        let outer = type_key(kind, api_version);
        self.0.entry(outer).or_default().insert(key, object);
        true
    }

    /// Inserts an object under explicit keys.
    pub fn insert_keyed(&mut self, type_key: String, key: String, object: Value) {
        self.0.entry(type_key).or_default().insert(key, object);
    }

    /// Objects of one type.
    pub fn group(&self, kind: &str, api_version: &str) -> Option<&ObjectMap> {
        self.0.get(&type_key(kind, api_version))
    }

    /// Objects of one type, mutably.
    pub fn group_mut(&mut self, kind: &str, api_version: &str) -> Option<&mut ObjectMap> {
        self.0.get_mut(&type_key(kind, api_version))
    }

    /// One object by type and inner key.
    pub fn get(&self, kind: &str, api_version: &str, key: &str) -> Option<&Value> {
        self.group(kind, api_version)?.get(key)
    }

    /// Looks an object up by API group, kind and inner key in any version of
    /// the type.
    pub fn find_by_group_kind(&self, group: &str, kind: &str, key: &str) -> Option<&Value> {
        self.0.iter().find_map(|(outer, objects)| {
            let (k, api_version) = parse_type_key(outer)?;
            (k == kind && split_api_version(api_version).0 == group)
                .then(|| objects.get(key))
                .flatten()
        })
    }

    /// `(outer key, objects)` pairs in key order.
    pub fn iter(&self) -> impl Iterator<Item = (&String, &ObjectMap)> {
        self.0.iter()
    }

    /// All objects of all types.
    pub fn objects(&self) -> impl Iterator<Item = &Value> {
        self.0.values().flat_map(BTreeMap::values)
    }

    /// Number of types (outer keys).
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// `true` when there are no types at all.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Total number of objects.
    pub fn object_count(&self) -> usize {
        self.0.values().map(BTreeMap::len).sum()
    }

    /// The underlying map.
    pub fn as_map(&self) -> &BTreeMap<String, ObjectMap> {
        &self.0
    }

    /// The underlying map, consuming `self`.
    pub fn into_inner(self) -> BTreeMap<String, ObjectMap> {
        self.0
    }
}

impl From<BTreeMap<String, ObjectMap>> for ObjectMaps {
    fn from(map: BTreeMap<String, ObjectMap>) -> Self {
        ObjectMaps(map)
    }
}

impl<'de> Deserialize<'de> for ObjectMaps {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = Option::<BTreeMap<String, Option<ObjectMap>>>::deserialize(deserializer)?;
        Ok(ObjectMaps(
            raw.unwrap_or_default()
                .into_iter()
                .map(|(k, v)| (k, v.unwrap_or_default()))
                .collect(),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod(ns: Option<&str>, name: &str) -> Value {
        let mut meta = json!({ "name": name });
        if let Some(ns) = ns {
            meta["namespace"] = ns.into();
        }
        json!({ "apiVersion": "v1", "kind": "Pod", "metadata": meta })
    }

    #[test]
    fn type_keys() {
        assert_eq!(type_key("Pod", "v1"), "Pod.v1");
        assert_eq!(type_key("StatefulSet", "apps/v1"), "StatefulSet.apps/v1");
        assert_eq!(
            type_key("CatSet", "ctl.enisoc.com/v1"),
            "CatSet.ctl.enisoc.com/v1"
        );
        assert_eq!(
            parse_type_key("CatSet.ctl.enisoc.com/v1"),
            Some(("CatSet", "ctl.enisoc.com/v1"))
        );
        assert_eq!(parse_type_key("Pod.v1"), Some(("Pod", "v1")));
        assert_eq!(parse_type_key("Pod"), None);
        assert_eq!(split_api_version("apps/v1"), ("apps", "v1"));
        assert_eq!(split_api_version("v1"), ("", "v1"));
    }

    #[test]
    fn keys_for_every_row_of_the_table() {
        use HookVersion::{V1, V2};
        // Namespaced parent, object in the parent's namespace.
        assert_eq!(
            object_key(V1, Some("ns"), Some("ns"), "a").as_deref(),
            Some("a")
        );
        assert_eq!(
            object_key(V2, Some("ns"), Some("ns"), "a").as_deref(),
            Some("ns/a")
        );
        // Cluster-scoped parent, namespaced object.
        assert_eq!(
            object_key(V1, None, Some("ns"), "a").as_deref(),
            Some("ns/a")
        );
        assert_eq!(
            object_key(V2, None, Some("ns"), "a").as_deref(),
            Some("ns/a")
        );
        // Cluster-scoped object under a cluster-scoped parent.
        assert_eq!(object_key(V1, None, None, "a").as_deref(), Some("a"));
        assert_eq!(object_key(V2, None, None, "a").as_deref(), Some("a"));
        // Cluster-scoped object under a namespaced parent: v1 leaves it out.
        assert_eq!(object_key(V1, Some("ns"), None, "a"), None);
        assert_eq!(object_key(V2, Some("ns"), None, "a").as_deref(), Some("a"));
        // Object from another namespace under a namespaced parent.
        assert_eq!(object_key(V1, Some("ns"), Some("other"), "a"), None);
        assert_eq!(
            object_key(V2, Some("ns"), Some("other"), "a").as_deref(),
            Some("other/a")
        );
        // Empty namespace strings mean cluster-scoped.
        assert_eq!(
            object_key(V1, Some(""), Some("ns"), "a").as_deref(),
            Some("ns/a")
        );
        assert_eq!(
            object_key(V2, Some("ns"), Some(""), "a").as_deref(),
            Some("a")
        );
    }

    #[test]
    fn insert_and_serialize() {
        let mut maps = ObjectMaps::new();
        maps.init_group("Pod", "v1");
        maps.init_group("StatefulSet", "apps/v1");
        assert!(maps.insert(HookVersion::V1, Some("ns"), pod(Some("ns"), "b")));
        assert!(maps.insert(HookVersion::V1, Some("ns"), pod(Some("ns"), "a")));
        assert!(!maps.insert(HookVersion::V1, Some("ns"), pod(Some("other"), "c")));
        assert_eq!(maps.object_count(), 2);
        assert_eq!(
            serde_json::to_string(&maps).unwrap(),
            r#"{"Pod.v1":{"a":{"apiVersion":"v1","kind":"Pod","metadata":{"name":"a","namespace":"ns"}},"b":{"apiVersion":"v1","kind":"Pod","metadata":{"name":"b","namespace":"ns"}}},"StatefulSet.apps/v1":{}}"#
        );
        assert!(maps.get("Pod", "v1", "a").is_some());
        assert!(maps.find_by_group_kind("", "Pod", "b").is_some());
        assert!(maps.find_by_group_kind("apps", "Pod", "b").is_none());

        let mut v2 = ObjectMaps::new();
        assert!(v2.insert(HookVersion::V2, Some("ns"), pod(Some("other"), "c")));
        assert_eq!(
            v2.group("Pod", "v1").unwrap().keys().collect::<Vec<_>>(),
            ["other/c"]
        );
    }

    #[test]
    fn decodes_null_as_empty() {
        let maps: ObjectMaps = serde_json::from_str("null").unwrap();
        assert!(maps.is_empty());
        let maps: ObjectMaps = serde_json::from_str(r#"{"Pod.v1": null}"#).unwrap();
        assert_eq!(maps.len(), 1);
        assert_eq!(maps.object_count(), 0);
    }
}
