//! The metrics endpoint (`/metrics`, Prometheus text format 0.0.4 or
//! OpenMetrics by content negotiation, see [`crate::metrics::text`]) and the
//! health probes (`/healthz`, `/readyz`).

use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::Arc;

use axum::Router;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use prometheus_client::registry::Registry;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::metrics::text;

/// A bind address that cannot be used.
#[derive(Debug, thiserror::Error)]
#[error("invalid bind address {0:?}")]
pub struct InvalidAddress(pub String);

/// Parses a Go-style listen address: `:9999` (all interfaces),
/// `127.0.0.1:9999`, `localhost:9999`; `0` or the empty string disable the
/// endpoint (`None`).
pub fn parse_bind_address(text: &str) -> Result<Option<SocketAddr>, InvalidAddress> {
    let text = text.trim();
    if text.is_empty() || text == "0" {
        return Ok(None);
    }
    if let Some(port) = text.strip_prefix(':') {
        let port: u16 = port.parse().map_err(|_| InvalidAddress(text.to_owned()))?;
        return Ok(Some(SocketAddr::from(([0, 0, 0, 0], port))));
    }
    if let Ok(addr) = text.parse() {
        return Ok(Some(addr));
    }
    text.to_socket_addrs()
        .ok()
        .and_then(|mut addrs| addrs.next())
        .map(Some)
        .ok_or_else(|| InvalidAddress(text.to_owned()))
}

async fn metrics(registry: Arc<Registry>, headers: HeaderMap) -> impl IntoResponse {
    let accept = headers
        .get(header::ACCEPT)
        .and_then(|value| value.to_str().ok());
    match text::render(&registry, accept) {
        Ok((content_type, body)) => {
            (StatusCode::OK, [(header::CONTENT_TYPE, content_type)], body).into_response()
        }
        Err(err) => (StatusCode::INTERNAL_SERVER_ERROR, err.to_string()).into_response(),
    }
}

/// Serves `/metrics` from `registry` on `listener` until `cancel` fires.
pub async fn serve_metrics(
    listener: TcpListener,
    registry: Arc<Registry>,
    cancel: CancellationToken,
) -> std::io::Result<()> {
    let app = Router::new().route(
        "/metrics",
        get(move |headers: HeaderMap| metrics(registry.clone(), headers)),
    );
    axum::serve(listener, app)
        .with_graceful_shutdown(cancel.cancelled_owned())
        .await
}

/// Serves `/healthz` and `/readyz` on `listener` until `cancel` fires.
pub async fn serve_health(listener: TcpListener, cancel: CancellationToken) -> std::io::Result<()> {
    let app = Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(|| async { "ok" }));
    axum::serve(listener, app)
        .with_graceful_shutdown(cancel.cancelled_owned())
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bind_addresses() {
        assert_eq!(parse_bind_address("0").unwrap(), None);
        assert_eq!(parse_bind_address("").unwrap(), None);
        assert_eq!(
            parse_bind_address(":9999").unwrap(),
            Some(SocketAddr::from(([0, 0, 0, 0], 9999)))
        );
        assert_eq!(
            parse_bind_address("127.0.0.1:8081").unwrap(),
            Some(SocketAddr::from(([127, 0, 0, 1], 8081)))
        );
        assert!(parse_bind_address("localhost:8081").unwrap().is_some());
        assert!(parse_bind_address(":http").is_err());
        assert!(parse_bind_address("no port").is_err());
    }
}
