//! The work-queue families client-go reports through controller-runtime's
//! metrics provider (`sigs.k8s.io/controller-runtime/pkg/metrics/workqueue.go`,
//! `k8s.io/client-go/util/workqueue/metrics.go`): `workqueue_depth`,
//! `workqueue_adds_total`, `workqueue_queue_duration_seconds`,
//! `workqueue_work_duration_seconds`, `workqueue_unfinished_work_seconds`,
//! `workqueue_longest_running_processor_seconds` and
//! `workqueue_retries_total`, each labelled `name` and `controller` (both
//! the queue's name).

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Instant;

use parking_lot::Mutex;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

/// The label set of every work-queue series.
pub(crate) type QueueLabels = Vec<(&'static str, String)>;

fn duration_histogram() -> Histogram {
    // client-go: prometheus.ExponentialBuckets(10e-9, 10, 12).
    Histogram::new(exponential_buckets(10e-9, 10.0, 12))
}

type Durations = Family<QueueLabels, Histogram, fn() -> Histogram>;
type FloatGauge = Gauge<f64, AtomicU64>;

/// The work-queue families, registered once per registry.
#[derive(Clone)]
pub struct WorkqueueMetrics {
    depth: Family<QueueLabels, Gauge>,
    adds: Family<QueueLabels, Counter>,
    latency: Durations,
    work_duration: Durations,
    unfinished: Family<QueueLabels, FloatGauge>,
    longest_running: Family<QueueLabels, FloatGauge>,
    retries: Family<QueueLabels, Counter>,
}

impl WorkqueueMetrics {
    /// Registers the families on `registry`.
    pub fn register(registry: &mut Registry) -> Self {
        let metrics = WorkqueueMetrics {
            depth: Family::default(),
            adds: Family::default(),
            latency: Family::new_with_constructor(duration_histogram as fn() -> Histogram),
            work_duration: Family::new_with_constructor(duration_histogram as fn() -> Histogram),
            unfinished: Family::default(),
            longest_running: Family::default(),
            retries: Family::default(),
        };
        registry.register(
            "workqueue_depth",
            "Current depth of workqueue",
            metrics.depth.clone(),
        );
        registry.register(
            "workqueue_adds",
            "Total number of adds handled by workqueue",
            metrics.adds.clone(),
        );
        registry.register(
            "workqueue_queue_duration_seconds",
            "How long in seconds an item stays in workqueue before being requested",
            metrics.latency.clone(),
        );
        registry.register(
            "workqueue_work_duration_seconds",
            "How long in seconds processing an item from workqueue takes",
            metrics.work_duration.clone(),
        );
        registry.register(
            "workqueue_unfinished_work_seconds",
            "How many seconds of work has been done that is in progress and hasn't been \
             observed by work_duration. Large values indicate stuck threads. One can deduce \
             the number of stuck threads by observing the rate at which this increases",
            metrics.unfinished.clone(),
        );
        registry.register(
            "workqueue_longest_running_processor_seconds",
            "How many seconds has the longest running processor for workqueue been running",
            metrics.longest_running.clone(),
        );
        registry.register(
            "workqueue_retries",
            "Total number of retries handled by workqueue",
            metrics.retries.clone(),
        );
        metrics
    }

    /// The series of the queue called `name`; created at zero, like
    /// client-go does when a named queue is made.
    pub fn queue<K: Clone + Eq + Hash>(&self, name: &str) -> QueueMetrics<K> {
        let labels: QueueLabels = vec![("name", name.to_owned()), ("controller", name.to_owned())];
        QueueMetrics {
            depth: self.depth.get_or_create(&labels).clone(),
            adds: self.adds.get_or_create(&labels).clone(),
            latency: self.latency.get_or_create(&labels).clone(),
            work_duration: self.work_duration.get_or_create(&labels).clone(),
            unfinished: self.unfinished.get_or_create(&labels).clone(),
            longest_running: self.longest_running.get_or_create(&labels).clone(),
            retries: self.retries.get_or_create(&labels).clone(),
            times: Arc::new(Mutex::new(Times {
                added: HashMap::new(),
                processing: HashMap::new(),
            })),
        }
    }
}

struct Times<K> {
    added: HashMap<K, Instant>,
    processing: HashMap<K, Instant>,
}

/// One queue's series, fed by the queue (client-go's `queueMetrics`).
pub struct QueueMetrics<K> {
    depth: Gauge,
    adds: Counter,
    latency: Histogram,
    work_duration: Histogram,
    unfinished: FloatGauge,
    longest_running: FloatGauge,
    retries: Counter,
    times: Arc<Mutex<Times<K>>>,
}

impl<K: Clone + Eq + Hash> QueueMetrics<K> {
    /// `key` became dirty (counted once until it is handed out).
    pub(crate) fn add(&self, key: &K) {
        self.adds.inc();
        self.depth.inc();
        self.times
            .lock()
            .added
            .entry(key.clone())
            .or_insert_with(Instant::now);
    }

    /// `key` was handed to a worker.
    pub(crate) fn get(&self, key: &K) {
        self.depth.dec();
        let now = Instant::now();
        let mut times = self.times.lock();
        if let Some(added) = times.added.remove(key) {
            self.latency
                .observe(now.duration_since(added).as_secs_f64());
        }
        times.processing.insert(key.clone(), now);
    }

    /// The worker finished `key`.
    pub(crate) fn done(&self, key: &K) {
        if let Some(started) = self.times.lock().processing.remove(key) {
            self.work_duration.observe(started.elapsed().as_secs_f64());
        }
    }

    /// A delayed add (client-go counts every `AddAfter` as a retry).
    pub(crate) fn retry(&self) {
        self.retries.inc();
    }

    /// Sets the in-progress gauges from the keys being processed now.
    pub(crate) fn update_unfinished(&self) {
        let now = Instant::now();
        let times = self.times.lock();
        let mut total = 0.0;
        let mut longest: f64 = 0.0;
        for started in times.processing.values() {
            let seconds = now.duration_since(*started).as_secs_f64();
            total += seconds;
            longest = longest.max(seconds);
        }
        drop(times);
        self.unfinished.set(total);
        self.longest_running.set(longest);
    }
}
