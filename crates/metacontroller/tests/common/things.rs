//! A CompositeController for the tests: parent `Thing` (`le.example.com/v1`,
//! namespaced, with status) whose hook ([`super::hook`]) wants one ConfigMap
//! named after the parent.

use std::time::Duration;

use k8s_openapi::api::core::v1::ConfigMap;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, DynamicObject, PostParams};
use kube::core::{ApiResource, GroupVersionKind};
use metacontroller_testbed::TestCluster;
use serde_json::json;

use super::hook::Hook;
use super::wait_for;

pub fn parent_resource() -> ApiResource {
    ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("le.example.com", "v1", "Thing"),
        "things",
    )
}

/// A fresh server (the one `MC_TEST_CLUSTER` names) with the Metacontroller
/// CRDs, a running sync hook, and the `Thing` CRD with its
/// CompositeController installed.
pub async fn start_world() -> (TestCluster, kube::Client, Hook) {
    let cluster = TestCluster::start().await.expect("start cluster");
    let client = cluster.client().await.expect("client");
    let hook = Hook::start("127.0.0.1:0").await;
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    for crd in metacontroller_api::crds() {
        crds.create(&PostParams::default(), &crd)
            .await
            .expect("create CRD");
    }
    install(&client, &hook).await;
    (cluster, client, hook)
}

/// Creates the `Thing` CRD and its CompositeController (the Metacontroller
/// CRDs must be installed already).
pub async fn install(client: &kube::Client, hook: &Hook) {
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    let all: Vec<CustomResourceDefinition> = vec![
        serde_json::from_value(json!({
            "apiVersion": "apiextensions.k8s.io/v1",
            "kind": "CustomResourceDefinition",
            "metadata": {"name": "things.le.example.com"},
            "spec": {
                "group": "le.example.com",
                "scope": "Namespaced",
                "names": {"plural": "things", "singular": "thing", "kind": "Thing", "listKind": "ThingList"},
                "versions": [{
                    "name": "v1", "served": true, "storage": true,
                    "subresources": {"status": {}},
                    "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}}
                }]
            }
        }))
        .unwrap(),
    ];
    for crd in &all {
        crds.create(&PostParams::default(), crd)
            .await
            .expect("create CRD");
    }
    let cc = ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("metacontroller.k8s.io", "v1alpha1", "CompositeController"),
        "compositecontrollers",
    );
    for resource in [parent_resource(), cc.clone()] {
        let api: Api<DynamicObject> = Api::all_with(client.clone(), &resource);
        wait_for(
            &format!("{} served", resource.plural),
            Duration::from_secs(60),
            || {
                let api = api.clone();
                async move { api.list(&Default::default()).await.ok() }
            },
        )
        .await;
    }
    let controller: DynamicObject = serde_json::from_value(json!({
        "apiVersion": "metacontroller.k8s.io/v1alpha1",
        "kind": "CompositeController",
        "metadata": {"name": "things"},
        "spec": {
            "generateSelector": true,
            "parentResource": {"apiVersion": "le.example.com/v1", "resource": "things"},
            "childResources": [{"apiVersion": "v1", "resource": "configmaps", "updateStrategy": {"method": "InPlace"}}],
            "hooks": {"sync": {"webhook": {"url": hook.url}}}
        }
    }))
    .unwrap();
    Api::<DynamicObject>::all_with(client.clone(), &cc)
        .create(&PostParams::default(), &controller)
        .await
        .expect("create CompositeController");
}

pub async fn create_parent(client: &kube::Client, namespace: &str, name: &str) {
    let parent: DynamicObject = serde_json::from_value(json!({
        "apiVersion": "le.example.com/v1",
        "kind": "Thing",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {}
    }))
    .unwrap();
    Api::<DynamicObject>::namespaced_with(client.clone(), namespace, &parent_resource())
        .create(&PostParams::default(), &parent)
        .await
        .expect("create parent");
}

/// Waits until `name` has its ConfigMap child and `status.children: 1`.
pub async fn wait_synced(client: &kube::Client, namespace: &str, name: &str, timeout: Duration) {
    let parents: Api<DynamicObject> =
        Api::namespaced_with(client.clone(), namespace, &parent_resource());
    let children: Api<ConfigMap> = Api::namespaced(client.clone(), namespace);
    wait_for(&format!("{name} synced"), timeout, || {
        let (parents, children) = (parents.clone(), children.clone());
        async move {
            let parent = parents.get_opt(name).await.ok()??;
            let child = children.get_opt(name).await.ok()??;
            (parent.data["status"]["children"] == 1
                && child.data.as_ref()?.get("from").map(String::as_str) == Some("hook"))
            .then_some(())
        }
    })
    .await;
}
