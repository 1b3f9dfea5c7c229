//! The sync of one DecoratorController target.
//!
//! 1. Take the target from the cache (gone: nothing to do).
//! 2. Skip it unless it matches both selectors of its type or carries our
//!    finalizer.
//! 3. Add the finalizer when there is a `finalize` hook and the target is
//!    not being deleted; remove it when there is none.
//! 4. Observed attachments: objects of every attachment type, in the
//!    target's namespace (all namespaces for a cluster-scoped target), whose
//!    controller reference has the target's UID **and** which carry
//!    `metacontroller.k8s.io/decorator-controller: <name>`. Nothing is
//!    adopted.
//! 5. Related objects (`customize` hook).
//! 6. Call `finalize` (target deleting, or no longer selected) or `sync`
//!    with `{controller, object, attachments, related, finalizing}`.
//! 7. Requeue after `resyncAfterSeconds`.
//! 8. Merge the returned `labels` and `annotations` into the target (`null`
//!    deletes a key, unmentioned keys stay), replace `status` unless it is
//!    `null`/missing, and drop the finalizer when `finalized`. Only when
//!    something changed (see *Change detection* below): `/status` first
//!    when the status changed and the type has that subresource, then the
//!    object itself when its metadata changed (or, without a status
//!    subresource, when anything changed). Both writes carry the cached
//!    resourceVersion; NotFound and Conflict end the sync quietly, the next
//!    event syncs again. The target's spec is never touched.
//! 9. Stamp the annotation on every desired attachment and manage them
//!    with the shared child management (`children`), unless the target is
//!    being deleted without our finalizer (or with a garbage-collector
//!    finalizer).
//!
//! # Change detection
//!
//! Whether step 8 writes is decided as Metacontroller's `syncParentObject`
//! (`pkg/controller/decorator/controller.go`) decides it, because the write
//! is what brings the hook's next call (its watch event), and hooks are
//! written for that sequence:
//!
//! * **status**: Metacontroller compares `unstructured.NestedMap(target,
//!   "status")` with the hook's map using `reflect.DeepEqual`, for which a
//!   missing status (a nil map) differs from every map the hook can send,
//!   even `{}`. So a target without status that gets `"status": {}` is
//!   written (`status: {}` appears on it, through `/status` when the type
//!   has it) and the hook is called again. A stored `status: null` counts
//!   as missing too (Metacontroller's `NestedMap` fails the sync on it
//!   instead). A missing or `null` `status` in the response leaves the
//!   status alone. Numbers compare by
//!   value (`1` equals `1.0`); Metacontroller would write there, but the
//!   API server stores both as `1` and treats the write as a no-op (no new
//!   resourceVersion, no event), so nothing observable is lost.
//! * **labels and annotations**: a key changes only when its value does or
//!   when `null` removes a key that exists (`updateStringMap`); a missing
//!   map and `{}` are the same, as in Metacontroller.
//! * **finalizer**: `finalized` writes only while our finalizer is present.
//! * **the second write**: after a status-only change Metacontroller also
//!   PUTs the whole object, which changes nothing where a status
//!   subresource exists (the API server ignores `.status` on the main
//!   resource and skips a write that changes nothing, so there is no event:
//!   `GuaranteedUpdate` in `k8s.io/apiserver/pkg/storage/etcd3/store.go`);
//!   that request is not made here.
//!
//! Attachments are compared by the shared child management (`children`,
//! `metacontroller_apply::apply_update`), as for CompositeControllers.

use std::collections::BTreeMap;
use std::sync::Arc;

use metacontroller_api::DECORATOR_CONTROLLER_ANNOTATION;
use metacontroller_api::hook_wire::DecoratorHookResponse;
use serde::Serialize;
use serde_json::{Map, Value};

use crate::aggregate::Aggregate;
use crate::children::{self, ChildError, ChildGroup, Children};
use crate::customize::Related;
use crate::dynapi;
use crate::hook_target::ResolvedHook;
use crate::hosted::exchange::{normalize, pick};
use crate::hosted::{SyncError, desired, exchange, report, resync_after};
use crate::object;

use super::controller::Decorator;
use super::filter::{TargetType, split_queue_key};

/// The body of a sync or finalize request.
#[derive(Serialize)]
pub(crate) struct HookRequest<'a> {
    pub controller: &'a Value,
    pub object: &'a Value,
    pub attachments: BTreeMap<&'a str, BTreeMap<String, &'a Value>>,
    pub related: BTreeMap<&'a str, BTreeMap<String, &'a Value>>,
    pub finalizing: bool,
}

/// What an answer changes on the target: the target with the answer's
/// labels, annotations and status merged in, whether its metadata and
/// whether its status changed. `finalize`: the finalizer `finalizer` is
/// removed as well (the answer said `finalized` while it is on).
pub(crate) struct TargetChange {
    pub updated: Value,
    pub metadata_changed: bool,
    pub status_changed: bool,
}

/// Merges `response` into `target` (see *Change detection*).
pub(crate) fn target_change(
    target: &Value,
    response: &DecoratorHookResponse,
    finalize: Option<&str>,
) -> TargetChange {
    let mut labels = string_map(target, "labels");
    let labels_changed = merge_string_map(&mut labels, &response.labels);
    let mut annotations = string_map(target, "annotations");
    let annotations_changed = merge_string_map(&mut annotations, &response.annotations);
    let desired_status = response.status.clone().map(Value::Object);
    let status_changed = desired_status
        .as_ref()
        .is_some_and(|status| !status_equal(target, status));
    let mut updated = target.clone();
    if labels_changed {
        set_string_map(&mut updated, "labels", labels);
    }
    if annotations_changed {
        set_string_map(&mut updated, "annotations", annotations);
    }
    if status_changed && let (Some(status), Some(root)) = (desired_status, updated.as_object_mut())
    {
        root.insert("status".into(), status);
    }
    if let Some(finalizer) = finalize {
        object::remove_finalizer(&mut updated, finalizer);
    }
    TargetChange {
        updated,
        metadata_changed: labels_changed || annotations_changed || finalize.is_some(),
        status_changed,
    }
}

/// Stamps `metadata.annotations[DECORATOR_CONTROLLER_ANNOTATION] = name`
/// on a desired attachment.
pub(crate) fn stamp_attachment(attachment: &mut Value, name: &str) -> Result<(), SyncError> {
    let (kind, obj_name) = (
        object::kind(attachment).to_owned(),
        object::name(attachment).to_owned(),
    );
    let Some(meta) = object::metadata_mut(attachment) else {
        return Ok(());
    };
    let annotations = meta
        .entry("annotations")
        .or_insert_with(|| Value::Object(Map::new()));
    if annotations.is_null() {
        *annotations = Value::Object(Map::new());
    }
    let Some(annotations) = annotations.as_object_mut() else {
        return Err(SyncError::Invalid(format!(
            "invalid annotations on desired attachment {kind} {obj_name:?}: annotations must be a map of strings"
        )));
    };
    annotations.insert(
        DECORATOR_CONTROLLER_ANNOTATION.to_owned(),
        Value::String(name.to_owned()),
    );
    Ok(())
}

/// Merges `updates` into `map` (`None` deletes); returns whether anything
/// changed.
fn merge_string_map(
    map: &mut Map<String, Value>,
    updates: &BTreeMap<String, Option<String>>,
) -> bool {
    let mut changed = false;
    for (key, value) in updates {
        match value {
            None => changed |= map.remove(key).is_some(),
            Some(v) => {
                if map.get(key).and_then(Value::as_str) != Some(v.as_str()) {
                    map.insert(key.clone(), Value::String(v.clone()));
                    changed = true;
                }
            }
        }
    }
    changed
}

/// `metadata.<field>` as a map of strings (empty when missing).
fn string_map(obj: &Value, field: &str) -> Map<String, Value> {
    obj.get("metadata")
        .and_then(|m| m.get(field))
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default()
}

fn set_string_map(obj: &mut Value, field: &str, map: Map<String, Value>) {
    if let Some(meta) = object::metadata_mut(obj) {
        if map.is_empty() {
            meta.remove(field);
        } else {
            meta.insert(field.to_owned(), Value::Object(map));
        }
    }
}

/// Whether the hook's `desired` status (always a map) equals the object's
/// status. A missing or `null` status equals nothing, not even `{}` (see
/// *Change detection* in the module docs).
fn status_equal(obj: &Value, desired: &Value) -> bool {
    match obj.get("status") {
        None | Some(Value::Null) => false,
        Some(current) => object::semantic_eq(current, desired),
    }
}

impl Decorator {
    /// Syncs the target with queue key `key`.
    pub(crate) async fn sync(&self, key: &str) -> Result<(), SyncError> {
        let Some((api_version, kind, namespace, name)) = split_queue_key(key) else {
            return Err(SyncError::Invalid(format!("invalid parent key: {key:?}")));
        };
        let Some(target_type) = self.filter.target_type(api_version, kind) else {
            return Err(SyncError::Invalid(format!(
                "can't find kind {kind:?} in apiVersion {api_version:?}"
            )));
        };
        let namespace = (!namespace.is_empty()).then_some(namespace);
        let Some(target) = target_type.informer.get(&object::key_of(namespace, name)) else {
            tracing::debug!(controller = %self.name, object = %key, "target is gone");
            self.customize.forget(key);
            return Ok(());
        };
        tracing::debug!(controller = %self.name, object = %key, "sync");
        let result = self.sync_target(target_type, target.clone(), key).await;
        report(&self.ctx, &target, result)
    }

    async fn sync_target(
        &self,
        target_type: &TargetType,
        target: Arc<Value>,
        key: &str,
    ) -> Result<(), SyncError> {
        let filter = &self.filter;
        if !filter.wants(target_type, &target) {
            return Ok(());
        }
        let api = self.target_api(target_type, &target);
        let Some(target) = self.finalizer.sync(&api, target).await? else {
            return Ok(());
        };
        if !filter.wants(target_type, &target) {
            return Ok(());
        }
        let observed = self.observed_attachments(&target);
        let related = self
            .customize
            .related(&target, target_type.info.namespaced, key)
            .await?;

        let selected = filter.selected(target_type, &target);
        let (hook, finalizing) = pick(
            self.sync_hook.as_ref(),
            self.finalize_hook.as_ref(),
            &target,
            selected,
        );
        let Some(hook) = hook else {
            return Err(SyncError::Invalid(format!(
                "no enabled hooks found for {}",
                object::describe(&target)
            )));
        };
        let response = self
            .call_hook(hook, &target, &observed, &related, finalizing)
            .await
            .map_err(|err| {
                // The hook error names the hook kind already.
                err.context(|| format!("syncing {}", object::describe(&target)))
            })?;

        if let Some(delay) = resync_after(response.resync_after_seconds) {
            self.queue.add_after(key.to_owned(), delay);
        }

        if !self.update_target(target_type, &target, &response).await? {
            return Ok(());
        }

        let mut manage_errors = Vec::new();
        let desired = self
            .desired_attachments(&target, response.attachments, &mut manage_errors)
            .await?;
        if (!object::is_deleting(&target) || self.finalizer.manages_while_deleting(&target))
            && let Err(err) = children::manage_children(
                &self.ctx.client,
                &self.ctx.apply,
                &target,
                &observed,
                &desired,
                None,
            )
            .await
        {
            manage_errors.extend(err.0);
        }
        match Aggregate::of(manage_errors) {
            None => Ok(()),
            Some(source) => Err(SyncError::Children {
                what: format!("can't reconcile children for {}", object::describe(&target)),
                source,
            }),
        }
    }

    /// Attachments owned by the target and created by this controller.
    fn observed_attachments(&self, target: &Value) -> Children<Arc<Value>> {
        let namespace = object::namespace(target);
        let uid = object::uid(target);
        self.attachments
            .iter()
            .map(|attachment| {
                let objects = attachment
                    .informer
                    .list_owned(uid, namespace)
                    .into_iter()
                    .filter(|obj| {
                        obj.pointer("/metadata/annotations")
                            .and_then(|a| a.get(DECORATOR_CONTROLLER_ANNOTATION))
                            .and_then(Value::as_str)
                            == Some(self.name.as_str())
                    })
                    .map(|obj| (object::key(&obj), obj))
                    .collect();
                (
                    attachment.type_key.clone(),
                    ChildGroup {
                        resource: attachment.info.clone(),
                        method: attachment.method,
                        objects,
                    },
                )
            })
            .collect()
    }

    async fn call_hook(
        &self,
        hook: &ResolvedHook,
        target: &Value,
        observed: &Children<Arc<Value>>,
        related: &Related,
        finalizing: bool,
    ) -> Result<DecoratorHookResponse, SyncError> {
        let target_ns = object::namespace(target);
        let type_keys = self.attachments.iter().map(|a| a.type_key.as_str());
        let request = HookRequest {
            controller: &self.dc_json,
            object: target,
            attachments: children::hook_map(observed, type_keys, hook.version, target_ns),
            related: related.keyed(hook.version, target_ns),
            finalizing,
        };
        let mut response: DecoratorHookResponse =
            exchange(hook, &request, target, &self.name).await?;
        normalize(&mut response.attachments, &mut response.status);
        Ok(response)
    }

    /// Writes labels, annotations, status and finalizer removal when they
    /// change. `Ok(false)` when the write hit NotFound or Conflict (the sync
    /// ends; the next event brings it back).
    async fn update_target(
        &self,
        target_type: &TargetType,
        target: &Value,
        response: &DecoratorHookResponse,
    ) -> Result<bool, SyncError> {
        let finalize = response.finalized && self.finalizer.is_on(target);
        let TargetChange {
            mut updated,
            metadata_changed,
            status_changed,
        } = target_change(target, response, None);
        let metadata_changed = metadata_changed || finalize;
        if !metadata_changed && !status_changed {
            return Ok(true);
        }
        let api = self.target_api(target_type, target);

        if status_changed && target_type.info.has_status {
            tracing::debug!(controller = %self.name, object = %object::describe(target), "updating status");
            match dynapi::replace_status(&api, updated.clone()).await {
                Ok(written) => {
                    if !metadata_changed {
                        // Metacontroller PUTs the object here as well; with a
                        // status subresource that write changes nothing and
                        // brings no event, so it is left out.
                        return Ok(true);
                    }
                    let rv = object::resource_version(&written).to_owned();
                    if let Some(meta) = object::metadata_mut(&mut updated) {
                        meta.insert("resourceVersion".into(), Value::String(rv));
                    }
                }
                Err(err) if err.is_not_found() => {
                    tracing::debug!(controller = %self.name, object = %object::describe(target), error = %err, "status not written: the object is gone");
                    return Ok(false);
                }
                Err(source) if source.is_conflict() => {
                    return Err(SyncError::Conflict {
                        what: format!("status of {} not written", object::describe(target)),
                        source,
                    });
                }
                Err(source) => {
                    return Err(SyncError::Request {
                        what: "can't update status".into(),
                        source,
                    });
                }
            }
        }
        if finalize {
            object::remove_finalizer(&mut updated, &self.filter.finalizer);
        }
        tracing::debug!(controller = %self.name, object = %object::describe(target), "updating");
        match dynapi::replace(&api, updated).await {
            Ok(_) => Ok(true),
            Err(err) if err.is_not_found() => {
                tracing::debug!(controller = %self.name, object = %object::describe(target), error = %err, "update not written: the object is gone");
                Ok(false)
            }
            Err(source) if source.is_conflict() => Err(SyncError::Conflict {
                what: format!("{} not updated", object::describe(target)),
                source,
            }),
            Err(source) => Err(SyncError::Request {
                what: format!("can't update {}", object::describe(target)),
                source,
            }),
        }
    }

    /// Checks and groups the hook's attachments (see [`desired::group`]),
    /// stamping the decorator annotation on each.
    async fn desired_attachments(
        &self,
        target: &Value,
        desired: Vec<Value>,
        manage_errors: &mut Vec<ChildError>,
    ) -> Result<Children<Value>, SyncError> {
        let prepare = |attachment: &mut Value| stamp_attachment(attachment, &self.name);
        let rules = self.attachments.iter().map(|a| (&a.info, a.method));
        desired::group(
            &self.ctx.resources,
            rules,
            target,
            desired,
            "attachment",
            prepare,
            manage_errors,
        )
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn label_merge_with_null_deletes() {
        let mut map = Map::new();
        map.insert("keep".into(), json!("1"));
        map.insert("drop".into(), json!("2"));
        map.insert("same".into(), json!("3"));
        let updates = BTreeMap::from([
            ("drop".to_owned(), None),
            ("same".to_owned(), Some("3".to_owned())),
            ("absent".to_owned(), None),
        ]);
        assert!(merge_string_map(&mut map, &updates));
        assert_eq!(
            Value::Object(map.clone()),
            json!({"keep": "1", "same": "3"})
        );
        // Nothing left to change.
        assert!(!merge_string_map(&mut map, &updates));
        let add = BTreeMap::from([("new".to_owned(), Some("v".to_owned()))]);
        assert!(merge_string_map(&mut map, &add));
        assert_eq!(map["new"], "v");
    }

    #[test]
    fn missing_status_differs_from_empty() {
        assert!(!status_equal(&json!({}), &json!({})));
        assert!(!status_equal(&json!({"status": null}), &json!({})));
        assert!(status_equal(&json!({"status": {}}), &json!({})));
        assert!(status_equal(
            &json!({"status": {"a": 1}}),
            &json!({"a": 1.0})
        ));
        assert!(!status_equal(&json!({}), &json!({"a": 1})));
        assert!(!status_equal(
            &json!({"status": {"a": {}}}),
            &json!({"a": null})
        ));
        assert!(!status_equal(&json!({"status": {"a": []}}), &json!({})));
    }
}
