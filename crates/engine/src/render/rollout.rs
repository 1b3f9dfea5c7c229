//! One rollout step of a CompositeController whose child types include a
//! rolling update method (`RollingRecreate`, `RollingInPlace`), offline:
//! the ControllerRevisions the parent claims among the input objects, the
//! parents the hook is asked about (the parent and one hypothetical parent
//! per older revision), and, given the hook's answers, the claims moved,
//! the `Updated` condition, the revisions written and the aggregated
//! answer, all decided by the engine's own rollout code
//! ([`crate::composite::rollstep`]).

use std::sync::Arc;

use metacontroller_api::hook_wire::CompositeHookResponse;
use metacontroller_api::{REVISION_API_GROUP_LABEL, REVISION_RESOURCE_LABEL};
use metacontroller_apply::owner::{claim_ownership, controller_uid};
use metacontroller_selectors::{Operator, Requirement, Selector};
use serde_json::Value;

use super::{CompositeRender, RenderError};
use crate::children::Children;
use crate::composite::revisions::{self, Revision};
use crate::composite::rollstep::{self, ParentRevision, RollStep};
use crate::object;
use crate::ssa::ApplyOptions;

/// The revisions of one parent before the hook calls.
pub struct Revisions {
    claimed: Vec<Arc<Value>>,
    /// Names of the orphans the sync adopts.
    adopted: Vec<String>,
    latest: Revision,
    others: Vec<(Value, Revision)>,
}

impl Revisions {
    /// The parents to call the hook with, in order: the parent itself (the
    /// latest revision), then one per older revision (the parent with that
    /// revision's patch applied).
    pub fn parents<'a>(&'a self, parent: &'a Value) -> Vec<&'a Value> {
        std::iter::once(parent)
            .chain(self.others.iter().map(|(p, _)| p))
            .collect()
    }
}

/// What is done to one ControllerRevision.
#[derive(Clone, Debug, PartialEq)]
pub enum RevisionAction {
    /// Created as [`RevisionStep::object`].
    Create,
    /// Replaced by [`RevisionStep::object`].
    Update,
    /// Adopted (our controller reference added) and left as it is.
    Adopt,
    /// Deleted: it no longer claims any child.
    Delete,
    /// Left as it is.
    Unchanged,
}

impl RevisionAction {
    /// Whether the action writes.
    pub fn writes(&self) -> bool {
        !matches!(self, RevisionAction::Unchanged)
    }

    /// `create`, `update`, `adopt`, `delete` or `unchanged`.
    pub fn as_str(&self) -> &'static str {
        match self {
            RevisionAction::Create => "create",
            RevisionAction::Update => "update",
            RevisionAction::Adopt => "adopt",
            RevisionAction::Delete => "delete",
            RevisionAction::Unchanged => "unchanged",
        }
    }
}

/// One revision's step.
#[derive(Clone, Debug)]
pub struct RevisionStep {
    /// The revision's name.
    pub name: String,
    /// Whether it is the latest revision (the parent's current patch).
    pub latest: bool,
    /// What happens to it.
    pub action: RevisionAction,
    /// The revision as observed (with the controller reference an adoption
    /// adds).
    pub observed: Option<Value>,
    /// The revision as written or kept; `None` when deleted.
    pub object: Option<Value>,
}

/// One rollout step.
#[derive(Clone, Debug)]
pub struct Rollout {
    /// The aggregated answer: the latest revision's children, those an
    /// older revision still claims in that revision's desired state, the
    /// latest status with the `Updated` condition.
    pub answer: CompositeHookResponse,
    /// The `Updated` condition.
    pub condition: Value,
    /// What happens to each revision, deletes first, then the latest
    /// revision, then the others in claim order.
    pub revisions: Vec<RevisionStep>,
}

impl CompositeRender {
    /// Whether the sync of `parent` goes through ControllerRevisions: some
    /// child type rolls, and the parent is alive or still carries the
    /// controller's finalizer.
    pub fn uses_revisions(&self, parent: &Value) -> bool {
        self.strategies.any_rolling()
            && (!object::is_deleting(parent)
                || (self.finalizer.enabled && object::has_finalizer(parent, &self.finalizer.name)))
    }

    /// The ControllerRevisions among `objects` that `parent` claims (ours
    /// and matching the child selector and the revision labels, or matching
    /// orphans, which the sync adopts), sorted out into the latest one (made
    /// when none has the parent's current patch) and the others.
    pub fn revisions(
        &self,
        parent: &Value,
        selector: &Selector,
        objects: &[Value],
    ) -> Result<Revisions, RenderError> {
        let namespace = object::namespace(parent)
            .filter(|_| self.parent.namespaced)
            .ok_or_else(|| {
                RenderError::Sync(format!(
                    "can't use rolling update methods with {}: ControllerRevisions live in the parent's namespace, so the parent must be namespaced",
                    object::describe(parent)
                ))
            })?;
        let label = |key: &str, value: &str| {
            Requirement::new(key, Operator::Equals, vec![value.to_owned()]).map_err(|e| {
                RenderError::Sync(format!("can't make ControllerRevision selector: {e}"))
            })
        };
        let selector = selector
            .clone()
            .with(label(REVISION_API_GROUP_LABEL, self.parent.group())?)
            .with(label(REVISION_RESOURCE_LABEL, self.parent.plural())?);
        let info = revisions::resource();
        let mut candidates: Vec<&Value> = objects
            .iter()
            .filter(|o| {
                object::kind(o) == info.kind()
                    && object::api_version(o) == info.api_version()
                    && object::namespace(o) == Some(namespace)
            })
            .collect();
        candidates.sort_by(|a, b| object::name(a).cmp(object::name(b)));
        let deleting = object::is_deleting(parent);
        let mut claimed = Vec::new();
        let mut adopted = Vec::new();
        for obj in candidates {
            let matches = selector.matches_object_labels(obj);
            match controller_uid(obj) {
                Some(uid) if uid != object::uid(parent) => {}
                Some(_) if matches => claimed.push(Arc::new(obj.clone())),
                Some(_) => {}
                None => {
                    if deleting || !matches || object::is_deleting(obj) {
                        continue;
                    }
                    let mut obj = obj.clone();
                    claim_ownership(&mut obj, parent);
                    adopted.push(object::name(&obj).to_owned());
                    claimed.push(Arc::new(obj));
                }
            }
        }
        let split = rollstep::split(parent, &claimed, &self.field_paths())
            .map_err(|e| RenderError::Sync(e.to_string()))?;
        let latest = match split.latest {
            Some(revision) => revision,
            None => Revision::new(
                rollstep::new_revision_object(
                    &self.parent,
                    self.controller.spec.generates_selector(),
                    parent,
                    namespace,
                    split.latest_patch,
                )
                .map_err(|e| RenderError::Sync(e.to_string()))?,
            ),
        };
        Ok(Revisions {
            claimed,
            adopted,
            latest,
            others: split.others,
        })
    }

    fn field_paths(&self) -> Vec<String> {
        self.controller.spec.parent_resource.revision_field_paths()
    }

    /// The rollout step for `parent`, its `revisions`, the hook's
    /// `answers` (one per parent of [`Revisions::parents`], in order) and
    /// its `observed` children, when children are written with `apply`.
    pub fn roll(
        &self,
        parent: &Value,
        revisions: Revisions,
        answers: Vec<CompositeHookResponse>,
        observed: &Children<Arc<Value>>,
        apply: &ApplyOptions,
    ) -> Result<Rollout, RenderError> {
        let generate = self.controller.spec.generates_selector();
        let mut answers = answers.into_iter().map(|mut answer| {
            for child in &mut answer.children {
                rollstep::default_declared_child_metadata(
                    self.children.iter().map(|c| &c.info),
                    parent,
                    child,
                    generate,
                );
            }
            answer
        });
        let mut revs = Vec::with_capacity(revisions.others.len() + 1);
        revs.push(ParentRevision::new(
            revisions.latest,
            answers.next().unwrap_or_default(),
        ));
        for (_, revision) in revisions.others {
            revs.push(ParentRevision::new(
                revision,
                answers.next().unwrap_or_default(),
            ));
        }
        let condition = RollStep {
            strategies: &self.strategies,
            apply,
            parent,
            observed,
        }
        .roll(&mut revs);
        rollstep::prune(&mut revs);
        let answer = rollstep::outcome(&revs, &condition).map_err(|e| {
            RenderError::Sync(format!(
                "can't set the Updated condition of {}: {e}",
                object::describe(parent)
            ))
        })?;

        // The writes, as the engine's step 6 makes them.
        let mut steps = Vec::new();
        for obj in &revisions.claimed {
            let name = object::name(obj);
            if revs.iter().any(|pr| pr.revision.name() == name) {
                continue;
            }
            steps.push(RevisionStep {
                name: name.to_owned(),
                latest: false,
                action: RevisionAction::Delete,
                observed: Some((**obj).clone()),
                object: None,
            });
        }
        for (index, pr) in revs.iter().enumerate() {
            let obj = pr.revision.to_object();
            let name = pr.revision.name().to_owned();
            let (action, observed) = match &pr.revision.observed {
                None => (RevisionAction::Create, None),
                Some(current) => {
                    let action = if !object::semantic_eq(current, &obj) {
                        RevisionAction::Update
                    } else if revisions.adopted.contains(&name) {
                        RevisionAction::Adopt
                    } else {
                        RevisionAction::Unchanged
                    };
                    (action, Some((**current).clone()))
                }
            };
            steps.push(RevisionStep {
                name,
                latest: index == 0,
                action,
                observed,
                object: Some(obj),
            });
        }
        Ok(Rollout {
            answer,
            condition: condition.to_value(),
            revisions: steps,
        })
    }
}
