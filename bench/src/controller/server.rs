//! The API server of one run: the embedded one, in this process, or a real
//! control plane (etcd, kube-apiserver, kube-controller-manager) from
//! `metacontroller-testbed`.
//!
//! Both give the harness a client, the contender a kubeconfig (the floor a
//! client of the contender's own), and the requests the contender made:
//!
//! * embedded: the server's request counters count everyone, so the run
//!   subtracts what the harness's client counted itself;
//! * real: the harness uses the admin client certificate, the contender and
//!   the floor a ServiceAccount token (`bench-contender`, bound to
//!   `cluster-admin`; RBAC is on), and the audit log ([`super::audit`]) leaves
//!   out the admin and the control plane's own users, so what it counts is
//!   the contender's alone.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result};
use metacontroller_apiserver::{ApiServer, Config};
use metacontroller_testbed::{ClusterKind, RealCluster};
use parking_lot::Mutex;
use serde_json::json;

use super::api::{Counts, Rest};
use super::audit::{self, AuditLog};

/// ServiceAccount (namespace `default`) the contender and the floor act as
/// on a real cluster.
pub const CONTENDER_ACCOUNT: &str = "bench-contender";

/// Users of the control plane itself, left out of the audit log: the
/// controller manager (its informers) and the API server's loopback client.
const CONTROL_PLANE_USERS: &[&str] = &["system:kube-controller-manager", "system:apiserver"];

/// Groups of the control plane, left out of the audit log: the controller
/// manager runs each controller (garbage collector, namespaces,
/// ServiceAccounts) as a ServiceAccount of `kube-system`
/// (`--use-service-account-credentials`).
const CONTROL_PLANE_GROUPS: &[&str] = &["system:serviceaccounts:kube-system"];

/// A running server.
pub enum Server {
    /// The embedded API server, in process.
    Embedded(ApiServer),
    /// A real control plane (etcd, kube-apiserver, kube-controller-manager).
    Real(Box<Real>),
}

/// A real control plane and what the harness keeps about it.
pub struct Real {
    cluster: RealCluster,
    audit: Mutex<AuditLog>,
    contender_kubeconfig: String,
}

impl Server {
    /// Starts a fresh server of `kind`; `history` is the embedded server's
    /// watch history length. A real cluster keeps its files (audit log,
    /// component logs) under `dir`.
    pub async fn start(kind: ClusterKind, history: usize, dir: &Path) -> Result<Server> {
        match kind {
            ClusterKind::Embedded => Ok(Server::Embedded(
                ApiServer::start(Config {
                    history_limit: history,
                    ..Config::default()
                })
                .await?,
            )),
            ClusterKind::Real => Ok(Server::Real(Box::new(Real::start(dir).await?))),
        }
    }

    /// Which kind of server this is.
    pub fn kind(&self) -> ClusterKind {
        match self {
            Server::Embedded(_) => ClusterKind::Embedded,
            Server::Real(_) => ClusterKind::Real,
        }
    }

    /// The harness's client.
    pub async fn harness_client(&self) -> Result<Rest> {
        match self {
            Server::Embedded(s) => Ok(Rest::new(&s.url())),
            Server::Real(r) => Ok(Rest::with_kube(r.cluster.client().await?)),
        }
    }

    /// A client with the contender's identity (the floor's writes go through
    /// it and count as the contender's).
    pub async fn contender_client(&self) -> Result<Rest> {
        match self {
            Server::Embedded(s) => Ok(Rest::new(&s.url())),
            Server::Real(r) => Ok(Rest::with_kube(
                metacontroller_testbed::cluster::client_for(&r.contender_kubeconfig).await?,
            )),
        }
    }

    /// Writes the contender's kubeconfig to `path`.
    pub fn write_contender_kubeconfig(&self, path: &Path) -> Result<()> {
        match self {
            Server::Embedded(s) => s.write_kubeconfig(path)?,
            Server::Real(r) => std::fs::write(path, &r.contender_kubeconfig)
                .with_context(|| format!("writing {}", path.display()))?,
        }
        Ok(())
    }

    /// Requests counted so far, by verb and resource.
    pub fn counts(&self) -> Counts {
        match self {
            Server::Embedded(s) => s.counters().snapshot(),
            Server::Real(r) => {
                let mut audit = r.audit.lock();
                if let Err(err) = audit.poll() {
                    eprintln!("controller-bench: reading the audit log: {err}");
                }
                audit.counts()
            }
        }
    }

    /// Whether [`Self::counts`] includes the harness's own requests (which
    /// must then be subtracted).
    pub fn counts_include_harness(&self) -> bool {
        matches!(self, Server::Embedded(_))
    }

    /// Where a real cluster's logs are.
    pub fn log_dir(&self) -> Option<PathBuf> {
        match self {
            Server::Embedded(_) => None,
            Server::Real(r) => Some(r.cluster.dir().to_owned()),
        }
    }
}

impl Real {
    async fn start(dir: &Path) -> Result<Real> {
        std::fs::create_dir_all(dir)?;
        let policy = dir.join("audit-policy.yaml");
        let log = dir.join("audit.log");
        let mut excluded = CONTROL_PLANE_USERS.to_vec();
        excluded.push(metacontroller_testbed::pki::ADMIN_USER);
        std::fs::write(&policy, audit::policy(&excluded, CONTROL_PLANE_GROUPS))?;
        let cluster = RealCluster::start_with(metacontroller_testbed::Options {
            dir: Some(dir.join("cluster")),
            apiserver_flags: audit::apiserver_flags(&policy, &log),
        })
        .await
        .context("starting the real control plane")?;
        let admin = Arc::new(Rest::with_kube(cluster.client().await?));
        let token = contender_token(&admin).await?;
        Ok(Real {
            contender_kubeconfig: cluster.token_kubeconfig(CONTENDER_ACCOUNT, &token),
            cluster,
            audit: Mutex::new(AuditLog::new(log)),
        })
    }
}

/// Creates the contender's ServiceAccount, binds it to `cluster-admin` and
/// asks for a token (TokenRequest API, `serviceaccounts/token`).
async fn contender_token(admin: &Rest) -> Result<String> {
    admin
        .create(
            "/api/v1/namespaces/default/serviceaccounts",
            &json!({
                "apiVersion": "v1",
                "kind": "ServiceAccount",
                "metadata": {"name": CONTENDER_ACCOUNT},
            }),
        )
        .await?;
    admin
        .create(
            "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings",
            &json!({
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "ClusterRoleBinding",
                "metadata": {"name": CONTENDER_ACCOUNT},
                "roleRef": {
                    "apiGroup": "rbac.authorization.k8s.io",
                    "kind": "ClusterRole",
                    "name": "cluster-admin",
                },
                "subjects": [{
                    "kind": "ServiceAccount",
                    "name": CONTENDER_ACCOUNT,
                    "namespace": "default",
                }],
            }),
        )
        .await?;
    let answer = admin
        .create(
            &format!("/api/v1/namespaces/default/serviceaccounts/{CONTENDER_ACCOUNT}/token"),
            &json!({
                "apiVersion": "authentication.k8s.io/v1",
                "kind": "TokenRequest",
                "spec": {"expirationSeconds": 86_400},
            }),
        )
        .await
        .context("requesting the contender's token")?;
    answer["status"]["token"]
        .as_str()
        .map(str::to_owned)
        .context("TokenRequest without status.token")
}
