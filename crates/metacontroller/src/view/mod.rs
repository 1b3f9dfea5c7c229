//! The live view: a web page showing what the hosted controllers do.
//!
//! Served on `--view-address` (off by default in `run`; on loopback in
//! `dev`). The page, its stylesheet and script are compiled into the binary
//! (no build step, nothing fetched from elsewhere). It reads:
//!
//! - `GET /api/stream`: server-sent events from the engine's
//!   [`Journal`]: first a `snapshot` (every controller's health and the
//!   last syncs of every parent), then one `sync` per finished sync and one
//!   `controller` per change of a controller's health; a `snapshot` again
//!   if the page fell behind;
//! - `GET /api/snapshot`: the same snapshot as JSON;
//! - `GET /api/events?namespace=NS&uid=UID`: the Events about one object,
//!   read from the API server.
//!
//! Hook requests and answers come redacted from the journal (credentials
//! and Secret data). The view only reads: it changes nothing.

mod events;
mod stream;

use std::net::SocketAddr;

use axum::Router;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use metacontroller_engine::Engine;
use metacontroller_engine::journal::Journal;
use tokio::net::TcpListener;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::listen::{self, ListenError};

/// The address `dev` serves the view on unless told otherwise.
pub const DEV_ADDRESS: &str = "127.0.0.1:9595";

const INDEX: &str = include_str!("assets/index.html");
const SCRIPT: &str = include_str!("assets/view.js");
const STYLE: &str = include_str!("assets/view.css");

/// What the view's handlers read.
#[derive(Clone)]
pub struct Handles {
    /// The engine's journal.
    pub journal: Journal,
    /// A client for the API server (Events).
    pub client: kube::Client,
}

/// Binds `address` (`None` when it disables the view). With `fallback`, a
/// busy port is replaced by a free one on the same host.
pub fn bind(address: &str, fallback: bool) -> Result<Option<TcpListener>, ListenError> {
    match listen::bind(address) {
        Err(ListenError::Bind { addr, source }) if fallback => {
            tracing::info!(addr = %addr, error = %source, "live view port busy; picking a free one");
            listen::bind(&SocketAddr::new(addr.ip(), 0).to_string())
        }
        other => other,
    }
}

/// With a `listener` (see [`bind`]), serves the view on it (in `servers`,
/// until `cancel` fires) and gives `engine` the journal it shows.
pub fn attach(
    engine: Engine,
    listener: Option<TcpListener>,
    client: &kube::Client,
    servers: &mut JoinSet<std::io::Result<()>>,
    cancel: &CancellationToken,
) -> Engine {
    let Some(listener) = listener else {
        return engine;
    };
    let journal = Journal::new();
    let handles = Handles {
        journal: journal.clone(),
        client: client.clone(),
    };
    servers.spawn(serve(listener, handles, cancel.clone()));
    engine.with_journal(journal)
}

/// Serves the view on `listener` until `cancel` fires.
pub async fn serve(
    listener: TcpListener,
    handles: Handles,
    cancel: CancellationToken,
) -> std::io::Result<()> {
    let addr = listener.local_addr()?;
    if !addr.ip().is_loopback() {
        tracing::warn!(addr = %addr, "the live view is reachable from other hosts: it shows hook requests and answers");
    }
    tracing::info!(url = %format!("http://{addr}/"), "live view");
    axum::serve(listener, router(handles))
        .with_graceful_shutdown(cancel.cancelled_owned())
        .await
}

fn router(handles: Handles) -> Router {
    Router::new()
        .route(
            "/",
            get(|| async { asset("text/html; charset=utf-8", INDEX) }),
        )
        .route(
            "/view.js",
            get(|| async { asset("text/javascript; charset=utf-8", SCRIPT) }),
        )
        .route(
            "/view.css",
            get(|| async { asset("text/css; charset=utf-8", STYLE) }),
        )
        .route("/api/snapshot", get(stream::snapshot))
        .route("/api/stream", get(stream::stream))
        .route("/api/events", get(events::events))
        .with_state(handles)
}

/// `value` as an `application/json` answer.
fn json(value: &impl serde::Serialize) -> Response {
    let body = serde_json::to_string(value).unwrap_or_default();
    ([(header::CONTENT_TYPE, "application/json")], body).into_response()
}

fn asset(content_type: &'static str, body: &'static str) -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        body,
    )
}
