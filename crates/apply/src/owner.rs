//! Owner-reference helpers on JSON objects: building the controller
//! reference Metacontroller puts on children, finding an object's
//! controller, adopting and releasing.
//!
//! Behaviour follows Metacontroller's `MakeControllerRef` and
//! `claimOwnership` (`pkg/controller/common/manage_children.go`),
//! `addOwnerReference`/`removeOwnerReference`
//! (`pkg/dynamic/controllerref/controller_ref.go`) and Kubernetes'
//! `metav1.GetControllerOf`.

use serde_json::{Value, json};

fn str_field<'a>(v: &'a Value, path: &[&str]) -> &'a str {
    path.iter()
        .try_fold(v, |cur, key| cur.get(key))
        .and_then(Value::as_str)
        .unwrap_or("")
}

/// The owner reference a parent places on its children:
/// `{apiVersion, kind, name, uid, controller: true, blockOwnerDeletion: true}`
/// taken from the parent's `apiVersion`, `kind`, `metadata.name` and
/// `metadata.uid` (missing fields become empty strings).
pub fn make_controller_ref(parent: &Value) -> Value {
    json!({
        "apiVersion": str_field(parent, &["apiVersion"]),
        "kind": str_field(parent, &["kind"]),
        "name": str_field(parent, &["metadata", "name"]),
        "uid": str_field(parent, &["metadata", "uid"]),
        "controller": true,
        "blockOwnerDeletion": true,
    })
}

/// `metadata.ownerReferences` of an object (empty when absent).
pub fn owner_references(obj: &Value) -> &[Value] {
    obj.get("metadata")
        .and_then(|m| m.get("ownerReferences"))
        .and_then(Value::as_array)
        .map_or(&[], Vec::as_slice)
}

/// The first owner reference with `controller: true`, if any
/// (`metav1.GetControllerOf`).
pub fn controller_ref(obj: &Value) -> Option<&Value> {
    owner_references(obj)
        .iter()
        .find(|r| r.get("controller").and_then(Value::as_bool) == Some(true))
}

/// The `uid` of the object's controller, if it has one.
pub fn controller_uid(obj: &Value) -> Option<&str> {
    controller_ref(obj)?.get("uid")?.as_str()
}

/// The API group (`""` for the core group) and kind an owner reference
/// points at; its version does not matter for ownership.
pub fn ref_group_kind(owner_ref: &Value) -> (&str, &str) {
    let field = |f: &str| owner_ref.get(f).and_then(Value::as_str).unwrap_or("");
    let group = field("apiVersion").rsplit_once('/').map_or("", |(g, _)| g);
    (group, field("kind"))
}

/// Whether the object's controller reference points at `uid`.
pub fn is_controlled_by(obj: &Value, uid: &str) -> bool {
    controller_uid(obj) == Some(uid)
}

fn ref_uid(r: &Value) -> &str {
    r.get("uid").and_then(Value::as_str).unwrap_or("")
}

/// Mutable access to `metadata.ownerReferences`, creating `metadata` and the
/// list when missing (or when they are not an object / list). Returns `None`
/// only when `obj` itself is not an object.
fn owner_references_mut(obj: &mut Value) -> Option<&mut Vec<Value>> {
    let root = obj.as_object_mut()?;
    let meta = root.entry("metadata").or_insert_with(|| json!({}));
    if !meta.is_object() {
        *meta = json!({});
    }
    let refs = meta
        .as_object_mut()?
        .entry("ownerReferences")
        .or_insert_with(|| json!([]));
    if !refs.is_array() {
        *refs = json!([]);
    }
    refs.as_array_mut()
}

/// Ensures `obj` is owned by `parent`: appends [`make_controller_ref`] of the
/// parent unless some owner reference already carries the parent's UID
/// (then nothing changes). Returns whether a reference was added.
pub fn claim_ownership(obj: &mut Value, parent: &Value) -> bool {
    let controller = make_controller_ref(parent);
    if owner_references(obj)
        .iter()
        .any(|r| ref_uid(r) == ref_uid(&controller))
    {
        return false;
    }
    match owner_references_mut(obj) {
        Some(refs) => {
            refs.push(controller);
            true
        }
        None => false,
    }
}

/// Adds `owner_ref` to the object's owner references, replacing an existing
/// reference with the same UID in place (adoption).
pub fn add_owner_reference(obj: &mut Value, owner_ref: Value) {
    let Some(refs) = owner_references_mut(obj) else {
        return;
    };
    let uid = ref_uid(&owner_ref).to_string();
    match refs.iter_mut().find(|r| ref_uid(r) == uid) {
        Some(existing) => *existing = owner_ref,
        None => refs.push(owner_ref),
    }
}

/// Removes every owner reference with the given UID (release). Returns
/// whether anything was removed; an emptied list is kept as `[]`.
pub fn remove_owner_reference(obj: &mut Value, uid: &str) -> bool {
    let Some(refs) = obj
        .get_mut("metadata")
        .and_then(|m| m.get_mut("ownerReferences"))
        .and_then(Value::as_array_mut)
    else {
        return false;
    };
    let before = refs.len();
    refs.retain(|r| ref_uid(r) != uid);
    refs.len() != before
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parent() -> Value {
        json!({
            "apiVersion": "ctl.example.com/v1",
            "kind": "Thing",
            "metadata": {"name": "p", "namespace": "ns", "uid": "p-uid"}
        })
    }

    #[test]
    fn make_controller_ref_table() {
        let cases = [
            (
                parent(),
                json!({"apiVersion": "ctl.example.com/v1", "kind": "Thing", "name": "p",
                    "uid": "p-uid", "controller": true, "blockOwnerDeletion": true}),
            ),
            (
                json!({}),
                json!({"apiVersion": "", "kind": "", "name": "", "uid": "",
                    "controller": true, "blockOwnerDeletion": true}),
            ),
        ];
        for (p, want) in cases {
            assert_eq!(make_controller_ref(&p), want);
        }
    }

    #[test]
    fn controller_ref_table() {
        let cases = [
            (json!({}), None),
            (json!({"metadata": {"ownerReferences": []}}), None),
            (
                json!({"metadata": {"ownerReferences": [{"uid": "a"}, {"uid": "b", "controller": false}]}}),
                None,
            ),
            (
                json!({"metadata": {"ownerReferences": [
                    {"uid": "a"}, {"uid": "b", "controller": true}, {"uid": "c", "controller": true}]}}),
                Some("b"),
            ),
        ];
        for (obj, want) in cases {
            assert_eq!(controller_uid(&obj), want, "{obj}");
            assert_eq!(controller_ref(&obj).is_some(), want.is_some());
            if let Some(uid) = want {
                assert!(is_controlled_by(&obj, uid));
                assert!(!is_controlled_by(&obj, "other"));
            }
        }
    }

    #[test]
    fn claim_ownership_table() {
        // (child, added?, resulting owner UIDs)
        let cases = [
            (json!({"metadata": {"name": "c"}}), true, vec!["p-uid"]),
            (json!({}), true, vec!["p-uid"]),
            (
                json!({"metadata": {"ownerReferences": [{"uid": "other"}]}}),
                true,
                vec!["other", "p-uid"],
            ),
            (
                json!({"metadata": {"ownerReferences": [{"uid": "p-uid", "controller": false}]}}),
                false,
                vec!["p-uid"],
            ),
        ];
        for (mut child, added, uids) in cases {
            assert_eq!(claim_ownership(&mut child, &parent()), added);
            let got: Vec<&str> = owner_references(&child).iter().map(ref_uid).collect();
            assert_eq!(got, uids);
        }
        let mut child = json!({});
        claim_ownership(&mut child, &parent());
        assert_eq!(
            controller_ref(&child),
            Some(&make_controller_ref(&parent()))
        );
        assert!(!claim_ownership(&mut json!("x"), &parent()));
    }

    #[test]
    fn add_and_remove_owner_reference() {
        let mut obj = json!({"metadata": {"ownerReferences": [
            {"uid": "a", "name": "old"}, {"uid": "b"}]}});
        add_owner_reference(
            &mut obj,
            json!({"uid": "a", "name": "new", "controller": true}),
        );
        assert_eq!(
            owner_references(&obj),
            &[
                json!({"uid": "a", "name": "new", "controller": true}),
                json!({"uid": "b"})
            ]
        );
        add_owner_reference(&mut obj, json!({"uid": "c"}));
        assert_eq!(owner_references(&obj).len(), 3);
        assert!(remove_owner_reference(&mut obj, "a"));
        assert!(!remove_owner_reference(&mut obj, "a"));
        assert!(remove_owner_reference(&mut obj, "b"));
        assert!(remove_owner_reference(&mut obj, "c"));
        assert_eq!(obj, json!({"metadata": {"ownerReferences": []}}));
        assert!(!remove_owner_reference(&mut json!({}), "a"));
    }

    #[test]
    fn owner_reference_group_and_kind() {
        let r = |api_version: &str| json!({"apiVersion": api_version, "kind": "K", "uid": "u"});
        assert_eq!(ref_group_kind(&r("apps/v1")), ("apps", "K"));
        assert_eq!(
            ref_group_kind(&r("example.com/v1beta1")),
            ("example.com", "K")
        );
        assert_eq!(ref_group_kind(&r("v1")), ("", "K"));
        assert_eq!(ref_group_kind(&json!({})), ("", ""));
    }
}
