//! Rolling updates (`RollingRecreate`, `RollingInPlace`) with
//! ControllerRevisions: Metacontroller's `syncRevisions` and
//! `syncRollingUpdate`.
//!
//! When at least one child type uses a rolling method, a sync (unless the
//! parent is being deleted without our finalizer) goes like this:
//!
//! 1. **Claim revisions**: the ControllerRevisions in the parent's namespace
//!    are claimed like children, with the parent's child selector plus the
//!    `metacontroller.k8s.io/apiGroup` and `metacontroller.k8s.io/resource`
//!    labels: ours and matching are kept, ours and no longer matching are
//!    released, matching orphans are adopted (after the same uncached
//!    parent check as children).
//! 2. **Latest revision**: the one whose `parentPatch` equals the parent's
//!    current `revisionHistory.fieldPaths` subtrees; a new one is prepared
//!    in memory when none does. Every other revision stands for a
//!    *hypothetical parent*: the current parent with its patch applied.
//! 3. **Hook calls**: one per revision, concurrently, each with its
//!    (hypothetical) parent and the same observed children and related
//!    objects (customize answers are cached per parent UID and generation,
//!    which a hypothetical parent shares with the real one). Any failure
//!    fails the sync.
//! 4. **Rollout step**: claims are cleaned (kinds that are no longer rolling
//!    and children the latest revision no longer wants are dropped; a child
//!    claimed twice stays with the first claimer, the latest revision
//!    first). The latest revision takes every child it wants that nobody
//!    claims, and every child already matching its desired state. Then, in
//!    the order of the latest hook response, the first child not on the
//!    latest revision is moved to it, only if every child already on the
//!    latest revision is observed, up to date, has
//!    `status.observedGeneration >= metadata.generation` when it reports one
//!    (`RollingInPlace`) and passes the type's `statusChecks.conditions`.
//!    At most one child moves per sync.
//!    After a move the parent is synced again a second later, in case the
//!    move's write changed nothing that would trigger a sync.
//! 5. **Updated condition** in the status of the latest hook response:
//!    `False`/`RolloutWaiting` (message: what is awaited),
//!    `False`/`RolloutProgressing` (`updating <Kind> <name>`) or
//!    `True`/`OnLatestRevision` (`latest ControllerRevision: <name>`), with
//!    no `lastTransitionTime`; a `null` status becomes an object.
//! 6. **Prune and persist**: old revisions left without children are
//!    deleted (UID precondition), new ones created, changed ones updated,
//!    all before any child is touched.
//! 7. **Result**: the latest revision's desired children, each replaced by
//!    the desired state of the old revision that still claims it; the
//!    status of the latest revision; the smallest positive
//!    `resyncAfterSeconds`; `finalized` only when every revision says so.
//!
//! "Up to date" means that writing the desired state would change nothing:
//! the dynamic-apply merge is a no-op, or under server-side apply the
//! managed-fields check of [`crate::ssa::is_applied`].
//!
//! Differences from Metacontroller, all deliberate:
//! * cleaned claims are really dropped from the revision (Metacontroller
//!   keeps the unfiltered name list, so after a scale-down a stale name can
//!   keep the rollout waiting for a "missing child" and keep an old revision
//!   alive);
//! * the hook's children get their namespace and `controller-uid` label
//!   defaulted before the up-to-date checks, as they are before they are
//!   written (Metacontroller compares the raw hook output, which never
//!   matches when `generateSelector` adds the label);
//! * new revisions are labelled with `spec.template.metadata.labels` (as in
//!   Metacontroller) plus the parent selector's `matchLabels`, so that a
//!   parent without a template can still claim its revisions;
//! * a revision name that already exists (created by an earlier sync whose
//!   claim was lost, or orphaned) is taken over instead of failing every
//!   sync with AlreadyExists;
//! * under server-side apply "up to date" is the managed-fields check
//!   (Metacontroller uses the dynamic-apply merge in both modes, which adds
//!   the last-applied annotation that server-side-applied children never
//!   carry, so no child would ever count as updated);
//! * a cluster-scoped parent gets a clear error (its revisions would need a
//!   namespace) instead of a failing create.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use kube::Api;
use metacontroller_api::constants::{
    REASON_ON_LATEST_REVISION, REASON_ROLLOUT_PROGRESSING, REASON_ROLLOUT_WAITING,
    UPDATED_CONDITION,
};
use metacontroller_api::hook_wire::{CompositeHookResponse, split_api_version};
use metacontroller_api::{
    ChildUpdateMethod, ControllerRevisionChildren, REVISION_API_GROUP_LABEL,
    REVISION_RESOURCE_LABEL,
};
use metacontroller_apply::DynamicApplyError;
use metacontroller_apply::owner::{add_owner_reference, controller_uid, make_controller_ref};
use metacontroller_selectors::{Operator, Requirement};
use serde_json::{Map, Value, json};

use crate::children::Children;
use crate::customize::Related;
use crate::dynapi;
use crate::hook_target::ResolvedHook;
use crate::hosted::{Claim, Claimable, SyncError};
use crate::object::{self, RawObject};

use super::controller::ParentController;
use super::revisions::{self, Revision, RevisionError};
use super::rollout::{Condition, GroupKind, Rolling, failed_check, set_condition};

/// When to look at a parent again after a rollout step.
const PROGRESS_RECHECK: Duration = Duration::from_secs(1);

/// ControllerRevisions, as [`Claim`] writes them: adoptions and releases go
/// to the revision store at once.
struct RevisionClaim<'a> {
    ctx_client: &'a kube::Client,
    rolling: &'a Rolling,
}

impl Claimable for RevisionClaim<'_> {
    fn label(&self, rev: &Value) -> String {
        format!("ControllerRevision {}", object::name(rev))
    }

    fn api(&self, rev: &Value) -> Api<RawObject> {
        dynapi::api(self.ctx_client, &self.rolling.info, object::namespace(rev))
    }

    fn adopted(&self, _cached: Arc<Value>, written: Value) -> Arc<Value> {
        self.rolling.store.written(written)
    }

    fn released(&self, written: Value) {
        self.rolling.store.written(written);
    }
}

impl From<RevisionError> for SyncError {
    fn from(err: RevisionError) -> Self {
        SyncError::Kind(Box::new(err))
    }
}

/// One revision with the hook's answer for its (hypothetical) parent.
struct ParentRevision {
    revision: Revision,
    response: CompositeHookResponse,
    /// Desired children by group/kind and name (children of a namespaced
    /// parent live in its namespace, so the name is enough).
    desired: HashMap<GroupKind, HashMap<String, Value>>,
}

fn group_kind_of(child: &Value) -> GroupKind {
    (
        split_api_version(object::api_version(child)).0.to_owned(),
        object::kind(child).to_owned(),
    )
}

impl ParentRevision {
    fn new(revision: Revision, response: CompositeHookResponse) -> Self {
        let mut desired: HashMap<GroupKind, HashMap<String, Value>> = HashMap::new();
        for child in &response.children {
            if child.is_object() {
                desired
                    .entry(group_kind_of(child))
                    .or_default()
                    .insert(object::name(child).to_owned(), child.clone());
            }
        }
        ParentRevision {
            revision,
            response,
            desired,
        }
    }

    fn desired(&self, group: &str, kind: &str, name: &str) -> Option<&Value> {
        self.desired
            .get(&(group.to_owned(), kind.to_owned()))?
            .get(name)
    }
}

impl ParentController {
    /// Whether this sync goes through ControllerRevisions: some child type
    /// rolls, and the parent is alive or still carries our finalizer.
    pub(super) fn uses_revisions(&self, parent: &Value) -> bool {
        self.rolling.is_some()
            && (!object::is_deleting(parent)
                || (self.finalize_hook.is_some()
                    && object::has_finalizer(parent, &self.filter.finalizer)))
    }

    /// Steps 1 to 7 of the [module documentation](self); returns the
    /// aggregated hook response.
    pub(super) async fn sync_revisions(
        &self,
        hook: &ResolvedHook,
        parent: &Arc<Value>,
        observed: &Children<Arc<Value>>,
        related: &Related,
        finalizing: bool,
    ) -> Result<CompositeHookResponse, SyncError> {
        let Some(rolling) = &self.rolling else {
            return Err(SyncError::Invalid("no rolling update state".to_owned()));
        };
        let describe = object::describe(parent);
        let Some(namespace) = object::namespace(parent).filter(|_| self.filter.parent.namespaced)
        else {
            return Err(SyncError::Invalid(format!(
                "can't use rolling update methods with {describe}: ControllerRevisions live in the parent's namespace, so the parent must be namespaced"
            )));
        };

        let claimed = self.claim_revisions(rolling, parent, namespace).await?;
        let latest_patch = revisions::make_patch(parent, &rolling.field_paths)?;
        let mut latest: Option<Revision> = None;
        let mut others: Vec<(Value, Revision)> = Vec::new();
        for obj in &claimed {
            let revision = Revision::from_observed(obj.clone())?;
            if latest.is_none() && object::semantic_eq(revision.parent_patch(), &latest_patch) {
                latest = Some(revision);
                continue;
            }
            let mut hypothetical = (**parent).clone();
            revisions::apply_patch(
                &mut hypothetical,
                revision.parent_patch(),
                &rolling.field_paths,
            )?;
            others.push((hypothetical, revision));
        }
        let latest = match latest {
            Some(revision) => revision,
            None => Revision::new(self.new_revision_object(parent, namespace, latest_patch)?),
        };

        // One hook call per revision, concurrently.
        let parents: Vec<&Value> = std::iter::once(&**parent)
            .chain(others.iter().map(|(p, _)| p))
            .collect();
        let results = futures::future::join_all(
            parents
                .iter()
                .map(|p| self.call_hook(hook, p, observed, related, finalizing)),
        )
        .await;
        let mut responses = Vec::with_capacity(results.len());
        for result in results {
            let mut response =
                result.map_err(|err| err.context(|| format!("syncing {describe}")))?;
            for child in &mut response.children {
                self.default_child_metadata(parent, child);
            }
            responses.push(response);
        }
        let mut responses = responses.into_iter();
        let mut revs = Vec::with_capacity(others.len() + 1);
        revs.push(ParentRevision::new(
            latest,
            responses.next().unwrap_or_default(),
        ));
        for ((_, revision), response) in others.into_iter().zip(responses) {
            revs.push(ParentRevision::new(revision, response));
        }

        let condition = self.roll(rolling, parent, &mut revs, observed);
        if condition.reason == REASON_ROLLOUT_PROGRESSING {
            // The move is normally followed by an event of the child it
            // rewrites; check again anyway in case that write changes nothing
            // (and the parent's own status update is ignored).
            self.queue.add_after(object::key(parent), PROGRESS_RECHECK);
        }

        // Forget revisions that no longer own any child.
        let mut index = 0;
        revs.retain(|pr| {
            index += 1;
            index == 1 || pr.revision.count_children() > 0
        });

        self.manage_revisions(rolling, parent, namespace, &claimed, &revs)
            .await
            .map_err(|err| {
                SyncError::from(err)
                    .context(|| format!("{describe}: can't reconcile ControllerRevisions"))
            })?;

        // Desired children: the latest revision's, except those an old
        // revision still claims.
        let mut overrides: HashMap<(String, String, String), &Value> = HashMap::new();
        for pr in &revs[1..] {
            for ck in &pr.revision.children {
                for name in &ck.names {
                    if let Some(child) = pr.desired(&ck.api_group, &ck.kind, name) {
                        overrides
                            .insert((ck.api_group.clone(), ck.kind.clone(), name.clone()), child);
                    }
                }
            }
        }
        let latest = &revs[0];
        let children = latest
            .response
            .children
            .iter()
            .map(|child| {
                let (group, kind) = group_kind_of(child);
                overrides
                    .get(&(group, kind, object::name(child).to_owned()))
                    .map_or_else(|| child.clone(), |c| (*c).clone())
            })
            .collect();

        let mut status = latest.response.status.clone().unwrap_or_default();
        set_condition(&mut status, condition.to_value()).map_err(|e| {
            SyncError::Invalid(format!(
                "can't set the {UPDATED_CONDITION} condition of {describe}: {e}"
            ))
        })?;
        let resync_after_seconds = revs
            .iter()
            .map(|pr| pr.response.resync_after_seconds)
            .filter(|s| *s > 0.0)
            .fold(
                0.0,
                |min: f64, s| if min == 0.0 || s < min { s } else { min },
            );
        let finalized = revs.iter().all(|pr| pr.response.finalized);
        tracing::debug!(controller = %self.name, parent = %describe, revisions = revs.len(),
            reason = condition.reason, message = %condition.message, "rolling update");
        Ok(CompositeHookResponse {
            status: Some(status),
            children,
            resync_after_seconds,
            finalized,
        })
    }

    /// The namespace and `controller-uid` label the child gets before it is
    /// written (see the sync's desired-children check), so the up-to-date
    /// checks compare like with like.
    fn default_child_metadata(&self, parent: &Value, child: &mut Value) {
        let (group, kind) = group_kind_of(child);
        let namespaced = self
            .children
            .iter()
            .find(|c| c.info.group() == group && c.info.kind() == kind)
            .is_none_or(|c| c.info.namespaced);
        let generate = self.filter.generate_selector;
        let Some(meta) = child.get_mut("metadata").and_then(Value::as_object_mut) else {
            return;
        };
        if namespaced {
            if meta
                .get("namespace")
                .and_then(Value::as_str)
                .is_none_or(str::is_empty)
                && let Some(ns) = object::namespace(parent)
            {
                meta.insert("namespace".into(), json!(ns));
            }
        } else {
            meta.remove("namespace");
        }
        if generate {
            let uid = json!(object::uid(parent));
            match meta.get_mut("labels") {
                None | Some(Value::Null) => {
                    meta.insert(
                        "labels".into(),
                        json!({metacontroller_api::CONTROLLER_UID_LABEL: uid}),
                    );
                }
                Some(Value::Object(labels)) => {
                    labels
                        .entry(metacontroller_api::CONTROLLER_UID_LABEL)
                        .or_insert(uid);
                }
                Some(_) => {}
            }
        }
    }

    /// A new revision object for the parent's current patch.
    fn new_revision_object(
        &self,
        parent: &Value,
        namespace: &str,
        patch: Value,
    ) -> Result<Value, SyncError> {
        let parent_info = &self.filter.parent;
        let mut labels = Map::new();
        if self.filter.generate_selector {
            labels.insert(
                metacontroller_api::CONTROLLER_UID_LABEL.into(),
                json!(object::uid(parent)),
            );
        } else {
            match parent.pointer("/spec/template/metadata/labels") {
                None | Some(Value::Null) => {}
                Some(Value::Object(template)) if template.values().all(Value::is_string) => {
                    labels.extend(template.clone());
                }
                Some(_) => {
                    return Err(SyncError::Invalid(format!(
                        "invalid labels on parent {}: spec.template.metadata.labels must be a map of strings",
                        object::describe(parent)
                    )));
                }
            }
            if let Some(Value::Object(match_labels)) = parent.pointer("/spec/selector/matchLabels")
            {
                for (k, v) in match_labels {
                    if v.is_string() {
                        labels.insert(k.clone(), v.clone());
                    }
                }
            }
        }
        labels.insert(REVISION_API_GROUP_LABEL.into(), json!(parent_info.group()));
        labels.insert(REVISION_RESOURCE_LABEL.into(), json!(parent_info.plural()));
        let name = revisions::revision_name(
            parent_info.plural(),
            parent_info.group(),
            object::uid(parent),
            &patch,
        );
        Ok(json!({
            "apiVersion": metacontroller_api::API_VERSION,
            "kind": "ControllerRevision",
            "metadata": {
                "name": name,
                "namespace": namespace,
                "labels": labels,
                "ownerReferences": [make_controller_ref(parent)],
            },
            "parentPatch": patch,
        }))
    }

    /// Step 1: the revisions this parent owns, adopting and releasing as
    /// needed.
    async fn claim_revisions(
        &self,
        rolling: &Rolling,
        parent: &Arc<Value>,
        namespace: &str,
    ) -> Result<Vec<Arc<Value>>, SyncError> {
        let label = |key: &str, value: &str| {
            Requirement::new(key, Operator::Equals, vec![value.to_owned()]).map_err(|source| {
                SyncError::Selector {
                    what: "can't make ControllerRevision selector".into(),
                    source,
                }
            })
        };
        let selector = self
            .filter
            .child_selector(parent)?
            .with(label(REVISION_API_GROUP_LABEL, self.filter.parent.group())?)
            .with(label(REVISION_RESOURCE_LABEL, self.filter.parent.plural())?);
        let mut candidates = rolling.store.list(namespace);
        candidates.sort_by(|a, b| object::name(a).cmp(object::name(b)));
        let target = RevisionClaim {
            ctx_client: &self.ctx.client,
            rolling,
        };
        Claim::new(parent, self.parent_api(parent))
            .claim(&target, candidates, &selector)
            .await
            .map_err(|source| SyncError::Claim {
                what: "can't claim ControllerRevisions".into(),
                source,
            })
    }

    /// Whether writing `desired` would leave `child` as it is.
    fn up_to_date(
        &self,
        parent: &Value,
        child: &Value,
        desired: &Value,
    ) -> Result<bool, DynamicApplyError> {
        self.ctx.apply.is_up_to_date(parent, child, desired)
    }

    /// The observed child of group/kind named `name`.
    fn observed_child<'a>(
        &self,
        observed: &'a Children<Arc<Value>>,
        parent: &Value,
        group: &str,
        kind: &str,
        name: &str,
    ) -> Option<&'a Arc<Value>> {
        let key = object::key_of(object::namespace(parent), name);
        observed
            .values()
            .filter(|g| g.resource.group() == group && g.resource.kind() == kind)
            .find_map(|g| g.objects.get(&key))
    }

    /// Steps 4 and 5: moves claims; returns the `Updated` condition.
    fn roll(
        &self,
        rolling: &Rolling,
        parent: &Value,
        revs: &mut [ParentRevision],
        observed: &Children<Arc<Value>>,
    ) -> Condition {
        // Clean the claims; remember who claims what (index into `revs`).
        let mut claims: HashMap<GroupKind, HashMap<String, usize>> = HashMap::new();
        let wanted: HashSet<(String, String, String)> = revs[0]
            .desired
            .iter()
            .flat_map(|((g, k), objects)| {
                objects
                    .keys()
                    .map(move |name| (g.clone(), k.clone(), name.clone()))
            })
            .collect();
        for (index, pr) in revs.iter_mut().enumerate() {
            let mut kept: Vec<ControllerRevisionChildren> = Vec::new();
            for ck in &pr.revision.children {
                if !rolling.is_rolling(&ck.api_group, &ck.kind) {
                    continue;
                }
                let gk = (ck.api_group.clone(), ck.kind.clone());
                let by_name = claims.entry(gk).or_default();
                let mut names = Vec::new();
                for name in &ck.names {
                    let key = (ck.api_group.clone(), ck.kind.clone(), name.clone());
                    if !wanted.contains(&key) || by_name.contains_key(name) {
                        continue;
                    }
                    by_name.insert(name.clone(), index);
                    names.push(name.clone());
                }
                if !names.is_empty() {
                    kept.push(ControllerRevisionChildren {
                        api_group: ck.api_group.clone(),
                        kind: ck.kind.clone(),
                        names,
                    });
                }
            }
            pr.revision.children = kept;
        }

        // The latest revision's children, in hook order, without repeats.
        let mut order: Vec<(String, String, String)> = Vec::new();
        let mut seen = HashSet::new();
        for child in &revs[0].response.children {
            if !child.is_object() {
                continue;
            }
            let (group, kind) = group_kind_of(child);
            let key = (group, kind, object::name(child).to_owned());
            if rolling.is_rolling(&key.0, &key.1) && seen.insert(key.clone()) {
                order.push(key);
            }
        }

        // Unclaimed children go to the latest revision, and so do children
        // that already match what it wants.
        for (group, kind, name) in &order {
            let owner = claims
                .get(&(group.clone(), kind.clone()))
                .and_then(|m| m.get(name))
                .copied();
            let movable = match owner {
                None => true,
                Some(0) => false,
                Some(_) => {
                    let current = self.observed_child(observed, parent, group, kind, name);
                    let desired = revs[0].desired(group, kind, name);
                    match (current, desired) {
                        (Some(current), Some(desired)) => {
                            matches!(self.up_to_date(parent, current, desired), Ok(true))
                        }
                        _ => false,
                    }
                }
            };
            if movable {
                if let Some(i) = owner {
                    revs[i].revision.remove_child(group, kind, name);
                }
                revs[0].revision.add_child(group, kind, name);
                claims
                    .entry((group.clone(), kind.clone()))
                    .or_default()
                    .insert(name.clone(), 0);
            }
        }

        // Move the first child not on the latest revision, if the ones
        // already there are happy.
        for (group, kind, name) in &order {
            let owner = claims
                .get(&(group.clone(), kind.clone()))
                .and_then(|m| m.get(name))
                .copied();
            if owner == Some(0) {
                continue;
            }
            if let Some(message) = self.awaited(rolling, parent, &revs[0], observed) {
                return Condition {
                    status: "False",
                    reason: REASON_ROLLOUT_WAITING,
                    message,
                };
            }
            revs[0].revision.add_child(group, kind, name);
            for pr in revs[1..].iter_mut() {
                pr.revision.remove_child(group, kind, name);
            }
            return Condition {
                status: "False",
                reason: REASON_ROLLOUT_PROGRESSING,
                message: format!("updating {kind} {name}"),
            };
        }
        Condition {
            status: "True",
            reason: REASON_ON_LATEST_REVISION,
            message: format!("latest ControllerRevision: {}", revs[0].revision.name()),
        }
    }

    /// What the rollout waits for before it moves another child: a child on
    /// the latest revision that is not observed, up to date or healthy.
    fn awaited(
        &self,
        rolling: &Rolling,
        parent: &Value,
        latest: &ParentRevision,
        observed: &Children<Arc<Value>>,
    ) -> Option<String> {
        for ck in &latest.revision.children {
            let Some(strategy) = rolling
                .strategy(&ck.api_group, &ck.kind)
                .filter(|s| s.method.is_rolling())
            else {
                continue;
            };
            let kind = &ck.kind;
            for name in &ck.names {
                let Some(child) = self.observed_child(observed, parent, &ck.api_group, kind, name)
                else {
                    return Some(format!("missing child {kind} {name}"));
                };
                let Some(desired) = latest.desired(&ck.api_group, kind, name) else {
                    continue;
                };
                match self.up_to_date(parent, child, desired) {
                    Ok(true) => {}
                    Ok(false) => return Some(format!("child {kind} {name} is not updated yet")),
                    Err(err) => {
                        return Some(format!(
                            "can't check if child {kind} {name} is updated: {err}"
                        ));
                    }
                }
                if strategy.method == ChildUpdateMethod::RollingInPlace {
                    let observed_generation = child
                        .pointer("/status/observedGeneration")
                        .and_then(Value::as_i64)
                        .unwrap_or(0);
                    if observed_generation > 0 && observed_generation < object::generation(child) {
                        return Some(format!(
                            "child {kind} {name} with RollingInPlace update strategy hasn't observed latest spec"
                        ));
                    }
                }
                if let Some(err) = failed_check(&strategy.checks, child) {
                    return Some(format!("child {kind} {name} failed status check: {err}"));
                }
            }
        }
        None
    }

    /// Step 6: deletes, creates and updates revision objects.
    async fn manage_revisions(
        &self,
        rolling: &Rolling,
        parent: &Value,
        namespace: &str,
        observed: &[Arc<Value>],
        desired: &[ParentRevision],
    ) -> Result<(), RevisionError> {
        let api = dynapi::api(&self.ctx.client, &rolling.info, Some(namespace));
        let describe = object::describe(parent);
        let wanted: HashSet<&str> = desired.iter().map(|pr| pr.revision.name()).collect();
        for rev in observed {
            let name = object::name(rev);
            if wanted.contains(name) {
                continue;
            }
            tracing::info!(parent = %describe, revision = %name, "deleting ControllerRevision");
            match dynapi::delete_background(&api, name, object::uid(rev)).await {
                Ok(()) => rolling.store.deleted(rev),
                Err(err) if err.is_not_found() => rolling.store.deleted(rev),
                Err(source) => {
                    return Err(RevisionError::Request {
                        action: "delete",
                        name: name.to_owned(),
                        parent: describe,
                        source: Box::new(source),
                    });
                }
            }
        }
        for pr in desired {
            let obj = pr.revision.to_object();
            let name = pr.revision.name();
            match &pr.revision.observed {
                Some(current) => {
                    if object::semantic_eq(current, &obj) {
                        continue;
                    }
                    let updated = dynapi::replace(&api, obj).await.map_err(|source| {
                        RevisionError::Request {
                            action: "update",
                            name: name.to_owned(),
                            parent: describe.clone(),
                            source: Box::new(source),
                        }
                    })?;
                    tracing::info!(parent = %describe, revision = %name,
                        resource_version = %object::resource_version(&updated), "ControllerRevision updated");
                    rolling.store.written(updated);
                }
                None => {
                    tracing::info!(parent = %describe, revision = %name, "creating ControllerRevision");
                    match dynapi::create(&api, obj.clone()).await {
                        Ok(created) => {
                            rolling.store.written(created);
                        }
                        Err(err) if err.is_already_exists() => {
                            self.take_over_revision(rolling, &api, parent, obj).await?;
                        }
                        Err(source) => {
                            return Err(RevisionError::Request {
                                action: "create",
                                name: name.to_owned(),
                                parent: describe,
                                source: Box::new(source),
                            });
                        }
                    }
                }
            }
        }
        Ok(())
    }

    /// A revision we meant to create exists already (our earlier write not
    /// yet cached, or a revision we lost): make the live one ours.
    async fn take_over_revision(
        &self,
        rolling: &Rolling,
        api: &Api<RawObject>,
        parent: &Value,
        wanted: Value,
    ) -> Result<(), RevisionError> {
        let name = object::name(&wanted).to_owned();
        let describe = object::describe(parent);
        let request_error = |action, source| RevisionError::Request {
            action,
            name: name.clone(),
            parent: describe.clone(),
            source: Box::new(source),
        };
        let live = dynapi::get(api, &name)
            .await
            .map_err(|source| request_error("get", source))?;
        if let Some(uid) = controller_uid(&live)
            && uid != object::uid(parent)
        {
            return Err(RevisionError::Controlled {
                name: name.clone(),
                parent: describe.clone(),
                uid: uid.to_owned(),
            });
        }
        let mut updated = live.clone();
        if let (Some(meta), Some(labels)) = (
            object::metadata_mut(&mut updated),
            wanted
                .pointer("/metadata/labels")
                .and_then(Value::as_object),
        ) {
            let target = meta
                .entry("labels")
                .or_insert_with(|| Value::Object(Map::new()));
            if !target.is_object() {
                *target = Value::Object(Map::new());
            }
            if let Value::Object(target) = target {
                target.extend(labels.clone());
            }
        }
        add_owner_reference(&mut updated, make_controller_ref(parent));
        if let Value::Object(root) = &mut updated {
            for field in ["parentPatch", "children"] {
                match wanted.get(field) {
                    Some(v) => root.insert(field.into(), v.clone()),
                    None => root.remove(field),
                };
            }
        }
        tracing::info!(parent = %describe, revision = %name, "taking over existing ControllerRevision");
        let stored = dynapi::replace(api, updated)
            .await
            .map_err(|source| request_error("update", source))?;
        rolling.store.written(stored);
        Ok(())
    }
}
