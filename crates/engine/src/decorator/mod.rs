//! DecoratorControllers: the manager that hosts one controller per
//! DecoratorController object, and the hosted controllers themselves.
//!
//! The manager watches DecoratorControllers (only those matching
//! `--target-label-selector`) and reconciles them one at a time:
//!
//! * gone (or no longer selected): stop its hosted controller (`Stopped`);
//! * `spec` unchanged: nothing;
//! * otherwise: build a new hosted controller, stop the old one
//!   (`Stopped`), start the new one (`Started`) or report `CreateError` and
//!   retry with back-off.
//!
//! Unlike CompositeControllers, targets may be of any type, built-in or
//! custom, namespaced or cluster-scoped, with or without a `status`
//! subresource. A hosted controller shares the watch caches, work queue,
//! child management, hook clients, events and `customize` support of the
//! engine; see [`controller`] and [`sync`] for what it does.

mod controller;
mod sync;

use std::collections::HashMap;
use std::sync::Arc;

use kube::core::ApiResource;
use metacontroller_api::DecoratorController;
use parking_lot::Mutex;
use serde_json::Value;
use tokio_util::sync::CancellationToken;

use crate::Context;
use crate::discovery::ResourceInfo;
use crate::events::{EventType, ObjectReference, reason};
use crate::informer::{EventHandler, InformerHandle};
use crate::object;
use crate::queue::WorkQueue;

use controller::Decorator;

/// The `decoratorcontrollers` resource.
pub(crate) fn resource() -> ResourceInfo {
    ResourceInfo {
        api_resource: ApiResource::erase::<DecoratorController>(&()),
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

/// Hosts one [`Decorator`] per DecoratorController.
pub(crate) struct Manager {
    ctx: Arc<Context>,
    informer: InformerHandle,
    queue: Arc<WorkQueue<String>>,
    controllers: Mutex<HashMap<String, Arc<Decorator>>>,
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

    /// Reconciles DecoratorControllers until `cancel` fires, then stops every
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
                            tracing::warn!(controller = %name, error = %err, "DecoratorController reconcile failed");
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

    fn stopped_event(&self, dc: &ObjectReference, name: &str) {
        self.ctx.recorder.record(
            dc,
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
            tracing::info!(controller = %name, "DecoratorController has been deleted");
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
        let dc: DecoratorController = match serde_json::from_value((*obj).clone()) {
            Ok(dc) => dc,
            Err(err) => {
                let message = format!("[{name}] sync error - {err}");
                self.ctx.recorder.record(
                    &ObjectReference::from_value(&obj),
                    EventType::Normal,
                    reason::SYNC_ERROR,
                    message.clone(),
                );
                return Err(message);
            }
        };
        let dc_ref = ObjectReference::from_resource(&dc);
        if let Some(current) = self.controllers.lock().get(name)
            && current.dc.spec == dc.spec
        {
            return Ok(());
        }
        let built = Decorator::build(self.ctx.clone(), dc).await;
        self.stop_hosted(name).await;
        match built {
            Ok(controller) => {
                controller.start();
                self.ctx.recorder.record(
                    &dc_ref,
                    EventType::Normal,
                    reason::STARTED,
                    format!("Started controller: {name}"),
                );
                self.controllers.lock().insert(name.to_owned(), controller);
                Ok(())
            }
            Err(err) => {
                self.ctx.recorder.record(
                    &dc_ref,
                    EventType::Warning,
                    reason::CREATE_ERROR,
                    format!("Cannot create new controller: {err}"),
                );
                Err(err)
            }
        }
    }
}
