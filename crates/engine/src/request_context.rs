//! Failed requests described for logs.
//!
//! kube-rs reports a transport failure as `ServiceError: client error
//! (Connect)`: neither the request nor the server it went to. [`UrlLayer`]
//! wraps every failure of the client's service stack in a
//! [`TransportError`] that carries the method and the full URL, so that every
//! message built from it says where the request went. [`describe`] renders a
//! `kube::Error` as one line without debug dumps: an API status as
//! `<code> <reason>: <message>`, anything else as its chain of causes with
//! repeated phrases left out.

use std::error::Error as StdError;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use tower::{BoxError, Layer, Service};

/// A request that failed before an HTTP response arrived.
#[derive(Debug, thiserror::Error)]
#[error("{method} {url}: {}", chain(.source.as_ref()))]
pub struct TransportError {
    /// The HTTP method.
    pub method: http::Method,
    /// The full URL, host included.
    pub url: String,
    /// Why it failed.
    pub source: BoxError,
}

/// `error` and its causes, joined with `: `, each cause left out when the
/// text so far already says it.
pub fn chain(error: &(dyn StdError + 'static)) -> String {
    let mut out = error.to_string();
    let mut next = error.source();
    while let Some(cause) = next {
        let text = cause.to_string();
        if !text.is_empty() && !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        next = cause.source();
    }
    out
}

/// One line for a failed kube-rs call.
pub fn describe(error: &kube::Error) -> String {
    match error {
        kube::Error::Api(status) => {
            let mut out = status.code.to_string();
            if !status.reason.is_empty() {
                out.push(' ');
                out.push_str(&status.reason);
            }
            if !status.message.is_empty() {
                out.push_str(": ");
                out.push_str(&status.message);
            }
            out
        }
        kube::Error::Service(inner) => chain(inner.as_ref()),
        kube::Error::HyperError(inner) => chain(inner),
        other => chain(other),
    }
}

/// One line for a failed watch (kube-runtime's watcher), with the step
/// that failed.
pub fn describe_watch(error: &kube::runtime::watcher::Error) -> String {
    use kube::runtime::watcher::Error;
    match error {
        Error::InitialListFailed(e) => format!("list failed: {}", describe(e)),
        Error::WatchStartFailed(e) => format!("watch start failed: {}", describe(e)),
        Error::WatchError(status) => format!(
            "watch ended by the server: {}",
            describe(&kube::Error::Api(status.clone()))
        ),
        Error::WatchFailed(e) => format!("watch stream failed: {}", describe(e)),
        Error::NoResourceVersion => error.to_string(),
    }
}

/// Tower layer turning failures into [`TransportError`]s for `base` (the
/// API server's URL, `scheme://host:port`).
#[derive(Clone, Debug)]
pub struct UrlLayer {
    base: String,
}

impl UrlLayer {
    /// Failures are reported against `base`.
    pub fn new(base: &http::Uri) -> Self {
        let mut text = base.to_string();
        while text.ends_with('/') {
            text.pop();
        }
        UrlLayer { base: text }
    }
}

impl<S> Layer<S> for UrlLayer {
    type Service = WithUrl<S>;

    fn layer(&self, inner: S) -> WithUrl<S> {
        WithUrl {
            inner,
            base: self.base.clone(),
        }
    }
}

/// The service produced by [`UrlLayer`].
#[derive(Clone, Debug)]
pub struct WithUrl<S> {
    inner: S,
    base: String,
}

impl<S, B> Service<http::Request<B>> for WithUrl<S>
where
    S: Service<http::Request<B>>,
    S::Error: Into<BoxError>,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<S::Response, BoxError>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let method = request.method().clone();
        let uri = request.uri();
        let url = if uri.scheme().is_some() {
            uri.to_string()
        } else {
            format!("{}{}", self.base, uri)
        };
        let future = self.inner.call(request);
        Box::pin(async move {
            future.await.map_err(|source| {
                Box::new(TransportError {
                    method,
                    url,
                    source: source.into(),
                }) as BoxError
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("{text}")]
    struct Layered {
        text: &'static str,
        #[source]
        source: Option<Box<Layered>>,
    }

    #[test]
    fn chains_leave_out_repeated_phrases() {
        let inner = Layered {
            text: "connection refused",
            source: None,
        };
        let mid = Layered {
            text: "tcp connect error: connection refused",
            source: Some(Box::new(inner)),
        };
        let top = Layered {
            text: "client error (Connect)",
            source: Some(Box::new(mid)),
        };
        assert_eq!(
            chain(&top),
            "client error (Connect): tcp connect error: connection refused"
        );
    }

    #[test]
    fn api_statuses_are_one_line_without_debug_output() {
        let status = kube::core::Status::failure("the server is busy", "InternalError")
            .with_code(500)
            .boxed();
        let text = describe(&kube::Error::Api(status));
        assert_eq!(text, "500 InternalError: the server is busy");
    }

    #[tokio::test]
    async fn transport_failures_name_method_and_url() {
        use tower::ServiceExt;
        let failing = tower::service_fn(|_: http::Request<()>| async {
            Err::<(), BoxError>("client error (Connect)".into())
        });
        let base: http::Uri = "https://10.0.0.1:6443".parse().unwrap();
        let svc = UrlLayer::new(&base).layer(failing);
        let request = http::Request::get("/api/v1/namespaces/a/pods/b")
            .body(())
            .unwrap();
        let err = svc.oneshot(request).await.unwrap_err();
        let wrapped = kube::Error::Service(err);
        assert_eq!(
            describe(&wrapped),
            "GET https://10.0.0.1:6443/api/v1/namespaces/a/pods/b: client error (Connect)"
        );
    }
}
