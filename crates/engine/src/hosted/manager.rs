//! [`Manager`]: hosts one controller per controller object of a kind.
//!
//! The manager watches the controller objects (only those matching
//! `--target-label-selector`) and reconciles them one at a time:
//!
//! * gone (or no longer selected): stop its hosted controller (`Stopped`);
//! * not admitted by the kind ([`ControllerKind::admit`]): reported by the
//!   kind, or a `CreateError` retried with back-off;
//! * `spec` unchanged: nothing;
//! * otherwise: build a new hosted controller, stop the old one
//!   (`Stopped`), start the new one (`Started`) or report `CreateError` and
//!   retry with back-off.
//!
//! Knows nothing of a particular controller kind.

use std::collections::HashMap;
use std::sync::Arc;

use parking_lot::Mutex;
use serde_json::Value;
use tokio_util::sync::CancellationToken;

use crate::Context;
use crate::events::{EventType, ObjectReference, reason};
use crate::hosted::{BuildError, ControllerKind, Hosted};
use crate::informer::{EventHandler, InformerHandle};
use crate::metrics::{ControllerMetrics, ReconcileResult};
use crate::object;
use crate::queue::WorkQueue;

/// Why a controller object could not be reconciled (retried with
/// back-off).
#[derive(Debug, thiserror::Error)]
pub(crate) enum ManagerError {
    /// The object does not decode.
    #[error("{message}")]
    Decode {
        /// The message of the event reporting it.
        message: String,
        /// The decoding error.
        #[source]
        source: serde_json::Error,
    },
    /// The controller could not be built.
    #[error(transparent)]
    Build(#[from] BuildError),
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

/// Hosts one [`Hosted`] controller per controller object of kind `K`.
pub(crate) struct Manager<K: ControllerKind> {
    ctx: Arc<Context>,
    informer: InformerHandle,
    queue: Arc<WorkQueue<String>>,
    metrics: Option<ControllerMetrics>,
    controllers: Mutex<HashMap<String, Arc<Hosted<K>>>>,
}

impl<K: ControllerKind> Manager<K> {
    /// A manager watching the controller objects of `K`.
    pub fn new(ctx: Arc<Context>) -> Arc<Self> {
        let informer = ctx.informers.acquire(&K::resource());
        // One worker, like controller-runtime's default
        // MaxConcurrentReconciles.
        let (queue, metrics) = match &ctx.metrics {
            Some(metrics) => (
                WorkQueue::with_metrics(metrics.workqueue.queue(K::RECONCILER)),
                Some(metrics.reconcile.controller(K::RECONCILER, 1)),
            ),
            None => (WorkQueue::new(), None),
        };
        Arc::new(Manager {
            ctx,
            informer,
            queue,
            metrics,
            controllers: Mutex::new(HashMap::new()),
        })
    }

    /// Reconciles controller objects until `cancel` fires, then stops every
    /// hosted controller.
    pub async fn run(self: Arc<Self>, cancel: CancellationToken) {
        let id = self
            .informer
            .subscribe(Arc::new(Enqueue(self.queue.clone())), true);
        let worker = {
            let this = self.clone();
            async move {
                while let Some(name) = this.queue.get().await {
                    let active = this.metrics.as_ref().map(ControllerMetrics::active);
                    let started = std::time::Instant::now();
                    let result = match this.reconcile(&name).await {
                        Ok(()) => {
                            this.queue.forget(&name);
                            ReconcileResult::Success
                        }
                        Err(err) => {
                            tracing::warn!(controller = %name, error = %err, "{} reconcile failed", K::KIND);
                            this.queue.add_rate_limited(name.clone());
                            ReconcileResult::Error
                        }
                    };
                    if let Some(metrics) = &this.metrics {
                        metrics.observe(started.elapsed(), result);
                    }
                    drop(active);
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

    fn stopped_event(&self, controller: &ObjectReference, name: &str) {
        self.ctx.recorder.record(
            controller,
            EventType::Normal,
            reason::STOPPED,
            format!("Stopped controller: {name}"),
        );
    }

    fn create_error(&self, controller: &ObjectReference, err: &BuildError) {
        self.ctx.recorder.record(
            controller,
            EventType::Warning,
            reason::CREATE_ERROR,
            format!("Cannot create new controller: {err}"),
        );
    }

    async fn stop_hosted(&self, name: &str) {
        let old = self.controllers.lock().remove(name);
        if let Some(old) = old {
            old.stop().await;
            self.stopped_event(&old.event_ref(), name);
        }
    }

    async fn reconcile(&self, name: &str) -> Result<(), ManagerError> {
        let Some(obj) = self.informer.get(name) else {
            tracing::info!(controller = %name, "{} has been deleted", K::KIND);
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
        let controller: K::Object = match serde_json::from_value((*obj).clone()) {
            Ok(controller) => controller,
            Err(source) => {
                let message = K::decode_error(name, &source);
                self.ctx.recorder.record(
                    &ObjectReference::from_value(&obj),
                    EventType::Normal,
                    reason::SYNC_ERROR,
                    message.clone(),
                );
                return Err(ManagerError::Decode { message, source });
            }
        };
        let controller_ref = ObjectReference::from_resource(&controller);
        match K::admit(&self.ctx, &controller).await {
            Ok(true) => {}
            Ok(false) => return Ok(()),
            Err(err) => {
                // Retried with back-off; the Event tells the user why nothing
                // happens yet.
                self.create_error(&controller_ref, &err);
                return Err(err.into());
            }
        }
        if let Some(current) = self.controllers.lock().get(name)
            && current.same_spec(&controller)
        {
            return Ok(());
        }
        let built = Hosted::<K>::build(self.ctx.clone(), controller).await;
        self.stop_hosted(name).await;
        match built {
            Ok(controller) => {
                controller.start();
                self.ctx.recorder.record(
                    &controller_ref,
                    EventType::Normal,
                    reason::STARTED,
                    format!("Started controller: {name}"),
                );
                self.controllers.lock().insert(name.to_owned(), controller);
                Ok(())
            }
            Err(err) => {
                self.create_error(&controller_ref, &err);
                Err(err.into())
            }
        }
    }
}
