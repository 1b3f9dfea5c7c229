//! Server-side apply of children (`--apply-strategy=server-side-apply`), end
//! to end: the embedded API server, the engine and a hook server in the test
//! process.

mod common;

use std::time::Duration;

use common::*;
use kube::api::{Patch, PatchParams};
use metacontroller_engine::{ApplyStrategy, EngineConfig};
use serde_json::{Value, json};

const LAST_APPLIED: &str = "metacontroller.k8s.io/last-applied-configuration";

fn ssa() -> EngineConfig {
    EngineConfig {
        discovery_interval: Duration::from_secs(2),
        apply_strategy: ApplyStrategy::ServerSideApply,
        ..EngineConfig::default()
    }
}

fn uid(obj: &Value) -> String {
    obj["metadata"]["uid"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

/// `(manager, operation)` of every managedFields entry.
fn managers(obj: &Value) -> Vec<(String, String)> {
    obj["metadata"]["managedFields"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|e| {
            (
                e["manager"].as_str().unwrap_or_default().to_owned(),
                e["operation"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect()
}

fn applied_by_us(obj: &Value) -> bool {
    managers(obj).contains(&("metacontroller".into(), "Apply".into()))
}

/// Children are created and updated by server-side apply; hand edits of
/// applied fields are put back, other fields stay; fields the hook stops
/// returning are removed; a forced apply by another manager loses to ours.
#[tokio::test]
async fn apply_creates_updates_and_repairs_drift() {
    let h = Harness::start_with(ssa()).await;
    let ns = "drift";
    h.create_namespace(ns).await;
    let parents = h
        .create_crd("DriftParent", "driftparents", true, true)
        .await;
    let hook = HookServer::start(|req| {
        let spec = &req["parent"]["spec"];
        let mut data = json!({"v": spec["v"].to_string()});
        if spec["extra"] == true {
            data["extra"] = json!("yes");
        }
        let cm = json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "cm", "labels": {"app": "drift", "tier": "x"}},
            "data": data});
        Reply::Json(json!({"status": {"seen": spec["v"]}, "children": [cm]}))
    })
    .await;
    h.create_cc(composite_controller(
        "drift",
        &parents,
        &[("v1", "configmaps", Some("InPlace"))],
        &hook.url,
    ))
    .await;
    let p = h
        .create(
            &parents,
            Some(ns),
            parent(
                &parents,
                "p",
                json!({"app": "drift"}),
                json!({"v": 1, "extra": true}),
            ),
        )
        .await;
    let cm = wait_for("child", || h.get(configmaps(), Some(ns), "cm")).await;
    assert_eq!(cm["data"], json!({"v": "1", "extra": "yes"}));
    assert!(applied_by_us(&cm), "{:?}", managers(&cm));
    assert!(cm["metadata"]["annotations"].get(LAST_APPLIED).is_none());
    let owner = &cm["metadata"]["ownerReferences"][0];
    assert_eq!(owner["uid"], uid(&p).as_str());
    assert_eq!(owner["controller"], true);
    assert_eq!(owner["blockOwnerDeletion"], true);
    let cm_uid = uid(&cm);

    // Update in place.
    h.merge_patch(&parents, Some(ns), "p", json!({"spec": {"v": 2}}))
        .await;
    let cm = wait_for("update", || async {
        let cm = h.get(configmaps(), Some(ns), "cm").await?;
        (cm["data"]["v"] == "2").then_some(cm)
    })
    .await;
    assert_eq!(uid(&cm), cm_uid);

    // Hand edits: an applied value and label are changed back; a field of
    // our own stays.
    h.merge_patch(
        configmaps(),
        Some(ns),
        "cm",
        json!({"metadata": {"labels": {"tier": null}}, "data": {"v": "edited", "mine": "kept"}}),
    )
    .await;
    let cm = wait_for("drift repaired", || async {
        let cm = h.get(configmaps(), Some(ns), "cm").await?;
        (cm["data"]["v"] == "2" && cm["metadata"]["labels"]["tier"] == "x").then_some(cm)
    })
    .await;
    assert_eq!(cm["data"]["mine"], "kept");
    assert_eq!(uid(&cm), cm_uid);

    // A field the hook stops returning is removed; the hand-added one stays.
    h.merge_patch(&parents, Some(ns), "p", json!({"spec": {"extra": false}}))
        .await;
    let cm = wait_for("field removed", || async {
        let cm = h.get(configmaps(), Some(ns), "cm").await?;
        cm["data"].get("extra").is_none().then_some(cm)
    })
    .await;
    assert_eq!(cm["data"], json!({"v": "2", "mine": "kept"}));

    // Another manager forces its own value: ours wins again.
    h.api(configmaps(), Some(ns))
        .patch(
            "cm",
            &PatchParams::apply("intruder").force(),
            &Patch::Apply(json!({"apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {"name": "cm"}, "data": {"v": "intruder"}})),
        )
        .await
        .expect("apply as another manager");
    let cm = wait_for("conflict won back", || async {
        let cm = h.get(configmaps(), Some(ns), "cm").await?;
        (cm["data"]["v"] == "2").then_some(cm)
    })
    .await;
    assert!(applied_by_us(&cm));
    assert_eq!(uid(&cm), cm_uid);
    h.shutdown().await;
}

/// Once converged, periodic resyncs make no request that writes, with
/// InPlace and Recreate children alike.
#[tokio::test]
async fn noop_syncs_make_zero_writes() {
    let h = Harness::start_with(ssa()).await;
    let ns = "quiet";
    h.create_namespace(ns).await;
    let parents = h
        .create_crd("QuietParent", "quietparents", true, true)
        .await;
    let things = h.create_crd("QuietThing", "quietthings", true, true).await;
    let hook = HookServer::start(|req| {
        let n = req["parent"]["spec"]["n"].as_i64().unwrap_or(0);
        let l = json!({"app": "quiet"});
        let mut children = vec![json!({"apiVersion": API_VERSION, "kind": "QuietThing",
            "metadata": {"name": "thing", "labels": l, "annotations": {"note": "<&>"}},
            "spec": {"n": n, "ratio": 0.5, "whole": 2.0, "list": [{"name": "a", "port": 80}],
                "nested": {"empty": {}, "flag": true}}})];
        for i in 0..n {
            children.push(configmap(
                &format!("cm-{i}"),
                &l,
                json!({"i": i.to_string()}),
            ));
        }
        Reply::Json(json!({"status": {"n": n}, "children": children}))
    })
    .await;
    let mut cc = composite_controller(
        "quiet",
        &parents,
        &[
            ("v1", "configmaps", Some("InPlace")),
            (API_VERSION, "quietthings", Some("Recreate")),
        ],
        &hook.url,
    );
    cc["spec"]["resyncPeriodSeconds"] = json!(1);
    h.create_cc(cc).await;
    h.create(
        &parents,
        Some(ns),
        parent(&parents, "p", json!({"app": "quiet"}), json!({"n": 2})),
    )
    .await;
    let thing = wait_for("converged", || async {
        let p = h.get(&parents, Some(ns), "p").await?;
        let cms = h.list(configmaps(), Some(ns)).await;
        let thing = h.get(&things, Some(ns), "thing").await?;
        (p["status"]["n"] == 2
            && cms
                .iter()
                .filter(|c| c["metadata"]["name"] != "kube-root-ca.crt")
                .count()
                == 2)
            .then_some(thing)
    })
    .await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let writes = h.writes();
    let calls = hook.calls();
    tokio::time::sleep(Duration::from_millis(3500)).await;
    assert!(
        hook.calls() >= calls + 3,
        "resyncs did not happen: {} -> {}",
        calls,
        hook.calls()
    );
    assert_eq!(
        h.writes(),
        writes,
        "no-op resyncs wrote: {:?}",
        h.embedded()
            .map(|s| format!("{:?}", s.counters().snapshot()))
    );
    // The Recreate child was never recreated.
    let now = h.get(&things, Some(ns), "thing").await.unwrap();
    assert_eq!(uid(&now), uid(&thing));
    h.shutdown().await;
}

/// Children written by dynamic apply are taken over: InPlace ones lose the
/// last-applied annotation, Recreate ones are kept when nothing would change
/// and recreated otherwise; afterwards resyncs write nothing.
#[tokio::test]
async fn takes_over_dynamic_apply_children() {
    let h = Harness::start_with(ssa()).await;
    let ns = "legacy";
    h.create_namespace(ns).await;
    let parents = h
        .create_crd("LegacyParent", "legacyparents", true, true)
        .await;
    let things = h
        .create_crd("LegacyThing", "legacythings", true, true)
        .await;
    let l = json!({"app": "legacy"});
    let p = h
        .create(
            &parents,
            Some(ns),
            parent(&parents, "p", l.clone(), json!({})),
        )
        .await;
    let owner = json!([{"apiVersion": parents.api_version, "kind": "LegacyParent", "name": "p",
        "uid": uid(&p), "controller": true, "blockOwnerDeletion": true}]);
    let desired_cm = configmap("cm", &l, json!({"k": "v"}));
    let desired_same = json!({"apiVersion": API_VERSION, "kind": "LegacyThing",
        "metadata": {"name": "same", "labels": l, "namespace": ns}, "spec": {"v": 1}});
    let desired_diff = json!({"apiVersion": API_VERSION, "kind": "LegacyThing",
        "metadata": {"name": "diff", "labels": l, "namespace": ns}, "spec": {"v": 1}});
    // As dynamic apply created them: last-applied annotation, owner reference.
    let legacy = |desired: &Value, spec_override: Option<Value>| {
        let mut obj = desired.clone();
        obj["metadata"]["annotations"] =
            json!({LAST_APPLIED: serde_json::to_string(desired).unwrap()});
        obj["metadata"]["ownerReferences"] = owner.clone();
        if let Some(spec) = spec_override {
            obj["spec"] = spec;
        }
        obj
    };
    let cm = h
        .create(configmaps(), Some(ns), legacy(&desired_cm, None))
        .await;
    let same = h
        .create(&things, Some(ns), legacy(&desired_same, None))
        .await;
    let diff = h
        .create(
            &things,
            Some(ns),
            legacy(&desired_diff, Some(json!({"v": 0}))),
        )
        .await;
    let hook = {
        let children = vec![
            desired_cm.clone(),
            desired_same.clone(),
            desired_diff.clone(),
        ];
        HookServer::start(move |_| Reply::Json(json!({"status": {}, "children": children}))).await
    };
    let mut cc = composite_controller(
        "legacy",
        &parents,
        &[
            ("v1", "configmaps", Some("InPlace")),
            (API_VERSION, "legacythings", Some("Recreate")),
        ],
        &hook.url,
    );
    cc["spec"]["resyncPeriodSeconds"] = json!(1);
    h.create_cc(cc).await;

    let cm2 = wait_for("InPlace child taken over", || async {
        let c = h.get(configmaps(), Some(ns), "cm").await?;
        (applied_by_us(&c) && c["metadata"]["annotations"].get(LAST_APPLIED).is_none()).then_some(c)
    })
    .await;
    assert_eq!(uid(&cm2), uid(&cm));
    let diff2 = wait_for("changed Recreate child recreated", || async {
        let t = h.get(&things, Some(ns), "diff").await?;
        (t["spec"]["v"] == 1).then_some(t)
    })
    .await;
    assert_ne!(uid(&diff2), uid(&diff));
    assert!(applied_by_us(&diff2));
    let same2 = wait_for("unchanged Recreate child owned", || async {
        let t = h.get(&things, Some(ns), "same").await?;
        applied_by_us(&t).then_some(t)
    })
    .await;
    assert_eq!(uid(&same2), uid(&same));

    tokio::time::sleep(Duration::from_millis(1500)).await;
    let writes = h.writes();
    let calls = hook.calls();
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert!(hook.calls() >= calls + 2, "resyncs did not happen");
    assert_eq!(
        h.writes(),
        writes,
        "no-op resyncs wrote: {:?}",
        h.embedded()
            .map(|s| format!("{:?}", s.counters().snapshot()))
    );
    h.shutdown().await;
}

/// Recreate never deletes a child when the server rejects the desired
/// object in the dry run.
#[tokio::test]
async fn recreate_keeps_child_when_dry_run_fails() {
    let h = Harness::start_with(ssa()).await;
    let ns = "invalid";
    h.create_namespace(ns).await;
    let parents = h.create_crd("InvParent", "invparents", true, true).await;
    // A child type with a schema: spec.size must be an integer.
    let crd = json!({
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": format!("sized.{GROUP}")},
        "spec": {"group": GROUP, "scope": "Namespaced",
            "names": {"kind": "Sized", "plural": "sized", "singular": "sized", "listKind": "SizedList"},
            "versions": [{"name": "v1", "served": true, "storage": true,
                "schema": {"openAPIV3Schema": {"type": "object", "properties": {
                    "metadata": {"type": "object"},
                    "spec": {"type": "object", "properties": {"size": {"type": "integer"}}}}}}}]}
    });
    h.create(&crd_resource(), None, crd).await;
    let sized = kube::core::ApiResource {
        group: GROUP.into(),
        version: "v1".into(),
        api_version: API_VERSION.into(),
        kind: "Sized".into(),
        plural: "sized".into(),
    };
    wait_for("CRD served", || async {
        h.api(&sized, Some(ns))
            .list(&Default::default())
            .await
            .ok()
            .map(|_| ())
    })
    .await;
    let hook = HookServer::start(|req| {
        let size = req["parent"]["spec"]["size"].clone();
        Reply::Json(
            json!({"children": [{"apiVersion": API_VERSION, "kind": "Sized",
            "metadata": {"name": "s", "labels": {"app": "inv"}}, "spec": {"size": size}}]}),
        )
    })
    .await;
    h.create_cc(composite_controller(
        "invalid",
        &parents,
        &[(API_VERSION, "sized", Some("Recreate"))],
        &hook.url,
    ))
    .await;
    h.create(
        &parents,
        Some(ns),
        parent(&parents, "p", json!({"app": "inv"}), json!({"size": 1})),
    )
    .await;
    let child = wait_for("child", || h.get(&sized, Some(ns), "s")).await;
    // The hook now asks for something the schema refuses.
    h.merge_patch(&parents, Some(ns), "p", json!({"spec": {"size": "big"}}))
        .await;
    let event = wait_for("SyncError event", || async {
        h.events_for(ns, "p").await.into_iter().find(|e| {
            e["reason"] == "SyncError"
                && e["message"]
                    .as_str()
                    .is_some_and(|m| m.contains("dry run failed"))
        })
    })
    .await;
    assert_eq!(event["type"], "Warning");
    let now = h.get(&sized, Some(ns), "s").await.expect("child kept");
    assert_eq!(uid(&now), uid(&child));
    assert_eq!(now["spec"]["size"], 1);
    h.shutdown().await;
}

/// RollingInPlace under server-side apply: the rollout sees applied children
/// as up to date and finishes.
#[tokio::test]
async fn rolling_in_place_with_server_side_apply() {
    let h = Harness::start_with(ssa()).await;
    let ns = "roll";
    h.create_namespace(ns).await;
    let parents = h.create_crd("RollParent", "rollparents", true, true).await;
    let hook = HookServer::start(|req| {
        let v = req["parent"]["spec"]["v"].to_string();
        let l = json!({"app": "roll"});
        Reply::Json(json!({"status": {}, "children": [
            configmap("a", &l, json!({"v": v})),
            configmap("b", &l, json!({"v": v})),
        ]}))
    })
    .await;
    h.create_cc(composite_controller(
        "roll",
        &parents,
        &[("v1", "configmaps", Some("RollingInPlace"))],
        &hook.url,
    ))
    .await;
    h.create(
        &parents,
        Some(ns),
        parent(&parents, "p", json!({"app": "roll"}), json!({"v": 1})),
    )
    .await;
    let on_latest = || async {
        let p = h.get(&parents, Some(ns), "p").await?;
        let c = p["status"]["conditions"]
            .as_array()?
            .iter()
            .find(|c| c["type"] == "Updated")?
            .clone();
        (c["reason"] == "OnLatestRevision").then_some(p)
    };
    wait_for("first revision", on_latest).await;
    h.merge_patch(&parents, Some(ns), "p", json!({"spec": {"v": 2}}))
        .await;
    wait_for("rolled", || async {
        let a = h.get(configmaps(), Some(ns), "a").await?;
        let b = h.get(configmaps(), Some(ns), "b").await?;
        let p = on_latest().await?;
        (a["data"]["v"] == "2" && b["data"]["v"] == "2" && p["status"]["observedGeneration"] == 2)
            .then_some(())
    })
    .await;
    h.shutdown().await;
}

/// DecoratorController attachments go through the same server-side apply.
#[tokio::test]
async fn decorator_attachments_are_applied() {
    let h = Harness::start_with(ssa()).await;
    let ns = "deco";
    h.create_namespace(ns).await;
    let targets = h.create_crd("DecoTarget", "decotargets", true, true).await;
    let hook = HookServer::start(|req| {
        let name = req["object"]["metadata"]["name"]
            .as_str()
            .unwrap_or_default();
        Reply::Json(json!({"attachments": [
            configmap(&format!("{name}-cm"), &json!({"app": "deco"}), json!({"k": "v"}))
        ]}))
    })
    .await;
    let dc = json!({
        "apiVersion": "metacontroller.k8s.io/v1alpha1",
        "kind": "DecoratorController",
        "metadata": {"name": "deco"},
        "spec": {
            "resources": [{"apiVersion": targets.api_version, "resource": targets.plural}],
            "attachments": [{"apiVersion": "v1", "resource": "configmaps",
                "updateStrategy": {"method": "InPlace"}}],
            "hooks": {"sync": {"webhook": {"url": hook.url}}}
        }
    });
    let decorators = kube::core::ApiResource {
        group: "metacontroller.k8s.io".into(),
        version: "v1alpha1".into(),
        api_version: "metacontroller.k8s.io/v1alpha1".into(),
        kind: "DecoratorController".into(),
        plural: "decoratorcontrollers".into(),
    };
    h.create(&decorators, None, dc).await;
    let t = h
        .create(
            &targets,
            Some(ns),
            json!({"apiVersion": targets.api_version, "kind": "DecoTarget",
                "metadata": {"name": "t"}, "spec": {}}),
        )
        .await;
    let cm = wait_for("attachment", || h.get(configmaps(), Some(ns), "t-cm")).await;
    assert!(applied_by_us(&cm), "{:?}", managers(&cm));
    assert!(cm["metadata"]["annotations"].get(LAST_APPLIED).is_none());
    assert_eq!(
        cm["metadata"]["annotations"]["metacontroller.k8s.io/decorator-controller"],
        "deco"
    );
    assert_eq!(
        cm["metadata"]["ownerReferences"][0]["uid"],
        uid(&t).as_str()
    );
    h.merge_patch(
        configmaps(),
        Some(ns),
        "t-cm",
        json!({"data": {"k": "edited"}}),
    )
    .await;
    wait_for("attachment repaired", || async {
        let cm = h.get(configmaps(), Some(ns), "t-cm").await?;
        (cm["data"]["k"] == "v").then_some(())
    })
    .await;
    h.shutdown().await;
}
