//! The controllers a real control plane runs next to the API server, reduced
//! to what API semantics depend on:
//! - the garbage collector ([`gc`]): dependents whose owners are all gone
//!   are deleted; `orphan` and `foregroundDeletion` finalizers are
//!   processed; dangling owner references are removed;
//! - the namespace controller ([`namespace`]): a terminating namespace is
//!   emptied, then its `kubernetes` finalizer is removed;
//! - the CRD finalizer controller ([`crd_cleanup`]): a terminating CRD's
//!   objects are deleted, then `customresourcecleanup.apiextensions.k8s.io`
//!   is removed.
//!
//! Work arrives from committed writes (see [`LifecycleWork`]); items that
//! cannot finish yet (waiting for finalizers elsewhere) are retried.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;

use crate::registry::{GroupResource, ResourceInfo};
use crate::state::Shared;
use crate::store::{Inner, LifecycleWork, ObjRef};
use crate::write::{self, DeleteOptions, Propagation};

mod crd_cleanup;
mod gc;
mod namespace;

/// Runs until the channel closes.
pub async fn run(shared: Arc<Shared>, mut rx: mpsc::UnboundedReceiver<LifecycleWork>) {
    let mut pending: Vec<LifecycleWork> = Vec::new();
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

pub(crate) fn info_for(inner: &Inner, gr: &GroupResource) -> Option<ResourceInfo> {
    inner.resources.storage(gr).cloned()
}

pub(crate) fn ns_opt(r: &ObjRef) -> Option<&str> {
    (!r.namespace.is_empty()).then_some(r.namespace.as_str())
}

pub(crate) fn delete_ref(inner: &mut Inner, r: &ObjRef, uid: Option<&str>, policy: Propagation) {
    let Some(info) = info_for(inner, &r.gr) else {
        return;
    };
    let opts = DeleteOptions {
        propagation: Some(policy),
        uid: uid.map(str::to_string),
        resource_version: None,
        orphan_dependents: None,
    };
    let _ = write::delete(inner, &info, ns_opt(r), &r.name, &opts, false);
}

/// Processes one work item; `true` when it is finished.
fn process(inner: &mut Inner, work: &LifecycleWork) -> bool {
    match work {
        LifecycleWork::OwnerRemoved(uid) => {
            for dep in inner.dependents_of(uid) {
                gc::collect_if_orphaned(inner, &dep);
            }
            true
        }
        LifecycleWork::CheckOwners(r) => {
            gc::collect_if_orphaned(inner, r);
            true
        }
        LifecycleWork::OwnerDeleting(r) => gc::owner_deleting(inner, r),
        LifecycleWork::NamespaceDeleting(name) => namespace::namespace_deleting(inner, name),
        LifecycleWork::CrdDeleting(name) => crd_cleanup::crd_deleting(inner, name),
    }
}
