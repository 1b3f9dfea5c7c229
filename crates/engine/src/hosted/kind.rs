//! [`ControllerKind`]: what differs between CompositeControllers and
//! DecoratorControllers, as the generic manager and worker loop see it.
//! Depends on nothing of either kind.

use std::future::Future;
use std::sync::Arc;

use metacontroller_api::HookedController;
use serde::de::DeserializeOwned;

use crate::Context;
use crate::discovery::ResourceInfo;
use crate::hosted::{BuildError, SyncError};
use crate::informer::Informer;
use crate::queue::WorkQueue;

/// One kind of controller object and the controllers hosted for it.
///
/// The manager ([`crate::hosted::Manager`]) watches the objects of
/// [`ControllerKind::resource`] and builds one value of this type per
/// object; the worker loop ([`crate::hosted::Hosted`]) subscribes it to its
/// caches, waits for them, and calls [`ControllerKind::sync`] with the keys
/// of its work queue.
pub(crate) trait ControllerKind: Send + Sync + Sized + 'static {
    /// The controller object (`CompositeController`, `DecoratorController`).
    type Object: kube::Resource<DynamicType = ()>
        + HookedController
        + DeserializeOwned
        + Send
        + Sync
        + 'static;

    /// The kind name used in events, logs and metrics.
    const KIND: &'static str;

    /// The name of the reconciler of the controller objects (its
    /// `controller_runtime_*` series and work queue).
    const RECONCILER: &'static str;

    /// The resource of the controller objects.
    fn resource() -> ResourceInfo;

    /// The event message when a controller object can't be decoded.
    fn decode_error(name: &str, err: &serde_json::Error) -> String;

    /// Checks made before a controller is built. `Ok(false)`: the object is
    /// ignored (and was reported); an error is a `CreateError`, retried.
    fn admit(
        ctx: &Arc<Context>,
        object: &Self::Object,
    ) -> impl Future<Output = Result<bool, BuildError>> + Send {
        let _ = (ctx, object);
        async { Ok(true) }
    }

    /// Builds the controller for `object`: resolves its types and hooks;
    /// its event handlers will feed `queue`. Nothing runs yet.
    fn build(
        ctx: Arc<Context>,
        object: &Self::Object,
        queue: Arc<WorkQueue<String>>,
    ) -> impl Future<Output = Result<Self, BuildError>> + Send;

    /// Whether `object`'s spec is the one this controller was built from.
    fn same_spec(&self, object: &Self::Object) -> bool;

    /// Subscribes the event handlers to the caches; returns the
    /// subscriptions.
    fn subscribe(&self) -> Vec<(Arc<Informer>, u64)>;

    /// Waits until every cache the controller reads has synced.
    fn wait_synced(&self) -> impl Future<Output = ()> + Send;

    /// Queues every object the controller handles (`resyncPeriodSeconds`).
    fn resync(&self);

    /// Syncs the object with queue key `key`.
    fn sync(&self, key: &str) -> impl Future<Output = Result<(), SyncError>> + Send;

    /// Releases what syncs acquired (related caches, cached answers).
    fn stopped(&self);
}
