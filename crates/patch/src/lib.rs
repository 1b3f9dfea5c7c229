//! Kubernetes patch semantics as pure functions over [`serde_json::Value`].
//!
//! The embedded API server uses this crate to answer `PATCH` requests the
//! way the Kubernetes API server does. Three patch types are supported,
//! chosen by the request's `Content-Type` (see [`PatchType`]):
//!
//! * JSON patch, RFC 6902 (`application/json-patch+json`):
//!   [`apply_json_patch`];
//! * JSON merge patch, RFC 7386 (`application/merge-patch+json`):
//!   [`json_merge_patch`];
//! * strategic merge patch (`application/strategic-merge-patch+json`):
//!   [`strategic_merge_patch`], driven by the per-kind patch metadata of
//!   [`schema_for`].
//!
//! [`apply_patch`] ties these together for a request body and classifies
//! failures like Kubernetes does ([`PatchError::status_code`]): a body that
//! is not a usable patch is 400 BadRequest, a JSON patch operation that
//! fails is 422 Invalid, and a strategic merge patch for a kind without
//! built-in metadata (a custom resource) is 415 UnsupportedMediaType.
//!
//! The [`managed`] module holds the field management of server-side apply:
//! field sets in Kubernetes' `FieldsV1` encoding, merging an applied
//! configuration, and moving ownership between field managers.
//!
//! Every function leaves its inputs untouched and returns a new value.
//!
//! This crate is deliberately self-contained: it must not depend on HTTP,
//! on any I/O, or on any other crate of the workspace. It only computes
//! patched documents.

mod builtin;
mod error;
mod jsonpatch;
pub mod managed;
mod merge;
mod schema;
mod strategic;

use serde_json::Value;

pub use builtin::{builtin_kinds, schema_for};
pub use error::PatchError;
pub use jsonpatch::{MAX_JSON_PATCH_OPERATIONS, apply_json_patch};
pub use merge::json_merge_patch;
pub use schema::{FieldSchema, PatchStrategy, Schema};
pub use strategic::strategic_merge_patch;

/// The patch formats of `PATCH` requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PatchType {
    /// JSON patch (RFC 6902), `application/json-patch+json`.
    Json,
    /// JSON merge patch (RFC 7386), `application/merge-patch+json`.
    Merge,
    /// Kubernetes strategic merge patch,
    /// `application/strategic-merge-patch+json`.
    StrategicMerge,
}

impl PatchType {
    /// The patch type named by a `Content-Type` header value. Parameters
    /// such as `; charset=utf-8` are ignored, as is letter case. Returns
    /// `None` for anything else, including server-side apply
    /// (`application/apply-patch+yaml`), which is not a patch of this kind.
    pub fn from_content_type(ct: &str) -> Option<PatchType> {
        let media_type = ct.split(';').next().unwrap_or_default().trim();
        [PatchType::Json, PatchType::Merge, PatchType::StrategicMerge]
            .into_iter()
            .find(|pt| pt.content_type().eq_ignore_ascii_case(media_type))
    }

    /// The media type of this patch type.
    pub fn content_type(self) -> &'static str {
        match self {
            PatchType::Json => "application/json-patch+json",
            PatchType::Merge => "application/merge-patch+json",
            PatchType::StrategicMerge => "application/strategic-merge-patch+json",
        }
    }
}

/// Applies the request body `patch` of type `pt` to `original`, an object
/// of API group `group` (`""` for the core group) and kind `kind`, and
/// returns the patched object. `original` is left untouched.
///
/// As in Kubernetes:
///
/// * a strategic merge patch for a kind [`schema_for`] does not know is
///   refused with [`PatchError::StrategicMergeUnsupported`] (415) before the
///   body is looked at;
/// * a body that is not JSON is a [`PatchError::BadRequest`] (400), so is a
///   JSON patch that is not an array and a merge or strategic merge patch
///   that is not an object (a strategic merge patch of `null` changes
///   nothing);
/// * a JSON patch operation that fails is [`PatchError::JsonPatchFailed`]
///   (422), and so is a JSON patch whose result is not an object
///   ([`PatchError::Invalid`]).
pub fn apply_patch(
    pt: PatchType,
    group: &str,
    kind: &str,
    original: &Value,
    patch: &[u8],
) -> Result<Value, PatchError> {
    let schema =
        match pt {
            PatchType::StrategicMerge => Some(schema_for(group, kind).ok_or_else(|| {
                PatchError::StrategicMergeUnsupported {
                    group: group.to_owned(),
                    kind: kind.to_owned(),
                }
            })?),
            PatchType::Json | PatchType::Merge => None,
        };
    let patch: Value = serde_json::from_slice(patch)
        .map_err(|e| PatchError::BadRequest(format!("the patch is not valid JSON: {e}")))?;
    match pt {
        PatchType::Json => {
            let patched = apply_json_patch(original, &patch)?;
            if !patched.is_object() {
                return Err(PatchError::Invalid(format!(
                    "the patched document must be an object, got {}",
                    jsonpatch::json_type(&patched)
                )));
            }
            Ok(patched)
        }
        PatchType::Merge => {
            if !patch.is_object() {
                return Err(PatchError::BadRequest(format!(
                    "a merge patch must be a JSON object, got {}",
                    jsonpatch::json_type(&patch)
                )));
            }
            Ok(merge::kubernetes_merge_patch(original, &patch))
        }
        PatchType::StrategicMerge => strategic_merge_patch(original, &patch, schema),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn content_types() {
        let cases = [
            ("application/json-patch+json", Some(PatchType::Json)),
            ("application/merge-patch+json", Some(PatchType::Merge)),
            (
                "application/strategic-merge-patch+json",
                Some(PatchType::StrategicMerge),
            ),
            (
                "application/merge-patch+json; charset=utf-8",
                Some(PatchType::Merge),
            ),
            (
                "application/strategic-merge-patch+json;charset=UTF-8",
                Some(PatchType::StrategicMerge),
            ),
            (" Application/JSON-Patch+JSON ", Some(PatchType::Json)),
            ("application/json", None),
            ("application/apply-patch+yaml", None),
            ("", None),
            ("; charset=utf-8", None),
        ];
        for (ct, expected) in cases {
            assert_eq!(PatchType::from_content_type(ct), expected, "{ct:?}");
        }
        for pt in [PatchType::Json, PatchType::Merge, PatchType::StrategicMerge] {
            assert_eq!(PatchType::from_content_type(pt.content_type()), Some(pt));
        }
    }

    fn configmap() -> Value {
        json!({
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "cm", "namespace": "default", "finalizers": ["a"]},
            "data": {"k": "v", "drop": "me"}
        })
    }

    #[test]
    fn each_patch_type() {
        let cases: [(PatchType, &str, Value); 4] = [
            (
                PatchType::Json,
                r#"[{"op":"add","path":"/data/n","value":"1"}]"#,
                json!({"k": "v", "drop": "me", "n": "1"}),
            ),
            (
                PatchType::Merge,
                r#"{"data":{"drop":null,"n":"1"}}"#,
                json!({"k": "v", "n": "1"}),
            ),
            (
                PatchType::StrategicMerge,
                r#"{"data":{"drop":null,"n":"1"},"metadata":{"finalizers":["b"]}}"#,
                json!({"k": "v", "n": "1"}),
            ),
            (
                PatchType::StrategicMerge,
                "null",
                json!({"k": "v", "drop": "me"}),
            ),
        ];
        for (pt, body, data) in cases {
            let original = configmap();
            let out = apply_patch(pt, "", "ConfigMap", &original, body.as_bytes())
                .unwrap_or_else(|e| panic!("{pt:?} {body}: {e}"));
            assert_eq!(out["data"], data, "{pt:?} {body}");
            assert_eq!(original, configmap(), "original must not change");
        }
        let out = apply_patch(
            PatchType::StrategicMerge,
            "",
            "ConfigMap",
            &configmap(),
            br#"{"metadata":{"finalizers":["b"]}}"#,
        )
        .unwrap();
        assert_eq!(out["metadata"]["finalizers"], json!(["b", "a"]));
    }

    #[test]
    fn error_classes() {
        let cm = configmap();
        let cases: [(PatchType, &str, &str, &str, u16); 14] = [
            // not JSON at all
            (PatchType::Json, "", "ConfigMap", "[{", 400),
            (PatchType::Merge, "", "ConfigMap", "{", 400),
            (PatchType::StrategicMerge, "", "ConfigMap", "nope", 400),
            // wrong top-level shape
            (PatchType::Json, "", "ConfigMap", r#"{"op":"add"}"#, 400),
            (PatchType::Merge, "", "ConfigMap", "[]", 400),
            (PatchType::Merge, "", "ConfigMap", "null", 400),
            (PatchType::Merge, "", "ConfigMap", "\"x\"", 400),
            (PatchType::StrategicMerge, "", "ConfigMap", "[]", 400),
            // operations that fail
            (
                PatchType::Json,
                "",
                "ConfigMap",
                r#"[{"op":"test","path":"/data/k","value":"other"}]"#,
                422,
            ),
            (
                PatchType::Json,
                "",
                "ConfigMap",
                r#"[{"op":"remove","path":"/data/none"}]"#,
                422,
            ),
            (
                PatchType::Json,
                "",
                "ConfigMap",
                r#"[{"op":"replace","path":"","value":[]}]"#,
                422,
            ),
            // strategic merge for custom resources, even with a bad body
            (
                PatchType::StrategicMerge,
                "metacontroller.k8s.io",
                "CompositeController",
                "{}",
                415,
            ),
            (
                PatchType::StrategicMerge,
                "example.com",
                "Widget",
                "nope",
                415,
            ),
            // an object-level directive Kubernetes does not accept
            (
                PatchType::StrategicMerge,
                "",
                "ConfigMap",
                r#"{"data":{"$patch":"merge"}}"#,
                500,
            ),
        ];
        for (pt, group, kind, body, code) in cases {
            let err = apply_patch(pt, group, kind, &cm, body.as_bytes())
                .expect_err(&format!("{pt:?} {body}"));
            assert_eq!(err.status_code(), code, "{pt:?} {body}: {err}");
            assert_eq!(err.is_invalid(), code == 422, "{pt:?} {body}");
        }
    }

    #[test]
    fn merge_and_json_patch_work_for_custom_resources() {
        let widget =
            json!({"apiVersion": "example.com/v1", "kind": "Widget", "spec": {"items": [1, 2]}});
        let merged = apply_patch(
            PatchType::Merge,
            "example.com",
            "Widget",
            &widget,
            br#"{"spec":{"items":[3]}}"#,
        )
        .unwrap();
        assert_eq!(merged["spec"]["items"], json!([3]));
        let patched = apply_patch(
            PatchType::Json,
            "example.com",
            "Widget",
            &widget,
            br#"[{"op":"add","path":"/spec/items/-","value":3}]"#,
        )
        .unwrap();
        assert_eq!(patched["spec"]["items"], json!([1, 2, 3]));
    }
}
