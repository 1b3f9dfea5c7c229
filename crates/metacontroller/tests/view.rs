//! The live view in a real browser, on the server `MC_TEST_CLUSTER` names.
//!
//! `metacontroller run --view-address=127.0.0.1:0` hosts the test
//! CompositeController; headless Chromium (driven over the DevTools
//! protocol) loads the view once. The test then changes the parent and,
//! later, the parent's child behind the controller's back, and reads the
//! page's DOM as it updates from the server-sent events, without a
//! reload: the new hook calls with the changed parent in their request,
//! the repair of the child as an `update` action with its JSON patch, the
//! controller's health, the children tree; then it points the controller at
//! a hook that is not there and reads the failure in the error banner and
//! the parent's Warning `SyncError` Event. A screenshot of the page is
//! kept in the target directory and its path printed.
#![cfg(unix)]

mod common;

use std::time::Duration;

use common::cdp::{Browser, Page};
use common::instance::Instance;
use common::things::{create_parent, parent_resource, start_world, wait_synced};
use common::wait_for;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, DynamicObject, Patch, PatchParams};
use serde_json::{Value, json};

const TIMEOUT: Duration = Duration::from_secs(90);

/// What the test reads of the page, as one JSON value.
const READ_PAGE: &str = r##"JSON.stringify({
  connection: document.getElementById("connection")?.textContent || "",
  controllers: document.getElementById("controllers")?.textContent || "",
  title: (document.getElementById("parent-title") || {}).textContent || "",
  tree: (document.querySelector(".tree") || {}).textContent || "",
  syncs: [...document.querySelectorAll("article.sync")].map(a => ({
    seq: Number(a.dataset.seq),
    text: a.textContent,
    actions: [...a.querySelectorAll(".action")].map(s => s.textContent),
  })),
  errors: document.getElementById("errors")?.hidden ? "" : document.getElementById("errors")?.textContent || "",
  events: document.querySelector("#detail table")?.textContent || "",
  marker: window.viewTestMarker || null,
})"##;

async fn read_page(page: &mut Page) -> Value {
    let text = page.evaluate(READ_PAGE).await;
    serde_json::from_str(text.as_str().expect("page state")).expect("page state JSON")
}

/// Reads the page every 200 ms until `check` accepts what it shows.
async fn wait_page(page: &mut Page, what: &str, check: impl Fn(&Value) -> bool) -> Value {
    let deadline = std::time::Instant::now() + TIMEOUT;
    loop {
        let state = read_page(page).await;
        if check(&state) {
            return state;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "timed out waiting for {what}; the page shows {state:#}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The syncs shown after sync number `after`.
fn syncs_after(state: &Value, after: u64) -> impl Iterator<Item = &Value> {
    state["syncs"]
        .as_array()
        .unwrap()
        .iter()
        .filter(move |s| s["seq"].as_u64().unwrap() > after)
}

/// The highest sync number shown.
fn newest(state: &Value) -> u64 {
    state["syncs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["seq"].as_u64().unwrap())
        .max()
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_follows_syncs_live() {
    let (cluster, client, _hook) = start_world().await;
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    std::fs::write(&kubeconfig, cluster.kubeconfig()).unwrap();
    let instance = Instance::start(
        "view",
        &kubeconfig,
        &[
            "--view-address=127.0.0.1:0",
            "--metrics-address=0",
            "--health-probe-bind-address=0",
        ],
    );
    let url = wait_for("the live view's URL in the log", TIMEOUT, || {
        let log = instance.log();
        async move {
            log.lines()
                .filter_map(|l| serde_json::from_str::<Value>(l).ok())
                .find(|l| l["msg"] == "live view")
                .and_then(|l| l["url"].as_str().map(str::to_owned))
        }
    })
    .await;
    assert!(url.starts_with("http://127.0.0.1:"), "{url}");

    create_parent(&client, "default", "viewed").await;
    wait_synced(&client, "default", "viewed", TIMEOUT).await;

    let browser = Browser::start(1400, 1000).await;
    let mut page = Page::open(&browser, &url).await;

    // The first sync, from the snapshot the stream starts with.
    let first = wait_page(&mut page, "the first sync", |state| {
        state["connection"] == "live" && newest(state) > 0
    })
    .await;
    assert!(
        first["title"]
            .as_str()
            .unwrap()
            .contains("Thing default/viewed"),
        "{first}"
    );
    assert!(
        first["controllers"].as_str().unwrap().contains("things"),
        "{first}"
    );
    assert!(
        first["controllers"].as_str().unwrap().contains("running"),
        "{first}"
    );
    assert!(
        syncs_after(&first, 0).any(|s| s["actions"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a == "create")),
        "the child's creation is shown: {first:#}"
    );
    let before = newest(&first);
    // Anything set here is lost if the page reloads.
    page.evaluate("window.viewTestMarker = 'loaded once'; true")
        .await;

    // Change the parent: its new spec must show up in a new hook call.
    let token = format!("blue-{}", std::process::id());
    let parents: Api<DynamicObject> =
        Api::namespaced_with(client.clone(), "default", &parent_resource());
    parents
        .patch(
            "viewed",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"color": token}})),
        )
        .await
        .expect("patch parent");
    let changed = wait_page(&mut page, "the parent's change", |state| {
        syncs_after(state, before).any(|s| s["text"].as_str().unwrap().contains(&token))
    })
    .await;
    assert_eq!(changed["marker"], "loaded once", "the page was reloaded");

    // Change the child behind the controller's back: the repair is an
    // update with the JSON patch that undoes it.
    let before = newest(&changed);
    let children: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    children
        .patch(
            "viewed",
            &PatchParams::default(),
            &Patch::Merge(json!({"data": {"from": "someone else"}})),
        )
        .await
        .expect("patch child");
    let repaired = wait_page(&mut page, "the child's repair", |state| {
        syncs_after(state, before).any(|s| {
            s["actions"]
                .as_array()
                .unwrap()
                .iter()
                .any(|a| a == "update")
                && s["text"].as_str().unwrap().contains("/data/from")
        })
    })
    .await;
    assert_eq!(repaired["marker"], "loaded once", "the page was reloaded");
    let tree = repaired["tree"].as_str().unwrap();
    assert!(tree.contains("ConfigMap.v1"), "{repaired:#}");
    // The tree marks the child with the last write to it.
    assert!(tree.contains("update #"), "{repaired:#}");

    // Point the controller at a hook that is not there: the failures show
    // in the error banner, in the failed sync and as the parent's Warning
    // Event.
    let controllers: Api<DynamicObject> = Api::all_with(
        client.clone(),
        &kube::core::ApiResource::from_gvk_with_plural(
            &kube::core::GroupVersionKind::gvk(
                "metacontroller.k8s.io",
                "v1alpha1",
                "CompositeController",
            ),
            "compositecontrollers",
        ),
    );
    let gone = "http://127.0.0.1:9/sync";
    controllers
        .patch(
            "things",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"hooks": {"sync": {"webhook": {"url": gone}}}}})),
        )
        .await
        .expect("patch CompositeController");
    parents
        .patch(
            "viewed",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"color": "red"}})),
        )
        .await
        .expect("patch parent");
    let failing = wait_page(&mut page, "the hook's failure", |state| {
        let errors = state["errors"].as_str().unwrap();
        errors.contains("Errors")
            && errors.contains(gone)
            && state["events"].as_str().unwrap().contains("SyncError")
    })
    .await;
    assert_eq!(failing["marker"], "loaded once", "the page was reloaded");

    let shot = page.screenshot().await;
    assert!(shot.starts_with(b"\x89PNG\r\n\x1a\n"), "not a PNG");
    let path = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("live-view.png");
    std::fs::write(&path, &shot).unwrap();
    println!(
        "screenshot of the live view: {} ({} bytes)",
        path.display(),
        shot.len()
    );
    drop(instance);
}
