//! The clean-up of desired objects for server-side apply
//! (`sanitizeForSSACompare` in Metacontroller's
//! `pkg/controller/common/manage_children.go`).

use serde_json::Value;

use crate::last_applied::LAST_APPLIED_ANNOTATION;
use crate::update::OBJECT_META_SYSTEM_FIELDS;

/// Cleans a desired object for a server-side apply request (and for
/// comparing SSA results): removes the system `metadata` fields of
/// [`OBJECT_META_SYSTEM_FIELDS`], `status`, and the last-applied annotation;
/// `metadata.annotations` is dropped when that removal leaves it empty.
pub fn sanitize_for_ssa(desired: &Value) -> Value {
    let mut out = desired.clone();
    if let Some(Value::Object(meta)) = out.get_mut("metadata") {
        for field in OBJECT_META_SYSTEM_FIELDS {
            meta.remove(field);
        }
        if let Some(Value::Object(ann)) = meta.get_mut("annotations")
            && ann.remove(LAST_APPLIED_ANNOTATION).is_some()
            && ann.is_empty()
        {
            meta.remove("annotations");
        }
    }
    if let Value::Object(root) = &mut out {
        root.remove("status");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn sanitize_for_ssa_table() {
        // (name, input, want)
        let cases: &[(&str, Value, Value)] = &[
            (
                "system fields, status and annotation removed",
                json!({
                    "apiVersion": "v1", "kind": "ConfigMap",
                    "metadata": {
                        "name": "c", "namespace": "n", "uid": "u", "resourceVersion": "1",
                        "generation": 1, "creationTimestamp": "t", "deletionTimestamp": "t",
                        "deletionGracePeriodSeconds": 0, "managedFields": [], "selfLink": "/s",
                        "labels": {"a": "b"},
                        "annotations": {LAST_APPLIED_ANNOTATION: "{}", "keep": "1"},
                        "ownerReferences": [{"uid": "p"}], "finalizers": ["f"]
                    },
                    "data": {"k": "v"},
                    "status": {"x": 1}
                }),
                json!({
                    "apiVersion": "v1", "kind": "ConfigMap",
                    "metadata": {
                        "name": "c", "namespace": "n", "labels": {"a": "b"},
                        "annotations": {"keep": "1"},
                        "ownerReferences": [{"uid": "p"}], "finalizers": ["f"]
                    },
                    "data": {"k": "v"}
                }),
            ),
            (
                "annotations emptied by the removal are dropped",
                json!({"metadata": {"name": "c", "annotations": {LAST_APPLIED_ANNOTATION: "{}"}}}),
                json!({"metadata": {"name": "c"}}),
            ),
            (
                "explicitly empty annotations are kept",
                json!({"metadata": {"name": "c", "annotations": {}}}),
                json!({"metadata": {"name": "c", "annotations": {}}}),
            ),
            (
                "nothing to remove",
                json!({"kind": "X", "spec": {"status": "kept"}}),
                json!({"kind": "X", "spec": {"status": "kept"}}),
            ),
        ];
        for (name, input, want) in cases {
            assert_eq!(sanitize_for_ssa(input), *want, "{name}");
        }
    }
}
