//! Aggregated discovery: one `APIGroupDiscoveryList` for `/api` and one for
//! `/apis` (`k8s.io/api/apidiscovery/v2/types.go`; v2beta1 has the same JSON
//! shape), which spares clients the per-group-version requests.

use serde_json::{Value, json};

use super::legacy::{api_group_list, api_versions};
use super::{groups, gvk, resources_of, strings, subresource_verbs};
use crate::negotiate::{DISCOVERY_LIST_KIND, DiscoveryFormat};
use crate::registry::ResourceInfo;

/// `APIResourceDiscovery` (`k8s.io/api/apidiscovery/v2/types.go`).
fn aggregated_resource(r: &ResourceInfo) -> Value {
    let mut value = json!({
        "resource": r.plural,
        "responseKind": gvk(&r.group, &r.version, &r.kind),
        "scope": if r.namespaced { "Namespaced" } else { "Cluster" },
        "singularResource": r.singular,
        "verbs": strings(&r.verbs),
    });
    if !r.short_names.is_empty() {
        value["shortNames"] = strings(&r.short_names);
    }
    if !r.categories.is_empty() {
        value["categories"] = strings(&r.categories);
    }
    let mut subresources = Vec::new();
    if r.scale.is_some() {
        subresources.push(json!({
            "subresource": "scale",
            "responseKind": gvk("autoscaling", "v1", "Scale"),
            "verbs": subresource_verbs(),
        }));
    }
    if r.status {
        subresources.push(json!({
            "subresource": "status",
            "responseKind": gvk(&r.group, &r.version, &r.kind),
            "verbs": subresource_verbs(),
        }));
    }
    if !subresources.is_empty() {
        value["subresources"] = Value::Array(subresources);
    }
    value
}

/// `GET /api` (`core = true`) or `GET /apis` (`core = false`) in the
/// negotiated format. For the aggregated formats this is an
/// `APIGroupDiscoveryList` whose groups list their versions most preferred
/// first (client-go takes the first non-stale version as preferred); the
/// core group's entry has no name. Given [`DiscoveryFormat::Legacy`] it
/// returns the legacy document instead ([`api_group_list`], or for `/api` an
/// `APIVersions` whose server address is empty — use [`api_versions`] to
/// fill it in).
pub fn aggregated(resources: &[ResourceInfo], core: bool, format: &DiscoveryFormat) -> Value {
    let api_version = match format {
        DiscoveryFormat::Legacy if core => return api_versions(""),
        DiscoveryFormat::Legacy => return api_group_list(resources),
        DiscoveryFormat::AggregatedV2 => "apidiscovery.k8s.io/v2",
        DiscoveryFormat::AggregatedV2Beta1 => "apidiscovery.k8s.io/v2beta1",
    };
    let items: Vec<Value> = groups(resources, core)
        .iter()
        .map(|g| {
            let versions: Vec<Value> = g
                .versions
                .iter()
                .map(|v| {
                    json!({
                        "version": v,
                        "resources": resources_of(resources, g.name, v)
                            .into_iter()
                            .map(aggregated_resource)
                            .collect::<Vec<_>>(),
                        "freshness": "Current",
                    })
                })
                .collect();
            let metadata = if g.name.is_empty() {
                json!({})
            } else {
                json!({"name": g.name})
            };
            json!({"metadata": metadata, "versions": versions})
        })
        .collect();
    json!({
        "kind": DISCOVERY_LIST_KIND,
        "apiVersion": api_version,
        "metadata": {},
        "items": items,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::registry;
    use crate::registry::standard_verbs;

    #[test]
    fn aggregated_core_group() {
        let doc = aggregated(&registry(), true, &DiscoveryFormat::AggregatedV2);
        assert_eq!(doc["kind"], "APIGroupDiscoveryList");
        assert_eq!(doc["apiVersion"], "apidiscovery.k8s.io/v2");
        let items = doc["items"].as_array().unwrap();
        assert_eq!(items.len(), 1);
        assert!(items[0]["metadata"].get("name").is_none());
        let version = &items[0]["versions"][0];
        assert_eq!(version["version"], "v1");
        assert_eq!(version["freshness"], "Current");
        assert_eq!(
            version["resources"],
            json!([{
                "resource": "pods",
                "responseKind": {"group": "", "version": "v1", "kind": "Pod"},
                "scope": "Namespaced",
                "singularResource": "pod",
                "verbs": standard_verbs(),
                "shortNames": ["po"],
                "categories": ["all"],
                "subresources": [{
                    "subresource": "status",
                    "responseKind": {"group": "", "version": "v1", "kind": "Pod"},
                    "verbs": ["get", "patch", "update"],
                }],
            }])
        );
    }

    #[test]
    fn aggregated_groups() {
        let reg = registry();
        let doc = aggregated(&reg, false, &DiscoveryFormat::AggregatedV2);
        let items = doc["items"].as_array().unwrap();
        let names: Vec<&str> = items
            .iter()
            .map(|i| i["metadata"]["name"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["apps", "example.com"]);

        let deployments = &items[0]["versions"][0]["resources"][0];
        assert_eq!(deployments["resource"], "deployments");
        assert_eq!(
            deployments["subresources"],
            json!([
                {
                    "subresource": "scale",
                    "responseKind": {"group": "autoscaling", "version": "v1", "kind": "Scale"},
                    "verbs": ["get", "patch", "update"],
                },
                {
                    "subresource": "status",
                    "responseKind": {"group": "apps", "version": "v1", "kind": "Deployment"},
                    "verbs": ["get", "patch", "update"],
                },
            ])
        );

        let example = &items[1]["versions"];
        assert_eq!(example[0]["version"], "v1");
        assert_eq!(example[1]["version"], "v1beta1");
        let v1: Vec<&str> = example[0]["resources"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["resource"].as_str().unwrap())
            .collect();
        assert_eq!(v1, ["gadgets", "widgets"]);
        let gadgets = &example[0]["resources"][0];
        assert_eq!(gadgets["scope"], "Cluster");
        assert!(gadgets.get("subresources").is_none());
        assert!(gadgets.get("shortNames").is_none());
        let widgets = &example[1]["resources"][0];
        assert_eq!(
            widgets["responseKind"],
            json!({"group": "example.com", "version": "v1beta1", "kind": "Widget"})
        );

        let beta = aggregated(&reg, false, &DiscoveryFormat::AggregatedV2Beta1);
        assert_eq!(beta["apiVersion"], "apidiscovery.k8s.io/v2beta1");
        assert_eq!(beta["items"], doc["items"]);
    }

    #[test]
    fn aggregated_given_legacy_returns_legacy_documents() {
        let reg = registry();
        assert_eq!(
            aggregated(&reg, false, &DiscoveryFormat::Legacy),
            api_group_list(&reg)
        );
        assert_eq!(
            aggregated(&reg, true, &DiscoveryFormat::Legacy)["kind"],
            "APIVersions"
        );
    }
}
