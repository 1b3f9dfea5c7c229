//! The garbage collector (`pkg/controller/garbagecollector`): a dependent
//! whose owners are all gone is deleted, references to owners that are gone
//! are dropped, and an owner being deleted with the `orphan` or
//! `foregroundDeletion` finalizer has its dependents released or deleted
//! before the finalizer is removed.

use serde_json::Value;

use super::{delete_ref, info_for, ns_opt};
use crate::meta::Sub;
use crate::store::{
    FOREGROUND_FINALIZER, Inner, ORPHAN_FINALIZER, ObjRef, finalizers, is_deleting, owner_uids,
    uid_of,
};
use crate::write::{self, Propagation};

/// Rewrites an object's ownerReferences, keeping those `keep` accepts.
fn retain_owner_refs(inner: &mut Inner, r: &ObjRef, keep: impl Fn(&Value) -> bool) {
    let Some(info) = info_for(inner, &r.gr) else {
        return;
    };
    let Some(obj) = inner.get(&r.gr, &r.key()).cloned() else {
        return;
    };
    let mut new = (*obj).clone();
    if let Some(refs) = new
        .get_mut("metadata")
        .and_then(|m| m.get_mut("ownerReferences"))
        .and_then(Value::as_array_mut)
    {
        refs.retain(|o| keep(o));
        if refs.is_empty() {
            new["metadata"]
                .as_object_mut()
                .unwrap()
                .remove("ownerReferences");
        }
    }
    let _ = write::update(inner, &info, ns_opt(r), &r.name, new, Sub::Main, false);
}

/// Deletes a dependent whose owners are all gone, or drops its references to
/// the owners that are gone.
pub(super) fn collect_if_orphaned(inner: &mut Inner, r: &ObjRef) {
    let Some(obj) = inner.get(&r.gr, &r.key()).cloned() else {
        return;
    };
    let owners = owner_uids(&obj);
    if owners.is_empty() {
        return;
    }
    let alive: Vec<&String> = owners
        .iter()
        .filter(|u| inner.lookup_uid(u).is_some())
        .collect();
    if alive.is_empty() {
        if !is_deleting(&obj) {
            delete_ref(inner, r, uid_of(&obj), Propagation::Background);
        }
    } else if alive.len() < owners.len() {
        let alive: Vec<String> = alive.into_iter().cloned().collect();
        retain_owner_refs(inner, r, |o| {
            o.get("uid")
                .and_then(Value::as_str)
                .is_some_and(|u| alive.iter().any(|a| a == u))
        });
    }
}

/// Processes an owner being deleted; `true` when nothing is left to wait for.
pub(super) fn owner_deleting(inner: &mut Inner, r: &ObjRef) -> bool {
    let Some(obj) = inner.get(&r.gr, &r.key()).cloned() else {
        return true;
    };
    if !is_deleting(&obj) {
        return true;
    }
    let Some(uid) = uid_of(&obj).map(str::to_string) else {
        return true;
    };
    let Some(info) = info_for(inner, &r.gr) else {
        return true;
    };
    let fins = finalizers(&obj);
    if fins.contains(&ORPHAN_FINALIZER) {
        for dep in inner.dependents_of(&uid) {
            retain_owner_refs(inner, &dep, |o| {
                o.get("uid").and_then(Value::as_str) != Some(uid.as_str())
            });
        }
        write::remove_finalizer(inner, &info, &r.key(), ORPHAN_FINALIZER);
        return true;
    }
    if fins.contains(&FOREGROUND_FINALIZER) {
        let mut blocking = false;
        for dep in inner.dependents_of(&uid) {
            let Some(d) = inner.get(&dep.gr, &dep.key()).cloned() else {
                continue;
            };
            let blocks = d["metadata"]["ownerReferences"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|o| o["uid"] == uid.as_str() && o["blockOwnerDeletion"] == true);
            if !is_deleting(&d) {
                let has_own = uid_of(&d).is_some_and(|u| !inner.dependents_of(u).is_empty());
                let policy = if has_own {
                    Propagation::Foreground
                } else {
                    Propagation::Background
                };
                delete_ref(inner, &dep, uid_of(&d), policy);
            }
            if blocks && inner.get(&dep.gr, &dep.key()).is_some() {
                blocking = true;
            }
        }
        if blocking {
            return false;
        }
        write::remove_finalizer(inner, &info, &r.key(), FOREGROUND_FINALIZER);
        return true;
    }
    true
}
