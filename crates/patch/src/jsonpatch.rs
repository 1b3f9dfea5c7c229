//! JSON patch (RFC 6902), `application/json-patch+json`.
//!
//! The operations themselves are carried out by the `json-patch` crate. This
//! module adds the request handling of the Kubernetes API server
//! (`jsonPatcher.applyJSPatch` in `k8s.io/apiserver/pkg/endpoints/handlers/patch.go`):
//! the document must decode as a list of objects (400 otherwise), at most
//! 10000 operations are accepted (413), and an operation that cannot be
//! applied makes the request unprocessable (422).

use ::json_patch::PatchOperation;
use serde_json::Value;

use crate::PatchError;

/// Most operations Kubernetes accepts in one JSON patch
/// (`maxJSONPatchOperations`).
pub const MAX_JSON_PATCH_OPERATIONS: usize = 10_000;

/// Applies a JSON patch (RFC 6902) document to `original` and returns the
/// result; `original` is left untouched. Either every operation applies or
/// an error is returned.
///
/// Errors: [`PatchError::BadRequest`] when `patch` is not an array of
/// objects, [`PatchError::TooManyOperations`] beyond
/// [`MAX_JSON_PATCH_OPERATIONS`], [`PatchError::JsonPatchFailed`] when an
/// operation is malformed or fails (`test` mismatch, missing path, ...).
pub fn apply_json_patch(original: &Value, patch: &Value) -> Result<Value, PatchError> {
    let Value::Array(ops) = patch else {
        return Err(PatchError::BadRequest(format!(
            "a JSON patch must be an array of operations, got {}",
            json_type(patch)
        )));
    };
    if let Some((index, op)) = ops.iter().enumerate().find(|(_, op)| !op.is_object()) {
        return Err(PatchError::BadRequest(format!(
            "JSON patch operation {index} must be an object, got {}",
            json_type(op)
        )));
    }
    if ops.len() > MAX_JSON_PATCH_OPERATIONS {
        return Err(PatchError::TooManyOperations {
            count: ops.len(),
            max: MAX_JSON_PATCH_OPERATIONS,
        });
    }

    let mut doc = original.clone();
    for (index, raw) in ops.iter().enumerate() {
        // Kubernetes decodes operations lazily and reports a malformed
        // operation (unknown `op`, missing `path`) when it is applied, as an
        // unprocessable request rather than a bad one.
        let op: PatchOperation =
            serde_json::from_value(raw.clone()).map_err(|e| PatchError::JsonPatchFailed {
                index,
                message: format!("malformed operation: {e}"),
            })?;
        if test_of_absent_key_against_null(&doc, &op) {
            continue;
        }
        ::json_patch::patch(&mut doc, std::slice::from_ref(&op)).map_err(|e| {
            PatchError::JsonPatchFailed {
                index,
                message: format!("{} {}: {}", op_name(&op), op.path(), e.kind),
            }
        })?;
    }
    Ok(doc)
}

/// The JSON patch library used by Kubernetes treats a key missing from an
/// existing object as `null` in a `test` operation, so testing for `null`
/// succeeds there. RFC 6902 would report the missing path.
fn test_of_absent_key_against_null(doc: &Value, op: &PatchOperation) -> bool {
    let PatchOperation::Test(test) = op else {
        return false;
    };
    if !test.value.is_null() {
        return false;
    }
    let Some((parent, last)) = test.path.split_back() else {
        return false;
    };
    match doc.pointer(parent.as_str()) {
        Some(Value::Object(map)) => !map.contains_key(last.decoded().as_ref()),
        _ => false,
    }
}

fn op_name(op: &PatchOperation) -> &'static str {
    match op {
        PatchOperation::Add(_) => "add",
        PatchOperation::Remove(_) => "remove",
        PatchOperation::Replace(_) => "replace",
        PatchOperation::Move(_) => "move",
        PatchOperation::Copy(_) => "copy",
        PatchOperation::Test(_) => "test",
    }
}

pub(crate) fn json_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod() -> Value {
        json!({
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "p", "labels": {"app": "web"}, "finalizers": ["a", "b"]},
            "spec": {"containers": [{"name": "web", "image": "nginx:1.0"}]}
        })
    }

    #[test]
    fn kubectl_patch_type_json_examples() {
        let cases = [
            (
                "replace image",
                json!([{"op": "replace", "path": "/spec/containers/0/image", "value": "nginx:2.0"}]),
                json!({"web": "nginx:2.0"}),
            ),
            (
                "append container",
                json!([{"op": "add", "path": "/spec/containers/-", "value": {"name": "side", "image": "envoy"}}]),
                json!({"web": "nginx:1.0", "side": "envoy"}),
            ),
            (
                "test then replace",
                json!([
                    {"op": "test", "path": "/spec/containers/0/name", "value": "web"},
                    {"op": "replace", "path": "/spec/containers/0/image", "value": "nginx:3.0"}
                ]),
                json!({"web": "nginx:3.0"}),
            ),
            (
                "copy and move",
                json!([
                    {"op": "copy", "from": "/spec/containers/0", "path": "/spec/containers/1"},
                    {"op": "replace", "path": "/spec/containers/1/name", "value": "copy"},
                    {"op": "move", "from": "/spec/containers/1", "path": "/spec/containers/0"}
                ]),
                json!({"copy": "nginx:1.0", "web": "nginx:1.0"}),
            ),
        ];
        for (name, patch, images) in cases {
            let original = pod();
            let out = apply_json_patch(&original, &patch).unwrap_or_else(|e| panic!("{name}: {e}"));
            let got: serde_json::Map<String, Value> = out["spec"]["containers"]
                .as_array()
                .unwrap()
                .iter()
                .map(|c| (c["name"].as_str().unwrap().to_owned(), c["image"].clone()))
                .collect();
            assert_eq!(Value::Object(got), images, "{name}");
            assert_eq!(original, pod(), "{name}: original must not change");
        }
    }

    #[test]
    fn removes_and_escapes() {
        let original = json!({"metadata": {"annotations": {"example.com/a~b": "x", "keep": "y"}}});
        let patch = json!([{"op": "remove", "path": "/metadata/annotations/example.com~1a~0b"}]);
        assert_eq!(
            apply_json_patch(&original, &patch).unwrap(),
            json!({"metadata": {"annotations": {"keep": "y"}}})
        );
    }

    #[test]
    fn test_of_missing_key_against_null_passes() {
        let patch = json!([
            {"op": "test", "path": "/metadata/deletionTimestamp", "value": null},
            {"op": "add", "path": "/metadata/labels/x", "value": "1"}
        ]);
        let out = apply_json_patch(&pod(), &patch).unwrap();
        assert_eq!(out["metadata"]["labels"]["x"], "1");
    }

    #[test]
    fn error_classes() {
        let cases: [(&str, Value, u16); 10] = [
            ("object instead of array", json!({"op": "add"}), 400),
            ("string instead of array", json!("x"), 400),
            ("non-object operation", json!([1]), 400),
            (
                "test fails",
                json!([{"op": "test", "path": "/metadata/name", "value": "other"}]),
                422,
            ),
            (
                "missing path",
                json!([{"op": "replace", "path": "/spec/nodeName", "value": "n"}]),
                422,
            ),
            (
                "remove missing",
                json!([{"op": "remove", "path": "/metadata/labels/none"}]),
                422,
            ),
            (
                "index out of range",
                json!([{"op": "add", "path": "/spec/containers/5", "value": {}}]),
                422,
            ),
            (
                "unknown op",
                json!([{"op": "frobnicate", "path": "/a"}]),
                422,
            ),
            (
                "missing path member",
                json!([{"op": "add", "value": 1}]),
                422,
            ),
            (
                "test of missing key with non-null",
                json!([{"op": "test", "path": "/metadata/uid", "value": "u"}]),
                422,
            ),
        ];
        for (name, patch, code) in cases {
            let err = apply_json_patch(&pod(), &patch).expect_err(name);
            assert_eq!(err.status_code(), code, "{name}: {err}");
        }
    }

    #[test]
    fn failure_reports_operation_index() {
        let patch = json!([
            {"op": "add", "path": "/metadata/labels/x", "value": "1"},
            {"op": "test", "path": "/metadata/name", "value": "nope"}
        ]);
        match apply_json_patch(&pod(), &patch) {
            Err(PatchError::JsonPatchFailed { index, message }) => {
                assert_eq!(index, 1);
                assert!(message.contains("/metadata/name"), "{message}");
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn operation_limit() {
        let op = json!({"op": "test", "path": "/kind", "value": "Pod"});
        let at_limit = Value::Array(vec![op.clone(); MAX_JSON_PATCH_OPERATIONS]);
        assert!(apply_json_patch(&pod(), &at_limit).is_ok());
        let over = Value::Array(vec![op; MAX_JSON_PATCH_OPERATIONS + 1]);
        assert_eq!(
            apply_json_patch(&pod(), &over).unwrap_err().status_code(),
            413
        );
    }
}
