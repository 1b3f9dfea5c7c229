//! Discovery documents, computed from the registry as plain JSON values.
//! Nothing here knows about HTTP: the handlers negotiate the format with
//! [`crate::negotiate`], call the document builders and send the result with
//! the matching content type.
//!
//! What clients do with these documents, and therefore what they must contain:
//!
//! * **Legacy discovery** ([`legacy`]) (`/api`, `/api/v1`, `/apis`, `/apis/{g}`,
//!   `/apis/{g}/{v}`): `APIVersions`, `APIGroupList`, `APIGroup` and
//!   `APIResourceList` from `k8s.io/apimachinery/pkg/apis/meta/v1/types.go`.
//!   Subresources are listed as `parent/sub` entries; `scale` answers with
//!   `autoscaling/v1` `Scale`.
//! * **Aggregated discovery** ([`aggregated`](mod@aggregated)) (`/api` and `/apis` only): client-go asks for it
//!   first (`k8s.io/client-go/discovery/discovery_client.go`, `acceptDiscoveryFormats`;
//!   v2beta1 only up to 1.29, v2 first from 1.30) and recognises it solely by the
//!   `g`, `v` and `as` parameters of the response Content-Type (`ContentTypeIsGVK`).
//!   The body follows `k8s.io/api/apidiscovery/v2/types.go`; v2beta1 has the same
//!   JSON shape. When both `/api` and `/apis` answer in this form, client-go
//!   never fetches the per-group-version lists.

use serde_json::{Value, json};

use crate::registry::{ResourceInfo, compare_versions};

mod aggregated;
mod legacy;

pub use aggregated::aggregated;
pub use legacy::{api_group, api_group_list, api_resource_list, api_versions};

/// Verbs of the `status` and `scale` subresources.
const SUBRESOURCE_VERBS: [&str; 3] = ["get", "patch", "update"];

/// A group with its served versions, most preferred first.
pub(crate) struct GroupVersions<'a> {
    pub(crate) name: &'a str,
    pub(crate) versions: Vec<&'a str>,
}

/// Groups in the order they first appear in `resources` (clients such as
/// kubectl's RESTMapper resolve an ambiguous resource name to the earliest
/// group, so the registry order is the group priority), each with its
/// versions ordered by [`compare_versions`]. The core group is included only
/// when `core` is set, and then alone.
pub(crate) fn groups(resources: &[ResourceInfo], core: bool) -> Vec<GroupVersions<'_>> {
    let mut out: Vec<GroupVersions<'_>> = Vec::new();
    for r in resources {
        if r.group.is_empty() != core {
            continue;
        }
        match out.iter_mut().find(|g| g.name == r.group) {
            Some(g) => {
                if !g.versions.contains(&r.version.as_str()) {
                    g.versions.push(&r.version);
                }
            }
            None => out.push(GroupVersions {
                name: &r.group,
                versions: vec![&r.version],
            }),
        }
    }
    for g in &mut out {
        g.versions.sort_by(|a, b| compare_versions(a, b));
    }
    out
}

/// The resources of one group-version, sorted by plural name.
pub(crate) fn resources_of<'a>(
    resources: &'a [ResourceInfo],
    group: &str,
    version: &str,
) -> Vec<&'a ResourceInfo> {
    let mut list: Vec<&ResourceInfo> = resources
        .iter()
        .filter(|r| r.group == group && r.version == version)
        .collect();
    list.sort_by(|a, b| a.plural.cmp(&b.plural));
    list
}

/// A `group/version` kind reference as discovery and OpenAPI write it.
pub(crate) fn gvk(group: &str, version: &str, kind: &str) -> Value {
    json!({"group": group, "version": version, "kind": kind})
}

pub(crate) fn group_version(group: &str, version: &str) -> String {
    if group.is_empty() {
        version.to_string()
    } else {
        format!("{group}/{version}")
    }
}

pub(crate) fn strings(list: &[String]) -> Value {
    Value::Array(list.iter().map(|s| Value::String(s.clone())).collect())
}

pub(crate) fn subresource_verbs() -> Value {
    json!(SUBRESOURCE_VERBS)
}
