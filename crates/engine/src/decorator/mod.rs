//! DecoratorControllers: the [`ControllerKind`] that hosts one
//! [`Decorator`] per DecoratorController.
//!
//! Unlike CompositeControllers, targets may be of any type, built-in or
//! custom, namespaced or cluster-scoped, with or without a `status`
//! subresource, and there is no check before a controller is built. What
//! differs from the shared machinery of [`crate::hosted`]:
//!
//! * the caches: every target type (one queue over all of them, see
//!   [`filter`]) and every attachment type;
//! * the sync ([`sync`]): labels, annotations and status of the target, and
//!   attachments managed like children but never adopted.

pub(crate) mod controller;
mod filter;
pub(crate) mod sync;

use std::sync::Arc;

use kube::core::ApiResource;
use metacontroller_api::DecoratorController;

use crate::Context;
use crate::discovery::ResourceInfo;
use crate::hosted::{BuildError, ControllerKind, SyncError};
use crate::informer::{EventHandler, Informer};
use crate::queue::WorkQueue;

pub(crate) use controller::Decorator;
use filter::{AttachmentEvents, TargetEvents};

impl ControllerKind for Decorator {
    type Object = DecoratorController;

    const KIND: &'static str = controller::CONTROLLER_TYPE;

    const RECONCILER: &'static str = "decorator-metacontroller";

    fn resource() -> ResourceInfo {
        ResourceInfo {
            api_resource: ApiResource::erase::<DecoratorController>(&()),
            namespaced: false,
            has_status: true,
        }
    }

    fn decode_error(name: &str, err: &serde_json::Error) -> String {
        format!("[{name}] sync error - {err}")
    }

    async fn build(
        ctx: Arc<Context>,
        dc: &DecoratorController,
        queue: Arc<WorkQueue<String>>,
    ) -> Result<Self, BuildError> {
        Decorator::build(ctx, dc, queue).await
    }

    fn same_spec(&self, dc: &DecoratorController) -> bool {
        self.dc.spec == dc.spec
    }

    fn subscribe(&self) -> Vec<(Arc<Informer>, u64)> {
        let mut subs = Vec::new();
        for (index, target_type) in self.filter.targets.iter().enumerate() {
            let events: Arc<dyn EventHandler> = Arc::new(TargetEvents {
                filter: self.filter.clone(),
                index,
            });
            let id = target_type.informer.subscribe(events, true);
            subs.push((target_type.informer.clone(), id));
        }
        for attachment in &self.attachments {
            let events: Arc<dyn EventHandler> = Arc::new(AttachmentEvents(self.filter.clone()));
            let id = attachment.informer.subscribe(events, false);
            subs.push((attachment.informer.informer().clone(), id));
        }
        subs
    }

    async fn wait_synced(&self) {
        for informer in &self.target_informers {
            informer.wait_synced().await;
        }
        for attachment in &self.attachments {
            attachment.informer.wait_synced().await;
        }
    }

    fn resync(&self) {
        for target_type in &self.filter.targets {
            for obj in target_type.informer.list() {
                self.filter.enqueue(target_type, &obj);
            }
        }
    }

    async fn sync(&self, key: &str) -> Result<(), SyncError> {
        Decorator::sync(self, key).await
    }

    fn stopped(&self) {
        self.customize.stop();
    }
}
