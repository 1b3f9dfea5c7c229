//! DecoratorController behaviour end to end: the embedded API server, the
//! engine and hook servers, all in the test process.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use common::decorator::*;
use common::*;
use kube::core::ApiResource;
use parking_lot::Mutex;
use serde_json::{Value, json};

/// The sync hook adds labels, annotations and status to the target and
/// creates attachments, which carry the controller reference and the
/// decorator annotation; the target's spec is left alone.
#[tokio::test]
async fn sync_webhook_decorates_target_and_creates_attachments() {
    let h = Harness::start().await;
    h.create_namespace("dec").await;
    let target_ar = h.create_crd("DecTarget", "dectargets", true, true).await;
    let child_ar = h.create_crd("DecChild", "decchildren", true, true).await;
    let hook = HookServer::start(move |req| {
        let name = req["object"]["metadata"]["name"].as_str().unwrap_or_default();
        let children = req["attachments"]["DecChild.test.metacontroller.io/v1"]
            .as_object()
            .map_or(0, |m| m.len());
        Reply::Json(json!({
            "labels": {"decorated": "yes"},
            "annotations": {"decorated-by": "dec"},
            "status": {"attachments": children},
            // The hook tries to change the spec: it must not stick.
            "spec": {"size": 100},
            "attachments": [
                {"apiVersion": API_VERSION, "kind": "DecChild",
                    "metadata": {"name": format!("{name}-child")}, "spec": {"size": req["object"]["spec"]["size"]}},
                configmap(&format!("{name}-cm"), &json!({"app": "x"}), json!({"k": "v"})),
            ]
        }))
    })
    .await;
    let mut resource = rule(&target_ar);
    resource["labelSelector"] = json!({"matchLabels": {"decorate": "yes"}});
    create_dc(
        &h,
        decorator_controller(
            "dec",
            json!([resource]),
            json!([rule(&child_ar), {"apiVersion": "v1", "resource": "configmaps"}]),
            &hook.url,
        ),
    )
    .await;
    let t = h
        .create(
            &target_ar,
            Some("dec"),
            object(
                &target_ar,
                "t1",
                json!({"decorate": "yes"}),
                json!({"size": 3}),
            ),
        )
        .await;
    // A target outside the selector is left alone.
    h.create(
        &target_ar,
        Some("dec"),
        object(
            &target_ar,
            "other",
            json!({"decorate": "no"}),
            json!({"size": 1}),
        ),
    )
    .await;
    let uid = t["metadata"]["uid"].as_str().unwrap().to_owned();

    let child = wait_for("attachment", || h.get(&child_ar, Some("dec"), "t1-child")).await;
    assert_eq!(child["spec"]["size"], 3);
    assert_eq!(child["metadata"]["annotations"][DC_ANNOTATION], "dec");
    assert_eq!(controller_uid_of(&child), Some(uid.as_str()));
    let owner = &child["metadata"]["ownerReferences"][0];
    assert_eq!(owner["kind"], "DecTarget");
    assert_eq!(owner["blockOwnerDeletion"], true);
    let last_applied: Value = serde_json::from_str(
        child["metadata"]["annotations"]["metacontroller.k8s.io/last-applied-configuration"]
            .as_str()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(
        last_applied["metadata"]["annotations"][DC_ANNOTATION],
        "dec"
    );
    let cm = wait_for("configmap attachment", || {
        h.get(configmaps(), Some("dec"), "t1-cm")
    })
    .await;
    assert_eq!(cm["metadata"]["annotations"][DC_ANNOTATION], "dec");

    let target = wait_for("decorated target", || async {
        let t = h.get(&target_ar, Some("dec"), "t1").await?;
        (t["status"]["attachments"] == 1).then_some(t)
    })
    .await;
    assert_eq!(target["metadata"]["labels"]["decorated"], "yes");
    assert_eq!(target["metadata"]["labels"]["decorate"], "yes");
    assert_eq!(target["metadata"]["annotations"]["decorated-by"], "dec");
    assert_eq!(target["spec"], json!({"size": 3}));
    // No observedGeneration for decorators.
    assert!(target["status"].get("observedGeneration").is_none());

    // Request shape, once the ConfigMap attachment has been observed too
    // (its watch event may arrive after the status above was written).
    let req = wait_for("a request with both attachments", || async {
        hook.requests()
            .into_iter()
            .rev()
            .map(|(_, r)| r)
            .find(|r| r["attachments"]["ConfigMap.v1"]["t1-cm"].is_object())
    })
    .await;
    assert_eq!(req["controller"]["kind"], "DecoratorController");
    assert_eq!(req["controller"]["metadata"]["name"], "dec");
    assert_eq!(req["object"]["metadata"]["name"], "t1");
    assert!(req.get("parent").is_none());
    assert_eq!(req["related"], json!({}));
    assert_eq!(req["finalizing"], false);
    assert!(req["attachments"]["DecChild.test.metacontroller.io/v1"]["t1-child"].is_object());
    assert!(req["attachments"]["ConfigMap.v1"]["t1-cm"].is_object());
    let first = &hook.requests()[0].1;
    assert_eq!(first["attachments"]["ConfigMap.v1"], json!({}));
    assert!(
        hook.requests()
            .iter()
            .all(|(_, r)| r["object"]["metadata"]["name"] == "t1")
    );
    let other = h.get(&target_ar, Some("dec"), "other").await.unwrap();
    assert!(other.get("status").is_none());
    assert!(other["metadata"]["labels"].get("decorated").is_none());

    // Started event on the DecoratorController.
    wait_for("Started event", || async {
        h.events_for("default", "dec")
            .await
            .iter()
            .any(|e| {
                e["reason"] == "Started" && e["involvedObject"]["kind"] == "DecoratorController"
            })
            .then_some(())
    })
    .await;
    h.shutdown().await;
}

/// `resyncAfterSeconds` calls the hook again without any other trigger.
#[tokio::test]
async fn resync_after_calls_hook_again() {
    let h = Harness::start().await;
    h.create_namespace("resync").await;
    let target_ar = h
        .create_crd("ResyncTarget", "resynctargets", true, true)
        .await;
    let state: Arc<Mutex<(Option<Instant>, bool)>> = Arc::new(Mutex::new((None, false)));
    let hook_state = state.clone();
    let hook = HookServer::start(move |req| {
        let mut state = hook_state.lock();
        let status = &req["object"]["status"];
        if status.is_null() {
            Reply::Json(json!({"status": {"phase": "seen"}}))
        } else if state.0.is_none() {
            state.0 = Some(Instant::now());
            Reply::Json(json!({"resyncAfterSeconds": 0.1}))
        } else if !state.1 {
            state.1 = true;
            let elapsed = state.0.unwrap().elapsed().as_secs_f64();
            Reply::Json(json!({"status": {"elapsedSeconds": elapsed}}))
        } else {
            Reply::Json(json!({}))
        }
    })
    .await;
    create_dc(
        &h,
        decorator_controller("resync", json!([rule(&target_ar)]), json!([]), &hook.url),
    )
    .await;
    h.create(
        &target_ar,
        Some("resync"),
        object(&target_ar, "t", json!({}), json!({})),
    )
    .await;
    let elapsed = wait_for("elapsedSeconds", || async {
        let t = h.get(&target_ar, Some("resync"), "t").await?;
        t["status"]["elapsedSeconds"].as_f64()
    })
    .await;
    assert!(elapsed >= 0.09, "resync came too early: {elapsed}");
    h.shutdown().await;
}

/// Label and annotation selectors must both match; a resource rule
/// without selectors decorates every object of its type.
#[tokio::test]
async fn label_and_annotation_selectors_combine() {
    let h = Harness::start().await;
    h.create_namespace("sel").await;
    let hook = HookServer::start(|_| Reply::Json(json!({"labels": {"seen": "true"}}))).await;
    let resource = json!({
        "apiVersion": "v1", "resource": "pods",
        "labelSelector": {"matchLabels": {"app": "web"},
            "matchExpressions": [{"key": "tier", "operator": "In", "values": ["a", "b"]}]},
        "annotationSelector": {"matchAnnotations": {"team": "blue team"},
            "matchExpressions": [{"key": "skip", "operator": "DoesNotExist"}]}
    });
    create_dc(
        &h,
        decorator_controller("sel", json!([resource]), json!([]), &hook.url),
    )
    .await;
    // Second DC without any selector: everything of its type.
    let all_hook =
        HookServer::start(|_| Reply::Json(json!({"annotations": {"all": "true"}}))).await;
    create_dc(
        &h,
        decorator_controller(
            "all",
            json!([{"apiVersion": "v1", "resource": "configmaps"}]),
            json!([]),
            &all_hook.url,
        ),
    )
    .await;
    let team = json!({"team": "blue team"});
    let cases = [
        (
            "match",
            json!({"app": "web", "tier": "a"}),
            team.clone(),
            true,
        ),
        (
            "wrong-tier",
            json!({"app": "web", "tier": "c"}),
            team.clone(),
            false,
        ),
        ("no-tier", json!({"app": "web"}), team.clone(), false),
        (
            "wrong-team",
            json!({"app": "web", "tier": "b"}),
            json!({"team": "red"}),
            false,
        ),
        (
            "skipped",
            json!({"app": "web", "tier": "b"}),
            json!({"team": "blue team", "skip": "1"}),
            false,
        ),
        (
            "no-annotations",
            json!({"app": "web", "tier": "b"}),
            json!({}),
            false,
        ),
        (
            "match-b",
            json!({"app": "web", "tier": "b"}),
            team.clone(),
            true,
        ),
    ];
    for (name, labels, annotations, _) in &cases {
        h.create(
            &pods(),
            Some("sel"),
            pod(name, labels.clone(), annotations.clone()),
        )
        .await;
    }
    h.create(
        configmaps(),
        Some("sel"),
        configmap("any", &json!({}), json!({})),
    )
    .await;
    for (name, _, _, expected) in &cases {
        if *expected {
            wait_for(&format!("{name} decorated"), || async {
                let p = h.get(&pods(), Some("sel"), name).await?;
                (p["metadata"]["labels"]["seen"] == "true").then_some(())
            })
            .await;
        }
    }
    wait_for("configmap decorated", || async {
        let cm = h.get(configmaps(), Some("sel"), "any").await?;
        (cm["metadata"]["annotations"]["all"] == "true").then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    for (name, _, _, expected) in &cases {
        let p = h.get(&pods(), Some("sel"), name).await.unwrap();
        assert_eq!(
            p["metadata"]["labels"].get("seen").is_some(),
            *expected,
            "{name}"
        );
    }
    // Only matching pods reached the hook.
    for (_, req) in hook.requests() {
        let name = req["object"]["metadata"]["name"]
            .as_str()
            .unwrap()
            .to_owned();
        assert!(name == "match" || name == "match-b", "{name}");
    }
    // Pods that start matching are picked up.
    h.merge_patch(
        &pods(),
        Some("sel"),
        "no-tier",
        json!({"metadata": {"labels": {"tier": "a"}}}),
    )
    .await;
    wait_for("newly matching pod decorated", || async {
        let p = h.get(&pods(), Some("sel"), "no-tier").await?;
        (p["metadata"]["labels"]["seen"] == "true").then_some(())
    })
    .await;
    h.shutdown().await;
}

/// `null` values delete labels and annotations; unmentioned keys stay.
#[tokio::test]
async fn null_deletes_labels_and_annotations() {
    let h = Harness::start().await;
    h.create_namespace("nulls").await;
    let hook = HookServer::start(|_| {
        Reply::Json(json!({
            "labels": {"remove-me": null, "added": "1", "absent": null},
            "annotations": {"note": null, "new-note": "hello <world> & co"}
        }))
    })
    .await;
    let target_ar = h.create_crd("NullTarget", "nulltargets", true, true).await;
    create_dc(
        &h,
        decorator_controller("nulls", json!([rule(&target_ar)]), json!([]), &hook.url),
    )
    .await;
    let mut t = object(
        &target_ar,
        "t",
        json!({"remove-me": "x", "keep": "y"}),
        json!({}),
    );
    t["metadata"]["annotations"] = json!({"note": "old", "other": "kept"});
    h.create(&target_ar, Some("nulls"), t).await;
    let t = wait_for("labels merged", || async {
        let t = h.get(&target_ar, Some("nulls"), "t").await?;
        (t["metadata"]["labels"]["added"] == "1").then_some(t)
    })
    .await;
    assert_eq!(t["metadata"]["labels"], json!({"keep": "y", "added": "1"}));
    assert_eq!(
        t["metadata"]["annotations"],
        json!({"other": "kept", "new-note": "hello <world> & co"})
    );
    // Nothing is left to change: no further writes.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let writes = h.writes();
    h.merge_patch(
        &target_ar,
        Some("nulls"),
        "t",
        json!({"spec": {"touch": 1}}),
    )
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        h.writes(),
        writes,
        "the engine wrote nothing after the test's own patch"
    );
    h.shutdown().await;
}

/// With a finalize hook the target carries the finalizer. A target that
/// stops matching is finalized (finalizing: true), its attachments removed
/// and the finalizer dropped, without deleting it; a deleted target is
/// finalized and then goes away.
#[tokio::test]
async fn finalize_on_opt_out_and_on_delete() {
    let h = Harness::start().await;
    h.create_namespace("fin").await;
    let target_ar = h.create_crd("FinTarget", "fintargets", true, true).await;
    let sync = HookServer::start(|req| {
        let name = req["object"]["metadata"]["name"]
            .as_str()
            .unwrap_or_default();
        Reply::Json(json!({
            "labels": {"finalized": null},
            "attachments": [configmap(&format!("{name}-cm"), &json!({}), json!({}))]
        }))
    })
    .await;
    let finalize = HookServer::start(|req| {
        assert_eq!(req["finalizing"], true);
        // Finished once the attachments are gone.
        let done = req["attachments"]["ConfigMap.v1"]
            .as_object()
            .is_none_or(|m| m.is_empty());
        Reply::Json(json!({
            "labels": {"finalized": if done { "true" } else { "pending" }},
            "attachments": [],
            "finalized": done
        }))
    })
    .await;
    let mut resource = rule(&target_ar);
    resource["annotationSelector"] = json!({"matchAnnotations": {"decorate": "true"}});
    let mut dc = decorator_controller(
        "fin",
        json!([resource]),
        json!([{"apiVersion": "v1", "resource": "configmaps"}]),
        &sync.url,
    );
    dc["spec"]["hooks"]["finalize"] = json!({"webhook": {"url": finalize.url}});
    create_dc(&h, dc).await;
    for name in ["optout", "deleted"] {
        let mut t = object(&target_ar, name, json!({}), json!({}));
        t["metadata"]["annotations"] = json!({"decorate": "true"});
        h.create(&target_ar, Some("fin"), t).await;
    }
    let finalizer = "metacontroller.io/decoratorcontroller-fin";
    for name in ["optout", "deleted"] {
        wait_for("finalizer and attachment", || async {
            let t = h.get(&target_ar, Some("fin"), name).await?;
            let has = t["metadata"]["finalizers"]
                .as_array()?
                .iter()
                .any(|f| f == finalizer);
            let cm = h
                .get(configmaps(), Some("fin"), &format!("{name}-cm"))
                .await;
            (has && cm.is_some()).then_some(())
        })
        .await;
    }

    // Opt out: the annotation goes away.
    h.merge_patch(
        &target_ar,
        Some("fin"),
        "optout",
        json!({"metadata": {"annotations": {"decorate": null}}}),
    )
    .await;
    let t = wait_for("opt-out finalized", || async {
        let t = h.get(&target_ar, Some("fin"), "optout").await?;
        let has = t["metadata"]["finalizers"]
            .as_array()
            .is_some_and(|f| f.iter().any(|f| f == finalizer));
        (!has && t["metadata"]["labels"]["finalized"] == "true").then_some(t)
    })
    .await;
    assert!(t["metadata"].get("deletionTimestamp").is_none());
    assert!(
        h.get(configmaps(), Some("fin"), "optout-cm")
            .await
            .is_none(),
        "attachment left behind"
    );
    assert!(
        finalize
            .requests()
            .iter()
            .any(|(_, r)| r["object"]["metadata"]["name"] == "optout")
    );

    // Deletion.
    h.delete(&target_ar, Some("fin"), "deleted").await;
    wait_for("deleted target gone", || async {
        h.get(&target_ar, Some("fin"), "deleted")
            .await
            .is_none()
            .then_some(())
    })
    .await;
    assert!(
        h.get(configmaps(), Some("fin"), "deleted-cm")
            .await
            .is_none()
    );
    assert!(
        finalize
            .requests()
            .iter()
            .any(|(_, r)| r["object"]["metadata"]["name"] == "deleted")
    );
    // The opted-out target is not touched any more.
    let calls = (sync.calls(), finalize.calls());
    h.merge_patch(&target_ar, Some("fin"), "optout", json!({"spec": {"x": 1}}))
        .await;
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!((sync.calls(), finalize.calls()), calls);
    h.shutdown().await;
}

/// An attachment deleted behind the controller's back is recreated; objects
/// owned by the target but lacking the decorator annotation are not
/// observed (and not deleted).
#[tokio::test]
async fn attachments_are_recreated_and_foreign_objects_ignored() {
    let h = Harness::start().await;
    h.create_namespace("att").await;
    let target_ar = h.create_crd("AttTarget", "atttargets", true, true).await;
    let hook = HookServer::start(|_| {
        Reply::Json(json!({"attachments": [configmap("mine", &json!({}), json!({"a": "1"}))]}))
    })
    .await;
    create_dc(
        &h,
        decorator_controller(
            "att",
            json!([rule(&target_ar)]),
            json!([{"apiVersion": "v1", "resource": "configmaps", "updateStrategy": {"method": "InPlace"}}]),
            &hook.url,
        ),
    )
    .await;
    let t = h
        .create(
            &target_ar,
            Some("att"),
            object(&target_ar, "t", json!({}), json!({})),
        )
        .await;
    let first = wait_for("attachment", || h.get(configmaps(), Some("att"), "mine")).await;
    // Owned, but not created by this decorator.
    let mut foreign = configmap("foreign", &json!({}), json!({}));
    foreign["metadata"]["ownerReferences"] = json!([{
        "apiVersion": API_VERSION, "kind": "AttTarget", "name": "t",
        "uid": t["metadata"]["uid"], "controller": true}]);
    h.create(configmaps(), Some("att"), foreign).await;

    h.delete(configmaps(), Some("att"), "mine").await;
    let again = wait_for("attachment recreated", || async {
        let cm = h.get(configmaps(), Some("att"), "mine").await?;
        (cm["metadata"]["uid"] != first["metadata"]["uid"]).then_some(cm)
    })
    .await;
    assert_eq!(again["data"], json!({"a": "1"}));
    // InPlace: drift is corrected.
    h.merge_patch(
        configmaps(),
        Some("att"),
        "mine",
        json!({"data": {"a": "2"}}),
    )
    .await;
    wait_for("drift corrected", || async {
        let cm = h.get(configmaps(), Some("att"), "mine").await?;
        (cm["data"]["a"] == "1").then_some(())
    })
    .await;
    assert!(h.get(configmaps(), Some("att"), "foreign").await.is_some());
    for (_, req) in hook.requests() {
        assert!(req["attachments"]["ConfigMap.v1"].get("foreign").is_none());
    }
    h.shutdown().await;
}

/// A cluster-scoped target (a built-in without a status subresource) with
/// namespaced attachments in several namespaces, keyed `namespace/name`.
#[tokio::test]
async fn cluster_scoped_target_with_namespaced_attachments() {
    let h = Harness::start().await;
    h.create_namespace("ns-a").await;
    h.create_namespace("ns-b").await;
    let clusterroles = ApiResource {
        group: "rbac.authorization.k8s.io".into(),
        version: "v1".into(),
        api_version: "rbac.authorization.k8s.io/v1".into(),
        kind: "ClusterRole".into(),
        plural: "clusterroles".into(),
    };
    let hook = HookServer::start(|req| {
        let name = req["object"]["metadata"]["name"]
            .as_str()
            .unwrap_or_default();
        let attachments: Vec<Value> = ["ns-a", "ns-b"]
            .iter()
            .map(|ns| {
                let mut cm = configmap(&format!("{name}-copy"), &json!({}), json!({"role": name}));
                cm["metadata"]["namespace"] = json!(ns);
                cm
            })
            .collect();
        Reply::Json(json!({"annotations": {"copies": "2"}, "attachments": attachments}))
    })
    .await;
    create_dc(
        &h,
        decorator_controller(
            "roles",
            json!([{"apiVersion": "rbac.authorization.k8s.io/v1", "resource": "clusterroles",
                "labelSelector": {"matchLabels": {"copy": "yes"}}}]),
            json!([{"apiVersion": "v1", "resource": "configmaps"}]),
            &hook.url,
        ),
    )
    .await;
    let role = h
        .create(
            &clusterroles,
            None,
            json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
                "metadata": {"name": "reader", "labels": {"copy": "yes"}},
                "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get"]}]}),
        )
        .await;
    for ns in ["ns-a", "ns-b"] {
        let cm = wait_for("copy", || h.get(configmaps(), Some(ns), "reader-copy")).await;
        assert_eq!(controller_uid_of(&cm), role["metadata"]["uid"].as_str());
        assert_eq!(cm["metadata"]["ownerReferences"][0]["kind"], "ClusterRole");
    }
    wait_for("annotation on the role", || async {
        let r = h.get(&clusterroles, None, "reader").await?;
        (r["metadata"]["annotations"]["copies"] == "2").then_some(())
    })
    .await;
    wait_for("attachments keyed namespace/name", || async {
        let req = hook.last_request()?;
        let map = req["attachments"]["ConfigMap.v1"].as_object()?;
        (map.contains_key("ns-a/reader-copy") && map.contains_key("ns-b/reader-copy")).then_some(())
    })
    .await;
    // Manual deletion in one namespace is repaired.
    h.delete(configmaps(), Some("ns-b"), "reader-copy").await;
    wait_for("copy recreated", || {
        h.get(configmaps(), Some("ns-b"), "reader-copy")
    })
    .await;
    h.shutdown().await;
}

/// Targets without a status subresource get their status written with the
/// object itself.
#[tokio::test]
async fn target_without_status_subresource() {
    let h = Harness::start().await;
    h.create_namespace("nosub").await;
    let target_ar = h
        .create_crd("PlainTarget", "plaintargets", true, false)
        .await;
    let hook = HookServer::start(|req| {
        Reply::Json(
            json!({"labels": {"l": "v"}, "status": {"size": req["object"]["spec"]["size"]}}),
        )
    })
    .await;
    create_dc(
        &h,
        decorator_controller("nosub", json!([rule(&target_ar)]), json!([]), &hook.url),
    )
    .await;
    h.create(
        &target_ar,
        Some("nosub"),
        object(&target_ar, "t", json!({}), json!({"size": 5})),
    )
    .await;
    let t = wait_for("status written", || async {
        let t = h.get(&target_ar, Some("nosub"), "t").await?;
        (t["status"]["size"] == 5).then_some(t)
    })
    .await;
    assert_eq!(t["metadata"]["labels"]["l"], "v");
    assert_eq!(t["spec"], json!({"size": 5}));
    h.merge_patch(&target_ar, Some("nosub"), "t", json!({"spec": {"size": 6}}))
        .await;
    wait_for("status follows", || async {
        let t = h.get(&target_ar, Some("nosub"), "t").await?;
        (t["status"]["size"] == 6).then_some(())
    })
    .await;
    h.shutdown().await;
}

/// `status: null` (or missing) keeps the target's status.
#[tokio::test]
async fn null_status_keeps_status() {
    let h = Harness::start().await;
    h.create_namespace("keep").await;
    let target_ar = h.create_crd("KeepTarget", "keeptargets", true, true).await;
    let hook =
        HookServer::start(|_| Reply::Json(json!({"status": null, "labels": {"seen": "1"}}))).await;
    let t = h
        .create(
            &target_ar,
            Some("keep"),
            object(&target_ar, "t", json!({}), json!({})),
        )
        .await;
    let _ = t;
    h.api(&target_ar, Some("keep"))
        .patch_status(
            "t",
            &kube::api::PatchParams::default(),
            &kube::api::Patch::Merge(&json!({"status": {"mine": true}})),
        )
        .await
        .unwrap();
    create_dc(
        &h,
        decorator_controller("keep", json!([rule(&target_ar)]), json!([]), &hook.url),
    )
    .await;
    let t = wait_for("decorated", || async {
        let t = h.get(&target_ar, Some("keep"), "t").await?;
        (t["metadata"]["labels"]["seen"] == "1").then_some(t)
    })
    .await;
    assert_eq!(t["status"], json!({"mine": true}));
    h.shutdown().await;
}

/// Once converged, periodic resyncs call the hook but write nothing, with
/// labels, annotations, status, a finalizer and attachments in play.
#[tokio::test]
async fn noop_resyncs_make_zero_writes() {
    let h = Harness::start().await;
    h.create_namespace("noop").await;
    let target_ar = h.create_crd("NoopTarget", "nooptargets", true, true).await;
    let hook = HookServer::start(|req| {
        let replicas = req["object"]["spec"]["replicas"].as_i64().unwrap_or(0);
        let attachments: Vec<Value> = (0..replicas)
            .map(|i| {
                json!({"apiVersion": "v1", "kind": "ConfigMap",
                    "metadata": {"name": format!("c{i}"), "annotations": {"a": "<b>&"}},
                    "data": {"index": i.to_string()}})
            })
            .collect();
        Reply::Json(json!({
            "labels": {"replicas": replicas.to_string(), "gone": null},
            "annotations": {"note": "all <good> & well"},
            "status": {"replicas": replicas, "ratio": 1.0},
            "attachments": attachments
        }))
    })
    .await;
    let mut dc = decorator_controller(
        "noop",
        json!([rule(&target_ar)]),
        json!([{"apiVersion": "v1", "resource": "configmaps", "updateStrategy": {"method": "InPlace"}}]),
        &hook.url,
    );
    dc["spec"]["resyncPeriodSeconds"] = json!(1);
    dc["spec"]["hooks"]["finalize"] = json!({"webhook": {"url": hook.url}});
    create_dc(&h, dc).await;
    h.create(
        &target_ar,
        Some("noop"),
        object(&target_ar, "t", json!({}), json!({"replicas": 2})),
    )
    .await;
    wait_for("convergence", || async {
        let t = h.get(&target_ar, Some("noop"), "t").await?;
        let n = h.list(configmaps(), Some("noop")).await.len();
        (t["status"]["replicas"] == 2 && n == 2).then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let t = h.get(&target_ar, Some("noop"), "t").await.unwrap();
    assert_eq!(
        t["metadata"]["finalizers"],
        json!(["metacontroller.io/decoratorcontroller-noop"])
    );
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
    h.shutdown().await;
}

/// v2 hooks key attachments `namespace/name`.
#[tokio::test]
async fn v2_hooks_use_namespace_name_keys() {
    let h = Harness::start().await;
    h.create_namespace("v2").await;
    let target_ar = h.create_crd("V2Target", "v2targets", true, true).await;
    let hook = HookServer::start(|_| {
        Reply::Json(json!({"attachments": [configmap("v2-child", &json!({}), json!({}))]}))
    })
    .await;
    let mut dc = decorator_controller(
        "v2",
        json!([rule(&target_ar)]),
        json!([{"apiVersion": "v1", "resource": "configmaps"}]),
        &hook.url,
    );
    dc["spec"]["hooks"]["sync"]["version"] = json!("v2");
    create_dc(&h, dc).await;
    h.create(
        &target_ar,
        Some("v2"),
        object(&target_ar, "t", json!({}), json!({})),
    )
    .await;
    wait_for("v2 key", || async {
        hook.last_request()?["attachments"]["ConfigMap.v1"]
            .get("v2/v2-child")
            .map(|_| ())
    })
    .await;
    assert!(
        hook.last_request().unwrap()["attachments"]["ConfigMap.v1"]
            .get("v2-child")
            .is_none()
    );
    h.shutdown().await;
}

/// The customize hook selects related objects (DecoratorController flavour
/// of Metacontroller's integration test): the related ConfigMap reaches the
/// sync hook, and changing it triggers a sync.
#[tokio::test]
async fn customize_related_objects_and_their_changes() {
    let h = Harness::start().await;
    h.create_namespace("cust").await;
    let target_ar = h.create_crd("CustTarget", "custtargets", true, true).await;
    let child_ar = h.create_crd("CustChild", "custchildren", true, true).await;
    h.create(
        configmaps(),
        Some("cust"),
        configmap("related-config-map", &json!({}), json!({"v": "1"})),
    )
    .await;
    let customize = HookServer::start(|req| {
        assert!(req.get("parent").is_some());
        assert_eq!(req["controller"]["kind"], "DecoratorController");
        Reply::Json(json!({"relatedResources": [{
            "apiVersion": "v1", "resource": "configmaps",
            "namespace": req["parent"]["metadata"]["namespace"],
            "names": ["related-config-map"]
        }]}))
    })
    .await;
    let sync = HookServer::start(|req| {
        let related = req["related"]["ConfigMap.v1"]
            .as_object()
            .cloned()
            .unwrap_or_default();
        let name = req["object"]["metadata"]["name"]
            .as_str()
            .unwrap_or_default();
        let attachments: Vec<Value> = related
            .iter()
            .map(|(key, cm)| {
                json!({"apiVersion": API_VERSION, "kind": "CustChild",
                    "metadata": {"name": format!("{name}-{key}")},
                    "spec": {"v": cm["data"]["v"]}})
            })
            .collect();
        Reply::Json(json!({"attachments": attachments}))
    })
    .await;
    let mut dc = decorator_controller(
        "cust",
        json!([rule(&target_ar)]),
        json!([{"apiVersion": API_VERSION, "resource": "custchildren", "updateStrategy": {"method": "InPlace"}}]),
        &sync.url,
    );
    dc["spec"]["hooks"]["customize"] = json!({"webhook": {"url": customize.url}});
    create_dc(&h, dc).await;
    h.create(
        &target_ar,
        Some("cust"),
        object(&target_ar, "t", json!({}), json!({})),
    )
    .await;
    let child = wait_for("child from related", || {
        h.get(&child_ar, Some("cust"), "t-related-config-map")
    })
    .await;
    assert_eq!(child["spec"]["v"], "1");
    // A change of the related object triggers a sync.
    h.merge_patch(
        configmaps(),
        Some("cust"),
        "related-config-map",
        json!({"data": {"v": "2"}}),
    )
    .await;
    wait_for("related change synced", || async {
        let c = h
            .get(&child_ar, Some("cust"), "t-related-config-map")
            .await?;
        (c["spec"]["v"] == "2").then_some(())
    })
    .await;
    // The customize answer is cached per generation.
    assert_eq!(
        customize.calls(),
        1,
        "customize called again for the same generation"
    );
    h.shutdown().await;
}

/// Changing the controller rebuilds it; `--target-label-selector` applies to
/// DecoratorControllers too.
#[tokio::test]
async fn target_label_selector_and_rebuild() {
    let h = Harness::start_with(metacontroller_engine::EngineConfig {
        target_label_selector: metacontroller_selectors::Selector::parse("team=a").unwrap(),
        ..Default::default()
    })
    .await;
    h.create_namespace("life").await;
    let target_ar = h.create_crd("LifeTarget", "lifetargets", true, true).await;
    let first = HookServer::start(|_| Reply::Json(json!({"labels": {"hook": "first"}}))).await;
    let second = HookServer::start(|_| Reply::Json(json!({"labels": {"hook": "second"}}))).await;
    let ignored = Arc::new(AtomicBool::new(false));
    let flag = ignored.clone();
    let theirs = HookServer::start(move |_| {
        flag.store(true, Ordering::SeqCst);
        Reply::Json(json!({"labels": {"hook": "theirs"}}))
    })
    .await;
    let mut ours = decorator_controller("ours", json!([rule(&target_ar)]), json!([]), &first.url);
    ours["metadata"]["labels"] = json!({"team": "a"});
    create_dc(&h, ours).await;
    let mut other =
        decorator_controller("theirs", json!([rule(&target_ar)]), json!([]), &theirs.url);
    other["metadata"]["labels"] = json!({"team": "b"});
    create_dc(&h, other).await;
    h.create(
        &target_ar,
        Some("life"),
        object(&target_ar, "t", json!({}), json!({})),
    )
    .await;
    wait_for("first hook", || async {
        let t = h.get(&target_ar, Some("life"), "t").await?;
        (t["metadata"]["labels"]["hook"] == "first").then_some(())
    })
    .await;
    h.merge_patch(
        &dc_resource(),
        None,
        "ours",
        json!({"spec": {"hooks": {"sync": {"webhook": {"url": second.url}}}}}),
    )
    .await;
    wait_for("second hook", || async {
        let t = h.get(&target_ar, Some("life"), "t").await?;
        (t["metadata"]["labels"]["hook"] == "second").then_some(())
    })
    .await;
    wait_for("Stopped and Started events", || async {
        let events = h.events_for("default", "ours").await;
        let count = |r: &str| events.iter().filter(|e| e["reason"] == r).count();
        (count("Stopped") >= 1 && count("Started") >= 1).then_some(())
    })
    .await;
    h.delete(&dc_resource(), None, "ours").await;
    wait_for("Stopped after delete", || async {
        h.events_for("default", "ours")
            .await
            .iter()
            .filter(|e| e["reason"] == "Stopped")
            .count()
            .ge(&2)
            .then_some(())
    })
    .await;
    let calls = second.calls();
    h.merge_patch(&target_ar, Some("life"), "t", json!({"spec": {"x": 1}}))
        .await;
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(second.calls(), calls);
    assert!(
        !ignored.load(Ordering::SeqCst),
        "non-matching controller was hosted"
    );
    h.shutdown().await;
}

/// A DecoratorController on StatefulSets (built-in, with a status
/// subresource): one Service per replica, updated with the replica count.
#[tokio::test]
async fn statefulset_targets_get_a_service_per_replica() {
    let h = Harness::start().await;
    h.create_namespace("sts").await;
    let statefulsets = ApiResource {
        group: "apps".into(),
        version: "v1".into(),
        api_version: "apps/v1".into(),
        kind: "StatefulSet".into(),
        plural: "statefulsets".into(),
    };
    let services = core("Service", "services");
    let hook = HookServer::start(|req| {
        let sts = &req["object"];
        let name = sts["metadata"]["name"].as_str().unwrap_or_default();
        let replicas = sts["spec"]["replicas"].as_i64().unwrap_or(1);
        let attachments: Vec<Value> = (0..replicas)
            .map(|i| {
                json!({"apiVersion": "v1", "kind": "Service",
                    "metadata": {"name": format!("{name}-{i}")},
                    "spec": {"selector": {"statefulset.kubernetes.io/pod-name": format!("{name}-{i}")},
                        "ports": [{"port": 80, "targetPort": 8080}]}})
            })
            .collect();
        Reply::Json(json!({"attachments": attachments}))
    })
    .await;
    create_dc(
        &h,
        decorator_controller(
            "sts",
            json!([{"apiVersion": "apps/v1", "resource": "statefulsets",
                "annotationSelector": {"matchExpressions": [{"key": "service-per-pod", "operator": "Exists"}]}}]),
            json!([{"apiVersion": "v1", "resource": "services"}]),
            &hook.url,
        ),
    )
    .await;
    h.create(
        &statefulsets,
        Some("sts"),
        json!({"apiVersion": "apps/v1", "kind": "StatefulSet",
            "metadata": {"name": "web", "annotations": {"service-per-pod": ""}},
            "spec": {"replicas": 3, "serviceName": "web",
                "selector": {"matchLabels": {"app": "web"}},
                "template": {"metadata": {"labels": {"app": "web"}},
                    "spec": {"containers": [{"name": "c", "image": "nginx"}]}}}}),
    )
    .await;
    wait_for("3 services", || async {
        (h.list(&services, Some("sts")).await.len() == 3).then_some(())
    })
    .await;
    h.merge_patch(
        &statefulsets,
        Some("sts"),
        "web",
        json!({"spec": {"replicas": 1}}),
    )
    .await;
    wait_for("1 service", || async {
        let names: Vec<String> = h
            .list(&services, Some("sts"))
            .await
            .iter()
            .map(|s| s["metadata"]["name"].as_str().unwrap().to_owned())
            .collect();
        (names == ["web-0"]).then_some(())
    })
    .await;
    h.shutdown().await;
}
