//! The metric families Metacontroller's process exposes besides the hook
//! metrics: those a controller-runtime manager registers.
//!
//! * [`ReconcileMetrics`]: `controller_runtime_*` for the two reconcilers
//!   of controller objects, `composite-metacontroller` and
//!   `decorator-metacontroller`;
//! * [`WorkqueueMetrics`]: `workqueue_*` for every work queue, named like
//!   Metacontroller's (`CompositeController-<name>`,
//!   `DecoratorController-<name>`, and the reconcilers' own);
//! * [`RestClientMetrics`]: `rest_client_requests_total`, a tower layer on
//!   the kube-rs client;
//! * [`ProcessCollector`]: `process_*`, read from `/proc` at each scrape;
//! * [`LeaderMetrics`]: `leader_election_master_status`, registered only
//!   with leader election.
//!
//! [`text`] renders a registry as OpenMetrics or Prometheus 0.0.4 text.
//!
//! Help texts are client-go's and controller-runtime's, except that
//! prometheus-client ends every registered help text with a period.

mod leader;
mod process;
mod reconcile;
mod rest;
pub mod text;
mod workqueue;

pub use leader::LeaderMetrics;
pub use process::ProcessCollector;
pub use reconcile::{ActiveWorker, ControllerMetrics, ReconcileMetrics, ReconcileResult};
pub use rest::{RestClientLayer, RestClientMetrics, RestClientService};
pub use workqueue::{QueueMetrics, WorkqueueMetrics};

use prometheus_client::registry::Registry;

/// The families the engine feeds itself (reconciles and work queues).
#[derive(Clone)]
pub struct EngineMetrics {
    /// `controller_runtime_*`.
    pub reconcile: ReconcileMetrics,
    /// `workqueue_*`.
    pub workqueue: WorkqueueMetrics,
}

impl EngineMetrics {
    /// Registers the families on `registry`.
    pub fn register(registry: &mut Registry) -> Self {
        EngineMetrics {
            reconcile: ReconcileMetrics::register(registry),
            workqueue: WorkqueueMetrics::register(registry),
        }
    }
}

/// Registers the families that do not depend on the engine: the REST
/// client's and the process's. The returned metrics give the client its
/// layer ([`RestClientMetrics::layer`]).
pub fn register_process(registry: &mut Registry) -> RestClientMetrics {
    registry.register_collector(Box::new(ProcessCollector));
    RestClientMetrics::register(registry)
}
