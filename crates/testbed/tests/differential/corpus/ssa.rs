//! Server-side apply: create, no-op re-apply, field ownership, conflicts
//! (409 with causes) and force, removal of fields a manager stops applying,
//! list merge keys, and mixing apply with ordinary updates.

use serde_json::{Value, json};

use super::NS;
use crate::step::{APPLY, MERGE, Step};

fn cm(data: Value) -> Value {
    json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "ssa"}, "data": data})
}

fn deploy(containers: Value) -> Value {
    json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "ssa"},
        "spec": {"selector": {"matchLabels": {"app": "ssa"}}, "template": {"metadata": {"labels": {"app": "ssa"}},
        "spec": {"containers": containers}}}})
}

pub fn all() -> Vec<Step> {
    let cm_path = format!("/api/v1/namespaces/{NS}/configmaps/ssa");
    let d_path = format!("/apis/apps/v1/namespaces/{NS}/deployments/ssa");
    let by = |m: &str| format!("{cm_path}?fieldManager={m}");
    let dby = |m: &str| format!("{d_path}?fieldManager={m}");
    vec![
        Step::patch(
            "ssa-create",
            &by("alice"),
            APPLY,
            cm(json!({"a": "1", "b": "2"})),
        ),
        Step::patch(
            "ssa-reapply-noop",
            &by("alice"),
            APPLY,
            cm(json!({"a": "1", "b": "2"})),
        ),
        Step::patch(
            "ssa-bob-conflict",
            &by("bob"),
            APPLY,
            cm(json!({"a": "other"})),
        ),
        Step::patch(
            "ssa-bob-same-value",
            &by("bob"),
            APPLY,
            cm(json!({"b": "2", "c": "3"})),
        ),
        Step::patch(
            "ssa-bob-force",
            &format!("{}&force=true", by("bob")),
            APPLY,
            cm(json!({"a": "bob", "b": "2", "c": "3"})),
        ),
        Step::get("ssa-get", &cm_path),
        Step::patch(
            "ssa-alice-drops-a",
            &by("alice"),
            APPLY,
            cm(json!({"b": "2"})),
        ),
        Step::patch("ssa-bob-drops-all", &by("bob"), APPLY, cm(json!({}))),
        Step::get("ssa-get-after-drops", &cm_path),
        Step::patch(
            "ssa-update-by-merge",
            &by("carol"),
            MERGE,
            json!({"data": {"d": "4"}}),
        ),
        Step::patch(
            "ssa-alice-conflicts-with-update",
            &by("alice"),
            APPLY,
            cm(json!({"b": "2", "d": "alice"})),
        ),
        Step::patch(
            "ssa-no-field-manager",
            &cm_path,
            APPLY,
            cm(json!({"a": "1"})),
        ),
        Step::patch(
            "ssa-name-mismatch",
            &by("alice"),
            APPLY,
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "other"}}),
        ),
        Step::patch(
            "ssa-missing-kind",
            &by("alice"),
            APPLY,
            json!({"apiVersion": "v1", "metadata": {"name": "ssa"}}),
        ),
        Step::patch(
            "ssa-force-without-apply",
            &format!("{}&force=true", by("carol")),
            MERGE,
            json!({"data": {"e": "5"}}),
        ),
        Step::patch(
            "ssa-dry-run",
            &format!("{}&dryRun=All", by("dave")),
            APPLY,
            cm(json!({"z": "9"})),
        ),
        Step::get("ssa-final", &cm_path),
        Step::patch(
            "ssa-deploy-create",
            &dby("alice"),
            APPLY,
            deploy(json!([{"name": "a", "image": "a:1"}, {"name": "b", "image": "b:1"}])),
        ),
        Step::patch(
            "ssa-deploy-bob-adds-container",
            &dby("bob"),
            APPLY,
            deploy(json!([{"name": "c", "image": "c:1"}])),
        ),
        Step::patch(
            "ssa-deploy-bob-conflict-image",
            &dby("bob"),
            APPLY,
            deploy(json!([{"name": "a", "image": "a:2"}, {"name": "c", "image": "c:1"}])),
        ),
        Step::patch(
            "ssa-deploy-alice-drops-b",
            &dby("alice"),
            APPLY,
            deploy(json!([{"name": "a", "image": "a:1"}])),
        ),
        Step::get("ssa-deploy-get", &d_path),
    ]
}
