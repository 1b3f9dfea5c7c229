//! Restoring a loaded data directory into a fresh store.

use tokio::sync::mpsc;

use crate::registry::GroupResource;
use crate::store::{
    FOREGROUND_FINALIZER, Inner, LifecycleWork, ORPHAN_FINALIZER, ObjRef, finalizers, is_deleting,
    owner_uids,
};

use super::format::*;

/// Puts loaded state into a fresh store: objects, the resourceVersion
/// counter, the resources CRDs define; history is compacted so that watches
/// from before the restart get 410 Gone, and background work that was
/// pending for the loaded objects (terminating namespaces and CRDs,
/// deletions waiting on dependents, dangling owner references) is queued
/// again.
pub fn restore(
    inner: &mut Inner,
    loaded: Loaded,
    background: &mpsc::UnboundedSender<LifecycleWork>,
) {
    let restored: std::collections::BTreeSet<GroupResource> =
        loaded.objects.iter().map(|(gr, _, _)| gr.clone()).collect();
    for (gr, key, obj) in loaded.objects {
        inner.restore(&gr, key, obj);
    }
    inner.set_rv(loaded.rv);
    crate::crd::rebuild_resources(inner);
    for gr in restored {
        if inner.resources.storage(&gr).is_none() {
            tracing::warn!("dropping stored objects of {gr}: no resource serves them any more");
            inner.drop_table(&gr);
        }
    }
    let rv = inner.current_rv();
    inner.compact(rv);

    let mut work = Vec::new();
    for gr in inner.table_names() {
        for obj in inner.objects_in(&gr, None) {
            let meta = &obj["metadata"];
            let name = meta["name"].as_str().unwrap_or_default().to_string();
            let me = || ObjRef {
                gr: gr.clone(),
                namespace: meta["namespace"].as_str().unwrap_or_default().to_string(),
                name: name.clone(),
            };
            if is_deleting(&obj) {
                let f = finalizers(&obj);
                if f.contains(&ORPHAN_FINALIZER) || f.contains(&FOREGROUND_FINALIZER) {
                    work.push(LifecycleWork::OwnerDeleting(me()));
                }
                if gr.group.is_empty() && gr.resource == "namespaces" {
                    work.push(LifecycleWork::NamespaceDeleting(name.clone()));
                }
                if gr == crate::crd::crd_gr() {
                    work.push(LifecycleWork::CrdDeleting(name.clone()));
                }
            }
            if owner_uids(&obj)
                .iter()
                .any(|u| inner.lookup_uid(u).is_none())
            {
                work.push(LifecycleWork::CheckOwners(me()));
            }
        }
    }
    for w in work {
        let _ = background.send(w);
    }
}
