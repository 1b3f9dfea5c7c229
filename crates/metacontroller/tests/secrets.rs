//! Credentials never reach any output, at the highest verbosity that logs
//! hook bodies and headers (`--zap-log-level=6`), on the server
//! `MC_TEST_CLUSTER` names.
//!
//! The hook demands `Authorization: Bearer <token>` (the CompositeController
//! reads it from a Secret). It answers one parent normally and fails another
//! with a 500 whose body quotes the header it received, so the credential
//! travels back in a response that ends up in errors, logs and Events. The
//! binary reaches the API server with credentials of its own: on the
//! embedded server a bearer token, on the real control plane the admin
//! client certificate and key. On the embedded server injected 500s also
//! fail some of the binary's API requests.
//!
//! Then every output is searched for every secret: the process's stdout and
//! stderr, every Event, every parent (statuses carry error text), and the
//! `/metrics` text. The test also checks that what it searched is not empty
//! of the things that could leak (the hook's headers and bodies were logged,
//! the failure reached the Events), so that it cannot pass by logging
//! nothing.
#![cfg(unix)]

mod common;

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::time::Duration;

use base64::Engine as _;
use bytes::Bytes;
use common::instance::Instance;
use common::things::{create_parent, parent_resource, wait_synced};
use common::wait_for;
use http::{Request, Response};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use k8s_openapi::api::core::v1::{Event, Secret};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, DynamicObject, ListParams, PostParams};
use kube::core::{ApiResource, GroupVersionKind};
use metacontroller_apiserver::{Fault, FaultKind};
use metacontroller_testbed::TestCluster;
use serde_json::{Value, json};
use tokio::net::TcpListener;

const TIMEOUT: Duration = Duration::from_secs(90);
const HOOK_TOKEN: &str = "hook-token-7d1c0a5e9b2f4c68";
const API_TOKEN: &str = "api-token-3f9e62b1c8d047a5";

/// A sync hook that demands the bearer token, answers `fail-*` parents with
/// a 500 quoting the Authorization header, and every other parent with one
/// ConfigMap.
async fn start_hook() -> (String, tokio::task::JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind hook");
    let url = format!("http://{}/sync", listener.local_addr().unwrap());
    let task = tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service_fn(answer))
                    .await;
            });
        }
    });
    (url, task)
}

async fn answer(req: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let auth = req
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let body = req
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let request: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let name = request["parent"]["metadata"]["name"]
        .as_str()
        .unwrap_or("unnamed")
        .to_owned();
    let (status, body) = if auth != format!("Bearer {HOOK_TOKEN}") {
        (401, json!({"error": "missing credentials"}))
    } else if name.starts_with("fail") {
        (500, json!({"error": format!("refusing; you sent {auth}")}))
    } else {
        (
            200,
            json!({
                "status": {"children": 1},
                "children": [{"apiVersion": "v1", "kind": "ConfigMap",
                              "metadata": {"name": name}, "data": {"from": "hook"}}]
            }),
        )
    };
    let mut resp = Response::new(Full::new(Bytes::from(body.to_string())));
    *resp.status_mut() = http::StatusCode::from_u16(status).unwrap();
    resp.headers_mut()
        .insert("content-type", "application/json".parse().unwrap());
    Ok(resp)
}

/// The Metacontroller CRDs, the `Thing` CRD, the hook's Secret and a
/// CompositeController whose webhook sends the Secret's token.
async fn install(client: &kube::Client, hook_url: &str) {
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    let mut all = metacontroller_api::crds();
    all.push(
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
    );
    for crd in &all {
        crds.create(&PostParams::default(), crd)
            .await
            .expect("create CRD");
    }
    let secret: Secret = serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": "hook-auth", "namespace": "default"},
        "stringData": {"token": HOOK_TOKEN}
    }))
    .unwrap();
    Api::<Secret>::namespaced(client.clone(), "default")
        .create(&PostParams::default(), &secret)
        .await
        .expect("create Secret");
    let cc = ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("metacontroller.k8s.io", "v1alpha1", "CompositeController"),
        "compositecontrollers",
    );
    for resource in [parent_resource(), cc.clone()] {
        let api: Api<DynamicObject> = Api::all_with(client.clone(), &resource);
        wait_for(&format!("{} served", resource.plural), TIMEOUT, || {
            let api = api.clone();
            async move { api.list(&Default::default()).await.ok() }
        })
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
            "hooks": {"sync": {"webhook": {
                "url": hook_url,
                "authorization": {"secretRef": {"namespace": "default", "name": "hook-auth", "key": "token"}}
            }}}
        }
    }))
    .unwrap();
    Api::<DynamicObject>::all_with(client.clone(), &cc)
        .create(&PostParams::default(), &controller)
        .await
        .expect("create CompositeController");
}

/// The binary's kubeconfig and the secrets in it.
fn credentials(cluster: &TestCluster) -> (String, Vec<String>) {
    let kubeconfig = cluster.kubeconfig();
    if cluster.embedded().is_some() {
        let with_token =
            kubeconfig.replace("token: metacontroller-dev", &format!("token: {API_TOKEN}"));
        assert!(with_token.contains(API_TOKEN), "{kubeconfig}");
        return (with_token, vec![API_TOKEN.to_owned()]);
    }
    // The admin user authenticates with a client certificate: its key, as
    // written in the kubeconfig and as the PEM text it decodes to.
    let yaml: serde_yaml::Value = serde_yaml::from_str(&kubeconfig).unwrap();
    let key_b64 = yaml["users"][0]["user"]["client-key-data"]
        .as_str()
        .expect("client-key-data")
        .to_owned();
    let pem = String::from_utf8(
        base64::engine::general_purpose::STANDARD
            .decode(&key_b64)
            .unwrap(),
    )
    .unwrap();
    let mut secrets = vec![key_b64];
    secrets.extend(
        pem.lines()
            .filter(|l| !l.starts_with("-----") && l.len() >= 16)
            .map(str::to_owned),
    );
    (kubeconfig, secrets)
}

/// Every form a secret could be shown in: itself, base64, and JSON-escaped.
fn forms(secrets: &[String]) -> Vec<String> {
    let mut out = Vec::new();
    for s in secrets {
        out.push(s.clone());
        out.push(base64::engine::general_purpose::STANDARD.encode(s));
        out.push(
            serde_json::to_string(s)
                .unwrap()
                .trim_matches('"')
                .to_owned(),
        );
    }
    out.sort();
    out.dedup();
    out
}

async fn metrics_text(addr: std::net::SocketAddr) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr).await.expect("metrics");
    stream
        .write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut text = String::new();
    stream.read_to_string(&mut text).await.unwrap();
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    text
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_secret_reaches_logs_events_statuses_or_metrics() {
    let cluster = TestCluster::start().await.expect("start cluster");
    let client = cluster.client().await.expect("client");
    let (hook_url, _hook) = start_hook().await;
    install(&client, &hook_url).await;
    let (kubeconfig_text, api_secrets) = credentials(&cluster);
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    std::fs::write(&kubeconfig, &kubeconfig_text).unwrap();

    if let Some(server) = cluster.embedded() {
        // Some of the binary's own requests fail too.
        server.faults().add(
            Fault::new(FaultKind::InternalError)
                .verb("create")
                .resource("configmaps")
                .times(2),
        );
    }
    let instance = Instance::start(
        "secrets",
        &kubeconfig,
        &[
            "--zap-log-level=6",
            "--metrics-address=127.0.0.1:0",
            "--health-probe-bind-address=0",
            "--discovery-interval=2s",
        ],
    );
    create_parent(&client, "default", "good").await;
    create_parent(&client, "default", "fail-1").await;
    wait_synced(&client, "default", "good", TIMEOUT).await;
    let events: Api<Event> = Api::all(client.clone());
    let failure = wait_for("the hook failure as an Event", TIMEOUT, || {
        let events = events.clone();
        async move {
            events
                .list(&ListParams::default())
                .await
                .ok()?
                .items
                .into_iter()
                .find(|e| {
                    e.involved_object.name.as_deref() == Some("fail-1")
                        && e.message.as_deref().is_some_and(|m| m.contains("500"))
                })
        }
    })
    .await;
    // The hook's answer quoted the header; the Event quotes the answer.
    let message = failure.message.clone().unwrap_or_default();
    assert!(message.contains("<redacted>"), "{message}");

    wait_for("hook headers and bodies logged", TIMEOUT, || {
        let log = instance.log();
        async move {
            (log.contains("hook request headers")
                && log.contains("hook request body")
                && log.contains("hook response body"))
            .then_some(())
        }
    })
    .await;
    if cluster.embedded().is_some() {
        wait_for("a failed API request logged", TIMEOUT, || {
            let log = instance.log();
            async move { log.contains("500 InternalError").then_some(()) }
        })
        .await;
    }

    let log = instance.log();
    let addr = log
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find(|l| l["msg"] == "metrics server listening")
        .and_then(|l| l["addr"].as_str()?.parse::<std::net::SocketAddr>().ok())
        .expect("metrics address in the log");
    let metrics = metrics_text(addr).await;
    let parents: Api<DynamicObject> = Api::all_with(client.clone(), &parent_resource());
    let parents =
        serde_json::to_string(&parents.list(&ListParams::default()).await.unwrap()).unwrap();
    let events =
        serde_json::to_string(&events.list(&ListParams::default()).await.unwrap()).unwrap();
    let log = instance.log();
    drop(instance);

    // Failed requests: one line each, at WARN (they are retried), naming the
    // verb, the object and the status, without debug dumps or kube-rs's own
    // ERROR lines, and without a phrase said twice.
    for line in log.lines() {
        assert!(!line.contains("\"level\":\"error\""), "{line}");
        assert!(!line.contains("\"logger\":\"kube_client"), "{line}");
        for dump in ["Status {", "ErrorResponse", "ApiError", "Custom {"] {
            assert!(!line.contains(dump), "{line}");
        }
        assert!(line.matches("sync hook failed").count() <= 1, "{line}");
    }
    if cluster.embedded().is_some() {
        let failed = log
            .lines()
            .find(|l| l.contains("500 InternalError"))
            .unwrap();
        assert!(failed.contains("\"level\":\"warn\""), "{failed}");
        assert!(
            failed.contains("can't create ConfigMap default/good: 500 InternalError: "),
            "{failed}"
        );
    }

    let headers = log
        .lines()
        .find(|l| l.contains("hook request headers"))
        .unwrap();
    assert!(headers.contains("authorization: <redacted>"), "{headers}");

    let mut outputs: BTreeMap<&str, &str> = BTreeMap::new();
    outputs.insert("process output", &log);
    outputs.insert("Events", &events);
    outputs.insert("parents", &parents);
    outputs.insert("/metrics", &metrics);
    let mut secrets = vec![HOOK_TOKEN.to_owned(), format!("Bearer {HOOK_TOKEN}")];
    secrets.extend(api_secrets);
    for secret in forms(&secrets) {
        for (name, text) in &outputs {
            if let Some(at) = text.find(&secret) {
                let from = text[..at].rfind('\n').map_or(0, |i| i + 1);
                let to = text[at..].find('\n').map_or(text.len(), |i| at + i);
                panic!("{name} shows a secret: {}", &text[from..to]);
            }
        }
    }
}
