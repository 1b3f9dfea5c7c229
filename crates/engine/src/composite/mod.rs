//! CompositeControllers: the [`ControllerKind`] that hosts one
//! [`ParentController`] per CompositeController.
//!
//! What differs from the shared machinery of [`crate::hosted`]:
//!
//! * before a controller is built, its parent type must be a CRD with the
//!   `status` subresource: a missing CRD is a `CreateError` (retried; the
//!   controller starts by itself once the CRD exists), a CRD without
//!   `status` a Warning `SyncError` event on the CompositeController and
//!   no retry;
//! * the caches: the parent type, and each child type keeping only what the
//!   controller can claim ([`filter`] decides which parent an event
//!   concerns);
//! * the sync ([`sync`]), with rolling updates through ControllerRevisions
//!   ([`rolling`], [`rollout`], [`revisions`]).

mod controller;
pub(crate) mod filter;
pub(crate) mod hook;
pub(crate) mod prepare;
pub(crate) mod revisions;
mod rolling;
pub(crate) mod rollout;
pub(crate) mod rollstep;
mod sync;

use std::sync::Arc;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::Api;
use kube::core::ApiResource;
use metacontroller_api::CompositeController;
use metacontroller_api::hook_wire::split_api_version;

use crate::Context;
use crate::discovery::ResourceInfo;
use crate::events::{EventType, ObjectReference, reason};
use crate::hosted::{BuildError, ControllerKind, SyncError};
use crate::informer::{EventHandler, Informer};
use crate::queue::WorkQueue;

pub(crate) use controller::ParentController;
use filter::{ChildEvents, ParentEvents};

impl ControllerKind for ParentController {
    type Object = CompositeController;

    const KIND: &'static str = controller::CONTROLLER_TYPE;

    const RECONCILER: &'static str = "composite-metacontroller";

    fn resource() -> ResourceInfo {
        ResourceInfo {
            api_resource: ApiResource::erase::<CompositeController>(&()),
            namespaced: false,
            has_status: true,
        }
    }

    fn decode_error(name: &str, err: &serde_json::Error) -> String {
        format!("[{name}] Sync error - {err}")
    }

    /// The parent must be a CRD with the status subresource.
    async fn admit(ctx: &Arc<Context>, cc: &CompositeController) -> Result<bool, BuildError> {
        let name = cc.metadata.name.as_deref().unwrap_or_default();
        let parent_rule = &cc.spec.parent_resource;
        let (group, version) = split_api_version(&parent_rule.api_version);
        let crd_name = format!("{}.{}", parent_rule.resource, group);
        let crds: Api<CustomResourceDefinition> = Api::all(ctx.client.clone());
        let crd = match crds.get(&crd_name).await {
            Ok(crd) => crd,
            Err(kube::Error::Api(status)) if status.code == 404 => {
                return Err(BuildError::NoParentCrd { crd: crd_name });
            }
            Err(source) => {
                return Err(BuildError::ParentCrd {
                    crd: crd_name,
                    source,
                });
            }
        };
        let has_status = crd.spec.versions.iter().any(|v| {
            v.name == version && v.subresources.as_ref().is_some_and(|s| s.status.is_some())
        });
        if !has_status {
            ctx.recorder.record(
                &ObjectReference::from_resource(cc),
                EventType::Warning,
                reason::SYNC_ERROR,
                format!(
                    "[{name}] Sync error - ignoring, CRD [{crd_name}] does not have subresource 'Status' enabled"
                ),
            );
            tracing::info!(controller = %name, crd = %crd_name, "ignoring CompositeController: subresource 'Status' not enabled");
        }
        Ok(has_status)
    }

    async fn build(
        ctx: Arc<Context>,
        cc: &CompositeController,
        queue: Arc<WorkQueue<String>>,
    ) -> Result<Self, BuildError> {
        ParentController::build(ctx, cc, queue).await
    }

    fn same_spec(&self, cc: &CompositeController) -> bool {
        self.cc.spec == cc.spec
    }

    fn subscribe(&self) -> Vec<(Arc<Informer>, u64)> {
        let mut subs = Vec::new();
        let parent_events: Arc<dyn EventHandler> = Arc::new(ParentEvents(self.filter.clone()));
        let id = self.parent_informer.subscribe(parent_events, true);
        subs.push((self.parent_informer.informer().clone(), id));
        for child in &self.children {
            let events: Arc<dyn EventHandler> = Arc::new(ChildEvents(self.filter.clone()));
            let id = child.informer.subscribe(events, false);
            subs.push((child.informer.informer().clone(), id));
        }
        subs
    }

    async fn wait_synced(&self) {
        for informer in self.informers() {
            informer.wait_synced().await;
        }
    }

    fn resync(&self) {
        for parent in self.parent_informer.list() {
            self.filter.enqueue(&parent);
        }
    }

    async fn sync(&self, key: &str) -> Result<(), SyncError> {
        ParentController::sync(self, key).await
    }

    fn stopped(&self) {
        self.customize.stop();
    }
}
