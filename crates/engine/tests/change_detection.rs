//! The writes that bring a hook's next call, seen from the hook: a missing
//! field and an empty one are different, as they are for Metacontroller
//! (`reflect.DeepEqual` of a nil and an empty map). Each test drives the
//! hook through a sequence and checks every call it received, for
//! DecoratorControllers and CompositeControllers, hook versions v1 and v2.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use common::*;
use kube::core::ApiResource;
use serde_json::{Value, json};

/// The delay the second call asks for.
const RESYNC_AFTER: Duration = Duration::from_secs(1);

/// How long a settled sequence is watched for further calls or writes.
const QUIET: Duration = Duration::from_millis(1500);

/// A DecoratorController on every object of `target`, with the sync hook
/// at `url` in hook version `version`.
fn decorator_controller(target: &ApiResource, url: &str, version: &str) -> Value {
    json!({
        "apiVersion": "metacontroller.k8s.io/v1alpha1",
        "kind": "DecoratorController",
        "metadata": {"name": "seq"},
        "spec": {
            "resources": [{"apiVersion": target.api_version, "resource": target.plural}],
            "hooks": {"sync": {"version": version, "webhook": {"url": url}}}
        }
    })
}

/// A hook answering by call number: `first` to the first call, `second`
/// to the second and `rest` to every later one.
async fn counting_hook(first: Value, second: Value, rest: Value) -> HookServer {
    let calls = Arc::new(AtomicUsize::new(0));
    HookServer::start(move |_| {
        Reply::Json(match calls.fetch_add(1, Ordering::SeqCst) {
            0 => first.clone(),
            1 => second.clone(),
            _ => rest.clone(),
        })
    })
    .await
}

/// The sequence of the task: call 1 sees no status and answers
/// `status: {}`; that write brings call 2, which answers `status: {}` again
/// with `resyncAfterSeconds`; the resync brings call 3, whose status lands;
/// its write brings call 4, which changes nothing, and the calls stop.
async fn empty_status_sequence(h: &Harness, hook: &HookServer, ar: &ApiResource, root: &str) {
    let o = wait_for("the status of the third call", || async {
        let o = h.get(ar, Some("seq"), "o").await?;
        (o["status"]["phase"] == "done").then_some(o)
    })
    .await;
    wait_for("the fourth call", || async {
        (hook.calls() >= 4).then_some(())
    })
    .await;
    let (calls, writes) = (hook.calls(), h.writes());
    tokio::time::sleep(QUIET).await;

    let requests = hook.requests();
    let statuses: Vec<&Value> = requests.iter().map(|(_, r)| &r[root]["status"]).collect();
    // A CompositeController adds observedGeneration to every status it writes.
    let written = |status: Value| match root {
        "parent" => {
            let mut status = status;
            status["observedGeneration"] = o["metadata"]["generation"].clone();
            status
        }
        _ => status,
    };
    assert_eq!(
        statuses,
        [
            &Value::Null,
            &written(json!({})),
            &written(json!({})),
            &written(json!({"phase": "done"}))
        ],
        "statuses the hook saw"
    );
    let gap = requests[2].0 - requests[1].0;
    assert!(
        gap >= RESYNC_AFTER.mul_f64(0.9),
        "the third call came {gap:?} after the second, before its resyncAfterSeconds"
    );
    assert_eq!(o["status"], written(json!({"phase": "done"})));
    assert_eq!(
        (hook.calls(), h.writes()),
        (calls, writes),
        "calls or writes after the sequence settled"
    );
}

async fn decorator_sequence(version: &str, status_subresource: bool) {
    let h = Harness::start().await;
    h.create_namespace("seq").await;
    let ar = h
        .create_crd("SeqTarget", "seqtargets", true, status_subresource)
        .await;
    let hook = counting_hook(
        json!({"status": {}}),
        json!({"status": {}, "resyncAfterSeconds": RESYNC_AFTER.as_secs_f64()}),
        json!({"status": {"phase": "done"}}),
    )
    .await;
    h.create(
        &dc_resource(),
        None,
        decorator_controller(&ar, &hook.url, version),
    )
    .await;
    h.create(
        &ar,
        Some("seq"),
        json!({"apiVersion": ar.api_version, "kind": ar.kind, "metadata": {"name": "o"}, "spec": {}}),
    )
    .await;
    empty_status_sequence(&h, &hook, &ar, "object").await;
    h.shutdown().await;
}

/// DecoratorController, v1 hook: `status: {}` for a target without status
/// is written through `/status` and brings the next call.
#[tokio::test]
async fn decorator_v1_empty_status_is_written() {
    decorator_sequence("v1", true).await;
}

/// The same with a v2 hook.
#[tokio::test]
async fn decorator_v2_empty_status_is_written() {
    decorator_sequence("v2", true).await;
}

/// The same for a type without a status subresource: the object itself is
/// written.
#[tokio::test]
async fn decorator_empty_status_is_written_without_status_subresource() {
    decorator_sequence("v1", false).await;
}

/// What does not differ is not written: empty `labels` and `annotations`
/// on a target that has none, and a `null` status, change nothing, so the
/// hook is called once.
#[tokio::test]
async fn decorator_empty_maps_and_null_status_write_nothing() {
    let h = Harness::start().await;
    h.create_namespace("seq").await;
    let ar = h.create_crd("SeqTarget", "seqtargets", true, true).await;
    let hook = HookServer::start(|_| {
        Reply::Json(json!({"labels": {}, "annotations": {}, "status": null}))
    })
    .await;
    h.create(
        &dc_resource(),
        None,
        decorator_controller(&ar, &hook.url, "v1"),
    )
    .await;
    let created = h
        .create(
            &ar,
            Some("seq"),
            json!({"apiVersion": ar.api_version, "kind": ar.kind, "metadata": {"name": "o"}, "spec": {}}),
        )
        .await;
    wait_for("the first call", || async {
        (hook.calls() >= 1).then_some(())
    })
    .await;
    tokio::time::sleep(QUIET).await;
    assert_eq!(hook.calls(), 1, "calls: {:?}", hook.requests());
    let o = h.get(&ar, Some("seq"), "o").await.unwrap();
    assert_eq!(
        o["metadata"]["resourceVersion"], created["metadata"]["resourceVersion"],
        "the target was written: {o}"
    );
    assert!(o.get("status").is_none(), "status appeared: {o}");
    assert!(o["metadata"].get("labels").is_none_or(|l| l == &json!({})));
    h.shutdown().await;
}

async fn composite_sequence(version: &str) {
    let h = Harness::start().await;
    h.create_namespace("seq").await;
    let ar = h.create_crd("SeqParent", "seqparents", true, true).await;
    let hook = counting_hook(
        json!({"status": {}, "children": []}),
        json!({"status": {}, "children": [], "resyncAfterSeconds": RESYNC_AFTER.as_secs_f64()}),
        json!({"status": {"phase": "done"}, "children": []}),
    )
    .await;
    let mut cc = composite_controller("seq", &ar, &[], &hook.url);
    cc["spec"]["hooks"]["sync"]["version"] = json!(version);
    h.create_cc(cc).await;
    h.create(
        &ar,
        Some("seq"),
        parent(&ar, "o", json!({"seq": "o"}), json!({})),
    )
    .await;
    empty_status_sequence(&h, &hook, &ar, "parent").await;
    h.shutdown().await;
}

/// CompositeController, v1 hook: `status: {}` for a parent without status
/// is written with `observedGeneration` and brings the next call.
#[tokio::test]
async fn composite_v1_empty_status_is_written() {
    composite_sequence("v1").await;
}

/// The same with a v2 hook.
#[tokio::test]
async fn composite_v2_empty_status_is_written() {
    composite_sequence("v2").await;
}
