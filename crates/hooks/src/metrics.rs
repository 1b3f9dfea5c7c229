//! Prometheus instrumentation of hook calls, with the series names
//! Metacontroller exports.
//!
//! Metacontroller registers one collector per (controller, hook, URL) whose
//! `url`, `controller_name` and `controller_type` labels are constant labels.
//! Registering the same metric name several times is not possible with
//! `prometheus-client` (the exposition would repeat the family), so here each
//! hook kind has one family per metric and those three labels are ordinary
//! labels of every series; the scraped result is the same.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

/// Prometheus' default histogram buckets (as used by the Go client's
/// `DefBuckets`).
const DEFAULT_BUCKETS: [f64; 11] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// Request method label value; hooks are always `POST`, reported in lower
/// case like Go's promhttp does.
const METHOD: &str = "post";

/// Which hook of a controller a call is for; names the metric families.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum HookKind {
    /// The `sync` hook.
    Sync,
    /// The `finalize` hook.
    Finalize,
    /// The `customize` hook.
    Customize,
}

impl HookKind {
    /// All kinds.
    pub const ALL: [HookKind; 3] = [HookKind::Sync, HookKind::Finalize, HookKind::Customize];

    /// `sync`, `finalize` or `customize`.
    pub fn as_str(self) -> &'static str {
        match self {
            HookKind::Sync => "sync",
            HookKind::Finalize => "finalize",
            HookKind::Customize => "customize",
        }
    }

    fn index(self) -> usize {
        match self {
            HookKind::Sync => 0,
            HookKind::Finalize => 1,
            HookKind::Customize => 2,
        }
    }
}

impl fmt::Display for HookKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TargetLabels {
    controller_name: String,
    controller_type: String,
    url: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    code: String,
    controller_name: String,
    controller_type: String,
    method: String,
    url: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DurationLabels {
    controller_name: String,
    controller_type: String,
    method: String,
    url: String,
}

type HistogramFamily<L> = Family<L, Histogram, fn() -> Histogram>;

fn default_histogram() -> Histogram {
    Histogram::new(DEFAULT_BUCKETS)
}

#[derive(Debug)]
struct KindFamilies {
    requests: Family<RequestLabels, Counter>,
    duration: HistogramFamily<DurationLabels>,
    in_flight: Family<TargetLabels, Gauge>,
}

impl KindFamilies {
    fn register(kind: HookKind, registry: &mut Registry) -> Self {
        let fams = Self {
            requests: Family::default(),
            duration: Family::new_with_constructor(default_histogram as fn() -> Histogram),
            in_flight: Family::default(),
        };
        let hook = kind.as_str();
        // prometheus-client appends `_total` to counter names.
        registry.register(
            format!("metacontroller_{hook}_requests"),
            format!("Number of {hook} hook requests, by HTTP status code and method"),
            fams.requests.clone(),
        );
        registry.register(
            format!("metacontroller_{hook}_request_duration_histogram_seconds"),
            format!("Latency of {hook} hook requests until the response headers arrived"),
            fams.duration.clone(),
        );
        registry.register(
            format!("metacontroller_{hook}_in_flight_requests"),
            format!("Number of {hook} hook requests currently in flight"),
            fams.in_flight.clone(),
        );
        fams
    }
}

/// The hook metric families, registered once per process on a
/// `prometheus-client` [`Registry`]. Cheap to clone; hand out one
/// [`HookMetricsHandle`] per (controller, hook, URL) with
/// [`HookMetrics::handle`].
#[derive(Clone, Debug)]
pub struct HookMetrics {
    kinds: Arc<[KindFamilies; 3]>,
}

impl HookMetrics {
    /// Registers, for each of `sync`, `finalize` and `customize`:
    ///
    /// * `metacontroller_<hook>_requests_total{code,method,url,controller_name,controller_type}` (counter)
    /// * `metacontroller_<hook>_request_duration_histogram_seconds{method,url,controller_name,controller_type}`
    ///   (histogram, Prometheus default buckets)
    /// * `metacontroller_<hook>_in_flight_requests{url,controller_name,controller_type}` (gauge)
    ///
    /// Pass the root registry (not a prefixed sub-registry) so the names stay
    /// as listed. Call once per registry: registering twice duplicates the
    /// families.
    pub fn register(registry: &mut Registry) -> Self {
        let kinds = HookKind::ALL.map(|k| KindFamilies::register(k, registry));
        Self {
            kinds: Arc::new(kinds),
        }
    }

    /// The series of one hook of one controller.
    ///
    /// `controller_type` is `CompositeController` or `DecoratorController`;
    /// `url` is the hook URL as configured.
    pub fn handle(
        &self,
        kind: HookKind,
        controller_type: &str,
        controller_name: &str,
        url: &str,
    ) -> HookMetricsHandle {
        let target = TargetLabels {
            controller_name: controller_name.to_owned(),
            controller_type: controller_type.to_owned(),
            url: url.to_owned(),
        };
        let fams = &self.kinds[kind.index()];
        let in_flight = fams.in_flight.get_or_create_owned(&target);
        let duration = fams.duration.get_or_create_owned(&DurationLabels {
            controller_name: target.controller_name.clone(),
            controller_type: target.controller_type.clone(),
            method: METHOD.to_owned(),
            url: target.url.clone(),
        });
        HookMetricsHandle {
            inner: Arc::new(HandleInner {
                metrics: self.clone(),
                kind,
                target,
                in_flight,
                duration,
            }),
        }
    }
}

struct HandleInner {
    metrics: HookMetrics,
    kind: HookKind,
    target: TargetLabels,
    in_flight: Gauge,
    duration: Histogram,
}

/// Records the calls of one hook of one controller. Cheap to clone; attach it
/// to a client with [`HookClient::with_metrics`](crate::HookClient::with_metrics).
#[derive(Clone)]
pub struct HookMetricsHandle {
    inner: Arc<HandleInner>,
}

impl fmt::Debug for HookMetricsHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HookMetricsHandle")
            .field("kind", &self.inner.kind)
            .field("controller_type", &self.inner.target.controller_type)
            .field("controller_name", &self.inner.target.controller_name)
            .field("url", &self.inner.target.url)
            .finish()
    }
}

impl HookMetricsHandle {
    /// Counts a request as in flight until the returned guard is dropped.
    pub(crate) fn start(&self) -> InFlightGuard {
        self.inner.in_flight.inc();
        InFlightGuard {
            gauge: self.inner.in_flight.clone(),
        }
    }

    /// Records an answered request: its status code and the time until the
    /// response headers arrived.
    pub(crate) fn record_response(&self, code: u16, elapsed: Duration) {
        self.inner.duration.observe(elapsed.as_secs_f64());
        let fams = &self.inner.metrics.kinds[self.inner.kind.index()];
        fams.requests
            .get_or_create(&RequestLabels {
                code: code.to_string(),
                controller_name: self.inner.target.controller_name.clone(),
                controller_type: self.inner.target.controller_type.clone(),
                method: METHOD.to_owned(),
                url: self.inner.target.url.clone(),
            })
            .inc();
    }
}

/// Decrements the in-flight gauge on drop, also when a call is cancelled.
pub(crate) struct InFlightGuard {
    gauge: Gauge,
}

impl Drop for InFlightGuard {
    fn drop(&mut self) {
        self.gauge.dec();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use prometheus_client::encoding::text::encode;

    #[test]
    fn exposition_uses_metacontroller_names() {
        let mut registry = Registry::default();
        let metrics = HookMetrics::register(&mut registry);
        let h = metrics.handle(
            HookKind::Sync,
            "CompositeController",
            "my-cc",
            "http://hook.ns/sync",
        );
        {
            let _g = h.start();
            h.record_response(200, Duration::from_millis(20));
        }
        h.record_response(500, Duration::from_millis(20));
        let _g2 = metrics
            .handle(HookKind::Customize, "DecoratorController", "dc", "http://c")
            .start();

        let mut out = String::new();
        encode(&mut out, &registry).unwrap();
        assert!(
            out.contains(
                "metacontroller_sync_requests_total{code=\"200\",controller_name=\"my-cc\",\
                 controller_type=\"CompositeController\",method=\"post\",url=\"http://hook.ns/sync\"} 1"
            ),
            "{out}"
        );
        assert!(
            out.contains("metacontroller_sync_requests_total{code=\"500\""),
            "{out}"
        );
        assert!(
            out.contains(
                "metacontroller_sync_request_duration_histogram_seconds_count{controller_name=\"my-cc\",\
                 controller_type=\"CompositeController\",method=\"post\",url=\"http://hook.ns/sync\"} 2"
            ),
            "{out}"
        );
        assert!(out.contains("le=\"0.005\""), "{out}");
        assert!(out.contains("le=\"10.0\""), "{out}");
        assert!(
            out.contains(
                "metacontroller_sync_in_flight_requests{controller_name=\"my-cc\",\
                 controller_type=\"CompositeController\",url=\"http://hook.ns/sync\"} 0"
            ),
            "{out}"
        );
        assert!(
            out.contains(
                "metacontroller_customize_in_flight_requests{controller_name=\"dc\",\
                 controller_type=\"DecoratorController\",url=\"http://c\"} 1"
            ),
            "{out}"
        );
        assert!(
            out.contains("# TYPE metacontroller_sync_requests counter"),
            "{out}"
        );
        // prometheus-client adds the final period itself.
        assert!(out.contains("in flight.\n"), "{out}");
        // One family per name, even with several handles.
        assert_eq!(
            out.matches("# TYPE metacontroller_sync_requests counter")
                .count(),
            1
        );
    }
}
