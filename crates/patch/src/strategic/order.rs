//! List order after a merge: `$setElementOrder` and the interleaving of
//! patch and live items (`normalizeElementOrder` in
//! `k8s.io/apimachinery/pkg/util/strategicpatch/patch.go`).

use std::collections::{HashMap, HashSet};

use serde_json::{Map, Value};

use super::directives::{
    Kind, PATCH_DIRECTIVE, SET_ELEMENT_ORDER_PREFIX, directive_target, element_kind,
    is_delete_item, missing_merge_key, not_an_object, require_merge_key, without_directives,
};
use super::{Meta, meta};
use crate::PatchError;
use crate::jsonpatch::json_type;
use crate::schema::{PatchStrategy, Schema};

/// Applies every `$setElementOrder/<field>` of `patch`
/// (`mergePatchIntoOriginal`): merges the field's patch list, then orders
/// the result by the directive. Both keys are removed from `patch`.
/// `merge_list` merges a field's patch list into its live list (the
/// merge module's list merge, passed in so that ordering stays below it).
pub(super) fn apply_element_orders(
    original: &mut Map<String, Value>,
    patch: &mut Map<String, Value>,
    schema: Option<&Schema>,
    merge_list: impl Fn(Vec<Value>, Vec<Value>, Meta<'_>) -> Result<Vec<Value>, PatchError>,
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
                merge_list(current.to_vec(), patch_list.to_vec(), meta)?
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
pub(super) fn live_order_after_merge(current: &[Value], patch: &[Value], key: &str) -> Vec<Value> {
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
pub(super) fn list_at<'m>(
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
pub(super) fn check_order_matches_patch(
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

pub(super) fn same_identity(
    left: &Value,
    right: &Value,
    key: Option<&str>,
) -> Result<bool, PatchError> {
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
pub(super) fn partition(
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
pub(super) fn order_items(
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
pub(super) fn sort_by_order(
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
pub(super) fn interleave(
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
pub(super) fn positions(order: &[Value], key: Option<&str>) -> HashMap<String, usize> {
    let mut positions = HashMap::with_capacity(order.len());
    for (i, item) in order.iter().enumerate() {
        positions.entry(identity(item, key)).or_insert(i);
    }
    positions
}

/// What identifies a list item: its merge key value for lists of objects,
/// the item itself for primitives. Encoded as JSON text so it can be hashed;
/// a missing merge key is encoded as an empty string, which no JSON text is.
pub(super) fn identity(item: &Value, key: Option<&str>) -> String {
    match key {
        Some(key) => item.get(key).map(Value::to_string).unwrap_or_default(),
        None => item.to_string(),
    }
}
