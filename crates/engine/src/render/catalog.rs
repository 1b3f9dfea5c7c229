//! The resource types known offline: built-in types given by the caller
//! and the types of CustomResourceDefinitions (each served version, its
//! scope and whether it has the `status` subresource).

use std::collections::HashMap;

use kube::core::ApiResource;
use serde_json::Value;

use crate::discovery::ResourceInfo;

/// Resource types by `(apiVersion, plural)` and `(apiVersion, kind)`.
#[derive(Clone, Debug, Default)]
pub struct Catalog {
    by_resource: HashMap<(String, String), ResourceInfo>,
    by_kind: HashMap<(String, String), ResourceInfo>,
}

impl Catalog {
    /// A catalog of `infos`.
    pub fn new(infos: impl IntoIterator<Item = ResourceInfo>) -> Self {
        let mut catalog = Catalog::default();
        for info in infos {
            catalog.insert(info);
        }
        catalog
    }

    /// Adds a type.
    pub fn insert(&mut self, info: ResourceInfo) {
        let av = info.api_version().to_owned();
        self.by_kind
            .entry((av.clone(), info.kind().to_owned()))
            .or_insert_with(|| info.clone());
        self.by_resource
            .insert((av, info.plural().to_owned()), info);
    }

    /// Adds the served versions of the CustomResourceDefinition `crd`
    /// (`apiextensions.k8s.io/v1`); returns how many were added.
    pub fn insert_crd(&mut self, crd: &Value) -> usize {
        let spec = &crd["spec"];
        let (Some(group), Some(kind), Some(plural)) = (
            spec["group"].as_str(),
            spec["names"]["kind"].as_str(),
            spec["names"]["plural"].as_str(),
        ) else {
            return 0;
        };
        let namespaced = spec["scope"].as_str() != Some("Cluster");
        let mut added = 0;
        for version in spec["versions"].as_array().into_iter().flatten() {
            let Some(name) = version["name"].as_str() else {
                continue;
            };
            if version["served"] == Value::Bool(false) {
                continue;
            }
            self.insert(ResourceInfo {
                api_resource: ApiResource {
                    group: group.to_owned(),
                    version: name.to_owned(),
                    api_version: format!("{group}/{name}"),
                    kind: kind.to_owned(),
                    plural: plural.to_owned(),
                },
                namespaced,
                has_status: version["subresources"]["status"].is_object(),
            });
            added += 1;
        }
        added
    }

    /// The type `resource` (plural) of `api_version`.
    pub fn get(&self, api_version: &str, resource: &str) -> Option<&ResourceInfo> {
        self.by_resource
            .get(&(api_version.to_owned(), resource.to_owned()))
    }

    /// The type of kind `kind` in `api_version`.
    pub fn get_by_kind(&self, api_version: &str, kind: &str) -> Option<&ResourceInfo> {
        self.by_kind.get(&(api_version.to_owned(), kind.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn crd_versions_scope_and_status() {
        let mut catalog = Catalog::default();
        let crd = json!({
            "apiVersion": "apiextensions.k8s.io/v1",
            "kind": "CustomResourceDefinition",
            "spec": {
                "group": "demo.example.com",
                "scope": "Cluster",
                "names": {"kind": "Thing", "plural": "things"},
                "versions": [
                    {"name": "v1", "served": true, "subresources": {"status": {}}},
                    {"name": "v2", "served": true},
                    {"name": "v0", "served": false}
                ]
            }
        });
        assert_eq!(catalog.insert_crd(&crd), 2);
        let v1 = catalog.get("demo.example.com/v1", "things").unwrap();
        assert_eq!(v1.kind(), "Thing");
        assert!(!v1.namespaced);
        assert!(v1.has_status);
        let v2 = catalog.get_by_kind("demo.example.com/v2", "Thing").unwrap();
        assert!(!v2.has_status);
        assert!(catalog.get("demo.example.com/v0", "things").is_none());
    }
}
