//! CustomResourceDefinitions: structural-schema pruning, defaulting and
//! validation, the status and scale subresources, and CRD deletion.

use serde_json::{Value, json};

use super::NS;
use crate::step::{JSON_PATCH, MERGE, STRATEGIC, Step, Until};

pub const GROUP: &str = "diff.example.com";

pub fn widgets() -> String {
    format!("/apis/{GROUP}/v1/namespaces/{NS}/widgets")
}

fn crd() -> Value {
    json!({
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": format!("widgets.{GROUP}")},
        "spec": {
            "group": GROUP,
            "scope": "Namespaced",
            "names": {"plural": "widgets", "singular": "widget", "kind": "Widget", "listKind": "WidgetList", "shortNames": ["wg"]},
            "versions": [{
                "name": "v1", "served": true, "storage": true,
                "subresources": {"status": {}, "scale": {"specReplicasPath": ".spec.replicas", "statusReplicasPath": ".status.replicas", "labelSelectorPath": ".status.selector"}},
                "schema": {"openAPIV3Schema": {
                    "type": "object",
                    "properties": {
                        "spec": {
                            "type": "object",
                            "required": ["color"],
                            "properties": {
                                "color": {"type": "string", "enum": ["red", "blue"]},
                                "size": {"type": "integer", "minimum": 1, "maximum": 10, "default": 3},
                                "replicas": {"type": "integer", "default": 1},
                                "tags": {"type": "array", "items": {"type": "string"}, "maxItems": 3},
                                "name": {"type": "string", "pattern": "^[a-z]+$", "maxLength": 8},
                                "extra": {"type": "object", "x-kubernetes-preserve-unknown-fields": true},
                                "nested": {"type": "object", "default": {}, "properties": {"level": {"type": "string", "default": "low"}}}
                            }
                        },
                        "status": {"type": "object", "properties": {
                            "ready": {"type": "boolean"},
                            "replicas": {"type": "integer"},
                            "selector": {"type": "string"}
                        }}
                    }
                }}
            }]
        }
    })
}

fn widget(name: &str, spec: Value) -> Value {
    json!({"apiVersion": format!("{GROUP}/v1"), "kind": "Widget", "metadata": {"name": name}, "spec": spec})
}

pub fn all() -> Vec<Step> {
    let crds = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions";
    let crd_path = format!("{crds}/widgets.{GROUP}");
    let ws = widgets();
    let w = format!("{ws}/first");
    let mut bad_crd = crd();
    bad_crd["metadata"]["name"] = json!("bad.diff.example.com");
    bad_crd["spec"]["names"] = json!({"plural": "bad", "kind": "Bad"});
    bad_crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]
        ["color"] = json!({"enum": ["red"]});
    let mut wrong_name = crd();
    wrong_name["metadata"]["name"] = json!("gizmos.diff.example.com");
    vec![
        Step::post("crd-create", crds, crd()),
        Step::poll("crd-served", &ws, Until::Code(200)),
        Step::poll(
            "crd-established",
            &crd_path,
            Until::Equals("/status/acceptedNames/kind", json!("Widget")),
        ),
        Step::post("crd-create-again", crds, crd()),
        Step::post("crd-create-non-structural", crds, bad_crd),
        Step::post("crd-create-name-mismatch", crds, wrong_name),
        Step::post(
            "cr-create",
            &ws,
            widget(
                "first",
                json!({"color": "red", "tags": ["a"], "unknown": 1, "extra": {"free": {"form": true}}}),
            ),
        ),
        Step::get("cr-get", &w),
        Step::post(
            "cr-create-defaults-only",
            &ws,
            widget("second", json!({"color": "blue"})),
        ),
        Step::post(
            "cr-create-too-big",
            &ws,
            widget("big", json!({"color": "red", "size": 20})),
        ),
        Step::post(
            "cr-create-bad-enum",
            &ws,
            widget("enum", json!({"color": "green"})),
        ),
        Step::post(
            "cr-create-wrong-type",
            &ws,
            widget("type", json!({"color": "red", "size": "large"})),
        ),
        Step::post(
            "cr-create-missing-required",
            &ws,
            widget("req", json!({"size": 2})),
        ),
        Step::post(
            "cr-create-too-many-items",
            &ws,
            widget(
                "items",
                json!({"color": "red", "tags": ["a", "b", "c", "d"]}),
            ),
        ),
        Step::post(
            "cr-create-bad-pattern",
            &ws,
            widget("pat", json!({"color": "red", "name": "UPPER-and-long"})),
        ),
        Step::post(
            "cr-create-many-errors",
            &ws,
            widget("many", json!({"color": "pink", "size": 0, "tags": [1]})),
        ),
        Step::post(
            "cr-create-strict-unknown",
            &format!("{ws}?fieldValidation=Strict"),
            widget("strict", json!({"color": "red", "unknown": 1})),
        ),
        Step::post(
            "cr-create-strict-ok",
            &format!("{ws}?fieldValidation=Strict"),
            widget("strict-ok", json!({"color": "red"})),
        ),
        Step::post(
            "cr-create-warn-unknown",
            &format!("{ws}?fieldValidation=Warn"),
            widget("warn", json!({"color": "red", "unknown": 1})),
        ),
        Step::post(
            "cr-create-top-level-unknown",
            &ws,
            json!({"apiVersion": format!("{GROUP}/v1"), "kind": "Widget", "metadata": {"name": "top"}, "spec": {"color": "red"}, "other": {"x": 1}}),
        ),
        Step::get("cr-list", &ws),
        Step::get(
            "cr-list-all-namespaces",
            &format!("/apis/{GROUP}/v1/widgets"),
        ),
        Step::get("cr-get-missing", &format!("{ws}/absent")),
        Step::patch("cr-merge-spec", &w, MERGE, json!({"spec": {"size": 5}})),
        Step::patch(
            "cr-merge-status-ignored",
            &w,
            MERGE,
            json!({"status": {"ready": true}}),
        ),
        Step::patch(
            "cr-json-patch",
            &w,
            JSON_PATCH,
            json!([{"op": "add", "path": "/spec/tags/-", "value": "b"}]),
        ),
        Step::patch(
            "cr-strategic-unsupported",
            &w,
            STRATEGIC,
            json!({"spec": {"size": 6}}),
        ),
        Step::patch("cr-merge-invalid", &w, MERGE, json!({"spec": {"size": 11}})),
        Step::patch(
            "cr-merge-remove-defaulted",
            &w,
            MERGE,
            json!({"spec": {"size": null}}),
        ),
        Step::patch(
            "status-merge",
            &format!("{w}/status"),
            MERGE,
            json!({"status": {"ready": true, "replicas": 1, "selector": "app=w"}, "spec": {"size": 9}}),
        ),
        Step::get("status-get", &format!("{w}/status")),
        Step::put(
            "status-put",
            &format!("{w}/status"),
            json!({"apiVersion": format!("{GROUP}/v1"), "kind": "Widget", "metadata": {"name": "first"}, "spec": {"color": "blue"}, "status": {"ready": false, "replicas": 2, "selector": "app=w"}}),
        ),
        Step::patch(
            "status-invalid",
            &format!("{w}/status"),
            MERGE,
            json!({"status": {"replicas": "many"}}),
        ),
        Step::get("scale-get", &format!("{w}/scale")),
        Step::put(
            "scale-put",
            &format!("{w}/scale"),
            json!({"apiVersion": "autoscaling/v1", "kind": "Scale", "metadata": {"name": "first", "namespace": NS}, "spec": {"replicas": 4}}),
        ),
        Step::patch(
            "scale-patch",
            &format!("{w}/scale"),
            MERGE,
            json!({"spec": {"replicas": 6}}),
        ),
        Step::get("scale-get-after", &format!("{w}/scale")),
        Step::get("scale-missing", &format!("{ws}/absent/scale")),
        Step::get("cr-get-after-subresources", &w),
        Step::put(
            "cr-update",
            &w,
            widget("first", json!({"color": "blue", "replicas": 6})),
        ),
        Step::get(
            "deploy-scale-get",
            &format!("/apis/apps/v1/namespaces/{NS}/deployments/patched/scale"),
        ),
        Step::patch(
            "deploy-scale-patch",
            &format!("/apis/apps/v1/namespaces/{NS}/deployments/patched/scale"),
            MERGE,
            json!({"spec": {"replicas": 3}}),
        ),
        Step::patch(
            "deploy-status-patch",
            &format!("/apis/apps/v1/namespaces/{NS}/deployments/patched/status"),
            MERGE,
            json!({"status": {"observedGeneration": 1}}),
        ),
        Step::get(
            "deploy-after-subresources",
            &format!("/apis/apps/v1/namespaces/{NS}/deployments/patched"),
        ),
        Step::delete("cr-delete", &w),
        Step::poll("cr-gone", &w, Until::Code(404)),
        Step::delete("crd-delete", &crd_path),
        Step::poll("crd-gone", &crd_path, Until::Code(404)),
        Step::poll("crd-objects-gone", &ws, Until::Code(404)),
    ]
}
