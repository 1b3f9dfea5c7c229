//! `kube-rs-baseline`: the controller a Rust engineer would write by hand
//! with kube-rs instead of a CompositeController and a hook.
//!
//! A `kube::runtime::Controller` on the `Bench` parents owns the ConfigMaps
//! labelled `bench.example.com/parent` (the label selector keeps unrelated
//! ConfigMaps out of the watch) through one reflector: its stream triggers
//! the reconciles (`owns_stream`) and its store is what the reconciler reads,
//! so a reconcile never sees an older state than the event that caused it
//! (two watches, one for triggers and one for reads, lose repairs when the
//! trigger arrives first). The reconciler creates the missing
//! `<parent>-<i>` (owner reference to the parent), deletes extra ones, and
//! merge-patches `status.ready` when it differs. Children go away with their
//! parent through owner references. Concurrency is kube-rs's default
//! (unbounded) and the client has no rate limit.
//!
//! ```text
//! kube-rs-baseline --kubeconfig PATH
//! ```

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use clap::Parser;
use futures::StreamExt;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{DeleteParams, ObjectMeta, Patch, PatchParams, PostParams};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client, CustomResource, Resource, ResourceExt};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

const PARENT_LABEL: &str = "bench.example.com/parent";

/// The parent: `spec.replicas` children wanted.
#[derive(CustomResource, Deserialize, Serialize, Clone, Debug, Default, JsonSchema)]
#[kube(
    group = "bench.example.com",
    version = "v1",
    kind = "Bench",
    plural = "benches",
    namespaced,
    status = "BenchStatus"
)]
pub struct BenchSpec {
    /// Children wanted.
    #[serde(default)]
    pub replicas: i64,
}

/// What the controller reports.
#[derive(Deserialize, Serialize, Clone, Debug, Default, JsonSchema)]
pub struct BenchStatus {
    /// Children that exist.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ready: Option<i64>,
}

#[derive(Parser)]
#[command(name = "kube-rs-baseline")]
struct Args {
    /// Path to the kubeconfig of the API server.
    #[arg(long)]
    kubeconfig: PathBuf,
}

struct Ctx {
    client: Client,
    children: Store<ConfigMap>,
}

/// Why a reconcile failed.
#[derive(Debug)]
enum Error {
    Kube(kube::Error),
    MissingField(&'static str),
    /// The children reflector stopped before its first list.
    CacheGone,
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Error::Kube(e) => write!(f, "{e}"),
            Error::MissingField(field) => write!(f, "parent without {field}"),
            Error::CacheGone => write!(f, "the children cache stopped"),
        }
    }
}

impl std::error::Error for Error {}

impl From<kube::Error> for Error {
    fn from(e: kube::Error) -> Self {
        Error::Kube(e)
    }
}

fn child(parent: &Bench, name: &str, i: i64) -> Result<ConfigMap, Error> {
    let owner = parent
        .controller_owner_ref(&())
        .ok_or(Error::MissingField("metadata.uid"))?;
    Ok(ConfigMap {
        metadata: ObjectMeta {
            name: Some(format!("{name}-{i}")),
            namespace: parent.namespace(),
            labels: Some([(PARENT_LABEL.to_string(), name.to_string())].into()),
            owner_references: Some(vec![owner]),
            ..Default::default()
        },
        data: Some([("index".to_string(), i.to_string())].into()),
        ..Default::default()
    })
}

fn owned_by(cm: &ConfigMap, uid: &str) -> bool {
    cm.owner_references()
        .iter()
        .any(|o| o.controller == Some(true) && o.uid == uid)
}

async fn reconcile(parent: Arc<Bench>, ctx: Arc<Ctx>) -> Result<Action, Error> {
    if parent.metadata.deletion_timestamp.is_some() {
        return Ok(Action::await_change());
    }
    // Nothing is decided before the children have been listed.
    ctx.children
        .wait_until_ready()
        .await
        .map_err(|_| Error::CacheGone)?;
    let ns = parent
        .namespace()
        .ok_or(Error::MissingField("metadata.namespace"))?;
    let name = parent.name_any();
    let uid = parent.uid().ok_or(Error::MissingField("metadata.uid"))?;
    let replicas = parent.spec.replicas.max(0);
    let configmaps: Api<ConfigMap> = Api::namespaced(ctx.client.clone(), &ns);

    for i in 0..replicas {
        let key = ObjectRef::new(&format!("{name}-{i}")).within(&ns);
        match ctx.children.get(&key) {
            Some(cm) if owned_by(&cm, &uid) => {}
            _ => match configmaps
                .create(&PostParams::default(), &child(&parent, &name, i)?)
                .await
            {
                Ok(_) => {}
                // Created by an earlier reconcile; the store has not seen it yet.
                Err(kube::Error::Api(s)) if s.is_already_exists() => {}
                Err(e) => return Err(e.into()),
            },
        }
    }
    // Extra children: the indexes from `replicas` up.
    let mut i = replicas;
    loop {
        let extra = format!("{name}-{i}");
        match ctx.children.get(&ObjectRef::new(&extra).within(&ns)) {
            Some(cm) if owned_by(&cm, &uid) => {
                match configmaps.delete(&extra, &DeleteParams::default()).await {
                    Ok(_) => {}
                    Err(kube::Error::Api(s)) if s.is_not_found() => {}
                    Err(e) => return Err(e.into()),
                }
            }
            _ => break,
        }
        i += 1;
    }

    if parent.status.as_ref().and_then(|s| s.ready) != Some(replicas) {
        let parents: Api<Bench> = Api::namespaced(ctx.client.clone(), &ns);
        let patch = serde_json::json!({"status": {"ready": replicas}});
        parents
            .patch_status(&name, &PatchParams::default(), &Patch::Merge(&patch))
            .await?;
    }
    Ok(Action::await_change())
}

fn error_policy(_parent: Arc<Bench>, error: &Error, _ctx: Arc<Ctx>) -> Action {
    eprintln!("kube-rs-baseline: reconcile failed: {error}");
    Action::requeue(Duration::from_millis(500))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let kubeconfig = kube::config::Kubeconfig::read_from(&args.kubeconfig)
        .with_context(|| format!("reading {}", args.kubeconfig.display()))?;
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default()).await?;
    let client = Client::try_from(config)?;

    let parents: Api<Bench> = Api::all(client.clone());
    let configmaps: Api<ConfigMap> = Api::all(client.clone());
    let children_config = watcher::Config::default().labels(PARENT_LABEL);

    let (children, writer) = reflector::store();
    let child_events = reflector::reflector(writer, watcher(configmaps, children_config))
        .default_backoff()
        .touched_objects();

    let ctx = Arc::new(Ctx { client, children });
    Controller::new(parents, watcher::Config::default())
        .owns_stream(child_events)
        .shutdown_on_signal()
        .run(reconcile, error_policy, ctx)
        .for_each(|_| std::future::ready(()))
        .await;
    Ok(())
}
