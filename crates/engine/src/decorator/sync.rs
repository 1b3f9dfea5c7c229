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
use std::time::Duration;

use metacontroller_api::hooks::{DecoratorHookResponse, decode_response, object_key, to_go_json};
use metacontroller_api::{DECORATOR_CONTROLLER_ANNOTATION, hooks::type_key};
use metacontroller_hooks::HookError;
use serde::Serialize;
use serde_json::{Map, Value};

use crate::children::{self, ChildGroup, Children};
use crate::composite::SyncError;
use crate::customize::Related;
use crate::dynapi;
use crate::events::{EventType, ObjectReference, reason};
use crate::object;
use crate::ownership;
use crate::webhook::ResolvedHook;

use super::controller::{Decorator, TargetType, split_queue_key};

/// Longest `resyncAfterSeconds` honoured (one year).
const MAX_RESYNC_AFTER: Duration = Duration::from_secs(365 * 24 * 3600);

/// Delay used when a hook answers 429 without a usable `Retry-After`.
const DEFAULT_RETRY_AFTER: Duration = Duration::from_secs(1);

/// The GC finalizers: while one is present the garbage collector owns the
/// attachments.
const GC_FINALIZERS: [&str; 2] = ["foregroundDeletion", "orphan"];

#[derive(Serialize)]
struct HookRequest<'a> {
    controller: &'a Value,
    object: &'a Value,
    attachments: BTreeMap<&'a str, BTreeMap<String, &'a Value>>,
    related: BTreeMap<&'a str, BTreeMap<String, &'a Value>>,
    finalizing: bool,
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
            return Err(format!("invalid parent key: {key:?}").into());
        };
        let Some(target_type) = self.filter.target_type(api_version, kind) else {
            return Err(format!("can't find kind {kind:?} in apiVersion {api_version:?}").into());
        };
        let namespace = (!namespace.is_empty()).then_some(namespace);
        let Some(target) = target_type.informer.get(&object::key_of(namespace, name)) else {
            tracing::debug!(controller = %self.name, object = %key, "target is gone");
            self.customize.forget(key);
            return Ok(());
        };
        tracing::debug!(controller = %self.name, object = %key, "sync");
        let result = self.sync_target(target_type, target.clone(), key).await;
        if let Err(SyncError::Failed(message)) = &result {
            self.ctx.recorder.record(
                &ObjectReference::from_value(&target),
                EventType::Warning,
                reason::SYNC_ERROR,
                format!("Sync error: {message}"),
            );
        }
        result
    }

    fn target_api(&self, target_type: &TargetType, obj: &Value) -> kube::Api<object::RawObject> {
        dynapi::api(&self.ctx.client, &target_type.info, object::namespace(obj))
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
        let Some(target) = self.sync_finalizer(target_type, target).await? else {
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

        let finalizing = self.finalize_hook.is_some()
            && (object::is_deleting(&target) || !filter.selected(target_type, &target));
        let hook = if finalizing {
            self.finalize_hook.as_ref()
        } else {
            self.sync_hook.as_ref()
        };
        let Some(hook) = hook else {
            return Err(format!("no enabled hooks found for {}", object::describe(&target)).into());
        };
        let response = self
            .call_hook(hook, &target, &observed, &related, finalizing)
            .await
            .map_err(|err| match err {
                SyncError::Failed(m) => SyncError::Failed(format!(
                    "{} hook failed for {}: {m}",
                    hook.kind,
                    object::describe(&target)
                )),
                other => other,
            })?;

        if response.resync_after_seconds > 0.0 {
            let delay = Duration::try_from_secs_f64(response.resync_after_seconds)
                .unwrap_or(MAX_RESYNC_AFTER)
                .min(MAX_RESYNC_AFTER);
            self.queue.add_after(key.to_owned(), delay);
        }

        if !self.update_target(target_type, &target, &response).await? {
            return Ok(());
        }

        let mut manage_errors = Vec::new();
        let desired = self
            .desired_attachments(&target, response.attachments, &mut manage_errors)
            .await?;
        if (!object::is_deleting(&target) || self.should_finalize(&target))
            && let Err(err) = children::manage_children(
                &self.ctx.client,
                &self.ctx.apply,
                &target,
                &observed,
                &desired,
            )
            .await
        {
            manage_errors.extend(err.0);
        }
        match children::aggregate(manage_errors) {
            None => Ok(()),
            Some(err) => Err(format!(
                "can't reconcile children for {}: {err}",
                object::describe(&target)
            )
            .into()),
        }
    }

    /// Whether attachments are still managed while the target is being
    /// deleted.
    fn should_finalize(&self, target: &Value) -> bool {
        self.finalize_hook.is_some()
            && object::has_finalizer(target, &self.filter.finalizer)
            && !object::finalizers(target).any(|f| GC_FINALIZERS.contains(&f))
    }

    /// Adds or removes our finalizer as the presence of a finalize hook
    /// requires. `None` when the target is gone.
    async fn sync_finalizer(
        &self,
        target_type: &TargetType,
        target: Arc<Value>,
    ) -> Result<Option<Arc<Value>>, SyncError> {
        let enabled = self.finalize_hook.is_some();
        let finalizer = &self.filter.finalizer;
        if object::has_finalizer(&target, finalizer) == enabled
            || (enabled && object::is_deleting(&target))
        {
            return Ok(Some(target));
        }
        let api = self.target_api(target_type, &target);
        let result = dynapi::atomic_update(&api, &target, false, |obj| {
            if enabled {
                // No new finalizers on an object that is being deleted.
                !object::is_deleting(obj) && object::add_finalizer(obj, finalizer)
            } else {
                object::remove_finalizer(obj, finalizer)
            }
        })
        .await;
        match result {
            Ok(updated) => Ok(Some(Arc::new(updated))),
            Err(err) if err.is_not_found() => Ok(None),
            Err(err) => Err(format!(
                "can't sync finalizer for {}: {err}",
                object::describe(&target)
            )
            .into()),
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
        let mut attachments: BTreeMap<&str, BTreeMap<String, &Value>> = BTreeMap::new();
        for attachment in &self.attachments {
            let map = attachments.entry(attachment.type_key.as_str()).or_default();
            if let Some(group) = observed.get(&attachment.type_key) {
                for obj in group.objects.values() {
                    if let Some(key) = object_key(
                        hook.version,
                        target_ns,
                        object::namespace(obj),
                        object::name(obj),
                    ) {
                        map.insert(key, &**obj);
                    }
                }
            }
        }
        let request = HookRequest {
            controller: &self.dc_json,
            object: target,
            attachments,
            related: related.keyed(hook.version, target_ns),
            finalizing,
        };
        let body = to_go_json(&request).map_err(|e| format!("can't marshal request: {e}"))?;
        let cache_key = format!(
            "{}/{}/{}",
            object::kind(target),
            target_ns.unwrap_or_default(),
            object::name(target)
        );
        let hook_name = hook.kind.as_str();
        let version = hook.version;
        let bytes = hook
            .client
            .call(body, Some(&cache_key))
            .await
            .map_err(|err| match err {
                HookError::TooManyRequests { retry_after } => {
                    SyncError::TooManyRequests(retry_after.unwrap_or(DEFAULT_RETRY_AFTER))
                }
                other => SyncError::Failed(format!(
                    "{hook_name} hook failed (version={version}): {other}"
                )),
            })?;
        let decoded =
            decode_response::<DecoratorHookResponse>(&bytes, hook.mode).map_err(|err| {
                SyncError::Failed(format!(
                    "{hook_name} hook failed (version={version}): {err}"
                ))
            })?;
        if !decoded.issues.is_empty() {
            tracing::debug!(controller = %self.name, hook = hook_name, issues = ?decoded.issues, "hook response has unknown or repeated fields (loose mode)");
        }
        let mut response = decoded.response;
        for attachment in &mut response.attachments {
            object::normalize_numbers(attachment);
        }
        if let Some(status) = &mut response.status {
            status.values_mut().for_each(object::normalize_numbers);
        }
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
        let mut labels = string_map(target, "labels");
        let labels_changed = merge_string_map(&mut labels, &response.labels);
        let mut annotations = string_map(target, "annotations");
        let annotations_changed = merge_string_map(&mut annotations, &response.annotations);
        let desired_status = response.status.clone().map(Value::Object);
        let status_changed = desired_status
            .as_ref()
            .is_some_and(|status| !status_equal(target, status));
        let finalize = response.finalized && object::has_finalizer(target, &self.filter.finalizer);
        let metadata_changed = labels_changed || annotations_changed || finalize;
        if !metadata_changed && !status_changed {
            return Ok(true);
        }

        let mut updated = target.clone();
        if labels_changed {
            set_string_map(&mut updated, "labels", labels);
        }
        if annotations_changed {
            set_string_map(&mut updated, "annotations", annotations);
        }
        if status_changed
            && let (Some(status), Some(root)) = (desired_status, updated.as_object_mut())
        {
            root.insert("status".into(), status);
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
                Err(err) if err.is_conflict() => {
                    return Err(SyncError::Conflict(format!(
                        "status of {} not written: {err}",
                        object::describe(target)
                    )));
                }
                Err(err) => return Err(format!("can't update status: {err}").into()),
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
            Err(err) if err.is_conflict() => Err(SyncError::Conflict(format!(
                "{} not updated: {err}",
                object::describe(target)
            ))),
            Err(err) => Err(format!("can't update {}: {err}", object::describe(target)).into()),
        }
    }

    /// Validates the hook's attachments, defaults their namespace to the
    /// target's, stamps the decorator annotation and groups them by type.
    /// Unknown types are reported as child management errors.
    async fn desired_attachments(
        &self,
        target: &Value,
        desired: Vec<Value>,
        manage_errors: &mut Vec<String>,
    ) -> Result<Children<Value>, SyncError> {
        let target_ns = object::namespace(target).map(str::to_owned);
        let mut grouped: Children<Value> = Children::new();
        let mut checked = Vec::with_capacity(desired.len());
        for mut attachment in desired {
            if attachment.is_null() {
                continue;
            }
            if !attachment.is_object() {
                return Err(
                    format!("invalid desired attachment: not an object: {attachment}").into(),
                );
            }
            let api_version = object::api_version(&attachment).to_owned();
            let kind = object::kind(&attachment).to_owned();
            let name = object::name(&attachment).to_owned();
            if api_version.is_empty() || kind.is_empty() || name.is_empty() {
                return Err(format!(
                    "invalid desired attachment {kind} {name:?}: apiVersion, kind and metadata.name are required"
                )
                .into());
            }
            let Some(meta) = object::metadata_mut(&mut attachment) else {
                continue;
            };
            if meta
                .get("namespace")
                .and_then(Value::as_str)
                .is_none_or(str::is_empty)
                && let Some(ns) = &target_ns
            {
                meta.insert("namespace".into(), Value::String(ns.clone()));
            }
            let annotations = meta
                .entry("annotations")
                .or_insert_with(|| Value::Object(Map::new()));
            if annotations.is_null() {
                *annotations = Value::Object(Map::new());
            }
            let Some(annotations) = annotations.as_object_mut() else {
                return Err(format!(
                    "invalid annotations on desired attachment {kind} {name:?}: annotations must be a map of strings"
                )
                .into());
            };
            annotations.insert(
                DECORATOR_CONTROLLER_ANNOTATION.to_owned(),
                Value::String(self.name.clone()),
            );
            checked.push((api_version, kind, attachment));
        }
        for (api_version, kind, attachment) in checked {
            let rules = self.attachments.iter().map(|a| (&a.info, a.method));
            let resolved = ownership::resolve(
                rules,
                &self.ctx.resources,
                target,
                &attachment,
                "attachment",
            )
            .await;
            let (info, method) = match resolved {
                Ok(resolved) => resolved,
                Err(err) => {
                    manage_errors.push(err);
                    continue;
                }
            };
            let key = object::key(&attachment);
            grouped
                .entry(type_key(&kind, &api_version))
                .or_insert_with(|| ChildGroup {
                    resource: info,
                    method,
                    objects: BTreeMap::new(),
                })
                .objects
                .insert(key, attachment);
        }
        Ok(grouped)
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
