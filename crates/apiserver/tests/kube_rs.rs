//! kube-rs against the embedded server: its watcher and reflector converge
//! on the same state as a fresh list, recover from 410 Gone by re-listing,
//! and the garbage collector honours every propagation policy.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::{eventually, kube_client, server};
use futures::StreamExt;
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
use kube::api::{
    Api, DeleteParams, ListParams, ObjectMeta, Patch, PatchParams, PostParams, PropagationPolicy,
};
use kube::runtime::{WatchStreamExt, reflector, watcher};
use serde_json::json;

fn cm(name: &str, v: &str) -> ConfigMap {
    ConfigMap {
        metadata: ObjectMeta {
            name: Some(name.into()),
            ..Default::default()
        },
        data: Some(BTreeMap::from([("v".to_string(), v.to_string())])),
        ..Default::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reflector_converges_to_a_fresh_list_under_concurrent_updates() {
    let s = server().await;
    let client = kube_client(&s).await;
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    for i in 0..1000 {
        api.create(&PostParams::default(), &cm(&format!("cm-{i:04}"), "0"))
            .await
            .unwrap();
    }
    let (reader, writer) = reflector::store::<ConfigMap>();
    let stream = reflector(
        writer,
        watcher(api.clone(), watcher::Config::default().any_semantic()),
    )
    .applied_objects()
    .for_each(|_| async {});
    let task = tokio::spawn(stream);
    reader.wait_until_ready().await.unwrap();

    // Concurrent writers: updates, deletes and creates while it watches.
    let mut writers = Vec::new();
    for w in 0..4 {
        let api = api.clone();
        writers.push(tokio::spawn(async move {
            for i in (w..1000).step_by(4) {
                let name = format!("cm-{i:04}");
                if i % 10 == 0 {
                    api.delete(&name, &DeleteParams::default()).await.unwrap();
                } else {
                    let p = json!({"data": {"v": format!("{w}-{i}")}});
                    api.patch(&name, &PatchParams::default(), &Patch::Merge(&p))
                        .await
                        .unwrap();
                }
            }
            for i in 0..25 {
                api.create(&PostParams::default(), &cm(&format!("new-{w}-{i}"), "n"))
                    .await
                    .unwrap();
            }
        }));
    }
    for w in writers {
        w.await.unwrap();
    }
    let fresh = api.list(&ListParams::default()).await.unwrap();
    let want: BTreeMap<String, (String, BTreeMap<String, String>)> = fresh
        .items
        .iter()
        .map(|c| {
            (
                c.metadata.name.clone().unwrap(),
                (
                    c.metadata.resource_version.clone().unwrap(),
                    c.data.clone().unwrap(),
                ),
            )
        })
        .collect();
    assert_eq!(want.len(), 1000 - 100 + 100);
    eventually(
        Duration::from_secs(30),
        "reflector matches a fresh list",
        || {
            let got: BTreeMap<String, (String, BTreeMap<String, String>)> = reader
                .state()
                .iter()
                .map(|c| {
                    (
                        c.metadata.name.clone().unwrap(),
                        (
                            c.metadata.resource_version.clone().unwrap(),
                            c.data.clone().unwrap(),
                        ),
                    )
                })
                .collect();
            got == want
        },
    )
    .await;
    task.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watcher_relists_after_410_gone() {
    let s = server().await;
    let client = kube_client(&s).await;
    let api: Api<ConfigMap> = Api::namespaced(client, "default");
    api.create(&PostParams::default(), &cm("a", "1"))
        .await
        .unwrap();
    let (reader, writer) = reflector::store::<ConfigMap>();
    let task = tokio::spawn(
        reflector(
            writer,
            watcher(api.clone(), watcher::Config::default().timeout(2)),
        )
        .applied_objects()
        .for_each(|_| async {}),
    );
    reader.wait_until_ready().await.unwrap();
    // Hold re-watches back, drop every watch, write while the watcher is
    // away and forget that history: resuming from its old resourceVersion
    // gets 410 Gone, so it must list again to see b.
    s.faults().add(
        metacontroller_apiserver::Fault::new(metacontroller_apiserver::FaultKind::Latency(
            Duration::from_millis(500),
        ))
        .verb("watch")
        .resource("configmaps")
        .times(1),
    );
    s.close_watches();
    api.create(&PostParams::default(), &cm("b", "1"))
        .await
        .unwrap();
    s.compact();
    eventually(Duration::from_secs(30), "b seen after a relist", || {
        reader
            .state()
            .iter()
            .any(|c| c.metadata.name.as_deref() == Some("b"))
    })
    .await;
    let lists = s.counters().get("list", "configmaps");
    assert!(lists >= 2, "the watcher re-listed ({lists} lists)");
    task.abort();
}

/// Waits until `name` no longer exists.
async fn wait_gone<K>(api: &Api<K>, name: &str, what: &str)
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    common::eventually_async(Duration::from_secs(10), what, || async {
        api.get_opt(name).await.unwrap().is_none()
    })
    .await;
}

async fn deployment_with_replicaset(
    client: &kube::Client,
    ns: &str,
    name: &str,
    block: bool,
) -> (Deployment, ReplicaSet) {
    let deploys: Api<Deployment> = Api::namespaced(client.clone(), ns);
    let d: Deployment = serde_json::from_value(json!({
        "metadata": {"name": name},
        "spec": {"selector": {"matchLabels": {"app": name}}, "template": {"metadata": {"labels": {"app": name}}, "spec": {"containers": [{"name": "c", "image": "i"}]}}}
    }))
    .unwrap();
    let d = deploys.create(&PostParams::default(), &d).await.unwrap();
    let rs: ReplicaSet = serde_json::from_value(json!({
        "metadata": {"name": format!("{name}-rs"), "ownerReferences": [{
            "apiVersion": "apps/v1", "kind": "Deployment", "name": name,
            "uid": d.metadata.uid, "controller": true, "blockOwnerDeletion": block
        }]},
        "spec": {"selector": {"matchLabels": {"app": name}}, "template": {"metadata": {"labels": {"app": name}}, "spec": {"containers": [{"name": "c", "image": "i"}]}}}
    }))
    .unwrap();
    let rss: Api<ReplicaSet> = Api::namespaced(client.clone(), ns);
    let rs = rss.create(&PostParams::default(), &rs).await.unwrap();
    (d, rs)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_collection_background_foreground_orphan() {
    let s = server().await;
    let client = kube_client(&s).await;
    let deploys: Api<Deployment> = Api::namespaced(client.clone(), "default");
    let rss: Api<ReplicaSet> = Api::namespaced(client.clone(), "default");

    // Background: owner goes at once, the dependent shortly after.
    deployment_with_replicaset(&client, "default", "bg", false).await;
    deploys
        .delete("bg", &DeleteParams::background())
        .await
        .unwrap();
    assert!(deploys.get_opt("bg").await.unwrap().is_none());
    wait_gone(&rss, "bg-rs", "background GC deleted the dependent").await;

    // Foreground: a dependent with blockOwnerDeletion holds the owner until
    // it is gone; here a finalizer on the dependent makes that observable.
    deployment_with_replicaset(&client, "default", "fg", true).await;
    rss.patch(
        "fg-rs",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"finalizers": ["example.com/hold"]}})),
    )
    .await
    .unwrap();
    deploys
        .delete("fg", &DeleteParams::foreground())
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let owner = deploys.get("fg").await.unwrap();
    assert!(owner.metadata.deletion_timestamp.is_some());
    assert!(
        owner
            .metadata
            .finalizers
            .unwrap_or_default()
            .contains(&"foregroundDeletion".to_string())
    );
    let dep = rss.get("fg-rs").await.unwrap();
    assert!(
        dep.metadata.deletion_timestamp.is_some(),
        "the dependent is being deleted"
    );
    rss.patch(
        "fg-rs",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"finalizers": null}})),
    )
    .await
    .unwrap();
    wait_gone(&deploys, "fg", "owner removed after its blocking dependent").await;

    // Orphan: the dependent stays, without the owner reference.
    deployment_with_replicaset(&client, "default", "or", true).await;
    let dp = DeleteParams {
        propagation_policy: Some(PropagationPolicy::Orphan),
        ..Default::default()
    };
    deploys.delete("or", &dp).await.unwrap();
    wait_gone(&deploys, "or", "object deleted").await;
    let rs = rss.get("or-rs").await.unwrap();
    assert!(rs.metadata.owner_references.unwrap_or_default().is_empty());

    // A dependent created for an owner that no longer exists is collected.
    let (d, _) = deployment_with_replicaset(&client, "default", "gone", false).await;
    deploys
        .delete("gone", &DeleteParams::background())
        .await
        .unwrap();
    let late: ConfigMap =
        serde_json::from_value(json!({"metadata": {"name": "late", "ownerReferences": [{
            "apiVersion": "apps/v1", "kind": "Deployment", "name": "gone", "uid": d.metadata.uid
        }]}}))
        .unwrap();
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    cms.create(&PostParams::default(), &late).await.unwrap();
    wait_gone(&cms, "late", "dangling dependent collected").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_a_namespace_deletes_everything_in_it() {
    let s = server().await;
    let client = kube_client(&s).await;
    let nss: Api<Namespace> = Api::all(client.clone());
    let ns: Namespace = serde_json::from_value(json!({"metadata": {"name": "gone"}})).unwrap();
    nss.create(&PostParams::default(), &ns).await.unwrap();
    deployment_with_replicaset(&client, "gone", "d", true).await;
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "gone");
    for i in 0..20 {
        cms.create(&PostParams::default(), &cm(&format!("c{i}"), "x"))
            .await
            .unwrap();
    }
    nss.delete("gone", &DeleteParams::default()).await.unwrap();
    wait_gone(&nss, "gone", "namespace removed").await;
    assert!(
        cms.list(&ListParams::default())
            .await
            .unwrap()
            .items
            .is_empty()
    );
    let rss: Api<ReplicaSet> = Api::namespaced(client, "gone");
    assert!(
        rss.list(&ListParams::default())
            .await
            .unwrap()
            .items
            .is_empty()
    );
}
