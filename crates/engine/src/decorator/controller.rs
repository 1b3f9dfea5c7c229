//! One hosted DecoratorController: its target and attachment types, the
//! event handlers that feed its work queue, and its workers.
//!
//! Queue keys are `apiVersion:kind:namespace:name` (the namespace is empty
//! for cluster-scoped targets), one queue over every `resources[]` rule.

use std::sync::Arc;
use std::time::Duration;

use metacontroller_api::hooks::{controller_json, type_key};
use metacontroller_api::{
    ChildUpdateMethod, DecoratorController, DecoratorControllerResourceRule, HookedController,
};
use metacontroller_apply::Selector;
use metacontroller_apply::owner::{controller_ref, controller_uid};
use metacontroller_hooks::HookKind;
use parking_lot::Mutex;
use serde_json::Value;
use tokio::task::{JoinHandle, JoinSet};
use tokio_util::sync::CancellationToken;

use crate::Context;
use crate::composite::{SyncError, differs_beyond_status};
use crate::customize::Customizer;
use crate::discovery::ResourceInfo;
use crate::events::{EventType, ObjectReference, reason};
use crate::informer::{EventHandler, Informer, InformerHandle};
use crate::object;
use crate::queue::WorkQueue;
use crate::webhook::{self, ResolvedHook};

/// The kind name used in metrics and logs.
pub(crate) const CONTROLLER_TYPE: &str = "DecoratorController";

/// A `resources[]` rule: which objects are decorated.
pub(crate) struct TargetType {
    /// The resource, as discovered.
    pub info: ResourceInfo,
    /// `labelSelector` (absent: everything).
    pub labels: Selector,
    /// `annotationSelector` (absent: everything).
    pub annotations: Selector,
    /// `ignoreStatusChanges`.
    pub ignore_status_changes: bool,
    /// The shared cache (the counted handle lives in the controller).
    pub informer: Arc<Informer>,
}

/// An `attachments[]` rule.
pub(crate) struct AttachmentType {
    /// The resource, as discovered.
    pub info: ResourceInfo,
    /// The update method (rolling methods act like their plain twins).
    pub method: ChildUpdateMethod,
    /// `Kind.apiVersion` key of hook object maps.
    pub type_key: String,
    /// The shared cache.
    pub informer: InformerHandle,
}

/// What the event handlers need to decide which target to sync.
pub(crate) struct Filter {
    /// The target types, in `resources[]` order.
    pub targets: Vec<TargetType>,
    /// `metacontroller.io/decoratorcontroller-<name>`.
    pub finalizer: String,
    /// The work queue.
    pub queue: Arc<WorkQueue<String>>,
}

/// Queue key of a target of type `info`.
pub(crate) fn queue_key(info: &ResourceInfo, obj: &Value) -> String {
    format!(
        "{}:{}:{}:{}",
        info.api_version(),
        info.kind(),
        object::namespace(obj).unwrap_or_default(),
        object::name(obj)
    )
}

/// Splits a queue key into `(apiVersion, kind, namespace, name)`.
pub(crate) fn split_queue_key(key: &str) -> Option<(&str, &str, &str, &str)> {
    let mut parts = key.splitn(4, ':');
    Some((parts.next()?, parts.next()?, parts.next()?, parts.next()?))
}

impl Filter {
    /// Whether the target matches both selectors of its type.
    pub fn selected(&self, target_type: &TargetType, obj: &Value) -> bool {
        target_type.labels.matches_object_labels(obj)
            && target_type.annotations.matches_object_annotations(obj)
    }

    /// Whether this controller handles the object: it is selected or still
    /// carries our finalizer.
    pub fn wants(&self, target_type: &TargetType, obj: &Value) -> bool {
        object::has_finalizer(obj, &self.finalizer) || self.selected(target_type, obj)
    }

    fn enqueue(&self, target_type: &TargetType, obj: &Value) {
        if self.wants(target_type, obj) {
            self.queue.add(queue_key(&target_type.info, obj));
        }
    }

    /// The target type for an `apiVersion` and kind.
    pub fn target_type(&self, api_version: &str, kind: &str) -> Option<&TargetType> {
        self.targets
            .iter()
            .find(|t| t.info.api_version() == api_version && t.info.kind() == kind)
    }

    /// The cached target a controller reference points at, if it is one we
    /// handle. Only the group and kind of the reference count, not its
    /// version.
    fn resolve_controller_ref(
        &self,
        attachment: &Value,
        controller: &Value,
    ) -> Option<(&TargetType, Arc<Value>)> {
        let field = |f: &str| {
            controller
                .get(f)
                .and_then(Value::as_str)
                .unwrap_or_default()
        };
        let (group, kind) = metacontroller_apply::owner::ref_group_kind(controller);
        let target_type = self
            .targets
            .iter()
            .find(|t| t.info.group() == group && t.info.kind() == kind)?;
        let namespace = if target_type.info.namespaced {
            object::namespace(attachment)
        } else {
            None
        };
        let target = target_type
            .informer
            .get(&object::key_of(namespace, field("name")))?;
        (object::uid(&target) == field("uid") && self.wants(target_type, &target))
            .then_some((target_type, target))
    }

    fn enqueue_owner(&self, attachment: &Value) {
        if let Some(controller) = controller_ref(attachment)
            && let Some((target_type, target)) = self.resolve_controller_ref(attachment, controller)
        {
            self.queue.add(queue_key(&target_type.info, &target));
        }
    }
}

struct TargetEvents {
    filter: Arc<Filter>,
    index: usize,
}

impl TargetEvents {
    fn target_type(&self) -> &TargetType {
        &self.filter.targets[self.index]
    }
}

impl EventHandler for TargetEvents {
    fn on_add(&self, obj: &Arc<Value>) {
        self.filter.enqueue(self.target_type(), obj);
    }

    fn on_update(&self, old: &Arc<Value>, new: &Arc<Value>) {
        let target_type = self.target_type();
        if target_type.ignore_status_changes
            && !Arc::ptr_eq(old, new)
            && !differs_beyond_status(old, new)
        {
            return;
        }
        self.filter.enqueue(target_type, new);
    }

    fn on_delete(&self, obj: &Arc<Value>) {
        self.filter.enqueue(self.target_type(), obj);
    }
}

struct AttachmentEvents(Arc<Filter>);

impl EventHandler for AttachmentEvents {
    fn on_add(&self, obj: &Arc<Value>) {
        // There is no adoption: only owned attachments matter, whether they
        // appear, change or are being deleted.
        self.0.enqueue_owner(obj);
    }

    fn on_update(&self, old: &Arc<Value>, new: &Arc<Value>) {
        if object::resource_version(old) == object::resource_version(new) {
            return;
        }
        if controller_uid(old).is_some() && controller_uid(old) != controller_uid(new) {
            // The previous owner must notice too.
            self.0.enqueue_owner(old);
        }
        self.0.enqueue_owner(new);
    }

    fn on_delete(&self, obj: &Arc<Value>) {
        self.0.enqueue_owner(obj);
    }
}

/// A hosted DecoratorController.
pub(crate) struct Decorator {
    pub name: String,
    pub dc: Arc<DecoratorController>,
    pub(super) dc_json: Value,
    pub(super) ctx: Arc<Context>,
    pub(super) filter: Arc<Filter>,
    target_informers: Vec<InformerHandle>,
    pub(super) attachments: Vec<AttachmentType>,
    pub(super) sync_hook: Option<ResolvedHook>,
    pub(super) finalize_hook: Option<ResolvedHook>,
    pub(super) customize: Customizer,
    pub(super) queue: Arc<WorkQueue<String>>,
    cancel: CancellationToken,
    subscriptions: Mutex<Vec<(Arc<Informer>, u64)>>,
    task: Mutex<Option<JoinHandle<()>>>,
}

fn target_selectors(
    rule: &DecoratorControllerResourceRule,
) -> Result<(Selector, Selector), String> {
    let labels = match &rule.label_selector {
        None => Selector::everything(),
        Some(ls) => {
            let value = serde_json::to_value(ls).map_err(|e| e.to_string())?;
            Selector::from_label_selector(&value).map_err(|e| {
                format!(
                    "can't convert label selector for parent resource {:?} in apiVersion {:?}: {e}",
                    rule.resource, rule.api_version
                )
            })?
        }
    };
    let annotations = match &rule.annotation_selector {
        None => Selector::everything(),
        Some(sel) => {
            let value = serde_json::to_value(sel).map_err(|e| e.to_string())?;
            Selector::from_annotation_selector(&value).map_err(|e| {
                format!(
                    "can't convert annotation selector for parent resource {:?} in apiVersion {:?}: {e}",
                    rule.resource, rule.api_version
                )
            })?
        }
    };
    Ok((labels, annotations))
}

async fn discover(
    ctx: &Context,
    api_version: &str,
    resource: &str,
) -> Result<ResourceInfo, String> {
    ctx.resources
        .resolve(api_version, resource)
        .await
        .ok_or_else(|| {
            format!("discovery: can't find resource {resource} in apiVersion {api_version}")
        })
}

async fn resolve_hook(
    ctx: &Context,
    dc: &DecoratorController,
    hook: Option<&metacontroller_api::Hook>,
    kind: HookKind,
) -> Result<Option<ResolvedHook>, String> {
    let Some(hook) = hook else {
        return Ok(None);
    };
    webhook::resolve(
        &ctx.client,
        hook,
        dc.endpoint_configs(),
        kind,
        CONTROLLER_TYPE,
        dc.metadata.name.as_deref().unwrap_or_default(),
        ctx.hook_metrics.as_ref(),
    )
    .await
    .map_err(|e| format!("can't resolve {kind} hook: {e}"))
}

impl Decorator {
    /// Resolves everything the controller needs; nothing runs yet.
    pub async fn build(ctx: Arc<Context>, dc: DecoratorController) -> Result<Arc<Self>, String> {
        let name = dc.metadata.name.clone().unwrap_or_default();
        if !dc.has_hooks() {
            return Err("no hooks defined".into());
        }
        let mut targets = Vec::new();
        for rule in &dc.spec.resources {
            let info = discover(&ctx, &rule.api_version, &rule.resource).await?;
            let (labels, annotations) = target_selectors(rule)?;
            targets.push((info, labels, annotations, rule.ignores_status_changes()));
        }
        let mut attachment_infos = Vec::new();
        for rule in dc.spec.attachments() {
            let info = discover(&ctx, &rule.api_version, &rule.resource).await?;
            attachment_infos.push((info, rule.update_method(), rule.api_version.clone()));
        }
        let sync_hook = resolve_hook(&ctx, &dc, dc.sync_hook(), HookKind::Sync).await?;
        let finalize_hook = resolve_hook(&ctx, &dc, dc.finalize_hook(), HookKind::Finalize).await?;
        let customize_hook =
            resolve_hook(&ctx, &dc, dc.customize_hook(), HookKind::Customize).await?;

        let queue = WorkQueue::new();
        let mut target_informers = Vec::new();
        let targets = targets
            .into_iter()
            .map(|(info, labels, annotations, ignore_status_changes)| {
                let handle = ctx.informers.acquire(&info);
                let informer = handle.informer().clone();
                target_informers.push(handle);
                TargetType {
                    info,
                    labels,
                    annotations,
                    ignore_status_changes,
                    informer,
                }
            })
            .collect();
        let attachments = attachment_infos
            .into_iter()
            .map(|(info, method, api_version)| AttachmentType {
                type_key: type_key(info.kind(), &api_version),
                informer: ctx.informers.acquire(&info),
                info,
                method,
            })
            .collect();
        let filter = Arc::new(Filter {
            targets,
            finalizer: dc.finalizer_name(),
            queue: queue.clone(),
        });
        let dc_json = controller_json(&dc);
        let customize =
            Customizer::new(ctx.clone(), customize_hook, dc_json.clone(), queue.clone());
        Ok(Arc::new(Decorator {
            dc_json,
            name,
            dc: Arc::new(dc),
            ctx,
            filter,
            target_informers,
            attachments,
            sync_hook,
            finalize_hook,
            customize,
            queue,
            cancel: CancellationToken::new(),
            subscriptions: Mutex::new(Vec::new()),
            task: Mutex::new(None),
        }))
    }

    pub(crate) fn event_ref(&self) -> ObjectReference {
        ObjectReference::from_resource(&*self.dc)
    }

    /// Subscribes to the caches and starts the workers once they are synced.
    pub fn start(self: &Arc<Self>) {
        let mut subs = self.subscriptions.lock();
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
        drop(subs);
        *self.task.lock() = Some(tokio::spawn(self.clone().run()));
    }

    /// Stops the workers and unsubscribes; waits until they are gone.
    pub async fn stop(&self) {
        self.cancel.cancel();
        self.queue.shutdown();
        for (informer, id) in self.subscriptions.lock().drain(..) {
            informer.unsubscribe(id);
        }
        self.customize.stop();
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
        tracing::info!(controller = %self.name, "starting DecoratorController");
        let synced = async {
            for informer in &self.target_informers {
                informer.wait_synced().await;
            }
            for attachment in &self.attachments {
                attachment.informer.wait_synced().await;
            }
        };
        let ready = tokio::select! {
            _ = self.cancel.cancelled() => false,
            _ = synced => true,
        };
        if ready {
            tracing::debug!(controller = %self.name, "caches synced; starting workers");
            let mut tasks = JoinSet::new();
            for _ in 0..self.ctx.config.workers.max(1) {
                tasks.spawn(self.clone().worker());
            }
            if let Some(seconds) = self.dc.resync_period_seconds() {
                let period = Duration::from_secs(u64::try_from(seconds).unwrap_or(0).max(1));
                tasks.spawn(self.clone().resync(period));
            }
            self.cancel.cancelled().await;
            while tasks.join_next().await.is_some() {}
        }
        tracing::info!(controller = %self.name, "shutting down DecoratorController");
        self.ctx.recorder.record(
            &me,
            EventType::Normal,
            reason::STOPPING,
            format!("Stopping controller: {}", self.name),
        );
    }

    async fn resync(self: Arc<Self>, period: Duration) {
        let mut ticker = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = self.cancel.cancelled() => return,
                _ = ticker.tick() => {
                    for target_type in &self.filter.targets {
                        for obj in target_type.informer.list() {
                            self.filter.enqueue(target_type, &obj);
                        }
                    }
                }
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
                result = self.sync(&key) => result,
            };
            match result {
                Ok(()) => self.queue.forget(&key),
                Err(SyncError::TooManyRequests(delay)) => {
                    tracing::info!(controller = %self.name, object = %key, delay_ms = delay.as_millis() as u64, "hook asked to retry later (429)");
                    self.queue.add_after(key.clone(), delay);
                }
                Err(SyncError::NotReady) => {
                    tracing::debug!(controller = %self.name, object = %key, "related objects not cached yet; retrying");
                    self.queue.add_rate_limited(key.clone());
                }
                Err(SyncError::Conflict(message)) => {
                    tracing::debug!(controller = %self.name, object = %key, reason = %message, "write conflicted; retrying with back-off");
                    self.queue.add_rate_limited(key.clone());
                }
                Err(SyncError::Failed(message)) => {
                    tracing::warn!(controller = %self.name, object = %key, error = %message, "sync failed");
                    self.queue.add_rate_limited(key.clone());
                }
            }
            self.queue.done(&key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn queue_keys_round_trip() {
        let info = ResourceInfo {
            api_resource: kube::core::ApiResource {
                group: "rbac.authorization.k8s.io".into(),
                version: "v1".into(),
                api_version: "rbac.authorization.k8s.io/v1".into(),
                kind: "ClusterRole".into(),
                plural: "clusterroles".into(),
            },
            namespaced: false,
            has_status: false,
        };
        // Names may contain colons (system:controller:...).
        let obj = json!({"metadata": {"name": "system:controller:x"}});
        let key = queue_key(&info, &obj);
        assert_eq!(
            key,
            "rbac.authorization.k8s.io/v1:ClusterRole::system:controller:x"
        );
        assert_eq!(
            split_queue_key(&key),
            Some((
                "rbac.authorization.k8s.io/v1",
                "ClusterRole",
                "",
                "system:controller:x"
            ))
        );
        let pod = json!({"metadata": {"name": "p", "namespace": "ns"}});
        let mut pods = info.clone();
        pods.api_resource.api_version = "v1".into();
        pods.api_resource.kind = "Pod".into();
        assert_eq!(queue_key(&pods, &pod), "v1:Pod:ns:p");
        assert_eq!(split_queue_key("bad"), None);
    }

    #[test]
    fn selectors_default_to_everything() {
        let rule: DecoratorControllerResourceRule =
            serde_json::from_value(json!({"apiVersion": "v1", "resource": "pods"})).unwrap();
        let (l, a) = target_selectors(&rule).unwrap();
        assert!(l.is_everything() && a.is_everything());
        let rule: DecoratorControllerResourceRule = serde_json::from_value(json!({
            "apiVersion": "v1", "resource": "pods",
            "labelSelector": {"matchLabels": {"app": "x"}},
            "annotationSelector": {"matchAnnotations": {"note": "free text, allowed"},
                "matchExpressions": [{"key": "skip", "operator": "DoesNotExist"}]}
        }))
        .unwrap();
        let (l, a) = target_selectors(&rule).unwrap();
        let obj = json!({"metadata": {"labels": {"app": "x"},
            "annotations": {"note": "free text, allowed"}}});
        assert!(l.matches_object_labels(&obj) && a.matches_object_annotations(&obj));
        let skipped = json!({"metadata": {"labels": {"app": "x"},
            "annotations": {"note": "free text, allowed", "skip": ""}}});
        assert!(!a.matches_object_annotations(&skipped));
        let bad: DecoratorControllerResourceRule = serde_json::from_value(json!({
            "apiVersion": "v1", "resource": "pods",
            "labelSelector": {"matchExpressions": [{"key": "k", "operator": "In"}]}
        }))
        .unwrap();
        assert!(
            target_selectors(&bad)
                .unwrap_err()
                .contains("can't convert label selector")
        );
    }
}
