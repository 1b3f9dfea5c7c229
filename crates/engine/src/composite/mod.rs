//! CompositeControllers: the manager that hosts one controller per
//! CompositeController object, and the hosted controllers themselves.
//!
//! The manager watches CompositeControllers (only those matching
//! `--target-label-selector`) and reconciles them one at a time:
//!
//! * gone (or no longer selected): stop its hosted controller (`Stopped`);
//! * parent CRD without a `status` subresource: a Warning `SyncError` event
//!   on the CompositeController and no retry;
//! * `spec` unchanged: nothing;
//! * otherwise: build a new hosted controller, stop the old one
//!   (`Stopped`), start the new one (`Started`) or report `CreateError` and
//!   retry with back-off.

mod parent;
mod revisions;
mod rolling;
mod sync;

use std::collections::HashMap;
use std::sync::Arc;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::Api;
use kube::core::ApiResource;
use metacontroller_api::CompositeController;
use metacontroller_api::hooks::split_api_version;
use parking_lot::Mutex;
use serde_json::Value;
use tokio_util::sync::CancellationToken;

use crate::Context;
use crate::discovery::ResourceInfo;
use crate::events::{EventType, ObjectReference, reason};
use crate::informer::{EventHandler, InformerHandle};
use crate::object;
use crate::queue::WorkQueue;

pub(crate) use parent::{ParentController, differs_beyond_status};
pub(crate) use sync::SyncError;

/// The `compositecontrollers` resource.
pub(crate) fn resource() -> ResourceInfo {
    ResourceInfo {
        api_resource: ApiResource::erase::<CompositeController>(&()),
        namespaced: false,
        has_status: true,
    }
}

struct Enqueue(Arc<WorkQueue<String>>);

impl EventHandler for Enqueue {
    fn on_add(&self, obj: &Arc<Value>) {
        self.0.add(object::name(obj).to_owned());
    }

    fn on_update(&self, old: &Arc<Value>, new: &Arc<Value>) {
        if Arc::ptr_eq(old, new) {
            // Periodic redelivery: nothing to reconcile for the manager.
            return;
        }
        self.0.add(object::name(new).to_owned());
    }

    fn on_delete(&self, obj: &Arc<Value>) {
        self.0.add(object::name(obj).to_owned());
    }
}

/// Hosts one [`ParentController`] per CompositeController.
pub(crate) struct Manager {
    ctx: Arc<Context>,
    informer: InformerHandle,
    queue: Arc<WorkQueue<String>>,
    controllers: Mutex<HashMap<String, Arc<ParentController>>>,
}

impl Manager {
    pub fn new(ctx: Arc<Context>) -> Arc<Self> {
        let informer = ctx.informers.acquire(&resource());
        Arc::new(Manager {
            ctx,
            informer,
            queue: WorkQueue::new(),
            controllers: Mutex::new(HashMap::new()),
        })
    }

    /// Reconciles CompositeControllers until `cancel` fires, then stops every
    /// hosted controller.
    pub async fn run(self: Arc<Self>, cancel: CancellationToken) {
        let id = self
            .informer
            .subscribe(Arc::new(Enqueue(self.queue.clone())), true);
        let worker = {
            let this = self.clone();
            async move {
                while let Some(name) = this.queue.get().await {
                    match this.reconcile(&name).await {
                        Ok(()) => this.queue.forget(&name),
                        Err(err) => {
                            tracing::warn!(controller = %name, error = %err, "CompositeController reconcile failed");
                            this.queue.add_rate_limited(name.clone());
                        }
                    }
                    this.queue.done(&name);
                }
            }
        };
        tokio::select! {
            _ = cancel.cancelled() => {}
            _ = worker => {}
        }
        self.queue.shutdown();
        self.informer.unsubscribe(id);
        let controllers: Vec<_> = self.controllers.lock().drain().map(|(_, c)| c).collect();
        for controller in controllers {
            controller.stop().await;
            self.stopped_event(&controller.event_ref(), &controller.name);
        }
    }

    fn stopped_event(&self, cc: &ObjectReference, name: &str) {
        self.ctx.recorder.record(
            cc,
            EventType::Normal,
            reason::STOPPED,
            format!("Stopped controller: {name}"),
        );
    }

    async fn stop_hosted(&self, name: &str) {
        let old = self.controllers.lock().remove(name);
        if let Some(old) = old {
            old.stop().await;
            self.stopped_event(&old.event_ref(), name);
        }
    }

    async fn reconcile(&self, name: &str) -> Result<(), String> {
        let Some(obj) = self.informer.get(name) else {
            tracing::info!(controller = %name, "CompositeController has been deleted");
            self.stop_hosted(name).await;
            return Ok(());
        };
        if !self
            .ctx
            .config
            .target_label_selector
            .matches_object_labels(&obj)
        {
            self.stop_hosted(name).await;
            return Ok(());
        }
        let cc: CompositeController = match serde_json::from_value((*obj).clone()) {
            Ok(cc) => cc,
            Err(err) => {
                let message = format!("[{name}] Sync error - {err}");
                self.ctx.recorder.record(
                    &ObjectReference::from_value(&obj),
                    EventType::Normal,
                    reason::SYNC_ERROR,
                    message.clone(),
                );
                return Err(message);
            }
        };
        let cc_ref = ObjectReference::from_resource(&cc);

        // The parent must be a CRD with the status subresource.
        let parent_rule = &cc.spec.parent_resource;
        let (group, version) = split_api_version(&parent_rule.api_version);
        let crd_name = format!("{}.{}", parent_rule.resource, group);
        let crds: Api<CustomResourceDefinition> = Api::all(self.ctx.client.clone());
        let crd = match crds.get(&crd_name).await {
            Ok(crd) => crd,
            Err(e) => {
                // Retried with back-off by the caller; the Event tells the
                // user why nothing happens yet (the controller starts by
                // itself once the CRD exists).
                let message = match &e {
                    kube::Error::Api(status) if status.code == 404 => format!(
                        "parent resource {crd_name} does not exist (no CustomResourceDefinition of that name)"
                    ),
                    kube::Error::Api(status) => format!(
                        "can't get CustomResourceDefinition {crd_name}: {}",
                        status.message
                    ),
                    other => format!("can't get CustomResourceDefinition {crd_name}: {other}"),
                };
                self.ctx.recorder.record(
                    &cc_ref,
                    EventType::Warning,
                    reason::CREATE_ERROR,
                    format!("Cannot create new controller: {message}"),
                );
                return Err(message);
            }
        };
        let has_status = crd.spec.versions.iter().any(|v| {
            v.name == version && v.subresources.as_ref().is_some_and(|s| s.status.is_some())
        });
        if !has_status {
            self.ctx.recorder.record(
                &cc_ref,
                EventType::Warning,
                reason::SYNC_ERROR,
                format!(
                    "[{name}] Sync error - ignoring, CRD [{crd_name}] does not have subresource 'Status' enabled"
                ),
            );
            tracing::info!(controller = %name, crd = %crd_name, "ignoring CompositeController: subresource 'Status' not enabled");
            return Ok(());
        }

        if let Some(current) = self.controllers.lock().get(name)
            && current.cc.spec == cc.spec
        {
            return Ok(());
        }
        let built = ParentController::build(self.ctx.clone(), cc).await;
        self.stop_hosted(name).await;
        match built {
            Ok(controller) => {
                controller.start();
                self.ctx.recorder.record(
                    &cc_ref,
                    EventType::Normal,
                    reason::STARTED,
                    format!("Started controller: {name}"),
                );
                self.controllers.lock().insert(name.to_owned(), controller);
                Ok(())
            }
            Err(err) => {
                self.ctx.recorder.record(
                    &cc_ref,
                    EventType::Warning,
                    reason::CREATE_ERROR,
                    format!("Cannot create new controller: {err}"),
                );
                Err(err)
            }
        }
    }
}
