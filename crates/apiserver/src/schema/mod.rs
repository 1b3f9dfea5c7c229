//! Structural schemas of custom resources: what the API server does to a
//! custom resource between decoding it and storing it, following
//! `k8s.io/apiextensions-apiserver`:
//!
//! * [`prune`](prune()) drops fields the schema does not specify
//!   (`pkg/apiserver/schema/pruning`), except below
//!   `x-kubernetes-preserve-unknown-fields: true`; `apiVersion`, `kind` and
//!   `metadata` of the object and of `x-kubernetes-embedded-resource`
//!   objects are kept, and their `metadata` loses whatever is not an
//!   `ObjectMeta` field;
//! * [`prune_nulls`] drops `null` values of non-nullable fields without a
//!   default (`PruneNonNullableNullsWithoutDefaults`);
//! * [`apply_defaults`] fills in `default:` values
//!   (`pkg/apiserver/schema/defaulting`), including inside array items and
//!   `additionalProperties`, and for `null` in non-nullable fields;
//! * [`validate`](validate()) / [`validate_update`] check the OpenAPI value
//!   constraints (`pkg/apiserver/validation`, kube-openapi's validators):
//!   types, `nullable`, `x-kubernetes-int-or-string`, `required`, `enum`,
//!   bounds, lengths, `pattern`, the common string `format`s, item counts,
//!   property counts, `allOf`/`anyOf`/`oneOf`/`not`, duplicate items of
//!   `x-kubernetes-list-type` `set` and `map` lists, and `apiVersion`/`kind`
//!   of embedded resources. Errors are worded as
//!   `k8s.io/apimachinery/pkg/util/validation/field` words them. On update,
//!   values unchanged from the stored object are not re-validated
//!   (validation ratcheting). `x-kubernetes-validations` (CEL) rules are
//!   not evaluated.
//!
//! The rest of the module applies them to the writes of an HTTP request:
//! server-side field validation (`fieldValidation=Strict|Warn|Ignore`,
//! `Warn` when absent) reports the fields pruning dropped and the
//! duplicate fields of the body as an error (`Strict`), as `Warning`
//! headers (`Warn`) or not at all (`Ignore`).
//!
//! Files: `prune`, `default`, `validate` (with
//! the string `format`s in `format`), the Go spellings of values in error
//! messages in `go_text`, duplicate fields of a body in `duplicates`, and
//! the per-request field validation in `field_validation`.

use serde_json::Value;

mod default;
mod duplicates;
mod field_validation;
mod format;
mod go_text;
mod prune;
#[cfg(test)]
mod tests;
mod validate;

pub use default::apply_defaults;
pub use duplicates::duplicate_fields;
pub use field_validation::{Directive, invalid};
pub(crate) use field_validation::{add_warnings, admit, check, with_request};
pub use go_text::{go_quote, go_value};
pub use prune::{prune, prune_nulls};
pub use validate::{SchemaViolation, ViolationKind, validate, validate_update};

/// Fields of an object (or embedded resource) that pruning never touches.
pub(super) const TYPE_AND_META: [&str; 3] = ["apiVersion", "kind", "metadata"];

/// The fields of `ObjectMeta`: anything else in `metadata` is dropped.
pub(super) const OBJECT_META_FIELDS: &[&str] = &[
    "annotations",
    "creationTimestamp",
    "deletionGracePeriodSeconds",
    "deletionTimestamp",
    "finalizers",
    "generateName",
    "generation",
    "labels",
    "managedFields",
    "name",
    "namespace",
    "ownerReferences",
    "resourceVersion",
    "selfLink",
    "uid",
];

pub(super) fn flag(s: &Value, name: &str) -> bool {
    s.get(name).and_then(Value::as_bool).unwrap_or(false)
}

pub(super) fn preserves_unknown(s: &Value) -> bool {
    flag(s, "x-kubernetes-preserve-unknown-fields")
}

pub(super) fn is_embedded(s: &Value) -> bool {
    flag(s, "x-kubernetes-embedded-resource")
}

pub(super) fn is_nullable(s: &Value) -> bool {
    flag(s, "nullable")
}

pub(super) fn property<'a>(s: &'a Value, key: &str) -> Option<&'a Value> {
    s.get("properties")?.as_object()?.get(key)
}

/// `additionalProperties` when it is a schema.
pub(super) fn additional(s: &Value) -> Option<&Value> {
    s.get("additionalProperties").filter(|a| a.is_object())
}

/// `additionalProperties: true`: any value, kept as it is.
pub(super) fn additional_any(s: &Value) -> bool {
    s.get("additionalProperties") == Some(&Value::Bool(true))
}

/// The schema of a field that is not a property, if any.
pub(super) fn property_or_additional<'a>(s: &'a Value, key: &str) -> Option<&'a Value> {
    property(s, key).or_else(|| additional(s))
}

pub(super) fn items(s: &Value) -> Option<&Value> {
    s.get("items").filter(|i| i.is_object())
}

/// The `default` of a schema (`default: null` is no default).
pub(super) fn default_of(s: &Value) -> Option<&Value> {
    s.get("default").filter(|d| !d.is_null())
}

pub(super) fn count(s: &Value, name: &str) -> Option<u64> {
    let v = s.get(name)?;
    v.as_u64()
        .or_else(|| v.as_f64().filter(|f| *f >= 0.0).map(|f| f as u64))
}

pub(super) fn child_path(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}
