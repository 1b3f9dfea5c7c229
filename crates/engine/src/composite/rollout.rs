//! The rolling-update state of a CompositeController (the revision store
//! and the update strategy of each child type) and the pieces of a rollout
//! step that need no API: the `Updated` condition and the status checks.
//! See [`super::rolling`] for the algorithm.

use std::collections::HashMap;
use std::sync::Arc;

use metacontroller_api::constants::UPDATED_CONDITION;
use metacontroller_api::{ChildUpdateMethod, StatusConditionCheck};
use serde_json::{Map, Value, json};

use crate::Context;
use crate::discovery::ResourceInfo;

use super::revisions::{self, RevisionStore};

/// `status.conditions` of the hook's status is not a list.
#[derive(Debug, thiserror::Error)]
#[error("status.conditions is not a list")]
pub(crate) struct ConditionsNotAList;

/// `(API group, kind)` of a child type, version-agnostic.
pub(crate) type GroupKind = (String, String);

/// The update strategy of a child type, as far as rollouts care.
pub(crate) struct Strategy {
    /// The update method.
    pub method: ChildUpdateMethod,
    /// `statusChecks.conditions`.
    pub checks: Vec<StatusConditionCheck>,
}

/// The update strategies of a controller's child types, by group and kind.
#[derive(Default)]
pub(crate) struct Strategies(HashMap<GroupKind, Strategy>);

impl Strategies {
    /// The strategies of the child types `(group, kind, method, checks)`.
    pub(crate) fn new(
        types: impl IntoIterator<Item = (String, String, ChildUpdateMethod, Vec<StatusConditionCheck>)>,
    ) -> Self {
        Strategies(
            types
                .into_iter()
                .map(|(group, kind, method, checks)| ((group, kind), Strategy { method, checks }))
                .collect(),
        )
    }

    /// Whether some child type rolls.
    pub(crate) fn any_rolling(&self) -> bool {
        self.0.values().any(|s| s.method.is_rolling())
    }

    pub(crate) fn strategy(&self, group: &str, kind: &str) -> Option<&Strategy> {
        self.0.get(&(group.to_owned(), kind.to_owned()))
    }

    pub(crate) fn is_rolling(&self, group: &str, kind: &str) -> bool {
        self.strategy(group, kind)
            .is_some_and(|s| s.method.is_rolling())
    }
}

/// Rolling-update state of a hosted controller whose child types include a
/// rolling method.
pub(crate) struct Rolling {
    /// The ControllerRevision resource.
    pub(super) info: ResourceInfo,
    /// Revisions: shared cache plus recent writes.
    pub(super) store: RevisionStore,
    /// `parentResource.revisionHistory.fieldPaths` (default `spec`).
    pub(super) field_paths: Vec<String>,
    /// Update strategies by child group and kind.
    pub(super) strategies: Strategies,
}

impl Rolling {
    /// Rolling state for the child types `(group, kind, method, checks)`,
    /// or `None` when none of them rolls.
    pub(crate) fn new(
        ctx: &Arc<Context>,
        field_paths: Vec<String>,
        types: impl IntoIterator<Item = (String, String, ChildUpdateMethod, Vec<StatusConditionCheck>)>,
    ) -> Option<Self> {
        let strategies = Strategies::new(types);
        if !strategies.any_rolling() {
            return None;
        }
        let info = revisions::resource();
        Some(Rolling {
            store: RevisionStore::new(ctx.informers.acquire(&info)),
            info,
            field_paths,
            strategies,
        })
    }
}

/// The `Updated` condition to report.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Condition {
    /// `True` or `False`.
    pub status: &'static str,
    /// Why.
    pub reason: &'static str,
    /// What is happening.
    pub message: String,
}

impl Condition {
    pub(crate) fn to_value(&self) -> Value {
        let mut c = Map::new();
        c.insert("type".into(), json!(UPDATED_CONDITION));
        c.insert("status".into(), json!(self.status));
        if !self.reason.is_empty() {
            c.insert("reason".into(), json!(self.reason));
        }
        if !self.message.is_empty() {
            c.insert("message".into(), json!(self.message));
        }
        Value::Object(c)
    }
}

/// Sets (replaces or appends) a condition in `status.conditions`.
pub(crate) fn set_condition(
    status: &mut Map<String, Value>,
    condition: Value,
) -> Result<(), ConditionsNotAList> {
    let kind = condition.get("type").cloned();
    match status.get_mut("conditions") {
        None | Some(Value::Null) => {
            status.insert("conditions".into(), Value::Array(vec![condition]));
        }
        Some(Value::Array(items)) => {
            match items.iter_mut().find(|c| {
                c.get("type")
                    .is_some_and(|t| t.is_string() && Some(t) == kind.as_ref())
            }) {
                Some(existing) => *existing = condition,
                None => items.push(condition),
            }
        }
        Some(_) => return Err(ConditionsNotAList),
    }
    Ok(())
}

/// `statusChecks.conditions` against a child's `status.conditions`: the
/// first check it fails, described.
pub(crate) fn failed_check(checks: &[StatusConditionCheck], child: &Value) -> Option<String> {
    for check in checks {
        let condition = child
            .pointer("/status/conditions")
            .and_then(Value::as_array)
            .and_then(|items| {
                items
                    .iter()
                    .find(|c| c.get("type").and_then(Value::as_str) == Some(check.type_.as_str()))
            });
        let Some(condition) = condition else {
            return Some(format!(
                "required condition type missing: {:?}",
                check.type_
            ));
        };
        let field = |name: &str| {
            condition
                .get(name)
                .and_then(Value::as_str)
                .unwrap_or_default()
        };
        if let Some(want) = &check.status
            && field("status") != want
        {
            return Some(format!(
                "{:?} condition status is {:?} (want {want:?})",
                check.type_,
                field("status")
            ));
        }
        if let Some(want) = &check.reason
            && field("reason") != want
        {
            return Some(format!(
                "{:?} condition reason is {:?} (want {want:?})",
                check.type_,
                field("reason")
            ));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use metacontroller_api::constants::{REASON_ON_LATEST_REVISION, REASON_ROLLOUT_PROGRESSING};

    #[test]
    fn conditions_are_replaced_or_appended() {
        let cond = Condition {
            status: "False",
            reason: REASON_ROLLOUT_PROGRESSING,
            message: "updating Pod a".into(),
        };
        let mut status = Map::new();
        set_condition(&mut status, cond.to_value()).unwrap();
        assert_eq!(
            Value::Object(status.clone()),
            json!({"conditions": [{"type": "Updated", "status": "False",
                "reason": "RolloutProgressing", "message": "updating Pod a"}]})
        );
        let mut status = json!({"conditions": [
            {"type": "Ready", "status": "True"},
            {"type": "Updated", "status": "False", "lastTransitionTime": "x"}]})
        .as_object()
        .unwrap()
        .clone();
        let done = Condition {
            status: "True",
            reason: REASON_ON_LATEST_REVISION,
            message: "latest ControllerRevision: r".into(),
        };
        set_condition(&mut status, done.to_value()).unwrap();
        assert_eq!(
            status["conditions"],
            json!([{"type": "Ready", "status": "True"},
                {"type": "Updated", "status": "True", "reason": "OnLatestRevision",
                 "message": "latest ControllerRevision: r"}])
        );
        let mut bad = json!({"conditions": "x"}).as_object().unwrap().clone();
        assert!(set_condition(&mut bad, done.to_value()).is_err());
    }

    #[test]
    fn status_checks() {
        let checks = vec![StatusConditionCheck {
            type_: "Ready".into(),
            status: Some("True".into()),
            reason: None,
        }];
        let ready = json!({"status": {"conditions": [{"type": "Ready", "status": "True"}]}});
        assert!(failed_check(&checks, &ready).is_none());
        let not_ready = json!({"status": {"conditions": [{"type": "Ready", "status": "False"}]}});
        assert_eq!(
            failed_check(&checks, &not_ready).unwrap(),
            r#""Ready" condition status is "False" (want "True")"#
        );
        assert_eq!(
            failed_check(&checks, &json!({})).unwrap(),
            r#"required condition type missing: "Ready""#
        );
        let reason = vec![StatusConditionCheck {
            type_: "Ready".into(),
            status: None,
            reason: Some("Fine".into()),
        }];
        assert_eq!(
            failed_check(&reason, &ready).unwrap(),
            r#""Ready" condition reason is "" (want "Fine")"#
        );
        assert!(failed_check(&[], &json!({})).is_none());
    }
}
