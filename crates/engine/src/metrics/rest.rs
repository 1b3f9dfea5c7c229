//! client-go's `rest_client_requests_total{code,method,host}` as a tower
//! layer on the kube-rs client. controller-runtime registers only this one
//! of client-go's request metrics
//! (`sigs.k8s.io/controller-runtime/pkg/metrics/client_go_adapter.go`);
//! `code` is the HTTP status, or `<error>` when no response arrived, and
//! `host` the API server's `host:port` (`k8s.io/client-go/rest/request.go`,
//! `sanitize`).
//!
//! Beyond what Metacontroller's process serves, the layer also fills
//! `rest_client_request_duration_seconds{verb,host}`, the latency histogram
//! Kubernetes' own components register for client-go
//! (`k8s.io/component-base/metrics/prometheus/restclient/metrics.go`, with
//! its buckets), timed until the response headers arrive.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use tower::{Layer, Service};

type RequestLabels = Vec<(&'static str, String)>;

/// component-base's buckets for `rest_client_request_duration_seconds`.
const DURATION_BUCKETS: [f64; 12] = [
    0.005, 0.025, 0.1, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 15.0, 30.0, 60.0,
];

type DurationFamily = Family<RequestLabels, Histogram, fn() -> Histogram>;

fn duration_histogram() -> Histogram {
    Histogram::new(DURATION_BUCKETS)
}

/// The REST client families, registered once per registry.
#[derive(Clone, Debug)]
pub struct RestClientMetrics {
    requests: Family<RequestLabels, Counter>,
    durations: DurationFamily,
}

impl RestClientMetrics {
    /// Registers the family on `registry`.
    pub fn register(registry: &mut Registry) -> Self {
        let requests = Family::default();
        registry.register(
            "rest_client_requests",
            "Number of HTTP requests, partitioned by status code, method, and host",
            requests.clone(),
        );
        let durations: DurationFamily = Family::new_with_constructor(duration_histogram);
        registry.register(
            "rest_client_request_duration_seconds",
            "Request latency in seconds, broken down by verb and host",
            durations.clone(),
        );
        RestClientMetrics {
            requests,
            durations,
        }
    }

    /// A layer counting the requests of a client talking to `host`.
    pub fn layer(&self, host: impl Into<String>) -> RestClientLayer {
        RestClientLayer {
            requests: self.requests.clone(),
            durations: self.durations.clone(),
            host: host.into(),
        }
    }
}

/// Tower layer counting every request in `rest_client_requests_total` and
/// timing it in `rest_client_request_duration_seconds`.
#[derive(Clone, Debug)]
pub struct RestClientLayer {
    requests: Family<RequestLabels, Counter>,
    durations: DurationFamily,
    host: String,
}

impl<S> Layer<S> for RestClientLayer {
    type Service = RestClientService<S>;

    fn layer(&self, inner: S) -> RestClientService<S> {
        RestClientService {
            inner,
            layer: self.clone(),
        }
    }
}

/// The service produced by [`RestClientLayer`].
#[derive(Clone, Debug)]
pub struct RestClientService<S> {
    inner: S,
    layer: RestClientLayer,
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

impl<S, ReqBody, ResBody> Service<http::Request<ReqBody>> for RestClientService<S>
where
    S: Service<http::Request<ReqBody>, Response = http::Response<ResBody>>,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = BoxFuture<Result<S::Response, S::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<ReqBody>) -> Self::Future {
        let method = request.method().as_str().to_owned();
        let requests = self.layer.requests.clone();
        let durations = self.layer.durations.clone();
        let host = self.layer.host.clone();
        let started = Instant::now();
        let response = self.inner.call(request);
        Box::pin(async move {
            let result = response.await;
            durations
                .get_or_create(&vec![("verb", method.clone()), ("host", host.clone())])
                .observe(started.elapsed().as_secs_f64());
            let code = match &result {
                Ok(response) => response.status().as_u16().to_string(),
                Err(_) => "<error>".to_owned(),
            };
            requests
                .get_or_create(&vec![("code", code), ("method", method), ("host", host)])
                .inc();
            result
        })
    }
}
