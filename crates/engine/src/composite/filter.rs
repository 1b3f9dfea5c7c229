//! Which parents a CompositeController's cache events concern: the
//! parent selector, the owner of a child, the parents that may adopt an
//! orphan, and the event handlers built on them.

use std::sync::Arc;

use metacontroller_apply::owner::{controller_ref, ref_group_kind};
use metacontroller_selectors::Selector;
use serde_json::Value;

use crate::discovery::ResourceInfo;
use crate::hosted::{Expectations, SyncError};
use crate::informer::{EventHandler, Informer};
use crate::object::{self, differs_beyond_status};
use crate::queue::WorkQueue;

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
    /// Creates of children not seen yet, per parent UID.
    pub expectations: Expectations,
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

    pub(super) fn enqueue(&self, parent: &Value) {
        if self.wants(parent) {
            self.queue.add(object::key(parent));
        }
    }

    /// The selector of the parent's children (see [`child_selector`]).
    pub fn child_selector(&self, parent: &Value) -> Result<Selector, SyncError> {
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
                self.selector.as_ref().is_none_or(|s| s.matches(&m.labels)),
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
            metacontroller_selectors::object_labels(child)
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
pub(crate) fn child_selector(parent: &Value, generate: bool) -> Result<Selector, SyncError> {
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
        return Err(SyncError::Invalid(
            ".spec.selector must have either matchLabels, matchExpressions, or both".into(),
        ));
    }
    Selector::from_label_selector(selector).map_err(|source| SyncError::Selector {
        what: format!(
            "can't convert label selector of {}",
            object::describe(parent)
        ),
        source,
    })
}

/// Parent changes: queue the parent.
pub(super) struct ParentEvents(pub Arc<Filter>);

impl EventHandler for ParentEvents {
    fn on_add(&self, obj: &Arc<Value>) {
        self.0.enqueue(obj);
    }

    fn on_update(&self, old: &Arc<Value>, new: &Arc<Value>) {
        if object::uid(old) != object::uid(new) {
            // Deleted and created again under the same name, seen as one
            // change across a relist.
            self.0.expectations.forget(object::uid(old));
        }
        if self.0.ignore_status_changes
            && !Arc::ptr_eq(old, new)
            && !differs_beyond_status(old, new)
        {
            return;
        }
        self.0.enqueue(new);
    }

    fn on_delete(&self, obj: &Arc<Value>) {
        self.0.expectations.forget(object::uid(obj));
        self.0.enqueue(obj);
    }
}

/// Child changes: queue the owner, or the parents that may adopt an
/// orphan.
pub(super) struct ChildEvents(pub Arc<Filter>);

impl ChildEvents {
    fn changed(&self, child: &Value) {
        if object::is_deleting(child) {
            self.0.enqueue_owner(child);
            return;
        }
        if !self.0.enqueue_owner(child) {
            self.0.enqueue_potential_parents(child);
        }
    }
}

impl EventHandler for ChildEvents {
    fn on_add(&self, child: &Arc<Value>) {
        // A create of its controller's, seen (before the controller is
        // queued, so that its sync finds the count up to date).
        if let Some(uid) = metacontroller_apply::owner::controller_uid(child) {
            self.0.expectations.observed(uid);
        }
        self.changed(child);
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
        self.changed(new);
    }

    fn on_delete(&self, child: &Arc<Value>) {
        self.0.enqueue_owner(child);
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
                    .to_string()
                    .contains("must have either")
            );
        }
        let bad = json!({"metadata": {"name": "p"}, "spec": {"selector": {"matchExpressions": [{"key": "k", "operator": "Bogus"}]}}});
        assert!(child_selector(&bad, false).is_err());
    }
}
