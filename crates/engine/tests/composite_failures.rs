//! CompositeController under failures, end to end: hooks that fail, time
//! out, throttle or need credentials; watch restarts, compaction and cache
//! flushes; write conflicts; children the parent can't own; a parent
//! resource that appears late. Every test runs on the server
//! `MC_TEST_CLUSTER` names.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use common::*;
use parking_lot::Mutex;
use serde_json::{Value, json};

fn labels(test: &str) -> Value {
    json!({"test": test})
}

/// The hook failing in various ways (500, garbage, timeout, 429) never loses
/// or duplicates children, and the controller recovers once it is healthy.
#[tokio::test]
async fn hook_failures_recover_without_losing_children() {
    let h = Harness::start().await;
    h.create_namespace("fail").await;
    let parent_ar = h.create_crd("FailParent", "failparents", true, true).await;
    let l = labels("fail");
    let mode = Arc::new(Mutex::new("ok"));
    let hook_mode = mode.clone();
    let hook_labels = l.clone();
    let hook = HookServer::start(move |req| {
        let ok = Reply::Json(json!({
            "status": {"gen": req["parent"]["metadata"]["generation"]},
            "children": [configmap("a", &hook_labels, json!({})), configmap("b", &hook_labels, json!({}))]
        }));
        match *hook_mode.lock() {
            "500" => Reply::Status(500, "boom".into()),
            "garbage" => Reply::Status(200, "{not json".into()),
            "slow" => Reply::Delayed(Duration::from_secs(2), Box::new(ok)),
            _ => ok,
        }
    })
    .await;
    let mut cc = composite_controller("fail", &parent_ar, &[("v1", "configmaps", None)], &hook.url);
    cc["spec"]["hooks"]["sync"]["webhook"]["timeout"] = json!("500ms");
    h.create_cc(cc).await;
    h.create(
        &parent_ar,
        Some("fail"),
        parent(&parent_ar, "p", l.clone(), json!({"v": 0})),
    )
    .await;
    wait_for("children", || async {
        (h.list(configmaps(), Some("fail")).await.len() == 2).then_some(())
    })
    .await;
    let uids = |cms: Vec<Value>| {
        let mut v: Vec<String> = cms
            .iter()
            .map(|c| c["metadata"]["uid"].as_str().unwrap().to_owned())
            .collect();
        v.sort();
        v
    };
    let before = uids(h.list(configmaps(), Some("fail")).await);

    for (i, (m, needle)) in [
        ("500", "500"),
        ("garbage", "unmarshal"),
        ("slow", "timed out"),
    ]
    .into_iter()
    .enumerate()
    {
        *mode.lock() = m;
        h.merge_patch(&parent_ar, Some("fail"), "p", json!({"spec": {"v": i + 1}}))
            .await;
        wait_for(&format!("SyncError for {m}"), || async {
            h.events_for("fail", "p")
                .await
                .into_iter()
                .any(|e| {
                    e["reason"] == "SyncError"
                        && e["type"] == "Warning"
                        && e["message"]
                            .as_str()
                            .is_some_and(|s| s.starts_with("Sync error: ") && s.contains(needle))
                })
                .then_some(())
        })
        .await;
        assert_eq!(uids(h.list(configmaps(), Some("fail")).await), before);
    }
    *mode.lock() = "ok";
    wait_for("recovery", || async {
        let p = h.get(&parent_ar, Some("fail"), "p").await?;
        (p["status"]["gen"] == 4).then_some(())
    })
    .await;
    assert_eq!(uids(h.list(configmaps(), Some("fail")).await), before);
    h.shutdown().await;
}

/// A hook that is not listening yet: sync errors, then recovery once it is
/// up.
#[tokio::test]
async fn hook_down_then_up() {
    let h = Harness::start().await;
    h.create_namespace("down").await;
    let parent_ar = h.create_crd("DownParent", "downparents", true, true).await;
    let l = labels("down");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let url = format!("http://{addr}/sync");
    h.create_cc(composite_controller(
        "down",
        &parent_ar,
        &[("v1", "configmaps", None)],
        &url,
    ))
    .await;
    h.create(
        &parent_ar,
        Some("down"),
        parent(&parent_ar, "p", l.clone(), json!({})),
    )
    .await;
    wait_for("SyncError while down", || async {
        h.events_for("down", "p")
            .await
            .into_iter()
            .any(|e| e["reason"] == "SyncError")
            .then_some(())
    })
    .await;
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .expect("rebind hook port");
    let hook_labels = l.clone();
    let _hook = HookServer::start_on(listener, move |_| {
        Reply::Json(json!({"children": [configmap("up", &hook_labels, json!({}))]}))
    });
    wait_for("child after recovery", || {
        h.get(configmaps(), Some("down"), "up")
    })
    .await;
    h.shutdown().await;
}

/// 429 with Retry-After: the hook is called again after the delay, with no
/// SyncError event.
#[tokio::test]
async fn too_many_requests_honours_retry_after() {
    let h = Harness::start().await;
    h.create_namespace("busy").await;
    let parent_ar = h.create_crd("BusyParent", "busyparents", true, true).await;
    let l = labels("busy");
    let remaining = Arc::new(AtomicUsize::new(2));
    let hook_remaining = remaining.clone();
    let hook_labels = l.clone();
    let hook = HookServer::start(move |_| {
        if hook_remaining
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok()
        {
            return Reply::TooMany(Some("1".into()));
        }
        Reply::Json(json!({"children": [configmap("c", &hook_labels, json!({}))]}))
    })
    .await;
    h.create_cc(composite_controller(
        "busy",
        &parent_ar,
        &[("v1", "configmaps", None)],
        &hook.url,
    ))
    .await;
    h.create(
        &parent_ar,
        Some("busy"),
        parent(&parent_ar, "p", l.clone(), json!({})),
    )
    .await;
    wait_for("child", || h.get(configmaps(), Some("busy"), "c")).await;
    let requests = hook.requests();
    assert!(requests.len() >= 3);
    for w in requests[..3].windows(2) {
        let gap = w[1].0.duration_since(w[0].0);
        assert!(
            gap >= Duration::from_millis(900),
            "Retry-After not honoured: {gap:?}"
        );
    }
    assert!(
        !h.events_for("busy", "p")
            .await
            .iter()
            .any(|e| e["reason"] == "SyncError"),
        "429 must not produce a SyncError event"
    );
    h.shutdown().await;
}

/// Credentials come from Secrets: bearer token through `endpointConfigs`
/// (matched by host), basic auth set on the webhook itself.
#[tokio::test]
async fn hook_credentials_from_secrets() {
    let h = Harness::start().await;
    h.create_namespace("auth").await;
    let parent_ar = h.create_crd("AuthParent", "authparents", true, true).await;
    let secrets = core("Secret", "secrets");
    // `data` rather than `stringData`: the embedded API server does not
    // convert `stringData` yet. "s3cr3t\n", "user", "pass":
    h.create(
        &secrets,
        Some("auth"),
        json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "token"},
            "data": {"token": "czNjcjN0Cg=="}}),
    )
    .await;
    h.create(
        &secrets,
        Some("auth"),
        json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "basic"},
            "data": {"username": "dXNlcg==", "password": "cGFzcw=="}}),
    )
    .await;
    let sync = HookServer::start(|_| Reply::Json(json!({"status": {"synced": true}}))).await;
    let finalize = HookServer::start(|_| Reply::Json(json!({"finalized": true}))).await;
    let mut cc = composite_controller("auth", &parent_ar, &[], &sync.url);
    cc["spec"]["endpointConfigs"] = json!([
        {"host": "unrelated.example"},
        {"host": sync.addr.to_string(), "authorization": {"secretRef": {"name": "token", "namespace": "auth", "key": "token"}}}
    ]);
    cc["spec"]["hooks"]["finalize"] = json!({"webhook": {"url": finalize.url,
        "basicAuth": {"secretRef": {"name": "basic", "namespace": "auth"}}}});
    h.create_cc(cc).await;
    h.create(
        &parent_ar,
        Some("auth"),
        parent(&parent_ar, "p", labels("auth"), json!({})),
    )
    .await;
    wait_for("synced", || async {
        let p = h.get(&parent_ar, Some("auth"), "p").await?;
        (p["status"]["synced"] == true).then_some(())
    })
    .await;
    assert!(
        sync.authorization_headers()
            .iter()
            .all(|a| a.as_deref() == Some("Bearer s3cr3t"))
    );
    h.delete(&parent_ar, Some("auth"), "p").await;
    wait_for("finalized", || async {
        h.get(&parent_ar, Some("auth"), "p")
            .await
            .is_none()
            .then_some(())
    })
    .await;
    // base64("user:pass")
    assert_eq!(
        finalize
            .authorization_headers()
            .last()
            .cloned()
            .flatten()
            .as_deref(),
        Some("Basic dXNlcjpwYXNz")
    );
    // Credentials never show up in events.
    for e in h.list(&core("Event", "events"), None).await {
        let text = e.to_string();
        assert!(!text.contains("s3cr3t") && !text.contains("dXNlcjpwYXNz"));
    }
    h.shutdown().await;
}

/// Watches that end or fall behind (410 Gone) are re-established and the
/// caches relisted without writes or lost changes.
#[tokio::test]
async fn survives_watch_restarts_and_compaction() {
    let h = Harness::start().await;
    h.create_namespace("watch").await;
    let parent_ar = h
        .create_crd("WatchParent", "watchparents", true, true)
        .await;
    let l = labels("watch");
    let hook_labels = l.clone();
    let hook = HookServer::start(move |req| {
        let v = req["parent"]["spec"]["v"].clone();
        Reply::Json(
            json!({"status": {"v": v}, "children": [configmap("c", &hook_labels, json!({}))]}),
        )
    })
    .await;
    h.create_cc(composite_controller(
        "watch",
        &parent_ar,
        &[("v1", "configmaps", None)],
        &hook.url,
    ))
    .await;
    h.create(
        &parent_ar,
        Some("watch"),
        parent(&parent_ar, "p", l.clone(), json!({"v": 1})),
    )
    .await;
    wait_for("converged", || async {
        let p = h.get(&parent_ar, Some("watch"), "p").await?;
        let c = h.get(configmaps(), Some("watch"), "c").await;
        (p["status"]["v"] == 1 && c.is_some()).then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let writes = h.writes();
    // Only the embedded server can compact its history and cut every watch
    // on demand; on a real one the rest of the test still checks recovery.
    if let Some(server) = h.embedded() {
        server.compact();
        server.close_watches();
        tokio::time::sleep(Duration::from_millis(1500)).await;
        assert_eq!(h.writes(), writes, "relisting wrote something");
    }
    h.merge_patch(&parent_ar, Some("watch"), "p", json!({"spec": {"v": 2}}))
        .await;
    wait_for("change after restart", || async {
        let p = h.get(&parent_ar, Some("watch"), "p").await?;
        (p["status"]["v"] == 2).then_some(())
    })
    .await;
    // A child deleted behind our back is recreated.
    h.delete(configmaps(), Some("watch"), "c").await;
    wait_for("child recreated", || {
        h.get(configmaps(), Some("watch"), "c")
    })
    .await;
    h.shutdown().await;
}

/// A CompositeController that cannot be built reports `CreateError` and is
/// retried; fixing it starts the controller.
#[tokio::test]
async fn create_error_is_reported_and_retried() {
    let h = Harness::start().await;
    h.create_namespace("broken").await;
    let parent_ar = h
        .create_crd("BrokenParent", "brokenparents", true, true)
        .await;
    let hook = HookServer::start(|_| Reply::Json(json!({"status": {"ok": true}}))).await;
    let mut cc = composite_controller("broken", &parent_ar, &[], &hook.url);
    cc["spec"].as_object_mut().unwrap().remove("hooks");
    h.create_cc(cc).await;
    let event = wait_for("CreateError event", || async {
        h.events_for("default", "broken")
            .await
            .into_iter()
            .find(|e| e["reason"] == "CreateError")
    })
    .await;
    assert_eq!(event["type"], "Warning");
    assert_eq!(
        event["message"],
        "Cannot create new controller: no hooks defined"
    );
    h.create(
        &parent_ar,
        Some("broken"),
        parent(&parent_ar, "p", labels("b"), json!({})),
    )
    .await;
    h.merge_patch(
        &cc_resource(),
        None,
        "broken",
        json!({"spec": {"hooks": {"sync": {"webhook": {"url": hook.url}}}}}),
    )
    .await;
    wait_for("controller started", || async {
        let p = h.get(&parent_ar, Some("broken"), "p").await?;
        (p["status"]["ok"] == true).then_some(())
    })
    .await;
    h.shutdown().await;
}

/// `--cache-flush-interval` redelivers cached parents, which are synced
/// again (without writing anything).
#[tokio::test]
async fn cache_flush_resyncs_parents() {
    let h = Harness::start_with(metacontroller_engine::EngineConfig {
        cache_flush_interval: Duration::from_secs(1),
        ..Default::default()
    })
    .await;
    h.create_namespace("flush").await;
    let parent_ar = h
        .create_crd("FlushParent", "flushparents", true, true)
        .await;
    let hook = HookServer::start(|_| Reply::Json(json!({"status": {"ok": true}}))).await;
    h.create_cc(composite_controller("flush", &parent_ar, &[], &hook.url))
        .await;
    h.create(
        &parent_ar,
        Some("flush"),
        parent(&parent_ar, "p", labels("f"), json!({})),
    )
    .await;
    wait_for("synced", || async {
        let p = h.get(&parent_ar, Some("flush"), "p").await?;
        (p["status"]["ok"] == true).then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (calls, writes) = (hook.calls(), h.writes());
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert!(hook.calls() >= calls + 2, "{calls} -> {}", hook.calls());
    assert_eq!(h.writes(), writes);
    h.shutdown().await;
}

/// A status write that keeps conflicting (409) past the engine's own
/// re-reads is retried with back-off until it lands, even though nothing
/// else would sync the parent again (no children, no later change). Only the
/// embedded server can inject the conflicts.
#[tokio::test]
async fn conflicting_status_writes_are_retried_until_they_land() {
    if skip_unless_embedded("injects 409 Conflict on status writes") {
        return;
    }
    use metacontroller_apiserver::faults::{Fault, FaultKind};
    let h = Harness::start().await;
    h.create_namespace("conflict").await;
    let parent_ar = h
        .create_crd("ConflictParent", "conflictparents", true, true)
        .await;
    let hook = HookServer::start(|req| {
        Reply::Json(json!({"status": {"seen": req["parent"]["spec"]["v"]}, "children": []}))
    })
    .await;
    // More conflicts than one sync's re-reads absorb (1 + 3 retries).
    h.embedded().unwrap().faults().add(
        Fault::new(FaultKind::Conflict)
            .verb("update")
            .resource("conflictparents.test.metacontroller.io/status")
            .times(6),
    );
    h.create_cc(composite_controller("conflict", &parent_ar, &[], &hook.url))
        .await;
    h.create(
        &parent_ar,
        Some("conflict"),
        parent(&parent_ar, "p", labels("conflict"), json!({"v": 7})),
    )
    .await;
    wait_for("the status lands after the conflicts", || async {
        let p = h.get(&parent_ar, Some("conflict"), "p").await?;
        (p["status"]["seen"] == 7).then_some(())
    })
    .await;
    assert!(hook.calls() >= 2, "the parent was synced again");
    h.shutdown().await;
}

/// Desired children the parent can't own — in another namespace than the
/// namespaced parent, or of a kind not declared in `childResources` — are
/// not written; a Warning Event on the parent names each one and its rule,
/// and the other children and the status are still managed.
#[tokio::test]
async fn children_the_parent_cannot_own_are_refused_with_an_event() {
    let h = Harness::start().await;
    h.create_namespace("own").await;
    h.create_namespace("elsewhere").await;
    let parent_ar = h.create_crd("OwnParent", "ownparents", true, true).await;
    let l = labels("own");
    let hook_labels = l.clone();
    let hook = HookServer::start(move |_| {
        let mut stray = configmap("stray", &hook_labels, json!({}));
        stray["metadata"]["namespace"] = json!("elsewhere");
        let secret = json!({
            "apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": "undeclared", "labels": hook_labels},
            "stringData": {"k": "v"}
        });
        Reply::Json(json!({
            "status": {"ok": true},
            "children": [configmap("good", &hook_labels, json!({})), stray, secret]
        }))
    })
    .await;
    h.create_cc(composite_controller(
        "own",
        &parent_ar,
        &[("v1", "configmaps", None)],
        &hook.url,
    ))
    .await;
    h.create(
        &parent_ar,
        Some("own"),
        parent(&parent_ar, "p", l.clone(), json!({})),
    )
    .await;
    wait_for("the good child", || {
        h.get(configmaps(), Some("own"), "good")
    })
    .await;
    wait_for("the status", || async {
        let p = h.get(&parent_ar, Some("own"), "p").await?;
        (p["status"]["ok"] == true).then_some(())
    })
    .await;
    let events = wait_for("a Warning Event naming both refused children", || async {
        let events = h.events_for("own", "p").await;
        let text = serde_json::to_string(&events).unwrap();
        (text.contains("refused desired child ConfigMap elsewhere/stray")
            && text.contains("refused desired child Secret own/undeclared"))
        .then_some(events)
    })
    .await;
    assert!(
        events
            .iter()
            .any(|e| e["type"] == "Warning" && e["reason"] == "SyncError"),
        "{events:#?}"
    );
    // Give a wrong create every chance to have happened.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        h.get(configmaps(), Some("elsewhere"), "stray")
            .await
            .is_none()
    );
    assert!(
        h.get(&core("Secret", "secrets"), Some("own"), "undeclared")
            .await
            .is_none()
    );
    h.shutdown().await;
}

/// A CompositeController whose parent resource does not exist yet gets a
/// `CreateError` Warning Event naming the missing CRD, and starts by itself
/// once the CRD is created.
#[tokio::test]
async fn missing_parent_resource_is_reported_and_started_later() {
    let h = Harness::start().await;
    h.create_namespace("late").await;
    let hook = HookServer::start(|_| Reply::Json(json!({"status": {"ok": true}}))).await;
    let future_ar = kube::core::ApiResource {
        group: GROUP.into(),
        version: "v1".into(),
        api_version: API_VERSION.into(),
        kind: "LateParent".into(),
        plural: "lateparents".into(),
    };
    h.create_cc(composite_controller("late", &future_ar, &[], &hook.url))
        .await;
    let event = wait_for("CreateError event", || async {
        h.events_for("default", "late")
            .await
            .into_iter()
            .find(|e| e["reason"] == "CreateError")
    })
    .await;
    assert_eq!(event["type"], "Warning");
    let message = event["message"].as_str().unwrap();
    assert_eq!(
        message,
        "Cannot create new controller: parent resource lateparents.test.metacontroller.io \
         does not exist (no CustomResourceDefinition of that name)"
    );
    let parent_ar = h.create_crd("LateParent", "lateparents", true, true).await;
    h.create(
        &parent_ar,
        Some("late"),
        parent(&parent_ar, "p", labels("late"), json!({})),
    )
    .await;
    wait_for("the controller started by itself", || async {
        let p = h.get(&parent_ar, Some("late"), "p").await?;
        (p["status"]["ok"] == true).then_some(())
    })
    .await;
    h.shutdown().await;
}
