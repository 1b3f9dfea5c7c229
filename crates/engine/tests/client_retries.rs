//! The engine's Kubernetes client retries like client-go: a 429 with
//! `Retry-After` is retried after that wait, at most 10 times; a 429
//! without it goes back to the engine at once, which syncs the parent again
//! with its own back-off. Either way the parent converges.
//!
//! Both tests inject answers on the embedded server and count the requests
//! it saw; they are skipped on a real control plane.

mod common;

use common::*;
use kube::core::ApiResource;
use metacontroller_apiserver::{Fault, FaultKind};
use serde_json::{Value, json};

/// A parent with one ConfigMap child `<parent>-child`; its status counts the
/// children the hook saw.
async fn world(h: &Harness, namespace: &str) -> (ApiResource, HookServer) {
    h.create_namespace(namespace).await;
    let parents = h
        .create_crd("RetryParent", "retryparents", true, true)
        .await;
    let hook = HookServer::start(|req| {
        let name = req["parent"]["metadata"]["name"].as_str().unwrap_or("p");
        let seen = req["children"]["ConfigMap.v1"]
            .as_object()
            .map_or(0, |m| m.len());
        Reply::Json(json!({
            "status": {"children": seen},
            "children": [configmap(&format!("{name}-child"), &json!({"retry": name}), json!({}))]
        }))
    })
    .await;
    h.create_cc(composite_controller(
        "retries",
        &parents,
        &[("v1", "configmaps", None)],
        &hook.url,
    ))
    .await;
    (parents, hook)
}

/// Waits until the parent reports its child.
async fn converged(h: &Harness, parents: &ApiResource, namespace: &str) {
    wait_for("the parent reports its child", || async {
        let p = h.get(parents, Some(namespace), "p").await?;
        let child = h.get(configmaps(), Some(namespace), "p-child").await;
        (child.is_some() && p["status"]["children"] == 1).then_some(())
    })
    .await;
}

/// Syncs of the parents that failed and were queued again with back-off
/// (`workqueue_retries_total` of the controller's queue).
fn failed_syncs(h: &Harness) -> u64 {
    let mut text = String::new();
    prometheus_client::encoding::text::encode(&mut text, &h.registry).unwrap();
    text.lines()
        .filter(|l| {
            l.starts_with("workqueue_retries_total{")
                && l.contains("name=\"CompositeController-retries\"")
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
        .sum()
}

fn create_configmap_requests(h: &Harness) -> u64 {
    h.embedded().unwrap().counters().get("create", "configmaps")
}

fn parent_object(parents: &ApiResource) -> Value {
    parent(parents, "p", json!({"retry": "p"}), json!({}))
}

/// 15 answers 429 with `Retry-After: 1` in a row: the client waits 1 s
/// before each of its 10 retries, then hands the 429 to the engine, whose
/// next sync meets the last 4 and then succeeds. (kube-rs's default policy
/// would retry this one request 15 times with an exponential back-off that
/// outgrows `Retry-After`, sleeping about 170 s in all.)
#[tokio::test]
async fn a_429_with_retry_after_is_retried_after_that_wait() {
    if skip_unless_embedded("injects 429 answers") {
        return;
    }
    let h = Harness::start().await;
    let (parents, _hook) = world(&h, "retry-after").await;
    h.embedded().unwrap().faults().add(
        Fault::new(FaultKind::TooManyRequests {
            retry_after_seconds: 1,
        })
        .verb("create")
        .resource("configmaps")
        .times(15),
    );
    h.create(&parents, Some("retry-after"), parent_object(&parents))
        .await;
    converged(&h, &parents, "retry-after").await;
    // One sync failed: its create was answered 429 once and retried 10
    // times. The next sync met the last 4 and created the child (a later
    // sync may try once more before its cache has seen the child).
    assert_eq!(failed_syncs(&h), 1);
    let creates = create_configmap_requests(&h);
    assert!((16..=17).contains(&creates), "{creates} creates");
    h.shutdown().await;
}

/// Three answers 429 without `Retry-After`: the client does not retry them;
/// each fails its sync, and the engine's back-off syncs the parent again.
#[tokio::test]
async fn a_429_without_retry_after_goes_back_to_the_engine() {
    if skip_unless_embedded("injects 429 answers") {
        return;
    }
    let h = Harness::start().await;
    let (parents, _hook) = world(&h, "no-retry-after").await;
    h.embedded().unwrap().faults().add(
        Fault::new(FaultKind::TooManyRequestsWithoutRetryAfter)
            .verb("create")
            .resource("configmaps")
            .times(3),
    );
    h.create(&parents, Some("no-retry-after"), parent_object(&parents))
        .await;
    converged(&h, &parents, "no-retry-after").await;
    // Each 429 failed a sync of its own.
    assert_eq!(failed_syncs(&h), 3);
    let creates = create_configmap_requests(&h);
    assert!((4..=5).contains(&creates), "{creates} creates");
    h.shutdown().await;
}
