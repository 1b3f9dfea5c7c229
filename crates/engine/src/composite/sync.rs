//! The sync of one CompositeController parent.
//!
//! 1. Take the parent from the cache (gone: nothing to do).
//! 2. Skip it unless it matches `parentResource.labelSelector` or carries our
//!    finalizer; put it off while children the last sync created are not
//!    all in the cache yet (see [`crate::hosted::expectations`];
//!    Metacontroller does not wait).
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

use std::sync::Arc;

use kube::{Api, Client};
use metacontroller_selectors::Selector;
use serde_json::{Map, Value};

use crate::aggregate::Aggregate;
use crate::children::{self, ChildError, ChildGroup, Children};
use crate::discovery::ResourceInfo;
use crate::dynapi;
use crate::hosted::exchange::pick;
use crate::hosted::{Claim, Claimable, SyncError, desired, report, resync_after};
use crate::object::{self, RawObject};

use super::controller::ParentController;
use super::prepare::prepare_child;

/// Children of one type, as [`Claim`] writes them.
struct ChildClaim<'a> {
    client: &'a Client,
    info: &'a ResourceInfo,
}

impl Claimable for ChildClaim<'_> {
    fn api(&self, obj: &Value) -> Api<RawObject> {
        dynapi::api(self.client, self.info, object::namespace(obj))
    }

    fn adopted(&self, cached: Arc<Value>, _written: Value) -> Arc<Value> {
        cached
    }
}

impl ParentController {
    /// Syncs the parent with key `key`.
    pub(crate) async fn sync(&self, key: &str) -> Result<(), SyncError> {
        let Some(parent) = self.parent_informer.get(key) else {
            tracing::debug!(controller = %self.name, parent = %key, "parent is gone");
            self.customize.forget(key);
            return Ok(());
        };
        if self.filter.wants(&parent) && self.held_back(&parent) {
            // Not a sync: nothing to report, no back-off to reset.
            return Err(SyncError::Deferred);
        }
        tracing::debug!(controller = %self.name, parent = %key, "sync");
        let result = self.sync_parent(parent.clone()).await;
        report(&self.ctx, &parent, result)
    }

    async fn sync_parent(&self, parent: Arc<Value>) -> Result<(), SyncError> {
        let filter = &self.filter;
        if !filter.wants(&parent) {
            return Ok(());
        }
        let api = self.parent_api(&parent);
        let Some(mut parent) = self.finalizer.sync(&api, parent).await? else {
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

        let selected = filter.selected(&parent);
        let (hook, finalizing) = pick(
            self.sync_hook.as_ref(),
            self.finalize_hook.as_ref(),
            &parent,
            selected,
        );
        let Some(hook) = hook else {
            return Err(SyncError::Invalid(format!(
                "sync hook nil//not defined for {}",
                object::describe(&parent)
            )));
        };
        let response = if self.uses_revisions(&parent) {
            self.sync_revisions(hook, &parent, &observed, &related, finalizing)
                .await?
        } else {
            self.call_hook(hook, &parent, &observed, &related, finalizing)
                .await
                .map_err(|err| err.context(|| format!("syncing {}", object::describe(&parent))))?
        };

        if let Some(delay) = resync_after(response.resync_after_seconds) {
            self.queue.add_after(object::key(&parent), delay);
        }

        if response.finalized && self.finalizer.is_on(&parent) {
            match self.finalizer.update(&api, &parent, false).await {
                Ok(Some(updated)) => parent = updated,
                Ok(None) => return Ok(()),
                Err(source) => {
                    return Err(SyncError::Request {
                        what: format!("can't remove finalizer for {}", object::describe(&parent)),
                        source,
                    });
                }
            }
        }

        let mut manage_errors = Vec::new();
        let desired = self
            .desired_children(&parent, &selector, response.children, &mut manage_errors)
            .await?;

        let deleting = object::is_deleting(&parent);
        if (!deleting || self.finalizer.manages_while_deleting(&parent))
            && let Err(err) = children::manage_children(
                &self.ctx.client,
                &self.ctx.apply,
                &parent,
                &observed,
                &desired,
                Some(&self.filter.expectations),
            )
            .await
        {
            manage_errors.extend(err.0);
        }

        self.update_status(&parent, response.status).await?;

        match Aggregate::of(manage_errors) {
            None => Ok(()),
            Some(source) => Err(SyncError::Children {
                what: format!("can't reconcile children for {}", object::describe(&parent)),
                source,
            }),
        }
    }

    /// Whether the parent's sync waits for the children the last one created
    /// to appear in the cache (see [`crate::hosted::expectations`]). The
    /// last one's event queues the parent; should they not all come, a timer
    /// queues it when the wait times out.
    fn held_back(&self, parent: &Value) -> bool {
        let uid = object::uid(parent);
        let expectations = &self.filter.expectations;
        let Some(wait) = expectations.pending(uid) else {
            return false;
        };
        tracing::debug!(controller = %self.name, parent = %object::key(parent), ?wait, "waiting to see the children the last sync created");
        if let Some(deadline) = expectations.hold(uid) {
            let filter = self.filter.clone();
            let (uid, key) = (uid.to_owned(), object::key(parent));
            tokio::spawn(async move {
                tokio::time::sleep_until(deadline).await;
                if filter.expectations.expired(&uid, deadline) {
                    filter.queue.add(key);
                }
            });
        }
        true
    }

    /// Step 4: the children of every declared type this parent claims.
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
        let mut claim = Claim::new(parent, self.parent_api(parent));
        let mut claimed_all = Children::new();
        for child in &self.children {
            let mut candidates = child.informer.list_owned(object::uid(parent), namespace);
            // Only orphans the selector matches are decoded.
            candidates.extend(
                child
                    .informer
                    .select_orphans(namespace, |m| selector.matches(&m.labels)),
            );
            let target = ChildClaim {
                client: &self.ctx.client,
                info: &child.info,
            };
            let claimed = claim
                .claim(&target, candidates, selector)
                .await
                .map_err(|source| SyncError::Claim {
                    what: format!("can't claim {} children", child.info.kind()),
                    source,
                })?;
            claimed_all.insert(
                child.type_key.clone(),
                ChildGroup {
                    resource: child.info.clone(),
                    method: child.method,
                    objects: claimed
                        .into_iter()
                        .map(|obj| (object::key(&obj), obj))
                        .collect(),
                },
            );
        }
        Ok(claimed_all)
    }

    /// Checks and groups the hook's children (see [`desired::group`]): each
    /// gets the `controller-uid` label with `generateSelector` and must
    /// match the parent's selector, or the sync fails.
    async fn desired_children(
        &self,
        parent: &Value,
        selector: &Selector,
        desired: Vec<Value>,
        manage_errors: &mut Vec<ChildError>,
    ) -> Result<Children<Value>, SyncError> {
        let generate = self.filter.generate_selector;
        let prepare = |child: &mut Value| prepare_child(child, parent, generate, selector);
        let rules = self.children.iter().map(|c| (&c.info, c.method));
        desired::group(
            &self.ctx.resources,
            rules,
            parent,
            desired,
            "child",
            prepare,
            manage_errors,
        )
        .await
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
            Err(source) if source.is_conflict() => Err(SyncError::Conflict {
                what: format!("status of {} not written", object::describe(parent)),
                source,
            }),
            Err(source) => Err(SyncError::Request {
                what: format!("can't update status for {}", object::describe(parent)),
                source,
            }),
        }
    }
}
