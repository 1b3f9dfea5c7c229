//! The sync of one CompositeController parent.
//!
//! 1. Take the parent from the cache (gone: nothing to do).
//! 2. Skip it unless it matches `parentResource.labelSelector` or carries our
//!    finalizer.
//! 3. Add the finalizer when there is a `finalize` hook and the parent is not
//!    being deleted; remove it when there is none.
//! 4. Claim children: owned children (owner index) and orphans (orphan
//!    index) of every declared type, in the parent's namespace (all
//!    namespaces for a cluster-scoped parent). Owned children that stopped
//!    matching the selector are released; matching orphans are adopted after
//!    one uncached GET confirms the parent still exists and is not being
//!    deleted.
//! 5. Call `finalize` (parent deleting, or no longer selected) or `sync`,
//!    with the related objects selected by the `customize` hook, if any.
//!    When a child type uses a rolling update method, this goes through
//!    ControllerRevisions: one call per revision and one rollout step (see
//!    `composite::rolling`).
//! 6. Requeue after `resyncAfterSeconds`.
//! 7. Remove the finalizer when the hook says `finalized`.
//! 8. Check every desired child against the selector (adding
//!    `controller-uid` with `generateSelector`); any violation fails the
//!    whole sync. Children the parent can't own (see [`crate::ownership`]:
//!    undeclared kinds, other namespaces) are refused one by one: reported
//!    in the sync's error, the others still managed.
//! 9. Manage children, unless the parent is being deleted without our
//!    finalizer or with a garbage-collector finalizer.
//! 10. Write the status (the hook's, with `observedGeneration`) through
//!     `/status` when it differs from the live object. A write that still
//!     conflicts after re-reading requeues the parent with back-off.
//! 11. Report the child management error, if any.
//!
//! A sync that finds nothing to change makes no API write at all: the
//! finalizer, child and status steps all compare against the cached state
//! first.
//!
//! # Change detection
//!
//! Each write is made exactly when Metacontroller's `syncParentObject` and
//! `updateParentStatus` (`pkg/controller/composite/controller.go`) make one
//! that changes the stored object, since that write's watch event is what
//! brings the hook's next call:
//!
//! * **status**: the hook's status (a missing or `null` one is `{}`) plus
//!   `observedGeneration` is compared with the parent's whole `status`,
//!   structurally (`reflect.DeepEqual` there): a parent without status, or
//!   with `status: null`, always differs, so the first sync of a new parent
//!   writes even when the hook answers `status: {}`; a key with an empty
//!   value (`{}`, `[]`, `null`) differs from a missing key. Numbers compare
//!   by value (`1` equals `1.0`): where Metacontroller's `int64`/`float64`
//!   comparison would write, the API server stores the same JSON and the
//!   write is a no-op without an event.
//! * Metacontroller reads the live parent before comparing; here the cached
//!   one is compared and written (with its resourceVersion), and the live
//!   one is read only when that write conflicts. When the cache lags behind a status
//!   written by someone else, the event that updates it brings a sync that
//!   makes the same comparison, so the hook sees the same calls.
//! * **finalizer**: added while a `finalize` hook exists and the parent is
//!   not being deleted, removed when there is none or the hook says
//!   `finalized`; each only when the parent's list needs it (Metacontroller
//!   reads the live parent for `finalized` even then, which writes nothing).
//! * **children**: see `children` (dynamic apply writes when the three-way
//!   merge differs from the observed child, compared structurally) and
//!   `ssa`.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use metacontroller_api::hooks::{
    CompositeHookResponse, decode_response, object_key, to_go_json, type_key,
};
use metacontroller_apply::Selector;
use metacontroller_apply::owner::{
    add_owner_reference, controller_uid, make_controller_ref, remove_owner_reference,
};
use metacontroller_hooks::HookError;
use serde::Serialize;
use serde_json::{Map, Value};

use crate::children::{self, ChildGroup, Children};
use crate::customize::Related;
use crate::dynapi::{self, ApiError};
use crate::events::{EventType, ObjectReference, reason};
use crate::object;
use crate::ownership;
use crate::webhook::ResolvedHook;

use super::parent::ParentController;

/// Longest `resyncAfterSeconds` honoured (one year).
const MAX_RESYNC_AFTER: Duration = Duration::from_secs(365 * 24 * 3600);

/// Delay used when a hook answers 429 without a usable `Retry-After`.
const DEFAULT_RETRY_AFTER: Duration = Duration::from_secs(1);

/// Outcome of a failed sync.
#[derive(Debug)]
pub(crate) enum SyncError {
    /// The hook answered 429: retry after this delay, without back-off.
    TooManyRequests(Duration),
    /// Related objects are not cached yet: retried with back-off, without
    /// an event.
    NotReady,
    /// A write the sync meant to make lost to a newer version (409) even
    /// after re-reading the object: retried with back-off, without an event.
    /// The newer version usually brings a sync of its own, but nothing
    /// guarantees it (a conflict injected by a proxy, or one whose watch
    /// event was already seen), and a sync that did not write what it meant
    /// to must not be left for good.
    Conflict(String),
    /// Anything else: recorded as a `SyncError` event, retried with back-off.
    Failed(String),
}

impl From<String> for SyncError {
    fn from(message: String) -> Self {
        SyncError::Failed(message)
    }
}

/// The GC finalizers: while one is present the garbage collector owns the
/// children.
const GC_FINALIZERS: [&str; 2] = ["foregroundDeletion", "orphan"];

#[derive(Serialize)]
struct HookRequest<'a> {
    controller: &'a Value,
    parent: &'a Value,
    children: BTreeMap<&'a str, BTreeMap<String, &'a Value>>,
    related: BTreeMap<&'a str, BTreeMap<String, &'a Value>>,
    finalizing: bool,
}

impl ParentController {
    /// Syncs the parent with key `key`.
    pub(crate) async fn sync(&self, key: &str) -> Result<(), SyncError> {
        let Some(parent) = self.parent_informer.get(key) else {
            tracing::debug!(controller = %self.name, parent = %key, "parent is gone");
            self.customize.forget(key);
            return Ok(());
        };
        tracing::debug!(controller = %self.name, parent = %key, "sync");
        let result = self.sync_parent(parent.clone()).await;
        if let Err(SyncError::Failed(message)) = &result {
            self.ctx.recorder.record(
                &ObjectReference::from_value(&parent),
                EventType::Warning,
                reason::SYNC_ERROR,
                format!("Sync error: {message}"),
            );
        }
        result
    }

    fn parent_api(&self, parent: &Value) -> kube::Api<object::RawObject> {
        dynapi::api(
            &self.ctx.client,
            &self.filter.parent,
            object::namespace(parent),
        )
    }

    async fn sync_parent(&self, parent: Arc<Value>) -> Result<(), SyncError> {
        let filter = &self.filter;
        if !filter.wants(&parent) {
            return Ok(());
        }
        let Some(mut parent) = self.sync_finalizer(parent).await? else {
            return Ok(());
        };
        if !filter.wants(&parent) {
            return Ok(());
        }
        let selector = filter.child_selector(&parent)?;
        let observed = self.claim_children(&parent, &selector).await?;
        let related = self
            .customize
            .related(&parent, filter.parent.namespaced, &object::key(&parent))
            .await?;

        let finalizing = self.finalize_hook.is_some()
            && (object::is_deleting(&parent) || !filter.selected(&parent));
        let hook = if finalizing {
            self.finalize_hook.as_ref()
        } else {
            self.sync_hook.as_ref()
        };
        let Some(hook) = hook else {
            return Err(format!(
                "sync hook nil//not defined for {}",
                object::describe(&parent)
            )
            .into());
        };
        let response = if self.uses_revisions(&parent) {
            self.sync_revisions(hook, &parent, &observed, &related, finalizing)
                .await?
        } else {
            self.call_hook(hook, &parent, &observed, &related, finalizing)
                .await
                .map_err(|err| match err {
                    SyncError::Failed(m) => SyncError::Failed(format!(
                        "sync hook failed for {}: {m}",
                        object::describe(&parent)
                    )),
                    other => other,
                })?
        };

        if response.resync_after_seconds > 0.0 {
            let delay = Duration::try_from_secs_f64(response.resync_after_seconds)
                .unwrap_or(MAX_RESYNC_AFTER)
                .min(MAX_RESYNC_AFTER);
            self.queue.add_after(object::key(&parent), delay);
        }

        if response.finalized && object::has_finalizer(&parent, &self.filter.finalizer) {
            match self.update_finalizer(&parent, false).await {
                Ok(Some(updated)) => parent = updated,
                Ok(None) => return Ok(()),
                Err(err) => {
                    return Err(format!(
                        "can't remove finalizer for {}: {err}",
                        object::describe(&parent)
                    )
                    .into());
                }
            }
        }

        let mut manage_errors = Vec::new();
        let desired = self
            .desired_children(&parent, &selector, response.children, &mut manage_errors)
            .await?;

        let deleting = object::is_deleting(&parent);
        if (!deleting || self.should_finalize(&parent))
            && let Err(err) = children::manage_children(
                &self.ctx.client,
                &self.ctx.apply,
                &parent,
                &observed,
                &desired,
            )
            .await
        {
            manage_errors.extend(err.0);
        }

        self.update_status(&parent, response.status).await?;

        match children::aggregate(manage_errors) {
            None => Ok(()),
            Some(err) => Err(format!(
                "can't reconcile children for {}: {err}",
                object::describe(&parent)
            )
            .into()),
        }
    }

    /// Whether children are still managed while the parent is being deleted.
    fn should_finalize(&self, parent: &Value) -> bool {
        self.finalize_hook.is_some()
            && object::has_finalizer(parent, &self.filter.finalizer)
            && !object::finalizers(parent).any(|f| GC_FINALIZERS.contains(&f))
    }

    /// Adds or removes our finalizer as the presence of a finalize hook
    /// requires. `None` when the parent is gone.
    async fn sync_finalizer(&self, parent: Arc<Value>) -> Result<Option<Arc<Value>>, SyncError> {
        let enabled = self.finalize_hook.is_some();
        if object::has_finalizer(&parent, &self.filter.finalizer) == enabled
            || (enabled && object::is_deleting(&parent))
        {
            return Ok(Some(parent));
        }
        self.update_finalizer(&parent, enabled)
            .await
            .map_err(|err| {
                SyncError::Failed(format!(
                    "can't sync finalizer for {}: {err}",
                    object::describe(&parent)
                ))
            })
    }

    async fn update_finalizer(
        &self,
        parent: &Value,
        add: bool,
    ) -> Result<Option<Arc<Value>>, ApiError> {
        let finalizer = &self.filter.finalizer;
        let api = self.parent_api(parent);
        let result = dynapi::atomic_update(&api, parent, false, |obj| {
            if add {
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
            Err(err) => Err(err),
        }
    }

    async fn claim_children(
        &self,
        parent: &Arc<Value>,
        selector: &Selector,
    ) -> Result<Children<Arc<Value>>, SyncError> {
        let namespace = if self.filter.parent.namespaced {
            object::namespace(parent)
        } else {
            None
        };
        let parent_uid = object::uid(parent);
        let parent_deleting = object::is_deleting(parent);
        let mut can_adopt: Option<Result<(), String>> = None;
        let mut claimed_all = Children::new();
        for child in &self.children {
            let mut candidates = child.informer.list_owned(parent_uid, namespace);
            // Only orphans the selector matches are decoded.
            candidates.extend(
                child
                    .informer
                    .select_orphans(namespace, |m| selector.matches(m.labels)),
            );
            let mut claimed = BTreeMap::new();
            let mut errors = Vec::new();
            for obj in candidates {
                let matches = selector.matches_object_labels(&obj);
                match controller_uid(&obj) {
                    Some(uid) if uid != parent_uid => continue,
                    Some(_) => {
                        if matches {
                            claimed.insert(object::key(&obj), obj);
                        } else if !parent_deleting
                            && let Err(err) = self.release(parent, &child.info, &obj).await
                        {
                            errors.push(err);
                        }
                    }
                    None => {
                        if parent_deleting || !matches || object::is_deleting(&obj) {
                            continue;
                        }
                        let allowed = match &can_adopt {
                            Some(result) => result.clone(),
                            None => {
                                let result = self.recheck_parent(parent).await;
                                can_adopt = Some(result.clone());
                                result
                            }
                        };
                        if let Err(err) = allowed {
                            errors.push(format!(
                                "can't adopt {} ({}): {err}",
                                object::describe(&obj),
                                object::uid(&obj)
                            ));
                            continue;
                        }
                        match self.adopt(parent, &child.info, &obj).await {
                            Ok(true) => {
                                claimed.insert(object::key(&obj), obj);
                            }
                            Ok(false) => {}
                            Err(err) => errors.push(err),
                        }
                    }
                }
            }
            if let Some(err) = children::aggregate(errors) {
                return Err(format!("can't claim {} children: {err}", child.info.kind()).into());
            }
            claimed_all.insert(
                child.type_key.clone(),
                ChildGroup {
                    resource: child.info.clone(),
                    method: child.method,
                    objects: claimed,
                },
            );
        }
        Ok(claimed_all)
    }

    /// Uncached check that the parent still exists with the same UID and is
    /// not being deleted, before adopting anything.
    pub(super) async fn recheck_parent(&self, parent: &Value) -> Result<(), String> {
        let api = self.parent_api(parent);
        let fresh = dynapi::get(&api, object::name(parent))
            .await
            .map_err(|e| format!("can't recheck DeletionTimestamp: {e}"))?;
        if object::uid(&fresh) != object::uid(parent) {
            return Err(format!(
                "can't recheck DeletionTimestamp: original {} is gone: got uid {}, wanted {}",
                object::describe(parent),
                object::uid(&fresh),
                object::uid(parent)
            ));
        }
        if object::is_deleting(&fresh) {
            return Err(format!(
                "{} has just been deleted",
                object::describe(parent)
            ));
        }
        Ok(())
    }

    /// Adds our controller reference; `Ok(false)` when the child vanished.
    async fn adopt(
        &self,
        parent: &Value,
        info: &crate::discovery::ResourceInfo,
        child: &Value,
    ) -> Result<bool, String> {
        tracing::info!(parent = %object::describe(parent), child = %object::describe(child), "adopting");
        let api = dynapi::api(&self.ctx.client, info, object::namespace(child));
        let owner = make_controller_ref(parent);
        let result = dynapi::atomic_update(&api, child, false, |obj| {
            add_owner_reference(obj, owner.clone());
            true
        })
        .await;
        match result {
            Ok(_) => Ok(true),
            Err(err) if err.is_not_found() => Ok(false),
            Err(err) => Err(format!("can't adopt {}: {err}", object::describe(child))),
        }
    }

    /// Removes our owner reference from a child that no longer matches.
    async fn release(
        &self,
        parent: &Value,
        info: &crate::discovery::ResourceInfo,
        child: &Value,
    ) -> Result<(), String> {
        tracing::info!(parent = %object::describe(parent), child = %object::describe(child), "releasing");
        let api = dynapi::api(&self.ctx.client, info, object::namespace(child));
        let parent_uid = object::uid(parent);
        let result = dynapi::atomic_update(&api, child, false, |obj| {
            remove_owner_reference(obj, parent_uid)
        })
        .await;
        match result {
            Ok(_) => Ok(()),
            Err(err) if err.is_not_found() || err.is_gone() => Ok(()),
            Err(err) => Err(format!("can't release {}: {err}", object::describe(child))),
        }
    }

    pub(super) async fn call_hook(
        &self,
        hook: &ResolvedHook,
        parent: &Value,
        observed: &Children<Arc<Value>>,
        related: &Related,
        finalizing: bool,
    ) -> Result<CompositeHookResponse, SyncError> {
        let parent_ns = object::namespace(parent);
        let mut children: BTreeMap<&str, BTreeMap<String, &Value>> = BTreeMap::new();
        for child in &self.children {
            let map = children.entry(child.type_key.as_str()).or_default();
            if let Some(group) = observed.get(&child.type_key) {
                for obj in group.objects.values() {
                    if let Some(key) = object_key(
                        hook.version,
                        parent_ns,
                        object::namespace(obj),
                        object::name(obj),
                    ) {
                        map.insert(key, &**obj);
                    }
                }
            }
        }
        let request = HookRequest {
            controller: &self.cc_json,
            parent,
            children,
            related: related.keyed(hook.version, parent_ns),
            finalizing,
        };
        let body = to_go_json(&request).map_err(|e| format!("can't marshal request: {e}"))?;
        let cache_key = format!(
            "{}/{}/{}",
            object::kind(parent),
            parent_ns.unwrap_or_default(),
            object::name(parent)
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
            decode_response::<CompositeHookResponse>(&bytes, hook.mode).map_err(|err| {
                SyncError::Failed(format!(
                    "{hook_name} hook failed (version={version}): {err}"
                ))
            })?;
        if !decoded.issues.is_empty() {
            tracing::debug!(controller = %self.name, hook = hook_name, issues = ?decoded.issues, "hook response has unknown or repeated fields (loose mode)");
        }
        let mut response = decoded.response;
        for child in &mut response.children {
            object::normalize_numbers(child);
        }
        if let Some(status) = &mut response.status {
            status.values_mut().for_each(object::normalize_numbers);
        }
        Ok(response)
    }

    /// Validates the hook's children and groups them by type, defaulting
    /// namespaces. Selector violations fail the sync; unknown types are
    /// reported as child management errors.
    async fn desired_children(
        &self,
        parent: &Value,
        selector: &Selector,
        desired: Vec<Value>,
        manage_errors: &mut Vec<String>,
    ) -> Result<Children<Value>, SyncError> {
        let parent_ns = object::namespace(parent).map(str::to_owned);
        let mut grouped: Children<Value> = Children::new();
        let mut checked = Vec::with_capacity(desired.len());
        for mut child in desired {
            if child.is_null() {
                continue;
            }
            if !child.is_object() {
                return Err(format!("invalid desired child: not an object: {child}").into());
            }
            let api_version = object::api_version(&child).to_owned();
            let kind = object::kind(&child).to_owned();
            let name = object::name(&child).to_owned();
            if api_version.is_empty() || kind.is_empty() || name.is_empty() {
                return Err(format!(
                    "invalid desired child {kind} {name:?}: apiVersion, kind and metadata.name are required"
                )
                .into());
            }
            let Some(meta) = object::metadata_mut(&mut child) else {
                continue;
            };
            if meta
                .get("namespace")
                .and_then(Value::as_str)
                .is_none_or(str::is_empty)
                && let Some(ns) = &parent_ns
            {
                meta.insert("namespace".into(), Value::String(ns.clone()));
            }
            let uid_label = || {
                (
                    metacontroller_api::CONTROLLER_UID_LABEL.to_owned(),
                    Value::String(object::uid(parent).to_owned()),
                )
            };
            match meta.get_mut("labels") {
                None | Some(Value::Null) => {
                    if self.filter.generate_selector {
                        meta.insert(
                            "labels".into(),
                            Value::Object(Map::from_iter([uid_label()])),
                        );
                    }
                }
                Some(Value::Object(labels)) if labels.values().all(Value::is_string) => {
                    if self.filter.generate_selector
                        && !labels.contains_key(metacontroller_api::CONTROLLER_UID_LABEL)
                    {
                        let (k, v) = uid_label();
                        labels.insert(k, v);
                    }
                }
                Some(_) => {
                    return Err(format!(
                        "invalid labels on desired child {}: labels must be a map of strings",
                        object::describe(&child)
                    )
                    .into());
                }
            }
            if !selector.matches_object_labels(&child) {
                return Err(format!(
                    "labels on desired child {} don't match parent selector",
                    object::describe(&child)
                )
                .into());
            }
            checked.push((api_version, kind, child));
        }
        for (api_version, kind, child) in checked {
            let rules = self.children.iter().map(|c| (&c.info, c.method));
            let resolved =
                ownership::resolve(rules, &self.ctx.resources, parent, &child, "child").await;
            let (info, method) = match resolved {
                Ok(resolved) => resolved,
                Err(err) => {
                    manage_errors.push(err);
                    continue;
                }
            };
            let key = object::key(&child);
            grouped
                .entry(type_key(&kind, &api_version))
                .or_insert_with(|| ChildGroup {
                    resource: info,
                    method,
                    objects: BTreeMap::new(),
                })
                .objects
                .insert(key, child);
        }
        Ok(grouped)
    }

    /// Replaces the parent's status with the hook's (plus
    /// `observedGeneration`) when it differs; compares with the cached
    /// object first and with the live object before writing. A missing
    /// status differs from every desired one (see *Change detection*).
    async fn update_status(
        &self,
        parent: &Value,
        status: Option<Map<String, Value>>,
    ) -> Result<(), SyncError> {
        let mut status = status.unwrap_or_default();
        status.insert(
            "observedGeneration".into(),
            Value::from(object::generation(parent)),
        );
        let desired = Value::Object(status);
        if parent
            .get("status")
            .is_some_and(|current| object::semantic_eq(current, &desired))
        {
            return Ok(());
        }
        let api = self.parent_api(parent);
        let result = dynapi::atomic_update(&api, parent, self.filter.parent.has_status, |live| {
            if live
                .get("status")
                .is_some_and(|current| object::semantic_eq(current, &desired))
            {
                return false;
            }
            if let Some(root) = live.as_object_mut() {
                root.insert("status".into(), desired.clone());
            }
            true
        })
        .await;
        match result {
            Ok(_) => Ok(()),
            Err(err) if err.is_not_found() => {
                tracing::debug!(controller = %self.name, parent = %object::describe(parent), error = %err, "status not written: the parent is gone");
                Ok(())
            }
            Err(err) if err.is_conflict() => Err(SyncError::Conflict(format!(
                "status of {} not written: {err}",
                object::describe(parent)
            ))),
            Err(err) => Err(format!(
                "can't update status for {}: {err}",
                object::describe(parent)
            )
            .into()),
        }
    }
}
