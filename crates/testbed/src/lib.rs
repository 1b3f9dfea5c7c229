//! Test infrastructure: a real Kubernetes control plane on loopback, and the
//! one switch that runs a suite on it or on the embedded API server.
//!
//! The embedded server (`metacontroller-apiserver`) is the fast test bed; the
//! real control plane — etcd, kube-apiserver and kube-controller-manager,
//! built from their published Go modules by `testbed/kube/` — is the judge.
//! Every behaviour suite starts its server through [`TestCluster::start`],
//! which reads `MC_TEST_CLUSTER` (`embedded`, the default, or `real`), so the
//! same test runs unchanged on both.
//!
//! - [`binaries`]: builds and caches the Go binaries by version.
//! - [`helm`]: builds and caches `helm` the same way, for the chart tests.
//! - [`pki`]: the CA, serving and client certificates of one cluster.
//! - [`process`]: child processes that die with the process that started them.
//! - [`cluster`]: [`RealCluster`], one running control plane.
//!
//! This crate is for tests, benchmarks and people trying things out; no
//! product crate (engine, binary) may depend on it.

pub mod binaries;
pub mod cluster;
pub mod helm;
pub mod pki;
pub mod process;
mod switch;

use std::path::{Path, PathBuf};

pub use cluster::{Options, RealCluster};
pub use switch::{ClusterKind, TestCluster};

/// Why a control plane could not be built or started.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file or directory could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The Go build of the binaries failed.
    #[error("building the Kubernetes binaries: {0}")]
    Build(String),
    /// Generating the certificates failed.
    #[error("certificates: {0}")]
    Pki(String),
    /// A component could not be started.
    #[error("starting the control plane: {0}")]
    Start(String),
    /// Another process took a component's port first.
    #[error("{0}: its port was taken before it could bind it")]
    PortTaken(String),
    /// A component exited while starting.
    #[error("{component} exited during start; last lines of its log:\n{log_tail}")]
    Died {
        /// The component.
        component: String,
        /// The end of its log.
        log_tail: String,
    },
    /// A component did not become ready in time.
    #[error("{component} did not become ready in time; last lines of its log:\n{log_tail}")]
    NotReady {
        /// The component.
        component: String,
        /// The end of its log.
        log_tail: String,
    },
    /// `MC_TEST_CLUSTER` names no known server.
    #[error("MC_TEST_CLUSTER={0}: expected `embedded` or `real`")]
    UnknownKind(String),
}

impl Error {
    pub(crate) fn io(path: impl AsRef<Path>, source: std::io::Error) -> Error {
        Error::Io {
            path: path.as_ref().to_owned(),
            source,
        }
    }
}
