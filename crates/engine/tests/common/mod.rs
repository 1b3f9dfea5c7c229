//! Test harness: an API server, the engine running against it, and an HTTP
//! hook server in the test process.
//!
//! The server is the one `MC_TEST_CLUSTER` names (see
//! `metacontroller_testbed::TestCluster`): the embedded API server (default)
//! or a real control plane (etcd, kube-apiserver, kube-controller-manager),
//! fresh for every test. The engine's own requests are counted on the client
//! side, so write counts mean the same on both.

#![allow(dead_code)]

pub mod decorator;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use kube::api::{DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::core::ApiResource;
use kube::{Api, Client};
use metacontroller_engine::object::RawObject;
use metacontroller_engine::{Engine, EngineConfig, RunningEngine};
use metacontroller_testbed::{ClusterKind, TestCluster};
use parking_lot::Mutex;
use serde_json::{Value, json};
use tokio::net::TcpListener;

/// Group of the test CRDs.
pub const GROUP: &str = "test.metacontroller.io";
/// apiVersion of the test CRDs.
pub const API_VERSION: &str = "test.metacontroller.io/v1";

/// Overall timeout of a wait: 30 s on the embedded server; 90 s on a real
/// one, whose garbage collector notices a new CRD's objects only at its next
/// discovery pass (every 30 s in kube-controller-manager).
pub fn timeout() -> Duration {
    match ClusterKind::from_env() {
        Ok(ClusterKind::Real) => Duration::from_secs(90),
        _ => Duration::from_secs(30),
    }
}

/// The server kind this run uses.
pub fn cluster_kind() -> ClusterKind {
    ClusterKind::from_env().expect("MC_TEST_CLUSTER")
}

/// Returns true (and says so) when the test needs the embedded server.
pub fn skip_unless_embedded(what: &str) -> bool {
    if cluster_kind() == ClusterKind::Embedded {
        return false;
    }
    eprintln!("skipped on the {} server: {what}", cluster_kind().name());
    true
}

pub fn init_tracing() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_test_writer()
        .try_init();
}

/// A running API server with the engine attached.
pub struct Harness {
    pub cluster: TestCluster,
    pub client: Client,
    pub registry: Arc<prometheus_client::registry::Registry>,
    engine_writes: Arc<AtomicUsize>,
    engine: Option<RunningEngine>,
}

impl Harness {
    pub async fn start() -> Harness {
        Self::start_with(EngineConfig {
            discovery_interval: Duration::from_secs(2),
            ..EngineConfig::default()
        })
        .await
    }

    pub async fn start_with(config: EngineConfig) -> Harness {
        init_tracing();
        let cluster = TestCluster::start().await.expect("start API server");
        let kubeconfig =
            kube::config::Kubeconfig::from_yaml(&cluster.kubeconfig()).expect("kubeconfig");
        let kube_config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default())
            .await
            .expect("client config");
        // The test's own client retries like kubectl (client-go): only
        // answers with Retry-After, after that wait.
        let client = metacontroller_engine::client::build_client(kube_config.clone(), 0.0, 0)
            .expect("client");
        let engine_writes = Arc::new(AtomicUsize::new(0));
        // The product's client (unthrottled), counting each request it sends.
        let engine_client = metacontroller_engine::client::build_client_with_layer(
            kube_config,
            0.0,
            0,
            &CountWrites(engine_writes.clone()),
        )
        .expect("client");
        // The Metacontroller CRDs.
        let crds: Api<RawObject> = Api::all_with(client.clone(), &crd_resource());
        let mut installed = Vec::new();
        for crd in metacontroller_api::crds() {
            let version = &crd.spec.versions[0].name;
            installed.push(ApiResource {
                group: crd.spec.group.clone(),
                version: version.clone(),
                api_version: format!("{}/{version}", crd.spec.group),
                kind: crd.spec.names.kind.clone(),
                plural: crd.spec.names.plural.clone(),
            });
            let value = serde_json::to_value(&crd).unwrap();
            crds.create(&PostParams::default(), &RawObject::new(value))
                .await
                .expect("install Metacontroller CRDs");
        }
        for resource in &installed {
            wait_crd_served(&client, resource).await;
        }
        let mut registry = prometheus_client::registry::Registry::default();
        let engine = Engine::new(engine_client, config, Some(&mut registry)).spawn();
        Harness {
            cluster,
            client,
            registry: Arc::new(registry),
            engine_writes,
            engine: Some(engine),
        }
    }

    pub async fn shutdown(mut self) {
        if let Some(engine) = self.engine.take() {
            engine.shutdown().await.expect("engine stopped cleanly");
        }
    }

    /// Creates a CRD `<plural>.test.metacontroller.io` (version v1) and waits
    /// until it is served.
    pub async fn create_crd(
        &self,
        kind: &str,
        plural: &str,
        namespaced: bool,
        status: bool,
    ) -> ApiResource {
        let mut version = json!({
            "name": "v1", "served": true, "storage": true,
            "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}}
        });
        if status {
            version["subresources"] = json!({"status": {}});
        }
        let crd = json!({
            "apiVersion": "apiextensions.k8s.io/v1",
            "kind": "CustomResourceDefinition",
            "metadata": {"name": format!("{plural}.{GROUP}")},
            "spec": {
                "group": GROUP,
                "scope": if namespaced { "Namespaced" } else { "Cluster" },
                "names": {"kind": kind, "plural": plural, "singular": kind.to_lowercase(), "listKind": format!("{kind}List")},
                "versions": [version]
            }
        });
        let api: Api<RawObject> = Api::all_with(self.client.clone(), &crd_resource());
        api.create(&PostParams::default(), &RawObject::new(crd))
            .await
            .expect("create CRD");
        let resource = ApiResource {
            group: GROUP.into(),
            version: "v1".into(),
            api_version: API_VERSION.into(),
            kind: kind.into(),
            plural: plural.into(),
        };
        wait_crd_served(&self.client, &resource).await;
        resource
    }

    pub async fn create_namespace(&self, name: &str) {
        self.api(&core("Namespace", "namespaces"), None)
            .create(
                &PostParams::default(),
                &RawObject::new(
                    json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}),
                ),
            )
            .await
            .expect("create namespace");
    }

    pub fn api(&self, ar: &ApiResource, namespace: Option<&str>) -> Api<RawObject> {
        match namespace {
            Some(ns) => Api::namespaced_with(self.client.clone(), ns, ar),
            None => Api::all_with(self.client.clone(), ar),
        }
    }

    pub async fn create(&self, ar: &ApiResource, namespace: Option<&str>, obj: Value) -> Value {
        self.api(ar, namespace)
            .create(&PostParams::default(), &RawObject::new(obj))
            .await
            .unwrap_or_else(|e| panic!("create {}: {e}", ar.kind))
            .into_value()
    }

    pub async fn get(
        &self,
        ar: &ApiResource,
        namespace: Option<&str>,
        name: &str,
    ) -> Option<Value> {
        match self.api(ar, namespace).get(name).await {
            Ok(o) => Some(o.into_value()),
            Err(kube::Error::Api(s)) if s.code == 404 => None,
            Err(e) => panic!("get {} {name}: {e}", ar.kind),
        }
    }

    pub async fn list(&self, ar: &ApiResource, namespace: Option<&str>) -> Vec<Value> {
        self.api(ar, namespace)
            .list(&ListParams::default())
            .await
            .expect("list")
            .items
            .into_iter()
            .map(RawObject::into_value)
            .collect()
    }

    pub async fn merge_patch(
        &self,
        ar: &ApiResource,
        namespace: Option<&str>,
        name: &str,
        patch: Value,
    ) -> Value {
        self.api(ar, namespace)
            .patch(name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .unwrap_or_else(|e| panic!("patch {} {name}: {e}", ar.kind))
            .into_value()
    }

    pub async fn delete(&self, ar: &ApiResource, namespace: Option<&str>, name: &str) {
        self.api(ar, namespace)
            .delete(name, &DeleteParams::default())
            .await
            .unwrap_or_else(|e| panic!("delete {} {name}: {e}", ar.kind));
    }

    pub async fn create_cc(&self, cc: Value) -> Value {
        self.create(&cc_resource(), None, cc).await
    }

    /// Events in `namespace` about an object named `name`.
    pub async fn events_for(&self, namespace: &str, name: &str) -> Vec<Value> {
        self.list(&core("Event", "events"), Some(namespace))
            .await
            .into_iter()
            .filter(|e| e["involvedObject"]["name"] == name)
            .collect()
    }

    /// Write requests (anything but GET) the engine has made so far.
    pub fn writes(&self) -> u64 {
        self.engine_writes.load(Ordering::SeqCst) as u64
    }

    /// The embedded server, or `None` on a real one.
    pub fn embedded(&self) -> Option<&metacontroller_apiserver::ApiServer> {
        self.cluster.embedded()
    }
}

/// Waits until the CRD of `resource` is `Established` and `resource`
/// answers a list: a real API server serves a new CRD only once it is
/// Established, and may still answer 404 for a moment after that.
pub async fn wait_crd_served(client: &Client, resource: &ApiResource) {
    let crds: Api<RawObject> = Api::all_with(client.clone(), &crd_resource());
    let name = format!("{}.{}", resource.plural, resource.group);
    wait_for("CRD established", || async {
        let crd = crds.get(&name).await.ok()?;
        let established = crd.value()["status"]["conditions"]
            .as_array()?
            .iter()
            .any(|c| c["type"] == "Established" && c["status"] == "True");
        established.then_some(())
    })
    .await;
    let api: Api<RawObject> = Api::all_with(client.clone(), resource);
    wait_for(&format!("{} served", resource.plural), || async {
        api.list(&ListParams::default().limit(1))
            .await
            .ok()
            .map(|_| ())
    })
    .await;
}

/// Tower layer counting the requests that are not reads.
#[derive(Clone)]
struct CountWrites(Arc<AtomicUsize>);

impl<S> tower::Layer<S> for CountWrites {
    type Service = CountWritesService<S>;
    fn layer(&self, inner: S) -> Self::Service {
        CountWritesService {
            inner,
            count: self.0.clone(),
        }
    }
}

#[derive(Clone)]
struct CountWritesService<S> {
    inner: S,
    count: Arc<AtomicUsize>,
}

impl<S, B> tower::Service<http::Request<B>> for CountWritesService<S>
where
    S: tower::Service<http::Request<B>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(
        &mut self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        if request.method() != http::Method::GET {
            self.count.fetch_add(1, Ordering::SeqCst);
        }
        self.inner.call(request)
    }
}

pub fn crd_resource() -> ApiResource {
    ApiResource {
        group: "apiextensions.k8s.io".into(),
        version: "v1".into(),
        api_version: "apiextensions.k8s.io/v1".into(),
        kind: "CustomResourceDefinition".into(),
        plural: "customresourcedefinitions".into(),
    }
}

pub fn cc_resource() -> ApiResource {
    ApiResource {
        group: "metacontroller.k8s.io".into(),
        version: "v1alpha1".into(),
        api_version: "metacontroller.k8s.io/v1alpha1".into(),
        kind: "CompositeController".into(),
        plural: "compositecontrollers".into(),
    }
}

pub fn dc_resource() -> ApiResource {
    ApiResource {
        group: "metacontroller.k8s.io".into(),
        version: "v1alpha1".into(),
        api_version: "metacontroller.k8s.io/v1alpha1".into(),
        kind: "DecoratorController".into(),
        plural: "decoratorcontrollers".into(),
    }
}

/// A core/v1 resource.
pub fn core(kind: &str, plural: &str) -> ApiResource {
    ApiResource {
        group: String::new(),
        version: "v1".into(),
        api_version: "v1".into(),
        kind: kind.into(),
        plural: plural.into(),
    }
}

pub fn configmaps() -> &'static ApiResource {
    static CONFIGMAPS: std::sync::LazyLock<ApiResource> =
        std::sync::LazyLock::new(|| core("ConfigMap", "configmaps"));
    &CONFIGMAPS
}

/// Polls `check` every 50 ms until it yields a value; panics after
/// [`timeout`].
pub async fn wait_for<T, F, Fut>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout();
    loop {
        if let Some(v) = check().await {
            return v;
        }
        if Instant::now() > deadline {
            panic!("timed out waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// What the hook answers.
#[derive(Clone, Debug)]
pub enum Reply {
    /// 200 with this JSON body.
    Json(Value),
    /// This status and body.
    Status(u16, String),
    /// 429 with an optional `Retry-After` header.
    TooMany(Option<String>),
    /// Wait, then answer.
    Delayed(Duration, Box<Reply>),
}

type HookFn = dyn Fn(&Value) -> Reply + Send + Sync;

struct HookState {
    handler: Box<HookFn>,
    requests: Mutex<Vec<(Instant, Value)>>,
    authorization: Mutex<Vec<Option<String>>>,
    calls: AtomicUsize,
}

/// An HTTP hook server on 127.0.0.1.
pub struct HookServer {
    pub url: String,
    pub addr: SocketAddr,
    state: Arc<HookState>,
    task: tokio::task::JoinHandle<()>,
}

impl HookServer {
    pub async fn start(handler: impl Fn(&Value) -> Reply + Send + Sync + 'static) -> HookServer {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        Self::start_on(listener, handler)
    }

    pub fn start_on(
        listener: TcpListener,
        handler: impl Fn(&Value) -> Reply + Send + Sync + 'static,
    ) -> HookServer {
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(HookState {
            handler: Box::new(handler),
            requests: Mutex::new(Vec::new()),
            authorization: Mutex::new(Vec::new()),
            calls: AtomicUsize::new(0),
        });
        let app = Router::new()
            .route("/{*path}", post(handle))
            .route("/", post(handle))
            .with_state(state.clone());
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        HookServer {
            url: format!("http://{addr}/sync"),
            addr,
            state,
            task,
        }
    }

    /// Number of requests received.
    pub fn calls(&self) -> usize {
        self.state.calls.load(Ordering::SeqCst)
    }

    /// Every request body, with its arrival time.
    pub fn requests(&self) -> Vec<(Instant, Value)> {
        self.state.requests.lock().clone()
    }

    /// The `Authorization` header of every request.
    pub fn authorization_headers(&self) -> Vec<Option<String>> {
        self.state.authorization.lock().clone()
    }

    /// The last request body.
    pub fn last_request(&self) -> Option<Value> {
        self.state.requests.lock().last().map(|(_, v)| v.clone())
    }
}

impl Drop for HookServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn handle(
    State(state): State<Arc<HookState>>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let request: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    state.authorization.lock().push(
        headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned),
    );
    state.calls.fetch_add(1, Ordering::SeqCst);
    state
        .requests
        .lock()
        .push((Instant::now(), request.clone()));
    let mut reply = (state.handler)(&request);
    loop {
        match reply {
            Reply::Delayed(d, next) => {
                tokio::time::sleep(d).await;
                reply = *next;
            }
            Reply::Json(v) => {
                return (
                    StatusCode::OK,
                    [("content-type", "application/json")],
                    serde_json::to_vec(&v).unwrap(),
                )
                    .into_response();
            }
            Reply::Status(code, body) => {
                return (StatusCode::from_u16(code).unwrap(), body).into_response();
            }
            Reply::TooMany(retry_after) => {
                let mut response = (StatusCode::TOO_MANY_REQUESTS, "slow down").into_response();
                if let Some(v) = retry_after {
                    response
                        .headers_mut()
                        .insert("retry-after", v.parse().unwrap());
                }
                return response;
            }
        }
    }
}

/// A CompositeController manifest.
pub fn composite_controller(
    name: &str,
    parent: &ApiResource,
    children: &[(&str, &str, Option<&str>)],
    sync_url: &str,
) -> Value {
    let child_rules: Vec<Value> = children
        .iter()
        .map(|(api_version, resource, method)| {
            let mut rule = json!({"apiVersion": api_version, "resource": resource});
            if let Some(m) = method {
                rule["updateStrategy"] = json!({"method": m});
            }
            rule
        })
        .collect();
    json!({
        "apiVersion": "metacontroller.k8s.io/v1alpha1",
        "kind": "CompositeController",
        "metadata": {"name": name},
        "spec": {
            "parentResource": {"apiVersion": parent.api_version, "resource": parent.plural},
            "childResources": child_rules,
            "hooks": {"sync": {"webhook": {"url": sync_url}}}
        }
    })
}

/// A parent object with `spec.selector.matchLabels`.
pub fn parent(ar: &ApiResource, name: &str, labels: Value, spec: Value) -> Value {
    let mut spec = spec;
    if !labels.is_null() {
        spec["selector"] = json!({"matchLabels": labels});
    }
    json!({
        "apiVersion": ar.api_version,
        "kind": ar.kind,
        "metadata": {"name": name},
        "spec": spec,
    })
}

/// A ConfigMap child.
pub fn configmap(name: &str, labels: &Value, data: Value) -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "labels": labels},
        "data": data,
    })
}
