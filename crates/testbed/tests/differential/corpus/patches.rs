//! Patch semantics beyond the basic sequence: strategic-merge list merging
//! and directives, merge-patch nulls, every JSON-patch operation, and the
//! errors of malformed patches.

use serde_json::json;

use super::NS;
use crate::step::{JSON, JSON_PATCH, MERGE, STRATEGIC, Step};

pub fn all() -> Vec<Step> {
    let deploys = format!("/apis/apps/v1/namespaces/{NS}/deployments");
    let d = format!("{deploys}/patched");
    let cms = format!("/api/v1/namespaces/{NS}/configmaps");
    let cm = format!("{cms}/patched");
    vec![
        Step::post(
            "patch-deploy-create",
            &deploys,
            json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "patched"},
                "spec": {"selector": {"matchLabels": {"app": "p"}}, "template": {"metadata": {"labels": {"app": "p"}},
                "spec": {"containers": [
                    {"name": "a", "image": "a:1", "env": [{"name": "X", "value": "1"}, {"name": "Y", "value": "2"}]},
                    {"name": "b", "image": "b:1"}]}}}}),
        ),
        Step::patch(
            "patch-smp-merge-by-name",
            &d,
            STRATEGIC,
            json!({"spec": {"template": {"spec": {"containers": [{"name": "a", "image": "a:2", "env": [{"name": "Y", "value": "3"}, {"name": "Z", "value": "4"}]}]}}}}),
        ),
        Step::patch(
            "patch-smp-delete-directive",
            &d,
            STRATEGIC,
            json!({"spec": {"template": {"spec": {"containers": [{"name": "b", "$patch": "delete"}]}}}}),
        ),
        Step::patch(
            "patch-smp-delete-from-primitive-list",
            &d,
            STRATEGIC,
            json!({"metadata": {"finalizers": ["x/a", "x/b"]}}),
        ),
        Step::patch(
            "patch-smp-delete-primitive",
            &d,
            STRATEGIC,
            json!({"$deleteFromPrimitiveList/metadata": null, "metadata": {"$deleteFromPrimitiveList/finalizers": ["x/a"]}}),
        ),
        Step::patch(
            "patch-smp-replace-list",
            &d,
            STRATEGIC,
            json!({"spec": {"template": {"spec": {"containers": [{"name": "c", "image": "c:1"}, {"$patch": "replace"}]}}}}),
        ),
        Step::patch(
            "patch-merge-replaces-list",
            &d,
            MERGE,
            json!({"spec": {"template": {"spec": {"containers": [{"name": "d", "image": "d:1"}]}}}}),
        ),
        Step::patch(
            "patch-merge-clear-finalizers",
            &d,
            MERGE,
            json!({"metadata": {"finalizers": null}}),
        ),
        Step::get("patch-deploy-get", &d),
        Step::post(
            "patch-cm-create",
            &cms,
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "patched", "labels": {"a": "1"}}, "data": {"k": "v", "list": "1,2"}}),
        ),
        Step::patch(
            "patch-json-add",
            &cm,
            JSON_PATCH,
            json!([{"op": "add", "path": "/data/n", "value": "new"}]),
        ),
        Step::patch(
            "patch-json-remove",
            &cm,
            JSON_PATCH,
            json!([{"op": "remove", "path": "/data/list"}]),
        ),
        Step::patch(
            "patch-json-move",
            &cm,
            JSON_PATCH,
            json!([{"op": "move", "from": "/data/n", "path": "/data/moved"}]),
        ),
        Step::patch(
            "patch-json-copy",
            &cm,
            JSON_PATCH,
            json!([{"op": "copy", "from": "/data/k", "path": "/data/copied"}]),
        ),
        Step::patch(
            "patch-json-remove-missing",
            &cm,
            JSON_PATCH,
            json!([{"op": "remove", "path": "/data/absent"}]),
        ),
        Step::patch(
            "patch-json-bad-op",
            &cm,
            JSON_PATCH,
            json!([{"op": "frobnicate", "path": "/data/k"}]),
        ),
        Step::patch(
            "patch-json-not-array",
            &cm,
            JSON_PATCH,
            json!({"op": "add"}),
        ),
        Step::patch(
            "patch-json-change-name",
            &cm,
            JSON_PATCH,
            json!([{"op": "replace", "path": "/metadata/name", "value": "renamed"}]),
        ),
        Step::patch("patch-merge-null-data", &cm, MERGE, json!({"data": null})),
        Step::patch(
            "patch-merge-wrong-type",
            &cm,
            MERGE,
            json!({"data": "text"}),
        ),
        Step::patch(
            "patch-unsupported-type",
            &cm,
            JSON,
            json!({"data": {"a": "b"}}),
        ),
        Step::patch(
            "patch-missing-object",
            &format!("{cms}/absent"),
            MERGE,
            json!({"data": {"a": "b"}}),
        ),
        Step::patch(
            "patch-smp-unknown-field",
            &cm,
            STRATEGIC,
            json!({"data": {"z": "1"}, "bogus": true}),
        ),
        Step::get("patch-cm-get", &cm),
    ]
}
