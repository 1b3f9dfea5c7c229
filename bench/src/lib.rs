//! Benchmarks for metacontroller-rs.
//!
//! The embedded API server (`metacontroller-apiserver`) is the test and
//! benchmark bed of the project, so its own capacity bounds what every other
//! benchmark can measure. [`throughput`] measures it: concurrent keep-alive
//! HTTP clients create objects as fast as the server takes them while
//! several watchers each verify that they receive every event, once, in
//! resourceVersion order. It reports writes per second, create latency and
//! watcher lag, in memory and with a data directory.
//!
//! Run it from the workspace root with a release build:
//!
//! ```text
//! cargo run --release -p metacontroller-bench --bin apiserver-throughput
//! cargo run --release -p metacontroller-bench --bin apiserver-throughput -- --quick
//! ```
//!
//! It writes a JSON report (by default `bench/out/apiserver-throughput.json`)
//! and prints a Markdown summary. A run fails (non-zero exit) when any
//! watcher misses, duplicates or reorders an event, or when a write fails.
//!
//! [`controller`] compares controllers doing the same composite job on the
//! same embedded server: metacontroller-rs (`metacontroller run` with a
//! CompositeController and a hook), kopf, a hand-written kube-rs controller
//! (the `kube-rs-baseline` binary) and the API floor (the harness writing
//! the objects itself):
//!
//! ```text
//! cargo run --release -p metacontroller-bench --bin controller-bench
//! ```

pub mod controller;
pub mod soak;
pub mod throughput;

/// Percentiles of a sample, in the sample's unit.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct Percentiles {
    /// Median.
    pub p50: f64,
    /// 90th percentile.
    pub p90: f64,
    /// 99th percentile.
    pub p99: f64,
    /// Largest value.
    pub max: f64,
    /// Arithmetic mean.
    pub mean: f64,
}

impl Percentiles {
    /// Nearest-rank percentiles of `values` (sorted in place).
    pub fn of(values: &mut [f64]) -> Self {
        if values.is_empty() {
            return Self::default();
        }
        values.sort_by(f64::total_cmp);
        let at = |q: f64| {
            let rank = ((q * values.len() as f64).ceil() as usize).clamp(1, values.len());
            values[rank - 1]
        };
        Self {
            p50: at(0.50),
            p90: at(0.90),
            p99: at(0.99),
            max: values[values.len() - 1],
            mean: values.iter().sum::<f64>() / values.len() as f64,
        }
    }
}

/// What the report says about the machine it ran on.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Machine {
    /// Logical CPUs the OS reports.
    pub cpus: usize,
    /// Model name from `/proc/cpuinfo`.
    pub cpu_model: String,
    /// `MemTotal` from `/proc/meminfo`.
    pub memory_total_kib: u64,
    /// Operating system and kernel release.
    pub os: String,
    /// Cargo profile the bench was built with (`debug` or `release`).
    pub profile: &'static str,
}

impl Machine {
    /// Reads the running machine.
    pub fn detect() -> Self {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let cpu_model = cpuinfo
            .lines()
            .find(|l| l.starts_with("model name"))
            .and_then(|l| l.split_once(':'))
            .map(|(_, v)| v.trim().to_string())
            .unwrap_or_else(|| "unknown".into());
        let memory_total_kib = std::fs::read_to_string("/proc/meminfo")
            .unwrap_or_default()
            .lines()
            .find(|l| l.starts_with("MemTotal:"))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        Self {
            cpus: std::thread::available_parallelism().map_or(1, |n| n.get()),
            cpu_model,
            memory_total_kib,
            os: std::env::consts::OS.to_string(),
            profile: if cfg!(debug_assertions) {
                "debug"
            } else {
                "release"
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let mut v: Vec<f64> = (1..=100).map(f64::from).collect();
        v.reverse();
        let p = Percentiles::of(&mut v);
        assert_eq!((p.p50, p.p90, p.p99, p.max), (50.0, 90.0, 99.0, 100.0));
        assert_eq!(p.mean, 50.5);
        assert_eq!(Percentiles::of(&mut []).max, 0.0);
    }
}
