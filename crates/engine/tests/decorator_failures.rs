//! DecoratorController under failures, end to end: hook errors reported on
//! the target, write conflicts retried, attachments the target can't own
//! refused. Every test runs on the server `MC_TEST_CLUSTER` names.

mod common;

use std::time::Duration;

use common::decorator::*;
use common::*;
use serde_json::json;

/// A failing hook produces a Warning SyncError event on the target.
#[tokio::test]
async fn hook_errors_are_reported_on_the_target() {
    let h = Harness::start().await;
    h.create_namespace("err").await;
    let target_ar = h.create_crd("ErrTarget", "errtargets", true, true).await;
    let hook = HookServer::start(|_| Reply::Status(500, "boom".into())).await;
    create_dc(
        &h,
        decorator_controller("err", json!([rule(&target_ar)]), json!([]), &hook.url),
    )
    .await;
    h.create(
        &target_ar,
        Some("err"),
        object(&target_ar, "t", json!({}), json!({})),
    )
    .await;
    let event = wait_for("SyncError", || async {
        h.events_for("err", "t")
            .await
            .into_iter()
            .find(|e| e["reason"] == "SyncError")
    })
    .await;
    assert_eq!(event["type"], "Warning");
    assert_eq!(event["involvedObject"]["kind"], "ErrTarget");
    let message = event["message"].as_str().unwrap();
    assert!(message.starts_with("Sync error: "), "{message}");
    assert!(message.contains("500"), "{message}");
    h.shutdown().await;
}

/// A decorator's write that keeps conflicting (409) is retried with
/// back-off until it lands, though no other event would sync the object
/// again. Only the embedded server can inject the conflicts.
#[tokio::test]
async fn conflicting_writes_are_retried_until_they_land() {
    if skip_unless_embedded("injects 409 Conflict on updates") {
        return;
    }
    use metacontroller_apiserver::faults::{Fault, FaultKind};
    let h = Harness::start().await;
    h.create_namespace("dconflict").await;
    let target_ar = h
        .create_crd("DConflictTarget", "dconflicttargets", true, true)
        .await;
    let hook = HookServer::start(|_| Reply::Json(json!({"labels": {"decorated": "yes"}}))).await;
    h.embedded().unwrap().faults().add(
        Fault::new(FaultKind::Conflict)
            .verb("update")
            .resource("dconflicttargets.test.metacontroller.io")
            .times(3),
    );
    create_dc(
        &h,
        decorator_controller("dconflict", json!([rule(&target_ar)]), json!([]), &hook.url),
    )
    .await;
    h.create(
        &target_ar,
        Some("dconflict"),
        object(&target_ar, "t", json!({"a": "b"}), json!({})),
    )
    .await;
    wait_for("the labels land after the conflicts", || async {
        let t = h.get(&target_ar, Some("dconflict"), "t").await?;
        (t["metadata"]["labels"]["decorated"] == "yes").then_some(())
    })
    .await;
    assert!(hook.calls() >= 4, "one call per attempt: {}", hook.calls());
    h.shutdown().await;
}

/// Attachments the target can't own — of a kind not declared in
/// `attachments`, or in another namespace — are not written; the sync's
/// Warning Event names them, and the declared attachment is still managed.
#[tokio::test]
async fn attachments_the_target_cannot_own_are_refused_with_an_event() {
    let h = Harness::start().await;
    h.create_namespace("downs").await;
    h.create_namespace("dother").await;
    let target_ar = h.create_crd("DOwnTarget", "downtargets", true, true).await;
    let hook = HookServer::start(|_| {
        Reply::Json(json!({"attachments": [
            {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "good"}},
            {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "stray", "namespace": "dother"}},
            {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "undeclared"}}
        ]}))
    })
    .await;
    create_dc(
        &h,
        decorator_controller(
            "downs",
            json!([rule(&target_ar)]),
            json!([{"apiVersion": "v1", "resource": "configmaps"}]),
            &hook.url,
        ),
    )
    .await;
    h.create(
        &target_ar,
        Some("downs"),
        object(&target_ar, "t", json!({}), json!({})),
    )
    .await;
    wait_for("the declared attachment", || {
        h.get(configmaps(), Some("downs"), "good")
    })
    .await;
    wait_for(
        "a Warning Event naming both refused attachments",
        || async {
            let text = serde_json::to_string(&h.events_for("downs", "t").await).unwrap();
            (text.contains("refused desired attachment ConfigMap dother/stray")
                && text.contains("refused desired attachment Secret downs/undeclared"))
            .then_some(())
        },
    )
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(h.get(configmaps(), Some("dother"), "stray").await.is_none());
    assert!(
        h.get(&core("Secret", "secrets"), Some("downs"), "undeclared")
            .await
            .is_none()
    );
    h.shutdown().await;
}
