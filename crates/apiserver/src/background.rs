//! The controllers a real control plane runs next to the API server, reduced
//! to what API semantics depend on:
//! - the garbage collector (`pkg/controller/garbagecollector`): dependents
//!   whose owners are all gone are deleted; `orphan` and `foregroundDeletion`
//!   finalizers are processed; dangling owner references are removed;
//! - the namespace controller: a terminating namespace is emptied, then its
//!   `kubernetes` finalizer is removed;
//! - the CRD finalizer controller: a terminating CRD's objects are deleted,
//!   then `customresourcecleanup.apiextensions.k8s.io` is removed.
//!
//! Work arrives from committed writes (see `store::Background`); items that
//! cannot finish yet (waiting for finalizers elsewhere) are retried.

use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use tokio::sync::mpsc;

use crate::Shared;
use crate::crd::{CLEANUP_FINALIZER, crd_gr};
use crate::objects::{self, DeleteOptions, Propagation, Sub};
use crate::registry::{GroupResource, ResourceInfo};
use crate::store::{
    Background, FOREGROUND_FINALIZER, Inner, ORPHAN_FINALIZER, ObjRef, finalizers, is_deleting,
    owner_uids, uid_of,
};

/// Runs until the channel closes.
pub async fn run(shared: Arc<Shared>, mut rx: mpsc::UnboundedReceiver<Background>) {
    let mut pending: Vec<Background> = Vec::new();
    loop {
        if pending.is_empty() {
            match rx.recv().await {
                Some(w) => pending.push(w),
                None => return,
            }
        } else {
            tokio::select! {
                w = rx.recv() => match w {
                    Some(w) => pending.push(w),
                    None => return,
                },
                _ = tokio::time::sleep(Duration::from_millis(50)) => {}
            }
        }
        while let Ok(w) = rx.try_recv() {
            if !pending.contains(&w) {
                pending.push(w);
            }
        }
        let mut inner = shared.inner.lock();
        // Processing may queue more work (through the store); it is picked
        // up on the next turn.
        let mut still = Vec::new();
        for w in pending.drain(..) {
            if !process(&mut inner, &w) {
                still.push(w);
            }
        }
        pending = still;
    }
}

fn info_for(inner: &Inner, gr: &GroupResource) -> Option<ResourceInfo> {
    inner.resources.storage(gr).cloned()
}

fn ns_opt(r: &ObjRef) -> Option<&str> {
    (!r.namespace.is_empty()).then_some(r.namespace.as_str())
}

fn delete_ref(inner: &mut Inner, r: &ObjRef, uid: Option<&str>, policy: Propagation) {
    let Some(info) = info_for(inner, &r.gr) else {
        return;
    };
    let opts = DeleteOptions {
        propagation: Some(policy),
        uid: uid.map(str::to_string),
        resource_version: None,
        orphan_dependents: None,
    };
    let _ = objects::delete(inner, &info, ns_opt(r), &r.name, &opts, false);
}

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
    let _ = objects::update(inner, &info, ns_opt(r), &r.name, new, Sub::Main, false);
}

/// Deletes a dependent whose owners are all gone, or drops its references to
/// the owners that are gone.
fn collect_if_orphaned(inner: &mut Inner, r: &ObjRef) {
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

/// Processes one work item; `true` when it is finished.
fn process(inner: &mut Inner, work: &Background) -> bool {
    match work {
        Background::OwnerRemoved(uid) => {
            for dep in inner.dependents_of(uid) {
                collect_if_orphaned(inner, &dep);
            }
            true
        }
        Background::CheckOwners(r) => {
            collect_if_orphaned(inner, r);
            true
        }
        Background::OwnerDeleting(r) => owner_deleting(inner, r),
        Background::NamespaceDeleting(name) => namespace_deleting(inner, name),
        Background::CrdDeleting(name) => crd_deleting(inner, name),
    }
}

fn owner_deleting(inner: &mut Inner, r: &ObjRef) -> bool {
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
        objects::remove_finalizer(inner, &info, &r.key(), ORPHAN_FINALIZER);
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
        objects::remove_finalizer(inner, &info, &r.key(), FOREGROUND_FINALIZER);
        return true;
    }
    true
}

fn namespace_deleting(inner: &mut Inner, name: &str) -> bool {
    let ns_gr = GroupResource::new("", "namespaces");
    let key = (String::new(), name.to_string());
    let Some(ns) = inner.get(&ns_gr, &key).cloned() else {
        return true;
    };
    if !is_deleting(&ns) {
        return true;
    }
    let mut remaining = false;
    let namespaced: Vec<ResourceInfo> = inner
        .resources
        .list
        .iter()
        .filter(|r| r.namespaced && r.version == r.storage_version)
        .cloned()
        .collect();
    for info in namespaced {
        let gr = info.group_resource();
        for obj in inner.objects_in(&gr, Some(name)) {
            remaining = true;
            if !is_deleting(&obj) {
                let n = obj["metadata"]["name"].as_str().unwrap_or("").to_string();
                let r = ObjRef {
                    gr: gr.clone(),
                    namespace: name.to_string(),
                    name: n,
                };
                delete_ref(inner, &r, uid_of(&obj), Propagation::Background);
            }
        }
    }
    if remaining {
        return false;
    }
    let Some(info) = info_for(inner, &ns_gr) else {
        return true;
    };
    let mut new = (*ns).clone();
    if let Some(f) = new
        .get_mut("spec")
        .and_then(|s| s.get_mut("finalizers"))
        .and_then(Value::as_array_mut)
    {
        f.retain(|x| x != "kubernetes");
    }
    let _ = objects::update(inner, &info, None, name, new, Sub::Finalize, false);
    true
}

fn crd_deleting(inner: &mut Inner, name: &str) -> bool {
    let key = (String::new(), name.to_string());
    let Some(crd) = inner.get(&crd_gr(), &key).cloned() else {
        return true;
    };
    if !is_deleting(&crd) {
        return true;
    }
    let group = crd["spec"]["group"].as_str().unwrap_or("");
    let plural = crd["spec"]["names"]["plural"].as_str().unwrap_or("");
    let gr = GroupResource::new(group, plural);
    let objs = inner.objects_in(&gr, None);
    if !objs.is_empty() {
        for obj in objs {
            if !is_deleting(&obj) {
                let r = ObjRef {
                    gr: gr.clone(),
                    namespace: obj["metadata"]["namespace"]
                        .as_str()
                        .unwrap_or("")
                        .to_string(),
                    name: obj["metadata"]["name"].as_str().unwrap_or("").to_string(),
                };
                delete_ref(inner, &r, uid_of(&obj), Propagation::Background);
            }
        }
        return false;
    }
    if let Some(info) = info_for(inner, &crd_gr()) {
        objects::remove_finalizer(inner, &info, &key, CLEANUP_FINALIZER);
    }
    true
}
