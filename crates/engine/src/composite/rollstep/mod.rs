//! The decisions of one rollout step that need no API server, shared by the
//! engine's sync ([`super::rolling`]) and offline rendering
//! ([`crate::render`]) so that the two cannot drift: which claimed revision
//! is the latest and which hypothetical parents the hook is asked about
//! (step 2 of [`super::rolling`]), the hook's children defaulted as they
//! are before they are written, the claims moved and the `Updated`
//! condition (steps 4 and 5), the revisions kept (step 6) and the
//! aggregated answer (step 7).

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use metacontroller_api::constants::{
    REASON_ON_LATEST_REVISION, REASON_ROLLOUT_PROGRESSING, REASON_ROLLOUT_WAITING,
};
use metacontroller_api::hook_wire::{CompositeHookResponse, split_api_version};
use metacontroller_api::{
    ChildUpdateMethod, ControllerRevisionChildren, REVISION_API_GROUP_LABEL,
    REVISION_RESOURCE_LABEL,
};
use metacontroller_apply::DynamicApplyError;
use metacontroller_apply::owner::make_controller_ref;
use serde_json::{Map, Value, json};

use crate::children::Children;
use crate::discovery::ResourceInfo;
use crate::object;
use crate::ssa::ApplyOptions;

use super::revisions::{self, Revision, RevisionError};
use super::rollout::{
    Condition, ConditionsNotAList, GroupKind, Strategies, failed_check, set_condition,
};

/// One revision with the hook's answer for its (hypothetical) parent.
pub(crate) struct ParentRevision {
    /// The revision and its claims.
    pub revision: Revision,
    /// The hook's answer for its parent.
    pub response: CompositeHookResponse,
    /// Desired children by group/kind and name (children of a namespaced
    /// parent live in its namespace, so the name is enough).
    desired: HashMap<GroupKind, HashMap<String, Value>>,
}

/// `(API group, kind)` of an object.
pub(crate) fn group_kind_of(child: &Value) -> GroupKind {
    (
        split_api_version(object::api_version(child)).0.to_owned(),
        object::kind(child).to_owned(),
    )
}

impl ParentRevision {
    pub(crate) fn new(revision: Revision, response: CompositeHookResponse) -> Self {
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

/// The claimed revisions of a parent, sorted out (step 2).
pub(crate) struct Split {
    /// The revision whose `parentPatch` is the parent's current one, if any.
    pub latest: Option<Revision>,
    /// The parent's current patch.
    pub latest_patch: Value,
    /// Every other revision, with its hypothetical parent.
    pub others: Vec<(Value, Revision)>,
}

/// Sorts `claimed` (in claim order) into the latest revision and the
/// others, each with the parent its patch describes.
pub(crate) fn split(
    parent: &Value,
    claimed: &[Arc<Value>],
    field_paths: &[String],
) -> Result<Split, RevisionError> {
    let latest_patch = revisions::make_patch(parent, field_paths)?;
    let mut latest: Option<Revision> = None;
    let mut others: Vec<(Value, Revision)> = Vec::new();
    for obj in claimed {
        let revision = Revision::from_observed(obj.clone())?;
        if latest.is_none() && object::semantic_eq(revision.parent_patch(), &latest_patch) {
            latest = Some(revision);
            continue;
        }
        let mut hypothetical = parent.clone();
        revisions::apply_patch(&mut hypothetical, revision.parent_patch(), field_paths)?;
        others.push((hypothetical, revision));
    }
    Ok(Split {
        latest,
        latest_patch,
        others,
    })
}

/// [`default_child_metadata`] for a child of one of the declared child
/// types (a child of an undeclared type counts as namespaced; the sync
/// refuses it later).
pub(crate) fn default_declared_child_metadata<'a>(
    declared: impl IntoIterator<Item = &'a ResourceInfo>,
    parent: &Value,
    child: &mut Value,
    generate_selector: bool,
) {
    let (group, kind) = group_kind_of(child);
    let namespaced = declared
        .into_iter()
        .find(|info| info.group() == group && info.kind() == kind)
        .is_none_or(|info| info.namespaced);
    default_child_metadata(parent, child, namespaced, generate_selector);
}

/// The namespace and `controller-uid` label a hook's child gets before it
/// is written (see the sync's desired-children check), so the up-to-date
/// checks compare like with like; `namespaced` tells the child's scope.
pub(crate) fn default_child_metadata(
    parent: &Value,
    child: &mut Value,
    namespaced: bool,
    generate_selector: bool,
) {
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
    if generate_selector {
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

/// A new revision object of `parent` (of type `parent_info`) for its
/// current `patch`; fails when the parent's template labels are not a map
/// of strings.
pub(crate) fn new_revision_object(
    parent_info: &ResourceInfo,
    generate_selector: bool,
    parent: &Value,
    namespace: &str,
    patch: Value,
) -> Result<Value, RevisionError> {
    let mut labels = Map::new();
    if generate_selector {
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
                return Err(RevisionError::InvalidTemplateLabels(object::describe(
                    parent,
                )));
            }
        }
        if let Some(Value::Object(match_labels)) = parent.pointer("/spec/selector/matchLabels") {
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

/// What a rollout step looks at: the child types' strategies, how children
/// are written, the parent and its observed children.
pub(crate) struct RollStep<'a> {
    /// Update strategies by child group and kind.
    pub strategies: &'a Strategies,
    /// How children are written (for the up-to-date check).
    pub apply: &'a ApplyOptions,
    /// The parent.
    pub parent: &'a Value,
    /// Its observed children.
    pub observed: &'a Children<Arc<Value>>,
}

/// A child: group, kind, name.
type ChildKey = (String, String, String);

impl RollStep<'_> {
    /// Whether writing `desired` would leave `child` as it is.
    fn up_to_date(&self, child: &Value, desired: &Value) -> Result<bool, DynamicApplyError> {
        self.apply.is_up_to_date(self.parent, child, desired)
    }

    /// The observed child of group/kind named `name`.
    fn observed_child(&self, group: &str, kind: &str, name: &str) -> Option<&Arc<Value>> {
        let key = object::key_of(object::namespace(self.parent), name);
        self.observed
            .values()
            .filter(|g| g.resource.group() == group && g.resource.kind() == kind)
            .find_map(|g| g.objects.get(&key))
    }

    /// Steps 4 and 5 of [`super::rolling`]: moves claims in `revs` (the
    /// latest revision first); returns the `Updated` condition.
    pub(crate) fn roll(&self, revs: &mut [ParentRevision]) -> Condition {
        let strategies = self.strategies;
        // Clean the claims; remember who claims what (index into `revs`).
        let mut claims: HashMap<GroupKind, HashMap<String, usize>> = HashMap::new();
        let wanted: HashSet<ChildKey> = revs[0]
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
                if !strategies.is_rolling(&ck.api_group, &ck.kind) {
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
        let mut order: Vec<ChildKey> = Vec::new();
        let mut seen = HashSet::new();
        for child in &revs[0].response.children {
            if !child.is_object() {
                continue;
            }
            let (group, kind) = group_kind_of(child);
            let key = (group, kind, object::name(child).to_owned());
            if strategies.is_rolling(&key.0, &key.1) && seen.insert(key.clone()) {
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
                    let current = self.observed_child(group, kind, name);
                    let desired = revs[0].desired(group, kind, name);
                    match (current, desired) {
                        (Some(current), Some(desired)) => {
                            matches!(self.up_to_date(current, desired), Ok(true))
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
            if let Some(message) = self.awaited(&revs[0]) {
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
    fn awaited(&self, latest: &ParentRevision) -> Option<String> {
        for ck in &latest.revision.children {
            let Some(strategy) = self
                .strategies
                .strategy(&ck.api_group, &ck.kind)
                .filter(|s| s.method.is_rolling())
            else {
                continue;
            };
            let kind = &ck.kind;
            for name in &ck.names {
                let Some(child) = self.observed_child(&ck.api_group, kind, name) else {
                    return Some(format!("missing child {kind} {name}"));
                };
                let Some(desired) = latest.desired(&ck.api_group, kind, name) else {
                    continue;
                };
                match self.up_to_date(child, desired) {
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
}

/// Forgets the revisions (other than the latest, first) that no longer own
/// any child.
pub(crate) fn prune(revs: &mut Vec<ParentRevision>) {
    let mut index = 0;
    revs.retain(|pr| {
        index += 1;
        index == 1 || pr.revision.count_children() > 0
    });
}

/// Step 7: the latest revision's desired children, each replaced by the
/// desired state of the old revision that still claims it; the latest
/// status with `condition`; the smallest positive `resyncAfterSeconds`;
/// `finalized` when every revision says so.
pub(crate) fn outcome(
    revs: &[ParentRevision],
    condition: &Condition,
) -> Result<CompositeHookResponse, ConditionsNotAList> {
    let mut overrides: HashMap<ChildKey, &Value> = HashMap::new();
    for pr in &revs[1..] {
        for ck in &pr.revision.children {
            for name in &ck.names {
                if let Some(child) = pr.desired(&ck.api_group, &ck.kind, name) {
                    overrides.insert((ck.api_group.clone(), ck.kind.clone(), name.clone()), child);
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
    set_condition(&mut status, condition.to_value())?;
    let resync_after_seconds = revs
        .iter()
        .map(|pr| pr.response.resync_after_seconds)
        .filter(|s| *s > 0.0)
        .fold(
            0.0,
            |min: f64, s| if min == 0.0 || s < min { s } else { min },
        );
    let finalized = revs.iter().all(|pr| pr.response.finalized);
    Ok(CompositeHookResponse {
        status: Some(status),
        children,
        resync_after_seconds,
        finalized,
    })
}

#[cfg(test)]
mod tests;
