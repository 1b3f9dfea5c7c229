//! An embedded, in-process Kubernetes-compatible API server.
//!
//! It serves the Kubernetes REST API over HTTP/1.1 (optionally HTTPS with a
//! generated self-signed certificate) with the semantics real clients rely
//! on: resourceVersions, watch with bookmarks and `410 Gone`, optimistic
//! concurrency, the status and scale subresources, finalizers, owner-reference
//! garbage collection, namespace lifecycle, CustomResourceDefinitions with
//! live discovery and structural schemas (pruning, defaulting, validation
//! and `fieldValidation`; see [`schema`]), JSON/merge/strategic-merge
//! patches, and errors as `Status`
//! objects. `kubectl`, client-go, kube-rs and the Python `kubernetes` client
//! use it unchanged through the kubeconfig it writes.
//!
//! It is the test bed, the benchmark bed and the one-command dev mode of
//! metacontroller-rs. It must not depend on the controller engine or on any
//! Kubernetes client library: it is the server, and clients are tested
//! against it.
//!
//! Storage is in memory behind [`store::Inner`]; every write passes through
//! one place ([`store::WriteLog`]), where [`Config::data_dir`] adds a durable
//! log and snapshots ([`persist`]). Faults can be injected from code
//! ([`ApiServer::faults`]) or over HTTP (`/admin/*`, with [`Config::admin`]).

mod admin;
mod builtins;
pub use builtins::builtin_resources;
mod caches;
mod crd;
mod discovery;
pub mod error;
pub mod faults;
#[cfg(test)]
mod fixtures;
mod http;
mod lifecycle;
mod list;
mod managed_fields;
mod meta;
mod negotiate;
mod openapi;
pub mod persist;
mod printers;
mod protobuf;
mod query;
pub mod registry;
mod response;
mod scale;
pub mod schema;
mod server_side_apply;
mod state;
pub mod store;
mod table;
mod version;
mod watch;
mod write;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use parking_lot::Mutex;
use serde_json::json;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch as tokio_watch};
use tokio::task::JoinHandle;

pub use error::{ApiError, Reason};
pub use faults::{Fault, FaultKind, Faults};
pub use registry::{GroupResource, ResourceInfo};

pub use state::{Counters, Shared, WRITE_VERBS};
pub use version::{VERSION_MAJOR, VERSION_MINOR};

/// Server settings.
#[derive(Clone, Debug)]
pub struct Config {
    /// Where to listen; port 0 picks a free port.
    pub bind: SocketAddr,
    /// Serve HTTPS with a freshly generated self-signed certificate.
    pub tls: bool,
    /// Events kept per resource for watches; older positions get 410 Gone.
    pub history_limit: usize,
    /// At most about this many bytes of objects (as JSON) kept per resource
    /// for watches, whatever `history_limit` allows (see [`store`]).
    pub history_bytes: usize,
    /// Keep every acknowledged write in this directory across restarts
    /// (see [`persist`]); `None` keeps everything in memory only.
    pub data_dir: Option<PathBuf>,
    /// How writes to `data_dir` are made durable and when the log is compacted.
    pub persistence: persist::Options,
    /// Serve `/admin/faults`, `/admin/close-watches` and `/admin/compact`
    /// (fault injection over HTTP; see [`faults`]).
    pub admin: bool,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            bind: SocketAddr::from(([127, 0, 0, 1], 0)),
            tls: false,
            history_limit: 100_000,
            history_bytes: store::DEFAULT_HISTORY_BYTES,
            data_dir: None,
            persistence: persist::Options::default(),
            admin: false,
        }
    }
}

/// Errors starting the server.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The listening socket cannot be opened.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address asked for.
        addr: SocketAddr,
        /// Why it failed.
        source: std::io::Error,
    },
    /// The self-signed certificate cannot be made.
    #[error("cannot generate the TLS certificate: {0}")]
    Tls(String),
    /// The data directory cannot be used: unreadable, locked by another
    /// server, or damaged somewhere other than a torn final write (the error
    /// names the file and byte offset).
    #[error("cannot load the data directory: {0}")]
    Persistence(#[from] persist::PersistError),
}

/// A running server. Dropping it stops it.
pub struct ApiServer {
    shared: Arc<Shared>,
    addr: SocketAddr,
    ca_pem: Option<String>,
    stop: tokio_watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
    persistence: Option<persist::Persistence>,
}

impl ApiServer {
    /// Starts a server with the built-in resources and the initial namespaces.
    pub async fn start(config: Config) -> Result<Self, StartError> {
        let listener = TcpListener::bind(config.bind)
            .await
            .map_err(|source| StartError::Bind {
                addr: config.bind,
                source,
            })?;
        let addr = listener.local_addr().map_err(|source| StartError::Bind {
            addr: config.bind,
            source,
        })?;
        let (bg_tx, bg_rx) = mpsc::unbounded_channel();
        let resources = store::Resources::new(builtins::builtin_resources());
        let mut inner = store::Inner::new(resources, config.history_limit, bg_tx.clone());
        inner.set_history_bytes(config.history_bytes);
        let persistence = match &config.data_dir {
            Some(dir) => {
                let (p, loaded) = persist::Persistence::open(dir, config.persistence.clone())?;
                persist::restore(&mut inner, loaded, &bg_tx);
                inner.set_log(p.writer());
                Some(p)
            }
            None => None,
        };
        drop(bg_tx);
        let ns_info = inner
            .resources
            .get("", "v1", "namespaces")
            .cloned()
            .expect("namespaces are built in");
        for ns in builtins::INITIAL_NAMESPACES {
            let gr = ns_info.group_resource();
            if inner.get(&gr, &(String::new(), ns.to_string())).is_some() {
                continue;
            }
            write::create(
                &mut inner,
                &ns_info,
                None,
                json!({"metadata": {"name": ns}}),
                false,
            )
            .expect("initial namespaces are valid");
        }
        let scheme = if config.tls { "https" } else { "http" };
        let shared = Arc::new(Shared {
            inner: Mutex::new(inner),
            counters: Counters::default(),
            faults: Faults::default(),
            snapshots: Mutex::new(caches::Snapshots::new()),
            docs: caches::DocCache::default(),
            watch_closer: tokio_watch::channel(0).0,
            address: addr.to_string(),
        });
        let (tls, ca_pem) = if config.tls {
            let (acceptor, ca) = tls_acceptor()?;
            (Some(acceptor), Some(ca))
        } else {
            (None, None)
        };
        let _ = scheme;
        let (stop, stop_rx) = tokio_watch::channel(false);
        let mut router = http::router(shared.clone());
        if config.admin {
            router = admin::router(shared.clone()).merge(router);
        }
        let mut tasks = vec![
            tokio::spawn(serve(listener, router, tls, stop_rx)),
            tokio::spawn(lifecycle::run(shared.clone(), bg_rx)),
        ];
        if let Some(p) = &persistence {
            tasks.push(tokio::spawn(persist::run_compactor(
                p.clone(),
                shared.clone(),
            )));
        }
        Ok(Self {
            shared,
            addr,
            ca_pem,
            stop,
            tasks,
            persistence,
        })
    }

    /// The address the server listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:<port>` (or https).
    pub fn url(&self) -> String {
        let scheme = if self.ca_pem.is_some() {
            "https"
        } else {
            "http"
        };
        format!("{scheme}://{}", self.addr)
    }

    /// PEM of the self-signed certificate when serving HTTPS.
    pub fn ca_pem(&self) -> Option<&str> {
        self.ca_pem.as_deref()
    }

    /// Requests seen so far, by verb and resource.
    pub fn counters(&self) -> &Counters {
        &self.shared.counters
    }

    /// The fault rules; adding one affects the next matching request.
    pub fn faults(&self) -> &Faults {
        &self.shared.faults
    }

    /// Direct access to the shared state (tests and embedding).
    pub fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }

    /// The open data directory, when started with one.
    pub fn persistence(&self) -> Option<&persist::Persistence> {
        self.persistence.as_ref()
    }

    /// Forgets watch history up to the current resourceVersion, so that any
    /// watch resuming from an older one gets 410 Gone.
    pub fn compact(&self) -> u64 {
        let mut inner = self.shared.inner.lock();
        let rv = inner.current_rv();
        inner.compact(rv);
        rv
    }

    /// Ends every open watch stream (clients must re-watch).
    pub fn close_watches(&self) {
        self.shared.watch_closer.send_modify(|g| *g += 1);
    }

    /// A kubeconfig that kubectl, kube-rs and the Python client use unchanged.
    pub fn kubeconfig(&self) -> String {
        use base64::Engine;
        let cluster = match &self.ca_pem {
            Some(ca) => format!(
                "    server: {}\n    certificate-authority-data: {}\n",
                self.url(),
                base64::engine::general_purpose::STANDARD.encode(ca)
            ),
            None => format!("    server: {}\n", self.url()),
        };
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: metacontroller-dev\n  cluster:\n{cluster}contexts:\n- name: metacontroller-dev\n  context:\n    cluster: metacontroller-dev\n    namespace: default\n    user: metacontroller-dev\ncurrent-context: metacontroller-dev\npreferences: {{}}\nusers:\n- name: metacontroller-dev\n  user:\n    token: metacontroller-dev\n"
        )
    }

    /// Writes [`ApiServer::kubeconfig`] to `path`.
    pub fn write_kubeconfig(&self, path: &Path) -> std::io::Result<()> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        std::fs::write(path, self.kubeconfig())
    }

    /// Stops serving; open connections are closed. With a data directory,
    /// writing stops too and the directory is released for the next start.
    pub fn stop(&self) {
        let _ = self.stop.send(true);
        for t in &self.tasks {
            t.abort();
        }
        if let Some(p) = &self.persistence {
            p.close();
        }
    }
}

impl Drop for ApiServer {
    fn drop(&mut self) {
        self.stop();
    }
}

fn tls_acceptor() -> Result<(tokio_rustls::TlsAcceptor, String), StartError> {
    let names = vec!["localhost".to_string(), "127.0.0.1".to_string()];
    let rcgen::CertifiedKey { cert, signing_key } =
        rcgen::generate_simple_self_signed(names).map_err(|e| StartError::Tls(e.to_string()))?;
    let cert_der = cert.der().clone();
    let key_der = rustls::pki_types::PrivateKeyDer::Pkcs8(
        rustls::pki_types::PrivatePkcs8KeyDer::from(signing_key.serialize_der()),
    );
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| StartError::Tls(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(vec![cert_der], key_der)
        .map_err(|e| StartError::Tls(e.to_string()))?;
    let mut config = config;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok((
        tokio_rustls::TlsAcceptor::from(Arc::new(config)),
        cert.pem(),
    ))
}

async fn serve(
    listener: TcpListener,
    router: axum::Router,
    tls: Option<tokio_rustls::TlsAcceptor>,
    mut stop: tokio_watch::Receiver<bool>,
) {
    let mut conns = tokio::task::JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let Ok((tcp, _)) = accepted else { continue };
                let _ = tcp.set_nodelay(true);
                let svc = hyper_util::service::TowerToHyperService::new(router.clone());
                let tls = tls.clone();
                conns.spawn(async move {
                    let builder = hyper::server::conn::http1::Builder::new();
                    match tls {
                        Some(acceptor) => {
                            if let Ok(stream) = acceptor.accept(tcp).await {
                                let _ = builder
                                    .serve_connection(hyper_util::rt::TokioIo::new(stream), svc)
                                    .await;
                            }
                        }
                        None => {
                            let _ = builder
                                .serve_connection(hyper_util::rt::TokioIo::new(tcp), svc)
                                .await;
                        }
                    }
                });
            }
            _ = stop.changed() => break,
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
        }
    }
    conns.abort_all();
}
