//! Metacontroller's "dynamic apply": a client-side, type-agnostic three-way
//! merge in the spirit of `kubectl apply`, used to update children from the
//! partial objects hooks return, plus the payload clean-up used for
//! server-side apply.
//!
//! Behaviour follows Metacontroller's `pkg/dynamic/apply/apply.go` (`Merge`,
//! `SetLastApplied`, `GetLastApplied`) and
//! `pkg/controller/common/manage_children.go` (`ApplyUpdate`,
//! `revertObjectMetaSystemFields`, `sanitizeForSSACompare`).
//!
//! # Merge rules
//!
//! `merge(observed, last_applied, desired)` starts from a copy of `observed`
//! and, recursively:
//!
//! * **objects**: keys present in `last_applied` but absent from `desired`
//!   are removed; every key of `desired` is merged into the observed value
//!   under that key; other observed keys are kept.
//! * **lists**: if every item of the observed, last-applied and desired lists
//!   is an object and all items share one of the keys `containerPort`,
//!   `port`, `mountPath`, `name`, `uid`, `ip`, `path` (the first in that
//!   order that all of them have), the lists are merged like objects keyed
//!   by that field's value: observed items keep their order, items new in
//!   `desired` are appended in desired order, items that were last-applied
//!   but are no longer desired are removed. Otherwise the list is replaced
//!   by the desired one.
//! * **anything else** (scalars, `null`, absent): replaced by the desired
//!   value.
//!
//! Type mismatches behave as in Metacontroller: when the observed value is
//! an object and the desired one is not (including `null`), the observed
//! object is kept and only the keys recorded in `last_applied` are removed
//! from it; when the observed value is a list and the desired one is not a
//! list, the result is `null` unless the observed/last-applied lists form a
//! list-map, in which case last-applied items are removed and the rest kept.

use std::collections::{HashMap, HashSet};

use serde_json::{Map, Value, json};

pub use metacontroller_api::LAST_APPLIED_ANNOTATION;
use metacontroller_api::gojson;

use crate::go_fmt;

/// Field names tried, in order of precedence, as the key of a list-map.
pub const LIST_MAP_KEYS: [&str; 7] = [
    "containerPort",
    "port",
    "mountPath",
    "name",
    "uid",
    "ip",
    "path",
];

/// `metadata` fields that are read-only and populated by the API server
/// (`objectMetaSystemFields` in Metacontroller's `manage_children.go`).
pub const OBJECT_META_SYSTEM_FIELDS: [&str; 8] = [
    "selfLink",
    "uid",
    "resourceVersion",
    "generation",
    "creationTimestamp",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "managedFields",
];

static NULL: Value = Value::Null;

/// Errors of the dynamic-apply helpers (reading and writing the last-applied
/// annotation).
#[derive(Debug, thiserror::Error)]
pub enum DynamicApplyError {
    /// The last-applied annotation is not valid JSON.
    #[error("can't unmarshal {LAST_APPLIED_ANNOTATION:?} annotation: {0}")]
    LastAppliedInvalid(#[source] serde_json::Error),
    /// The last-applied annotation is valid JSON but not an object.
    #[error("can't unmarshal {LAST_APPLIED_ANNOTATION:?} annotation: expected a JSON object")]
    LastAppliedNotObject,
    /// The object (or its `metadata`) is not a JSON object.
    #[error("{0} is not a JSON object")]
    NotAnObject(&'static str),
}

/// Three-way merge of the desired state into the observed object; see the
/// module documentation for the rules. `last_applied` may be `null` or `{}`
/// when nothing was applied before.
pub fn merge(observed: &Value, last_applied: &Value, desired: &Value) -> Value {
    merge_value(observed.clone(), last_applied, desired)
}

fn merge_value(destination: Value, last_applied: &Value, desired: &Value) -> Value {
    match destination {
        Value::Object(mut dest) => {
            merge_object(&mut dest, last_applied.as_object(), desired.as_object());
            Value::Object(dest)
        }
        Value::Array(dest) => merge_array(dest, last_applied.as_array(), desired.as_array()),
        _ => desired.clone(),
    }
}

fn merge_object(
    dest: &mut Map<String, Value>,
    last_applied: Option<&Map<String, Value>>,
    desired: Option<&Map<String, Value>>,
) {
    if let Some(last) = last_applied {
        for key in last.keys() {
            if !desired.is_some_and(|d| d.contains_key(key)) {
                dest.remove(key);
            }
        }
    }
    let Some(desired) = desired else { return };
    for (key, des_val) in desired {
        let last_val = last_applied.and_then(|l| l.get(key)).unwrap_or(&NULL);
        match dest.get_mut(key) {
            Some(slot) => {
                let current = std::mem::take(slot);
                *slot = merge_value(current, last_val, des_val);
            }
            None => {
                dest.insert(key.clone(), merge_value(Value::Null, last_val, des_val));
            }
        }
    }
}

fn merge_array(
    dest: Vec<Value>,
    last_applied: Option<&Vec<Value>>,
    desired: Option<&Vec<Value>>,
) -> Value {
    let no_items = Vec::new();
    let last = last_applied.unwrap_or(&no_items);
    let des = desired.unwrap_or(&no_items);
    if let Some(key) = detect_list_map_key(&[&dest, last, des]) {
        return merge_list_map(key, dest, last, des);
    }
    match desired {
        Some(d) => Value::Array(d.clone()),
        None => Value::Null,
    }
}

/// Guesses whether lists hold a Kubernetes-style list-map: all items are
/// objects and all share one of [`LIST_MAP_KEYS`]; returns that key.
pub fn detect_list_map_key(lists: &[&Vec<Value>]) -> Option<&'static str> {
    let mut common: Option<Vec<&'static str>> = None;
    for item in lists.iter().flat_map(|l| l.iter()) {
        let obj = item.as_object()?;
        let keys = common.get_or_insert_with(|| LIST_MAP_KEYS.to_vec());
        keys.retain(|k| obj.contains_key(*k));
    }
    common?.first().copied()
}

/// The map key of a list-map item: the merge field rendered like Go's `%v`
/// (strings as-is, numbers in decimal), so `80` and `"80"` are one item.
fn list_map_item_key(item: &Value, merge_key: &str) -> String {
    match item.get(merge_key) {
        Some(Value::String(s)) => s.clone(),
        Some(other) => go_fmt::format_go_v(other),
        None => go_fmt::format_go_v(&Value::Null),
    }
}

fn merge_list_map(merge_key: &str, dest: Vec<Value>, last: &[Value], desired: &[Value]) -> Value {
    // Later duplicates win, as when building a Go map from the list.
    let dest_order: Vec<String> = dest
        .iter()
        .map(|item| list_map_item_key(item, merge_key))
        .collect();
    let mut dest_map: HashMap<String, Value> = dest_order.iter().cloned().zip(dest).collect();
    let mut last_map: HashMap<String, &Value> = HashMap::new();
    for item in last {
        last_map.insert(list_map_item_key(item, merge_key), item);
    }
    let mut des_map: HashMap<String, &Value> = HashMap::new();
    let mut des_order: Vec<String> = Vec::with_capacity(desired.len());
    for item in desired {
        let k = list_map_item_key(item, merge_key);
        des_order.push(k.clone());
        des_map.insert(k, item);
    }

    for k in last_map.keys() {
        if !des_map.contains_key(k) {
            dest_map.remove(k);
        }
    }
    for (k, des_item) in &des_map {
        let current = dest_map.remove(k).unwrap_or(Value::Null);
        let last_item = last_map.get(k).copied().unwrap_or(&NULL);
        dest_map.insert(k.clone(), merge_value(current, last_item, des_item));
    }

    let mut out = Vec::with_capacity(dest_map.len());
    let mut added: HashSet<&str> = HashSet::new();
    // Items already observed keep their positions (a key observed twice is
    // emitted twice, as Metacontroller does).
    for k in &dest_order {
        if let Some(item) = dest_map.get(k) {
            out.push(item.clone());
            added.insert(k);
        }
    }
    // New desired items follow in desired order.
    for k in &des_order {
        if added.insert(k)
            && let Some(item) = dest_map.get(k)
        {
            out.push(item.clone());
        }
    }
    Value::Array(out)
}

fn annotations(obj: &Value) -> Option<&Map<String, Value>> {
    obj.get("metadata")?.get("annotations")?.as_object()
}

/// Reads and decodes the last-applied annotation. Absent, empty or `null`
/// yields `Ok(None)`.
pub fn get_last_applied(obj: &Value) -> Result<Option<Value>, DynamicApplyError> {
    let Some(raw) = annotations(obj)
        .and_then(|a| a.get(LAST_APPLIED_ANNOTATION))
        .and_then(Value::as_str)
    else {
        return Ok(None);
    };
    if raw.is_empty() {
        return Ok(None);
    }
    match serde_json::from_str::<Value>(raw).map_err(DynamicApplyError::LastAppliedInvalid)? {
        Value::Null => Ok(None),
        v @ Value::Object(_) => Ok(Some(v)),
        _ => Err(DynamicApplyError::LastAppliedNotObject),
    }
}

/// Stores `desired` as the last-applied annotation of `obj`, encoded exactly
/// as Metacontroller encodes it (Go `json.Marshal`: sorted keys, compact,
/// HTML characters escaped; see [`metacontroller_api::gojson`]). The value is stored as
/// given: callers strip what must not be recorded (on update,
/// [`apply_update`] removes the annotation itself from `desired` first).
/// Creates `metadata` and `metadata.annotations` when missing.
pub fn set_last_applied(obj: &mut Value, desired: &Value) -> Result<(), DynamicApplyError> {
    let encoded = gojson::to_string(desired);
    let obj = obj
        .as_object_mut()
        .ok_or(DynamicApplyError::NotAnObject("object"))?;
    let metadata = obj
        .entry("metadata")
        .or_insert_with(|| Value::Object(Map::new()))
        .as_object_mut()
        .ok_or(DynamicApplyError::NotAnObject("metadata"))?;
    let annotations = metadata
        .entry("annotations")
        .or_insert_with(|| Value::Object(Map::new()));
    if !annotations.is_object() {
        *annotations = Value::Object(Map::new());
    }
    if let Value::Object(a) = annotations {
        a.insert(LAST_APPLIED_ANNOTATION.to_string(), Value::String(encoded));
    }
    Ok(())
}

/// Removes the last-applied annotation from `obj`, leaving an empty
/// `annotations` object behind when it was the only one (as Metacontroller's
/// `nullifyLastAppliedAnnotation` does). Returns whether it was present.
pub fn remove_last_applied(obj: &mut Value) -> bool {
    obj.get_mut("metadata")
        .and_then(|m| m.get_mut("annotations"))
        .and_then(Value::as_object_mut)
        .is_some_and(|a| a.remove(LAST_APPLIED_ANNOTATION).is_some())
}

/// Makes `obj.<parent>.<field>` equal to `observed.<parent>.<field>`: copied
/// when present in `observed` (even as `null`), removed otherwise.
fn revert_field(obj: &mut Value, observed: &Value, parent: Option<&str>, field: &str) {
    let source = match parent {
        Some(p) => observed.get(p).and_then(|v| v.get(field)),
        None => observed.get(field),
    };
    match source {
        Some(value) => {
            let Some(root) = ensure_object(obj) else {
                return;
            };
            let target = match parent {
                Some(p) => {
                    let entry = root.entry(p).or_insert_with(|| json!({}));
                    match ensure_object(entry) {
                        Some(m) => m,
                        None => return,
                    }
                }
                None => root,
            };
            target.insert(field.to_string(), value.clone());
        }
        None => {
            let target = match parent {
                Some(p) => obj.get_mut(p),
                None => Some(obj),
            };
            if let Some(Value::Object(m)) = target {
                m.remove(field);
            }
        }
    }
}

/// Turns a non-object value into an empty object and returns its map.
fn ensure_object(v: &mut Value) -> Option<&mut Map<String, Value>> {
    if !v.is_object() {
        *v = Value::Object(Map::new());
    }
    v.as_object_mut()
}

/// Restores the read-only, server-populated fields of `new_obj` from
/// `observed`: `metadata.{selfLink, uid, resourceVersion, generation,
/// creationTimestamp, deletionTimestamp, deletionGracePeriodSeconds,
/// managedFields}` and the whole `status` (hooks cannot set a child's
/// status). Fields absent from `observed` are removed from `new_obj`.
pub fn revert_system_fields(new_obj: &mut Value, observed: &Value) {
    for field in OBJECT_META_SYSTEM_FIELDS {
        revert_field(new_obj, observed, Some("metadata"), field);
    }
    revert_field(new_obj, observed, None, "status");
}

/// The dynamic-apply update step (Metacontroller's `ApplyUpdate` followed by
/// its no-op check): merge `desired` into `observed` using the last-applied
/// annotation of `observed` as the base (none = `{}`), revert system fields
/// and `status`, and record `desired` as the new last-applied annotation.
///
/// A last-applied annotation inside `desired` is ignored (neither merged nor
/// recorded). Returns `Ok(None)` when the result equals `observed` (nothing
/// to do) and `Ok(Some(new_object))` otherwise; the new object keeps the
/// observed `resourceVersion`, ready for a PUT.
pub fn apply_update(observed: &Value, desired: &Value) -> Result<Option<Value>, DynamicApplyError> {
    let mut desired = desired.clone();
    remove_last_applied(&mut desired);
    if already_applied(observed, &desired) {
        return Ok(None);
    }
    let last_applied = get_last_applied(observed)?.unwrap_or(Value::Null);
    let mut new_obj = merge(observed, &last_applied, &desired);
    revert_system_fields(&mut new_obj, observed);
    set_last_applied(&mut new_obj, &desired)?;
    if new_obj == *observed {
        Ok(None)
    } else {
        Ok(Some(new_obj))
    }
}

/// Whether [`apply_update`] would find nothing to do, decided without
/// building the merged object: the recorded last-applied configuration is
/// `desired` exactly as [`set_last_applied`] would write it, and every
/// desired field already holds in `observed` (system metadata fields and
/// `status` aside: the merge reverts those). It answers `false` whenever it
/// is unsure (a changed list, a list-map with repeated keys, a type change),
/// and the full merge decides; syncs that change nothing, the common case,
/// skip copying the whole observed object.
fn already_applied(observed: &Value, desired: &Value) -> bool {
    let recorded = annotations(observed)
        .and_then(|a| a.get(LAST_APPLIED_ANNOTATION))
        .and_then(Value::as_str);
    if recorded.is_none_or(|r| r != gojson::to_string(desired)) {
        return false;
    }
    let (Some(observed), Some(desired)) = (observed.as_object(), desired.as_object()) else {
        return false;
    };
    desired.iter().all(|(key, want)| match key.as_str() {
        "status" => true,
        "metadata" => {
            let (Some(have), Some(want)) = (
                observed.get("metadata").and_then(Value::as_object),
                want.as_object(),
            ) else {
                return false;
            };
            want.iter().all(|(field, w)| {
                OBJECT_META_SYSTEM_FIELDS.contains(&field.as_str())
                    || have.get(field).is_some_and(|h| holds(h, w))
            })
        }
        _ => observed.get(key).is_some_and(|have| holds(have, want)),
    })
}

/// Whether merging `desired` into `have`, with `desired` as the last
/// applied configuration too, leaves `have` unchanged (see
/// [`already_applied`]).
fn holds(have: &Value, desired: &Value) -> bool {
    match (have, desired) {
        (Value::Object(have), Value::Object(want)) => want
            .iter()
            .all(|(k, w)| have.get(k).is_some_and(|h| holds(h, w))),
        (Value::Array(have), Value::Array(want)) => {
            // A list-map merge collapses items with the same key.
            have == want
                && detect_list_map_key(&[want]).is_none_or(|key| {
                    let mut seen = HashSet::new();
                    want.iter()
                        .all(|item| seen.insert(list_map_item_key(item, key)))
                })
        }
        (Value::Object(_) | Value::Array(_), _) | (_, Value::Object(_) | Value::Array(_)) => false,
        (have, want) => have == want,
    }
}

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

    fn parse(s: &str) -> Value {
        serde_json::from_str(s).unwrap_or_else(|e| panic!("bad test JSON {s}: {e}"))
    }

    /// Metacontroller's TestMerge table, plus further cases.
    #[test]
    fn merge_table() {
        // (name, observed, lastApplied, desired, want)
        let cases: &[(&str, &str, &str, &str, &str)] = &[
            ("empty", "{}", "{}", "{}", "{}"),
            (
                "scalars",
                r#"{"keep": "other", "remove": "other", "replace": "other"}"#,
                r#"{"remove": "old", "replace": "old"}"#,
                r#"{"replace": "new", "add": "new"}"#,
                r#"{"replace": "new", "add": "new", "keep": "other"}"#,
            ),
            (
                "nested object",
                r#"{"update": {"keep": "other", "remove": "other"}}"#,
                r#"{"update": {"remove": "old", "replace": "old"}}"#,
                r#"{"update": {"replace": "new", "add": "new"}}"#,
                r#"{"update": {"replace": "new", "add": "new", "keep": "other"}}"#,
            ),
            (
                "replace list",
                r#"{"list": [1,2,3,{"a":true}]}"#,
                r#"{"list": [4,5,6]}"#,
                r#"{"list": [7,8,9,{"b":false}]}"#,
                r#"{"list": [7,8,9,{"b":false}]}"#,
            ),
            (
                "merge list-map",
                r#"{
                    "listMap": [
                        {"name": "keep", "value": "other"},
                        {"name": "remove", "value": "other"},
                        {"name": "merge", "nested": {"keep": "other"}}
                    ],
                    "ports1": [{"port": 80, "keep": "other"}],
                    "ports2": [{"containerPort": 80, "keep": "other"}]
                }"#,
                r#"{
                    "listMap": [{"name": "remove", "value": "old"}],
                    "ports1": [{"port": 80, "remove": "old"}]
                }"#,
                r#"{
                    "listMap": [
                        {"name": "add", "value": "new"},
                        {"name": "merge", "nested": {"add": "new"}}
                    ],
                    "ports1": [{"port": 80, "add": "new"}, {"port": 90}],
                    "ports2": [{"containerPort": 80}, {"containerPort": 90}]
                }"#,
                r#"{
                    "listMap": [
                        {"name": "keep", "value": "other"},
                        {"name": "merge", "nested": {"keep": "other", "add": "new"}},
                        {"name": "add", "value": "new"}
                    ],
                    "ports1": [{"port": 80, "keep": "other", "add": "new"}, {"port": 90}],
                    "ports2": [{"containerPort": 80, "keep": "other"}, {"containerPort": 90}]
                }"#,
            ),
            (
                "replace list of objects that's not a list-map",
                r#"{"notListMap": [
                    {"name": "keep", "value": "other"},
                    {"notName": "remove", "value": "other"},
                    {"name": "merge", "nested": {"keep": "other"}}
                ]}"#,
                r#"{"notListMap": [{"name": "remove", "value": "old"}]}"#,
                r#"{"notListMap": [
                    {"name": "add", "value": "new"},
                    {"name": "merge", "nested": {"add": "new"}}
                ]}"#,
                r#"{"notListMap": [
                    {"name": "add", "value": "new"},
                    {"name": "merge", "nested": {"add": "new"}}
                ]}"#,
            ),
            (
                "key removed from desired is removed, foreign key kept",
                r#"{"spec": {"a": 1, "b": 2, "defaulted": true}}"#,
                r#"{"spec": {"a": 1, "b": 2}}"#,
                r#"{"spec": {"a": 1}}"#,
                r#"{"spec": {"a": 1, "defaulted": true}}"#,
            ),
            (
                "whole subtree removed from desired",
                r#"{"spec": {"x": {"y": 1}, "z": 1}}"#,
                r#"{"spec": {"x": {"y": 1}, "z": 1}}"#,
                r#"{"spec": {"z": 1}}"#,
                r#"{"spec": {"z": 1}}"#,
            ),
            (
                "no last-applied: nothing removed",
                r#"{"a": 1, "b": 2}"#,
                "null",
                r#"{"a": 3}"#,
                r#"{"a": 3, "b": 2}"#,
            ),
            (
                "list item removed from desired",
                r#"{"items": [{"name": "a", "x": 1}, {"name": "b"}, {"name": "c"}]}"#,
                r#"{"items": [{"name": "a"}, {"name": "b"}]}"#,
                r#"{"items": [{"name": "a"}]}"#,
                r#"{"items": [{"name": "a", "x": 1}, {"name": "c"}]}"#,
            ),
            (
                "empty desired list-map keeps foreign items",
                r#"{"items": [{"name": "a"}, {"name": "foreign"}]}"#,
                r#"{"items": [{"name": "a"}]}"#,
                r#"{"items": []}"#,
                r#"{"items": [{"name": "foreign"}]}"#,
            ),
            (
                "empty lists everywhere replace",
                r#"{"items": []}"#,
                r#"{"items": []}"#,
                r#"{"items": []}"#,
                r#"{"items": []}"#,
            ),
            (
                "list-map key precedence: containerPort before name",
                r#"{"ports": [{"name": "http", "containerPort": 80, "protocol": "TCP"}]}"#,
                r#"{"ports": [{"name": "http", "containerPort": 80}]}"#,
                r#"{"ports": [{"name": "web", "containerPort": 80}]}"#,
                r#"{"ports": [{"name": "web", "containerPort": 80, "protocol": "TCP"}]}"#,
            ),
            (
                "list-map key values compared as text",
                r#"{"ports": [{"port": 80, "extra": 1}]}"#,
                "{}",
                r#"{"ports": [{"port": "80"}]}"#,
                r#"{"ports": [{"port": "80", "extra": 1}]}"#,
            ),
            (
                "duplicate observed keys are kept twice",
                r#"{"l": [{"name": "a", "v": 1}, {"name": "a", "v": 2}]}"#,
                "{}",
                r#"{"l": [{"name": "a", "w": 3}]}"#,
                r#"{"l": [{"name": "a", "v": 2, "w": 3}, {"name": "a", "v": 2, "w": 3}]}"#,
            ),
            (
                "scalar list replaced",
                r#"{"args": ["a", "b"]}"#,
                r#"{"args": ["a"]}"#,
                r#"{"args": ["c"]}"#,
                r#"{"args": ["c"]}"#,
            ),
            (
                "desired object replaces observed scalar",
                r#"{"a": "x"}"#,
                "{}",
                r#"{"a": {"b": 1}}"#,
                r#"{"a": {"b": 1}}"#,
            ),
            (
                "desired null over observed scalar",
                r#"{"a": "x"}"#,
                "{}",
                r#"{"a": null}"#,
                r#"{"a": null}"#,
            ),
            (
                "desired null over observed object keeps it minus last-applied keys",
                r#"{"a": {"mine": 1, "theirs": 2}}"#,
                r#"{"a": {"mine": 1}}"#,
                r#"{"a": null}"#,
                r#"{"a": {"theirs": 2}}"#,
            ),
            (
                "desired scalar over observed object is ignored",
                r#"{"a": {"theirs": 2}}"#,
                "{}",
                r#"{"a": "x"}"#,
                r#"{"a": {"theirs": 2}}"#,
            ),
            (
                "desired scalar over observed plain list gives null",
                r#"{"a": [1, 2]}"#,
                "{}",
                r#"{"a": "x"}"#,
                r#"{"a": null}"#,
            ),
            (
                "desired null over observed list-map drops last-applied items",
                r#"{"a": [{"name": "mine"}, {"name": "theirs"}]}"#,
                r#"{"a": [{"name": "mine"}]}"#,
                r#"{"a": null}"#,
                r#"{"a": [{"name": "theirs"}]}"#,
            ),
            (
                "container env merge",
                r#"{"spec": {"containers": [{
                    "name": "app", "image": "app:1", "imagePullPolicy": "IfNotPresent",
                    "terminationMessagePath": "/dev/termination-log",
                    "env": [
                        {"name": "KEEP", "value": "1"},
                        {"name": "DROP", "value": "2"},
                        {"name": "INJECTED", "value": "by-webhook"}
                    ],
                    "volumeMounts": [{"mountPath": "/data", "name": "data", "readOnly": false}]
                }]}}"#,
                r#"{"spec": {"containers": [{
                    "name": "app", "image": "app:1",
                    "env": [{"name": "KEEP", "value": "1"}, {"name": "DROP", "value": "2"}],
                    "volumeMounts": [{"mountPath": "/data", "name": "data"}]
                }]}}"#,
                r#"{"spec": {"containers": [{
                    "name": "app", "image": "app:2",
                    "env": [{"name": "NEW", "value": "3"}, {"name": "KEEP", "value": "1b"}],
                    "volumeMounts": [{"mountPath": "/data", "name": "data2"}]
                }]}}"#,
                r#"{"spec": {"containers": [{
                    "name": "app", "image": "app:2", "imagePullPolicy": "IfNotPresent",
                    "terminationMessagePath": "/dev/termination-log",
                    "env": [
                        {"name": "KEEP", "value": "1b"},
                        {"name": "INJECTED", "value": "by-webhook"},
                        {"name": "NEW", "value": "3"}
                    ],
                    "volumeMounts": [{"mountPath": "/data", "name": "data2", "readOnly": false}]
                }]}}"#,
            ),
            (
                "env var value removed from desired (valueFrom replaces value)",
                r#"{"env": [{"name": "A", "value": "1"}]}"#,
                r#"{"env": [{"name": "A", "value": "1"}]}"#,
                r#"{"env": [{"name": "A", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}]}"#,
                r#"{"env": [{"name": "A", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}]}"#,
            ),
        ];
        for (name, observed, last, desired, want) in cases {
            let got = merge(&parse(observed), &parse(last), &parse(desired));
            assert_eq!(got, parse(want), "{name}");
        }
    }

    #[test]
    fn merge_keeps_observed_order_and_appends_in_desired_order() {
        let got = merge(
            &parse(r#"{"l": [{"name": "c"}, {"name": "a"}]}"#),
            &parse("{}"),
            &parse(r#"{"l": [{"name": "z"}, {"name": "a"}, {"name": "y"}]}"#),
        );
        let names: Vec<&str> = got["l"]
            .as_array()
            .expect("list")
            .iter()
            .map(|i| i["name"].as_str().expect("name"))
            .collect();
        assert_eq!(names, ["c", "a", "z", "y"]);
    }

    #[test]
    fn detect_list_map_key_table() {
        let cases: &[(&str, Option<&str>)] = &[
            ("[[], [], []]", None),
            (r#"[[{"name": "a"}], [], []]"#, Some("name")),
            (
                r#"[[{"name": "a", "port": 1}], [{"port": 2, "name": "b"}], []]"#,
                Some("port"),
            ),
            (r#"[[{"name": "a"}], [{"port": 2}], []]"#, None),
            (r#"[[{"name": "a"}, 1], [], []]"#, None),
            (r#"[[], [], [{"path": "/", "ip": "1.2.3.4"}]]"#, Some("ip")),
            (
                r#"[[{"uid": "u", "mountPath": "/m"}], [], []]"#,
                Some("mountPath"),
            ),
            (r#"[[{"name": null}], [], []]"#, Some("name")),
            (r#"[[{"key": "a"}], [], []]"#, None),
        ];
        for (lists, want) in cases {
            let v = parse(lists);
            let lists: Vec<&Vec<Value>> = v
                .as_array()
                .expect("outer")
                .iter()
                .map(|l| l.as_array().expect("inner"))
                .collect();
            assert_eq!(detect_list_map_key(&lists), *want, "{v}");
        }
    }

    #[test]
    fn last_applied_round_trip_and_encoding() {
        let mut obj = parse(r#"{"metadata": {"name": "x"}}"#);
        let desired = parse(r#"{"testing": "123", "b": [1, 2.5, "<&>"], "a": {}}"#);
        set_last_applied(&mut obj, &desired).expect("set");
        assert_eq!(
            obj["metadata"]["annotations"][LAST_APPLIED_ANNOTATION],
            r#"{"a":{},"b":[1,2.5,"\u003c\u0026\u003e"],"testing":"123"}"#
        );
        assert_eq!(get_last_applied(&obj).expect("get"), Some(desired));

        // Keeps other annotations; creates metadata when missing.
        let mut obj = parse(r#"{"metadata": {"annotations": {"other": "1"}}}"#);
        set_last_applied(&mut obj, &parse("{}")).expect("set");
        assert_eq!(obj["metadata"]["annotations"]["other"], "1");
        assert_eq!(
            obj["metadata"]["annotations"][LAST_APPLIED_ANNOTATION],
            "{}"
        );
        let mut obj = parse("{}");
        set_last_applied(&mut obj, &parse(r#"{"k": 1}"#)).expect("set");
        assert_eq!(
            obj["metadata"]["annotations"][LAST_APPLIED_ANNOTATION],
            r#"{"k":1}"#
        );
        assert!(set_last_applied(&mut parse("[]"), &parse("{}")).is_err());
        assert!(set_last_applied(&mut parse(r#"{"metadata": 1}"#), &parse("{}")).is_err());
    }

    #[test]
    fn get_last_applied_table() {
        let ann = |s: &str| json!({"metadata": {"annotations": {LAST_APPLIED_ANNOTATION: s}}});
        let cases: Vec<(Value, Result<Option<Value>, ()>)> = vec![
            (json!({}), Ok(None)),
            (json!({"metadata": {}}), Ok(None)),
            (json!({"metadata": {"annotations": {}}}), Ok(None)),
            (ann(""), Ok(None)),
            (ann("null"), Ok(None)),
            (ann("{}"), Ok(Some(json!({})))),
            (ann(r#"{"a": [1]}"#), Ok(Some(json!({"a": [1]})))),
            (ann("[1]"), Err(())),
            (ann("\"x\""), Err(())),
            (ann("{"), Err(())),
        ];
        for (obj, want) in cases {
            let got = get_last_applied(&obj);
            match want {
                Ok(v) => assert_eq!(got.expect("ok"), v, "{obj}"),
                Err(()) => assert!(got.is_err(), "{obj}"),
            }
        }
        let err = get_last_applied(&ann("[1]")).expect_err("not object");
        assert!(err.to_string().contains(LAST_APPLIED_ANNOTATION));
    }

    #[test]
    fn revert_system_fields_table() {
        // (name, new, observed, want)
        let cases: &[(&str, &str, &str, &str)] = &[
            (
                "copied back when observed has them",
                r#"{"metadata": {"name": "x", "uid": "changed", "resourceVersion": "9",
                    "generation": 7, "labels": {"a": "b"}}, "status": {"hook": true}}"#,
                r#"{"metadata": {"name": "x", "uid": "u1", "resourceVersion": "5", "generation": 2,
                    "selfLink": "/x", "creationTimestamp": "2024-01-01T00:00:00Z",
                    "deletionTimestamp": "2024-01-02T00:00:00Z",
                    "deletionGracePeriodSeconds": 30,
                    "managedFields": [{"manager": "m"}]}, "status": {"ready": 1}}"#,
                r#"{"metadata": {"name": "x", "uid": "u1", "resourceVersion": "5", "generation": 2,
                    "selfLink": "/x", "creationTimestamp": "2024-01-01T00:00:00Z",
                    "deletionTimestamp": "2024-01-02T00:00:00Z",
                    "deletionGracePeriodSeconds": 30,
                    "managedFields": [{"manager": "m"}], "labels": {"a": "b"}},
                    "status": {"ready": 1}}"#,
            ),
            (
                "removed when observed lacks them",
                r#"{"metadata": {"name": "x", "uid": "u", "generation": 3, "selfLink": "/s",
                    "creationTimestamp": null}, "status": {"hook": true}}"#,
                r#"{"metadata": {"name": "x"}}"#,
                r#"{"metadata": {"name": "x"}}"#,
            ),
            (
                "null in observed is copied as null",
                r#"{"metadata": {}, "status": {"x": 1}}"#,
                r#"{"metadata": {"creationTimestamp": null}, "status": null}"#,
                r#"{"metadata": {"creationTimestamp": null}, "status": null}"#,
            ),
            (
                "metadata created when missing",
                r#"{}"#,
                r#"{"metadata": {"uid": "u"}}"#,
                r#"{"metadata": {"uid": "u"}}"#,
            ),
        ];
        for (name, new, observed, want) in cases {
            let mut new = parse(new);
            revert_system_fields(&mut new, &parse(observed));
            assert_eq!(new, parse(want), "{name}");
        }
    }

    fn observed_child() -> Value {
        json!({
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {
                "name": "web",
                "namespace": "default",
                "uid": "u-1",
                "resourceVersion": "100",
                "generation": 3,
                "creationTimestamp": "2024-01-01T00:00:00Z",
                "labels": {"app": "web"},
                "annotations": {
                    "deployment.kubernetes.io/revision": "2",
                    LAST_APPLIED_ANNOTATION: gojson::to_string(&desired_child())
                },
                "ownerReferences": [{"apiVersion": "x/v1", "kind": "P", "name": "p", "uid": "p-1",
                    "controller": true, "blockOwnerDeletion": true}]
            },
            "spec": {
                "replicas": 2,
                "progressDeadlineSeconds": 600,
                "template": {"spec": {"containers": [{
                    "name": "web", "image": "nginx:1", "imagePullPolicy": "IfNotPresent",
                    "env": [{"name": "A", "value": "1"}]
                }]}}
            },
            "status": {"replicas": 2, "readyReplicas": 2}
        })
    }

    fn desired_child() -> Value {
        json!({
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "web", "labels": {"app": "web"}},
            "spec": {
                "replicas": 2,
                "template": {"spec": {"containers": [{
                    "name": "web", "image": "nginx:1",
                    "env": [{"name": "A", "value": "1"}]
                }]}}
            }
        })
    }

    #[test]
    fn apply_update_no_op() {
        let observed = observed_child();
        assert_eq!(apply_update(&observed, &desired_child()).expect("ok"), None);

        // Attempts to change system fields or status never reach the object;
        // only the recorded annotation changes (once), as in Metacontroller.
        let mut desired = desired_child();
        desired["status"] = json!({"replicas": 99});
        desired["metadata"]["uid"] = json!("other");
        desired["metadata"]["resourceVersion"] = json!("1");
        let new = apply_update(&observed, &desired)
            .expect("ok")
            .expect("annotation changed");
        let mut expected = observed.clone();
        set_last_applied(&mut expected, &desired).expect("set");
        assert_eq!(new, expected);
        assert_eq!(apply_update(&new, &desired).expect("ok"), None);
    }

    #[test]
    fn apply_update_changes() {
        let observed = observed_child();
        let mut desired = desired_child();
        desired["spec"]["replicas"] = json!(3);
        desired["spec"]["template"]["spec"]["containers"][0]["env"] =
            json!([{"name": "B", "value": "2"}]);
        let new = apply_update(&observed, &desired)
            .expect("ok")
            .expect("changed");
        assert_eq!(new["spec"]["replicas"], 3);
        assert_eq!(new["spec"]["progressDeadlineSeconds"], 600);
        let c = &new["spec"]["template"]["spec"]["containers"][0];
        assert_eq!(c["imagePullPolicy"], "IfNotPresent");
        assert_eq!(c["env"], json!([{"name": "B", "value": "2"}]));
        assert_eq!(new["metadata"]["resourceVersion"], "100");
        assert_eq!(new["metadata"]["uid"], "u-1");
        assert_eq!(new["status"], observed["status"]);
        assert_eq!(
            new["metadata"]["ownerReferences"],
            observed["metadata"]["ownerReferences"]
        );
        assert_eq!(
            new["metadata"]["annotations"]["deployment.kubernetes.io/revision"],
            "2"
        );
        assert_eq!(
            get_last_applied(&new).expect("ok"),
            Some(desired.clone()),
            "annotation rewritten to desired"
        );
        // Applying the same desired to the result is a no-op.
        assert_eq!(apply_update(&new, &desired).expect("ok"), None);
    }

    #[test]
    fn apply_update_removes_fields_dropped_from_desired() {
        let mut desired = desired_child();
        desired["metadata"]["labels"]["tier"] = json!("fe");
        desired["spec"]["paused"] = json!(false);
        let mut observed = observed_child();
        set_last_applied(&mut observed, &desired).expect("set");
        observed["metadata"]["labels"]["tier"] = json!("fe");
        observed["metadata"]["labels"]["added-by-someone"] = json!("x");
        observed["spec"]["paused"] = json!(false);
        assert_eq!(apply_update(&observed, &desired).expect("ok"), None);

        let new = apply_update(&observed, &desired_child())
            .expect("ok")
            .expect("changed");
        assert_eq!(
            new["metadata"]["labels"],
            json!({"app": "web", "added-by-someone": "x"})
        );
        assert!(new["spec"].get("paused").is_none());
    }

    #[test]
    fn apply_update_without_annotation_and_with_desired_annotation() {
        // No annotation: nothing is removed, annotation gets written.
        let mut observed = observed_child();
        observed["metadata"]["annotations"]
            .as_object_mut()
            .expect("annotations")
            .remove(LAST_APPLIED_ANNOTATION);
        let new = apply_update(&observed, &desired_child())
            .expect("ok")
            .expect("annotation added");
        assert_eq!(get_last_applied(&new).expect("ok"), Some(desired_child()));

        // A last-applied annotation in desired is neither merged nor recorded;
        // an annotations object left empty by its removal stays as {}.
        let mut desired = desired_child();
        desired["metadata"]["annotations"] = json!({LAST_APPLIED_ANNOTATION: "{\"bogus\":1}"});
        let new = apply_update(&observed_child(), &desired)
            .expect("ok")
            .expect("changed");
        let recorded = get_last_applied(&new).expect("ok").expect("some");
        assert_eq!(recorded["metadata"]["annotations"], json!({}));
        assert_eq!(
            new["metadata"]["annotations"]["deployment.kubernetes.io/revision"],
            "2"
        );
    }

    /// A desired `{}`, `[]` or `null` differs from a missing field, as for
    /// Metacontroller's `reflect.DeepEqual`: when the server drops the empty
    /// value (empty maps of built-in types), every sync writes again.
    #[test]
    fn apply_update_empty_differs_from_missing() {
        for (field, empty) in [
            ("data", json!({})),
            ("items", json!([])),
            ("x", json!(null)),
        ] {
            let mut desired = json!({"apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {"name": "c"}});
            desired[field] = empty.clone();
            // As stored: the annotation records `desired`, the field is gone.
            let mut observed = json!({"apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {"name": "c", "uid": "u", "resourceVersion": "3"}});
            set_last_applied(&mut observed, &desired).unwrap();
            let new = apply_update(&observed, &desired)
                .unwrap()
                .unwrap_or_else(|| panic!("{field}: missing taken for {empty}"));
            assert_eq!(new[field], empty);
            // Stored as given, it is not written again.
            assert_eq!(apply_update(&new, &desired).unwrap(), None, "{field}");
        }
    }

    #[test]
    fn apply_update_invalid_annotation() {
        let mut observed = observed_child();
        observed["metadata"]["annotations"][LAST_APPLIED_ANNOTATION] = json!("not json");
        assert!(matches!(
            apply_update(&observed, &desired_child()),
            Err(DynamicApplyError::LastAppliedInvalid(_))
        ));
    }

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

    #[test]
    fn the_quick_no_op_check_agrees_with_the_merge() {
        // Observed objects as the server returns them after an earlier apply
        // of `applied`, and desired objects to apply now.
        let applied = json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "c", "labels": {"a": "1"}, "annotations": {"x": "y"}},
            "data": {"k": "v"},
            "spec": {"ports": [{"port": 80, "name": "http"}, {"port": 443, "name": "https"}],
                     "args": ["a", "b"], "n": 1, "f": 0.5, "none": null}});
        let mut observed = applied.clone();
        set_last_applied(&mut observed, &applied).unwrap();
        observed["metadata"]["uid"] = json!("u1");
        observed["metadata"]["resourceVersion"] = json!("7");
        observed["metadata"]["managedFields"] =
            json!([{"manager": "m", "fieldsV1": {"f:data": {}}}]);
        observed["metadata"]["labels"]["added-by-someone"] = json!("z");
        observed["status"] = json!({"phase": "Ready"});
        let mut variants = vec![applied.clone()];
        let mut with_status = applied.clone();
        with_status["status"] = json!({"ignored": true});
        variants.push(with_status);
        let mut with_system = applied.clone();
        with_system["metadata"]["uid"] = json!("other");
        variants.push(with_system);
        for (path, value) in [
            ("/data/k", json!("changed")),
            ("/spec/n", json!(1.0)),
            ("/spec/args/1", json!("c")),
            ("/spec/ports/0/port", json!(8080)),
            ("/spec/none", json!(0)),
            ("/metadata/labels/a", json!("2")),
        ] {
            let mut changed = applied.clone();
            *changed.pointer_mut(path).expect(path) = value;
            variants.push(changed);
        }
        let mut more = applied.clone();
        more["data"]["new"] = json!("x");
        variants.push(more);
        let mut fewer = applied.clone();
        fewer["data"].as_object_mut().unwrap().remove("k");
        variants.push(fewer);
        // Drift: someone else changed a field the controller owns.
        let mut drifted = observed.clone();
        drifted["data"]["k"] = json!("theirs");
        let mut repeated = applied.clone();
        repeated["spec"]["ports"] = json!([{"port": 80}, {"port": 80}]);
        let mut observed_repeated = observed.clone();
        observed_repeated["spec"]["ports"] = repeated["spec"]["ports"].clone();
        set_last_applied(&mut observed_repeated, &repeated).unwrap();
        // Applied with a status and system fields, which the merge reverts:
        // still nothing to do.
        let mut with_both = applied.clone();
        with_both["status"] = json!({"ignored": true});
        with_both["metadata"]["resourceVersion"] = json!("1");
        let mut observed_both = observed.clone();
        set_last_applied(&mut observed_both, &with_both).unwrap();
        let cases = variants.iter().map(|d| (&observed, d)).chain([
            (&drifted, &applied),
            (&observed_repeated, &repeated),
            (&observed_both, &with_both),
        ]);
        let mut quick = 0;
        for (observed, desired) in cases {
            let mut d = desired.clone();
            remove_last_applied(&mut d);
            let full = {
                let last = get_last_applied(observed).unwrap().unwrap_or(Value::Null);
                let mut new_obj = merge(observed, &last, &d);
                revert_system_fields(&mut new_obj, observed);
                set_last_applied(&mut new_obj, &d).unwrap();
                new_obj == *observed
            };
            if already_applied(observed, &d) {
                quick += 1;
                assert!(full, "quick check said no-op for {desired}");
            }
            assert_eq!(apply_update(observed, desired).unwrap().is_none(), full);
        }
        // The unchanged desired objects are recognised without merging.
        assert_eq!(quick, 2);
    }

    #[test]
    fn remove_last_applied_table() {
        let mut with = json!({"metadata": {"annotations": {LAST_APPLIED_ANNOTATION: "{}"}}});
        assert!(remove_last_applied(&mut with));
        assert_eq!(with, json!({"metadata": {"annotations": {}}}));
        let mut without = json!({"metadata": {}});
        assert!(!remove_last_applied(&mut without));
        assert_eq!(without, json!({"metadata": {}}));
    }
}
