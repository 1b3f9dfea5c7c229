//! Which targets a DecoratorController's cache events concern: the target
//! types and their selectors, queue keys, the owner of an attachment, and
//! the event handlers built on them.
//!
//! Queue keys are `apiVersion:kind:namespace:name` (the namespace is empty
//! for cluster-scoped targets), one queue over every `resources[]` rule.

use std::sync::Arc;

use metacontroller_apply::owner::{controller_ref, controller_uid};
use metacontroller_selectors::Selector;
use serde_json::Value;

use crate::discovery::ResourceInfo;
use crate::informer::{EventHandler, Informer};
use crate::object::{self, differs_beyond_status};
use crate::queue::WorkQueue;

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

    pub(super) fn enqueue(&self, target_type: &TargetType, obj: &Value) {
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

/// Target changes: queue the target.
pub(super) struct TargetEvents {
    /// The filter.
    pub filter: Arc<Filter>,
    /// Index of the target type.
    pub index: usize,
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

/// Attachment changes: queue the owning target.
pub(super) struct AttachmentEvents(pub Arc<Filter>);

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
}
