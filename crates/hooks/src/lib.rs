//! # metacontroller-hooks
//!
//! The HTTP(S) client that calls Metacontroller hooks (`sync`, `finalize`,
//! `customize`) and reports what happened in a form the controller engine can
//! act on.
//!
//! A hook call is one `POST` of a JSON document to a URL, answered with a JSON
//! document. This crate owns everything about that exchange and nothing else:
//!
//! * **Transport**: one shared connection pool per distinct TLS setup, HTTP/1.1
//!   keep-alive, `TCP_NODELAY` on, a whole-request timeout
//!   ([`HookEndpoint::timeout`]).
//! * **Status handling**: only `200 OK` is a success. `429 Too Many Requests`
//!   becomes [`HookError::TooManyRequests`] carrying the parsed `Retry-After`
//!   (integer seconds or an HTTP date); every other status becomes
//!   [`HookError::UnexpectedStatus`], whose text is
//!   `unsupported status code: <n> body: <body>` (the body cut to
//!   [`MAX_ERROR_BODY_BYTES`], the client's credentials replaced by
//!   `<redacted>`).
//! * **Diagnostics without secrets**: URLs in errors and logs lose their user
//!   info and query values; [`HookClient::snippet`] is the form of an answer
//!   fit for logs and Events; [`HookError::failure_kind`] names the kind of
//!   failure.
//! * **ETag caching** (optional, [`EtagConfig`]): the last `200` response that
//!   carried an `ETag` is kept per root object; the next call for the same
//!   object sends `If-None-Match`, and a `304 Not Modified` or
//!   `412 Precondition Failed` answer replays the kept body.
//! * **TLS** via rustls (TLS 1.2 minimum). Without a CA bundle, servers are
//!   checked against the operating system's roots, as Go's `crypto/x509`
//!   does: the files named by `SSL_CERT_FILE` / `SSL_CERT_DIR` when set, else
//!   the system store (`/etc/ssl/certs` and friends), plus the compiled-in
//!   Mozilla (webpki) roots for images that ship none. A custom CA bundle
//!   replaces all of these; an optional client certificate enables mutual
//!   TLS.
//! * **Authorization**: a fully formed header value held in a [`SecretString`]
//!   that never prints. [`build_bearer`], [`build_basic_auth`] and
//!   [`build_authorization`] produce the values Metacontroller would send.
//! * **Metrics** ([`HookMetrics`]): the per-hook Prometheus series Metacontroller
//!   exports (`metacontroller_<hook>_requests_total`,
//!   `metacontroller_<hook>_request_duration_histogram_seconds`,
//!   `metacontroller_<hook>_in_flight_requests`), on a `prometheus-client`
//!   registry.
//!
//! ## What this crate does not do
//!
//! It has no Kubernetes client and depends on no other crate of the workspace.
//! Reading `Hook`/`Webhook` settings from CompositeController or
//! DecoratorController objects, building service URLs, choosing an
//! `endpointConfigs` entry, fetching Secrets and ConfigMaps and applying the
//! 10 second default timeout are the caller's job; the result is a plain
//! [`HookEndpoint`]. Request bodies arrive already serialized and responses are
//! returned as raw bytes: (de)serializing hook documents happens elsewhere.
//! There are no retries inside a call; the caller's work queue retries.
//!
//! ## Example
//!
//! ```no_run
//! use std::time::Duration;
//! use metacontroller_hooks::{build_bearer, HookClient, HookEndpoint};
//!
//! # async fn demo() -> Result<(), metacontroller_hooks::HookError> {
//! let mut endpoint = HookEndpoint::new("http://my-hook.my-ns/sync");
//! endpoint.timeout = Duration::from_secs(5);
//! endpoint.authorization = Some(build_bearer("s3cr3t\n"));
//! let client = HookClient::new(endpoint)?;
//! let response = client
//!     .call(br#"{"parent":{}}"#.to_vec(), Some("MyKind/ns/name"))
//!     .await?;
//! # drop(response);
//! # Ok(())
//! # }
//! ```

mod auth;
mod client;
mod diagnostics;
mod endpoint;
mod error;
mod etag;
mod metrics;
mod pool;
mod retry_after;

pub use auth::{SecretString, build_authorization, build_basic_auth, build_bearer};
pub use client::HookClient;
pub use diagnostics::{BODY_TARGET, HEADERS_TARGET};
pub use endpoint::{DEFAULT_TIMEOUT, EtagConfig, HookEndpoint};
pub use error::{HookError, MAX_ERROR_BODY_BYTES};
pub use metrics::{HookKind, HookMetrics, HookMetricsHandle};
