//! The CRD finalizer controller
//! (`apiextensions-apiserver/pkg/controller/finalizer`): a terminating CRD's
//! objects are deleted, then `customresourcecleanup.apiextensions.k8s.io` is
//! removed so that the CRD itself goes.

use super::{delete_ref, info_for};
use crate::crd::{CLEANUP_FINALIZER, crd_gr};
use crate::registry::GroupResource;
use crate::store::{Inner, ObjRef, is_deleting, uid_of};
use crate::write::{self, Propagation};

/// Processes a terminating CRD; `true` when its finalizer is removed (or
/// there is nothing to do), `false` while its objects remain.
pub(super) fn crd_deleting(inner: &mut Inner, name: &str) -> bool {
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
        write::remove_finalizer(inner, &info, &key, CLEANUP_FINALIZER);
    }
    true
}
