//! The switch between the two servers a suite can run on.

use metacontroller_apiserver::{ApiServer, Config};

use crate::{Error, RealCluster};

/// Which server a suite runs on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClusterKind {
    /// The in-process API server (`crates/apiserver`).
    Embedded,
    /// etcd + kube-apiserver + kube-controller-manager.
    Real,
}

impl ClusterKind {
    /// `MC_TEST_CLUSTER`: `embedded` (also when unset) or `real`.
    pub fn from_env() -> Result<ClusterKind, Error> {
        match std::env::var("MC_TEST_CLUSTER") {
            Err(_) => Ok(ClusterKind::Embedded),
            Ok(v) => v.parse(),
        }
    }

    /// `embedded` or `real`.
    pub fn name(self) -> &'static str {
        match self {
            ClusterKind::Embedded => "embedded",
            ClusterKind::Real => "real",
        }
    }
}

impl std::str::FromStr for ClusterKind {
    type Err = Error;

    fn from_str(s: &str) -> Result<ClusterKind, Error> {
        match s.trim() {
            "" | "embedded" => Ok(ClusterKind::Embedded),
            "real" => Ok(ClusterKind::Real),
            other => Err(Error::UnknownKind(other.to_owned())),
        }
    }
}

/// A running server of either kind.
pub enum TestCluster {
    /// The embedded API server, in process.
    Embedded(ApiServer),
    /// A real control plane.
    Real(Box<RealCluster>),
}

impl TestCluster {
    /// Starts the server `MC_TEST_CLUSTER` names.
    pub async fn start() -> Result<TestCluster, Error> {
        Self::start_kind(ClusterKind::from_env()?).await
    }

    /// Starts a fresh server of `kind`.
    pub async fn start_kind(kind: ClusterKind) -> Result<TestCluster, Error> {
        match kind {
            ClusterKind::Embedded => ApiServer::start(Config::default())
                .await
                .map(TestCluster::Embedded)
                .map_err(|e| Error::Start(e.to_string())),
            ClusterKind::Real => RealCluster::start()
                .await
                .map(|c| TestCluster::Real(Box::new(c))),
        }
    }

    /// Which kind of server this is.
    pub fn kind(&self) -> ClusterKind {
        match self {
            TestCluster::Embedded(_) => ClusterKind::Embedded,
            TestCluster::Real(_) => ClusterKind::Real,
        }
    }

    /// A kubeconfig with full rights.
    pub fn kubeconfig(&self) -> String {
        match self {
            TestCluster::Embedded(s) => s.kubeconfig(),
            TestCluster::Real(c) => c.kubeconfig().to_owned(),
        }
    }

    /// The embedded server, for what only it offers (request counters,
    /// fault injection, history compaction).
    pub fn embedded(&self) -> Option<&ApiServer> {
        match self {
            TestCluster::Embedded(s) => Some(s),
            TestCluster::Real(_) => None,
        }
    }

    /// The real control plane.
    pub fn real(&self) -> Option<&RealCluster> {
        match self {
            TestCluster::Embedded(_) => None,
            TestCluster::Real(c) => Some(c),
        }
    }

    /// A kube-rs client with full rights.
    pub async fn client(&self) -> Result<kube::Client, Error> {
        crate::cluster::client_for(&self.kubeconfig()).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_switch() {
        assert_eq!("real".parse::<ClusterKind>().unwrap(), ClusterKind::Real);
        assert_eq!(
            "embedded".parse::<ClusterKind>().unwrap(),
            ClusterKind::Embedded
        );
        assert!("kind".parse::<ClusterKind>().is_err());
    }
}
