//! A plain-HTTP reverse proxy in front of the API server that records every
//! request that is not a GET, so that a test can tell which writes one
//! `metacontroller` process made. It forwards through a `kube::Client`,
//! which carries the upstream address, TLS and credentials; responses
//! (watches included) stream back unchanged.

use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use http::{Request, Response, StatusCode};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

/// One request other than GET, and its response status.
#[derive(Clone, Debug)]
pub struct Write {
    pub method: String,
    pub path: String,
    pub status: u16,
    pub at: Instant,
}

impl Write {
    /// Whether it targets a Lease.
    pub fn is_lease(&self) -> bool {
        self.path.starts_with("/apis/coordination.k8s.io/")
    }
}

pub struct Proxy {
    pub url: String,
    writes: Arc<Mutex<Vec<Write>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Proxy {
    pub async fn start(client: kube::Client) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
        let url = format!("http://{}", listener.local_addr().unwrap());
        let writes = Arc::new(Mutex::new(Vec::new()));
        let log = writes.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let client = client.clone();
                let log = log.clone();
                tokio::spawn(async move {
                    let service = service_fn(move |req| forward(client.clone(), log.clone(), req));
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Proxy { url, writes, task }
    }

    /// Every write so far, in order.
    pub fn writes(&self) -> Vec<Write> {
        self.writes.lock().unwrap().clone()
    }

    /// A kubeconfig that reaches the API server through this proxy.
    pub fn kubeconfig(&self) -> String {
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: proxy\n  cluster:\n    server: {}\ncontexts:\n- name: proxy\n  context:\n    cluster: proxy\n    user: proxy\ncurrent-context: proxy\nusers:\n- name: proxy\n  user: {{}}\n",
            self.url
        )
    }
}

async fn forward(
    client: kube::Client,
    log: Arc<Mutex<Vec<Write>>>,
    req: Request<Incoming>,
) -> Result<Response<kube::client::Body>, Infallible> {
    let (parts, body) = req.into_parts();
    let bytes = match body.collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(_) => return Ok(status(StatusCode::BAD_REQUEST)),
    };
    let path = parts.uri.path().to_owned();
    let target = parts
        .uri
        .path_and_query()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| "/".into());
    let mut builder = Request::builder().method(parts.method.clone()).uri(target);
    for (name, value) in &parts.headers {
        if !matches!(
            name.as_str(),
            "host" | "authorization" | "content-length" | "connection" | "transfer-encoding"
        ) {
            builder = builder.header(name, value);
        }
    }
    let Ok(request) = builder.body(kube::client::Body::from(bytes)) else {
        return Ok(status(StatusCode::BAD_REQUEST));
    };
    let response = client.send(request).await;
    let code = match &response {
        Ok(r) => r.status().as_u16(),
        Err(_) => 502,
    };
    if parts.method != http::Method::GET {
        log.lock().unwrap().push(Write {
            method: parts.method.to_string(),
            path,
            status: code,
            at: Instant::now(),
        });
    }
    Ok(response.unwrap_or_else(|_| status(StatusCode::BAD_GATEWAY)))
}

fn status(code: StatusCode) -> Response<kube::client::Body> {
    let mut response = Response::new(kube::client::Body::empty());
    *response.status_mut() = code;
    response
}
