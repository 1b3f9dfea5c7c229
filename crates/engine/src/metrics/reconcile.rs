//! controller-runtime's per-controller families
//! (`sigs.k8s.io/controller-runtime/pkg/internal/controller/metrics/metrics.go`),
//! reported for Metacontroller's two reconcilers, `composite-metacontroller`
//! and `decorator-metacontroller`.

use std::time::Duration;

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

type ControllerLabels = Vec<(&'static str, String)>;

/// controller-runtime's `controller_runtime_reconcile_time_seconds` buckets.
const RECONCILE_TIME_BUCKETS: [f64; 40] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.35, 0.4, 0.45, 0.5, 0.6, 0.7, 0.8, 0.9,
    1.0, 1.25, 1.5, 1.75, 2.0, 2.5, 3.0, 3.5, 4.0, 4.5, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0, 15.0, 20.0,
    25.0, 30.0, 40.0, 50.0, 60.0,
];

fn reconcile_time_histogram() -> Histogram {
    Histogram::new(RECONCILE_TIME_BUCKETS)
}

/// How a reconcile ended (the `result` label).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReconcileResult {
    /// Done; the key is forgotten.
    Success,
    /// Failed; re-queued with back-off.
    Error,
    /// Asked to run again with back-off.
    Requeue,
    /// Asked to run again after a delay.
    RequeueAfter,
}

impl ReconcileResult {
    const ALL: [ReconcileResult; 4] = [
        ReconcileResult::Success,
        ReconcileResult::Error,
        ReconcileResult::Requeue,
        ReconcileResult::RequeueAfter,
    ];

    fn label(self) -> &'static str {
        match self {
            ReconcileResult::Success => "success",
            ReconcileResult::Error => "error",
            ReconcileResult::Requeue => "requeue",
            ReconcileResult::RequeueAfter => "requeue_after",
        }
    }
}

/// The controller-runtime families, registered once per registry.
#[derive(Clone)]
pub struct ReconcileMetrics {
    total: Family<ControllerLabels, Counter>,
    errors: Family<ControllerLabels, Counter>,
    terminal_errors: Family<ControllerLabels, Counter>,
    panics: Family<ControllerLabels, Counter>,
    time: Family<ControllerLabels, Histogram, fn() -> Histogram>,
    max_concurrent: Family<ControllerLabels, Gauge>,
    active_workers: Family<ControllerLabels, Gauge>,
}

impl ReconcileMetrics {
    /// Registers the families on `registry`.
    pub fn register(registry: &mut Registry) -> Self {
        let metrics = ReconcileMetrics {
            total: Family::default(),
            errors: Family::default(),
            terminal_errors: Family::default(),
            panics: Family::default(),
            time: Family::new_with_constructor(reconcile_time_histogram as fn() -> Histogram),
            max_concurrent: Family::default(),
            active_workers: Family::default(),
        };
        registry.register(
            "controller_runtime_reconcile",
            "Total number of reconciliations per controller",
            metrics.total.clone(),
        );
        registry.register(
            "controller_runtime_reconcile_errors",
            "Total number of reconciliation errors per controller",
            metrics.errors.clone(),
        );
        registry.register(
            "controller_runtime_terminal_reconcile_errors",
            "Total number of terminal reconciliation errors per controller",
            metrics.terminal_errors.clone(),
        );
        registry.register(
            "controller_runtime_reconcile_panics",
            "Total number of reconciliation panics per controller",
            metrics.panics.clone(),
        );
        registry.register(
            "controller_runtime_reconcile_time_seconds",
            "Length of time per reconciliation per controller",
            metrics.time.clone(),
        );
        registry.register(
            "controller_runtime_max_concurrent_reconciles",
            "Maximum number of concurrent reconciles per controller",
            metrics.max_concurrent.clone(),
        );
        registry.register(
            "controller_runtime_active_workers",
            "Number of currently used workers per controller",
            metrics.active_workers.clone(),
        );
        metrics
    }

    /// The series of `controller`, initialised like controller-runtime does
    /// when a controller starts: every counter at zero, no active worker,
    /// `workers` concurrent reconciles.
    pub fn controller(&self, controller: &str, workers: usize) -> ControllerMetrics {
        let labels: ControllerLabels = vec![("controller", controller.to_owned())];
        let total = ReconcileResult::ALL.map(|result| {
            let mut labels = labels.clone();
            labels.push(("result", result.label().to_owned()));
            self.total.get_or_create(&labels).clone()
        });
        self.terminal_errors.get_or_create(&labels).inc_by(0);
        self.panics.get_or_create(&labels).inc_by(0);
        self.max_concurrent
            .get_or_create(&labels)
            .set(i64::try_from(workers).unwrap_or(i64::MAX));
        ControllerMetrics {
            total,
            errors: self.errors.get_or_create(&labels).clone(),
            time: self.time.get_or_create(&labels).clone(),
            active_workers: self.active_workers.get_or_create(&labels).clone(),
        }
    }
}

/// One controller's series.
#[derive(Clone)]
pub struct ControllerMetrics {
    total: [Counter; 4],
    errors: Counter,
    time: Histogram,
    active_workers: Gauge,
}

impl ControllerMetrics {
    /// A worker starts a reconcile; it counts as active until the guard is
    /// dropped.
    pub fn active(&self) -> ActiveWorker {
        self.active_workers.inc();
        ActiveWorker(self.active_workers.clone())
    }

    /// Records a reconcile that took `elapsed` and ended with `result`.
    pub fn observe(&self, elapsed: Duration, result: ReconcileResult) {
        if result == ReconcileResult::Error {
            self.errors.inc();
        }
        let index = ReconcileResult::ALL
            .iter()
            .position(|r| *r == result)
            .unwrap_or(0);
        self.total[index].inc();
        self.time.observe(elapsed.as_secs_f64());
    }
}

/// Counts a worker as active while alive (see [`ControllerMetrics::active`]).
pub struct ActiveWorker(Gauge);

impl Drop for ActiveWorker {
    fn drop(&mut self) {
        self.0.dec();
    }
}
