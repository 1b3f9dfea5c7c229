//! What a server-side apply would make of an object, as far as it can be
//! computed without the API server: see [`applied_result`].

use serde_json::{Map, Value};

use crate::object;
use crate::ssa::applied_fields;

/// The object a server-side apply of `applied` by `manager` would leave,
/// computed offline from `observed` and its `managedFields`:
///
/// * fields `manager` owns (its `Apply` entry) that `applied` no longer
///   has are removed;
/// * maps merge field by field; a list merges item by item when it is
///   keyed, which is known from `manager`'s `k:` entries or, failing them,
///   when every item has a `name` (items of the observed list that are not
///   applied stay, unless `manager` owned them); any other list is
///   replaced;
/// * every other value is replaced.
///
/// The API server knows more: list types and defaults from the schema,
/// fields co-owned with other managers (they stay), and validation.
pub fn applied_result(observed: &Value, applied: &Value, manager: &str) -> Value {
    let mut out = observed.clone();
    if let Some(owned) = applied_fields(observed, manager) {
        drop_released(&mut out, owned, applied);
    }
    merge(&mut out, applied, applied_fields(observed, manager));
    out
}

/// Removes from `out` what `owned` (a `FieldsV1` node) has and `applied`
/// lacks.
fn drop_released(out: &mut Value, owned: &Map<String, Value>, applied: &Value) {
    for (key, child) in owned {
        let child = child.as_object();
        if let Some(field) = key.strip_prefix("f:") {
            match applied.get(field) {
                None => {
                    if let Value::Object(map) = out {
                        map.remove(field);
                    }
                }
                Some(next) => {
                    if let (Some(child), Some(target)) = (child, out.get_mut(field)) {
                        drop_released(target, child, next);
                    }
                }
            }
        } else if let Some(json) = key.strip_prefix("k:") {
            let Ok(Value::Object(k)) = serde_json::from_str::<Value>(json) else {
                continue;
            };
            let wanted = applied
                .as_array()
                .and_then(|items| items.iter().find(|i| has_key(i, &k)));
            let Value::Array(items) = out else { continue };
            match wanted {
                None => items.retain(|i| !has_key(i, &k)),
                Some(next) => {
                    if let (Some(child), Some(target)) =
                        (child, items.iter_mut().find(|i| has_key(i, &k)))
                    {
                        drop_released(target, child, next);
                    }
                }
            }
        } else if let Some(json) = key.strip_prefix("v:") {
            let Ok(v) = serde_json::from_str::<Value>(json) else {
                continue;
            };
            let kept = applied
                .as_array()
                .is_some_and(|items| items.iter().any(|x| object::semantic_eq(x, &v)));
            if !kept && let Value::Array(items) = out {
                items.retain(|x| !object::semantic_eq(x, &v));
            }
        }
    }
}

/// Whether `item` has every field of `key`, equal.
fn has_key(item: &Value, key: &Map<String, Value>) -> bool {
    key.iter()
        .all(|(f, v)| item.get(f).is_some_and(|x| object::semantic_eq(x, v)))
}

/// The key fields of a list: those of `owned`'s `k:` entries, else `name`
/// when every item of both lists has one.
fn list_key(owned: Option<&Map<String, Value>>, a: &[Value], b: &[Value]) -> Option<Vec<String>> {
    if let Some(node) = owned {
        for k in node.keys() {
            if let Some(json) = k.strip_prefix("k:")
                && let Ok(Value::Object(key)) = serde_json::from_str::<Value>(json)
            {
                return Some(key.keys().cloned().collect());
            }
        }
    }
    let named = |items: &[Value]| {
        items
            .iter()
            .all(|i| i.get("name").is_some_and(Value::is_string))
    };
    (!a.is_empty() && named(a) && named(b)).then(|| vec!["name".to_owned()])
}

fn merge(out: &mut Value, applied: &Value, owned: Option<&Map<String, Value>>) {
    match (out, applied) {
        (Value::Object(target), Value::Object(source)) => {
            for (k, v) in source {
                let node = owned
                    .and_then(|o| o.get(&format!("f:{k}")))
                    .and_then(Value::as_object);
                match target.get_mut(k) {
                    Some(existing) => merge(existing, v, node),
                    None => {
                        target.insert(k.clone(), v.clone());
                    }
                }
            }
        }
        (Value::Array(target), Value::Array(source)) => {
            let Some(key) = list_key(owned, source, target) else {
                *target = source.clone();
                return;
            };
            let key_of = |item: &Value| -> Map<String, Value> {
                key.iter()
                    .filter_map(|f| item.get(f).map(|v| (f.clone(), v.clone())))
                    .collect()
            };
            let mut merged = Vec::with_capacity(source.len());
            for item in source {
                let k = key_of(item);
                let node = owned
                    .and_then(|o| o.get(&format!("k:{}", Value::Object(k.clone()))))
                    .and_then(Value::as_object);
                match target.iter().position(|t| has_key(t, &k)) {
                    Some(i) => {
                        let mut existing = target.remove(i);
                        merge(&mut existing, item, node);
                        merged.push(existing);
                    }
                    None => merged.push(item.clone()),
                }
            }
            // Items applied by nobody here stay, after ours.
            merged.append(target);
            *target = merged;
        }
        (target, source) => *target = source.clone(),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn maps_merge_and_released_fields_go() {
        let observed = json!({
            "metadata": {"name": "a", "labels": {"x": "1", "mine": "1"},
                "managedFields": [{"manager": "mc", "operation": "Apply",
                    "fieldsV1": {"f:metadata": {"f:labels": {"f:mine": {}}}, "f:data": {"f:k": {}, "f:old": {}}}}]},
            "data": {"k": "1", "old": "1", "theirs": "1"}
        });
        let applied =
            json!({"metadata": {"name": "a", "labels": {"mine": "2"}}, "data": {"k": "2"}});
        let out = applied_result(&observed, &applied, "mc");
        assert_eq!(out["metadata"]["labels"], json!({"x": "1", "mine": "2"}));
        assert_eq!(out["data"], json!({"k": "2", "theirs": "1"}));
    }

    #[test]
    fn named_lists_merge_by_name() {
        let observed = json!({"spec": {"containers": [
            {"name": "a", "image": "1", "imagePullPolicy": "IfNotPresent"},
            {"name": "sidecar", "image": "s"}]}});
        let applied = json!({"spec": {"containers": [{"name": "a", "image": "2"}]}});
        let out = applied_result(&observed, &applied, "mc");
        assert_eq!(
            out["spec"]["containers"],
            json!([{"name": "a", "image": "2", "imagePullPolicy": "IfNotPresent"},
                   {"name": "sidecar", "image": "s"}])
        );
        // Owned keyed items that are no longer applied go.
        let mut owned = observed.clone();
        owned["metadata"] = json!({"managedFields": [{"manager": "mc", "operation": "Apply",
            "fieldsV1": {"f:spec": {"f:containers": {
                "k:{\"name\":\"a\"}": {"f:image": {}}, "k:{\"name\":\"sidecar\"}": {"f:image": {}}}}}}]});
        let out = applied_result(&owned, &applied, "mc");
        assert_eq!(
            out["spec"]["containers"],
            json!([{"name": "a", "image": "2", "imagePullPolicy": "IfNotPresent"}])
        );
        // Other lists are replaced.
        let out = applied_result(&json!({"l": [1, 2]}), &json!({"l": [3]}), "mc");
        assert_eq!(out["l"], json!([3]));
    }
}
