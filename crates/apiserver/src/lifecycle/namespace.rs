//! The namespace controller (`pkg/controller/namespace/deletion`): a
//! terminating namespace is emptied, then its `kubernetes` finalizer is
//! removed through `/finalize`.

use serde_json::Value;

use super::{delete_ref, info_for};
use crate::meta::Sub;
use crate::registry::{GroupResource, ResourceInfo};
use crate::store::{Inner, ObjRef, is_deleting, uid_of};
use crate::write::{self, Propagation};

/// Processes a terminating namespace; `true` when its finalizer is removed
/// (or there is nothing to do), `false` while objects remain.
pub(super) fn namespace_deleting(inner: &mut Inner, name: &str) -> bool {
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
    let _ = write::update(inner, &info, None, name, new, Sub::Finalize, false);
    true
}
