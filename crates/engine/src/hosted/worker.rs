//! [`Hosted`]: one hosted controller at run time, whatever its kind: the
//! work queue, the subscriptions, the workers and the periodic resync.
//!
//! `start` subscribes the controller's event handlers and spawns its run:
//! a `Starting` event, a wait for every cache it reads, then
//! `--workers` workers (and a resync ticker with `resyncPeriodSeconds`)
//! until `stop`, which ends with a `Stopping` event. A worker takes a key,
//! syncs it and, on failure, re-queues it: after the hook's `Retry-After`
//! on a 429, otherwise with per-key back-off.
//! Knows nothing of a particular controller kind.

use std::sync::Arc;
use std::time::Duration;

use kube::Resource;
use metacontroller_api::HookedController;
use parking_lot::Mutex;
use tokio::task::{JoinHandle, JoinSet};
use tokio_util::sync::CancellationToken;

use crate::Context;
use crate::events::{EventType, ObjectReference, reason};
use crate::hosted::{BuildError, ControllerKind, SyncError};
use crate::informer::Informer;
use crate::journal::{self, ControllerState};
use crate::queue::WorkQueue;

/// Longest `resyncAfterSeconds` honoured (one year).
const MAX_RESYNC_AFTER: Duration = Duration::from_secs(365 * 24 * 3600);

/// The delay of a hook's `resyncAfterSeconds`; `None` when it asks for
/// none.
pub(crate) fn resync_after(seconds: f64) -> Option<Duration> {
    (seconds > 0.0).then(|| {
        Duration::try_from_secs_f64(seconds)
            .unwrap_or(MAX_RESYNC_AFTER)
            .min(MAX_RESYNC_AFTER)
    })
}

/// A hosted controller of kind `K`.
pub(crate) struct Hosted<K: ControllerKind> {
    /// The controller object's name.
    pub name: String,
    /// The controller object it was built from.
    pub object: Arc<K::Object>,
    kind: K,
    ctx: Arc<Context>,
    queue: Arc<WorkQueue<String>>,
    cancel: CancellationToken,
    subscriptions: Mutex<Vec<(Arc<Informer>, u64)>>,
    task: Mutex<Option<JoinHandle<()>>>,
}

impl<K: ControllerKind> Hosted<K> {
    /// Builds the controller for `object`; nothing runs yet.
    pub async fn build(ctx: Arc<Context>, object: K::Object) -> Result<Arc<Self>, BuildError> {
        if !object.has_hooks() {
            return Err(BuildError::NoHooks);
        }
        let name = object.meta().name.clone().unwrap_or_default();
        // Metacontroller names the queue `<Kind>-<name>`.
        let queue = match &ctx.metrics {
            Some(metrics) => {
                WorkQueue::with_metrics(metrics.workqueue.queue(&format!("{}-{name}", K::KIND)))
            }
            None => WorkQueue::new(),
        };
        let kind = K::build(ctx.clone(), &object, queue.clone()).await?;
        Ok(Arc::new(Hosted {
            name,
            object: Arc::new(object),
            kind,
            ctx,
            queue,
            cancel: CancellationToken::new(),
            subscriptions: Mutex::new(Vec::new()),
            task: Mutex::new(None),
        }))
    }

    /// Whether `object`'s spec is the one this controller was built from.
    pub fn same_spec(&self, object: &K::Object) -> bool {
        self.kind.same_spec(object)
    }

    /// Where the controller's events go.
    pub fn event_ref(&self) -> ObjectReference {
        ObjectReference::from_resource(&*self.object)
    }

    /// Subscribes to the caches and starts the workers once they are synced.
    pub fn start(self: &Arc<Self>) {
        *self.subscriptions.lock() = self.kind.subscribe();
        *self.task.lock() = Some(tokio::spawn(self.clone().run()));
    }

    /// Stops the workers and unsubscribes; waits until they are gone.
    pub async fn stop(&self) {
        self.cancel.cancel();
        self.queue.shutdown();
        for (informer, id) in self.subscriptions.lock().drain(..) {
            informer.unsubscribe(id);
        }
        self.kind.stopped();
        let task = self.task.lock().take();
        if let Some(task) = task {
            let _ = task.await;
        }
    }

    async fn run(self: Arc<Self>) {
        let me = self.event_ref();
        self.ctx.recorder.record(
            &me,
            EventType::Normal,
            reason::STARTING,
            format!("Starting controller: {}", self.name),
        );
        tracing::info!(controller = %self.name, "starting {}", K::KIND);
        self.journal(ControllerState::Starting);
        let ready = tokio::select! {
            _ = self.cancel.cancelled() => false,
            _ = self.kind.wait_synced() => true,
        };
        if ready {
            tracing::debug!(controller = %self.name, "caches synced; starting workers");
            self.journal(ControllerState::Running);
            let mut tasks = JoinSet::new();
            for _ in 0..self.ctx.config.workers.max(1) {
                tasks.spawn(self.clone().worker());
            }
            if let Some(seconds) = self.object.resync_period_seconds() {
                let period = Duration::from_secs(u64::try_from(seconds).unwrap_or(0).max(1));
                tasks.spawn(self.clone().resync(period));
            }
            tasks.spawn(self.clone().resync_on_request());
            self.cancel.cancelled().await;
            while tasks.join_next().await.is_some() {}
        }
        tracing::info!(controller = %self.name, "shutting down {}", K::KIND);
        self.journal(ControllerState::Stopped);
        self.ctx.recorder.record(
            &me,
            EventType::Normal,
            reason::STOPPING,
            format!("Stopping controller: {}", self.name),
        );
    }

    fn journal(&self, state: ControllerState) {
        if let Some(journal) = &self.ctx.journal {
            journal.controller(K::KIND, &self.name, state);
        }
    }

    async fn resync(self: Arc<Self>, period: Duration) {
        let mut ticker = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = self.cancel.cancelled() => return,
                _ = ticker.tick() => self.kind.resync(),
            }
        }
    }

    /// Resyncs on each [`crate::resync::ResyncHandle::resync_all`].
    async fn resync_on_request(self: Arc<Self>) {
        let mut requests = self.ctx.resync.subscribe();
        loop {
            tokio::select! {
                _ = self.cancel.cancelled() => return,
                changed = requests.changed() => match changed {
                    Ok(()) => self.kind.resync(),
                    Err(_) => return,
                },
            }
        }
    }

    async fn worker(self: Arc<Self>) {
        while let Some(key) = self.queue.get().await {
            let result = tokio::select! {
                _ = self.cancel.cancelled() => {
                    self.queue.done(&key);
                    return;
                }
                result = journal::scope::sync(self.ctx.journal.as_ref(), K::KIND, &self.name, &key, self.kind.sync(&key)) => result,
            };
            match result {
                Ok(()) => self.queue.forget(&key),
                // Queued again by what it waits for; its back-off stays.
                Err(SyncError::Deferred) => {}
                Err(SyncError::TooManyRequests(delay)) => {
                    tracing::info!(controller = %self.name, key = %key, delay_ms = delay.as_millis() as u64, "hook asked to retry later (429)");
                    self.queue.add_after(key.clone(), delay);
                }
                Err(SyncError::NotReady) => {
                    tracing::debug!(controller = %self.name, key = %key, "related objects not cached yet; retrying");
                    self.queue.add_rate_limited(key.clone());
                }
                Err(err @ SyncError::Conflict { .. }) => {
                    tracing::debug!(controller = %self.name, key = %key, reason = %err, "write conflicted; retrying with back-off");
                    self.queue.add_rate_limited(key.clone());
                }
                Err(err) => {
                    tracing::warn!(controller = %self.name, key = %key, kind = %err.kind(), error = %err, "sync failed; retrying with back-off");
                    self.queue.add_rate_limited(key.clone());
                }
            }
            self.queue.done(&key);
        }
    }
}

/// Reports the outcome of the sync of `obj` (the parent or target) and
/// passes it on. A reported failure becomes a Warning `SyncError` event,
/// rate-limited with the earlier failures of its kind only; the first good
/// sync after failures is logged and becomes a Normal `SyncRecovered` event.
pub(crate) fn report(
    ctx: &Context,
    obj: &serde_json::Value,
    result: Result<(), SyncError>,
) -> Result<(), SyncError> {
    match &result {
        Err(err) if err.is_reported() => {
            let object = ObjectReference::from_value(obj);
            ctx.recorder.sync_failed(&object);
            ctx.recorder.record_kind(
                &object,
                EventType::Warning,
                reason::SYNC_ERROR,
                &err.kind(),
                format!("Sync error: {err}"),
            );
        }
        Ok(()) if ctx.recorder.any_failing() => {
            let object = ObjectReference::from_value(obj);
            if let Some(failures) = ctx.recorder.sync_succeeded(&object) {
                tracing::info!(object = %object.describe(), failures, "sync recovered");
                ctx.recorder.record(
                    &object,
                    EventType::Normal,
                    reason::SYNC_RECOVERED,
                    format!("Sync recovered after {failures} failed attempt(s)"),
                );
            }
        }
        Err(_) | Ok(()) => {}
    }
    result
}
