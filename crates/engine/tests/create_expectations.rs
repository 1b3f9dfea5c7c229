//! A parent's next sync waits until the cache has shown the children its
//! last sync created.
//!
//! The embedded server holds back every event of the controller's
//! ConfigMap watch for a second, so the parent's own status write queues it
//! again long before its children are seen. Without waiting, that sync would
//! call the hook with no children and send every create again (each refused
//! as AlreadyExists); with it, the hook sees no children once (the first
//! sync) and the creates are sent once. Skipped on a real control plane,
//! whose watches can't be slowed down from outside.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;
use metacontroller_apiserver::{Fault, FaultKind};
use serde_json::json;

const CHILDREN: usize = 3;

#[tokio::test]
async fn a_sync_waits_for_the_children_the_last_one_created() {
    if skip_unless_embedded("delays watch events") {
        return;
    }
    let h = Harness::start().await;
    let namespace = "expect";
    h.create_namespace(namespace).await;
    let parents = h
        .create_crd("ExpectParent", "expectparents", true, true)
        .await;
    // The ConfigMap children each hook call saw.
    let seen = Arc::new(Mutex::new(Vec::new()));
    let hook = HookServer::start({
        let seen = seen.clone();
        move |req| {
            let name = req["parent"]["metadata"]["name"].as_str().unwrap_or("p");
            let children = req["children"]["ConfigMap.v1"]
                .as_object()
                .map_or(0, |m| m.len());
            seen.lock().unwrap().push(children);
            let configmaps: Vec<_> = (0..CHILDREN)
                .map(|i| configmap(&format!("{name}-{i}"), &json!({"expect": name}), json!({})))
                .collect();
            Reply::Json(json!({"status": {"children": children}, "children": configmaps}))
        }
    })
    .await;
    let server = h.embedded().unwrap();
    server.faults().add(
        Fault::new(FaultKind::WatchDelay(Duration::from_secs(1)))
            .verb("watch")
            .resource("configmaps"),
    );
    h.create_cc(composite_controller(
        "expect",
        &parents,
        &[("v1", "configmaps", None)],
        &hook.url,
    ))
    .await;
    h.create(
        &parents,
        Some(namespace),
        parent(&parents, "p", json!({"expect": "p"}), json!({})),
    )
    .await;
    wait_for("the parent reports its children", || async {
        let p = h.get(&parents, Some(namespace), "p").await?;
        (p["status"]["children"] == CHILDREN).then_some(())
    })
    .await;
    // Let any sync still queued run.
    tokio::time::sleep(Duration::from_secs(2)).await;

    let seen = seen.lock().unwrap().clone();
    assert_eq!(
        seen.iter().filter(|&&n| n == 0).count(),
        1,
        "only the first sync saw no children: {seen:?}"
    );
    assert!(
        seen.iter().all(|&n| n == 0 || n == CHILDREN),
        "no sync saw some of the children: {seen:?}"
    );
    let creates = server.counters().get("create", "configmaps");
    assert_eq!(creates, CHILDREN as u64, "each child created once");
    h.shutdown().await;
}
