//! The world of the process fault tests: a CompositeController whose
//! parents (`Burst`, `pf.example.com/v1`) want `spec.children` ConfigMaps
//! (see [`super::fault_hook`]), a burst of parents created and grown while
//! a process is killed, and the figures of the fault suite at the end:
//!
//! * **duplicates**: children a parent owns beyond what it wants, plus
//!   labelled children nobody controls;
//! * **lost**: wanted children that do not exist;
//! * **wrongly deleted**: children seen at some point that are gone or were
//!   replaced (another UID) at the end (nothing here asks for a deletion);
//! * **unconverged**: parents whose children are incomplete or whose status
//!   is not the one the hook last answered (plus `observedGeneration`);
//! * **recovery**: from the last restart to the last parent converged.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, DynamicObject, ListParams, Patch, PatchParams, PostParams};
use kube::core::{ApiResource, GroupVersionKind};
use serde_json::{Value, json};

use super::fault_hook::{CHILD_LABEL, FaultHook, desired};

/// Children each parent starts with.
pub const CHILDREN: u64 = 3;

pub fn parent_resource() -> ApiResource {
    ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("pf.example.com", "v1", "Burst"),
        "bursts",
    )
}

fn cc_resource() -> ApiResource {
    ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("metacontroller.k8s.io", "v1alpha1", "CompositeController"),
        "compositecontrollers",
    )
}

fn configmaps() -> ApiResource {
    ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk("", "v1", "ConfigMap"), "configmaps")
}

/// Retries `op` until it succeeds (a fault may be under way), for at most
/// `limit`; `Ok(false)` from `op` means "done, nothing to do".
pub async fn retry<F, Fut>(what: &str, limit: Duration, mut op: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<(), kube::Error>>,
{
    let deadline = Instant::now() + limit;
    loop {
        match op().await {
            Ok(()) => return,
            Err(e) => {
                assert!(Instant::now() < deadline, "{what}: {e}");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    }
}

/// The figures of one scenario (all but `recovery` must be zero).
#[derive(Debug, Default)]
pub struct Figures {
    pub parents: usize,
    pub duplicates: usize,
    pub lost: usize,
    pub wrongly_deleted: usize,
    pub unconverged: usize,
    pub recovery: Duration,
}

impl Figures {
    /// The README table's row.
    pub fn row(&self, name: &str) -> String {
        format!(
            "| {name} | {} | {} | {} | {} | {} | {:.1} s |",
            self.parents,
            self.duplicates,
            self.lost,
            self.wrongly_deleted,
            self.unconverged,
            self.recovery.as_secs_f64()
        )
    }

    pub fn assert_clean(&self, name: &str) {
        assert_eq!(
            (
                self.duplicates,
                self.lost,
                self.wrongly_deleted,
                self.unconverged
            ),
            (0, 0, 0, 0),
            "{name}: duplicates, lost, wrongly deleted, unconverged"
        );
    }
}

pub struct World {
    pub client: kube::Client,
    pub namespace: String,
    pub hook: FaultHook,
    /// Every child seen, with the UID it was first seen with.
    seen: BTreeMap<String, String>,
    /// How many children each parent created so far wants.
    wanted: BTreeMap<String, u64>,
}

impl World {
    /// Installs the parent CRD, the namespace and the CompositeController
    /// (the Metacontroller CRDs must exist) and starts the hook.
    pub async fn install(client: kube::Client, namespace: &str) -> World {
        let hook = FaultHook::start().await;
        let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
        let crd: CustomResourceDefinition = serde_json::from_value(json!({
            "apiVersion": "apiextensions.k8s.io/v1",
            "kind": "CustomResourceDefinition",
            "metadata": {"name": "bursts.pf.example.com"},
            "spec": {
                "group": "pf.example.com",
                "scope": "Namespaced",
                "names": {"plural": "bursts", "singular": "burst", "kind": "Burst", "listKind": "BurstList"},
                "versions": [{
                    "name": "v1", "served": true, "storage": true,
                    "subresources": {"status": {}},
                    "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}}
                }]
            }
        }))
        .unwrap();
        retry("create the parent CRD", Duration::from_secs(60), || async {
            match crds.create(&PostParams::default(), &crd).await {
                Err(kube::Error::Api(s)) if s.code == 409 => Ok(()),
                other => other.map(|_| ()),
            }
        })
        .await;
        let namespaces: Api<DynamicObject> = Api::all_with(
            client.clone(),
            &ApiResource::from_gvk_with_plural(
                &GroupVersionKind::gvk("", "v1", "Namespace"),
                "namespaces",
            ),
        );
        let ns: DynamicObject = serde_json::from_value(
            json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}}),
        )
        .unwrap();
        retry("create the namespace", Duration::from_secs(60), || async {
            match namespaces.create(&PostParams::default(), &ns).await {
                Err(kube::Error::Api(s)) if s.code == 409 => Ok(()),
                other => other.map(|_| ()),
            }
        })
        .await;
        for resource in [parent_resource(), cc_resource()] {
            let api: Api<DynamicObject> = Api::all_with(client.clone(), &resource);
            retry(
                &format!("{} served", resource.plural),
                Duration::from_secs(60),
                || async { api.list(&ListParams::default().limit(1)).await.map(|_| ()) },
            )
            .await;
        }
        let cc: DynamicObject = serde_json::from_value(json!({
            "apiVersion": "metacontroller.k8s.io/v1alpha1",
            "kind": "CompositeController",
            "metadata": {"name": "bursts"},
            "spec": {
                "generateSelector": true,
                "parentResource": {"apiVersion": "pf.example.com/v1", "resource": "bursts"},
                "childResources": [{"apiVersion": "v1", "resource": "configmaps", "updateStrategy": {"method": "InPlace"}}],
                "hooks": {"sync": {"webhook": {"url": hook.url}}}
            }
        }))
        .unwrap();
        let ccs: Api<DynamicObject> = Api::all_with(client.clone(), &cc_resource());
        retry(
            "create the CompositeController",
            Duration::from_secs(60),
            || async { ccs.create(&PostParams::default(), &cc).await.map(|_| ()) },
        )
        .await;
        World {
            client,
            namespace: namespace.to_owned(),
            hook,
            seen: BTreeMap::new(),
            wanted: BTreeMap::new(),
        }
    }

    fn parents(&self) -> Api<DynamicObject> {
        Api::namespaced_with(self.client.clone(), &self.namespace, &parent_resource())
    }

    /// Starts creating parents `b<i>` for `range`, 10 at a time, each
    /// retried until it exists (a create may land although its answer was
    /// lost); the task returns their names, for [`World::created`].
    pub fn burst(&self, range: std::ops::Range<usize>) -> tokio::task::JoinHandle<Vec<String>> {
        let api = self.parents();
        tokio::spawn(async move {
            let names: Vec<String> = range.map(|i| format!("b{i}")).collect();
            for chunk in names.chunks(10) {
                let mut creates = tokio::task::JoinSet::new();
                for name in chunk {
                    let api = api.clone();
                    let name = name.clone();
                    let parent: DynamicObject = serde_json::from_value(json!({
                        "apiVersion": "pf.example.com/v1",
                        "kind": "Burst",
                        "metadata": {"name": name},
                        "spec": {"children": CHILDREN}
                    }))
                    .unwrap();
                    creates.spawn(async move {
                        retry(
                            &format!("create {name}"),
                            Duration::from_secs(90),
                            || async {
                                match api.create(&PostParams::default(), &parent).await {
                                    Err(kube::Error::Api(s)) if s.code == 409 => Ok(()),
                                    other => other.map(|_| ()),
                                }
                            },
                        )
                        .await
                    });
                }
                while let Some(done) = creates.join_next().await {
                    done.expect("create task");
                }
            }
            names
        })
    }

    /// Notes parents a [`World::burst`] created.
    pub fn created(&mut self, names: Vec<String>) {
        for name in names {
            self.wanted.insert(name, CHILDREN);
        }
    }

    /// Asks `count` parents, picked by `pick`, for one more child each.
    pub async fn grow(&mut self, count: usize, mut pick: impl FnMut(usize) -> usize) {
        let names: Vec<String> = self.wanted.keys().cloned().collect();
        if names.is_empty() {
            return;
        }
        let api = self.parents();
        for _ in 0..count {
            let name = names[pick(names.len())].clone();
            let n = self.wanted[&name] + 1;
            let patch = json!({"spec": {"children": n}});
            retry(&format!("grow {name}"), Duration::from_secs(90), || async {
                api.patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
                    .await
                    .map(|_| ())
            })
            .await;
            self.wanted.insert(name, n);
        }
    }

    /// Every labelled child: name -> (UID, controller UID).
    async fn children(&self) -> Result<BTreeMap<String, (String, String)>, kube::Error> {
        let api: Api<DynamicObject> =
            Api::namespaced_with(self.client.clone(), &self.namespace, &configmaps());
        let list = api
            .list(&ListParams::default().labels(&format!("{CHILD_LABEL}=child")))
            .await?;
        Ok(list
            .items
            .into_iter()
            .map(|c| {
                let owner = c
                    .metadata
                    .owner_references
                    .unwrap_or_default()
                    .into_iter()
                    .find(|r| r.controller == Some(true))
                    .map(|r| r.uid)
                    .unwrap_or_default();
                (
                    c.metadata.name.unwrap_or_default(),
                    (c.metadata.uid.unwrap_or_default(), owner),
                )
            })
            .collect())
    }

    /// Records the children that exist now (call it while the server is up).
    pub async fn record(&mut self) {
        if let Ok(children) = self.children().await {
            for (name, (uid, _)) in children {
                self.seen.entry(name).or_insert(uid);
            }
        }
    }

    /// The parents not converged yet, with every parent and child listed.
    async fn unconverged(
        &self,
    ) -> Result<(Vec<String>, Vec<Value>, BTreeMap<String, (String, String)>), kube::Error> {
        let children = self.children().await?;
        let parents: Vec<Value> = self
            .parents()
            .list(&ListParams::default())
            .await?
            .items
            .into_iter()
            .map(|p| serde_json::to_value(p).unwrap())
            .collect();
        let mut out = Vec::new();
        for p in &parents {
            let name = p["metadata"]["name"].as_str().unwrap_or_default();
            let uid = p["metadata"]["uid"].as_str().unwrap_or_default();
            let want = desired(p);
            let owned = children.values().filter(|(_, o)| o == uid).count();
            let complete = want.iter().all(|n| children.contains_key(n));
            let mut answered = self.hook.answered(&format!("{}/{name}", self.namespace));
            if let Some(status) = answered.as_mut() {
                status["observedGeneration"] = p["metadata"]["generation"].clone();
            }
            let status_ok = answered.as_ref() == Some(&p["status"])
                && p["status"]["ready"].as_u64() == Some(want.len() as u64);
            if !(complete && owned == want.len() && status_ok) {
                out.push(name.to_owned());
            }
        }
        Ok((out, parents, children))
    }

    /// Waits for every parent to converge (until `limit` after `since`) and
    /// counts the figures.
    pub async fn figures(&self, since: Instant, limit: Duration) -> Figures {
        let deadline = since + limit;
        let (left, parents, children) = loop {
            match self.unconverged().await {
                Ok((left, parents, children)) if left.is_empty() || Instant::now() > deadline => {
                    break (left, parents, children);
                }
                Ok(_) => {}
                Err(e) => assert!(Instant::now() < deadline, "listing the world: {e}"),
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        };
        let mut figures = Figures {
            parents: parents.len(),
            unconverged: left.len(),
            recovery: since.elapsed(),
            ..Figures::default()
        };
        if !left.is_empty() {
            eprintln!("unconverged: {left:?}");
        }
        assert_eq!(
            parents.len(),
            self.wanted.len(),
            "parents created and parents listed differ"
        );
        for p in &parents {
            let uid = p["metadata"]["uid"].as_str().unwrap_or_default();
            let want = desired(p);
            let name = p["metadata"]["name"].as_str().unwrap_or_default();
            assert_eq!(
                Some(want.len() as u64),
                self.wanted.get(name).copied(),
                "{name}: spec.children is not what the test set"
            );
            figures.lost += want.iter().filter(|n| !children.contains_key(*n)).count();
            let owned = children.values().filter(|(_, o)| o == uid).count();
            figures.duplicates += owned.saturating_sub(want.len());
        }
        figures.duplicates += children.values().filter(|(_, o)| o.is_empty()).count();
        for (name, uid) in &self.seen {
            if children.get(name).is_none_or(|(u, _)| u != uid) {
                figures.wrongly_deleted += 1;
            }
        }
        figures
    }
}
