//! Legacy discovery: `APIVersions`, `APIGroupList`, `APIGroup` and
//! `APIResourceList` (`k8s.io/apimachinery/pkg/apis/meta/v1/types.go`),
//! served at `/api`, `/apis`, `/apis/{g}` and `/{api|apis/g}/{v}`.

use serde_json::{Value, json};

use super::{GroupVersions, group_version, groups, resources_of, strings, subresource_verbs};
use crate::registry::ResourceInfo;

/// `GET /api` in the legacy format: `APIVersions`. `serverAddressByClientCIDRs`
/// is a required field for the Python client and kube-rs (k8s-openapi), so it
/// always carries one catch-all entry.
pub fn api_versions(server_address: &str) -> Value {
    json!({
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [
            {"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}
        ]
    })
}

fn version_for_discovery(group: &str, version: &str) -> Value {
    json!({"groupVersion": group_version(group, version), "version": version})
}

fn api_group_value(g: &GroupVersions<'_>) -> Value {
    json!({
        "name": g.name,
        "versions": g.versions.iter().map(|v| version_for_discovery(g.name, v)).collect::<Vec<_>>(),
        "preferredVersion": version_for_discovery(g.name, g.versions[0]),
    })
}

/// `GET /apis` in the legacy format: `APIGroupList` of every non-core group.
pub fn api_group_list(resources: &[ResourceInfo]) -> Value {
    json!({
        "kind": "APIGroupList",
        "apiVersion": "v1",
        "groups": groups(resources, false).iter().map(api_group_value).collect::<Vec<_>>(),
    })
}

/// `GET /apis/{group}`: `APIGroup`, or `None` when the group is not served
/// (or is the core group, which has no such endpoint).
pub fn api_group(resources: &[ResourceInfo], group: &str) -> Option<Value> {
    if group.is_empty() {
        return None;
    }
    let groups = groups(resources, false);
    let g = groups.iter().find(|g| g.name == group)?;
    let mut value = api_group_value(g);
    let obj = value.as_object_mut()?;
    obj.insert("kind".into(), json!("APIGroup"));
    obj.insert("apiVersion".into(), json!("v1"));
    Some(value)
}

/// The legacy `APIResource` entries of one resource: the resource itself
/// followed by its `status` and `scale` subresources. Subresource entries
/// carry an empty `singularName`, and `scale` names its `autoscaling/v1`
/// kind through the `group`/`version` fields, as the Kubernetes server does.
fn legacy_entries(r: &ResourceInfo) -> Vec<Value> {
    let mut main = json!({
        "name": r.plural,
        "singularName": r.singular,
        "namespaced": r.namespaced,
        "kind": r.kind,
        "verbs": strings(&r.verbs),
    });
    if !r.short_names.is_empty() {
        main["shortNames"] = strings(&r.short_names);
    }
    if !r.categories.is_empty() {
        main["categories"] = strings(&r.categories);
    }
    let mut out = vec![main];
    if r.scale.is_some() {
        out.push(json!({
            "name": format!("{}/scale", r.plural),
            "singularName": "",
            "namespaced": r.namespaced,
            "group": "autoscaling",
            "version": "v1",
            "kind": "Scale",
            "verbs": subresource_verbs(),
        }));
    }
    if r.status {
        out.push(json!({
            "name": format!("{}/status", r.plural),
            "singularName": "",
            "namespaced": r.namespaced,
            "kind": r.kind,
            "verbs": subresource_verbs(),
        }));
    }
    out
}

/// `GET /api/v1` (group `""`) or `GET /apis/{group}/{version}`:
/// `APIResourceList`, or `None` when nothing is served at that group-version.
pub fn api_resource_list(resources: &[ResourceInfo], group: &str, version: &str) -> Option<Value> {
    let list = resources_of(resources, group, version);
    if list.is_empty() {
        return None;
    }
    Some(json!({
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": group_version(group, version),
        "resources": list.into_iter().flat_map(legacy_entries).collect::<Vec<_>>(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::discovery::aggregated;
    use crate::fixtures::{registry, resource};
    use crate::negotiate::DiscoveryFormat;
    use crate::registry::standard_verbs;

    #[test]
    fn api_versions_document() {
        let doc = api_versions("10.0.0.1:6443");
        assert_eq!(doc["kind"], "APIVersions");
        assert_eq!(doc["versions"], json!(["v1"]));
        assert_eq!(
            doc["serverAddressByClientCIDRs"],
            json!([{"clientCIDR": "0.0.0.0/0", "serverAddress": "10.0.0.1:6443"}])
        );
    }

    #[test]
    fn group_list_orders_versions_and_prefers_the_first() {
        let doc = api_group_list(&registry());
        assert_eq!(doc["kind"], "APIGroupList");
        assert_eq!(doc["apiVersion"], "v1");
        let groups = doc["groups"].as_array().unwrap();
        let names: Vec<&str> = groups.iter().map(|g| g["name"].as_str().unwrap()).collect();
        assert_eq!(names, ["apps", "example.com"]);
        assert_eq!(
            groups[1]["versions"],
            json!([
                {"groupVersion": "example.com/v1", "version": "v1"},
                {"groupVersion": "example.com/v1beta1", "version": "v1beta1"},
            ])
        );
        assert_eq!(
            groups[1]["preferredVersion"],
            json!({"groupVersion": "example.com/v1", "version": "v1"})
        );
    }

    #[test]
    fn version_preference_follows_kube_version_order() {
        let mut reg = Vec::new();
        for v in ["v1alpha1", "v2beta1", "v1", "v1beta2", "v1beta1"] {
            let mut r = resource("example.com", v, "things", "Thing", true);
            r.crd = true;
            reg.push(r);
        }
        let doc = api_group(&reg, "example.com").unwrap();
        let versions: Vec<&str> = doc["versions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v["version"].as_str().unwrap())
            .collect();
        assert_eq!(
            versions,
            ["v1", "v2beta1", "v1beta2", "v1beta1", "v1alpha1"]
        );
        assert_eq!(doc["preferredVersion"]["version"], "v1");
        let agg = aggregated(&reg, false, &DiscoveryFormat::AggregatedV2);
        assert_eq!(agg["items"][0]["versions"][0]["version"], "v1");
        assert_eq!(agg["items"][0]["versions"][4]["version"], "v1alpha1");
    }

    #[test]
    fn api_group_document() {
        let reg = registry();
        let doc = api_group(&reg, "apps").unwrap();
        assert_eq!(doc["kind"], "APIGroup");
        assert_eq!(doc["apiVersion"], "v1");
        assert_eq!(doc["name"], "apps");
        assert_eq!(
            doc["preferredVersion"],
            json!({"groupVersion": "apps/v1", "version": "v1"})
        );
        assert!(api_group(&reg, "").is_none());
        assert!(api_group(&reg, "batch").is_none());
    }

    #[test]
    fn resource_lists_include_subresources() {
        let reg = registry();
        let core = api_resource_list(&reg, "", "v1").unwrap();
        assert_eq!(core["kind"], "APIResourceList");
        assert_eq!(core["groupVersion"], "v1");
        assert_eq!(
            core["resources"],
            json!([
                {
                    "name": "pods", "singularName": "pod", "namespaced": true, "kind": "Pod",
                    "verbs": standard_verbs(), "shortNames": ["po"], "categories": ["all"],
                },
                {
                    "name": "pods/status", "singularName": "", "namespaced": true, "kind": "Pod",
                    "verbs": ["get", "patch", "update"],
                },
            ])
        );

        let apps = api_resource_list(&reg, "apps", "v1").unwrap();
        assert_eq!(apps["groupVersion"], "apps/v1");
        let resources = apps["resources"].as_array().unwrap();
        let names: Vec<&str> = resources
            .iter()
            .map(|r| r["name"].as_str().unwrap())
            .collect();
        assert_eq!(
            names,
            ["deployments", "deployments/scale", "deployments/status"]
        );
        assert!(resources[0].get("categories").is_none());
        assert_eq!(resources[1]["group"], "autoscaling");
        assert_eq!(resources[1]["version"], "v1");
        assert_eq!(resources[1]["kind"], "Scale");
        assert_eq!(resources[1]["verbs"], json!(["get", "patch", "update"]));
        assert!(resources[2].get("group").is_none());
        assert_eq!(resources[2]["kind"], "Deployment");

        let crd = api_resource_list(&reg, "example.com", "v1beta1").unwrap();
        let names: Vec<&str> = crd["resources"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["name"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["widgets", "widgets/scale", "widgets/status"]);
        let cluster = api_resource_list(&reg, "example.com", "v1").unwrap();
        assert_eq!(cluster["resources"][0]["name"], "gadgets");
        assert_eq!(cluster["resources"][0]["namespaced"], false);

        assert!(api_resource_list(&reg, "apps", "v1beta1").is_none());
        assert!(api_resource_list(&reg, "batch", "v1").is_none());
    }
}
