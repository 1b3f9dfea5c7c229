//! The `customize` hook of CompositeControllers end to end: related objects
//! selected by the hook's rules reach the sync hook, their changes trigger
//! syncs, and invalid rules are reported.

mod common;

use common::*;
use serde_json::{Value, json};

/// The sync hook reports the keys of every related group in the status.
fn report_related(req: &Value) -> Reply {
    let mut status = serde_json::Map::new();
    if let Some(groups) = req["related"].as_object() {
        for (type_key, objects) in groups {
            let mut keys: Vec<&String> = objects
                .as_object()
                .map(|m| m.keys().collect())
                .unwrap_or_default();
            keys.sort();
            status.insert(type_key.clone(), json!(keys));
        }
    }
    Reply::Json(json!({"status": status}))
}

fn labelled_configmap(name: &str, labels: Value) -> Value {
    configmap(name, &labels, json!({"name": name}))
}

async fn status_of(
    h: &Harness,
    ar: &kube::core::ApiResource,
    ns: Option<&str>,
    name: &str,
) -> Option<Value> {
    Some(h.get(ar, ns, name).await?["status"].clone())
}

/// v1 customize and sync hooks with a namespaced parent: a label selector
/// only sees the parent's namespace, keys are plain names, and adding,
/// relabelling or deleting related objects re-syncs the parent.
#[tokio::test]
async fn v1_related_objects_stay_in_the_parent_namespace() {
    let h = Harness::start().await;
    h.create_namespace("cust-a").await;
    h.create_namespace("cust-b").await;
    let parent_ar = h.create_crd("RelParent", "relparents", true, true).await;
    let pick = json!({"pick": "yes"});
    for (ns, name, labels) in [
        ("cust-a", "a1", pick.clone()),
        ("cust-a", "a2", pick.clone()),
        ("cust-a", "unlabelled", json!({})),
        ("cust-b", "b1", pick.clone()),
    ] {
        h.create(configmaps(), Some(ns), labelled_configmap(name, labels))
            .await;
    }
    let customize = HookServer::start(|req| {
        Reply::Json(json!({"relatedResources": [{
            "apiVersion": "v1", "resource": "configmaps",
            "labelSelector": {"matchLabels": req["parent"]["spec"]["pick"]}
        }]}))
    })
    .await;
    let sync = HookServer::start(report_related).await;
    let mut cc = composite_controller("rel", &parent_ar, &[], &sync.url);
    cc["spec"]["hooks"]["customize"] = json!({"webhook": {"url": customize.url}});
    h.create_cc(cc).await;
    h.create(
        &parent_ar,
        Some("cust-a"),
        parent(&parent_ar, "p", json!({"x": "y"}), json!({"pick": pick})),
    )
    .await;
    let want = |keys: Value| {
        let h = &h;
        let parent_ar = &parent_ar;
        async move {
            wait_for(&format!("related {keys}"), || async {
                let s = status_of(h, parent_ar, Some("cust-a"), "p").await?;
                (s["ConfigMap.v1"] == keys).then_some(())
            })
            .await
        }
    };
    want(json!(["a1", "a2"])).await;

    // Request shapes.
    let req = customize.last_request().unwrap();
    assert_eq!(req["controller"]["kind"], "CompositeController");
    assert_eq!(req["parent"]["metadata"]["name"], "p");
    assert_eq!(req.as_object().unwrap().len(), 2, "{req}");

    // A new matching object, a relabelled one and a deleted one.
    h.create(
        configmaps(),
        Some("cust-a"),
        labelled_configmap("a3", pick.clone()),
    )
    .await;
    want(json!(["a1", "a2", "a3"])).await;
    h.merge_patch(
        configmaps(),
        Some("cust-a"),
        "a2",
        json!({"metadata": {"labels": {"pick": "no"}}}),
    )
    .await;
    want(json!(["a1", "a3"])).await;
    h.delete(configmaps(), Some("cust-a"), "a1").await;
    want(json!(["a3"])).await;
    // Objects in other namespaces never trigger anything useful, but a
    // change there does not break anything either.
    h.merge_patch(
        configmaps(),
        Some("cust-b"),
        "b1",
        json!({"data": {"k": "v"}}),
    )
    .await;

    // One customize call: the answer is cached for the parent's generation.
    assert_eq!(customize.calls(), 1);
    // A spec change asks again.
    h.merge_patch(
        &parent_ar,
        Some("cust-a"),
        "p",
        json!({"spec": {"pick": {"pick": "no"}}}),
    )
    .await;
    want(json!(["a2"])).await;
    assert_eq!(customize.calls(), 2);
    h.shutdown().await;
}

/// v2 hooks: related objects from another namespace and cluster-scoped
/// objects, keyed `namespace/name` and `name`.
#[tokio::test]
async fn v2_related_objects_cross_namespaces() {
    let h = Harness::start().await;
    h.create_namespace("v2-parent").await;
    h.create_namespace("v2-other").await;
    let parent_ar = h
        .create_crd("V2RelParent", "v2relparents", true, true)
        .await;
    h.create(
        configmaps(),
        Some("v2-other"),
        labelled_configmap("source", json!({})),
    )
    .await;
    h.create(
        configmaps(),
        Some("v2-other"),
        labelled_configmap("not-named", json!({})),
    )
    .await;
    h.merge_patch(
        &core("Namespace", "namespaces"),
        None,
        "v2-other",
        json!({"metadata": {"labels": {"team": "x"}}}),
    )
    .await;
    let customize = HookServer::start(|_| {
        Reply::Json(json!({"relatedResources": [
            {"apiVersion": "v1", "resource": "configmaps", "namespace": "v2-other", "names": ["source"]},
            {"apiVersion": "v1", "resource": "namespaces", "labelSelector": {"matchLabels": {"team": "x"}}}
        ]}))
    })
    .await;
    let sync = HookServer::start(report_related).await;
    let mut cc = composite_controller("v2rel", &parent_ar, &[], &sync.url);
    cc["spec"]["hooks"]["customize"] = json!({"version": "v2", "webhook": {"url": customize.url}});
    cc["spec"]["hooks"]["sync"]["version"] = json!("v2");
    h.create_cc(cc).await;
    h.create(
        &parent_ar,
        Some("v2-parent"),
        parent(&parent_ar, "p", json!({"x": "y"}), json!({})),
    )
    .await;
    let status = wait_for("related", || async {
        let s = status_of(&h, &parent_ar, Some("v2-parent"), "p").await?;
        (s["ConfigMap.v1"] == json!(["v2-other/source"])).then_some(s)
    })
    .await;
    assert_eq!(status["Namespace.v1"], json!(["v2-other"]));
    // Labelling another namespace adds it.
    h.merge_patch(
        &core("Namespace", "namespaces"),
        None,
        "v2-parent",
        json!({"metadata": {"labels": {"team": "x"}}}),
    )
    .await;
    wait_for("second namespace", || async {
        let s = status_of(&h, &parent_ar, Some("v2-parent"), "p").await?;
        (s["Namespace.v1"] == json!(["v2-other", "v2-parent"])).then_some(())
    })
    .await;
    h.shutdown().await;
}

/// A cluster-scoped parent may use a `namespaceSelector`; a namespace that
/// starts matching brings its objects in.
#[tokio::test]
async fn namespace_selector_for_cluster_scoped_parent() {
    let h = Harness::start().await;
    for ns in ["sel-a", "sel-b"] {
        h.create_namespace(ns).await;
        h.create(
            configmaps(),
            Some(ns),
            labelled_configmap("cfg", json!({"kind": "cfg"})),
        )
        .await;
    }
    h.merge_patch(
        &core("Namespace", "namespaces"),
        None,
        "sel-a",
        json!({"metadata": {"labels": {"env": "prod"}}}),
    )
    .await;
    let parent_ar = h
        .create_crd("NsSelParent", "nsselparents", false, true)
        .await;
    let customize = HookServer::start(|_| {
        Reply::Json(json!({"relatedResources": [{
            "apiVersion": "v1", "resource": "configmaps",
            "namespaceSelector": {"matchLabels": {"env": "prod"}},
            "labelSelector": {"matchLabels": {"kind": "cfg"}}
        }]}))
    })
    .await;
    let sync = HookServer::start(report_related).await;
    let mut cc = composite_controller("nssel", &parent_ar, &[], &sync.url);
    cc["spec"]["hooks"]["customize"] = json!({"webhook": {"url": customize.url}});
    h.create_cc(cc).await;
    h.create(
        &parent_ar,
        None,
        parent(&parent_ar, "global", json!({"x": "y"}), json!({})),
    )
    .await;
    wait_for("prod namespace only", || async {
        let s = status_of(&h, &parent_ar, None, "global").await?;
        (s["ConfigMap.v1"] == json!(["sel-a/cfg"])).then_some(())
    })
    .await;
    h.merge_patch(
        &core("Namespace", "namespaces"),
        None,
        "sel-b",
        json!({"metadata": {"labels": {"env": "prod"}}}),
    )
    .await;
    wait_for("both namespaces", || async {
        let s = status_of(&h, &parent_ar, None, "global").await?;
        (s["ConfigMap.v1"] == json!(["sel-a/cfg", "sel-b/cfg"])).then_some(())
    })
    .await;
    h.shutdown().await;
}

/// Invalid or (for v1 hooks) out-of-namespace rules fail the sync with a
/// Warning `SyncError` event on the parent; the sync hook is not called.
#[tokio::test]
async fn invalid_rules_are_sync_errors() {
    let h = Harness::start().await;
    h.create_namespace("bad").await;
    let parent_ar = h
        .create_crd("BadRelParent", "badrelparents", true, true)
        .await;
    let customize = HookServer::start(|req| {
        Reply::Json(json!({"relatedResources": [req["parent"]["spec"]["rule"]]}))
    })
    .await;
    let sync = HookServer::start(|_| Reply::Json(json!({}))).await;
    let mut cc = composite_controller("bad", &parent_ar, &[], &sync.url);
    cc["spec"]["hooks"]["customize"] = json!({"webhook": {"url": customize.url}});
    h.create_cc(cc).await;
    let cases = [
        (
            "names-and-labels",
            json!({"apiVersion": "v1", "resource": "configmaps", "names": ["a"], "labelSelector": {"matchLabels": {"a": "b"}}}),
            "cannot have both names and labelSelector/namespaceSelector",
        ),
        (
            "namespace-and-selector",
            json!({"apiVersion": "v1", "resource": "configmaps", "namespace": "bad", "namespaceSelector": {}}),
            "cannot have both namespace and namespaceSelector",
        ),
        (
            "other-namespace",
            json!({"apiVersion": "v1", "resource": "configmaps", "namespace": "elsewhere", "names": ["a"]}),
            "requested related object namespace elsewhere differs from parent object namespace bad",
        ),
        (
            "namespace-selector",
            json!({"apiVersion": "v1", "resource": "configmaps", "namespaceSelector": {"matchLabels": {"a": "b"}}}),
            "namespaceSelector is not supported for namespaced parent in v1 hook version",
        ),
        (
            "unknown-resource",
            json!({"apiVersion": "v1", "resource": "nonsense"}),
            "can't find resource nonsense",
        ),
    ];
    for (name, rule, _) in &cases {
        h.create(
            &parent_ar,
            Some("bad"),
            parent(&parent_ar, name, json!({"x": "y"}), json!({"rule": rule})),
        )
        .await;
    }
    for (name, _, needle) in &cases {
        let event = wait_for(&format!("SyncError for {name}"), || async {
            h.events_for("bad", name).await.into_iter().find(|e| {
                e["reason"] == "SyncError"
                    && e["message"].as_str().is_some_and(|m| m.contains(needle))
            })
        })
        .await;
        assert_eq!(event["type"], "Warning");
        assert!(
            event["message"]
                .as_str()
                .unwrap()
                .starts_with("Sync error: ")
        );
    }
    assert_eq!(sync.calls(), 0);
    h.shutdown().await;
}
