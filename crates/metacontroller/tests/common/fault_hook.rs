//! The sync hook of the process fault tests: a parent with `spec.children:
//! n` wants ConfigMaps `<parent>-0` .. `<parent>-<n-1>`, and its status is
//! `{ready: <children observed>, wanted: n}`. The hook remembers the status
//! it last answered for each parent, so that the test can check the
//! controller wrote exactly that.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use tokio::net::TcpListener;

/// The label every child carries.
pub const CHILD_LABEL: &str = "process-faults";

/// The status last answered, by `namespace/name` of the parent.
pub type Answered = Arc<Mutex<BTreeMap<String, Value>>>;

pub struct FaultHook {
    pub url: String,
    pub answered: Answered,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for FaultHook {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The names of the children `parent` wants.
pub fn desired(parent: &Value) -> Vec<String> {
    let name = parent["metadata"]["name"].as_str().unwrap_or_default();
    let n = parent["spec"]["children"].as_u64().unwrap_or(0);
    (0..n).map(|i| format!("{name}-{i}")).collect()
}

impl FaultHook {
    /// Listens on a free loopback port.
    pub async fn start() -> FaultHook {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind hook");
        let port = listener.local_addr().unwrap().port();
        let answered = Answered::default();
        let memory = answered.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let memory = memory.clone();
                tokio::spawn(async move {
                    let service = service_fn(move |req| sync(memory.clone(), req));
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        FaultHook {
            url: format!("http://127.0.0.1:{port}/sync"),
            answered,
            task,
        }
    }

    /// The status last answered for `namespace/name`.
    pub fn answered(&self, key: &str) -> Option<Value> {
        self.answered.lock().unwrap().get(key).cloned()
    }
}

async fn sync(
    answered: Answered,
    req: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let body = req
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let request: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let parent = &request["parent"];
    let name = parent["metadata"]["name"].as_str().unwrap_or_default();
    let namespace = parent["metadata"]["namespace"].as_str().unwrap_or_default();
    let children: Vec<Value> = desired(parent)
        .into_iter()
        .map(|child| {
            json!({
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {"name": child, "labels": {CHILD_LABEL: "child"}},
                "data": {"owner": name}
            })
        })
        .collect();
    let observed = request["children"]["ConfigMap.v1"]
        .as_object()
        .map_or(0, |m| m.len());
    let status = json!({"ready": observed, "wanted": children.len()});
    answered
        .lock()
        .unwrap()
        .insert(format!("{namespace}/{name}"), status.clone());
    let response = json!({"status": status, "children": children});
    let mut resp = Response::new(Full::new(Bytes::from(response.to_string())));
    resp.headers_mut()
        .insert("content-type", "application/json".parse().unwrap());
    Ok(resp)
}
