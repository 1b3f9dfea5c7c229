//! The set of resources the server serves: built-in types plus whatever the
//! registered CustomResourceDefinitions add. Discovery and OpenAPI are derived
//! from it; storage is keyed by [`GroupResource`] so that every served version
//! of a resource shares one set of objects.

use serde_json::Value;

/// A group and a plural resource name, version-independent (the storage key).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct GroupResource {
    /// API group; empty for the core group.
    pub group: String,
    /// Plural resource name.
    pub resource: String,
}

impl GroupResource {
    /// The group-resource of `group` and plural `resource`.
    pub fn new(group: &str, resource: &str) -> Self {
        Self {
            group: group.to_string(),
            resource: resource.to_string(),
        }
    }
}

impl std::fmt::Display for GroupResource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.group.is_empty() {
            write!(f, "{}", self.resource)
        } else {
            write!(f, "{}.{}", self.resource, self.group)
        }
    }
}

/// Where a `scale` subresource finds its numbers (CRD `subresources.scale`).
#[derive(Clone, Debug, PartialEq)]
pub struct ScaleInfo {
    /// JSON path such as `.spec.replicas`.
    pub spec_replicas_path: String,
    /// JSON path such as `.status.replicas`.
    pub status_replicas_path: String,
    /// JSON path such as `.status.selector`, if any.
    pub label_selector_path: Option<String>,
}

impl ScaleInfo {
    /// The paths used by the built-in workload types (Deployment, ReplicaSet, StatefulSet).
    pub fn builtin() -> Self {
        Self {
            spec_replicas_path: ".spec.replicas".into(),
            status_replicas_path: ".status.replicas".into(),
            label_selector_path: Some(".status.selector".into()),
        }
    }
}

/// One served resource at one served version.
#[derive(Clone, Debug, PartialEq)]
pub struct ResourceInfo {
    /// API group; empty for the core group.
    pub group: String,
    /// API version (`v1`, `v1beta1`).
    pub version: String,
    /// Plural resource name, e.g. `deployments`.
    pub plural: String,
    /// Singular resource name, e.g. `deployment`.
    pub singular: String,
    /// Kind of the objects, e.g. `Deployment`.
    pub kind: String,
    /// Kind of a list of them, e.g. `DeploymentList`.
    pub list_kind: String,
    /// Objects live in namespaces (otherwise cluster-scoped).
    pub namespaced: bool,
    /// Short names kubectl accepts (`deploy`).
    pub short_names: Vec<String>,
    /// Categories it belongs to (`all`).
    pub categories: Vec<String>,
    /// Verbs as discovery lists them (`create`, `delete`, `deletecollection`,
    /// `get`, `list`, `patch`, `update`, `watch`).
    pub verbs: Vec<String>,
    /// Has a `status` subresource.
    pub status: bool,
    /// Has a `scale` subresource.
    pub scale: Option<ScaleInfo>,
    /// Defined by a CustomResourceDefinition (rather than built in).
    pub crd: bool,
    /// The version objects are stored at (for CRDs the storage version; for
    /// built-ins the only version).
    pub storage_version: String,
    /// For CRDs: `openAPIV3Schema` of this version, when the CRD has one.
    pub schema: Option<Value>,
    /// For CRDs: `additionalPrinterColumns` of this version.
    pub printer_columns: Vec<Value>,
    /// Field paths (beyond `metadata.name`/`metadata.namespace`) a field
    /// selector may use for this resource.
    pub selectable_fields: Vec<String>,
}

impl ResourceInfo {
    /// `group/version`, or just `version` for the core group.
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.clone()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    /// The version-independent storage key.
    pub fn group_resource(&self) -> GroupResource {
        GroupResource::new(&self.group, &self.plural)
    }
}

/// The verbs every ordinary resource supports.
pub fn standard_verbs() -> Vec<String> {
    [
        "create",
        "delete",
        "deletecollection",
        "get",
        "list",
        "patch",
        "update",
        "watch",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

/// Orders API versions the way Kubernetes does (`k8s.io/apimachinery/pkg/version.CompareKubeAwareVersionStrings`):
/// GA before beta before alpha, higher numbers first within a class, then
/// non-conforming strings alphabetically. Returns `Less` when `a` sorts first.
pub fn compare_versions(a: &str, b: &str) -> std::cmp::Ordering {
    fn parse(v: &str) -> Option<(u64, u8, u64)> {
        let rest = v.strip_prefix('v')?;
        let digits: String = rest.chars().take_while(|c| c.is_ascii_digit()).collect();
        if digits.is_empty() {
            return None;
        }
        let major: u64 = digits.parse().ok()?;
        let tail = &rest[digits.len()..];
        if tail.is_empty() {
            return Some((major, 3, 0));
        }
        for (prefix, class) in [("beta", 2u8), ("alpha", 1u8)] {
            if let Some(n) = tail.strip_prefix(prefix)
                && !n.is_empty()
                && n.chars().all(|c| c.is_ascii_digit())
            {
                return Some((major, class, n.parse().ok()?));
            }
        }
        None
    }
    use std::cmp::Ordering;
    match (parse(a), parse(b)) {
        (Some((ma, ca, na)), Some((mb, cb, nb))) => cb.cmp(&ca).then(mb.cmp(&ma)).then(nb.cmp(&na)),
        (Some(_), None) => Ordering::Less,
        (None, Some(_)) => Ordering::Greater,
        (None, None) => a.cmp(b),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_priority_matches_kubernetes() {
        let mut v = vec![
            "v1alpha1",
            "foo1",
            "v1",
            "v2beta1",
            "v11alpha2",
            "v10",
            "v1beta1",
            "v10beta3",
            "v2",
            "foo10",
            "v12alpha1",
        ];
        v.sort_by(|a, b| compare_versions(a, b));
        assert_eq!(
            v,
            vec![
                "v10",
                "v2",
                "v1",
                "v10beta3",
                "v2beta1",
                "v1beta1",
                "v12alpha1",
                "v11alpha2",
                "v1alpha1",
                "foo1",
                "foo10"
            ]
        );
    }
}
