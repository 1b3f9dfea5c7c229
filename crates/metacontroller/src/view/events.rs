//! The Events about one object, read from the API server.

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use k8s_openapi::api::core::v1::Event;
use kube::api::{Api, ListParams};
use serde::Deserialize;
use serde_json::{Value, json};

use super::{Handles, json};

/// The query of `GET /api/events`.
#[derive(Deserialize)]
pub struct Which {
    /// The object's namespace (empty for a cluster-scoped object, whose
    /// Events are in `default`).
    #[serde(default)]
    namespace: String,
    /// The object's UID.
    uid: String,
}

/// `GET /api/events?namespace=NS&uid=UID`: newest first.
pub async fn events(
    State(handles): State<Handles>,
    Query(which): Query<Which>,
) -> Result<Response, (StatusCode, String)> {
    let namespace = if which.namespace.is_empty() {
        "default"
    } else {
        &which.namespace
    };
    let api: Api<Event> = Api::namespaced(handles.client.clone(), namespace);
    let params = ListParams::default().fields(&format!("involvedObject.uid={}", which.uid));
    let list = api
        .list(&params)
        .await
        .map_err(|err| (StatusCode::BAD_GATEWAY, err.to_string()))?;
    let mut items: Vec<Value> = list
        .items
        .into_iter()
        .map(|event| {
            let when = event
                .last_timestamp
                .map(|t| t.0.to_string())
                .or_else(|| event.event_time.map(|t| t.0.to_string()))
                .unwrap_or_default();
            json!({
                "type": event.type_,
                "reason": event.reason,
                "message": event.message,
                "count": event.count,
                "time": when,
            })
        })
        .collect();
    items.sort_by(|a, b| b["time"].as_str().cmp(&a["time"].as_str()));
    Ok(json(&items))
}
