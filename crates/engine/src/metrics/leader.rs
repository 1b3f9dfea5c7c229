//! `leader_election_master_status{name}`: 1 while this process holds the
//! lease called `name`, 0 otherwise
//! (`sigs.k8s.io/controller-runtime/pkg/metrics/leaderelection.go`). It is
//! registered only when leader election runs; client-go sets it to 0 when
//! the elector is made and to 1 once the lease is acquired
//! (`k8s.io/client-go/tools/leaderelection/leaderelection.go`).

use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

/// The leader-election gauge.
#[derive(Clone, Debug)]
pub struct LeaderMetrics {
    status: Family<Vec<(&'static str, String)>, Gauge>,
}

impl LeaderMetrics {
    /// Registers the family on `registry`.
    pub fn register(registry: &mut Registry) -> Self {
        let status = Family::default();
        registry.register(
            "leader_election_master_status",
            "Gauge of if the reporting system is master of the relevant lease, 0 indicates \
             backup, 1 indicates master. 'name' is the string used to identify the lease. \
             Please make sure to group by name",
            status.clone(),
        );
        LeaderMetrics { status }
    }

    /// Records whether this process leads the lease `name`.
    pub fn set(&self, name: &str, leading: bool) {
        self.status
            .get_or_create(&vec![("name", name.to_owned())])
            .set(i64::from(leading));
    }
}
