//! The finalizer a hosted controller puts on its parents (or targets) while
//! it has a `finalize` hook.
//!
//! * added while a `finalize` hook exists and the object is not being
//!   deleted, removed when there is none; each only when the object's list
//!   needs it, so a sync that changes nothing writes nothing;
//! * while the object is being deleted, its children are still managed only
//!   when it carries our finalizer and no garbage-collector finalizer
//!   (`foregroundDeletion`, `orphan`: the garbage collector owns the children
//!   then).
//!
//! Knows nothing of controller kinds.

use std::sync::Arc;

use kube::Api;
use serde_json::Value;

use crate::dynapi::{self, RequestError};
use crate::hosted::SyncError;
use crate::object::{self, RawObject};

/// The GC finalizers: while one is present the garbage collector owns the
/// children.
const GC_FINALIZERS: [&str; 2] = ["foregroundDeletion", "orphan"];

/// A hosted controller's finalizer.
pub(crate) struct Finalizer {
    /// `metacontroller.io/<kind>-<name>`.
    pub name: String,
    /// Whether there is a `finalize` hook.
    pub enabled: bool,
}

impl Finalizer {
    /// Whether `obj` carries this finalizer.
    pub fn is_on(&self, obj: &Value) -> bool {
        object::has_finalizer(obj, &self.name)
    }

    /// Whether children are still managed while `obj` is being deleted.
    pub fn manages_while_deleting(&self, obj: &Value) -> bool {
        self.enabled
            && self.is_on(obj)
            && !object::finalizers(obj).any(|f| GC_FINALIZERS.contains(&f))
    }

    /// Adds or removes the finalizer as the presence of a finalize hook
    /// requires. `None` when the object is gone.
    pub async fn sync(
        &self,
        api: &Api<RawObject>,
        obj: Arc<Value>,
    ) -> Result<Option<Arc<Value>>, SyncError> {
        if self.is_on(&obj) == self.enabled || (self.enabled && object::is_deleting(&obj)) {
            return Ok(Some(obj));
        }
        self.update(api, &obj, self.enabled)
            .await
            .map_err(|source| SyncError::Request {
                what: format!("can't sync finalizer for {}", object::describe(&obj)),
                source,
            })
    }

    /// Adds (`add`) or removes the finalizer. `None` when the object is
    /// gone.
    pub async fn update(
        &self,
        api: &Api<RawObject>,
        obj: &Value,
        add: bool,
    ) -> Result<Option<Arc<Value>>, RequestError> {
        let result = dynapi::atomic_update(api, obj, false, |obj| {
            if add {
                // No new finalizers on an object that is being deleted.
                !object::is_deleting(obj) && object::add_finalizer(obj, &self.name)
            } else {
                object::remove_finalizer(obj, &self.name)
            }
        })
        .await;
        match result {
            Ok(updated) => Ok(Some(Arc::new(updated))),
            Err(err) if err.is_not_found() => Ok(None),
            Err(err) => Err(err),
        }
    }
}
