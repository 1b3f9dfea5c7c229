//! Rolling updates (`RollingRecreate`, `RollingInPlace`) with
//! ControllerRevisions, end to end: the embedded API server, the engine and
//! hook servers in the test process. There is no kubelet and no ReplicaSet
//! controller: the tests write the children's status themselves.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use common::*;
use kube::api::{Patch, PatchParams};
use kube::core::ApiResource;
use metacontroller_engine::{ApplyStrategy, EngineConfig};
use parking_lot::Mutex;
use serde_json::{Value, json};

/// SHA-1 in hex, computed by `sha1sum` so that the test does not share the
/// engine's implementation.
fn sha1_hex(data: &[u8]) -> String {
    let mut child = Command::new("sha1sum")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("run sha1sum");
    child.stdin.take().unwrap().write_all(data).unwrap();
    let out = child.wait_with_output().unwrap();
    String::from_utf8(out.stdout).unwrap()[..40].to_owned()
}

/// Metacontroller's revision name: `<plural>.<group>-<sha1(uid + patch)>`.
fn revision_name(plural: &str, uid: &str, patch_json: &str) -> String {
    let mut data = uid.as_bytes().to_vec();
    data.extend_from_slice(patch_json.as_bytes());
    format!("{plural}.{GROUP}-{}", sha1_hex(&data))
}

fn revisions_resource() -> ApiResource {
    ApiResource {
        group: "metacontroller.k8s.io".into(),
        version: "v1alpha1".into(),
        api_version: "metacontroller.k8s.io/v1alpha1".into(),
        kind: "ControllerRevision".into(),
        plural: "controllerrevisions".into(),
    }
}

fn pods() -> ApiResource {
    core("Pod", "pods")
}

fn replicasets() -> ApiResource {
    ApiResource {
        group: "apps".into(),
        version: "v1".into(),
        api_version: "apps/v1".into(),
        kind: "ReplicaSet".into(),
        plural: "replicasets".into(),
    }
}

fn uid(obj: &Value) -> String {
    obj["metadata"]["uid"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

fn updated_condition(parent: &Value) -> Option<Value> {
    parent["status"]["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"] == "Updated")
        .cloned()
}

async fn set_status(h: &Harness, ar: &ApiResource, ns: &str, name: &str, status: Value) {
    h.api(ar, Some(ns))
        .patch_status(
            name,
            &PatchParams::default(),
            &Patch::Merge(&json!({ "status": status })),
        )
        .await
        .unwrap_or_else(|e| panic!("status of {} {name}: {e}", ar.kind));
}

fn config(strategy: ApplyStrategy) -> EngineConfig {
    EngineConfig {
        discovery_interval: Duration::from_secs(2),
        apply_strategy: strategy,
        ..EngineConfig::default()
    }
}

// ---------------------------------------------------------------------------
// A CatSet: a StatefulSet clone (OrderedReady Pods plus PVCs), like
// Metacontroller's catset example.
// ---------------------------------------------------------------------------

fn is_ready(pod: &Value) -> bool {
    pod["status"]["phase"] == "Running"
        && pod["metadata"]["deletionTimestamp"].is_null()
        && pod["status"]["conditions"].as_array().is_some_and(|c| {
            c.iter()
                .any(|c| c["type"] == "Ready" && c["status"] == "True")
        })
}

fn ordinal(base: &str, name: &str) -> Option<i64> {
    let rest = name.strip_prefix(base)?.strip_prefix('-')?;
    if rest.is_empty() || !rest.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    rest.parse().ok()
}

/// The CatSet sync/finalize hook.
fn catset_hook(req: &Value) -> Value {
    let cs = &req["parent"];
    let name = cs["metadata"]["name"].as_str().unwrap_or_default();
    let mut replicas = cs["spec"]["replicas"].as_i64().unwrap_or(0);
    let template = &cs["spec"]["template"];
    let mut observed: BTreeMap<i64, &Value> = BTreeMap::new();
    if let Some(pods) = req["children"]["Pod.v1"].as_object() {
        for pod in pods.values() {
            if let Some(i) = ordinal(name, pod["metadata"]["name"].as_str().unwrap_or_default()) {
                observed.insert(i, pod);
            }
        }
    }
    let mut out = json!({});
    if req["finalizing"] == true {
        replicas = 0;
        out["finalized"] = json!(observed.is_empty());
    }
    let mut ready = 0;
    while ready < replicas && observed.get(&ready).is_some_and(|p| is_ready(p)) {
        ready += 1;
    }
    out["status"] = json!({"replicas": observed.len(), "readyReplicas": ready});

    let claims: Vec<Value> = cs["spec"]["volumeClaimTemplates"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let new_pod = |i: i64| {
        let pod_name = format!("{name}-{i}");
        let mut spec = template["spec"].clone();
        spec["hostname"] = json!(pod_name);
        for claim in &claims {
            let claim_name = claim["metadata"]["name"].as_str().unwrap_or_default();
            if !spec["volumes"].is_array() {
                spec["volumes"] = json!([]);
            }
            spec["volumes"].as_array_mut().unwrap().push(json!({
                "name": claim_name,
                "persistentVolumeClaim": {"claimName": format!("{claim_name}-{pod_name}")}
            }));
        }
        let mut metadata = template["metadata"].clone();
        metadata["name"] = json!(pod_name);
        json!({"apiVersion": "v1", "kind": "Pod", "metadata": metadata, "spec": spec})
    };
    let mut desired: BTreeSet<i64> = observed.keys().copied().collect();
    if ready < replicas {
        desired.insert(ready);
    }
    if ready == replicas
        && let Some(&max) = desired.iter().next_back()
        && max >= replicas
    {
        desired.remove(&max);
    }
    // Descending: the rollout goes from the highest ordinal down.
    let mut children: Vec<Value> = desired.iter().rev().map(|&i| new_pod(i)).collect();
    for claim in &claims {
        let claim_name = claim["metadata"]["name"].as_str().unwrap_or_default();
        let base = format!("{claim_name}-{name}");
        let mut ordinals: BTreeSet<i64> = (0..replicas).collect();
        if let Some(pvcs) = req["children"]["PersistentVolumeClaim.v1"].as_object() {
            for pvc in pvcs.values() {
                if let Some(i) =
                    ordinal(&base, pvc["metadata"]["name"].as_str().unwrap_or_default())
                {
                    ordinals.insert(i);
                }
            }
        }
        for i in ordinals {
            let mut pvc = claim.clone();
            pvc["apiVersion"] = json!("v1");
            pvc["kind"] = json!("PersistentVolumeClaim");
            pvc["metadata"]["name"] = json!(format!("{base}-{i}"));
            children.push(pvc);
        }
    }
    out["children"] = json!(children);
    out
}

fn catset_template(image: &str) -> Value {
    json!({
        "metadata": {"labels": {"app": "cat"}, "annotations": {"note": "a<b & c>d"}},
        "spec": {"terminationGracePeriodSeconds": 1,
            "containers": [{"name": "web", "image": image}]},
        "weight": 0.5
    })
}

/// The parentPatch of a CatSet with `catset_template(image)`, as Go's
/// `json.Marshal` writes it.
fn catset_patch_json(image: &str) -> String {
    format!(
        r#"{{"spec":{{"template":{{"metadata":{{"annotations":{{"note":"a\u003cb \u0026 c\u003ed"}},"labels":{{"app":"cat"}}}},"spec":{{"containers":[{{"image":"{image}","name":"web"}}],"terminationGracePeriodSeconds":1}},"weight":0.5}}}}}}"#
    )
}

/// What the fake kubelet saw: the most Pods unavailable at once while the
/// replica count stayed put, and the order in which Pods got a new image.
#[derive(Default)]
struct Observations {
    max_unavailable: usize,
    worst: String,
    rolled: Vec<String>,
}

async fn catset_rollout(strategy: ApplyStrategy) {
    let h = Harness::start_with(config(strategy)).await;
    let ns = "cats";
    h.create_namespace(ns).await;
    let catsets = h.create_crd("CatSet", "catsets", true, true).await;
    let hook = HookServer::start(|req| Reply::Json(catset_hook(req))).await;
    let mut cc = composite_controller(
        "catset",
        &catsets,
        &[
            ("v1", "pods", Some("RollingRecreate")),
            ("v1", "persistentvolumeclaims", None),
        ],
        &hook.url,
    );
    cc["spec"]["parentResource"]["revisionHistory"] = json!({"fieldPaths": ["spec.template"]});
    cc["spec"]["childResources"][0]["updateStrategy"]["statusChecks"] =
        json!({"conditions": [{"type": "Ready", "status": "True"}]});
    cc["spec"]["hooks"]["finalize"] = json!({"webhook": {"url": hook.url}});
    h.create_cc(cc).await;

    let mut spec = json!({
        "replicas": 3,
        "template": catset_template("nginx:1"),
        "volumeClaimTemplates": [{"metadata": {"name": "www", "labels": {"app": "cat"}},
            "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}}]
    });
    spec["selector"] = json!({"matchLabels": {"app": "cat"}});
    let cs = h
        .create(
            &catsets,
            Some(ns),
            json!({"apiVersion": catsets.api_version, "kind": "CatSet",
                "metadata": {"name": "web"}, "spec": spec}),
        )
        .await;
    let cs_uid = uid(&cs);

    // The fake kubelet: every Pod becomes Running and Ready shortly after it
    // appears. While the replica count stays put, it records how many
    // ordinals lack a ready Pod.
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let seen = Arc::new(Mutex::new(Observations::default()));
    let steady = Arc::new(std::sync::atomic::AtomicI64::new(-1));
    let kubelet = {
        let client = h.client.clone();
        let stop = stop.clone();
        let seen = seen.clone();
        let steady = steady.clone();
        tokio::spawn(async move {
            let api: kube::Api<metacontroller_engine::object::RawObject> =
                kube::Api::namespaced_with(client, ns, &pods());
            let mut images: BTreeMap<String, String> = BTreeMap::new();
            while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                let list = match api.list(&Default::default()).await {
                    Ok(l) => l
                        .items
                        .into_iter()
                        .map(|o| o.into_value())
                        .collect::<Vec<_>>(),
                    Err(_) => Vec::new(),
                };
                let replicas = steady.load(std::sync::atomic::Ordering::SeqCst);
                {
                    let mut seen = seen.lock();
                    for pod in &list {
                        let name = pod["metadata"]["name"]
                            .as_str()
                            .unwrap_or_default()
                            .to_owned();
                        let image = pod["spec"]["containers"][0]["image"]
                            .as_str()
                            .unwrap_or_default()
                            .to_owned();
                        if let Some(old) = images.insert(name.clone(), image.clone())
                            && old != image
                        {
                            seen.rolled.push(name);
                        }
                    }
                    if replicas >= 0 {
                        let unavailable: Vec<String> = (0..replicas)
                            .map(|i| format!("web-{i}"))
                            .filter(|n| {
                                !list
                                    .iter()
                                    .any(|p| p["metadata"]["name"] == n.as_str() && is_ready(p))
                            })
                            .collect();
                        if unavailable.len() > seen.max_unavailable {
                            seen.max_unavailable = unavailable.len();
                            seen.worst = format!("{unavailable:?}");
                        }
                    }
                }
                for pod in &list {
                    if !is_ready(pod) && pod["metadata"]["deletionTimestamp"].is_null() {
                        let name = pod["metadata"]["name"].as_str().unwrap_or_default();
                        let _ = api
                            .patch_status(
                                name,
                                &PatchParams::default(),
                                &Patch::Merge(&json!({"status": {"phase": "Running",
                                    "conditions": [{"type": "Ready", "status": "True"}]}})),
                            )
                            .await;
                    }
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
    };

    let wait_ready = |n: i64| {
        let h = &h;
        let catsets = &catsets;
        async move {
            wait_for(&format!("{n} ready replicas"), || async {
                let cs = h.get(catsets, Some(ns), "web").await?;
                (cs["status"]["readyReplicas"] == n && cs["status"]["replicas"] == n).then_some(cs)
            })
            .await
        }
    };

    // 3 Pods, created one at a time; all on the first revision.
    let cs = wait_ready(3).await;
    let first = revision_name("catsets", &cs_uid, &catset_patch_json("nginx:1"));
    let condition = updated_condition(&cs).expect("Updated condition");
    assert_eq!(
        condition,
        json!({"type": "Updated", "status": "True", "reason": "OnLatestRevision",
            "message": format!("latest ControllerRevision: {first}")})
    );
    let revs = h.list(&revisions_resource(), Some(ns)).await;
    assert_eq!(revs.len(), 1, "{revs:#?}");
    let rev = &revs[0];
    assert_eq!(rev["metadata"]["name"], first.as_str());
    assert_eq!(
        rev["parentPatch"],
        json!({"spec": {"template": catset_template("nginx:1")}})
    );
    assert_eq!(
        rev["metadata"]["labels"],
        json!({"app": "cat", "metacontroller.k8s.io/apiGroup": GROUP,
            "metacontroller.k8s.io/resource": "catsets"})
    );
    let owner = &rev["metadata"]["ownerReferences"][0];
    assert_eq!(owner["uid"], cs_uid.as_str());
    assert_eq!(owner["kind"], "CatSet");
    assert_eq!(owner["controller"], true);
    assert_eq!(owner["blockOwnerDeletion"], true);
    let children = rev["children"].as_array().unwrap();
    assert_eq!(children.len(), 1);
    assert_eq!(children[0]["apiGroup"], "");
    assert_eq!(children[0]["kind"], "Pod");
    let names: BTreeSet<&str> = children[0]["names"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert_eq!(names, BTreeSet::from(["web-0", "web-1", "web-2"]));

    // Scale to 4: the new Pod joins the latest revision.
    h.merge_patch(&catsets, Some(ns), "web", json!({"spec": {"replicas": 4}}))
        .await;
    wait_ready(4).await;
    steady.store(4, std::sync::atomic::Ordering::SeqCst);

    // Roll to a new template, one Pod at a time from the highest ordinal.
    let pod_uids: BTreeMap<String, String> = h
        .list(&pods(), Some(ns))
        .await
        .iter()
        .map(|p| (p["metadata"]["name"].as_str().unwrap().to_owned(), uid(p)))
        .collect();
    h.merge_patch(
        &catsets,
        Some(ns),
        "web",
        json!({"spec": {"template": catset_template("nginx:2")}}),
    )
    .await;
    let second = revision_name("catsets", &cs_uid, &catset_patch_json("nginx:2"));
    let reasons = Mutex::new(BTreeSet::new());
    let cs = wait_for("rollout done", || async {
        let cs = h.get(&catsets, Some(ns), "web").await?;
        let condition = updated_condition(&cs)?;
        reasons
            .lock()
            .insert(condition["reason"].as_str()?.to_owned());
        if condition["reason"] == "RolloutWaiting" || condition["reason"] == "RolloutProgressing" {
            assert_eq!(condition["status"], "False");
            assert!(condition.get("lastTransitionTime").is_none());
        }
        let done = condition["message"] == format!("latest ControllerRevision: {second}")
            && cs["status"]["readyReplicas"] == 4;
        done.then_some(cs)
    })
    .await;
    assert_eq!(updated_condition(&cs).unwrap()["status"], "True");
    let reasons = reasons.into_inner();
    assert!(
        reasons.contains("RolloutWaiting") || reasons.contains("RolloutProgressing"),
        "no rollout condition seen: {reasons:?}"
    );
    steady.store(-1, std::sync::atomic::Ordering::SeqCst);
    let all = h.list(&pods(), Some(ns)).await;
    assert_eq!(all.len(), 4);
    for pod in &all {
        let name = pod["metadata"]["name"].as_str().unwrap();
        assert_eq!(pod["spec"]["containers"][0]["image"], "nginx:2", "{name}");
        assert_ne!(uid(pod), pod_uids[name], "{name} was not recreated");
    }
    {
        let seen = seen.lock();
        assert!(
            seen.max_unavailable <= 1,
            "{} Pods unavailable at once: {}",
            seen.max_unavailable,
            seen.worst
        );
        assert_eq!(seen.rolled, ["web-3", "web-2", "web-1", "web-0"]);
    }
    // The old revision is gone once it has no Pods left.
    let revs = wait_for("old revision pruned", || async {
        let revs = h.list(&revisions_resource(), Some(ns)).await;
        (revs.len() == 1).then_some(revs)
    })
    .await;
    assert_eq!(revs[0]["metadata"]["name"], second.as_str());

    // Scale down to 2: Pods go away from the top; their PVCs stay.
    h.merge_patch(&catsets, Some(ns), "web", json!({"spec": {"replicas": 2}}))
        .await;
    wait_for("2 Pods", || async {
        let names: BTreeSet<String> = h
            .list(&pods(), Some(ns))
            .await
            .iter()
            .map(|p| p["metadata"]["name"].as_str().unwrap().to_owned())
            .collect();
        (names == BTreeSet::from(["web-0".to_owned(), "web-1".to_owned()])).then_some(())
    })
    .await;
    let cs = wait_ready(2).await;
    let condition = updated_condition(&cs).unwrap();
    assert_eq!(condition["reason"], "OnLatestRevision");
    let pvcs = h
        .list(
            &core("PersistentVolumeClaim", "persistentvolumeclaims"),
            Some(ns),
        )
        .await;
    assert_eq!(pvcs.len(), 4);
    let revs = h.list(&revisions_resource(), Some(ns)).await;
    assert_eq!(revs.len(), 1);
    let names: BTreeSet<&str> = revs[0]["children"][0]["names"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert_eq!(names, BTreeSet::from(["web-0", "web-1"]));

    // Deleting the CatSet scales it to zero through the finalize hook.
    h.delete(&catsets, Some(ns), "web").await;
    wait_for("CatSet gone", || async {
        h.get(&catsets, Some(ns), "web")
            .await
            .is_none()
            .then_some(())
    })
    .await;
    assert!(h.list(&pods(), Some(ns)).await.is_empty());
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    let _ = kubelet.await;
    h.shutdown().await;
}

/// A CatSet scaled 3 → 4, rolled to a new template one Pod at a time
/// (RollingRecreate with a Ready status check), then scaled to 2.
#[tokio::test]
async fn catset_rolling_recreate() {
    catset_rollout(ApplyStrategy::DynamicApply).await;
}

/// The same CatSet with server-side apply.
#[tokio::test]
async fn catset_rolling_recreate_server_side_apply() {
    catset_rollout(ApplyStrategy::ServerSideApply).await;
}

// ---------------------------------------------------------------------------
// Blue/green-like RollingInPlace over ReplicaSets
// ---------------------------------------------------------------------------

fn bluegreen_hook(req: &Value) -> Value {
    let parent = &req["parent"];
    let name = parent["metadata"]["name"].as_str().unwrap_or_default();
    let image = &parent["spec"]["image"];
    let children: Vec<Value> = ["green", "blue"]
        .iter()
        .map(|color| {
            json!({
                "apiVersion": "apps/v1", "kind": "ReplicaSet",
                "metadata": {"name": format!("{name}-{color}"), "labels": {"app": "bg", "color": color}},
                "spec": {
                    "replicas": parent["spec"]["replicas"],
                    "selector": {"matchLabels": {"app": "bg", "color": color}},
                    "template": {
                        "metadata": {"labels": {"app": "bg", "color": color}},
                        "spec": {"containers": [{"name": "app", "image": image}]}
                    }
                }
            })
        })
        .collect();
    json!({"status": {"image": image}, "children": children})
}

/// Plays the ReplicaSet controller for one ReplicaSet: reports the current
/// generation as observed, with the given `Available` status.
async fn ack(h: &Harness, ns: &str, name: &str, available: &str) {
    let rs = h.get(&replicasets(), Some(ns), name).await.unwrap();
    set_status(
        h,
        &replicasets(),
        ns,
        name,
        json!({"replicas": rs["spec"]["replicas"], "observedGeneration": rs["metadata"]["generation"],
            "conditions": [{"type": "Available", "status": available}]}),
    )
    .await;
}

async fn wait_condition(
    h: &Harness,
    ar: &ApiResource,
    ns: &str,
    name: &str,
    message: &str,
) -> Value {
    wait_for(&format!("Updated condition {message:?}"), || async {
        let p = h.get(ar, Some(ns), name).await?;
        let c = updated_condition(&p)?;
        (c["message"] == message).then_some(c)
    })
    .await
}

/// RollingInPlace: each ReplicaSet is updated in place, and the next one
/// waits until the updated one has observed its new generation and reports
/// `Available=True`.
#[tokio::test]
async fn bluegreen_rolling_in_place() {
    let h = Harness::start_with(config(ApplyStrategy::DynamicApply)).await;
    let ns = "bg";
    h.create_namespace(ns).await;
    let parents = h.create_crd("BlueGreen", "bluegreens", true, true).await;
    let hook = HookServer::start(|req| Reply::Json(bluegreen_hook(req))).await;
    let mut cc = composite_controller(
        "bluegreen",
        &parents,
        &[("apps/v1", "replicasets", Some("RollingInPlace"))],
        &hook.url,
    );
    cc["spec"]["childResources"][0]["updateStrategy"]["statusChecks"] =
        json!({"conditions": [{"type": "Available", "status": "True"}]});
    h.create_cc(cc).await;
    let p = h
        .create(
            &parents,
            Some(ns),
            json!({"apiVersion": parents.api_version, "kind": "BlueGreen",
                "metadata": {"name": "bg"},
                "spec": {"selector": {"matchLabels": {"app": "bg"}}, "replicas": 2, "image": "app:1"}}),
        )
        .await;
    let parent_uid = uid(&p);
    let first = revision_name(
        "bluegreens",
        &parent_uid,
        r#"{"spec":{"image":"app:1","replicas":2,"selector":{"matchLabels":{"app":"bg"}}}}"#,
    );
    wait_condition(
        &h,
        &parents,
        ns,
        "bg",
        &format!("latest ControllerRevision: {first}"),
    )
    .await;
    let revs = h.list(&revisions_resource(), Some(ns)).await;
    assert_eq!(revs.len(), 1);
    assert_eq!(
        revs[0]["parentPatch"],
        json!({"spec": {"image": "app:1", "replicas": 2, "selector": {"matchLabels": {"app": "bg"}}}})
    );
    assert_eq!(
        revs[0]["children"],
        json!([{"apiGroup": "apps", "kind": "ReplicaSet", "names": ["bg-green", "bg-blue"]}])
    );
    // No spec.template on this parent: the selector's labels are used.
    assert_eq!(
        revs[0]["metadata"]["labels"],
        json!({"app": "bg", "metacontroller.k8s.io/apiGroup": GROUP,
            "metacontroller.k8s.io/resource": "bluegreens"})
    );
    let green = h.get(&replicasets(), Some(ns), "bg-green").await.unwrap();
    let blue = h.get(&replicasets(), Some(ns), "bg-blue").await.unwrap();
    ack(&h, ns, "bg-green", "True").await;
    ack(&h, ns, "bg-blue", "True").await;

    // New image: green (first in hook order) is updated in place.
    h.merge_patch(
        &parents,
        Some(ns),
        "bg",
        json!({"spec": {"image": "app:2"}}),
    )
    .await;
    let c = wait_condition(
        &h,
        &parents,
        ns,
        "bg",
        "child ReplicaSet bg-green with RollingInPlace update strategy hasn't observed latest spec",
    )
    .await;
    assert_eq!(c["status"], "False");
    assert_eq!(c["reason"], "RolloutWaiting");
    let green2 = h.get(&replicasets(), Some(ns), "bg-green").await.unwrap();
    assert_eq!(uid(&green2), uid(&green));
    assert_eq!(
        green2["spec"]["template"]["spec"]["containers"][0]["image"],
        "app:2"
    );
    assert_eq!(green2["metadata"]["generation"], 2);
    let blue1 = h.get(&replicasets(), Some(ns), "bg-blue").await.unwrap();
    assert_eq!(
        blue1["spec"]["template"]["spec"]["containers"][0]["image"],
        "app:1"
    );
    // Two revisions now: the old one keeps blue, the new one has green.
    let revs = h.list(&revisions_resource(), Some(ns)).await;
    assert_eq!(revs.len(), 2);
    let second = revision_name(
        "bluegreens",
        &parent_uid,
        r#"{"spec":{"image":"app:2","replicas":2,"selector":{"matchLabels":{"app":"bg"}}}}"#,
    );
    for rev in &revs {
        let name = rev["metadata"]["name"].as_str().unwrap();
        let expected = if name == first { "bg-blue" } else { "bg-green" };
        assert!(name == first || name == second, "{name}");
        assert_eq!(rev["children"][0]["names"], json!([expected]), "{name}");
    }

    // Observed, but not available yet.
    ack(&h, ns, "bg-green", "False").await;
    wait_condition(
        &h,
        &parents,
        ns,
        "bg",
        r#"child ReplicaSet bg-green failed status check: "Available" condition status is "False" (want "True")"#,
    )
    .await;
    let blue1 = h.get(&replicasets(), Some(ns), "bg-blue").await.unwrap();
    assert_eq!(blue1["metadata"]["generation"], 1);

    // Available: blue follows, and with it every child is on the latest
    // revision (Metacontroller does not wait for the last one to be ready).
    ack(&h, ns, "bg-green", "True").await;
    let c = wait_condition(
        &h,
        &parents,
        ns,
        "bg",
        &format!("latest ControllerRevision: {second}"),
    )
    .await;
    let blue2 = h.get(&replicasets(), Some(ns), "bg-blue").await.unwrap();
    assert_eq!(uid(&blue2), uid(&blue));
    assert_eq!(blue2["metadata"]["generation"], 2);
    assert_eq!(
        blue2["spec"]["template"]["spec"]["containers"][0]["image"],
        "app:2"
    );
    assert_eq!(
        c,
        json!({"type": "Updated", "status": "True", "reason": "OnLatestRevision",
        "message": format!("latest ControllerRevision: {second}")})
    );
    let revs = wait_for("old revision deleted", || async {
        let revs = h.list(&revisions_resource(), Some(ns)).await;
        (revs.len() == 1).then_some(revs)
    })
    .await;
    assert_eq!(revs[0]["metadata"]["name"], second.as_str());
    assert_eq!(
        revs[0]["children"],
        json!([{"apiGroup": "apps", "kind": "ReplicaSet", "names": ["bg-green", "bg-blue"]}])
    );
    // The hook's status is kept next to the condition.
    let p = h.get(&parents, Some(ns), "bg").await.unwrap();
    assert_eq!(p["status"]["image"], "app:2");
    assert_eq!(p["status"]["observedGeneration"], 2);
    h.shutdown().await;
}

/// A hook answering `status: null` still gets an `Updated` condition.
#[tokio::test]
async fn null_status_with_rolling_update() {
    let h = Harness::start_with(config(ApplyStrategy::DynamicApply)).await;
    let ns = "nulls";
    h.create_namespace(ns).await;
    let parents = h.create_crd("NullParent", "nullparents", true, true).await;
    let hook = HookServer::start(|req| {
        let v = req["parent"]["spec"]["v"].clone();
        Reply::Json(json!({"status": null, "children": [
            configmap("cm", &json!({"app": "n"}), json!({"v": v.to_string()}))
        ]}))
    })
    .await;
    h.create_cc(composite_controller(
        "nulls",
        &parents,
        &[("v1", "configmaps", Some("RollingRecreate"))],
        &hook.url,
    ))
    .await;
    let p = h
        .create(
            &parents,
            Some(ns),
            parent(&parents, "p", json!({"app": "n"}), json!({"v": 1})),
        )
        .await;
    let name = revision_name(
        "nullparents",
        &uid(&p),
        r#"{"spec":{"selector":{"matchLabels":{"app":"n"}},"v":1}}"#,
    );
    let status = wait_for("status with the Updated condition", || async {
        let p = h.get(&parents, Some(ns), "p").await?;
        (!p["status"]["conditions"].is_null()).then(|| p["status"].clone())
    })
    .await;
    assert_eq!(
        status,
        json!({"observedGeneration": 1, "conditions": [{"type": "Updated", "status": "True",
            "reason": "OnLatestRevision", "message": format!("latest ControllerRevision: {name}")}]})
    );
    wait_for("child", || h.get(configmaps(), Some(ns), "cm")).await;
    // No sync errors.
    assert!(
        h.events_for(ns, "p")
            .await
            .iter()
            .all(|e| e["reason"] != "SyncError")
    );
    h.shutdown().await;
}

/// A revision that already exists (for instance written by Metacontroller)
/// is found by its parentPatch and adopted, not duplicated.
#[tokio::test]
async fn existing_revisions_are_adopted() {
    let h = Harness::start_with(config(ApplyStrategy::DynamicApply)).await;
    let ns = "adopt";
    h.create_namespace(ns).await;
    let parents = h
        .create_crd("AdoptParent", "adoptparents", true, true)
        .await;
    let p = h
        .create(
            &parents,
            Some(ns),
            parent(&parents, "p", json!({"app": "a"}), json!({"v": 1})),
        )
        .await;
    let patch = r#"{"spec":{"selector":{"matchLabels":{"app":"a"}},"v":1}}"#;
    let name = revision_name("adoptparents", &uid(&p), patch);
    let orphan = h
        .create(
            &revisions_resource(),
            Some(ns),
            json!({"apiVersion": "metacontroller.k8s.io/v1alpha1", "kind": "ControllerRevision",
                "metadata": {"name": name, "labels": {"app": "a",
                    "metacontroller.k8s.io/apiGroup": GROUP,
                    "metacontroller.k8s.io/resource": "adoptparents"}},
                "parentPatch": serde_json::from_str::<Value>(patch).unwrap(),
                "children": [{"apiGroup": "", "kind": "ConfigMap", "names": ["cm"]}]}),
        )
        .await;
    let hook = HookServer::start(|_| {
        Reply::Json(json!({"status": {}, "children": [
            configmap("cm", &json!({"app": "a"}), json!({"k": "v"}))
        ]}))
    })
    .await;
    h.create_cc(composite_controller(
        "adopt",
        &parents,
        &[("v1", "configmaps", Some("RollingInPlace"))],
        &hook.url,
    ))
    .await;
    wait_condition(
        &h,
        &parents,
        ns,
        "p",
        &format!("latest ControllerRevision: {name}"),
    )
    .await;
    let revs = h.list(&revisions_resource(), Some(ns)).await;
    assert_eq!(revs.len(), 1);
    assert_eq!(uid(&revs[0]), uid(&orphan));
    let owner = &revs[0]["metadata"]["ownerReferences"][0];
    assert_eq!(owner["uid"], uid(&p).as_str());
    assert_eq!(owner["controller"], true);
    assert_eq!(owner["blockOwnerDeletion"], true);
    wait_for("child", || h.get(configmaps(), Some(ns), "cm")).await;
    h.shutdown().await;
}

/// With every child on the latest revision, resyncs write nothing.
#[tokio::test]
async fn converged_rollout_makes_no_writes() {
    let h = Harness::start_with(config(ApplyStrategy::DynamicApply)).await;
    let ns = "quiet";
    h.create_namespace(ns).await;
    let parents = h
        .create_crd("QuietParent", "quietparents", true, true)
        .await;
    let hook = HookServer::start(|req| {
        let v = req["parent"]["spec"]["v"].clone();
        Reply::Json(json!({"status": {"ok": true}, "children": [
            configmap("a", &json!({"app": "q"}), json!({"v": v.to_string()})),
            configmap("b", &json!({"app": "q"}), json!({"v": v.to_string()})),
        ]}))
    })
    .await;
    let mut cc = composite_controller(
        "quiet",
        &parents,
        &[("v1", "configmaps", Some("RollingInPlace"))],
        &hook.url,
    );
    cc["spec"]["resyncPeriodSeconds"] = json!(1);
    h.create_cc(cc).await;
    h.create(
        &parents,
        Some(ns),
        parent(&parents, "p", json!({"app": "q"}), json!({"v": 1})),
    )
    .await;
    wait_for("converged", || async {
        let p = h.get(&parents, Some(ns), "p").await?;
        (updated_condition(&p)?["reason"] == "OnLatestRevision").then_some(())
    })
    .await;
    // A rollout to v=2 completes (ConfigMaps have no status to wait for).
    h.merge_patch(&parents, Some(ns), "p", json!({"spec": {"v": 2}}))
        .await;
    wait_for("rolled", || async {
        let a = h.get(configmaps(), Some(ns), "a").await?;
        let b = h.get(configmaps(), Some(ns), "b").await?;
        let p = h.get(&parents, Some(ns), "p").await?;
        (a["data"]["v"] == "2"
            && b["data"]["v"] == "2"
            && updated_condition(&p)?["reason"] == "OnLatestRevision"
            && h.list(&revisions_resource(), Some(ns)).await.len() == 1)
            .then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let writes = h.writes();
    let calls = hook.calls();
    tokio::time::sleep(Duration::from_millis(3500)).await;
    assert!(hook.calls() >= calls + 3, "resyncs did not happen");
    assert_eq!(
        h.writes(),
        writes,
        "no-op resyncs wrote: {:?}",
        h.embedded()
            .map(|s| format!("{:?}", s.counters().snapshot()))
    );
    h.shutdown().await;
}
