//! CustomResourceDefinitions: validating them, giving them the status the
//! apiextensions controllers would (`NamesAccepted`, `Established`,
//! `acceptedNames`, `storedVersions`), and turning them into served
//! resources. Deleting a CRD goes through the
//! `customresourcecleanup.apiextensions.k8s.io` finalizer: its objects are
//! deleted first (see `lifecycle`), then the resource leaves discovery.

use serde_json::{Value, json};

use crate::builtins::builtin_resources;
use crate::error::{ApiError, ApiResult};
use crate::registry::{GroupResource, ResourceInfo, ScaleInfo, standard_verbs};
use crate::store::{Inner, Resources, is_deleting};

pub const CLEANUP_FINALIZER: &str = "customresourcecleanup.apiextensions.k8s.io";

pub fn crd_gr() -> GroupResource {
    GroupResource::new("apiextensions.k8s.io", "customresourcedefinitions")
}

fn invalid(name: &str, field: &str, msg: &str) -> ApiError {
    ApiError::invalid(
        "apiextensions.k8s.io",
        "CustomResourceDefinition",
        name,
        &[(field, msg)],
    )
}

/// Validates a CRD and fills in what the server owns.
pub fn prepare(inner: &Inner, old: Option<&Value>, obj: &mut Value) -> ApiResult<()> {
    let name = obj["metadata"]["name"].as_str().unwrap_or("").to_string();
    let spec = obj.get("spec").cloned().unwrap_or(Value::Null);
    let group = spec["group"].as_str().unwrap_or("");
    let names = &spec["names"];
    let plural = names["plural"].as_str().unwrap_or("");
    let kind = names["kind"].as_str().unwrap_or("");
    if group.is_empty() {
        return Err(invalid(&name, "spec.group", "Required value"));
    }
    if plural.is_empty() {
        return Err(invalid(&name, "spec.names.plural", "Required value"));
    }
    if kind.is_empty() {
        return Err(invalid(&name, "spec.names.kind", "Required value"));
    }
    if name != format!("{plural}.{group}") {
        return Err(invalid(
            &name,
            "metadata.name",
            &format!("Invalid value: \"{name}\": must be spec.names.plural+\".\"+spec.group"),
        ));
    }
    match spec["scope"].as_str() {
        Some("Namespaced") | Some("Cluster") => {}
        other => {
            return Err(invalid(
                &name,
                "spec.scope",
                &format!(
                    "Unsupported value: \"{}\": supported values: \"Cluster\", \"Namespaced\"",
                    other.unwrap_or("")
                ),
            ));
        }
    }
    let versions = spec["versions"].as_array().cloned().unwrap_or_default();
    if versions.is_empty() {
        return Err(invalid(
            &name,
            "spec.versions",
            "Invalid value: must have exactly one version marked as storage version",
        ));
    }
    let storage: Vec<&str> = versions
        .iter()
        .filter(|v| v["storage"].as_bool() == Some(true))
        .filter_map(|v| v["name"].as_str())
        .collect();
    if storage.len() != 1 {
        return Err(invalid(
            &name,
            "spec.versions",
            "Invalid value: must have exactly one version marked as storage version",
        ));
    }
    if !versions.iter().any(|v| v["served"].as_bool() == Some(true)) {
        return Err(invalid(
            &name,
            "spec.versions",
            "Invalid value: must have at least one served version",
        ));
    }
    // Another resource already serving this group/plural?
    if old.is_none()
        && inner
            .resources
            .list
            .iter()
            .any(|r| r.group == group && r.plural == plural && !r.crd)
    {
        return Err(invalid(
            &name,
            "spec.names.plural",
            "Invalid value: already served by a built-in resource",
        ));
    }

    if old.is_none() {
        let fins = obj["metadata"]
            .as_object_mut()
            .unwrap()
            .entry("finalizers")
            .or_insert_with(|| json!([]));
        if let Some(a) = fins.as_array_mut()
            && !a.iter().any(|f| f == CLEANUP_FINALIZER)
        {
            a.push(json!(CLEANUP_FINALIZER));
        }
    }

    let mut accepted = names.clone();
    if accepted
        .get("singular")
        .and_then(Value::as_str)
        .unwrap_or("")
        .is_empty()
    {
        accepted["singular"] = json!(kind.to_ascii_lowercase());
    }
    if accepted
        .get("listKind")
        .and_then(Value::as_str)
        .unwrap_or("")
        .is_empty()
    {
        accepted["listKind"] = json!(format!("{kind}List"));
    }
    let mut stored: Vec<Value> = old
        .and_then(|o| o["status"]["storedVersions"].as_array().cloned())
        .unwrap_or_default();
    if !stored.iter().any(|v| v == storage[0]) {
        stored.push(json!(storage[0]));
    }
    let now = crate::meta::now();
    let since = |t: &str| -> String {
        old.and_then(|o| o["status"]["conditions"].as_array())
            .and_then(|c| c.iter().find(|c| c["type"] == t && c["status"] == "True"))
            .and_then(|c| c["lastTransitionTime"].as_str())
            .map(str::to_string)
            .unwrap_or_else(|| now.clone())
    };
    let mut conditions = vec![
        json!({"type": "NamesAccepted", "status": "True", "reason": "NoConflicts", "message": "no conflicts found", "lastTransitionTime": since("NamesAccepted")}),
        json!({"type": "Established", "status": "True", "reason": "InitialNamesAccepted", "message": "the initial names have been accepted", "lastTransitionTime": since("Established")}),
    ];
    if is_deleting(obj) {
        conditions.push(json!({"type": "Terminating", "status": "True", "reason": "InstanceDeletionInProgress", "message": "CustomResource deletion is in progress", "lastTransitionTime": since("Terminating")}));
    }
    obj["status"] = json!({
        "acceptedNames": accepted,
        "conditions": conditions,
        "storedVersions": stored,
    });
    Ok(())
}

/// The served resources a CRD defines (one per served version).
pub fn resources_from_crd(crd: &Value) -> Vec<ResourceInfo> {
    let spec = &crd["spec"];
    let group = spec["group"].as_str().unwrap_or("").to_string();
    let names = &spec["names"];
    let kind = names["kind"].as_str().unwrap_or("").to_string();
    let plural = names["plural"].as_str().unwrap_or("").to_string();
    let singular = names["singular"]
        .as_str()
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .unwrap_or_else(|| kind.to_ascii_lowercase());
    let list_kind = names["listKind"]
        .as_str()
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .unwrap_or_else(|| format!("{kind}List"));
    let strings = |v: &Value| -> Vec<String> {
        v.as_array()
            .map(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default()
    };
    let versions = spec["versions"].as_array().cloned().unwrap_or_default();
    let storage_version = versions
        .iter()
        .find(|v| v["storage"].as_bool() == Some(true))
        .and_then(|v| v["name"].as_str())
        .unwrap_or("")
        .to_string();
    versions
        .iter()
        .filter(|v| v["served"].as_bool() == Some(true))
        .map(|v| {
            let sub = &v["subresources"];
            let scale = sub
                .get("scale")
                .filter(|s| s.is_object())
                .map(|s| ScaleInfo {
                    spec_replicas_path: s["specReplicasPath"]
                        .as_str()
                        .unwrap_or(".spec.replicas")
                        .into(),
                    status_replicas_path: s["statusReplicasPath"]
                        .as_str()
                        .unwrap_or(".status.replicas")
                        .into(),
                    label_selector_path: s["labelSelectorPath"].as_str().map(str::to_string),
                });
            ResourceInfo {
                group: group.clone(),
                version: v["name"].as_str().unwrap_or("").to_string(),
                plural: plural.clone(),
                singular: singular.clone(),
                kind: kind.clone(),
                list_kind: list_kind.clone(),
                namespaced: spec["scope"] == "Namespaced",
                short_names: strings(&names["shortNames"]),
                categories: strings(&names["categories"]),
                verbs: standard_verbs(),
                status: sub.get("status").is_some_and(|s| !s.is_null()),
                scale,
                crd: true,
                storage_version: storage_version.clone(),
                schema: v
                    .get("schema")
                    .and_then(|s| s.get("openAPIV3Schema"))
                    .cloned(),
                printer_columns: v["additionalPrinterColumns"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default(),
                selectable_fields: v["selectableFields"]
                    .as_array()
                    .map(|a| {
                        a.iter()
                            .filter_map(|f| f["jsonPath"].as_str())
                            .map(|p| p.trim_start_matches('.').to_string())
                            .collect()
                    })
                    .unwrap_or_default(),
            }
        })
        .collect()
}

/// Recomputes the served resources from the built-ins and the stored CRDs.
pub fn rebuild_resources(inner: &mut Inner) {
    let mut list = builtin_resources();
    for crd in inner.objects_in(&crd_gr(), None) {
        list.extend(resources_from_crd(&crd));
    }
    let grs: Vec<GroupResource> = list.iter().map(ResourceInfo::group_resource).collect();
    inner.resources = Resources::new(list);
    for gr in grs {
        inner.ensure_table(&gr);
    }
}

/// A CRD object is gone: its resource leaves discovery and its table goes.
pub fn on_removed(inner: &mut Inner, crd: &Value) {
    rebuild_resources(inner);
    let group = crd["spec"]["group"].as_str().unwrap_or("");
    let plural = crd["spec"]["names"]["plural"].as_str().unwrap_or("");
    let gr = GroupResource::new(group, plural);
    if inner.resources.storage(&gr).is_none() {
        inner.drop_table(&gr);
    }
}

/// Is the CRD serving `plural.group` being deleted?
pub fn is_terminating(inner: &Inner, group: &str, plural: &str) -> bool {
    inner
        .get(&crd_gr(), &(String::new(), format!("{plural}.{group}")))
        .is_some_and(|c| is_deleting(c))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn served_versions_become_resources() {
        let crd = json!({
            "metadata": {"name": "widgets.example.com"},
            "spec": {
                "group": "example.com",
                "scope": "Namespaced",
                "names": {"plural": "widgets", "kind": "Widget", "shortNames": ["wd"]},
                "versions": [
                    {"name": "v1", "served": true, "storage": true, "subresources": {"status": {}, "scale": {"specReplicasPath": ".spec.size", "statusReplicasPath": ".status.size"}}},
                    {"name": "v1beta1", "served": true, "storage": false},
                    {"name": "v1alpha1", "served": false, "storage": false}
                ]
            }
        });
        let r = resources_from_crd(&crd);
        assert_eq!(r.len(), 2);
        assert_eq!(r[0].version, "v1");
        assert!(r[0].status && r[0].namespaced && r[0].crd);
        assert_eq!(
            r[0].scale.as_ref().unwrap().spec_replicas_path,
            ".spec.size"
        );
        assert_eq!(r[0].singular, "widget");
        assert_eq!(r[0].list_kind, "WidgetList");
        assert!(!r[1].status);
        assert_eq!(r[1].storage_version, "v1");
    }
}
