//! The embedded API server's request decoding, end to end: one server per
//! fuzzing process, and each input is a request to it — the first byte picks
//! the route, the verb and the body's content type (JSON, YAML, protobuf,
//! and the four patch types), the rest is the body (or, for a list, the
//! label selector). The server must answer every request (no dropped
//! connection, which is what a panicking handler gives) and never with 500.
#![no_main]

use std::sync::OnceLock;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Method, Request};
use hyper_util::rt::TokioIo;
use libfuzzer_sys::fuzz_target;
use metacontroller_apiserver::{ApiServer, Config};
use tokio::runtime::Runtime;

struct Bed {
    rt: Runtime,
    addr: std::net::SocketAddr,
    // Kept alive for the whole process.
    _server: ApiServer,
}

fn bed() -> &'static Bed {
    static BED: OnceLock<Bed> = OnceLock::new();
    BED.get_or_init(|| {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("runtime");
        let server = rt
            .block_on(ApiServer::start(Config {
                history_limit: 1_000,
                ..Config::default()
            }))
            .expect("server starts");
        Bed {
            addr: server.addr(),
            rt,
            _server: server,
        }
    })
}

const COLLECTIONS: [&str; 5] = [
    "/api/v1/namespaces/default/configmaps",
    "/api/v1/namespaces/default/pods",
    "/apis/apps/v1/namespaces/default/deployments",
    "/apis/apiextensions.k8s.io/v1/customresourcedefinitions",
    "/api/v1/namespaces",
];

const CONTENT_TYPES: [&str; 3] = [
    "application/json",
    "application/yaml",
    "application/vnd.kubernetes.protobuf",
];

const PATCH_TYPES: [&str; 4] = [
    "application/json-patch+json",
    "application/merge-patch+json",
    "application/strategic-merge-patch+json",
    "application/apply-patch+yaml",
];

fn request(selector: u8, body: &[u8]) -> Request<Full<Bytes>> {
    let collection = COLLECTIONS[usize::from(selector) % COLLECTIONS.len()];
    let op = usize::from(selector) / COLLECTIONS.len();
    let builder = Request::builder().header("host", "fuzz");
    let (builder, body) = match op % 4 {
        0 => (
            builder.method(Method::POST).uri(collection).header(
                "content-type",
                CONTENT_TYPES[(op / 4) % CONTENT_TYPES.len()],
            ),
            body.to_vec(),
        ),
        1 => (
            builder
                .method(Method::PUT)
                .uri(format!("{collection}/fuzzed"))
                .header(
                    "content-type",
                    CONTENT_TYPES[(op / 4) % CONTENT_TYPES.len()],
                ),
            body.to_vec(),
        ),
        2 => (
            builder
                .method(Method::PATCH)
                .uri(format!("{collection}/fuzzed?fieldManager=fuzz&force=true"))
                .header("content-type", PATCH_TYPES[(op / 4) % PATCH_TYPES.len()]),
            body.to_vec(),
        ),
        _ => {
            let query: String = body
                .iter()
                .flat_map(|b| match b {
                    b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'.' | b'_' => {
                        vec![*b as char]
                    }
                    _ => format!("%{b:02X}").chars().collect(),
                })
                .collect();
            let param = if op & 4 == 0 {
                "labelSelector"
            } else {
                "fieldSelector"
            };
            (
                builder
                    .method(Method::GET)
                    .uri(format!("{collection}?{param}={query}")),
                Vec::new(),
            )
        }
    };
    builder.body(Full::new(Bytes::from(body))).expect("request")
}

/// Sends one request on a fresh connection and reads the whole answer.
async fn send(addr: std::net::SocketAddr, req: Request<Full<Bytes>>) -> (u16, Bytes) {
    let (method, uri) = (req.method().clone(), req.uri().clone());
    let stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .expect("handshake");
    tokio::spawn(conn);
    let response = sender
        .send_request(req)
        .await
        .unwrap_or_else(|e| panic!("{method} {uri}: no answer: {e}"));
    let status = response.status().as_u16();
    let body = response
        .into_body()
        .collect()
        .await
        .unwrap_or_else(|e| panic!("{method} {uri}: body cut: {e}"))
        .to_bytes();
    (status, body)
}

/// The one 500 that Kubernetes itself answers for a client's mistake: a
/// create whose body carries `metadata.resourceVersion`. The etcd3 storage
/// rejects it with `storage.ErrResourceVersionSetOnCreate`, which the
/// registry does not map to a 4xx (k8s.io/apiserver/pkg/storage/etcd3/store.go,
/// `Create`), so kube-apiserver answers InternalError; the embedded server
/// does the same.
fn is_create_with_resource_version(method: &Method, body: &[u8]) -> bool {
    let status: serde_json::Value = serde_json::from_slice(body).unwrap_or_default();
    method == Method::POST
        && status["message"] == "resourceVersion should not be set on objects to be created"
}

fuzz_target!(|data: &[u8]| {
    let Some((&selector, body)) = data.split_first() else {
        return;
    };
    let bed = bed();
    let req = request(selector, body);
    let (method, uri) = (req.method().clone(), req.uri().clone());
    let (status, text) = bed.rt.block_on(send(bed.addr, req));
    assert!(
        status != 500 || is_create_with_resource_version(&method, &text),
        "{method} {uri} answered 500: {}",
        String::from_utf8_lossy(&text)
    );
    // Keep the store small: whatever a POST created goes away again.
    if status == 201 {
        let created: serde_json::Value = serde_json::from_slice(&text).unwrap_or_default();
        if let Some(name) = created["metadata"]["name"].as_str() {
            let collection = COLLECTIONS[usize::from(selector) % COLLECTIONS.len()];
            let delete = Request::builder()
                .method(Method::DELETE)
                .uri(format!("{collection}/{name}"))
                .header("host", "fuzz")
                .body(Full::new(Bytes::new()))
                .expect("request");
            bed.rt.block_on(send(bed.addr, delete));
        }
    }
});
