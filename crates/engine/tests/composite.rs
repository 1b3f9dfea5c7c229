//! CompositeController behaviour end to end: the embedded API server, the
//! engine and a hook server, all in the test process.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use common::*;
use parking_lot::Mutex;
use serde_json::{Value, json};

fn labels(test: &str) -> Value {
    json!({"test": test})
}

fn owner_uid(obj: &Value) -> Option<String> {
    obj["metadata"]["ownerReferences"]
        .as_array()?
        .iter()
        .find(|r| r["controller"] == true)
        .and_then(|r| r["uid"].as_str())
        .map(str::to_owned)
}

/// The sync hook creates a child named after the parent and reports status;
/// Metacontroller adds observedGeneration, the last-applied annotation and
/// the controller reference.
#[tokio::test]
async fn sync_webhook_creates_children_and_sets_status() {
    let h = Harness::start().await;
    h.create_namespace("sync").await;
    let parent_ar = h.create_crd("SyncParent", "syncparents", true, true).await;
    let child_ar = h.create_crd("SyncChild", "syncchildren", true, true).await;
    let l = labels("sync");
    let hook_labels = l.clone();
    let hook = HookServer::start(move |req| {
        let name = req["parent"]["metadata"]["name"].as_str().unwrap_or_default();
        let child = json!({
            "apiVersion": API_VERSION, "kind": "SyncChild",
            "metadata": {"name": name, "labels": hook_labels},
            "spec": {"size": req["parent"]["spec"]["size"]}
        });
        let cm = configmap(&format!("{name}-cm"), &hook_labels, json!({"k": "v"}));
        Reply::Json(json!({
            "status": {"children": req["children"]["SyncChild.test.metacontroller.io/v1"].as_object().map_or(0, |m| m.len())},
            "children": [child, cm]
        }))
    })
    .await;
    h.create_cc(composite_controller(
        "sync",
        &parent_ar,
        &[
            (API_VERSION, "syncchildren", None),
            ("v1", "configmaps", None),
        ],
        &hook.url,
    ))
    .await;
    let p = h
        .create(
            &parent_ar,
            Some("sync"),
            parent(&parent_ar, "p1", l.clone(), json!({"size": 3})),
        )
        .await;
    let parent_uid = p["metadata"]["uid"].as_str().unwrap().to_owned();

    let child = wait_for("child", || h.get(&child_ar, Some("sync"), "p1")).await;
    assert_eq!(child["spec"]["size"], 3);
    let owner = &child["metadata"]["ownerReferences"][0];
    assert_eq!(owner["uid"], parent_uid.as_str());
    assert_eq!(owner["controller"], true);
    assert_eq!(owner["blockOwnerDeletion"], true);
    assert_eq!(owner["kind"], "SyncParent");
    let last_applied =
        child["metadata"]["annotations"]["metacontroller.k8s.io/last-applied-configuration"]
            .as_str()
            .expect("last-applied annotation");
    let last_applied: Value = serde_json::from_str(last_applied).unwrap();
    assert_eq!(last_applied["spec"]["size"], 3);
    assert!(last_applied["metadata"].get("ownerReferences").is_none());
    wait_for("configmap child", || {
        h.get(configmaps(), Some("sync"), "p1-cm")
    })
    .await;

    // Status replaced by the hook's, with observedGeneration; the second
    // sync sees the child it created.
    let status = wait_for("status", || async {
        let p = h.get(&parent_ar, Some("sync"), "p1").await?;
        (p["status"]["children"] == 1).then(|| p["status"].clone())
    })
    .await;
    assert_eq!(status["observedGeneration"], 1);

    // Request shape.
    let req = hook.last_request().unwrap();
    assert_eq!(req["controller"]["kind"], "CompositeController");
    assert_eq!(req["controller"]["metadata"]["name"], "sync");
    assert_eq!(req["related"], json!({}));
    assert_eq!(req["finalizing"], false);
    assert!(req["children"]["ConfigMap.v1"]["p1-cm"].is_object());
    assert!(req["children"]["SyncChild.test.metacontroller.io/v1"]["p1"].is_object());

    // The first request already had every declared child type.
    let first = &hook.requests()[0].1;
    assert_eq!(first["children"]["ConfigMap.v1"], json!({}));
    assert_eq!(
        first["children"]["SyncChild.test.metacontroller.io/v1"],
        json!({})
    );

    // Events on the CompositeController land in "default".
    wait_for("Started event", || async {
        let events = h.events_for("default", "sync").await;
        events
            .iter()
            .any(|e| e["reason"] == "Started" && e["source"]["component"] == "metacontroller")
            .then_some(())
    })
    .await;

    // Hook metrics.
    let mut text = String::new();
    prometheus_client::encoding::text::encode(&mut text, &h.registry).unwrap();
    assert!(
        text.contains("metacontroller_sync_requests_total"),
        "{text}"
    );
    assert!(text.contains("code=\"200\""), "{text}");

    // A spec change is synced with the new generation.
    h.merge_patch(&parent_ar, Some("sync"), "p1", json!({"spec": {"size": 4}}))
        .await;
    wait_for("observedGeneration 2", || async {
        let p = h.get(&parent_ar, Some("sync"), "p1").await?;
        (p["status"]["observedGeneration"] == 2).then_some(())
    })
    .await;
    // OnDelete: the existing child is not updated.
    let child = h.get(&child_ar, Some("sync"), "p1").await.unwrap();
    assert_eq!(child["spec"]["size"], 3);
    h.shutdown().await;
}

/// Children are deleted with background propagation even when the type
/// defaults to orphaning dependents (batch/v1 Jobs).
#[tokio::test]
async fn cascading_delete_of_job_child() {
    let h = Harness::start().await;
    h.create_namespace("cascade").await;
    let parent_ar = h
        .create_crd("CascadeParent", "cascadeparents", true, true)
        .await;
    let jobs = kube::core::ApiResource {
        group: "batch".into(),
        version: "v1".into(),
        api_version: "batch/v1".into(),
        kind: "Job".into(),
        plural: "jobs".into(),
    };
    let l = labels("cascade");
    let hook_labels = l.clone();
    let hook = HookServer::start(move |req| {
        let mut children = vec![];
        if req["parent"]["spec"]["replicas"].as_i64().unwrap_or(0) > 0 {
            children.push(json!({
                "apiVersion": "batch/v1", "kind": "Job",
                "metadata": {"name": "job", "labels": hook_labels},
                "spec": {"template": {"spec": {"restartPolicy": "Never",
                    "containers": [{"name": "pi", "image": "perl"}]}}}
            }));
        }
        Reply::Json(json!({"children": children}))
    })
    .await;
    h.create_cc(composite_controller(
        "cascade",
        &parent_ar,
        &[("batch/v1", "jobs", None)],
        &hook.url,
    ))
    .await;
    h.create(
        &parent_ar,
        Some("cascade"),
        parent(&parent_ar, "p", l.clone(), json!({"replicas": 1})),
    )
    .await;
    let job = wait_for("job", || h.get(&jobs, Some("cascade"), "job")).await;
    // A dependent of the Job: deleted only if the deletion cascades.
    let pods = core("Pod", "pods");
    h.create(
        &pods,
        Some("cascade"),
        json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "job-pod", "ownerReferences": [{
                "apiVersion": "batch/v1", "kind": "Job", "name": "job",
                "uid": job["metadata"]["uid"], "controller": true, "blockOwnerDeletion": true}]},
            "spec": {"containers": [{"name": "pi", "image": "perl"}]}
        }),
    )
    .await;
    h.merge_patch(
        &parent_ar,
        Some("cascade"),
        "p",
        json!({"spec": {"replicas": 0}}),
    )
    .await;
    wait_for("job deleted", || async {
        h.get(&jobs, Some("cascade"), "job")
            .await
            .is_none()
            .then_some(())
    })
    .await;
    wait_for("pod deleted by the garbage collector", || async {
        h.get(&pods, Some("cascade"), "job-pod")
            .await
            .is_none()
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
    let parent_ar = h
        .create_crd("ResyncParent", "resyncparents", true, true)
        .await;
    let state: Arc<Mutex<(Option<Instant>, bool)>> = Arc::new(Mutex::new((None, false)));
    let hook_state = state.clone();
    let hook = HookServer::start(move |req| {
        let mut state = hook_state.lock();
        let parent_status = &req["parent"]["status"];
        if parent_status.is_null() {
            Reply::Json(json!({"status": {}}))
        } else if state.0.is_none() {
            state.0 = Some(Instant::now());
            Reply::Json(json!({"status": parent_status, "resyncAfterSeconds": 0.1}))
        } else if !state.1 {
            state.1 = true;
            let elapsed = state.0.unwrap().elapsed().as_secs_f64();
            Reply::Json(json!({"status": {"elapsedSeconds": elapsed}}))
        } else {
            Reply::Json(json!({"status": parent_status}))
        }
    })
    .await;
    h.create_cc(composite_controller("resync", &parent_ar, &[], &hook.url))
        .await;
    h.create(
        &parent_ar,
        Some("resync"),
        parent(&parent_ar, "p", labels("resync"), json!({})),
    )
    .await;
    let elapsed = wait_for("elapsedSeconds", || async {
        let p = h.get(&parent_ar, Some("resync"), "p").await?;
        p["status"]["elapsedSeconds"].as_f64()
    })
    .await;
    assert!(elapsed >= 0.09, "resync came too early: {elapsed}");
    assert!(hook.calls() >= 3);
    h.shutdown().await;
}

/// A parent CRD without the status subresource: Warning event on the
/// CompositeController, and the controller is not started.
#[tokio::test]
async fn missing_status_subresource_warns_on_the_controller() {
    let h = Harness::start().await;
    h.create_namespace("nostatus").await;
    let parent_ar = h
        .create_crd("NoStatusParent", "nostatusparents", true, false)
        .await;
    let hook = HookServer::start(|_| Reply::Json(json!({}))).await;
    h.create_cc(composite_controller("nostatus", &parent_ar, &[], &hook.url))
        .await;
    h.create(
        &parent_ar,
        Some("nostatus"),
        parent(&parent_ar, "p", labels("nostatus"), json!({})),
    )
    .await;
    let event = wait_for("SyncError event", || async {
        h.events_for("default", "nostatus")
            .await
            .into_iter()
            .find(|e| {
                e["message"]
                    .as_str()
                    .is_some_and(|m| m.contains("does not have subresource 'Status' enabled"))
            })
    })
    .await;
    assert_eq!(event["type"], "Warning");
    assert_eq!(event["reason"], "SyncError");
    assert_eq!(event["involvedObject"]["kind"], "CompositeController");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(hook.calls(), 0);
    h.shutdown().await;
}

/// A pre-existing orphan matching the selector is adopted; once its labels
/// stop matching it is released.
#[tokio::test]
async fn adopts_orphans_and_releases_children_that_stop_matching() {
    let h = Harness::start().await;
    h.create_namespace("claim").await;
    let parent_ar = h
        .create_crd("ClaimParent", "claimparents", true, true)
        .await;
    let child_ar = h
        .create_crd("ClaimChild", "claimchildren", true, true)
        .await;
    let l = labels("claim");
    let release = Arc::new(AtomicBool::new(false));
    let hook_release = release.clone();
    let hook_labels = l.clone();
    let hook = HookServer::start(move |_| {
        if hook_release.load(Ordering::SeqCst) {
            return Reply::Json(json!({"children": []}));
        }
        Reply::Json(json!({"children": [{
            "apiVersion": API_VERSION, "kind": "ClaimChild",
            "metadata": {"name": "orphan", "labels": hook_labels}
        }]}))
    })
    .await;
    h.create_cc(composite_controller(
        "claim",
        &parent_ar,
        &[(API_VERSION, "claimchildren", None)],
        &hook.url,
    ))
    .await;
    h.create(
        &child_ar,
        Some("claim"),
        json!({"apiVersion": API_VERSION, "kind": "ClaimChild", "metadata": {"name": "orphan", "labels": l}}),
    )
    .await;
    let p = h
        .create(
            &parent_ar,
            Some("claim"),
            parent(&parent_ar, "p", l.clone(), json!({})),
        )
        .await;
    let parent_uid = p["metadata"]["uid"].as_str().unwrap().to_owned();
    wait_for("adoption", || async {
        let child = h.get(&child_ar, Some("claim"), "orphan").await?;
        (owner_uid(&child).as_deref() == Some(parent_uid.as_str())).then_some(())
    })
    .await;
    // The adopted child reaches the hook.
    wait_for("child observed by the hook", || async {
        hook.last_request()?["children"]["ClaimChild.test.metacontroller.io/v1"]
            .get("orphan")
            .map(|_| ())
    })
    .await;

    // Relabel first: a sync between the two steps must not see a matching
    // child that the hook no longer wants (it would delete it).
    h.merge_patch(
        &child_ar,
        Some("claim"),
        "orphan",
        json!({"metadata": {"labels": {"test": "no-match"}}}),
    )
    .await;
    release.store(true, Ordering::SeqCst);
    wait_for("release", || async {
        let child = h.get(&child_ar, Some("claim"), "orphan").await?;
        owner_uid(&child).is_none().then_some(())
    })
    .await;
    // Released, not deleted.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(h.get(&child_ar, Some("claim"), "orphan").await.is_some());
    h.shutdown().await;
}

/// v2 hooks key children `namespace/name`; v1 hooks of cluster-scoped
/// parents do too.
#[tokio::test]
async fn v2_hooks_use_namespace_name_keys() {
    let h = Harness::start().await;
    h.create_namespace("v2").await;
    let parent_ar = h.create_crd("V2Parent", "v2parents", true, true).await;
    let l = labels("v2");
    let hook_labels = l.clone();
    let hook = HookServer::start(move |_| {
        Reply::Json(json!({"children": [configmap("v2-child", &hook_labels, json!({"a": "b"}))]}))
    })
    .await;
    let mut cc = composite_controller("v2", &parent_ar, &[("v1", "configmaps", None)], &hook.url);
    cc["spec"]["hooks"]["sync"]["version"] = json!("v2");
    h.create_cc(cc).await;
    h.create(
        &parent_ar,
        Some("v2"),
        parent(&parent_ar, "p", l.clone(), json!({})),
    )
    .await;
    wait_for("v2 key", || async {
        hook.last_request()?["children"]["ConfigMap.v1"]
            .get("v2/v2-child")
            .map(|_| ())
    })
    .await;
    assert!(
        hook.last_request().unwrap()["children"]["ConfigMap.v1"]
            .get("v2-child")
            .is_none()
    );
    h.shutdown().await;
}

/// Finalize hook: the finalizer is added; on deletion the hook tears the
/// children down one per call and finally reports `finalized`.
#[tokio::test]
async fn finalize_hook_tears_down_in_order() {
    let h = Harness::start().await;
    h.create_namespace("fin").await;
    let parent_ar = h.create_crd("FinParent", "finparents", true, true).await;
    let l = labels("fin");
    let hook_labels = l.clone();
    let sync = HookServer::start(move |_| {
        Reply::Json(json!({"children": [
            configmap("c0", &hook_labels, json!({})),
            configmap("c1", &hook_labels, json!({})),
            configmap("c2", &hook_labels, json!({})),
        ]}))
    })
    .await;
    let observed_counts = Arc::new(Mutex::new(Vec::new()));
    let counts = observed_counts.clone();
    let finalize = HookServer::start(move |req| {
        assert_eq!(req["finalizing"], true);
        let mut names: Vec<String> = req["children"]["ConfigMap.v1"]
            .as_object()
            .map(|m| m.keys().cloned().collect())
            .unwrap_or_default();
        names.sort();
        counts.lock().push(names.len());
        // Drop the last child each call.
        names.pop();
        let children: Vec<Value> = names
            .iter()
            .map(|n| req["children"]["ConfigMap.v1"][n].clone())
            .collect();
        let done = req["children"]["ConfigMap.v1"]
            .as_object()
            .is_none_or(|m| m.is_empty());
        Reply::Json(json!({"children": children, "finalized": done}))
    })
    .await;
    let mut cc = composite_controller("fin", &parent_ar, &[("v1", "configmaps", None)], &sync.url);
    cc["spec"]["hooks"]["finalize"] = json!({"webhook": {"url": finalize.url}});
    h.create_cc(cc).await;
    h.create(
        &parent_ar,
        Some("fin"),
        parent(&parent_ar, "p", l.clone(), json!({})),
    )
    .await;
    wait_for("finalizer and children", || async {
        let p = h.get(&parent_ar, Some("fin"), "p").await?;
        let has = p["metadata"]["finalizers"]
            .as_array()?
            .iter()
            .any(|f| f == "metacontroller.io/compositecontroller-fin");
        let n = h.list(configmaps(), Some("fin")).await.len();
        (has && n == 3).then_some(())
    })
    .await;
    h.delete(&parent_ar, Some("fin"), "p").await;
    wait_for("parent gone", || async {
        h.get(&parent_ar, Some("fin"), "p")
            .await
            .is_none()
            .then_some(())
    })
    .await;
    assert!(h.list(configmaps(), Some("fin")).await.is_empty());
    let counts = observed_counts.lock().clone();
    // Observed children shrink one at a time: 3, 2, 1, 0 (calls may repeat
    // while the cache catches up, never grow).
    assert!(counts.windows(2).all(|w| w[1] <= w[0]), "{counts:?}");
    for n in [3, 2, 1, 0] {
        assert!(counts.contains(&n), "{counts:?}");
    }
    h.shutdown().await;
}

/// A parent that stops matching `parentResource.labelSelector` is finalized
/// and released by the controller, without being deleted.
#[tokio::test]
async fn deselection_triggers_finalize() {
    let h = Harness::start().await;
    h.create_namespace("desel").await;
    let parent_ar = h
        .create_crd("DeselParent", "deselparents", true, true)
        .await;
    let l = labels("desel");
    let hook_labels = l.clone();
    let sync = HookServer::start(move |_| {
        Reply::Json(json!({"children": [configmap("c", &hook_labels, json!({}))]}))
    })
    .await;
    let finalize =
        HookServer::start(|_| Reply::Json(json!({"children": [], "finalized": true}))).await;
    let mut cc = composite_controller(
        "desel",
        &parent_ar,
        &[("v1", "configmaps", None)],
        &sync.url,
    );
    cc["spec"]["hooks"]["finalize"] = json!({"webhook": {"url": finalize.url}});
    cc["spec"]["parentResource"]["labelSelector"] = json!({"matchLabels": {"managed": "yes"}});
    h.create_cc(cc).await;
    let mut p = parent(&parent_ar, "p", l.clone(), json!({}));
    p["metadata"]["labels"] = json!({"managed": "yes"});
    h.create(&parent_ar, Some("desel"), p).await;
    // A parent outside the selector is ignored entirely.
    let mut other = parent(&parent_ar, "other", l.clone(), json!({}));
    other["metadata"]["labels"] = json!({"managed": "no"});
    h.create(&parent_ar, Some("desel"), other).await;
    wait_for("child", || h.get(configmaps(), Some("desel"), "c")).await;
    h.merge_patch(
        &parent_ar,
        Some("desel"),
        "p",
        json!({"metadata": {"labels": {"managed": null}}}),
    )
    .await;
    wait_for("finalized", || async {
        let p = h.get(&parent_ar, Some("desel"), "p").await?;
        let has = p["metadata"]["finalizers"]
            .as_array()
            .is_some_and(|f| !f.is_empty());
        (!has && h.get(configmaps(), Some("desel"), "c").await.is_none()).then_some(())
    })
    .await;
    assert!(finalize.calls() >= 1);
    assert!(
        finalize
            .requests()
            .iter()
            .all(|(_, r)| r["finalizing"] == true)
    );
    assert!(
        sync.requests()
            .iter()
            .all(|(_, r)| r["parent"]["metadata"]["name"] == "p")
    );
    let other = h.get(&parent_ar, Some("desel"), "other").await.unwrap();
    assert!(other.get("status").is_none() && other["metadata"].get("finalizers").is_none());
    h.shutdown().await;
}

/// After convergence, periodic resyncs call the hook but write nothing.
#[tokio::test]
async fn noop_resyncs_make_zero_writes() {
    let h = Harness::start().await;
    h.create_namespace("noop").await;
    let parent_ar = h.create_crd("NoopParent", "noopparents", true, true).await;
    let child_ar = h.create_crd("NoopChild", "noopchildren", true, true).await;
    let l = labels("noop");
    let hook_labels = l.clone();
    let hook = HookServer::start(move |req| {
        let replicas = req["parent"]["spec"]["replicas"].as_i64().unwrap_or(0);
        let children: Vec<Value> = (0..replicas)
            .map(|i| {
                json!({"apiVersion": API_VERSION, "kind": "NoopChild",
                    "metadata": {"name": format!("c{i}"), "labels": hook_labels, "annotations": {"a": "<b>&"}},
                    "spec": {"index": i, "ratio": 1.0, "list": [{"name": "x", "port": 80}]}})
            })
            .collect();
        let cm = configmap("cm", &hook_labels, json!({"k": "v"}));
        let mut all = children;
        all.push(cm);
        Reply::Json(json!({
            "status": {"replicas": replicas, "ready": 1.0, "message": "all <good> & well"},
            "children": all
        }))
    })
    .await;
    let mut cc = composite_controller(
        "noop",
        &parent_ar,
        &[
            (API_VERSION, "noopchildren", Some("InPlace")),
            ("v1", "configmaps", Some("Recreate")),
        ],
        &hook.url,
    );
    cc["spec"]["resyncPeriodSeconds"] = json!(1);
    // With a finalize hook the parent carries a finalizer: still no writes.
    cc["spec"]["hooks"]["finalize"] = json!({"webhook": {"url": hook.url}});
    h.create_cc(cc).await;
    h.create(
        &parent_ar,
        Some("noop"),
        parent(&parent_ar, "p", l.clone(), json!({"replicas": 2})),
    )
    .await;
    wait_for("convergence", || async {
        let p = h.get(&parent_ar, Some("noop"), "p").await?;
        let n = h.list(&child_ar, Some("noop")).await.len();
        (p["status"]["replicas"] == 2 && n == 2).then_some(())
    })
    .await;
    // Let in-flight work settle, then measure across several resyncs.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let p = h.get(&parent_ar, Some("noop"), "p").await.unwrap();
    assert_eq!(
        p["metadata"]["finalizers"],
        json!(["metacontroller.io/compositecontroller-noop"])
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

/// generateSelector: children get `controller-uid`, the parent needs no
/// selector.
#[tokio::test]
async fn generate_selector_labels_children() {
    let h = Harness::start().await;
    h.create_namespace("gen").await;
    let parent_ar = h.create_crd("GenParent", "genparents", true, true).await;
    let hook = HookServer::start(|_| {
        Reply::Json(
            json!({"children": [{"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "gen-child"}, "data": {"x": "y"}}]}),
        )
    })
    .await;
    let mut cc = composite_controller("gen", &parent_ar, &[("v1", "configmaps", None)], &hook.url);
    cc["spec"]["generateSelector"] = json!(true);
    h.create_cc(cc).await;
    let p = h
        .create(
            &parent_ar,
            Some("gen"),
            parent(&parent_ar, "p", Value::Null, json!({})),
        )
        .await;
    let uid = p["metadata"]["uid"].as_str().unwrap().to_owned();
    let child = wait_for("child", || h.get(configmaps(), Some("gen"), "gen-child")).await;
    assert_eq!(child["metadata"]["labels"]["controller-uid"], uid.as_str());
    wait_for("child observed", || async {
        hook.last_request()?["children"]["ConfigMap.v1"]
            .get("gen-child")
            .map(|_| ())
    })
    .await;
    h.shutdown().await;
}

/// InPlace updates a changed child keeping its identity; Recreate deletes
/// and recreates it.
#[tokio::test]
async fn inplace_and_recreate_update_methods() {
    let h = Harness::start().await;
    h.create_namespace("update").await;
    let parent_ar = h.create_crd("UpdParent", "updparents", true, true).await;
    let child_ar = h.create_crd("UpdChild", "updchildren", true, true).await;
    let l = labels("update");
    let hook_labels = l.clone();
    let hook = HookServer::start(move |req| {
        let v = req["parent"]["spec"]["v"].clone();
        Reply::Json(json!({"children": [
            {"apiVersion": API_VERSION, "kind": "UpdChild",
             "metadata": {"name": "inplace", "labels": hook_labels}, "spec": {"v": v}},
            configmap("recreate", &hook_labels, json!({"v": v.to_string()})),
        ]}))
    })
    .await;
    h.create_cc(composite_controller(
        "update",
        &parent_ar,
        &[
            (API_VERSION, "updchildren", Some("InPlace")),
            ("v1", "configmaps", Some("Recreate")),
        ],
        &hook.url,
    ))
    .await;
    h.create(
        &parent_ar,
        Some("update"),
        parent(&parent_ar, "p", l.clone(), json!({"v": 1})),
    )
    .await;
    let inplace = wait_for("inplace child", || {
        h.get(&child_ar, Some("update"), "inplace")
    })
    .await;
    let recreate = wait_for("recreate child", || {
        h.get(configmaps(), Some("update"), "recreate")
    })
    .await;
    // A field set by someone else survives an in-place update.
    h.merge_patch(
        &child_ar,
        Some("update"),
        "inplace",
        json!({"spec": {"extra": true}}),
    )
    .await;
    h.merge_patch(&parent_ar, Some("update"), "p", json!({"spec": {"v": 2}}))
        .await;
    let updated = wait_for("in-place update", || async {
        let c = h.get(&child_ar, Some("update"), "inplace").await?;
        (c["spec"]["v"] == 2).then_some(c)
    })
    .await;
    assert_eq!(updated["metadata"]["uid"], inplace["metadata"]["uid"]);
    assert_eq!(updated["spec"]["extra"], true);
    let recreated = wait_for("recreated", || async {
        let c = h.get(configmaps(), Some("update"), "recreate").await?;
        (c["data"]["v"] == "2").then_some(c)
    })
    .await;
    assert_ne!(recreated["metadata"]["uid"], recreate["metadata"]["uid"]);
    h.shutdown().await;
}

/// A cluster-scoped parent owns namespaced children in several namespaces;
/// v1 keys are `namespace/name` for it.
#[tokio::test]
async fn cluster_scoped_parent_with_namespaced_children() {
    let h = Harness::start().await;
    h.create_namespace("ns-a").await;
    h.create_namespace("ns-b").await;
    let parent_ar = h
        .create_crd("ClusterParent", "clusterparents", false, true)
        .await;
    let l = labels("cluster");
    let hook_labels = l.clone();
    let hook = HookServer::start(move |req| {
        let n = req["children"]["ConfigMap.v1"]
            .as_object()
            .map_or(0, |m| m.len());
        let mut a = configmap("copy", &hook_labels, json!({}));
        a["metadata"]["namespace"] = json!("ns-a");
        let mut b = configmap("copy", &hook_labels, json!({}));
        b["metadata"]["namespace"] = json!("ns-b");
        Reply::Json(json!({"status": {"copies": n}, "children": [a, b]}))
    })
    .await;
    h.create_cc(composite_controller(
        "cluster",
        &parent_ar,
        &[("v1", "configmaps", None)],
        &hook.url,
    ))
    .await;
    h.create(
        &parent_ar,
        None,
        parent(&parent_ar, "global", l.clone(), json!({})),
    )
    .await;
    wait_for("status", || async {
        let p = h.get(&parent_ar, None, "global").await?;
        (p["status"]["copies"] == 2).then_some(())
    })
    .await;
    let req = hook.last_request().unwrap();
    assert!(req["children"]["ConfigMap.v1"].get("ns-a/copy").is_some());
    assert!(req["children"]["ConfigMap.v1"].get("ns-b/copy").is_some());
    for ns in ["ns-a", "ns-b"] {
        let cm = h.get(configmaps(), Some(ns), "copy").await.unwrap();
        assert_eq!(
            cm["metadata"]["ownerReferences"][0]["kind"],
            "ClusterParent"
        );
    }
    h.shutdown().await;
}

/// Children omitted from the response are deleted; the others are kept.
#[tokio::test]
async fn omitted_children_are_deleted() {
    let h = Harness::start().await;
    h.create_namespace("omit").await;
    let parent_ar = h.create_crd("OmitParent", "omitparents", true, true).await;
    let l = labels("omit");
    let hook_labels = l.clone();
    let hook = HookServer::start(move |req| {
        let n = req["parent"]["spec"]["n"].as_u64().unwrap_or(0);
        let children: Vec<Value> = (0..n)
            .map(|i| configmap(&format!("c{i}"), &hook_labels, json!({})))
            .collect();
        Reply::Json(json!({"children": children}))
    })
    .await;
    h.create_cc(composite_controller(
        "omit",
        &parent_ar,
        &[("v1", "configmaps", None)],
        &hook.url,
    ))
    .await;
    h.create(
        &parent_ar,
        Some("omit"),
        parent(&parent_ar, "p", l.clone(), json!({"n": 3})),
    )
    .await;
    wait_for("3 children", || async {
        (h.list(configmaps(), Some("omit")).await.len() == 3).then_some(())
    })
    .await;
    let c0 = h.get(configmaps(), Some("omit"), "c0").await.unwrap();
    h.merge_patch(&parent_ar, Some("omit"), "p", json!({"spec": {"n": 1}}))
        .await;
    wait_for("1 child", || async {
        (h.list(configmaps(), Some("omit")).await.len() == 1).then_some(())
    })
    .await;
    let kept = h.get(configmaps(), Some("omit"), "c0").await.unwrap();
    assert_eq!(kept["metadata"]["uid"], c0["metadata"]["uid"]);
    h.shutdown().await;
}

/// Changing the controller's spec rebuilds it (new hook URL); deleting the
/// controller stops it.
#[tokio::test]
async fn controller_spec_change_and_deletion() {
    let h = Harness::start().await;
    h.create_namespace("life").await;
    let parent_ar = h.create_crd("LifeParent", "lifeparents", true, true).await;
    let l = labels("life");
    let first = HookServer::start(|_| Reply::Json(json!({"status": {"hook": "first"}}))).await;
    let second = HookServer::start(|_| Reply::Json(json!({"status": {"hook": "second"}}))).await;
    h.create_cc(composite_controller("life", &parent_ar, &[], &first.url))
        .await;
    h.create(
        &parent_ar,
        Some("life"),
        parent(&parent_ar, "p", l.clone(), json!({})),
    )
    .await;
    wait_for("first hook", || async {
        let p = h.get(&parent_ar, Some("life"), "p").await?;
        (p["status"]["hook"] == "first").then_some(())
    })
    .await;
    h.merge_patch(
        &cc_resource(),
        None,
        "life",
        json!({"spec": {"hooks": {"sync": {"webhook": {"url": second.url}}}}}),
    )
    .await;
    wait_for("second hook", || async {
        let p = h.get(&parent_ar, Some("life"), "p").await?;
        (p["status"]["hook"] == "second").then_some(())
    })
    .await;
    h.delete(&cc_resource(), None, "life").await;
    wait_for("Stopped event", || async {
        h.events_for("default", "life")
            .await
            .iter()
            .filter(|e| e["reason"] == "Stopped")
            .count()
            .ge(&2)
            .then_some(())
    })
    .await;
    let calls = second.calls();
    h.merge_patch(&parent_ar, Some("life"), "p", json!({"spec": {"x": 1}}))
        .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(second.calls(), calls);
    h.shutdown().await;
}

/// `ignoreStatusChanges`: status-only updates of the parent do not trigger a
/// sync; other changes do.
#[tokio::test]
async fn ignore_status_changes_drops_status_only_updates() {
    let h = Harness::start().await;
    h.create_namespace("ign").await;
    let parent_ar = h.create_crd("IgnParent", "ignparents", true, true).await;
    let hook = HookServer::start(|req| {
        Reply::Json(json!({"status": {"seen": req["parent"]["metadata"]["labels"]}}))
    })
    .await;
    let mut cc = composite_controller("ign", &parent_ar, &[], &hook.url);
    cc["spec"]["parentResource"]["ignoreStatusChanges"] = json!(true);
    h.create_cc(cc).await;
    h.create(
        &parent_ar,
        Some("ign"),
        parent(&parent_ar, "p", labels("ign"), json!({})),
    )
    .await;
    wait_for("status", || async {
        let p = h.get(&parent_ar, Some("ign"), "p").await?;
        (p["status"]["observedGeneration"] == 1).then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let calls = hook.calls();
    h.api(&parent_ar, Some("ign"))
        .patch_status(
            "p",
            &kube::api::PatchParams::default(),
            &kube::api::Patch::Merge(&json!({"status": {"other": 1}})),
        )
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(hook.calls(), calls, "a status-only change was synced");
    h.merge_patch(
        &parent_ar,
        Some("ign"),
        "p",
        json!({"metadata": {"labels": {"x": "y"}}}),
    )
    .await;
    wait_for("label change synced", || async {
        let p = h.get(&parent_ar, Some("ign"), "p").await?;
        (p["status"]["seen"]["x"] == "y").then_some(())
    })
    .await;
    h.shutdown().await;
}

/// `--target-label-selector`: only matching CompositeControllers are hosted.
#[tokio::test]
async fn target_label_selector_filters_controllers() {
    let h = Harness::start_with(metacontroller_engine::EngineConfig {
        target_label_selector: metacontroller_selectors::Selector::parse("team=a").unwrap(),
        ..Default::default()
    })
    .await;
    h.create_namespace("target").await;
    let parent_ar = h
        .create_crd("TargetParent", "targetparents", true, true)
        .await;
    let other_ar = h
        .create_crd("OtherParent", "otherparents", true, true)
        .await;
    let hook = HookServer::start(|_| Reply::Json(json!({"status": {"ok": true}}))).await;
    let mut ours = composite_controller("ours", &parent_ar, &[], &hook.url);
    ours["metadata"]["labels"] = json!({"team": "a"});
    h.create_cc(ours).await;
    let mut theirs = composite_controller("theirs", &other_ar, &[], &hook.url);
    theirs["metadata"]["labels"] = json!({"team": "b"});
    h.create_cc(theirs).await;
    h.create(
        &parent_ar,
        Some("target"),
        parent(&parent_ar, "p", labels("t"), json!({})),
    )
    .await;
    h.create(
        &other_ar,
        Some("target"),
        parent(&other_ar, "p", labels("t"), json!({})),
    )
    .await;
    wait_for("hosted controller syncs", || async {
        let p = h.get(&parent_ar, Some("target"), "p").await?;
        (p["status"]["ok"] == true).then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let other = h.get(&other_ar, Some("target"), "p").await.unwrap();
    assert!(
        other.get("status").is_none(),
        "non-matching controller was hosted"
    );
    assert!(h.events_for("default", "theirs").await.is_empty());
    h.shutdown().await;
}

/// Children caches keep only what their controller can claim: a
/// `generateSelector` controller passes over orphans without
/// `controller-uid`. When a controller that can adopt such an orphan
/// starts later on the same child type, the shared cache lists again and
/// the orphan is adopted.
#[tokio::test]
async fn a_wider_controller_sees_orphans_a_narrower_one_passed_over() {
    let h = Harness::start().await;
    h.create_namespace("wide").await;
    let narrow_ar = h
        .create_crd("NarrowParent", "narrowparents", true, true)
        .await;
    let wide_ar = h.create_crd("WideParent", "wideparents", true, true).await;
    let narrow_hook = HookServer::start(|_| {
        Reply::Json(
            json!({"children": [{"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "narrow-child"}, "data": {"x": "y"}}]}),
        )
    })
    .await;
    let l = labels("wide");
    let hook_labels = l.clone();
    let wide_hook = HookServer::start(move |_| {
        Reply::Json(
            json!({"children": [{"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "stray", "labels": hook_labels}, "data": {"x": "y"}}]}),
        )
    })
    .await;
    // The orphan exists before either controller.
    h.create(
        configmaps(),
        Some("wide"),
        configmap("stray", &l, json!({"x": "y"})),
    )
    .await;
    let mut narrow = composite_controller(
        "narrow",
        &narrow_ar,
        &[("v1", "configmaps", None)],
        &narrow_hook.url,
    );
    narrow["spec"]["generateSelector"] = json!(true);
    h.create_cc(narrow).await;
    h.create(
        &narrow_ar,
        Some("wide"),
        parent(&narrow_ar, "n", Value::Null, json!({})),
    )
    .await;
    wait_for("the narrow controller's child", || {
        h.get(configmaps(), Some("wide"), "narrow-child")
    })
    .await;
    // The narrow controller's hook never saw the stray orphan.
    assert!(
        narrow_hook
            .requests()
            .iter()
            .all(|(_, r)| r["children"]["ConfigMap.v1"].get("stray").is_none())
    );

    h.create_cc(composite_controller(
        "wide",
        &wide_ar,
        &[("v1", "configmaps", None)],
        &wide_hook.url,
    ))
    .await;
    let p = h
        .create(
            &wide_ar,
            Some("wide"),
            parent(&wide_ar, "w", l.clone(), json!({})),
        )
        .await;
    let uid = p["metadata"]["uid"].as_str().unwrap().to_owned();
    wait_for("adoption by the wider controller", || async {
        let stray = h.get(configmaps(), Some("wide"), "stray").await?;
        (owner_uid(&stray).as_deref() == Some(uid.as_str())).then_some(())
    })
    .await;
    wait_for("the adopted child reaches the hook", || async {
        wide_hook.last_request()?["children"]["ConfigMap.v1"]
            .get("stray")
            .map(|_| ())
    })
    .await;
    h.shutdown().await;
}
