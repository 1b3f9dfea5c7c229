//! Directive keys (`$patch`, `$retainKeys`, `$setElementOrder/...`,
//! `$deleteFromPrimitiveList/...`), item kinds and the errors of a
//! malformed patch.

use serde_json::{Map, Value};

use crate::PatchError;
use crate::jsonpatch::json_type;

pub(super) const PATCH_DIRECTIVE: &str = "$patch";
pub(super) const RETAIN_KEYS_DIRECTIVE: &str = "$retainKeys";
pub(super) const SET_ELEMENT_ORDER_PREFIX: &str = "$setElementOrder";
pub(super) const DELETE_FROM_PRIMITIVE_LIST_PREFIX: &str = "$deleteFromPrimitiveList";

pub(super) fn require_merge_key(item: &Value, key: &str) -> Result<(), PatchError> {
    match item {
        Value::Object(fields) if fields.contains_key(key) => Ok(()),
        Value::Object(_) => Err(missing_merge_key(item, key)),
        _ => Err(not_an_object(item)),
    }
}

pub(super) fn is_delete_item(item: &Value) -> bool {
    item.get(PATCH_DIRECTIVE).and_then(Value::as_str) == Some("delete")
}

/// The field named by a `<prefix>/<field>` directive key.
pub(super) fn directive_target<'k>(key: &'k str, prefix: &str) -> Result<&'k str, PatchError> {
    match key.split_once('/') {
        Some((head, field)) if head == prefix => Ok(field),
        _ => Err(PatchError::BadRequest(format!(
            "invalid directive key {key:?}; expected {prefix}/<field>"
        ))),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    Null,
    Bool,
    Number,
    String,
    Array,
    Object,
}

pub(super) fn kind(value: &Value) -> Kind {
    match value {
        Value::Null => Kind::Null,
        Value::Bool(_) => Kind::Bool,
        Value::Number(_) => Kind::Number,
        Value::String(_) => Kind::String,
        Value::Array(_) => Kind::Array,
        Value::Object(_) => Kind::Object,
    }
}

/// The common kind of the items of `lists` (`sliceElementType`), `None`
/// when they are all empty. Lists of lists are unprocessable (422 in
/// Kubernetes); mixed or `null` items cannot be merged.
pub(super) fn element_kind(lists: &[&[Value]]) -> Result<Option<Kind>, PatchError> {
    let mut found = None;
    for item in lists.iter().flat_map(|list| list.iter()) {
        let this = kind(item);
        if this == Kind::Null {
            return Err(PatchError::MergeFailed(
                "a list with null items cannot be merged".to_owned(),
            ));
        }
        match found {
            None if this == Kind::Array => {
                return Err(PatchError::Invalid(
                    "strategic merge patch does not support lists of lists".to_owned(),
                ));
            }
            None => found = Some(this),
            Some(previous) if previous != this => {
                return Err(PatchError::MergeFailed(
                    "list items to merge do not all have the same type".to_owned(),
                ));
            }
            Some(_) => {}
        }
    }
    Ok(found)
}

pub(super) fn is_directive_key(key: &str) -> bool {
    key == PATCH_DIRECTIVE
        || key == RETAIN_KEYS_DIRECTIVE
        || key.starts_with(SET_ELEMENT_ORDER_PREFIX)
        || key.starts_with(DELETE_FROM_PRIMITIVE_LIST_PREFIX)
}

/// A patch value that lands where the original has nothing to merge with
/// (`discardNullValuesFromPatch` + `removeDirectives`): objects carrying
/// `$patch` disappear (`None` at the top), other directive keys are
/// dropped, and with `discard_nulls` so are `null`-valued keys.
pub(super) fn without_directives(value: Value, discard_nulls: bool) -> Option<Value> {
    match value {
        Value::Object(fields) => {
            let fields: Vec<(String, Value)> = fields
                .into_iter()
                .filter(|(_, v)| !(discard_nulls && v.is_null()))
                .collect();
            if fields.iter().any(|(k, _)| k == PATCH_DIRECTIVE) {
                return None;
            }
            Some(Value::Object(
                fields
                    .into_iter()
                    .filter(|(k, _)| !is_directive_key(k))
                    .filter_map(|(k, v)| without_directives(v, discard_nulls).map(|v| (k, v)))
                    .collect(),
            ))
        }
        Value::Array(items) => Some(Value::Array(
            items
                .into_iter()
                .filter_map(|v| without_directives(v, discard_nulls))
                .collect(),
        )),
        other => Some(other),
    }
}

/// A patch value taken over verbatim, minus any directive keys.
pub(super) fn strip_directive_keys(value: Value) -> Value {
    match value {
        Value::Object(fields) => Value::Object(strip_directive_keys_map(fields)),
        Value::Array(items) => Value::Array(items.into_iter().map(strip_directive_keys).collect()),
        other => other,
    }
}

pub(super) fn strip_directive_keys_map(fields: Map<String, Value>) -> Map<String, Value> {
    fields
        .into_iter()
        .filter(|(k, _)| !is_directive_key(k))
        .map(|(k, v)| (k, strip_directive_keys(v)))
        .collect()
}

pub(super) fn missing_merge_key(item: &Value, key: &str) -> PatchError {
    PatchError::MergeFailed(format!(
        "list item {item} does not contain the merge key {key:?}"
    ))
}

pub(super) fn not_an_object(item: &Value) -> PatchError {
    PatchError::MergeFailed(format!(
        "expected a list item to be an object, got {}",
        json_type(item)
    ))
}
