//! Replaces what legitimately differs between two servers (and between two
//! runs of one) with placeholders that keep equality relations: a uid or
//! resourceVersion becomes the name of the place it was first seen, so
//! "this update returned the version the create returned" compares equal on
//! both sides while the numbers themselves never do.

use std::collections::HashMap;

use serde_json::{Map, Value};

/// Timestamps: only their presence is compared.
const TIME_KEYS: &[&str] = &[
    "creationTimestamp",
    "deletionTimestamp",
    "time",
    "lastTransitionTime",
    "lastUpdateTime",
    "lastProbeTime",
];

#[derive(Default)]
pub struct Normaliser {
    /// Value -> placeholder, per category (uid, rv, name).
    seen: HashMap<(&'static str, String), String>,
}

impl Normaliser {
    fn placeholder(&mut self, category: &'static str, value: &str, here: &str) -> Value {
        let name = self
            .seen
            .entry((category, value.to_owned()))
            .or_insert_with(|| format!("<{category}@{here}>"))
            .clone();
        Value::String(name)
    }

    /// Normalises the record of step `id` in place.
    pub fn record(&mut self, id: &str, record: &mut Value) {
        let kind = record["body"]["kind"].as_str().unwrap_or("").to_owned();
        // The real server reports schema-validation causes in no fixed order.
        if let Some(Value::Array(causes)) = record.pointer_mut("/body/details/causes") {
            causes.sort_by_key(|c| c.to_string());
        }
        if let Some(body) = record.get_mut("body") {
            let list = kind.ends_with("List");
            self.walk(id, "/body", body, list);
        }
        if let Some(Value::Array(events)) = record.get_mut("events") {
            for (i, e) in events.iter_mut().enumerate() {
                let bookmark = e["type"] == "BOOKMARK";
                if let Some(obj) = e.get_mut("object") {
                    self.walk(id, &format!("/events/{i}/object"), obj, bookmark);
                }
            }
        }
    }

    /// `collection`: the top-level resourceVersion is a list's (or a
    /// bookmark's): the store's current version, which counts writes the
    /// corpus never sees on a real cluster.
    fn walk(&mut self, id: &str, path: &str, v: &mut Value, collection: bool) {
        match v {
            Value::Object(map) => {
                if let Some(Value::Object(meta)) = map.get_mut("metadata") {
                    self.generated_name(id, &format!("{path}/metadata"), meta);
                    if collection && let Some(rv) = meta.get_mut("resourceVersion") {
                        *rv = Value::String("<collection-rv>".into());
                    }
                }
                for (k, x) in map.iter_mut() {
                    let here = format!("{path}/{k}");
                    match (k.as_str(), &*x) {
                        ("uid", Value::String(s)) if !s.is_empty() => {
                            let s = s.clone();
                            *x = self.placeholder("uid", &s, &format!("{id}{here}"));
                        }
                        ("resourceVersion", Value::String(s))
                            if !s.is_empty() && !s.starts_with('<') =>
                        {
                            let s = s.clone();
                            *x = self.placeholder("rv", &s, &format!("{id}{here}"));
                        }
                        ("continue", Value::String(s)) if !s.is_empty() => {
                            *x = Value::String("<continue>".into());
                        }
                        (k, Value::String(_)) if TIME_KEYS.contains(&k) => {
                            *x = Value::String("<time>".into());
                        }
                        _ => self.walk(id, &here, x, false),
                    }
                }
            }
            Value::Array(items) => {
                for (i, x) in items.iter_mut().enumerate() {
                    self.walk(id, &format!("{path}/{i}"), x, false);
                }
            }
            _ => {}
        }
    }

    fn generated_name(&mut self, id: &str, path: &str, meta: &mut Map<String, Value>) {
        let Some(prefix) = meta.get("generateName").and_then(Value::as_str) else {
            return;
        };
        let prefix = prefix.to_owned();
        if let Some(Value::String(name)) = meta.get("name")
            && name.starts_with(&prefix)
            && name.len() > prefix.len()
        {
            let name = name.clone();
            let p = self.placeholder("name", &name, &format!("{id}{path}/name"));
            meta.insert("name".into(), p);
        }
    }
}
