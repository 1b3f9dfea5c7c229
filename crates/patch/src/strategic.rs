//! Strategic merge patch, `application/strategic-merge-patch+json`.
//!
//! This follows what the Kubernetes API server does for built-in types:
//! `strategicpatch.StrategicMergeMapPatch` in
//! `k8s.io/apimachinery/pkg/util/strategicpatch/patch.go`, which merges with
//! parallel lists enabled and unmatched `null`s ignored. The patch format is
//! described in the Kubernetes community document
//! `contributors/devel/sig-api-machinery/strategic-merge-patch.md` and in
//! the design proposal on preserving list order
//! (`design-proposals-archive/cli/preserve-order-in-strategic-merge-patch.md`).
//!
//! In short:
//!
//! * objects merge key by key and `null` deletes a key;
//! * lists tagged `patchStrategy: merge` merge, either item by item on the
//!   merge key or, for primitives, as a set; other lists are replaced;
//! * `$patch: replace | delete` in an object replaces or empties it, and a
//!   list item `{"$patch": "replace"}` replaces the whole list while
//!   `{"<key>": "x", "$patch": "delete"}` deletes one item;
//! * `$retainKeys: [...]` drops every key of the target object not listed;
//! * `$deleteFromPrimitiveList/<field>: [...]` removes values from a list
//!   of primitives;
//! * `$setElementOrder/<field>: [...]` fixes the order of a merged list.
//!
//! After a merge, list order is normalised the way Kubernetes does it
//! (`normalizeElementOrder`): items named by the patch (or by
//! `$setElementOrder`) come in the patch's order, the remaining items of
//! the live object keep their relative order, and the two are interleaved
//! using the live object's order. One visible consequence, shared with
//! Kubernetes: an item that only the patch has is placed before the live
//! items that follow it in the merged list rather than appended at the end.
//!
//! No directive key survives into the result. Where Kubernetes copies a
//! patch value verbatim (a replaced list or object, a newly appended list
//! item) it leaves directive keys in place and drops them later when it
//! decodes the result into the typed object; here they are stripped
//! directly.

use std::collections::{HashMap, HashSet};

use serde_json::{Map, Value};

use crate::PatchError;
use crate::jsonpatch::json_type;
use crate::schema::{FieldSchema, PatchStrategy, Schema};

const PATCH_DIRECTIVE: &str = "$patch";
const RETAIN_KEYS_DIRECTIVE: &str = "$retainKeys";
const SET_ELEMENT_ORDER_PREFIX: &str = "$setElementOrder";
const DELETE_FROM_PRIMITIVE_LIST_PREFIX: &str = "$deleteFromPrimitiveList";

/// Applies a strategic merge patch to `original` and returns the result;
/// neither argument is modified.
///
/// `schema` describes the object's patch metadata (see
/// [`schema_for`](crate::schema_for)); with `None` every object merges and
/// every list is replaced, like a JSON merge patch that also understands
/// the `$` directives.
///
/// `original` must be an object. `patch` must be an object; `null` is
/// accepted and changes nothing, as in Kubernetes.
pub fn strategic_merge_patch(
    original: &Value,
    patch: &Value,
    schema: Option<&Schema>,
) -> Result<Value, PatchError> {
    let Value::Object(original) = original else {
        return Err(PatchError::BadRequest(format!(
            "the document to patch must be a JSON object, got {}",
            json_type(original)
        )));
    };
    let patch = match patch {
        Value::Object(patch) => patch.clone(),
        Value::Null => Map::new(),
        other => {
            return Err(PatchError::BadRequest(format!(
                "a strategic merge patch must be a JSON object, got {}",
                json_type(other)
            )));
        }
    };
    merge_map(original.clone(), patch, schema).map(Value::Object)
}

/// Patch metadata of one field, with defaults for fields the schema does
/// not mention.
#[derive(Clone, Copy, Default)]
struct Meta<'a> {
    strategy: PatchStrategy,
    merge_key: Option<&'a str>,
    schema: Option<&'a Schema>,
}

fn meta<'a>(schema: Option<&'a Schema>, field: &str) -> Meta<'a> {
    schema
        .and_then(|s| s.field(field))
        .map(|f: &FieldSchema| Meta {
            strategy: f.strategy(),
            merge_key: f.merge_key(),
            schema: f.schema(),
        })
        .unwrap_or_default()
}

/// Merges `patch` into `original` (`mergeMap`).
fn merge_map(
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
    apply_element_orders(&mut original, &mut patch, schema)?;

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
fn merge_field(
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
fn merge_list_field(
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
fn merge_list(
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
fn key_only(item: &Value, key: &str) -> Value {
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
fn apply_list_directives(
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
fn merge_items(
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
fn apply_retain_keys(
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

/// Applies every `$setElementOrder/<field>` of `patch`
/// (`mergePatchIntoOriginal`): merges the field's patch list, then orders
/// the result by the directive. Both keys are removed from `patch`.
fn apply_element_orders(
    original: &mut Map<String, Value>,
    patch: &mut Map<String, Value>,
    schema: Option<&Schema>,
) -> Result<(), PatchError> {
    let directives: Vec<String> = patch
        .keys()
        .filter(|k| k.starts_with(SET_ELEMENT_ORDER_PREFIX))
        .cloned()
        .collect();
    for directive in directives {
        let order = patch.remove(&directive).expect("key collected above");
        let Value::Array(order) = order else {
            return Err(PatchError::MergeFailed(format!(
                "{directive} must be a list, got {}",
                json_type(&order)
            )));
        };
        let field = directive_target(&directive, SET_ELEMENT_ORDER_PREFIX)?.to_owned();
        let current = list_at(original, &field)?;
        let patch_list = list_at(patch, &field)?;
        let meta = meta(schema, &field);
        check_order_matches_patch(patch_list.unwrap_or_default(), &order, meta.merge_key)?;

        let merged = match (current, patch_list) {
            (Some(current), None) => current.to_vec(),
            (None, Some(patch_list)) => patch_list
                .iter()
                .filter_map(|v| without_directives(v.clone(), false))
                .collect(),
            (Some(current), Some(patch_list)) => {
                merge_list_field(current.to_vec(), patch_list.to_vec(), meta, false)?
            }
            (None, None) => continue,
        };
        let current = current.map(<[Value]>::to_vec).unwrap_or_default();
        let key = match element_kind(&[&current, patch_list.unwrap_or_default()])? {
            // Nothing to order.
            None => {
                original.insert(field.clone(), Value::Array(merged));
                patch.remove(&field);
                continue;
            }
            Some(Kind::Object) => Some(meta.merge_key.ok_or_else(|| {
                PatchError::MergeFailed(format!(
                    "{directive} applies to a list of objects without a merge key"
                ))
            })?),
            Some(_) => {
                if let Some(key) = meta.merge_key {
                    return Err(PatchError::MergeFailed(format!(
                        "items of {field} must be objects with merge key {key:?}"
                    )));
                }
                None
            }
        };
        let server_order = match (key, patch_list) {
            (Some(key), Some(patch_list))
                if meta.strategy == PatchStrategy::Merge && !current.is_empty() =>
            {
                live_order_after_merge(&current, patch_list, key)
            }
            _ => current,
        };
        let (in_order, server_only) = partition(merged, &order, key)?;
        let ordered = order_items(in_order, server_only, &order, &server_order, key)?;
        original.insert(field.clone(), Value::Array(ordered));
        patch.remove(&field);
    }
    Ok(())
}

/// The live order `$setElementOrder` falls back on for items it does not
/// name, for a list of objects that was just merged with `patch`.
///
/// Kubernetes merges such a list inside the live list's own storage:
/// deleting an item shifts the following ones left (leaving the last slot
/// holding a copy of its previous value) and the first new items are
/// appended into the slots freed that way. `mergePatchIntoOriginal` then
/// orders the result against that storage rather than against the list as
/// it was, so a new item counts as coming after the surviving live items.
/// `kubectl apply` relies on this whenever it removes and adds items of the
/// same list; this function reproduces the resulting order.
fn live_order_after_merge(current: &[Value], patch: &[Value], key: &str) -> Vec<Value> {
    let mut slots = current.to_vec();
    let mut len = slots.len();
    let mut replaced = false;
    for item in patch {
        match item.get(PATCH_DIRECTIVE).and_then(Value::as_str) {
            Some("delete") => {
                let Some(target) = item.get(key) else {
                    continue;
                };
                while let Some(found) = slots[..len].iter().position(|v| v.get(key) == Some(target))
                {
                    for i in found..len - 1 {
                        slots[i] = slots[i + 1].clone();
                    }
                    len -= 1;
                }
            }
            Some("replace") => replaced = true,
            _ => {}
        }
    }
    if replaced {
        // The list was rebuilt from the patch; the storage is left alone.
        return slots;
    }
    let mut merged: Vec<Value> = slots[..len]
        .iter()
        .filter_map(|v| v.get(key).cloned())
        .collect();
    let mut next = len;
    for item in patch {
        if item.get(PATCH_DIRECTIVE).is_some() {
            continue;
        }
        let Some(id) = item.get(key) else {
            continue;
        };
        if merged.contains(id) {
            continue;
        }
        merged.push(id.clone());
        if next < slots.len() {
            slots[next] = item.clone();
        }
        next += 1;
    }
    slots
}

/// The list stored at `field`, if any; any other value is an error.
fn list_at<'m>(
    map: &'m Map<String, Value>,
    field: &str,
) -> Result<Option<&'m [Value]>, PatchError> {
    match map.get(field) {
        None => Ok(None),
        Some(Value::Array(items)) => Ok(Some(items)),
        Some(other) => Err(PatchError::MergeFailed(format!(
            "expected {field} to be a list, got {}",
            json_type(other)
        ))),
    }
}

/// Checks that the items of a patch list appear in its `$setElementOrder`
/// list, in the same relative order (`validatePatchWithSetOrderList`).
/// Deletions and other directive items are not checked.
fn check_order_matches_patch(
    patch: &[Value],
    order: &[Value],
    key: Option<&str>,
) -> Result<(), PatchError> {
    if patch.is_empty() || order.is_empty() {
        return Ok(());
    }
    let mut items = Vec::with_capacity(patch.len());
    for item in patch {
        if key.is_some() && !item.is_object() {
            return Err(not_an_object(item));
        }
        if !is_delete_item(item) {
            items.push(item);
        }
    }
    let (mut p, mut o) = (0, 0);
    while p < items.len() && o < order.len() {
        if items[p].get(PATCH_DIRECTIVE).is_some() {
            p += 1;
            continue;
        }
        if same_identity(items[p], &order[o], key)? {
            p += 1;
        }
        o += 1;
    }
    if p < items.len() {
        return Err(PatchError::MergeFailed(format!(
            "the order of the patch list {} doesn't match the {SET_ELEMENT_ORDER_PREFIX} list {}",
            Value::Array(patch.to_vec()),
            Value::Array(order.to_vec())
        )));
    }
    Ok(())
}

fn same_identity(left: &Value, right: &Value, key: Option<&str>) -> Result<bool, PatchError> {
    let Some(key) = key else {
        return Ok(left == right);
    };
    let left_value = left
        .as_object()
        .ok_or_else(|| not_an_object(left))?
        .get(key)
        .ok_or_else(|| missing_merge_key(left, key))?;
    let right_value = right
        .as_object()
        .ok_or_else(|| not_an_object(right))?
        .get(key)
        .ok_or_else(|| missing_merge_key(right, key))?;
    Ok(left_value == right_value)
}

/// Splits `items` into those also named in `by` and the others, keeping
/// their order (`partitionMapsByPresentInList`,
/// `partitionPrimitivesByPresentInList`).
fn partition(
    items: Vec<Value>,
    by: &[Value],
    key: Option<&str>,
) -> Result<(Vec<Value>, Vec<Value>), PatchError> {
    let mut named = HashSet::with_capacity(by.len());
    for item in by {
        if key.is_some() && !item.is_object() {
            return Err(not_an_object(item));
        }
        named.insert(identity(item, key));
    }
    let mut inside = Vec::new();
    let mut outside = Vec::new();
    for item in items {
        if let Some(key) = key {
            require_merge_key(&item, key)?;
        }
        if named.contains(&identity(&item, key)) {
            inside.push(item);
        } else {
            outside.push(item);
        }
    }
    Ok((inside, outside))
}

/// Orders a merged list (`normalizeElementOrder`): `in_patch` follows
/// `patch_order`, `server_only` follows `server_order`, and the two are
/// interleaved by `server_order`.
fn order_items(
    in_patch: Vec<Value>,
    server_only: Vec<Value>,
    patch_order: &[Value],
    server_order: &[Value],
    key: Option<&str>,
) -> Result<Vec<Value>, PatchError> {
    let in_patch = sort_by_order(in_patch, patch_order, key)?;
    let server_only = sort_by_order(server_only, server_order, key)?;
    Ok(interleave(server_only, in_patch, server_order, key))
}

/// Sorts `items` by their position in `order`, stably; items marked
/// `$patch: delete` go last (`normalizeSliceOrder`).
///
/// Kubernetes compares with "a before b if both are in `order` and a comes
/// first there, otherwise true". When every item is in `order` that is an
/// ordinary stable sort by position. Otherwise (possible only with an empty
/// `$setElementOrder` list) the comparison is not a strict order and the
/// outcome depends on the sort algorithm; an insertion sort is used then,
/// which gives what Go's `sort.SliceStable` gives for lists of up to 20
/// items.
fn sort_by_order(
    items: Vec<Value>,
    order: &[Value],
    key: Option<&str>,
) -> Result<Vec<Value>, PatchError> {
    let mut deleted = Vec::new();
    let mut items = if let Some(key) = key {
        for item in items.iter().chain(order) {
            require_merge_key(item, key)?;
        }
        let (keep, delete): (Vec<Value>, Vec<Value>) =
            items.into_iter().partition(|item| !is_delete_item(item));
        deleted = delete;
        keep
    } else {
        items
    };

    let positions = positions(order, key);
    let mut keyed: Vec<(Option<usize>, Value)> = items
        .drain(..)
        .map(|item| (positions.get(&identity(&item, key)).copied(), item))
        .collect();
    if keyed.iter().all(|(pos, _)| pos.is_some()) {
        keyed.sort_by_key(|(pos, _)| *pos);
    } else {
        let before = |a: Option<usize>, b: Option<usize>| match (a, b) {
            (Some(a), Some(b)) => a < b,
            _ => true,
        };
        for i in 1..keyed.len() {
            let mut j = i;
            while j > 0 && before(keyed[j].0, keyed[j - 1].0) {
                keyed.swap(j, j - 1);
                j -= 1;
            }
        }
    }
    let mut sorted: Vec<Value> = keyed.into_iter().map(|(_, item)| item).collect();
    sorted.append(&mut deleted);
    Ok(sorted)
}

/// Merges two lists that are each already in order (`mergeSortedSlice`):
/// an item of `left` is taken first only when both it and the next item of
/// `right` are in `order` and it comes earlier there.
fn interleave(
    left: Vec<Value>,
    right: Vec<Value>,
    order: &[Value],
    key: Option<&str>,
) -> Vec<Value> {
    let positions = positions(order, key);
    let position = |item: &Value| positions.get(&identity(item, key)).copied();
    let mut out = Vec::with_capacity(left.len() + right.len());
    let mut left = left.into_iter().peekable();
    let mut right = right.into_iter().peekable();
    loop {
        let take_left = match (left.peek(), right.peek()) {
            (None, None) => break,
            (Some(_), None) => true,
            (None, Some(_)) => false,
            (Some(l), Some(r)) => matches!((position(l), position(r)), (Some(a), Some(b)) if a < b),
        };
        let next = if take_left { left.next() } else { right.next() };
        out.extend(next);
    }
    out
}

/// First position of each identity in `order`.
fn positions(order: &[Value], key: Option<&str>) -> HashMap<String, usize> {
    let mut positions = HashMap::with_capacity(order.len());
    for (i, item) in order.iter().enumerate() {
        positions.entry(identity(item, key)).or_insert(i);
    }
    positions
}

/// What identifies a list item: its merge key value for lists of objects,
/// the item itself for primitives. Encoded as JSON text so it can be hashed;
/// a missing merge key is encoded as an empty string, which no JSON text is.
fn identity(item: &Value, key: Option<&str>) -> String {
    match key {
        Some(key) => item.get(key).map(Value::to_string).unwrap_or_default(),
        None => item.to_string(),
    }
}

fn require_merge_key(item: &Value, key: &str) -> Result<(), PatchError> {
    match item {
        Value::Object(fields) if fields.contains_key(key) => Ok(()),
        Value::Object(_) => Err(missing_merge_key(item, key)),
        _ => Err(not_an_object(item)),
    }
}

fn is_delete_item(item: &Value) -> bool {
    item.get(PATCH_DIRECTIVE).and_then(Value::as_str) == Some("delete")
}

/// The field named by a `<prefix>/<field>` directive key.
fn directive_target<'k>(key: &'k str, prefix: &str) -> Result<&'k str, PatchError> {
    match key.split_once('/') {
        Some((head, field)) if head == prefix => Ok(field),
        _ => Err(PatchError::BadRequest(format!(
            "invalid directive key {key:?}; expected {prefix}/<field>"
        ))),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Null,
    Bool,
    Number,
    String,
    Array,
    Object,
}

fn kind(value: &Value) -> Kind {
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
fn element_kind(lists: &[&[Value]]) -> Result<Option<Kind>, PatchError> {
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

fn is_directive_key(key: &str) -> bool {
    key == PATCH_DIRECTIVE
        || key == RETAIN_KEYS_DIRECTIVE
        || key.starts_with(SET_ELEMENT_ORDER_PREFIX)
        || key.starts_with(DELETE_FROM_PRIMITIVE_LIST_PREFIX)
}

/// A patch value that lands where the original has nothing to merge with
/// (`discardNullValuesFromPatch` + `removeDirectives`): objects carrying
/// `$patch` disappear (`None` at the top), other directive keys are
/// dropped, and with `discard_nulls` so are `null`-valued keys.
fn without_directives(value: Value, discard_nulls: bool) -> Option<Value> {
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
fn strip_directive_keys(value: Value) -> Value {
    match value {
        Value::Object(fields) => Value::Object(strip_directive_keys_map(fields)),
        Value::Array(items) => Value::Array(items.into_iter().map(strip_directive_keys).collect()),
        other => other,
    }
}

fn strip_directive_keys_map(fields: Map<String, Value>) -> Map<String, Value> {
    fields
        .into_iter()
        .filter(|(k, _)| !is_directive_key(k))
        .map(|(k, v)| (k, strip_directive_keys(v)))
        .collect()
}

fn missing_merge_key(item: &Value, key: &str) -> PatchError {
    PatchError::MergeFailed(format!(
        "list item {item} does not contain the merge key {key:?}"
    ))
}

fn not_an_object(item: &Value) -> PatchError {
    PatchError::MergeFailed(format!(
        "expected a list item to be an object, got {}",
        json_type(item)
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema_for;
    use serde_json::json;

    /// Applies `patch`, checking that `original` is left as it was and that
    /// no directive key survives.
    fn apply(
        original: &Value,
        patch: &Value,
        schema: Option<&Schema>,
    ) -> Result<Value, PatchError> {
        let before = original.clone();
        let result = strategic_merge_patch(original, patch, schema);
        assert_eq!(*original, before, "the original must not change");
        if let Ok(value) = &result {
            assert_no_directives(value);
        }
        result
    }

    fn assert_no_directives(value: &Value) {
        match value {
            Value::Object(fields) => {
                for (key, value) in fields {
                    assert!(!key.starts_with('$'), "directive {key} left in the result");
                    assert_no_directives(value);
                }
            }
            Value::Array(items) => items.iter().for_each(assert_no_directives),
            _ => {}
        }
    }

    fn pod_schema() -> &'static Schema {
        schema_for("", "Pod").expect("built-in")
    }

    /// (name, original, patch, expected) run against `schema`.
    type Case = (&'static str, Value, Value, Value);

    fn run(schema: Option<&Schema>, cases: Vec<Case>) {
        for (name, original, patch, expected) in cases {
            let got = apply(&original, &patch, schema).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(got, expected, "{name}");
        }
    }

    #[test]
    fn maps() {
        run(
            schema_for("", "ConfigMap"),
            vec![
                (
                    "add and replace keys",
                    json!({"data": {"a": "1", "b": "2"}}),
                    json!({"data": {"b": "3", "c": "4"}}),
                    json!({"data": {"a": "1", "b": "3", "c": "4"}}),
                ),
                (
                    "null deletes",
                    json!({"metadata": {"labels": {"a": "1", "b": "2"}}}),
                    json!({"metadata": {"labels": {"a": null}}}),
                    json!({"metadata": {"labels": {"b": "2"}}}),
                ),
                (
                    "null for an absent key is dropped",
                    json!({"data": {}}),
                    json!({"data": {"x": null}, "binaryData": null}),
                    json!({"data": {}}),
                ),
                (
                    "nulls inside a new value are dropped",
                    json!({}),
                    json!({"metadata": {"labels": {"a": "1", "b": null}}}),
                    json!({"metadata": {"labels": {"a": "1"}}}),
                ),
                (
                    "a value of another type replaces",
                    json!({"data": {"a": {"nested": true}}}),
                    json!({"data": {"a": "flat"}}),
                    json!({"data": {"a": "flat"}}),
                ),
                (
                    "null values already stored are kept",
                    json!({"data": {"a": null}}),
                    json!({"data": {"b": "1"}}),
                    json!({"data": {"a": null, "b": "1"}}),
                ),
                (
                    "lists without metadata are replaced",
                    json!({"data": {"list": [1, 2, 3]}}),
                    json!({"data": {"list": [4]}}),
                    json!({"data": {"list": [4]}}),
                ),
            ],
        );
    }

    #[test]
    fn map_directives() {
        run(
            schema_for("", "ConfigMap"),
            vec![
                (
                    "$patch: replace replaces the map",
                    json!({"data": {"a": "1", "b": "2"}}),
                    json!({"data": {"$patch": "replace", "c": "3"}}),
                    json!({"data": {"c": "3"}}),
                ),
                (
                    "$patch: replace at the top",
                    json!({"kind": "ConfigMap", "data": {"a": "1"}}),
                    json!({"$patch": "replace", "kind": "ConfigMap"}),
                    json!({"kind": "ConfigMap"}),
                ),
                (
                    "$patch: delete empties the map",
                    json!({"data": {"a": "1"}, "keep": 1}),
                    json!({"data": {"$patch": "delete"}}),
                    json!({"data": {}, "keep": 1}),
                ),
                (
                    "$patch: delete on an absent map adds nothing",
                    json!({"keep": 1}),
                    json!({"data": {"$patch": "delete"}}),
                    json!({"keep": 1}),
                ),
                (
                    "directives nested in a replaced map are dropped",
                    json!({"data": {"a": "1"}}),
                    json!({"data": {"$patch": "replace", "m": {"$retainKeys": ["x"], "x": 1}}}),
                    json!({"data": {"m": {"x": 1}}}),
                ),
                (
                    "$retainKeys keeps only the listed keys",
                    json!({"spec": {"a": 1, "b": 2, "c": 3}}),
                    json!({"spec": {"$retainKeys": ["a", "c", "d"], "d": 4}}),
                    json!({"spec": {"a": 1, "c": 3, "d": 4}}),
                ),
                (
                    "$retainKeys allows nulls for unlisted keys",
                    json!({"spec": {"a": 1, "b": 2}}),
                    json!({"spec": {"$retainKeys": ["a"], "b": null}}),
                    json!({"spec": {"a": 1}}),
                ),
            ],
        );
    }

    #[test]
    fn merge_key_lists() {
        let pod = |containers: Value| json!({"spec": {"containers": containers}});
        run(
            Some(pod_schema()),
            vec![
                (
                    "item merged by name, others kept",
                    pod(json!([{"name": "a", "image": "a:1"}, {"name": "b", "image": "b:1"}])),
                    pod(json!([{"name": "b", "image": "b:2"}])),
                    pod(json!([{"name": "a", "image": "a:1"}, {"name": "b", "image": "b:2"}])),
                ),
                (
                    // Kubernetes places patch-only items ahead of the live
                    // items (see the kubectl patch task page).
                    "new item goes first",
                    pod(json!([{"name": "a", "image": "a:1"}])),
                    pod(json!([{"name": "b", "image": "b:1"}])),
                    pod(json!([{"name": "b", "image": "b:1"}, {"name": "a", "image": "a:1"}])),
                ),
                (
                    "new item after a patched live item",
                    pod(json!([{"name": "a"}, {"name": "b"}])),
                    pod(json!([{"name": "a", "image": "x"}, {"name": "c"}])),
                    pod(json!([{"name": "a", "image": "x"}, {"name": "c"}, {"name": "b"}])),
                ),
                (
                    "patch order wins for items it names",
                    pod(json!([{"name": "a"}, {"name": "b"}, {"name": "c"}])),
                    pod(json!([{"name": "c", "image": "c"}, {"name": "a", "image": "a"}])),
                    pod(
                        json!([{"name": "b"}, {"name": "c", "image": "c"}, {"name": "a", "image": "a"}]),
                    ),
                ),
                (
                    "$patch: delete removes the item",
                    pod(json!([{"name": "a"}, {"name": "b"}, {"name": "a", "dup": true}])),
                    pod(json!([{"name": "a", "$patch": "delete"}])),
                    pod(json!([{"name": "b"}])),
                ),
                (
                    "$patch: delete of a missing item is harmless",
                    pod(json!([{"name": "a"}])),
                    pod(json!([{"name": "zz", "$patch": "delete"}])),
                    pod(json!([{"name": "a"}])),
                ),
                (
                    "$patch: replace replaces the list",
                    pod(json!([{"name": "a", "image": "a"}, {"name": "b"}])),
                    pod(json!([{"$patch": "replace"}, {"name": "c", "image": "c"}])),
                    pod(json!([{"name": "c", "image": "c"}])),
                ),
                (
                    "$patch: replace alone empties the list",
                    pod(json!([{"name": "a"}])),
                    pod(json!([{"$patch": "replace"}])),
                    pod(json!([])),
                ),
                (
                    "nested merge lists merge too",
                    pod(json!([{
                        "name": "a",
                        "env": [{"name": "X", "value": "1"}, {"name": "Y", "value": "2"}],
                        "ports": [{"containerPort": 80, "name": "http"}],
                        "envFrom": [{"configMapRef": {"name": "one"}}]
                    }])),
                    pod(json!([{
                        "name": "a",
                        "env": [{"name": "Y", "value": "3"}],
                        "ports": [{"containerPort": 80, "protocol": "TCP"}],
                        "envFrom": [{"secretRef": {"name": "two"}}]
                    }])),
                    pod(json!([{
                        "name": "a",
                        "env": [{"name": "X", "value": "1"}, {"name": "Y", "value": "3"}],
                        "ports": [{"containerPort": 80, "name": "http", "protocol": "TCP"}],
                        "envFrom": [{"secretRef": {"name": "two"}}]
                    }])),
                ),
                (
                    "atomic list is replaced",
                    json!({"spec": {"tolerations": [{"key": "a"}, {"key": "b"}]}}),
                    json!({"spec": {"tolerations": [{"key": "c"}]}}),
                    json!({"spec": {"tolerations": [{"key": "c"}]}}),
                ),
                (
                    "directive keys in a replaced list are dropped",
                    json!({"spec": {"tolerations": [{"key": "a"}]}}),
                    json!({"spec": {"tolerations": [{"key": "c", "$patch": "delete"}]}}),
                    json!({"spec": {"tolerations": [{"key": "c"}]}}),
                ),
                (
                    "new list with directive items",
                    json!({"spec": {}}),
                    pod(json!([{"name": "a"}, {"name": "b", "$patch": "delete"}])),
                    pod(json!([{"name": "a"}])),
                ),
                (
                    "status conditions merge by type",
                    json!({"status": {"conditions": [
                        {"type": "Ready", "status": "False"},
                        {"type": "Initialized", "status": "True"}
                    ]}}),
                    json!({"status": {"conditions": [{"type": "Ready", "status": "True"}]}}),
                    json!({"status": {"conditions": [
                        {"type": "Ready", "status": "True"},
                        {"type": "Initialized", "status": "True"}
                    ]}}),
                ),
                (
                    "owner references merge by uid",
                    json!({"metadata": {"ownerReferences": [{"uid": "1", "name": "x"}]}}),
                    json!({"metadata": {"ownerReferences": [{"uid": "1", "controller": true}]}}),
                    json!({"metadata": {"ownerReferences": [{"uid": "1", "name": "x", "controller": true}]}}),
                ),
            ],
        );
    }

    #[test]
    fn primitive_sets() {
        let fin = |list: Value| json!({"metadata": {"finalizers": list}});
        run(
            Some(pod_schema()),
            vec![
                (
                    "union keeps live order for known items",
                    fin(json!(["a", "b"])),
                    fin(json!(["b", "c"])),
                    fin(json!(["a", "b", "c"])),
                ),
                (
                    "patch-only values go first",
                    fin(json!(["a", "b"])),
                    fin(json!(["c"])),
                    fin(json!(["c", "a", "b"])),
                ),
                (
                    "duplicates collapse",
                    fin(json!(["a", "a"])),
                    fin(json!(["a"])),
                    fin(json!(["a"])),
                ),
                (
                    "$deleteFromPrimitiveList removes values",
                    fin(json!(["a", "b", "c", "b"])),
                    json!({"metadata": {"$deleteFromPrimitiveList/finalizers": ["b", "x"]}}),
                    fin(json!(["a", "c"])),
                ),
                (
                    "$deleteFromPrimitiveList on an absent list adds nothing",
                    json!({"metadata": {}}),
                    json!({"metadata": {"$deleteFromPrimitiveList/finalizers": ["b"]}}),
                    json!({"metadata": {}}),
                ),
                (
                    "add and delete in one patch",
                    fin(json!(["a", "b"])),
                    json!({"metadata": {
                        "finalizers": ["c"],
                        "$deleteFromPrimitiveList/finalizers": ["a"]
                    }}),
                    fin(json!(["c", "b"])),
                ),
                (
                    "$setElementOrder orders a primitive list",
                    fin(json!(["a", "b", "c"])),
                    json!({"metadata": {"$setElementOrder/finalizers": ["c", "a", "b"]}}),
                    fin(json!(["c", "a", "b"])),
                ),
                (
                    "$setElementOrder with an addition",
                    fin(json!(["a", "b"])),
                    json!({"metadata": {
                        "$setElementOrder/finalizers": ["a", "x", "b"],
                        "finalizers": ["x"]
                    }}),
                    fin(json!(["a", "x", "b"])),
                ),
                (
                    "$deleteFromPrimitiveList also works on lists without a strategy",
                    json!({"spec": {"plain": [1, 2, 3]}}),
                    json!({"spec": {"$deleteFromPrimitiveList/plain": [2]}}),
                    json!({"spec": {"plain": [1, 3]}}),
                ),
            ],
        );
    }

    #[test]
    fn retain_keys() {
        run(
            schema_for("apps", "Deployment"),
            vec![
                (
                    // kubectl apply switching a Deployment to Recreate
                    "deployment strategy",
                    json!({"spec": {"strategy": {
                        "type": "RollingUpdate",
                        "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}
                    }}}),
                    json!({"spec": {"strategy": {
                        "$retainKeys": ["type"],
                        "type": "Recreate",
                        "rollingUpdate": null
                    }}}),
                    json!({"spec": {"strategy": {"type": "Recreate"}}}),
                ),
                (
                    // kubectl apply turning an emptyDir volume into a configMap one
                    "volume source switch",
                    json!({"spec": {"template": {"spec": {"volumes": [
                        {"name": "data", "emptyDir": {}},
                        {"name": "other", "secret": {"secretName": "s"}}
                    ]}}}}),
                    json!({"spec": {"template": {"spec": {"volumes": [
                        {"$retainKeys": ["configMap", "name"], "name": "data", "configMap": {"name": "cfg"}}
                    ]}}}}),
                    json!({"spec": {"template": {"spec": {"volumes": [
                        {"name": "data", "configMap": {"name": "cfg"}},
                        {"name": "other", "secret": {"secretName": "s"}}
                    ]}}}}),
                ),
            ],
        );
    }

    #[test]
    fn deployment_pod_template() {
        let live = json!({
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "web", "labels": {"app": "web"}},
            "spec": {
                "replicas": 2,
                "selector": {"matchLabels": {"app": "web"}},
                "template": {
                    "metadata": {"labels": {"app": "web"}},
                    "spec": {
                        "containers": [
                            {
                                "name": "web",
                                "image": "nginx:1.0",
                                "env": [{"name": "A", "value": "1"}],
                                "volumeMounts": [{"name": "data", "mountPath": "/data"}]
                            },
                            {"name": "sidecar", "image": "envoy:1"}
                        ],
                        "volumes": [{"name": "data", "emptyDir": {}}],
                        "tolerations": [{"key": "k", "operator": "Exists"}]
                    }
                }
            }
        });
        let patch = json!({
            "spec": {
                "replicas": 3,
                "template": {
                    "metadata": {"annotations": {"restartedAt": "now"}},
                    "spec": {
                        "containers": [{
                            "name": "web",
                            "env": [{"name": "B", "value": "2"}],
                            "volumeMounts": [{"name": "cache", "mountPath": "/cache"}]
                        }],
                        "volumes": [{"name": "cache", "emptyDir": {}}],
                        "tolerations": [{"key": "other", "operator": "Exists"}]
                    }
                }
            }
        });
        let expected = json!({
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "web", "labels": {"app": "web"}},
            "spec": {
                "replicas": 3,
                "selector": {"matchLabels": {"app": "web"}},
                "template": {
                    "metadata": {"labels": {"app": "web"}, "annotations": {"restartedAt": "now"}},
                    "spec": {
                        "containers": [
                            {
                                "name": "web",
                                "image": "nginx:1.0",
                                "env": [{"name": "B", "value": "2"}, {"name": "A", "value": "1"}],
                                "volumeMounts": [
                                    {"name": "cache", "mountPath": "/cache"},
                                    {"name": "data", "mountPath": "/data"}
                                ]
                            },
                            {"name": "sidecar", "image": "envoy:1"}
                        ],
                        "volumes": [{"name": "cache", "emptyDir": {}}, {"name": "data", "emptyDir": {}}],
                        "tolerations": [{"key": "other", "operator": "Exists"}]
                    }
                }
            }
        });
        let got = apply(&live, &patch, schema_for("apps", "Deployment")).unwrap();
        assert_eq!(got, expected);

        // The same pod template under a CronJob.
        let cron = json!({"spec": {"jobTemplate": {"spec": {"template": live["spec"]["template"].clone()}}}});
        let cron_patch = json!({"spec": {"jobTemplate": {"spec": {"template": patch["spec"]["template"].clone()}}}});
        let got = apply(&cron, &cron_patch, schema_for("batch", "CronJob")).unwrap();
        assert_eq!(
            got["spec"]["jobTemplate"]["spec"]["template"],
            expected["spec"]["template"]
        );
    }

    /// What `kubectl apply` sends (a three-way patch computed by
    /// `CreateThreeWayMergePatch`) when the container image changes and an
    /// env var is removed from the configuration.
    #[test]
    fn kubectl_apply_image_change_and_env_removal() {
        let live = json!({
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {
                "name": "web",
                "annotations": {"kubectl.kubernetes.io/last-applied-configuration": "{\"old\":true}"}
            },
            "spec": {"template": {"spec": {
                "containers": [
                    {
                        "name": "app",
                        "image": "nginx:1.0",
                        "imagePullPolicy": "IfNotPresent",
                        "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}],
                        "terminationMessagePath": "/dev/termination-log"
                    },
                    {"name": "sidecar", "image": "envoy:1"}
                ],
                "dnsPolicy": "ClusterFirst"
            }}}
        });
        let patch = json!({
            "metadata": {
                "annotations": {"kubectl.kubernetes.io/last-applied-configuration": "{\"new\":true}"}
            },
            "spec": {"template": {"spec": {
                "$setElementOrder/containers": [{"name": "app"}, {"name": "sidecar"}],
                "containers": [{
                    "$setElementOrder/env": [{"name": "A"}],
                    "env": [{"$patch": "delete", "name": "B"}],
                    "image": "nginx:1.1",
                    "name": "app"
                }]
            }}}
        });
        let expected = json!({
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {
                "name": "web",
                "annotations": {"kubectl.kubernetes.io/last-applied-configuration": "{\"new\":true}"}
            },
            "spec": {"template": {"spec": {
                "containers": [
                    {
                        "name": "app",
                        "image": "nginx:1.1",
                        "imagePullPolicy": "IfNotPresent",
                        "env": [{"name": "A", "value": "1"}],
                        "terminationMessagePath": "/dev/termination-log"
                    },
                    {"name": "sidecar", "image": "envoy:1"}
                ],
                "dnsPolicy": "ClusterFirst"
            }}}
        });
        let got = apply(&live, &patch, schema_for("apps", "Deployment")).unwrap();
        assert_eq!(got, expected);
    }

    /// `kubectl apply` replacing env var B by D while the live object also
    /// has C, added by someone else. Kubernetes keeps C ahead of the newly
    /// added D (a side effect of merging inside the live list, see
    /// `live_order_after_merge`).
    #[test]
    fn kubectl_apply_env_swap_keeps_server_items_in_place() {
        let live = json!({"spec": {"containers": [{
            "name": "app",
            "env": [{"name": "A"}, {"name": "B"}, {"name": "C"}]
        }]}});
        let patch = json!({"spec": {
            "$setElementOrder/containers": [{"name": "app"}],
            "containers": [{
                "name": "app",
                "$setElementOrder/env": [{"name": "A"}, {"name": "D"}],
                "env": [{"name": "D", "value": "4"}, {"$patch": "delete", "name": "B"}]
            }]
        }});
        let got = apply(&live, &patch, Some(pod_schema())).unwrap();
        assert_eq!(
            got["spec"]["containers"][0]["env"],
            json!([{"name": "A"}, {"name": "C"}, {"name": "D", "value": "4"}])
        );
    }

    #[test]
    fn set_element_order() {
        let pod = |containers: Value| json!({"spec": {"containers": containers}});
        run(
            Some(pod_schema()),
            vec![
                (
                    "reorder without changes",
                    pod(json!([{"name": "a"}, {"name": "b"}, {"name": "c"}])),
                    json!({"spec": {"$setElementOrder/containers": [{"name": "c"}, {"name": "a"}, {"name": "b"}]}}),
                    pod(json!([{"name": "c"}, {"name": "a"}, {"name": "b"}])),
                ),
                (
                    // `s` comes before `b` in the live list, and `b` is where
                    // the ordered items start.
                    "server-only items stay ahead of later live items",
                    pod(json!([{"name": "a"}, {"name": "s"}, {"name": "b"}])),
                    json!({"spec": {"$setElementOrder/containers": [{"name": "b"}, {"name": "a"}]}}),
                    pod(json!([{"name": "s"}, {"name": "b"}, {"name": "a"}])),
                ),
                (
                    "addition placed as ordered",
                    pod(json!([{"name": "a"}, {"name": "b"}])),
                    json!({"spec": {
                        "$setElementOrder/containers": [{"name": "a"}, {"name": "n"}, {"name": "b"}],
                        "containers": [{"name": "n", "image": "n"}]
                    }}),
                    pod(json!([{"name": "a"}, {"name": "n", "image": "n"}, {"name": "b"}])),
                ),
                (
                    "list created by the patch",
                    json!({"spec": {}}),
                    json!({"spec": {
                        "$setElementOrder/containers": [{"name": "b"}, {"name": "a"}],
                        "containers": [{"name": "b"}, {"name": "a"}]
                    }}),
                    pod(json!([{"name": "b"}, {"name": "a"}])),
                ),
                (
                    "order for an absent list is ignored",
                    json!({"spec": {}}),
                    json!({"spec": {"$setElementOrder/containers": [{"name": "a"}]}}),
                    json!({"spec": {}}),
                ),
            ],
        );
    }

    #[test]
    fn without_schema_lists_are_replaced() {
        run(
            None,
            vec![
                (
                    "lists replaced, maps merged",
                    json!({"spec": {"containers": [{"name": "a"}], "x": {"y": 1}}}),
                    json!({"spec": {"containers": [{"name": "b"}], "x": {"z": 2}}}),
                    json!({"spec": {"containers": [{"name": "b"}], "x": {"y": 1, "z": 2}}}),
                ),
                (
                    "null patch changes nothing",
                    json!({"a": 1}),
                    Value::Null,
                    json!({"a": 1}),
                ),
            ],
        );
    }

    #[test]
    fn errors() {
        let pod = json!({
            "metadata": {"finalizers": ["a"]},
            "spec": {"containers": [{"name": "a"}], "matrix": [[1]]}
        });
        let cases: Vec<(&str, Value, u16)> = vec![
            ("patch is a list", json!([]), 400),
            ("patch is a string", json!("x"), 400),
            (
                "retainKeys is not a list",
                json!({"spec": {"$retainKeys": "containers"}}),
                400,
            ),
            (
                "patch sets a key missing from retainKeys",
                json!({"spec": {"$retainKeys": ["containers"], "hostname": "h"}}),
                400,
            ),
            (
                "malformed $setElementOrder key",
                json!({"spec": {"$setElementOrder": [{"name": "a"}]}}),
                400,
            ),
            (
                "malformed $deleteFromPrimitiveList key",
                json!({"metadata": {"$deleteFromPrimitiveListfinalizers": ["a"]}}),
                400,
            ),
            (
                "list items missing the merge key",
                json!({"spec": {"containers": [{"image": "x"}]}}),
                500,
            ),
            (
                "unknown $patch value in an object",
                json!({"spec": {"$patch": "frobnicate"}}),
                500,
            ),
            (
                "$patch: merge in an object",
                json!({"spec": {"$patch": "merge"}}),
                500,
            ),
            (
                "$patch: merge as a list item",
                json!({"spec": {"containers": [{"$patch": "merge"}]}}),
                500,
            ),
            (
                "list item of the wrong type",
                json!({"spec": {"containers": ["a"]}}),
                500,
            ),
            (
                "$setElementOrder disagreeing with the patch list",
                json!({"spec": {
                    "$setElementOrder/containers": [{"name": "a"}, {"name": "b"}],
                    "containers": [{"name": "b"}, {"name": "a"}]
                }}),
                500,
            ),
            (
                "lists of lists",
                json!({"spec": {"$deleteFromPrimitiveList/matrix": [[1]]}}),
                422,
            ),
            (
                "items of mixed types",
                json!({"metadata": {"finalizers": [["a"]]}}),
                500,
            ),
        ];
        for (name, patch, code) in cases {
            let err = apply(&pod, &patch, Some(pod_schema())).expect_err(name);
            assert_eq!(err.status_code(), code, "{name}: {err}");
        }
        let err = apply(&json!([]), &json!({}), None).expect_err("list original");
        assert_eq!(err.status_code(), 400);
    }
}
