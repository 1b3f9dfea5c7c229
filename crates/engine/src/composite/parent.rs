//! One hosted CompositeController: its informer subscriptions, work queue
//! and workers.

use std::sync::Arc;
use std::time::Duration;

use metacontroller_api::{
    ChildUpdateMethod, CompositeController, HookedController, hooks::controller_json,
    hooks::type_key,
};
use metacontroller_apply::Selector;
use metacontroller_apply::owner::{controller_ref, ref_group_kind};
use metacontroller_hooks::HookKind;
use parking_lot::Mutex;
use serde_json::Value;
use tokio::task::{JoinHandle, JoinSet};
use tokio_util::sync::CancellationToken;

use crate::Context;
use crate::customize::Customizer;
use crate::discovery::ResourceInfo;
use crate::events::{EventType, ObjectReference, reason};
use crate::informer::{EventHandler, Informer, InformerHandle, Interest};
use crate::object;
use crate::queue::WorkQueue;
use crate::webhook::{self, ResolvedHook};

use super::rolling::Rolling;

use super::sync::SyncError;

/// The kind name used in metrics and logs.
pub(crate) const CONTROLLER_TYPE: &str = "CompositeController";

/// A declared child type.
pub(crate) struct ChildType {
    /// The resource, as discovered.
    pub info: ResourceInfo,
    /// The update method of the rule.
    pub method: ChildUpdateMethod,
    /// `Kind.apiVersion` key of hook object maps.
    pub type_key: String,
    /// The shared cache.
    pub informer: InformerHandle,
}

/// What event handlers need to decide which parent to sync.
pub(crate) struct Filter {
    /// `parentResource.labelSelector` (`None`: every parent).
    pub selector: Option<Selector>,
    /// `metacontroller.io/compositecontroller-<name>`.
    pub finalizer: String,
    /// `spec.generateSelector`.
    pub generate_selector: bool,
    /// `parentResource.ignoreStatusChanges`.
    pub ignore_status_changes: bool,
    /// The parent resource.
    pub parent: ResourceInfo,
    /// The parent cache.
    pub parent_informer: Arc<Informer>,
    /// The work queue.
    pub queue: Arc<WorkQueue<String>>,
}

impl Filter {
    /// Whether the parent matches `parentResource.labelSelector`.
    pub fn selected(&self, parent: &Value) -> bool {
        self.selector
            .as_ref()
            .is_none_or(|s| s.matches_object_labels(parent))
    }

    /// Whether this controller handles the parent: it is selected or still
    /// carries our finalizer.
    pub fn wants(&self, parent: &Value) -> bool {
        object::has_finalizer(parent, &self.finalizer) || self.selected(parent)
    }

    fn enqueue(&self, parent: &Value) {
        if self.wants(parent) {
            self.queue.add(object::key(parent));
        }
    }

    /// The selector of the parent's children (see [`child_selector`]).
    pub fn child_selector(&self, parent: &Value) -> Result<Selector, String> {
        child_selector(parent, self.generate_selector)
    }

    /// The key of the cached parent a controller reference points at, if it
    /// is one of ours. Decided on the cached metadata; the parent is only
    /// decoded when its labels do not select it (it is still ours while it
    /// carries our finalizer).
    fn owner_key(&self, child: &Value, controller: &Value) -> Option<String> {
        let field = |f: &str| {
            controller
                .get(f)
                .and_then(Value::as_str)
                .unwrap_or_default()
        };
        if ref_group_kind(controller) != (self.parent.group(), self.parent.kind()) {
            return None;
        }
        let namespace = if self.parent.namespaced {
            object::namespace(child)
        } else {
            None
        };
        let key = object::key_of(namespace, field("name"));
        let (same_uid, selected) = self.parent_informer.peek(&key, |m| {
            (
                m.uid == field("uid"),
                self.selector.as_ref().is_none_or(|s| s.matches(m.labels)),
            )
        })?;
        if !same_uid {
            return None;
        }
        if selected {
            return Some(key);
        }
        let parent = self.parent_informer.get(&key)?;
        object::has_finalizer(&parent, &self.finalizer).then_some(key)
    }

    fn enqueue_owner(&self, child: &Value) -> bool {
        match controller_ref(child) {
            Some(controller) => {
                if let Some(key) = self.owner_key(child, controller) {
                    self.queue.add(key);
                }
                true
            }
            None => false,
        }
    }

    /// Parents that might adopt an orphan: same namespace (any, for
    /// cluster-scoped parents) and a selector matching its labels.
    fn enqueue_potential_parents(&self, child: &Value) {
        let namespace = if self.parent.namespaced {
            Some(object::namespace(child).unwrap_or_default())
        } else {
            None
        };
        // A generated selector is `controller-uid=<parent uid>`: only that
        // parent can match.
        let uid_label = self.generate_selector.then(|| {
            metacontroller_apply::selector::object_labels(child)
                .and_then(|l| l.get(metacontroller_api::CONTROLLER_UID_LABEL))
                .and_then(Value::as_str)
                .unwrap_or_default()
        });
        let candidates = self
            .parent_informer
            .select(namespace, |m| uid_label.is_none_or(|uid| m.uid == uid));
        for parent in candidates {
            if !self.wants(&parent) {
                continue;
            }
            if let Ok(selector) = self.child_selector(&parent)
                && !selector.is_everything()
                && selector.matches_object_labels(child)
            {
                self.queue.add(object::key(&parent));
            }
        }
    }
}

/// The selector of a parent's children: `controller-uid=<uid>` with
/// `generateSelector`, else the parent's `spec.selector`, which must not be
/// empty.
pub(crate) fn child_selector(parent: &Value, generate: bool) -> Result<Selector, String> {
    if generate {
        return Ok(Selector::from_set([(
            metacontroller_api::CONTROLLER_UID_LABEL,
            object::uid(parent),
        )]));
    }
    let selector = parent.pointer("/spec/selector").unwrap_or(&Value::Null);
    let non_empty = |field: &str| {
        selector.get(field).is_some_and(|v| match v {
            Value::Object(m) => !m.is_empty(),
            Value::Array(a) => !a.is_empty(),
            _ => false,
        })
    };
    if !non_empty("matchLabels") && !non_empty("matchExpressions") {
        return Err(
            ".spec.selector must have either matchLabels, matchExpressions, or both".into(),
        );
    }
    Selector::from_label_selector(selector).map_err(|err| {
        format!(
            "can't convert label selector of {}: {err}",
            object::describe(parent)
        )
    })
}

/// Whether two versions of an object differ in more than `status`,
/// `metadata.resourceVersion` and `metadata.managedFields`.
pub(crate) fn differs_beyond_status(old: &Value, new: &Value) -> bool {
    let (Some(old), Some(new)) = (old.as_object(), new.as_object()) else {
        return old != new;
    };
    if maps_differ_except(old, new, &["status", "metadata"]) {
        return true;
    }
    let empty = serde_json::Map::new();
    let old_meta = old
        .get("metadata")
        .and_then(Value::as_object)
        .unwrap_or(&empty);
    let new_meta = new
        .get("metadata")
        .and_then(Value::as_object)
        .unwrap_or(&empty);
    maps_differ_except(old_meta, new_meta, &["resourceVersion", "managedFields"])
}

fn maps_differ_except(
    a: &serde_json::Map<String, Value>,
    b: &serde_json::Map<String, Value>,
    skip: &[&str],
) -> bool {
    let relevant = |k: &String| !skip.contains(&k.as_str());
    a.iter()
        .filter(|(k, _)| relevant(k))
        .any(|(k, v)| b.get(k) != Some(v))
        || b.keys().filter(|k| relevant(k)).any(|k| !a.contains_key(k))
}

struct ParentEvents(Arc<Filter>);

impl EventHandler for ParentEvents {
    fn on_add(&self, obj: &Arc<Value>) {
        self.0.enqueue(obj);
    }

    fn on_update(&self, old: &Arc<Value>, new: &Arc<Value>) {
        if self.0.ignore_status_changes
            && !Arc::ptr_eq(old, new)
            && !differs_beyond_status(old, new)
        {
            return;
        }
        self.0.enqueue(new);
    }

    fn on_delete(&self, obj: &Arc<Value>) {
        self.0.enqueue(obj);
    }
}

struct ChildEvents(Arc<Filter>);

impl EventHandler for ChildEvents {
    fn on_add(&self, child: &Arc<Value>) {
        if object::is_deleting(child) {
            self.on_delete(child);
            return;
        }
        if !self.0.enqueue_owner(child) {
            self.0.enqueue_potential_parents(child);
        }
    }

    fn on_update(&self, old: &Arc<Value>, new: &Arc<Value>) {
        if object::resource_version(old) == object::resource_version(new) {
            return;
        }
        let old_owner = metacontroller_apply::owner::controller_uid(old);
        if old_owner.is_some() && old_owner != metacontroller_apply::owner::controller_uid(new) {
            // Released or taken over: the previous owner must notice too.
            self.0.enqueue_owner(old);
        }
        self.on_add(new);
    }

    fn on_delete(&self, child: &Arc<Value>) {
        self.0.enqueue_owner(child);
    }
}

/// A hosted CompositeController.
pub(crate) struct ParentController {
    pub name: String,
    pub cc: Arc<CompositeController>,
    pub(super) cc_json: Value,
    pub(super) ctx: Arc<Context>,
    pub(super) filter: Arc<Filter>,
    pub(super) parent_informer: InformerHandle,
    pub(super) children: Vec<ChildType>,
    pub(super) sync_hook: Option<ResolvedHook>,
    pub(super) finalize_hook: Option<ResolvedHook>,
    pub(super) queue: Arc<WorkQueue<String>>,
    pub(super) customize: Customizer,
    /// ControllerRevisions, when some child type uses a rolling method.
    pub(super) rolling: Option<Rolling>,
    cancel: CancellationToken,
    subscriptions: Mutex<Vec<(Arc<Informer>, u64)>>,
    task: Mutex<Option<JoinHandle<()>>>,
}

impl ParentController {
    /// Resolves everything the controller needs; nothing runs yet.
    pub async fn build(ctx: Arc<Context>, cc: CompositeController) -> Result<Arc<Self>, String> {
        let name = cc.metadata.name.clone().unwrap_or_default();
        if !cc.has_hooks() {
            return Err("no hooks defined".into());
        }
        let spec = &cc.spec;
        let parent_rule = &spec.parent_resource;
        let parent = ctx
            .resources
            .resolve(&parent_rule.api_version, &parent_rule.resource)
            .await
            .ok_or_else(|| {
                format!(
                    "discovery: can't find resource {} in apiVersion {}",
                    parent_rule.resource, parent_rule.api_version
                )
            })?;
        let mut child_infos = Vec::new();
        for rule in spec.child_resources() {
            let info = ctx
                .resources
                .resolve(&rule.api_version, &rule.resource)
                .await
                .ok_or_else(|| {
                    format!(
                        "discovery: can't find resource {} in apiVersion {}",
                        rule.resource, rule.api_version
                    )
                })?;
            child_infos.push((info, rule.update_method(), rule.api_version.clone()));
        }
        let endpoint_configs = cc.endpoint_configs();
        let metrics = ctx.hook_metrics.as_ref();
        let sync_hook = match cc.sync_hook() {
            Some(hook) => webhook::resolve(
                &ctx.client,
                hook,
                endpoint_configs,
                HookKind::Sync,
                CONTROLLER_TYPE,
                &name,
                metrics,
            )
            .await
            .map_err(|e| format!("can't resolve sync hook: {e}"))?,
            None => None,
        };
        let finalize_hook = match cc.finalize_hook() {
            Some(hook) => webhook::resolve(
                &ctx.client,
                hook,
                endpoint_configs,
                HookKind::Finalize,
                CONTROLLER_TYPE,
                &name,
                metrics,
            )
            .await
            .map_err(|e| format!("can't resolve finalize hook: {e}"))?,
            None => None,
        };
        let customize_hook = match cc.customize_hook() {
            Some(hook) => webhook::resolve(
                &ctx.client,
                hook,
                endpoint_configs,
                HookKind::Customize,
                CONTROLLER_TYPE,
                &name,
                metrics,
            )
            .await
            .map_err(|e| format!("can't resolve customize hook: {e}"))?,
            None => None,
        };
        let selector = match &parent_rule.label_selector {
            None => None,
            Some(ls) => {
                let value = serde_json::to_value(ls).map_err(|e| e.to_string())?;
                Some(
                    Selector::from_label_selector(&value)
                        .map_err(|e| format!("invalid parentResource.labelSelector: {e}"))?,
                )
            }
        };
        let rolling = Rolling::new(
            &ctx,
            parent_rule.revision_field_paths(),
            spec.child_resources()
                .iter()
                .zip(&child_infos)
                .map(|(rule, (info, method, _))| {
                    (
                        info.group().to_owned(),
                        info.kind().to_owned(),
                        *method,
                        rule.status_checks().to_vec(),
                    )
                }),
        );

        let queue = WorkQueue::new();
        let parent_informer = ctx.informers.acquire(&parent);
        // The children caches keep only what this controller can claim.
        let interest = Interest::Children {
            group: parent.group().to_owned(),
            kind: parent.kind().to_owned(),
            orphan_label: spec
                .generates_selector()
                .then(|| metacontroller_api::CONTROLLER_UID_LABEL.to_owned()),
        };
        let children = child_infos
            .into_iter()
            .map(|(info, method, api_version)| ChildType {
                type_key: type_key(info.kind(), &api_version),
                informer: ctx.informers.acquire_for(&info, interest.clone()),
                info,
                method,
            })
            .collect();
        let filter = Arc::new(Filter {
            selector,
            finalizer: cc.finalizer_name(),
            generate_selector: spec.generates_selector(),
            ignore_status_changes: parent_rule.ignores_status_changes(),
            parent,
            parent_informer: parent_informer.informer().clone(),
            queue: queue.clone(),
        });
        let cc_json = controller_json(&cc);
        let customize =
            Customizer::new(ctx.clone(), customize_hook, cc_json.clone(), queue.clone());
        Ok(Arc::new(ParentController {
            cc_json,
            customize,
            rolling,
            name,
            cc: Arc::new(cc),
            ctx,
            filter,
            parent_informer,
            children,
            sync_hook,
            finalize_hook,
            queue,
            cancel: CancellationToken::new(),
            subscriptions: Mutex::new(Vec::new()),
            task: Mutex::new(None),
        }))
    }

    pub(crate) fn event_ref(&self) -> ObjectReference {
        ObjectReference::from_resource(&*self.cc)
    }

    /// Subscribes to the caches and starts the workers once they are synced.
    pub fn start(self: &Arc<Self>) {
        let mut subs = self.subscriptions.lock();
        let parent_events: Arc<dyn EventHandler> = Arc::new(ParentEvents(self.filter.clone()));
        let id = self.parent_informer.subscribe(parent_events, true);
        subs.push((self.parent_informer.informer().clone(), id));
        for child in &self.children {
            let events: Arc<dyn EventHandler> = Arc::new(ChildEvents(self.filter.clone()));
            let id = child.informer.subscribe(events, false);
            subs.push((child.informer.informer().clone(), id));
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
        tracing::info!(controller = %self.name, "starting CompositeController");
        let synced = async {
            self.parent_informer.wait_synced().await;
            for child in &self.children {
                child.informer.wait_synced().await;
            }
            if let Some(rolling) = &self.rolling {
                rolling.store.informer().wait_synced().await;
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
            if let Some(seconds) = self.cc.resync_period_seconds() {
                let period = Duration::from_secs(u64::try_from(seconds).unwrap_or(0).max(1));
                tasks.spawn(self.clone().resync(period));
            }
            self.cancel.cancelled().await;
            while tasks.join_next().await.is_some() {}
        }
        tracing::info!(controller = %self.name, "shutting down CompositeController");
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
                    for parent in self.parent_informer.list() {
                        self.filter.enqueue(&parent);
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
                    tracing::info!(controller = %self.name, parent = %key, delay_ms = delay.as_millis() as u64, "hook asked to retry later (429)");
                    self.queue.add_after(key.clone(), delay);
                }
                Err(SyncError::NotReady) => {
                    tracing::debug!(controller = %self.name, parent = %key, "related objects not cached yet; retrying");
                    self.queue.add_rate_limited(key.clone());
                }
                Err(SyncError::Conflict(message)) => {
                    tracing::debug!(controller = %self.name, parent = %key, reason = %message, "write conflicted; retrying with back-off");
                    self.queue.add_rate_limited(key.clone());
                }
                Err(SyncError::Failed(message)) => {
                    tracing::warn!(controller = %self.name, parent = %key, error = %message, "sync failed");
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
    fn child_selectors() {
        let parent = json!({"kind": "P", "metadata": {"name": "p", "uid": "u-1"},
            "spec": {"selector": {"matchLabels": {"app": "a"},
                "matchExpressions": [{"key": "tier", "operator": "In", "values": ["x"]}]}}});
        let s = child_selector(&parent, false).unwrap();
        assert!(
            s.matches_object_labels(&json!({"metadata": {"labels": {"app": "a", "tier": "x"}}}))
        );
        assert!(!s.matches_object_labels(&json!({"metadata": {"labels": {"app": "a"}}})));
        // generateSelector ignores spec.selector.
        let s = child_selector(&parent, true).unwrap();
        assert!(
            s.matches_object_labels(&json!({"metadata": {"labels": {"controller-uid": "u-1"}}}))
        );
        assert!(
            !s.matches_object_labels(&json!({"metadata": {"labels": {"app": "a", "tier": "x"}}}))
        );
        // Missing or empty selectors are refused.
        for spec in [
            json!({}),
            json!({"selector": {}}),
            json!({"selector": {"matchLabels": {}}}),
        ] {
            let p = json!({"metadata": {"name": "p"}, "spec": spec});
            assert!(
                child_selector(&p, false)
                    .unwrap_err()
                    .contains("must have either")
            );
        }
        let bad = json!({"metadata": {"name": "p"}, "spec": {"selector": {"matchExpressions": [{"key": "k", "operator": "Bogus"}]}}});
        assert!(child_selector(&bad, false).is_err());
    }

    #[test]
    fn status_only_changes_are_recognised() {
        let a = json!({"spec": {"x": 1}, "status": {"a": 1},
            "metadata": {"name": "p", "resourceVersion": "1", "generation": 1, "managedFields": []}});
        let mut b = a.clone();
        b["status"]["a"] = json!(2);
        b["metadata"]["resourceVersion"] = json!("2");
        b["metadata"]["managedFields"] = json!([{"manager": "x"}]);
        assert!(!differs_beyond_status(&a, &b));
        let mut c = b.clone();
        c["metadata"]["labels"] = json!({"l": "v"});
        assert!(differs_beyond_status(&a, &c));
        let mut d = b.clone();
        d["spec"]["x"] = json!(2);
        assert!(differs_beyond_status(&a, &d));
        let mut e = b.clone();
        e["metadata"]["deletionTimestamp"] = json!("2024-01-01T00:00:00Z");
        assert!(differs_beyond_status(&a, &e));
        let mut f = b;
        f.as_object_mut().unwrap().remove("spec");
        assert!(differs_beyond_status(&a, &f));
    }
}
