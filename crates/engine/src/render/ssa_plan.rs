//! One desired child's step under server-side apply
//! (`--apply-strategy=server-side-apply`), decided by the sync's own
//! [`crate::ssa::update_step`], with [`super::ssa_merge::applied_result`] in
//! place of the server's answer (and of its dry run, for `Recreate`):
//!
//! * missing: applied (which creates it);
//! * terminating, or `OnDelete`: left alone (`skip-terminating`, `skip`)
//!   when the apply would change something;
//! * `InPlace` (and `RollingInPlace`): applied, after the dynamic-apply
//!   annotation's removal when the child has one, unless the apply is
//!   known to change nothing;
//! * `Recreate` (and `RollingRecreate`): deleted when the applied result
//!   differs from the child (the engine asks a dry run); applied once
//!   (`own`) when it does not but the field manager never applied to it.

use metacontroller_api::ChildUpdateMethod;
use metacontroller_apply::sanitize_for_ssa;
use serde_json::Value;

use super::plan::{SsaApply, StepAction};
use super::ssa_merge::applied_result;
use crate::object;
use crate::ssa::{UpdateStep, applied_fields, is_applied, prepare, update_step};

/// The step for `desired` (`current` when it exists): the action, the
/// object written or its expected result, and the apply request; `None`
/// when nothing would be written.
pub(super) fn step(
    parent: &Value,
    current: Option<&Value>,
    desired: &Value,
    method: ChildUpdateMethod,
    manager: &str,
) -> Option<(StepAction, Value, Option<SsaApply>)> {
    let body = prepare(desired, parent);
    let request = |removes_last_applied| {
        Some(SsaApply {
            field_manager: manager.to_owned(),
            object: body.clone(),
            removes_last_applied,
        })
    };
    let Some(current) = current else {
        return Some((StepAction::Create, body.clone(), request(false)));
    };
    let mut result = applied_result(current, &body, manager);
    match update_step(current, &body, method, manager) {
        // Left alone; the plan says so when the apply would change something.
        UpdateStep::Terminating => (!is_applied(current, &body, manager)).then_some((
            StepAction::SkipTerminating,
            result,
            None,
        )),
        UpdateStep::OnDelete => {
            (!is_applied(current, &body, manager)).then_some((StepAction::Skip, result, None))
        }
        UpdateStep::UpToDate => None,
        // The server's dry run, computed offline: an apply that changes no
        // value only records our ownership, if we never applied before.
        UpdateStep::Recreate => {
            if object::semantic_eq(&sanitize_for_ssa(&result), &sanitize_for_ssa(current)) {
                return applied_fields(current, manager)
                    .is_none()
                    .then(|| (StepAction::Own, result, request(false)));
            }
            Some((StepAction::Recreate, result, request(false)))
        }
        UpdateStep::InPlace {
            remove_last_applied,
        } => {
            if remove_last_applied {
                drop_last_applied(&mut result);
            }
            Some((StepAction::Update, result, request(remove_last_applied)))
        }
    }
}

/// Removes the dynamic-apply annotation (and an annotation map it leaves
/// empty), as the engine's JSON patch does before an in-place apply.
fn drop_last_applied(obj: &mut Value) {
    let Some(Value::Object(meta)) = obj.get_mut("metadata") else {
        return;
    };
    if let Some(Value::Object(annotations)) = meta.get_mut("annotations") {
        annotations.remove(metacontroller_api::LAST_APPLIED_ANNOTATION);
        if annotations.is_empty() {
            meta.remove("annotations");
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn parent() -> Value {
        json!({"apiVersion": "demo/v1", "kind": "P",
               "metadata": {"name": "p", "namespace": "ns", "uid": "u1"}})
    }

    fn cm(value: &str) -> Value {
        json!({"apiVersion": "v1", "kind": "ConfigMap",
               "metadata": {"name": "c", "namespace": "ns"}, "data": {"k": value}})
    }

    /// `value` as applied by `mc`, with its managed-fields entry.
    fn applied(value: &str) -> Value {
        let mut obj = prepare(&cm(value), &parent());
        obj["metadata"]["managedFields"] = json!([{"manager": "mc", "operation": "Apply",
            "fieldsV1": {"f:data": {"f:k": {}}, "f:metadata": {"f:ownerReferences": {
                "k:{\"uid\":\"u1\"}": {}}}}}]);
        obj
    }

    fn run(current: Option<&Value>, value: &str, method: ChildUpdateMethod) -> Option<StepAction> {
        step(&parent(), current, &cm(value), method, "mc").map(|(action, _, _)| action)
    }

    #[test]
    fn creates_and_no_ops() {
        let (action, body, request) =
            step(&parent(), None, &cm("1"), ChildUpdateMethod::InPlace, "mc").unwrap();
        assert_eq!(action, StepAction::Create);
        let request = request.unwrap();
        assert_eq!(request.field_manager, "mc");
        assert_eq!(request.object, body);
        assert_eq!(body["metadata"]["ownerReferences"][0]["uid"], "u1");
        assert!(body["metadata"].get("annotations").is_none());
        for method in [
            ChildUpdateMethod::InPlace,
            ChildUpdateMethod::Recreate,
            ChildUpdateMethod::OnDelete,
        ] {
            assert_eq!(run(Some(&applied("1")), "1", method), None, "{method:?}");
        }
    }

    #[test]
    fn changes_by_update_method() {
        let current = applied("1");
        assert_eq!(
            run(Some(&current), "2", ChildUpdateMethod::RollingInPlace),
            Some(StepAction::Update)
        );
        assert_eq!(
            run(Some(&current), "2", ChildUpdateMethod::Recreate),
            Some(StepAction::Recreate)
        );
        assert_eq!(
            run(Some(&current), "2", ChildUpdateMethod::OnDelete),
            Some(StepAction::Skip)
        );
        let mut terminating = current.clone();
        terminating["metadata"]["deletionTimestamp"] = json!("2024-01-01T00:00:00Z");
        assert_eq!(
            run(Some(&terminating), "2", ChildUpdateMethod::InPlace),
            Some(StepAction::SkipTerminating)
        );
        let (_, result, _) = step(
            &parent(),
            Some(&current),
            &cm("2"),
            ChildUpdateMethod::InPlace,
            "mc",
        )
        .unwrap();
        assert_eq!(result["data"]["k"], "2");
    }

    #[test]
    fn children_dynamic_apply_wrote() {
        // Created by dynamic apply: the annotation, no managed-fields entry.
        let mut current = cm("1");
        metacontroller_apply::set_last_applied(&mut current, &cm("1")).unwrap();
        metacontroller_apply::claim_ownership(&mut current, &parent());
        let (action, result, request) = step(
            &parent(),
            Some(&current),
            &cm("1"),
            ChildUpdateMethod::InPlace,
            "mc",
        )
        .unwrap();
        assert_eq!(action, StepAction::Update);
        assert!(request.unwrap().removes_last_applied);
        assert!(
            result["metadata"]["annotations"]
                .get(metacontroller_api::LAST_APPLIED_ANNOTATION)
                .is_none()
        );
        // Recreate: the values are the same, so only ownership is taken.
        assert_eq!(
            run(Some(&current), "1", ChildUpdateMethod::Recreate),
            Some(StepAction::Own)
        );
    }
}
