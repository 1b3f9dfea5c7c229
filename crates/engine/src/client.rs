//! The Kubernetes client: kube-rs with client-side request throttling.
//!
//! [`RateLimitLayer`] is a tower layer that delays requests so that at most
//! `qps` requests per second start on average, with bursts of up to `burst`
//! (client-go's `--client-go-qps` / `--client-go-burst`). kube-rs drives its
//! service stack from a single buffer task, so the limit is global to the
//! client and requests keep their order. Watches count once, when they start.
//!
//! Every client reports transport failures with the request's method and
//! URL ([`UrlLayer`]). [`build_instrumented_client`] adds the `rest_client_requests_total`
//! layer ([`crate::metrics::RestClientLayer`]).
//!
//! Every client retries as client-go does, only answers that carry
//! `Retry-After` ([`retry`]), in place of kube-rs's default policy. Each
//! attempt passes the throttle and the layers below the retries on its own,
//! as each of client-go's attempts does.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::time::Sleep;
use tower::{Layer, Service};

use crate::metrics::RestClientMetrics;
use crate::ratelimit::TokenBucket;
use crate::request_context::{UrlLayer, WithUrl};

pub mod retry;

pub use retry::RetryAfterLayer;

/// Tower layer applying a [`TokenBucket`] to every request.
#[derive(Clone, Copy, Debug)]
pub struct RateLimitLayer {
    qps: f64,
    burst: u32,
}

impl RateLimitLayer {
    /// At most `qps` requests per second on average, bursts of `burst`. A
    /// `qps` that is not positive disables the limit.
    pub fn new(qps: f64, burst: u32) -> Self {
        RateLimitLayer { qps, burst }
    }
}

impl<S> Layer<S> for RateLimitLayer {
    type Service = RateLimit<S>;

    fn layer(&self, inner: S) -> RateLimit<S> {
        RateLimit {
            inner,
            bucket: TokenBucket::new(self.qps, self.burst, tokio::time::Instant::now().into_std()),
            wait: None,
            permit: false,
        }
    }
}

/// The service produced by [`RateLimitLayer`].
pub struct RateLimit<S> {
    inner: S,
    bucket: TokenBucket,
    wait: Option<Pin<Box<Sleep>>>,
    permit: bool,
}

impl<S, R> Service<R> for RateLimit<S>
where
    S: Service<R>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        if !self.permit {
            if self.wait.is_none() {
                let delay = self.bucket.reserve(tokio::time::Instant::now().into_std());
                if delay.is_zero() {
                    self.permit = true;
                } else {
                    self.wait = Some(Box::pin(tokio::time::sleep(delay)));
                }
            }
            if let Some(wait) = self.wait.as_mut() {
                if wait.as_mut().poll(cx).is_pending() {
                    return Poll::Pending;
                }
                self.wait = None;
                self.permit = true;
            }
        }
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: R) -> Self::Future {
        self.permit = false;
        self.inner.call(request)
    }
}

/// kube-rs's own service stack for a [`kube::Config`], without its retries.
pub type KubeStack = tower::util::BoxService<
    http::Request<kube::client::Body>,
    http::Response<Box<kube::client::DynBody>>,
    tower::BoxError,
>;

/// What one attempt of a request goes through: the throttle, the URL in
/// errors, kube-rs's stack.
pub type Attempt = RateLimit<WithUrl<KubeStack>>;

/// Builds a kube-rs client for `config` throttled to `qps`/`burst`.
pub fn build_client(
    config: kube::Config,
    qps: f64,
    burst: u32,
) -> Result<kube::Client, kube::Error> {
    build_client_with_layer(config, qps, burst, &tower::layer::util::Identity::new())
}

/// Like [`build_client`], and counts every request in `metrics`.
pub fn build_instrumented_client(
    config: kube::Config,
    qps: f64,
    burst: u32,
    metrics: &RestClientMetrics,
) -> Result<kube::Client, kube::Error> {
    let host = config
        .cluster_url
        .authority()
        .map(|a| a.as_str().to_owned())
        .unwrap_or_else(|| "none".to_owned());
    build_client_with_layer(config, qps, burst, &metrics.layer(host))
}

/// Like [`build_client`], with `layer` around every attempt (inside the
/// retries, outside the throttle): it sees each request sent.
pub fn build_client_with_layer<L>(
    mut config: kube::Config,
    qps: f64,
    burst: u32,
    layer: &L,
) -> Result<kube::Client, kube::Error>
where
    L: Layer<Attempt>,
    L::Service: Service<
            http::Request<kube::client::Body>,
            Response = http::Response<Box<kube::client::DynBody>>,
        > + Send
        + 'static,
    <L::Service as Service<http::Request<kube::client::Body>>>::Future: Send + 'static,
    <L::Service as Service<http::Request<kube::client::Body>>>::Error:
        Into<tower::BoxError> + Send + Sync,
{
    config.default_retry = false;
    let urls = UrlLayer::new(&config.cluster_url);
    let builder = kube::client::ClientBuilder::try_from(config)?;
    Ok(builder
        .with_layer(&urls)
        .with_layer(&RateLimitLayer::new(qps, burst))
        .with_layer(layer)
        .with_layer(&RetryAfterLayer::default())
        .build())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::convert::Infallible;
    use std::time::Duration;

    #[derive(Clone)]
    struct Echo;

    impl Service<u32> for Echo {
        type Response = u32;
        type Error = Infallible;
        type Future = std::future::Ready<Result<u32, Infallible>>;

        fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
            Poll::Ready(Ok(()))
        }

        fn call(&mut self, r: u32) -> Self::Future {
            std::future::ready(Ok(r))
        }
    }

    #[tokio::test(start_paused = true)]
    async fn throttles_after_the_burst() {
        use tower::ServiceExt;
        let mut svc = RateLimitLayer::new(10.0, 3).layer(Echo);
        let start = tokio::time::Instant::now();
        for i in 0..5 {
            let out = svc.ready().await.unwrap().call(i).await.unwrap();
            assert_eq!(out, i);
        }
        // Three immediate, then two spaced 100 ms apart.
        let elapsed = start.elapsed();
        assert!(elapsed >= Duration::from_millis(190), "{elapsed:?}");
        assert!(elapsed < Duration::from_millis(300), "{elapsed:?}");
    }
}
