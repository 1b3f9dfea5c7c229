//! The merge itself: maps key by key, lists by merge key or as sets, with
//! the `$patch` and `$retainKeys` directives (`mergeMap`, `mergeSlice` in
//! `k8s.io/apimachinery/pkg/util/strategicpatch/patch.go`).

use std::collections::HashSet;

use serde_json::{Map, Value};

use super::directives::{
    DELETE_FROM_PRIMITIVE_LIST_PREFIX, Kind, PATCH_DIRECTIVE, RETAIN_KEYS_DIRECTIVE,
    SET_ELEMENT_ORDER_PREFIX, directive_target, element_kind, kind, missing_merge_key,
    not_an_object, strip_directive_keys, strip_directive_keys_map, without_directives,
};
use super::order::{apply_element_orders, order_items, partition};
use super::{Meta, meta};
use crate::PatchError;
use crate::schema::{PatchStrategy, Schema};

/// Merges `patch` into `original` (`mergeMap`).
pub(super) fn merge_map(
    mut original: Map<String, Value>,
    mut patch: Map<String, Value>,
    schema: Option<&Schema>,
) -> Result<Map<String, Value>, PatchError> {
    if let Some(directive) = patch.remove(PATCH_DIRECTIVE) {
        return match directive.as_str() {
            // The rest of the patch becomes the object.
            Some("replace") => Ok(strip_directive_keys_map(patch)),
            // The object is emptied; the key holding it stays.
            Some("delete") => Ok(Map::new()),
            _ => Err(PatchError::MergeFailed(format!(
                "unsupported {PATCH_DIRECTIVE} value {directive} in an object; expected \"replace\" or \"delete\""
            ))),
        };
    }

    apply_retain_keys(&mut original, &mut patch)?;
    apply_element_orders(&mut original, &mut patch, schema, |current, patch, meta| {
        merge_list_field(current, patch, meta, false)
    })?;

    // Deletions from primitive lists run after the other fields so that a
    // list added by the same patch is seen by them.
    let mut deletions = Vec::new();
    for (key, value) in patch {
        if key.starts_with(DELETE_FROM_PRIMITIVE_LIST_PREFIX) {
            deletions.push((key, value));
        } else {
            merge_field(&mut original, key, value, schema, false)?;
        }
    }
    for (key, value) in deletions {
        let field = directive_target(&key, DELETE_FROM_PRIMITIVE_LIST_PREFIX)?.to_owned();
        merge_field(&mut original, field, value, schema, true)?;
    }
    Ok(original)
}

/// Merges the patch value of one field into `original`. `deletion_list` is
/// set for the values of `$deleteFromPrimitiveList/<key>`.
pub(super) fn merge_field(
    original: &mut Map<String, Value>,
    key: String,
    patch: Value,
    schema: Option<&Schema>,
    deletion_list: bool,
) -> Result<(), PatchError> {
    if patch.is_null() {
        original.remove(&key);
        return Ok(());
    }
    let same_type = match original.get(&key) {
        Some(current) => kind(current) == kind(&patch),
        None => {
            if !deletion_list && let Some(value) = without_directives(patch, true) {
                original.insert(key, value);
            }
            return Ok(());
        }
    };
    if !same_type {
        if !deletion_list {
            match without_directives(patch, true) {
                Some(value) => {
                    original.insert(key, value);
                }
                None => {
                    original.remove(&key);
                }
            }
        }
        return Ok(());
    }

    let meta = meta(schema, &key);
    let current = original.get_mut(&key).expect("presence checked above");
    match (current, patch) {
        (Value::Object(current), Value::Object(patch)) => {
            *current = if meta.strategy == PatchStrategy::Replace {
                strip_directive_keys_map(patch)
            } else {
                merge_map(std::mem::take(current), patch, meta.schema)?
            };
        }
        (Value::Array(current), Value::Array(patch)) => {
            *current = merge_list_field(std::mem::take(current), patch, meta, deletion_list)?;
        }
        (current, patch) => *current = patch,
    }
    Ok(())
}

/// Merges or replaces a list field according to its strategy
/// (`mergeSliceHandler`).
pub(super) fn merge_list_field(
    current: Vec<Value>,
    patch: Vec<Value>,
    meta: Meta<'_>,
    deletion_list: bool,
) -> Result<Vec<Value>, PatchError> {
    if meta.strategy == PatchStrategy::Merge || deletion_list {
        merge_list(current, patch, meta.merge_key, meta.schema, deletion_list)
    } else {
        Ok(patch.into_iter().map(strip_directive_keys).collect())
    }
}

/// Merges two lists of a `patchStrategy: merge` field (`mergeSlice`).
pub(super) fn merge_list(
    original: Vec<Value>,
    patch: Vec<Value>,
    merge_key: Option<&str>,
    schema: Option<&Schema>,
    deletion_list: bool,
) -> Result<Vec<Value>, PatchError> {
    if original.is_empty() && patch.is_empty() {
        return Ok(original);
    }
    if element_kind(&[&original, &patch])? != Some(Kind::Object) {
        if deletion_list {
            let remove: HashSet<String> = patch.iter().map(Value::to_string).collect();
            return Ok(original
                .into_iter()
                .filter(|v| !remove.contains(&v.to_string()))
                .collect());
        }
        if let Some(key) = merge_key {
            return Err(PatchError::MergeFailed(format!(
                "list items must be objects with merge key {key:?}"
            )));
        }
        // A set union; the order is settled below.
        let mut seen = HashSet::new();
        let merged: Vec<Value> = original
            .iter()
            .chain(&patch)
            .filter(|v| seen.insert(v.to_string()))
            .cloned()
            .collect();
        let (in_patch, server_only) = partition(merged, &patch, None)?;
        return order_items(in_patch, server_only, &patch, &original, None);
    }

    let Some(key) = merge_key else {
        return Err(PatchError::MergeFailed(
            "cannot merge a list of objects that has no merge key".to_owned(),
        ));
    };
    let (original, patch) = apply_list_directives(original, patch, key)?;
    // Only the merge key values of the live items matter for ordering.
    let server_order: Vec<Value> = original.iter().map(|item| key_only(item, key)).collect();
    let merged = merge_items(original, &patch, key, schema)?;
    let (in_patch, server_only) = partition(merged, &patch, Some(key))?;
    order_items(in_patch, server_only, &patch, &server_order, Some(key))
}

/// `item` reduced to its merge key, standing in for it in an order list.
pub(super) fn key_only(item: &Value, key: &str) -> Value {
    match item {
        Value::Object(fields) => Value::Object(
            fields
                .get_key_value(key)
                .map(|(k, v)| (k.clone(), v.clone()))
                .into_iter()
                .collect(),
        ),
        other => other.clone(),
    }
}

/// Handles list items carrying `$patch` (`mergeSliceWithSpecialElements`):
/// deletes the items they name, or switches to replacing the list. Returns
/// the list to merge into and the remaining patch items.
pub(super) fn apply_list_directives(
    mut original: Vec<Value>,
    patch: Vec<Value>,
    key: &str,
) -> Result<(Vec<Value>, Vec<Value>), PatchError> {
    let mut replace = false;
    let mut rest = Vec::with_capacity(patch.len());
    for item in patch {
        let Some(directive) = item.get(PATCH_DIRECTIVE) else {
            rest.push(item);
            continue;
        };
        match directive.as_str() {
            Some("delete") => {
                let Some(target) = item.get(key) else {
                    return Err(missing_merge_key(&item, key));
                };
                original.retain(|o| o.get(key) != Some(target));
            }
            Some("replace") => replace = true,
            Some("merge") => {
                return Err(PatchError::MergeFailed(format!(
                    "{PATCH_DIRECTIVE}: merge is not supported as a list item"
                )));
            }
            _ => {
                return Err(PatchError::MergeFailed(format!(
                    "unsupported {PATCH_DIRECTIVE} value {directive} in list item {item}"
                )));
            }
        }
    }
    if replace {
        Ok((
            rest.into_iter().map(strip_directive_keys).collect(),
            Vec::new(),
        ))
    } else {
        Ok((original, rest))
    }
}

/// Merges each patch item into the first item with the same merge key
/// value, appending items that match none
/// (`mergeSliceWithoutSpecialElements`).
pub(super) fn merge_items(
    mut merged: Vec<Value>,
    patch: &[Value],
    key: &str,
    schema: Option<&Schema>,
) -> Result<Vec<Value>, PatchError> {
    for item in patch {
        let Value::Object(fields) = item else {
            return Err(not_an_object(item));
        };
        let Some(target) = fields.get(key) else {
            return Err(missing_merge_key(item, key));
        };
        let mut found = None;
        for (i, candidate) in merged.iter().enumerate() {
            let Value::Object(candidate) = candidate else {
                return Err(not_an_object(candidate));
            };
            if candidate.get(key) == Some(target) {
                found = Some(i);
                break;
            }
        }
        match found {
            Some(i) => {
                let Value::Object(current) = std::mem::take(&mut merged[i]) else {
                    unreachable!("checked to be an object above");
                };
                merged[i] = Value::Object(merge_map(current, fields.clone(), schema)?);
            }
            None => merged.push(strip_directive_keys(item.clone())),
        }
    }
    Ok(merged)
}

/// Applies `$retainKeys` (`applyRetainKeysDirective`): every key of
/// `original` not listed is dropped, and the patch may only set listed keys.
pub(super) fn apply_retain_keys(
    original: &mut Map<String, Value>,
    patch: &mut Map<String, Value>,
) -> Result<(), PatchError> {
    let Some(list) = patch.remove(RETAIN_KEYS_DIRECTIVE) else {
        return Ok(());
    };
    let Value::Array(list) = list else {
        return Err(PatchError::BadRequest(format!(
            "{RETAIN_KEYS_DIRECTIVE} must be a list of field names"
        )));
    };
    let retain: HashSet<&str> = list.iter().filter_map(Value::as_str).collect();
    for (key, value) in patch.iter() {
        if value.is_null()
            || key.starts_with(DELETE_FROM_PRIMITIVE_LIST_PREFIX)
            || key.starts_with(SET_ELEMENT_ORDER_PREFIX)
        {
            continue;
        }
        if !retain.contains(key.as_str()) {
            return Err(PatchError::BadRequest(format!(
                "field {key:?} is set by the patch but missing from {RETAIN_KEYS_DIRECTIVE}"
            )));
        }
    }
    original.retain(|key, _| retain.contains(key.as_str()));
    Ok(())
}
