//! JSON merge patch (RFC 7386), `application/merge-patch+json`.

use serde_json::{Map, Value};

/// Applies a JSON merge patch (RFC 7386) to `original` and returns the
/// result; `original` is left untouched.
///
/// An object patch merges into the target key by key: `null` removes a key,
/// nested objects merge recursively and any other value replaces what was
/// there. A patch that is not an object replaces the whole target.
pub fn json_merge_patch(original: &Value, patch: &Value) -> Value {
    let mut out = original.clone();
    merge_into(&mut out, patch, false);
    out
}

/// Merge patch as the Kubernetes API server applies it.
///
/// Kubernetes uses `gopkg.in/evanphx/json-patch.v4` (`MergePatch`), which
/// follows RFC 7386 but additionally drops `null`-valued keys from objects
/// found inside arrays that the patch puts in place. The RFC keeps those
/// keys; typed Kubernetes objects never carry them.
pub(crate) fn kubernetes_merge_patch(original: &Value, patch: &Value) -> Value {
    let mut out = original.clone();
    merge_into(&mut out, patch, true);
    out
}

fn merge_into(target: &mut Value, patch: &Value, prune_arrays: bool) {
    let Value::Object(patch) = patch else {
        let mut value = patch.clone();
        if prune_arrays {
            prune_null_keys(&mut value);
        }
        *target = value;
        return;
    };
    if !target.is_object() {
        *target = Value::Object(Map::new());
    }
    let Value::Object(target) = target else {
        unreachable!("target was just made an object")
    };
    for (key, value) in patch {
        if value.is_null() {
            target.remove(key);
        } else {
            merge_into(
                target.entry(key.clone()).or_insert(Value::Null),
                value,
                prune_arrays,
            );
        }
    }
}

/// Removes `null`-valued keys from every object inside `value`; `null`
/// array items are kept.
fn prune_null_keys(value: &mut Value) {
    match value {
        Value::Object(map) => {
            map.retain(|_, v| !v.is_null());
            map.values_mut().for_each(prune_null_keys);
        }
        Value::Array(items) => items.iter_mut().for_each(prune_null_keys),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// The examples of RFC 7386 Appendix A.
    #[test]
    fn rfc7386_appendix_a() {
        let cases = [
            (json!({"a": "b"}), json!({"a": "c"}), json!({"a": "c"})),
            (
                json!({"a": "b"}),
                json!({"b": "c"}),
                json!({"a": "b", "b": "c"}),
            ),
            (json!({"a": "b"}), json!({"a": null}), json!({})),
            (
                json!({"a": "b", "b": "c"}),
                json!({"a": null}),
                json!({"b": "c"}),
            ),
            (json!({"a": ["b"]}), json!({"a": "c"}), json!({"a": "c"})),
            (json!({"a": "c"}), json!({"a": ["b"]}), json!({"a": ["b"]})),
            (
                json!({"a": {"b": "c"}}),
                json!({"a": {"b": "d", "c": null}}),
                json!({"a": {"b": "d"}}),
            ),
            (
                json!({"a": [{"b": "c"}]}),
                json!({"a": [1]}),
                json!({"a": [1]}),
            ),
            (json!(["a", "b"]), json!(["c", "d"]), json!(["c", "d"])),
            (json!({"a": "b"}), json!(["c"]), json!(["c"])),
            (json!({"a": "foo"}), json!(null), json!(null)),
            (json!({"a": "foo"}), json!("bar"), json!("bar")),
            (
                json!({"e": null}),
                json!({"a": 1}),
                json!({"e": null, "a": 1}),
            ),
            (
                json!([1, 2]),
                json!({"a": "b", "c": null}),
                json!({"a": "b"}),
            ),
            (
                json!({}),
                json!({"a": {"bb": {"ccc": null}}}),
                json!({"a": {"bb": {}}}),
            ),
        ];
        for (original, patch, expected) in cases {
            let before = original.clone();
            assert_eq!(
                json_merge_patch(&original, &patch),
                expected,
                "{original} + {patch}"
            );
            assert_eq!(original, before, "original must not change");
        }
    }

    #[test]
    fn kubectl_patch_type_merge_examples() {
        let deployment = json!({
            "metadata": {"name": "web", "labels": {"app": "web", "tier": "fe"}},
            "spec": {
                "replicas": 1,
                "template": {"spec": {"containers": [
                    {"name": "web", "image": "nginx:1.0"},
                    {"name": "sidecar", "image": "envoy"}
                ]}}
            }
        });
        let cases = [
            // kubectl patch deploy web --type merge -p '{"spec":{"replicas":3}}'
            (
                json!({"spec": {"replicas": 3}}),
                json!({
                    "metadata": {"name": "web", "labels": {"app": "web", "tier": "fe"}},
                    "spec": {
                        "replicas": 3,
                        "template": {"spec": {"containers": [
                            {"name": "web", "image": "nginx:1.0"},
                            {"name": "sidecar", "image": "envoy"}
                        ]}}
                    }
                }),
            ),
            // removing a label with null
            (
                json!({"metadata": {"labels": {"tier": null}}}),
                json!({
                    "metadata": {"name": "web", "labels": {"app": "web"}},
                    "spec": {
                        "replicas": 1,
                        "template": {"spec": {"containers": [
                            {"name": "web", "image": "nginx:1.0"},
                            {"name": "sidecar", "image": "envoy"}
                        ]}}
                    }
                }),
            ),
            // lists are replaced: the sidecar disappears
            (
                json!({"spec": {"template": {"spec": {"containers": [
                    {"name": "web", "image": "nginx:2.0"}
                ]}}}}),
                json!({
                    "metadata": {"name": "web", "labels": {"app": "web", "tier": "fe"}},
                    "spec": {
                        "replicas": 1,
                        "template": {"spec": {"containers": [
                            {"name": "web", "image": "nginx:2.0"}
                        ]}}
                    }
                }),
            ),
        ];
        for (patch, expected) in cases {
            assert_eq!(json_merge_patch(&deployment, &patch), expected, "{patch}");
            assert_eq!(
                kubernetes_merge_patch(&deployment, &patch),
                expected,
                "{patch}"
            );
        }
    }

    #[test]
    fn kubernetes_flavour_prunes_nulls_inside_arrays() {
        let original = json!({"spec": {"containers": [{"name": "a", "image": "x"}]}});
        let patch = json!({"spec": {"containers": [{"name": "a", "image": null}, null]}});
        assert_eq!(
            json_merge_patch(&original, &patch),
            json!({"spec": {"containers": [{"name": "a", "image": null}, null]}})
        );
        assert_eq!(
            kubernetes_merge_patch(&original, &patch),
            json!({"spec": {"containers": [{"name": "a"}, null]}})
        );
    }
}
