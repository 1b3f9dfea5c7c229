//! Discovery against an API server one of whose groups fails (an aggregated
//! API whose backend is down answers 503): the other groups are still
//! discovered, and the failing group's resources from an earlier run are
//! kept. The server is a small HTTP server serving the discovery documents
//! without aggregated discovery, as older API servers do. The client is the
//! engine's, which retries 503 answers with a long back-off: a refresh must
//! still finish within seconds.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use metacontroller_engine::discovery::ResourceMap;
use serde_json::{Value, json};

fn resource_list(group_version: &str, name: &str, kind: &str) -> Value {
    json!({
        "kind": "APIResourceList",
        "groupVersion": group_version,
        "resources": [
            {"name": name, "singularName": "", "namespaced": true, "kind": kind,
             "verbs": ["get", "list", "watch", "create", "update", "patch", "delete"]},
            {"name": format!("{name}/status"), "singularName": "", "namespaced": true, "kind": kind,
             "verbs": ["get", "update", "patch"]}
        ]
    })
}

fn as_json(body: Value) -> Response {
    (
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

/// Serves `/api`, `/api/v1`, `/apis`, `good.example/v1` and
/// `broken.example/v1`, the last answering 503 while `broken` is set.
async fn start(broken: Arc<AtomicBool>) -> String {
    let app = Router::new()
        .route(
            "/api",
            get(|| async { as_json(json!({"kind": "APIVersions", "versions": ["v1"]})) }),
        )
        .route(
            "/api/v1",
            get(|| async { as_json(resource_list("v1", "configmaps", "ConfigMap")) }),
        )
        .route(
            "/apis",
            get(|| async {
                let group = |name: &str| {
                    json!({"name": name,
                           "versions": [{"groupVersion": format!("{name}/v1"), "version": "v1"}],
                           "preferredVersion": {"groupVersion": format!("{name}/v1"), "version": "v1"}})
                };
                as_json(json!({"kind": "APIGroupList",
                           "groups": [group("broken.example"), group("good.example")]}))
            }),
        )
        .route(
            "/apis/good.example/v1",
            get(|| async { as_json(resource_list("good.example/v1", "widgets", "Widget")) }),
        )
        .route(
            "/apis/broken.example/v1",
            get(|State(broken): State<Arc<AtomicBool>>| async move {
                if broken.load(Ordering::SeqCst) {
                    (StatusCode::SERVICE_UNAVAILABLE, "service unavailable").into_response()
                } else {
                    as_json(resource_list("broken.example/v1", "gadgets", "Gadget"))
                        .into_response()
                }
            }),
        )
        .with_state(broken);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    url
}

#[tokio::test]
async fn a_failing_group_is_skipped_not_fatal() {
    let broken = Arc::new(AtomicBool::new(true));
    let url = start(broken.clone()).await;
    let config = kube::Config::new(url.parse().unwrap());
    let client = metacontroller_engine::client::build_client(config, 100.0, 100).unwrap();
    let map = ResourceMap::new(client);

    // The first run sees the broken group failing: the rest is discovered.
    let started = std::time::Instant::now();
    map.refresh().await.expect("refresh with one failing group");
    assert!(started.elapsed() < std::time::Duration::from_secs(30));
    let widgets = map.get("good.example/v1", "widgets").expect("widgets");
    assert!(widgets.namespaced && widgets.has_status);
    assert!(map.get("v1", "configmaps").is_some());
    assert!(map.get("broken.example/v1", "gadgets").is_none());

    // Once it answers, its resources appear...
    broken.store(false, Ordering::SeqCst);
    map.refresh().await.unwrap();
    assert!(map.get("broken.example/v1", "gadgets").is_some());

    // ...and an outage after that keeps them.
    broken.store(true, Ordering::SeqCst);
    map.refresh().await.unwrap();
    assert!(map.get("broken.example/v1", "gadgets").is_some());
    assert!(map.get_by_kind("good.example/v1", "Widget").is_some());
}
