//! Registries and document helpers shared by the tests of the discovery
//! and OpenAPI documents.

use serde_json::{Value, json};

use crate::registry::{ResourceInfo, ScaleInfo, standard_verbs};

pub(crate) fn resource(
    group: &str,
    version: &str,
    plural: &str,
    kind: &str,
    namespaced: bool,
) -> ResourceInfo {
    ResourceInfo {
        group: group.into(),
        version: version.into(),
        plural: plural.into(),
        singular: kind.to_lowercase(),
        kind: kind.into(),
        list_kind: format!("{kind}List"),
        namespaced,
        short_names: vec![],
        categories: vec![],
        verbs: standard_verbs(),
        status: false,
        scale: None,
        crd: false,
        storage_version: version.into(),
        schema: None,
        printer_columns: vec![],
        selectable_fields: vec![],
    }
}

pub(crate) fn widget_schema() -> Value {
    json!({
        "type": "object",
        "properties": {
            "spec": {
                "type": "object",
                "properties": {"size": {"type": "integer", "description": "How big."}},
            },
            "status": {"type": "object", "x-kubernetes-preserve-unknown-fields": true},
        },
    })
}

/// Core pods with status, apps deployments with status and scale, a
/// namespaced CRD served at two versions (listed worst-first) and a
/// cluster-scoped CRD.
pub(crate) fn registry() -> Vec<ResourceInfo> {
    let mut pods = resource("", "v1", "pods", "Pod", true);
    pods.status = true;
    pods.short_names = vec!["po".into()];
    pods.categories = vec!["all".into()];
    let mut deployments = resource("apps", "v1", "deployments", "Deployment", true);
    deployments.status = true;
    deployments.scale = Some(ScaleInfo::builtin());
    deployments.short_names = vec!["deploy".into()];
    let mut out = vec![pods, deployments];
    for version in ["v1beta1", "v1"] {
        let mut w = resource("example.com", version, "widgets", "Widget", true);
        w.crd = true;
        w.status = true;
        w.scale = Some(ScaleInfo {
            spec_replicas_path: ".spec.replicas".into(),
            status_replicas_path: ".status.replicas".into(),
            label_selector_path: None,
        });
        w.short_names = vec!["wd".into()];
        w.categories = vec!["all".into()];
        w.storage_version = "v1".into();
        w.schema = Some(widget_schema());
        out.push(w);
    }
    let mut gadgets = resource("example.com", "v1", "gadgets", "Gadget", false);
    gadgets.crd = true;
    out.push(gadgets);
    out
}

/// The PATCH operation kubectl's field-validation verifier looks for.
pub(crate) fn patch_operation<'a>(doc: &'a Value, path: &str) -> &'a Value {
    &doc["paths"][path]["patch"]
}

pub(crate) fn has_query_param(op: &Value, name: &str) -> bool {
    op["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .any(|p| p["name"] == name && p["in"] == "query")
}
