//! One desired child's step under server-side apply
//! (`--apply-strategy=server-side-apply`), decided as [`crate::ssa`]
//! decides it, with [`crate::ssa::is_applied`] for "nothing to do" and
//! [`super::ssa_merge::applied_result`] in place of the server's answer:
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
use crate::ssa::{applied_fields, has_last_applied, is_applied, prepare};

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
    let legacy = has_last_applied(current);
    let mut result = applied_result(current, &body, manager);
    if legacy && let Some(Value::Object(annotations)) = result.pointer_mut("/metadata/annotations")
    {
        annotations.remove(metacontroller_api::LAST_APPLIED_ANNOTATION);
    }
    let applied = is_applied(current, &body, manager);
    if object::is_deleting(current) {
        return (!applied).then_some((StepAction::SkipTerminating, result, None));
    }
    match method.without_rolling() {
        ChildUpdateMethod::OnDelete => (!applied).then_some((StepAction::Skip, result, None)),
        ChildUpdateMethod::Recreate => {
            if applied {
                return None;
            }
            if object::semantic_eq(&sanitize_for_ssa(&result), &sanitize_for_ssa(current)) {
                return applied_fields(current, manager)
                    .is_none()
                    .then(|| (StepAction::Own, result, request(false)));
            }
            Some((StepAction::Recreate, result, request(false)))
        }
        _ => {
            if !legacy && applied {
                return None;
            }
            Some((StepAction::Update, result, request(legacy)))
        }
    }
}
