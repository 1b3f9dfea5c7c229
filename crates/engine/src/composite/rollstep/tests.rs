//! Unit tests of the rollout step's decisions.

use std::collections::BTreeMap;

use kube::core::ApiResource;
use metacontroller_api::StatusConditionCheck;
use metacontroller_apply::set_last_applied;

use super::*;
use crate::children::ChildGroup;

fn parent() -> Value {
    json!({"apiVersion": "demo/v1", "kind": "P",
           "metadata": {"name": "p", "namespace": "ns", "uid": "u1"}})
}

fn cm(name: &str, value: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "ConfigMap",
           "metadata": {"name": name, "namespace": "ns"}, "data": {"k": value}})
}

/// `desired` as dynamic apply leaves it, with `status`.
fn observed_cm(desired: &Value, ready: bool) -> Arc<Value> {
    let mut obj = desired.clone();
    set_last_applied(&mut obj, desired).unwrap();
    obj["status"] = json!({"conditions": [
        {"type": "Ready", "status": if ready { "True" } else { "False" }}]});
    Arc::new(obj)
}

fn observed_children(objs: Vec<Arc<Value>>) -> Children<Arc<Value>> {
    let objects: BTreeMap<String, Arc<Value>> =
        objs.into_iter().map(|o| (object::key(&o), o)).collect();
    Children::from([(
        "ConfigMap.v1".to_owned(),
        ChildGroup {
            resource: ResourceInfo::configmaps(),
            method: ChildUpdateMethod::RollingRecreate,
            objects,
        },
    )])
}

fn strategies() -> Strategies {
    Strategies::new([(
        String::new(),
        "ConfigMap".to_owned(),
        ChildUpdateMethod::RollingRecreate,
        vec![StatusConditionCheck {
            type_: "Ready".into(),
            status: Some("True".into()),
            reason: None,
        }],
    )])
}

/// The latest revision (new, wanting `value` for each name) and an old
/// one claiming `old_claims` with value "1".
fn revisions(names: &[&str], value: &str, old_claims: &[&str]) -> Vec<ParentRevision> {
    let answer = |value: &str| CompositeHookResponse {
        children: names.iter().map(|n| cm(n, value)).collect(),
        ..Default::default()
    };
    let latest = Revision::new(json!({"metadata": {"name": "new"}, "parentPatch": {}}));
    let old = Revision::from_observed(Arc::new(json!({
        "metadata": {"name": "old"}, "parentPatch": {"spec": {}},
        "children": [{"apiGroup": "", "kind": "ConfigMap", "names": old_claims}],
    })))
    .unwrap();
    vec![
        ParentRevision::new(latest, answer(value)),
        ParentRevision::new(old, answer("1")),
    ]
}

fn claims(pr: &ParentRevision) -> Vec<String> {
    pr.revision
        .children
        .iter()
        .flat_map(|c| c.names.clone())
        .collect()
}

#[test]
fn one_child_moves_in_hook_order_and_old_ones_keep_their_state() {
    let parent = parent();
    let observed = observed_children(vec![
        observed_cm(&cm("b", "1"), true),
        observed_cm(&cm("a", "1"), true),
    ]);
    let strategies = strategies();
    let apply = ApplyOptions::default();
    let step = RollStep {
        strategies: &strategies,
        apply: &apply,
        parent: &parent,
        observed: &observed,
    };
    let mut revs = revisions(&["b", "a"], "2", &["a", "b"]);
    let condition = step.roll(&mut revs);
    assert_eq!(condition.reason, REASON_ROLLOUT_PROGRESSING);
    assert_eq!(condition.message, "updating ConfigMap b");
    assert_eq!(claims(&revs[0]), ["b"]);
    assert_eq!(claims(&revs[1]), ["a"]);
    prune(&mut revs);
    assert_eq!(revs.len(), 2);
    let answer = outcome(&revs, &condition).unwrap();
    let data: Vec<&Value> = answer.children.iter().map(|c| &c["data"]["k"]).collect();
    assert_eq!(data, [&json!("2"), &json!("1")]);
    assert_eq!(
        answer.status.unwrap()["conditions"][0]["reason"],
        REASON_ROLLOUT_PROGRESSING
    );
}

#[test]
fn the_rollout_waits_for_moved_children() {
    let parent = parent();
    let strategies = strategies();
    let apply = ApplyOptions::default();
    // b is on the latest revision, updated but not Ready.
    let observed = observed_children(vec![
        observed_cm(&cm("b", "2"), false),
        observed_cm(&cm("a", "1"), true),
    ]);
    let step = RollStep {
        strategies: &strategies,
        apply: &apply,
        parent: &parent,
        observed: &observed,
    };
    let mut revs = revisions(&["b", "a"], "2", &["a"]);
    let condition = step.roll(&mut revs);
    assert_eq!(condition.reason, REASON_ROLLOUT_WAITING);
    assert_eq!(
        condition.message,
        r#"child ConfigMap b failed status check: "Ready" condition status is "False" (want "True")"#
    );
    assert_eq!(claims(&revs[0]), ["b"]);
    assert_eq!(claims(&revs[1]), ["a"]);

    // Once every child matches the latest revision, the old one is
    // left without children and pruned.
    let observed = observed_children(vec![
        observed_cm(&cm("b", "2"), true),
        observed_cm(&cm("a", "2"), true),
    ]);
    let step = RollStep {
        observed: &observed,
        ..step
    };
    let mut revs = revisions(&["b", "a"], "2", &["a"]);
    let condition = step.roll(&mut revs);
    assert_eq!(condition.reason, REASON_ON_LATEST_REVISION);
    assert_eq!(condition.message, "latest ControllerRevision: new");
    prune(&mut revs);
    assert_eq!(revs.len(), 1);
}

#[test]
fn the_latest_revision_is_the_one_with_the_parents_patch() {
    let mut parent = parent();
    parent["spec"] = json!({"image": "2", "replicas": 3});
    let paths = vec!["spec.image".to_owned()];
    let rev = |name: &str, image: &str| {
        Arc::new(json!({"metadata": {"name": name},
            "parentPatch": {"spec": {"image": image}}}))
    };
    let split = split(&parent, &[rev("r1", "1"), rev("r2", "2")], &paths).unwrap();
    assert_eq!(split.latest.unwrap().name(), "r2");
    assert_eq!(split.others.len(), 1);
    let (hypothetical, old) = &split.others[0];
    assert_eq!(old.name(), "r1");
    assert_eq!(hypothetical["spec"], json!({"image": "1", "replicas": 3}));
}

#[test]
fn a_revision_takes_the_template_labels_and_refuses_other_than_strings() {
    let info = ResourceInfo {
        api_resource: ApiResource {
            group: "demo".into(),
            version: "v1".into(),
            api_version: "demo/v1".into(),
            kind: "P".into(),
            plural: "ps".into(),
        },
        namespaced: true,
        has_status: false,
    };
    let mut p = parent();
    p["spec"] = json!({"template": {"metadata": {"labels": {"app": "a"}}}});
    let revision = new_revision_object(&info, false, &p, "ns", json!({})).unwrap();
    assert_eq!(revision["metadata"]["labels"]["app"], "a", "{revision}");
    assert_eq!(
        revision["metadata"]["labels"][REVISION_RESOURCE_LABEL],
        "ps"
    );

    p["spec"]["template"]["metadata"]["labels"]["app"] = json!(1);
    let err = new_revision_object(&info, false, &p, "ns", json!({})).unwrap_err();
    assert!(
        matches!(err, RevisionError::InvalidTemplateLabels(_)),
        "{err}"
    );
    assert!(
        err.to_string()
            .ends_with("spec.template.metadata.labels must be a map of strings"),
        "{err}"
    );
}
