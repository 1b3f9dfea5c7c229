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
//! The steps that need no API server (2 to 5, the pruning of 6, and 7) are
//! in [`super::rollstep`], which offline rendering uses as well.
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

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use kube::Api;
use metacontroller_api::constants::{REASON_ROLLOUT_PROGRESSING, UPDATED_CONDITION};
use metacontroller_api::hook_wire::CompositeHookResponse;
use metacontroller_api::{REVISION_API_GROUP_LABEL, REVISION_RESOURCE_LABEL};
use metacontroller_apply::owner::{add_owner_reference, controller_uid, make_controller_ref};
use metacontroller_selectors::{Operator, Requirement};
use serde_json::{Map, Value};

use crate::children::Children;
use crate::customize::Related;
use crate::dynapi;
use crate::hook_target::ResolvedHook;
use crate::hosted::{Claim, Claimable, SyncError};
use crate::object::{self, RawObject};

use super::controller::ParentController;
use super::revisions::{Revision, RevisionError};
use super::rollout::Rolling;
use super::rollstep::{self, ParentRevision, RollStep};

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
        let rollstep::Split {
            latest,
            latest_patch,
            others,
        } = rollstep::split(parent, &claimed, &rolling.field_paths)?;
        let latest = match latest {
            Some(revision) => revision,
            None => Revision::new(
                rollstep::new_revision_object(
                    &self.filter.parent,
                    self.filter.generate_selector,
                    parent,
                    namespace,
                    latest_patch,
                )
                .map_err(|e| SyncError::Invalid(e.to_string()))?,
            ),
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

        let condition = RollStep {
            strategies: &rolling.strategies,
            apply: &self.ctx.apply,
            parent,
            observed,
        }
        .roll(&mut revs);
        if condition.reason == REASON_ROLLOUT_PROGRESSING {
            // The move is normally followed by an event of the child it
            // rewrites; check again anyway in case that write changes nothing
            // (and the parent's own status update is ignored).
            self.queue.add_after(object::key(parent), PROGRESS_RECHECK);
        }
        rollstep::prune(&mut revs);

        self.manage_revisions(rolling, parent, namespace, &claimed, &revs)
            .await
            .map_err(|err| {
                SyncError::from(err)
                    .context(|| format!("{describe}: can't reconcile ControllerRevisions"))
            })?;

        let response = rollstep::outcome(&revs, &condition).map_err(|e| {
            SyncError::Invalid(format!(
                "can't set the {UPDATED_CONDITION} condition of {describe}: {e}"
            ))
        })?;
        tracing::debug!(controller = %self.name, parent = %describe, revisions = revs.len(),
            reason = condition.reason, message = %condition.message, "rolling update");
        Ok(response)
    }

    /// The namespace and `controller-uid` label the child gets before it is
    /// written, as [`rollstep::default_child_metadata`].
    fn default_child_metadata(&self, parent: &Value, child: &mut Value) {
        rollstep::default_declared_child_metadata(
            self.children.iter().map(|c| &c.info),
            parent,
            child,
            self.filter.generate_selector,
        );
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
