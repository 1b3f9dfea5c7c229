//! End-to-end tests of `HookClient` against real HTTP(S) servers listening
//! on 127.0.0.1 inside each test.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::header::HeaderMap;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use metacontroller_hooks::{
    EtagConfig, HookClient, HookEndpoint, HookError, HookKind, HookMetrics, build_basic_auth,
    build_bearer,
};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;

// ---------------------------------------------------------------------------
// Test server
// ---------------------------------------------------------------------------

/// One request as the server saw it.
#[derive(Clone, Debug)]
struct Seen {
    method: String,
    path: String,
    headers: HeaderMap,
    body: Bytes,
}

impl Seen {
    fn header(&self, name: &str) -> Option<String> {
        self.headers
            .get(name)
            .map(|v| v.to_str().unwrap().to_owned())
    }
}

/// What the server answers.
struct Reply {
    status: u16,
    headers: Vec<(&'static str, String)>,
    body: Vec<u8>,
    delay: Duration,
}

impl Reply {
    fn new(status: u16, body: impl Into<Vec<u8>>) -> Self {
        Self {
            status,
            headers: Vec::new(),
            body: body.into(),
            delay: Duration::ZERO,
        }
    }

    fn header(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }

    fn delay(mut self, delay: Duration) -> Self {
        self.delay = delay;
        self
    }
}

type Handler = Arc<dyn Fn(&Seen) -> Reply + Send + Sync>;

struct TestServer {
    addr: SocketAddr,
    connections: Arc<AtomicUsize>,
    seen: Arc<Mutex<Vec<Seen>>>,
    accept_loop: JoinHandle<()>,
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.accept_loop.abort();
    }
}

impl TestServer {
    async fn start(handler: impl Fn(&Seen) -> Reply + Send + Sync + 'static) -> Self {
        Self::start_inner(Arc::new(handler), None).await
    }

    async fn start_tls(
        tls: rustls::ServerConfig,
        handler: impl Fn(&Seen) -> Reply + Send + Sync + 'static,
    ) -> Self {
        Self::start_inner(Arc::new(handler), Some(TlsAcceptor::from(Arc::new(tls)))).await
    }

    async fn start_inner(handler: Handler, tls: Option<TlsAcceptor>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let connections = Arc::new(AtomicUsize::new(0));
        let seen = Arc::new(Mutex::new(Vec::new()));
        let accept_loop = {
            let connections = connections.clone();
            let seen = seen.clone();
            tokio::spawn(async move {
                loop {
                    let Ok((stream, _)) = listener.accept().await else {
                        return;
                    };
                    connections.fetch_add(1, Ordering::SeqCst);
                    let handler = handler.clone();
                    let seen = seen.clone();
                    let tls = tls.clone();
                    tokio::spawn(async move {
                        let service = service_fn(move |req: Request<Incoming>| {
                            let handler = handler.clone();
                            let seen = seen.clone();
                            async move {
                                let (parts, body) = req.into_parts();
                                let body = body.collect().await.unwrap().to_bytes();
                                let request = Seen {
                                    method: parts.method.to_string(),
                                    path: parts.uri.path().to_owned(),
                                    headers: parts.headers,
                                    body,
                                };
                                seen.lock().unwrap().push(request.clone());
                                let reply = handler(&request);
                                if !reply.delay.is_zero() {
                                    tokio::time::sleep(reply.delay).await;
                                }
                                let mut response = Response::builder().status(reply.status);
                                for (name, value) in reply.headers {
                                    response = response.header(name, value);
                                }
                                Ok::<_, Infallible>(
                                    response.body(Full::new(Bytes::from(reply.body))).unwrap(),
                                )
                            }
                        });
                        match tls {
                            None => {
                                let _ = http1::Builder::new()
                                    .serve_connection(TokioIo::new(stream), service)
                                    .await;
                            }
                            Some(acceptor) => {
                                let Ok(stream) = acceptor.accept(stream).await else {
                                    return;
                                };
                                let _ = http1::Builder::new()
                                    .serve_connection(TokioIo::new(stream), service)
                                    .await;
                            }
                        }
                    });
                }
            })
        };
        Self {
            addr,
            connections,
            seen,
            accept_loop,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    fn https_url(&self, path: &str) -> String {
        format!("https://{}{path}", self.addr)
    }

    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }

    fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }
}

fn endpoint(url: String) -> HookEndpoint {
    let mut ep = HookEndpoint::new(url);
    ep.timeout = Duration::from_secs(10);
    ep
}

// ---------------------------------------------------------------------------
// Plain HTTP
// ---------------------------------------------------------------------------

#[tokio::test]
async fn ok_returns_body_and_posts_json() {
    let server = TestServer::start(|_| Reply::new(200, r#"{"status":{"ok":true}}"#)).await;
    let client = HookClient::new(endpoint(server.url("/sync"))).unwrap();

    let body = client
        .call(br#"{"parent":{"a":1}}"#.to_vec(), None)
        .await
        .unwrap();
    assert_eq!(body, r#"{"status":{"ok":true}}"#);

    let seen = server.seen();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].method, "POST");
    assert_eq!(seen[0].path, "/sync");
    assert_eq!(
        seen[0].header("content-type").as_deref(),
        Some("application/json")
    );
    assert_eq!(seen[0].body, r#"{"parent":{"a":1}}"#);
    assert_eq!(seen[0].header("authorization"), None);
    assert_eq!(seen[0].header("if-none-match"), None);
}

#[tokio::test]
async fn non_200_is_unsupported_status_with_body() {
    let server = TestServer::start(|_| Reply::new(500, "boom")).await;
    let client = HookClient::new(endpoint(server.url("/sync"))).unwrap();
    let err = client.call(b"{}".to_vec(), None).await.unwrap_err();
    assert!(
        matches!(err, HookError::UnexpectedStatus { code: 500, .. }),
        "{err:?}"
    );
    assert_eq!(err.to_string(), "unsupported status code: 500 body: boom");

    // 201 and 204 are not success either.
    let server = TestServer::start(|_| Reply::new(201, "{}")).await;
    let client = HookClient::new(endpoint(server.url("/"))).unwrap();
    let err = client.call(b"{}".to_vec(), None).await.unwrap_err();
    assert_eq!(err.to_string(), "unsupported status code: 201 body: {}");
}

#[tokio::test]
async fn long_error_bodies_are_truncated() {
    let server = TestServer::start(|_| Reply::new(503, "x".repeat(100_000))).await;
    let client = HookClient::new(endpoint(server.url("/"))).unwrap();
    let err = client.call(b"{}".to_vec(), None).await.unwrap_err();
    let HookError::UnexpectedStatus { code, body } = &err else {
        panic!("{err:?}")
    };
    assert_eq!(*code, 503);
    assert!(body.len() <= metacontroller_hooks::MAX_ERROR_BODY_BYTES + 64);
    assert!(body.contains("truncated"));
}

#[tokio::test]
async fn too_many_requests_with_seconds() {
    let server =
        TestServer::start(|_| Reply::new(429, "slow down").header("Retry-After", "7")).await;
    let client = HookClient::new(endpoint(server.url("/"))).unwrap();
    let err = client.call(b"{}".to_vec(), None).await.unwrap_err();
    assert!(err.is_too_many_requests(), "{err:?}");
    assert_eq!(err.retry_after(), Some(Duration::from_secs(7)));
}

#[tokio::test]
async fn too_many_requests_with_http_date() {
    let server = TestServer::start(|_| {
        let at = jiff::Timestamp::now() + jiff::SignedDuration::from_secs(30);
        let date = jiff::fmt::rfc2822::DateTimePrinter::new()
            .timestamp_to_rfc9110_string(&at)
            .unwrap();
        Reply::new(429, "").header("Retry-After", date)
    })
    .await;
    let client = HookClient::new(endpoint(server.url("/"))).unwrap();
    let err = client.call(b"{}".to_vec(), None).await.unwrap_err();
    let after = err.retry_after().expect("a delay");
    // The date has whole-second precision and some time passes in between.
    assert!(
        after >= Duration::from_secs(20) && after <= Duration::from_secs(31),
        "{after:?}"
    );
}

#[tokio::test]
async fn too_many_requests_without_usable_header() {
    let server = TestServer::start(|s| {
        if s.path == "/garbage" {
            Reply::new(429, "").header("Retry-After", "whenever")
        } else {
            Reply::new(429, "")
        }
    })
    .await;
    for path in ["/missing", "/garbage"] {
        let client = HookClient::new(endpoint(server.url(path))).unwrap();
        let err = client.call(b"{}".to_vec(), None).await.unwrap_err();
        assert!(
            matches!(err, HookError::TooManyRequests { retry_after: None }),
            "{path}: {err:?}"
        );
    }
}

#[tokio::test]
async fn timeout_fires_and_names_url() {
    let server = TestServer::start(|_| Reply::new(200, "{}").delay(Duration::from_secs(30))).await;
    let mut ep = endpoint(server.url("/slow"));
    ep.timeout = Duration::from_millis(200);
    let client = HookClient::new(ep).unwrap();
    let err = client.call(b"{}".to_vec(), None).await.unwrap_err();
    assert!(err.is_timeout(), "{err:?}");
    let text = err.to_string();
    assert!(text.contains(&server.url("/slow")), "{text}");
    assert!(text.contains("200ms"), "{text}");
}

#[tokio::test]
async fn connection_refused_is_connect_error() {
    let addr = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap()
    }; // listener closed: nothing listens there any more
    let url = format!("http://{addr}/sync");
    let client = HookClient::new(endpoint(url.clone())).unwrap();
    let err = client.call(b"{}".to_vec(), None).await.unwrap_err();
    assert!(matches!(err, HookError::Connect { .. }), "{err:?}");
    assert!(err.to_string().contains(&url), "{err}");
}

#[tokio::test]
async fn authorization_header_is_sent_and_never_printed() {
    let server = TestServer::start(|_| Reply::new(200, "{}")).await;

    let mut ep = endpoint(server.url("/"));
    ep.authorization = Some(build_bearer("top-secret-token\n"));
    assert!(!format!("{ep:?}").contains("top-secret"), "{ep:?}");
    let client = HookClient::new(ep).unwrap();
    assert!(!format!("{client:?}").contains("top-secret"), "{client:?}");
    client.call(b"{}".to_vec(), None).await.unwrap();

    let mut ep = endpoint(server.url("/"));
    ep.authorization = Some(build_basic_auth("user", "pass").unwrap());
    let client = HookClient::new(ep).unwrap();
    client.call(b"{}".to_vec(), None).await.unwrap();

    let seen = server.seen();
    assert_eq!(
        seen[0].header("authorization").as_deref(),
        Some("Bearer top-secret-token")
    );
    assert_eq!(
        seen[1].header("authorization").as_deref(),
        Some("Basic dXNlcjpwYXNz")
    );
}

/// A hook that echoes the request's credentials in its error answer: the
/// error text (which ends up in logs and Events) shows `<redacted>` instead,
/// and a query token in the URL is hidden too.
#[tokio::test]
async fn echoed_credentials_are_redacted_from_errors() {
    let server = TestServer::start(|seen| {
        let auth = seen.header("authorization").unwrap_or_default();
        Reply::new(401, format!("rejected {auth} (credentials: {auth})"))
    })
    .await;
    let cases = [
        (build_bearer("echo-me-token"), vec!["echo-me-token"]),
        (
            build_basic_auth("someone", "echo-me-password").unwrap(),
            // base64("someone:echo-me-password")
            vec!["echo-me-password", "c29tZW9uZTplY2hvLW1lLXBhc3N3b3Jk"],
        ),
    ];
    for (authorization, secrets) in cases {
        let mut ep = endpoint(server.url("/sync?token=query-secret"));
        ep.authorization = Some(authorization);
        let client = HookClient::new(ep).unwrap();
        assert!(!client.url().contains("query-secret"), "{}", client.url());
        let err = client.call(b"{}".to_vec(), None).await.unwrap_err();
        let text = err.to_string();
        assert!(
            text.starts_with("unsupported status code: 401 body: rejected <redacted>"),
            "{text}"
        );
        for secret in secrets {
            assert!(!text.contains(secret), "{text}");
        }
    }
}

#[tokio::test]
async fn keep_alive_reuses_one_connection() {
    let server = TestServer::start(|_| Reply::new(200, "{}")).await;
    let client = HookClient::new(endpoint(server.url("/sync"))).unwrap();
    for _ in 0..20 {
        client.call(b"{}".to_vec(), None).await.unwrap();
    }
    assert_eq!(server.seen().len(), 20);
    assert_eq!(server.connections(), 1);

    // A second hook client on the same server shares the pool.
    let other = HookClient::new(endpoint(server.url("/finalize"))).unwrap();
    other.call(b"{}".to_vec(), None).await.unwrap();
    assert_eq!(server.connections(), 1);
}

#[tokio::test]
async fn error_statuses_keep_the_connection() {
    let server = TestServer::start(|s| {
        if s.path == "/bad" {
            Reply::new(500, "nope")
        } else {
            Reply::new(200, "{}")
        }
    })
    .await;
    let good = HookClient::new(endpoint(server.url("/good"))).unwrap();
    let bad = HookClient::new(endpoint(server.url("/bad"))).unwrap();
    for _ in 0..5 {
        good.call(b"{}".to_vec(), None).await.unwrap();
        bad.call(b"{}".to_vec(), None).await.unwrap_err();
    }
    assert_eq!(server.connections(), 1);
}

// ---------------------------------------------------------------------------
// ETag
// ---------------------------------------------------------------------------

/// Answers 200 with ETag `"v1"`, or `not_modified` when asked with
/// If-None-Match `"v1"`.
async fn etag_server(not_modified: u16) -> TestServer {
    TestServer::start(move |s| match s.header("if-none-match").as_deref() {
        Some("\"v1\"") => Reply::new(not_modified, ""),
        _ => Reply::new(200, r#"{"fresh":true}"#).header("ETag", "\"v1\""),
    })
    .await
}

fn etag_endpoint(url: String, timeout: Duration) -> HookEndpoint {
    let mut ep = endpoint(url);
    ep.etag = Some(EtagConfig {
        cache_timeout: timeout,
        cache_cleanup: Duration::from_secs(60),
    });
    ep
}

#[tokio::test]
async fn etag_304_and_412_replay_cached_body() {
    for status in [304, 412] {
        let server = etag_server(status).await;
        let client =
            HookClient::new(etag_endpoint(server.url("/sync"), Duration::from_secs(60))).unwrap();
        assert!(client.etag_enabled());

        let first = client
            .call(b"{}".to_vec(), Some("Kind/ns/a"))
            .await
            .unwrap();
        let second = client
            .call(b"{}".to_vec(), Some("Kind/ns/a"))
            .await
            .unwrap();
        assert_eq!(first, r#"{"fresh":true}"#);
        assert_eq!(second, first, "status {status}");

        // Another object has no entry yet; no key means no caching at all.
        client
            .call(b"{}".to_vec(), Some("Kind/ns/b"))
            .await
            .unwrap();
        client.call(b"{}".to_vec(), None).await.unwrap();

        let inm: Vec<_> = server
            .seen()
            .iter()
            .map(|s| s.header("if-none-match"))
            .collect();
        assert_eq!(
            inm,
            vec![None, Some("\"v1\"".to_owned()), None, None],
            "status {status}"
        );
    }
}

#[tokio::test]
async fn etag_entry_expires() {
    let server = etag_server(304).await;
    let client = HookClient::new(etag_endpoint(
        server.url("/sync"),
        Duration::from_millis(300),
    ))
    .unwrap();
    client.call(b"{}".to_vec(), Some("k")).await.unwrap();
    tokio::time::sleep(Duration::from_millis(700)).await;
    client.call(b"{}".to_vec(), Some("k")).await.unwrap();
    let seen = server.seen();
    assert_eq!(seen.len(), 2);
    assert_eq!(seen[1].header("if-none-match"), None);
}

#[tokio::test]
async fn etag_evict_forgets_entry() {
    let server = etag_server(304).await;
    let client =
        HookClient::new(etag_endpoint(server.url("/sync"), Duration::from_secs(60))).unwrap();
    client.call(b"{}".to_vec(), Some("k")).await.unwrap();
    client.evict_cached("k");
    client.call(b"{}".to_vec(), Some("k")).await.unwrap();
    assert_eq!(server.seen()[1].header("if-none-match"), None);
}

#[tokio::test]
async fn not_modified_without_etag_mode_is_an_error() {
    let server = TestServer::start(|_| Reply::new(304, "")).await;
    // ETag disabled.
    let client = HookClient::new(endpoint(server.url("/"))).unwrap();
    let err = client.call(b"{}".to_vec(), Some("k")).await.unwrap_err();
    assert!(
        matches!(err, HookError::UnexpectedStatus { code: 304, .. }),
        "{err:?}"
    );
    // ETag enabled but nothing cached, so no If-None-Match was sent.
    let client = HookClient::new(etag_endpoint(server.url("/"), Duration::from_secs(60))).unwrap();
    let err = client.call(b"{}".to_vec(), Some("k")).await.unwrap_err();
    assert!(
        matches!(err, HookError::UnexpectedStatus { code: 304, .. }),
        "{err:?}"
    );
}

#[tokio::test]
async fn etag_disabled_sends_no_if_none_match() {
    let server = etag_server(304).await;
    let client = HookClient::new(endpoint(server.url("/"))).unwrap();
    client.call(b"{}".to_vec(), Some("k")).await.unwrap();
    client.call(b"{}".to_vec(), Some("k")).await.unwrap();
    assert!(
        server
            .seen()
            .iter()
            .all(|s| s.header("if-none-match").is_none())
    );
}

// ---------------------------------------------------------------------------
// Metrics
// ---------------------------------------------------------------------------

#[tokio::test]
async fn metrics_count_calls() {
    let server = TestServer::start(|s| {
        if s.path == "/bad" {
            Reply::new(500, "")
        } else {
            Reply::new(200, "{}")
        }
    })
    .await;
    let mut registry = prometheus_client::registry::Registry::default();
    let metrics = HookMetrics::register(&mut registry);
    let url = server.url("/sync");
    let client = HookClient::new(endpoint(url.clone()))
        .unwrap()
        .with_metrics(metrics.handle(HookKind::Sync, "CompositeController", "cc", &url));
    client.call(b"{}".to_vec(), None).await.unwrap();
    client.call(b"{}".to_vec(), None).await.unwrap();
    let bad_url = server.url("/bad");
    let bad = HookClient::new(endpoint(bad_url.clone()))
        .unwrap()
        .with_metrics(metrics.handle(HookKind::Finalize, "DecoratorController", "dc", &bad_url));
    bad.call(b"{}".to_vec(), None).await.unwrap_err();

    let mut out = String::new();
    prometheus_client::encoding::text::encode(&mut out, &registry).unwrap();
    let labels = format!(
        "controller_name=\"cc\",controller_type=\"CompositeController\",method=\"post\",url=\"{url}\""
    );
    assert!(
        out.contains(&format!(
            "metacontroller_sync_requests_total{{code=\"200\",{labels}}} 2"
        )),
        "{out}"
    );
    assert!(
        out.contains(&format!(
            "metacontroller_sync_request_duration_histogram_seconds_count{{{labels}}} 2"
        )),
        "{out}"
    );
    assert!(
        out.contains(&format!(
            "metacontroller_sync_in_flight_requests{{controller_name=\"cc\",controller_type=\"CompositeController\",url=\"{url}\"}} 0"
        )),
        "{out}"
    );
    assert!(
        out.contains("metacontroller_finalize_requests_total{code=\"500\",controller_name=\"dc\""),
        "{out}"
    );
}

// ---------------------------------------------------------------------------
// TLS
// ---------------------------------------------------------------------------

struct Pki {
    ca_pem: String,
    server_chain: Vec<rustls::pki_types::CertificateDer<'static>>,
    server_key_der: Vec<u8>,
    ca_issuer: rcgen::CertifiedIssuer<'static, rcgen::KeyPair>,
}

fn new_ca(name: &str) -> rcgen::CertifiedIssuer<'static, rcgen::KeyPair> {
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, name);
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    params.key_usages = vec![
        rcgen::KeyUsagePurpose::KeyCertSign,
        rcgen::KeyUsagePurpose::CrlSign,
        rcgen::KeyUsagePurpose::DigitalSignature,
    ];
    rcgen::CertifiedIssuer::self_signed(params, rcgen::KeyPair::generate().unwrap()).unwrap()
}

fn leaf(
    ca: &rcgen::CertifiedIssuer<'static, rcgen::KeyPair>,
    names: &[&str],
    usage: rcgen::ExtendedKeyUsagePurpose,
) -> (rcgen::Certificate, rcgen::KeyPair) {
    let mut params =
        rcgen::CertificateParams::new(names.iter().map(|s| s.to_string()).collect::<Vec<_>>())
            .unwrap();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, names[0]);
    params.extended_key_usages = vec![usage];
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = params.signed_by(&key, ca).unwrap();
    (cert, key)
}

fn pki() -> Pki {
    let ca = new_ca("hooks test CA");
    let (cert, key) = leaf(
        &ca,
        &["127.0.0.1", "localhost"],
        rcgen::ExtendedKeyUsagePurpose::ServerAuth,
    );
    Pki {
        ca_pem: ca.pem(),
        server_chain: vec![cert.der().clone()],
        server_key_der: key.serialize_der(),
        ca_issuer: ca,
    }
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn server_tls(pki: &Pki, client_ca_pem: Option<&str>) -> rustls::ServerConfig {
    let builder = rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .unwrap();
    let builder = match client_ca_pem {
        None => builder.with_no_client_auth(),
        Some(pem) => {
            let mut roots = rustls::RootCertStore::empty();
            for cert in pem_certs(pem) {
                roots.add(cert).unwrap();
            }
            let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
                Arc::new(roots),
                provider(),
            )
            .build()
            .unwrap();
            builder.with_client_cert_verifier(verifier)
        }
    };
    builder
        .with_single_cert(
            pki.server_chain.clone(),
            rustls::pki_types::PrivateKeyDer::Pkcs8(pki.server_key_der.clone().into()),
        )
        .unwrap()
}

fn pem_certs(pem: &str) -> Vec<rustls::pki_types::CertificateDer<'static>> {
    use rustls::pki_types::pem::PemObject;
    rustls::pki_types::CertificateDer::pem_slice_iter(pem.as_bytes())
        .map(|c| c.unwrap())
        .collect()
}

#[tokio::test]
async fn tls_with_custom_ca() {
    let pki = pki();
    let server =
        TestServer::start_tls(server_tls(&pki, None), |_| Reply::new(200, "{\"tls\":1}")).await;

    let mut ep = endpoint(server.https_url("/sync"));
    ep.ca_bundle_pem = Some(pki.ca_pem.clone().into_bytes());
    let client = HookClient::new(ep).unwrap();
    for _ in 0..3 {
        assert_eq!(
            client.call(b"{}".to_vec(), None).await.unwrap(),
            "{\"tls\":1}"
        );
    }
    assert_eq!(server.connections(), 1);
}

#[tokio::test]
async fn tls_without_matching_ca_fails() {
    let pki = pki();
    let server = TestServer::start_tls(server_tls(&pki, None), |_| Reply::new(200, "{}")).await;

    // Built-in roots do not know the test CA.
    let client = HookClient::new(endpoint(server.https_url("/"))).unwrap();
    let err = client.call(b"{}".to_vec(), None).await.unwrap_err();
    assert!(matches!(err, HookError::Tls { .. }), "{err:?}");

    // Nor does another CA.
    let mut ep = endpoint(server.https_url("/"));
    ep.ca_bundle_pem = Some(new_ca("some other CA").pem().into_bytes());
    let client = HookClient::new(ep).unwrap();
    let err = client.call(b"{}".to_vec(), None).await.unwrap_err();
    assert!(matches!(err, HookError::Tls { .. }), "{err:?}");
    assert!(err.to_string().contains("certificate"), "{err}");
    assert!(server.seen().is_empty());
}

#[tokio::test]
async fn tls_hostname_must_match() {
    let mut pki = pki();
    // Replace the server certificate with one for another name, still issued
    // by the trusted CA.
    let (cert, key) = leaf(
        &pki.ca_issuer,
        &["other-host.test"],
        rcgen::ExtendedKeyUsagePurpose::ServerAuth,
    );
    pki.server_chain = vec![cert.der().clone()];
    pki.server_key_der = key.serialize_der();
    let server = TestServer::start_tls(server_tls(&pki, None), |_| Reply::new(200, "{}")).await;

    let mut ep = endpoint(server.https_url("/"));
    ep.ca_bundle_pem = Some(pki.ca_pem.clone().into_bytes());
    let client = HookClient::new(ep).unwrap();
    let err = client.call(b"{}".to_vec(), None).await.unwrap_err();
    assert!(matches!(err, HookError::Tls { .. }), "{err:?}");
}

#[tokio::test]
async fn mutual_tls() {
    let pki = pki();
    let client_ca = new_ca("client CA");
    let (client_cert, client_key) = leaf(
        &client_ca,
        &["metacontroller"],
        rcgen::ExtendedKeyUsagePurpose::ClientAuth,
    );
    let server = TestServer::start_tls(server_tls(&pki, Some(&client_ca.pem())), |_| {
        Reply::new(200, "{\"mtls\":true}")
    })
    .await;

    // With the client certificate.
    let mut ep = endpoint(server.https_url("/sync"));
    ep.ca_bundle_pem = Some(pki.ca_pem.clone().into_bytes());
    ep.client_cert_pem = Some((
        client_cert.pem().into_bytes(),
        client_key.serialize_pem().into_bytes(),
    ));
    assert!(!format!("{ep:?}").contains("PRIVATE KEY"), "{ep:?}");
    let client = HookClient::new(ep).unwrap();
    assert_eq!(
        client.call(b"{}".to_vec(), None).await.unwrap(),
        "{\"mtls\":true}"
    );

    // Without it the server refuses the session.
    let mut ep = endpoint(server.https_url("/sync"));
    ep.ca_bundle_pem = Some(pki.ca_pem.clone().into_bytes());
    let client = HookClient::new(ep).unwrap();
    let err = client.call(b"{}".to_vec(), None).await.unwrap_err();
    assert!(matches!(err, HookError::Tls { .. }), "{err:?}");

    // A certificate from a CA the server does not trust is refused too.
    let (rogue_cert, rogue_key) = leaf(
        &pki.ca_issuer,
        &["rogue"],
        rcgen::ExtendedKeyUsagePurpose::ClientAuth,
    );
    let mut ep = endpoint(server.https_url("/sync"));
    ep.ca_bundle_pem = Some(pki.ca_pem.clone().into_bytes());
    ep.client_cert_pem = Some((
        rogue_cert.pem().into_bytes(),
        rogue_key.serialize_pem().into_bytes(),
    ));
    let client = HookClient::new(ep).unwrap();
    let err = client.call(b"{}".to_vec(), None).await.unwrap_err();
    assert!(matches!(err, HookError::Tls { .. }), "{err:?}");

    assert_eq!(server.seen().len(), 1);
}

#[tokio::test]
async fn tls_1_2_only_server_is_accepted() {
    let pki = pki();
    let config = rustls::ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS12])
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            pki.server_chain.clone(),
            rustls::pki_types::PrivateKeyDer::Pkcs8(pki.server_key_der.clone().into()),
        )
        .unwrap();
    let server = TestServer::start_tls(config, |_| Reply::new(200, "{}")).await;
    let mut ep = endpoint(server.https_url("/"));
    ep.ca_bundle_pem = Some(pki.ca_pem.clone().into_bytes());
    let client = HookClient::new(ep).unwrap();
    client.call(b"{}".to_vec(), None).await.unwrap();
}

#[test]
fn unusable_tls_material_is_invalid_config() {
    let mut ep = HookEndpoint::new("https://127.0.0.1:1/");
    ep.ca_bundle_pem = Some(b"-----BEGIN NOTHING-----\n-----END NOTHING-----\n".to_vec());
    let err = HookClient::new(ep).unwrap_err();
    assert!(matches!(err, HookError::InvalidConfig { .. }), "{err:?}");

    let mut ep = HookEndpoint::new("https://127.0.0.1:1/");
    ep.client_cert_pem = Some((b"garbage".to_vec(), b"garbage".to_vec()));
    let err = HookClient::new(ep).unwrap_err();
    assert!(matches!(err, HookError::InvalidConfig { .. }), "{err:?}");
}
