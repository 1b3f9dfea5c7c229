//! Pruning (`k8s.io/apiextensions-apiserver/pkg/apiserver/schema/pruning`):
//! fields the schema does not specify are dropped, and so are `null`s of
//! non-nullable fields without a default.

use serde_json::{Map, Value};

use super::*;

/// Drops every field of `obj` that `schema` (an `openAPIV3Schema`) does
/// not specify, and returns the paths of what was dropped, as field
/// validation reports them (`spec.foo`, `spec.ports[0].bar`,
/// `metadata.foo`): unknown `metadata` fields first, then the rest sorted.
pub fn prune(schema: &Value, obj: &mut Value) -> Vec<String> {
    let mut unknown = Vec::new();
    if let Some(meta) = obj.get_mut("metadata") {
        prune_object_meta(meta, "metadata", &mut unknown);
    }
    unknown.sort();
    let mut p = Pruner::default();
    p.prune(obj, Some(schema), true);
    p.unknown.sort();
    unknown.extend(p.unknown);
    unknown
}

/// Keeps only the `ObjectMeta` fields of a `metadata` object.
fn prune_object_meta(meta: &mut Value, prefix: &str, unknown: &mut Vec<String>) {
    if let Some(m) = meta.as_object_mut() {
        m.retain(|k, _| {
            let keep = OBJECT_META_FIELDS.contains(&k.as_str());
            if !keep {
                unknown.push(format!("{prefix}.{k}"));
            }
            keep
        });
    }
}

#[derive(Default)]
struct Pruner {
    /// Path of the current node (`spec.ports[0]`).
    path: String,
    unknown: Vec<String>,
}

impl Pruner {
    fn record(&mut self, key: &str) {
        self.unknown.push(child_path(&self.path, key));
    }

    /// Runs `f` with `key` appended to the path.
    fn at_key(&mut self, key: &str, f: impl FnOnce(&mut Self)) {
        let len = self.path.len();
        if !self.path.is_empty() {
            self.path.push('.');
        }
        self.path.push_str(key);
        f(self);
        self.path.truncate(len);
    }

    fn at_index(&mut self, i: usize, f: impl FnOnce(&mut Self)) {
        let len = self.path.len();
        self.path.push_str(&format!("[{i}]"));
        f(self);
        self.path.truncate(len);
    }

    /// `apiVersion`, `kind` and `metadata` of an embedded resource: kept,
    /// but `metadata` only with `ObjectMeta` fields and the type fields
    /// only as strings.
    fn coerce_embedded(&mut self, m: &mut Map<String, Value>, key: &str) {
        match key {
            "metadata" => {
                let prefix = child_path(&self.path, "metadata");
                if let Some(meta) = m.get_mut("metadata") {
                    prune_object_meta(meta, &prefix, &mut self.unknown);
                }
            }
            _ => {
                if m.get(key).is_some_and(|v| !v.is_string()) {
                    m.remove(key);
                }
            }
        }
    }

    fn prune(&mut self, x: &mut Value, s: Option<&Value>, root: bool) {
        if let Some(s) = s
            && preserves_unknown(s)
        {
            self.skip(x, s, root);
            return;
        }
        match x {
            Value::Object(m) => {
                let Some(s) = s else {
                    let keys: Vec<String> = m.keys().cloned().collect();
                    for k in keys {
                        self.record(&k);
                    }
                    m.clear();
                    return;
                };
                let embedded = root || is_embedded(s);
                let keys: Vec<String> = m.keys().cloned().collect();
                for k in keys {
                    if embedded && TYPE_AND_META.contains(&k.as_str()) {
                        if !root {
                            self.coerce_embedded(m, &k);
                        }
                        continue;
                    }
                    if let Some(sub) = property_or_additional(s, &k) {
                        if let Some(v) = m.get_mut(&k) {
                            self.at_key(&k, |p| p.prune(v, Some(sub), false));
                        }
                    } else if !additional_any(s) {
                        self.record(&k);
                        m.remove(&k);
                    }
                }
            }
            Value::Array(a) => {
                let item = s.and_then(items);
                for (i, v) in a.iter_mut().enumerate() {
                    self.at_index(i, |p| p.prune(v, item, false));
                }
            }
            _ => {}
        }
    }

    /// Below `x-kubernetes-preserve-unknown-fields`: unknown fields stay,
    /// specified ones are pruned by their own schema.
    fn skip(&mut self, x: &mut Value, s: &Value, root: bool) {
        match x {
            Value::Object(m) => {
                let embedded = root || is_embedded(s);
                let keys: Vec<String> = m.keys().cloned().collect();
                for k in keys {
                    if embedded && TYPE_AND_META.contains(&k.as_str()) {
                        if !root {
                            self.coerce_embedded(m, &k);
                        }
                        continue;
                    }
                    if let Some(sub) = property_or_additional(s, &k)
                        && let Some(v) = m.get_mut(&k)
                    {
                        self.at_key(&k, |p| p.prune(v, Some(sub), false));
                    }
                }
            }
            Value::Array(a) => {
                if let Some(item) = items(s) {
                    for (i, v) in a.iter_mut().enumerate() {
                        self.at_index(i, |p| p.skip(v, item, false));
                    }
                }
            }
            _ => {}
        }
    }
}

/// Drops `null` values of fields that are neither nullable nor defaulted.
pub fn prune_nulls(schema: &Value, obj: &mut Value) {
    match obj {
        Value::Object(m) => {
            m.retain(|k, v| {
                !(v.is_null()
                    && property_or_additional(schema, k)
                        .is_some_and(|s| default_of(s).is_none() && !is_nullable(s)))
            });
            for (k, v) in m.iter_mut() {
                if let Some(s) = property_or_additional(schema, k) {
                    prune_nulls(s, v);
                }
            }
        }
        Value::Array(a) => {
            if let Some(item) = items(schema) {
                for v in a {
                    prune_nulls(item, v);
                }
            }
        }
        _ => {}
    }
}
