//! What child management ([`crate::children::manage_children`], dynamic
//! apply) would do with the observed and desired children of one sync,
//! computed with the same functions it writes with:
//!
//! * an observed child missing from the desired set is deleted, unless it
//!   is already terminating;
//! * a desired child that does not exist is created: the desired object
//!   with the last-applied annotation and the parent's controller
//!   reference;
//! * a desired child that exists is merged three-way
//!   ([`metacontroller_apply::apply_update`]); when that changes anything,
//!   the type's update method decides: `OnDelete` leaves it, `Recreate`
//!   deletes it (the next sync creates it again), `InPlace` writes the
//!   merged object. The rolling methods act as their non-rolling
//!   counterparts, as in child management: which revision's desired state
//!   each child gets was decided before, by the rollout step
//!   ([`super::Rollout`]), so only the child it moves differs from what is
//!   observed. A terminating child is never updated.

use std::sync::Arc;

use metacontroller_api::ChildUpdateMethod;
use metacontroller_apply::{apply_update, claim_ownership, set_last_applied};
use serde_json::Value;

use super::ssa_plan;
use crate::children::Children;
use crate::object;
use crate::ssa::ApplyOptions;

/// What happens to one child.
#[derive(Clone, Debug, PartialEq)]
pub enum StepAction {
    /// Created as [`Step::applied`].
    Create,
    /// Replaced by [`Step::applied`] (`InPlace`).
    Update,
    /// Deleted because it changed; the next sync creates
    /// [`Step::applied`]'s desired state (`Recreate`).
    Recreate,
    /// Changed, but left alone (`OnDelete`).
    Skip,
    /// Server-side applied although no value changes (`Recreate` of a
    /// child never applied by the field manager: the apply records its
    /// field ownership).
    Own,
    /// Changed, but left alone because it is being deleted.
    SkipTerminating,
    /// Deleted: no longer desired.
    Delete,
    /// The merge failed; the sync would report this error.
    Error(String),
}

impl StepAction {
    /// Whether the step writes to the API server.
    pub fn writes(&self) -> bool {
        matches!(
            self,
            StepAction::Create
                | StepAction::Update
                | StepAction::Recreate
                | StepAction::Own
                | StepAction::Delete
        )
    }

    /// A short name: `create`, `update`, `recreate`, `skip`, `own`,
    /// `skip-terminating`, `delete`, `error`.
    pub fn as_str(&self) -> &'static str {
        match self {
            StepAction::Create => "create",
            StepAction::Update => "update",
            StepAction::Recreate => "recreate",
            StepAction::Skip => "skip",
            StepAction::Own => "own",
            StepAction::SkipTerminating => "skip-terminating",
            StepAction::Delete => "delete",
            StepAction::Error(_) => "error",
        }
    }
}

/// One child's step.
#[derive(Clone, Debug)]
pub struct Step {
    /// `Kind.apiVersion`.
    pub type_key: String,
    /// `namespace/name` (or `name`).
    pub key: String,
    /// The update method of the type.
    pub method: ChildUpdateMethod,
    /// What happens.
    pub action: StepAction,
    /// The observed child, if any.
    pub observed: Option<Value>,
    /// The object written (created, or merged for an update; under
    /// server-side apply the result computed offline); `None` for deletes.
    pub applied: Option<Value>,
    /// Under server-side apply: the apply request.
    pub ssa: Option<SsaApply>,
}

/// A server-side apply request (`PATCH` with
/// `application/apply-patch+yaml`, `force=true`).
#[derive(Clone, Debug)]
pub struct SsaApply {
    /// The field manager.
    pub field_manager: String,
    /// The body: the desired object with the parent's controller reference
    /// and without server-managed fields.
    pub object: Value,
    /// Whether the dynamic-apply annotation is removed first (a JSON
    /// patch), as for a child dynamic apply created.
    pub removes_last_applied: bool,
}

/// Every child's step, deletes first (as child management runs them), then
/// the desired children by type key and key. Unchanged children have no
/// step; [`Plan::unchanged`] counts them.
#[derive(Clone, Debug, Default)]
pub struct Plan {
    /// The steps.
    pub steps: Vec<Step>,
    /// Desired children that exist and need no change.
    pub unchanged: usize,
}

impl Plan {
    /// Whether any step writes.
    pub fn writes(&self) -> bool {
        self.steps.iter().any(|s| s.action.writes())
    }
}

/// The plan for `parent`'s `observed` and `desired` children under dynamic
/// apply (see the [module documentation](self)).
pub fn plan(parent: &Value, observed: &Children<Arc<Value>>, desired: &Children<Value>) -> Plan {
    plan_with(parent, observed, desired, &ApplyOptions::default())
}

/// The plan for `parent`'s `observed` and `desired` children when children
/// are written with `apply` (server-side apply: see [`super::ssa_plan`]).
pub fn plan_with(
    parent: &Value,
    observed: &Children<Arc<Value>>,
    desired: &Children<Value>,
    apply: &ApplyOptions,
) -> Plan {
    let mut out = Plan::default();
    let mut observed_keys: Vec<&String> = observed.keys().collect();
    observed_keys.sort();
    for type_key in observed_keys {
        let group = &observed[type_key];
        let wanted = desired.get(type_key);
        for (key, obj) in &group.objects {
            if wanted.is_some_and(|d| d.objects.contains_key(key)) || object::is_deleting(obj) {
                continue;
            }
            out.steps.push(Step {
                type_key: type_key.clone(),
                key: key.clone(),
                method: group.method,
                action: StepAction::Delete,
                observed: Some((**obj).clone()),
                applied: None,
                ssa: None,
            });
        }
    }
    let mut desired_keys: Vec<&String> = desired.keys().collect();
    desired_keys.sort();
    for type_key in desired_keys {
        let group = &desired[type_key];
        let seen = observed.get(type_key);
        for (key, want) in &group.objects {
            if apply.is_server_side() {
                let current = seen.and_then(|o| o.objects.get(key)).map(|c| &**c);
                match ssa_plan::step(parent, current, want, group.method, &apply.field_manager) {
                    Some((action, applied, ssa)) => out.steps.push(Step {
                        type_key: type_key.clone(),
                        key: key.clone(),
                        method: group.method,
                        action,
                        observed: current.cloned(),
                        applied: Some(applied),
                        ssa,
                    }),
                    None => out.unchanged += 1,
                }
                continue;
            }
            let step = |action, observed: Option<&Value>, applied| Step {
                type_key: type_key.clone(),
                key: key.clone(),
                method: group.method,
                action,
                observed: observed.cloned(),
                applied,
                ssa: None,
            };
            let Some(current) = seen.and_then(|o| o.objects.get(key)) else {
                let mut obj = want.clone();
                let action = match set_last_applied(&mut obj, want) {
                    Ok(()) => {
                        claim_ownership(&mut obj, parent);
                        StepAction::Create
                    }
                    Err(err) => StepAction::Error(err.to_string()),
                };
                out.steps.push(step(action, None, Some(obj)));
                continue;
            };
            let merged = match apply_update(current, want) {
                Ok(None) => {
                    out.unchanged += 1;
                    continue;
                }
                Ok(Some(merged)) => merged,
                Err(err) => {
                    out.steps.push(step(
                        StepAction::Error(format!(
                            "can't update {}: {err}",
                            object::describe(current)
                        )),
                        Some(current),
                        None,
                    ));
                    continue;
                }
            };
            let action = if object::is_deleting(current) {
                StepAction::SkipTerminating
            } else {
                match group.method.without_rolling() {
                    ChildUpdateMethod::Recreate => StepAction::Recreate,
                    ChildUpdateMethod::InPlace => StepAction::Update,
                    _ => StepAction::Skip,
                }
            };
            out.steps.push(step(action, Some(current), Some(merged)));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use serde_json::json;

    use super::*;
    use crate::children::ChildGroup;
    use crate::discovery::ResourceInfo;

    fn info() -> ResourceInfo {
        ResourceInfo::configmaps()
    }

    fn cm(name: &str, value: &str) -> Value {
        json!({"apiVersion": "v1", "kind": "ConfigMap",
               "metadata": {"name": name, "namespace": "ns"}, "data": {"k": value}})
    }

    fn group<T>(
        method: ChildUpdateMethod,
        objs: Vec<T>,
        key: impl Fn(&T) -> String,
    ) -> Children<T> {
        let objects: BTreeMap<String, T> = objs.into_iter().map(|o| (key(&o), o)).collect();
        Children::from([(
            "ConfigMap.v1".to_owned(),
            ChildGroup {
                resource: info(),
                method,
                objects,
            },
        )])
    }

    /// An observed child as a create of `desired` leaves it.
    fn created(parent: &Value, desired: &Value) -> Arc<Value> {
        let mut obj = desired.clone();
        set_last_applied(&mut obj, desired).unwrap();
        claim_ownership(&mut obj, parent);
        Arc::new(obj)
    }

    fn run(method: ChildUpdateMethod, observed: Vec<Arc<Value>>, desired: Vec<Value>) -> Plan {
        let parent = parent();
        let observed = group(method, observed, |o| object::key(o));
        let desired = group(method, desired, object::key);
        plan(&parent, &observed, &desired)
    }

    fn parent() -> Value {
        json!({"apiVersion": "demo/v1", "kind": "P",
               "metadata": {"name": "p", "namespace": "ns", "uid": "u1"}})
    }

    #[test]
    fn creates_with_annotation_and_owner() {
        let plan = run(ChildUpdateMethod::InPlace, vec![], vec![cm("a", "1")]);
        assert_eq!(plan.steps.len(), 1);
        let step = &plan.steps[0];
        assert_eq!(step.action, StepAction::Create);
        let applied = step.applied.as_ref().unwrap();
        assert_eq!(applied["metadata"]["ownerReferences"][0]["uid"], "u1");
        assert!(
            applied["metadata"]["annotations"]
                .get(metacontroller_apply::LAST_APPLIED_ANNOTATION)
                .is_some()
        );
        assert!(plan.writes());
    }

    #[test]
    fn unchanged_child_has_no_step() {
        let p = parent();
        let plan = run(
            ChildUpdateMethod::InPlace,
            vec![created(&p, &cm("a", "1"))],
            vec![cm("a", "1")],
        );
        assert!(plan.steps.is_empty());
        assert_eq!(plan.unchanged, 1);
        assert!(!plan.writes());
    }

    #[test]
    fn update_methods() {
        let p = parent();
        let cases = [
            (ChildUpdateMethod::InPlace, StepAction::Update, true),
            (ChildUpdateMethod::RollingInPlace, StepAction::Update, true),
            (ChildUpdateMethod::Recreate, StepAction::Recreate, true),
            (
                ChildUpdateMethod::RollingRecreate,
                StepAction::Recreate,
                true,
            ),
            (ChildUpdateMethod::OnDelete, StepAction::Skip, false),
        ];
        for (method, action, writes) in cases {
            let plan = run(method, vec![created(&p, &cm("a", "1"))], vec![cm("a", "2")]);
            assert_eq!(plan.steps.len(), 1, "{method:?}");
            assert_eq!(plan.steps[0].action, action, "{method:?}");
            assert_eq!(plan.writes(), writes, "{method:?}");
            assert_eq!(plan.steps[0].applied.as_ref().unwrap()["data"]["k"], "2");
        }
    }

    #[test]
    fn deletes_undesired_but_not_terminating() {
        let p = parent();
        let mut terminating = (*created(&p, &cm("b", "1"))).clone();
        terminating["metadata"]["deletionTimestamp"] = json!("2024-01-01T00:00:00Z");
        let plan = run(
            ChildUpdateMethod::InPlace,
            vec![created(&p, &cm("a", "1")), Arc::new(terminating)],
            vec![],
        );
        assert_eq!(plan.steps.len(), 1);
        assert_eq!(plan.steps[0].action, StepAction::Delete);
        assert_eq!(plan.steps[0].key, "ns/a");
    }

    #[test]
    fn terminating_child_is_not_updated() {
        let p = parent();
        let mut terminating = (*created(&p, &cm("a", "1"))).clone();
        terminating["metadata"]["deletionTimestamp"] = json!("2024-01-01T00:00:00Z");
        let plan = run(
            ChildUpdateMethod::InPlace,
            vec![Arc::new(terminating)],
            vec![cm("a", "2")],
        );
        assert_eq!(plan.steps[0].action, StepAction::SkipTerminating);
        assert!(!plan.writes());
    }
}
