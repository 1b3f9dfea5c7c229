//! Retries of answers that ask for a retry, the way client-go's REST client
//! makes them.
//!
//! client-go retries a request only when the answer is 429 or any 5xx *and*
//! carries `Retry-After` with a whole number of seconds; it waits that long
//! and gives up after 10 retries (k8s.io/client-go/rest/with_retry.go:
//! `checkWait`, `retryAfterSeconds` in request.go, `IsNextRetry`, `Before`;
//! request.go `NewRequest` sets `maxRetries: 10`). Every other answer goes
//! back to the caller at once; the engine then requeues the object with its
//! own per-object back-off, as Metacontroller does.
//!
//! [`RetryAfterLayer`] replaces kube-rs's default policy (429/503/504 with or
//! without `Retry-After`, 15 retries, exponential back-off growing to
//! 1,000 s), whose late retries sleep for minutes after the server has
//! recovered. It differs from client-go in three points:
//!
//! * the wait is capped at [`MAX_WAIT`] (client-go sleeps whatever the server
//!   asks; kube-apiserver itself asks for 1 s);
//! * watches are never retried here: a watch answered 429 goes back to the
//!   watcher, which reconnects with its own back-off;
//! * transport errors are not retried (client-go retries a GET once more
//!   after a connection reset); the caller's back-off handles them.
//!
//! A request whose body cannot be copied (a stream) is sent once.

use std::time::Duration;

use http::{HeaderMap, Request, Response, StatusCode};
use tower::buffer::Buffer;
use tower::retry::{Policy, Retry};
use tower::{BoxError, Layer, Service};

/// Retries per request (client-go's `maxRetries`).
pub const MAX_RETRIES: u32 = 10;

/// The longest wait between two attempts, whatever `Retry-After` says.
pub const MAX_WAIT: Duration = Duration::from_secs(10);

/// Requests queued for the retrying stack's worker task.
const BUFFER: usize = 1024;

/// A request body that can be copied for another attempt.
pub trait TryCloneBody: Sized {
    /// A copy of the body, or `None` when it is a stream.
    fn try_clone_body(&self) -> Option<Self>;
}

impl TryCloneBody for kube::client::Body {
    fn try_clone_body(&self) -> Option<Self> {
        self.try_clone()
    }
}

/// How long the server asks the client to wait before retrying this
/// answer, or `None` when the answer is not to be retried: only 429 and 5xx
/// answers with a `Retry-After` of whole seconds are (client-go's
/// `checkWait`; a negative number means "now", as Go's sleep treats it).
pub fn retry_after(status: StatusCode, headers: &HeaderMap) -> Option<Duration> {
    if status != StatusCode::TOO_MANY_REQUESTS && !status.is_server_error() {
        return None;
    }
    let seconds: i64 = headers
        .get(http::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()?;
    Some(Duration::from_secs(seconds.max(0).unsigned_abs()))
}

/// Whether the request opens a watch (`?watch=true` or `?watch=1`).
fn is_watch(uri: &http::Uri) -> bool {
    uri.query().is_some_and(|query| {
        query
            .split('&')
            .any(|pair| matches!(pair, "watch=true" | "watch=1"))
    })
}

/// The retry policy of one request: see the module documentation.
#[derive(Clone, Debug)]
pub struct RetryAfterPolicy {
    retries: u32,
    max_retries: u32,
    max_wait: Duration,
}

impl Default for RetryAfterPolicy {
    fn default() -> Self {
        RetryAfterPolicy {
            retries: 0,
            max_retries: MAX_RETRIES,
            max_wait: MAX_WAIT,
        }
    }
}

impl<B, Res, E> Policy<Request<B>, Response<Res>, E> for RetryAfterPolicy
where
    B: TryCloneBody,
{
    type Future = tokio::time::Sleep;

    fn retry(
        &mut self,
        request: &mut Request<B>,
        result: &mut Result<Response<Res>, E>,
    ) -> Option<Self::Future> {
        let response = result.as_ref().ok()?;
        let wait = retry_after(response.status(), response.headers())?;
        if self.retries >= self.max_retries {
            return None;
        }
        self.retries += 1;
        let wait = wait.min(self.max_wait);
        tracing::debug!(
            method = %request.method(),
            url = %request.uri(),
            status = response.status().as_u16(),
            attempt = self.retries,
            wait_ms = wait.as_millis() as u64,
            "retrying after the server's Retry-After"
        );
        Some(tokio::time::sleep(wait))
    }

    fn clone_request(&mut self, request: &Request<B>) -> Option<Request<B>> {
        if is_watch(request.uri()) {
            return None;
        }
        let mut copy = Request::new(request.body().try_clone_body()?);
        *copy.method_mut() = request.method().clone();
        *copy.uri_mut() = request.uri().clone();
        *copy.version_mut() = request.version();
        *copy.headers_mut() = request.headers().clone();
        *copy.extensions_mut() = request.extensions().clone();
        Some(copy)
    }
}

/// Retries with [`RetryAfterPolicy`]. The stack below it runs in a worker
/// task (a [`Buffer`]), so that every attempt can reach it; it must be
/// built inside a Tokio runtime.
#[derive(Clone, Debug, Default)]
pub struct RetryAfterLayer {
    policy: RetryAfterPolicy,
}

impl<S> Layer<S> for RetryAfterLayer
where
    S: Service<Request<kube::client::Body>> + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Into<BoxError> + Send + Sync,
{
    type Service = Retry<RetryAfterPolicy, Buffer<Request<kube::client::Body>, S::Future>>;

    fn layer(&self, inner: S) -> Self::Service {
        Retry::new(self.policy.clone(), Buffer::new(inner, BUFFER))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::VecDeque;
    use std::convert::Infallible;
    use std::sync::Arc;
    use std::task::{Context, Poll};

    use parking_lot::Mutex;
    use tower::ServiceExt;

    /// A body that can or cannot be copied.
    #[derive(Debug, PartialEq)]
    struct TestBody {
        text: &'static str,
        copyable: bool,
    }

    impl TryCloneBody for TestBody {
        fn try_clone_body(&self) -> Option<Self> {
            self.copyable.then_some(TestBody {
                text: self.text,
                copyable: true,
            })
        }
    }

    /// A status code and the `Retry-After` value, if any.
    type Answer = (u16, Option<&'static str>);

    /// A server that answers from a script (then 200) and records the
    /// requests it saw.
    #[derive(Clone, Default)]
    struct Scripted {
        answers: Arc<Mutex<VecDeque<Answer>>>,
        seen: Arc<Mutex<Vec<String>>>,
    }

    impl Scripted {
        fn new(answers: &[Answer]) -> Self {
            Scripted {
                answers: Arc::new(Mutex::new(answers.iter().copied().collect())),
                seen: Arc::default(),
            }
        }

        fn calls(&self) -> usize {
            self.seen.lock().len()
        }

        fn answer(&self, seen: String) -> Response<()> {
            self.seen.lock().push(seen);
            let (code, retry_after) = self.answers.lock().pop_front().unwrap_or((200, None));
            let mut response = Response::builder().status(code);
            if let Some(value) = retry_after {
                response = response.header("Retry-After", value);
            }
            response.body(()).unwrap()
        }
    }

    impl Service<Request<TestBody>> for Scripted {
        type Response = Response<()>;
        type Error = Infallible;
        type Future = std::future::Ready<Result<Response<()>, Infallible>>;

        fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
            Poll::Ready(Ok(()))
        }

        fn call(&mut self, request: Request<TestBody>) -> Self::Future {
            let seen = format!("{} {}", request.method(), request.body().text);
            std::future::ready(Ok(self.answer(seen)))
        }
    }

    fn request(uri: &str, copyable: bool) -> Request<TestBody> {
        Request::post(uri)
            .body(TestBody {
                text: "payload",
                copyable,
            })
            .unwrap()
    }

    /// Sends one request through the policy; returns the final status and
    /// how long it took on the paused clock.
    async fn send(server: &Scripted, request: Request<TestBody>) -> (u16, Duration) {
        let service = Retry::new(RetryAfterPolicy::default(), server.clone());
        let start = tokio::time::Instant::now();
        let response = service.oneshot(request).await.unwrap();
        (response.status().as_u16(), start.elapsed())
    }

    #[tokio::test(start_paused = true)]
    async fn a_429_with_retry_after_is_retried_after_that_wait() {
        let server = Scripted::new(&[(429, Some("1")), (429, Some("2")), (429, Some("1"))]);
        let (status, took) = send(&server, request("/api/v1/configmaps", true)).await;
        assert_eq!(status, 200);
        assert_eq!(server.calls(), 4);
        assert_eq!(took, Duration::from_secs(4));
        // Every attempt carried the body.
        assert!(server.seen.lock().iter().all(|s| s == "POST payload"));
    }

    #[tokio::test(start_paused = true)]
    async fn a_429_without_retry_after_goes_back_at_once() {
        for retry_after in [None, Some("soon"), Some("Wed, 21 Oct 2015 07:28:00 GMT")] {
            let server = Scripted::new(&[(429, retry_after)]);
            let (status, took) = send(&server, request("/api/v1/configmaps", true)).await;
            assert_eq!((status, server.calls()), (429, 1), "{retry_after:?}");
            assert_eq!(took, Duration::ZERO);
        }
    }

    #[tokio::test(start_paused = true)]
    async fn gives_up_after_ten_retries() {
        let server = Scripted::new(&[(429, Some("1")); 20]);
        let (status, took) = send(&server, request("/api/v1/configmaps", true)).await;
        assert_eq!(status, 429);
        assert_eq!(server.calls(), 1 + MAX_RETRIES as usize);
        assert_eq!(took, Duration::from_secs(MAX_RETRIES.into()));
    }

    #[tokio::test(start_paused = true)]
    async fn server_errors_with_retry_after_are_retried_others_not() {
        let server = Scripted::new(&[(503, Some("1")), (500, Some("0")), (504, None)]);
        let (status, took) = send(&server, request("/api/v1/configmaps", true)).await;
        assert_eq!((status, server.calls()), (504, 3));
        assert_eq!(took, Duration::from_secs(1));
        for code in [409, 404, 400] {
            let server = Scripted::new(&[(code, Some("1"))]);
            let (status, _) = send(&server, request("/api/v1/configmaps", true)).await;
            assert_eq!((status, server.calls()), (code, 1));
        }
    }

    #[tokio::test(start_paused = true)]
    async fn the_wait_is_capped_and_a_negative_one_is_no_wait() {
        let server = Scripted::new(&[(429, Some("3600")), (429, Some("-5"))]);
        let (status, took) = send(&server, request("/api/v1/configmaps", true)).await;
        assert_eq!((status, server.calls()), (200, 3));
        assert_eq!(took, MAX_WAIT);
    }

    #[tokio::test(start_paused = true)]
    async fn watches_and_uncopyable_bodies_are_sent_once() {
        let server = Scripted::new(&[(429, Some("1"))]);
        let (status, _) = send(&server, request("/api/v1/pods?watch=true&rv=1", true)).await;
        assert_eq!((status, server.calls()), (429, 1));
        let server = Scripted::new(&[(429, Some("1"))]);
        let (status, _) = send(&server, request("/api/v1/pods", false)).await;
        assert_eq!((status, server.calls()), (429, 1));
        // A parameter that merely ends in "watch" is no watch.
        let server = Scripted::new(&[(429, Some("1"))]);
        let (status, _) = send(&server, request("/api/v1/pods?nowatch=true", true)).await;
        assert_eq!((status, server.calls()), (200, 2));
    }

    /// A server that is not `Clone`, as kube-rs's boxed stack is not.
    struct Unique(Scripted);

    impl Service<Request<kube::client::Body>> for Unique {
        type Response = Response<()>;
        type Error = Infallible;
        type Future = std::future::Ready<Result<Response<()>, Infallible>>;

        fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
            Poll::Ready(Ok(()))
        }

        fn call(&mut self, request: Request<kube::client::Body>) -> Self::Future {
            let seen = format!("{} {}", request.method(), request.uri());
            std::future::ready(Ok(self.0.answer(seen)))
        }
    }

    #[tokio::test(start_paused = true)]
    async fn the_layer_retries_through_a_stack_that_is_not_clone() {
        let server = Scripted::new(&[(429, Some("1")), (503, Some("1"))]);
        let service = RetryAfterLayer::default().layer(Unique(server.clone()));
        let request = Request::put("/api/v1/namespaces/a/configmaps/b")
            .body(kube::client::Body::from(b"{}".to_vec()))
            .unwrap();
        let start = tokio::time::Instant::now();
        let response = service.oneshot(request).await.unwrap();
        assert_eq!(response.status(), 200);
        assert_eq!(start.elapsed(), Duration::from_secs(2));
        assert_eq!(
            *server.seen.lock(),
            vec!["PUT /api/v1/namespaces/a/configmaps/b"; 3]
        );
    }
}
