//! The dynamic-apply update of an existing child (Metacontroller's
//! `ApplyUpdate` and `revertObjectMetaSystemFields` in
//! `pkg/controller/common/manage_children.go`): the three-way merge against
//! the last-applied annotation, with server-populated fields restored and a
//! no-op check.

use std::collections::HashSet;

use metacontroller_api::gojson;
use serde_json::{Map, Value, json};

use crate::error::DynamicApplyError;
use crate::last_applied::{
    LAST_APPLIED_ANNOTATION, annotations, get_last_applied, remove_last_applied, set_last_applied,
};
use crate::merge::{detect_list_map_key, list_map_item_key, merge};

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::parse;
    use serde_json::json;

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
    fn a_list_repeating_its_merge_key_settles_after_one_apply() {
        // Two containers named "s": merged by name, both would pair with
        // the same observed item and every apply would change the object.
        let observed = json!({
            "apiVersion": "v1", "kind": "Thing", "metadata": {"name": "t"},
            "spec": {"containers": [{"name": "c", "image": "i"}]}
        });
        let desired = json!({
            "apiVersion": "v1", "kind": "Thing", "metadata": {"name": "t"},
            "spec": {"containers": [{"name": "s", "image": "a"}, {"name": "s", "image": "b"}]}
        });
        let once = apply_update(&observed, &desired)
            .expect("ok")
            .expect("changed");
        assert_eq!(once["spec"]["containers"], desired["spec"]["containers"]);
        assert_eq!(apply_update(&once, &desired).expect("ok"), None);
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
}
