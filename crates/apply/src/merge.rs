//! Metacontroller's "dynamic apply" merge: a client-side, type-agnostic
//! three-way merge in the spirit of `kubectl apply`, used to update children
//! from the partial objects hooks return.
//!
//! Behaviour follows `Merge` in Metacontroller's
//! `pkg/dynamic/apply/apply.go`.
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
//!   by the desired one. A desired list in which two items share the key's
//!   value is replaced too: merged by key it would never settle (Metacontroller
//!   updates such a child on every sync).
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

use serde_json::{Map, Value};

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

static NULL: Value = Value::Null;

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
    if let Some(key) = detect_list_map_key(&[&dest, last, des])
        && !repeats_key(des, key)
    {
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

/// Whether two items of `list` share a value of `merge_key`. Such a list
/// can't be merged by key — the merge would pair both items with the same
/// observed one and the result would change again on every apply — so it
/// is replaced as a whole, and applying it again changes nothing.
fn repeats_key(list: &[Value], merge_key: &str) -> bool {
    let mut seen = HashSet::new();
    list.iter()
        .any(|item| !seen.insert(list_map_item_key(item, merge_key)))
}

/// The map key of a list-map item: the merge field rendered like Go's `%v`
/// (strings as-is, numbers in decimal), so `80` and `"80"` are one item.
pub(crate) fn list_map_item_key(item: &Value, merge_key: &str) -> String {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::parse;

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
}
