//! The floor: no controller, the harness writes the objects a controller
//! would write (M children and the status per parent), with as many
//! requests in flight as the server can use.
//!
//! Before W2 a knee search ([`probe`]) creates throw-away ConfigMaps in a
//! namespace of their own at each of a few concurrencies (requests in
//! flight over the client's keep-alive connections) and [`knee`] keeps the
//! fastest; the [`Writer`] then sends the floor's writes of every workload
//! with that many requests in flight, independently of the harness's own
//! writes of parents (which every contender gets at the same pace).
//!
//! The probes and the writes run on a runtime of their own (two worker
//! threads, like a contender process's), not on the harness's, which also
//! serves the embedded API server: a contender's requests come from its
//! own process and threads, and the floor's client sharing the server's
//! worker threads made it slower than the contenders it bounds.

use std::sync::{Arc, LazyLock};
use std::time::Instant;

use anyhow::Result;
use futures::StreamExt;
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tokio::runtime::Runtime;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use super::api::{Rest, collection};
use super::objects;
use super::{GROUP, NAMESPACE, PLURAL, VERSION};

/// Namespace of the knee search's ConfigMaps.
pub const PROBE_NAMESPACE: &str = "floor-probe";

/// Concurrencies the knee search tries.
pub const LEVELS: &[usize] = &[8, 16, 32, 64, 128];

/// The floor's own runtime (see the [module documentation](self)).
static RUNTIME: LazyLock<Runtime> = LazyLock::new(|| {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("floor")
        .enable_all()
        .build()
        .expect("the floor's runtime")
});

/// One probe of the knee search.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct Probe {
    /// Requests in flight.
    pub concurrency: usize,
    /// Creates sent.
    pub requests: usize,
    /// Of those, failed.
    pub errors: usize,
    /// Wall-clock seconds for all of them.
    pub seconds: f64,
    /// `requests / seconds`.
    pub per_sec: f64,
}

/// The knee search and what the floor's writes took.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct FloorStats {
    /// Requests in flight the floor used (the knee).
    pub concurrency: usize,
    /// Every probe, in the order run.
    pub probes: Vec<Probe>,
    /// W2: from the harness's first write to the floor's last write
    /// acknowledged.
    pub w2_writes_done_seconds: f64,
    /// W2: from the floor's last write acknowledged to the last convergence
    /// the harness's watch saw (what the observer adds).
    pub w2_observer_lag_seconds: f64,
}

/// The concurrency to use: the fastest probe; a probe within 3 % of the
/// fastest at a lower concurrency wins (the knee: more in flight buys
/// nothing). `None` without a probe that did any work.
pub fn knee(probes: &[Probe]) -> Option<usize> {
    let best = probes
        .iter()
        .filter(|p| p.per_sec > 0.0 && p.errors == 0)
        .map(|p| p.per_sec)
        .fold(0.0, f64::max);
    if best <= 0.0 {
        return None;
    }
    probes
        .iter()
        .filter(|p| p.errors == 0 && p.per_sec >= best * 0.97)
        .map(|p| p.concurrency)
        .min()
}

fn probe_object(level: usize, i: usize) -> Value {
    let mut cm = objects::unrelated(i);
    cm["metadata"]["name"] = json!(format!("probe-c{level}-{i:06}"));
    cm
}

/// Creates `per_level` ConfigMaps at each concurrency of `levels` (after a
/// warm-up at the highest, which opens the connections) and times each, on
/// the floor's runtime.
pub async fn probe(rest: Arc<Rest>, levels: &[usize], per_level: usize) -> Result<Vec<Probe>> {
    let levels = levels.to_vec();
    RUNTIME
        .spawn(async move { probe_here(&rest, &levels, per_level).await })
        .await?
}

async fn probe_here(rest: &Rest, levels: &[usize], per_level: usize) -> Result<Vec<Probe>> {
    let _ = rest
        .create("/api/v1/namespaces", &objects::namespace(PROBE_NAMESPACE))
        .await;
    let path = collection("", "v1", PROBE_NAMESPACE, "configmaps");
    let top = levels.iter().copied().max().unwrap_or(1);
    let burst = |level: usize, count: usize, concurrency: usize| {
        let path = &path;
        async move {
            let errors = Mutex::new(0usize);
            let t0 = Instant::now();
            futures::stream::iter(0..count)
                .for_each_concurrent(concurrency, |i| {
                    let errors = &errors;
                    async move {
                        if rest.create(path, &probe_object(level, i)).await.is_err() {
                            *errors.lock() += 1;
                        }
                    }
                })
                .await;
            (t0.elapsed().as_secs_f64(), errors.into_inner())
        }
    };
    // Warm-up: the connections of the widest level, opened once.
    burst(0, top * 2, top).await;
    let mut probes = Vec::new();
    for &level in levels {
        let (seconds, errors) = burst(level, per_level, level).await;
        probes.push(Probe {
            concurrency: level,
            requests: per_level,
            errors,
            seconds,
            per_sec: per_level as f64 / seconds.max(1e-9),
        });
    }
    Ok(probes)
}

/// Removes the knee search's ConfigMaps (best effort).
pub async fn clean_probe(rest: &Rest) {
    let path = collection("", "v1", PROBE_NAMESPACE, "configmaps");
    let _ = rest
        .send(http::Method::DELETE, &path, None, "application/json")
        .await;
}

fn parents_path() -> String {
    collection(GROUP, VERSION, NAMESPACE, PLURAL)
}

fn configmaps_path() -> String {
    collection("", "v1", NAMESPACE, "configmaps")
}

/// Sends the floor's writes with at most `concurrency` requests in flight.
pub struct Writer {
    rest: Arc<Rest>,
    permits: Arc<Semaphore>,
    tasks: Mutex<JoinSet<Result<Instant, String>>>,
}

impl Writer {
    /// A writer through `rest` with `concurrency` requests in flight.
    pub fn new(rest: Arc<Rest>, concurrency: usize) -> Self {
        Writer {
            rest,
            permits: Arc::new(Semaphore::new(concurrency.max(1))),
            tasks: Mutex::new(JoinSet::new()),
        }
    }

    /// Creates children `from..to` of `parent` (all at once, as permits
    /// allow), then sets its status; returns at once.
    pub fn converge(&self, parent: &str, uid: &str, from: i64, to: i64) {
        let (rest, permits) = (self.rest.clone(), self.permits.clone());
        let (parent, uid) = (parent.to_string(), uid.to_string());
        self.tasks.lock().spawn_on(
            async move {
                let creates = (from..to).map(|i| {
                    let (rest, permits) = (&rest, &permits);
                    let child = objects::owned_child(&parent, &uid, i);
                    async move {
                        let _permit = permits.acquire().await.map_err(|e| e.to_string())?;
                        rest.create(&configmaps_path(), &child)
                            .await
                            .map(|_| ())
                            .map_err(|e| format!("{e:#}"))
                    }
                });
                for done in futures::future::join_all(creates).await {
                    done.map_err(|e| format!("{parent}: {e}"))?;
                }
                let _permit = permits.acquire().await.map_err(|e| e.to_string())?;
                rest.merge_patch(
                    &format!("{}/{parent}/status", parents_path()),
                    &json!({"status": {"ready": to}}),
                )
                .await
                .map_err(|e| format!("{parent} status: {e:#}"))?;
                Ok(Instant::now())
            },
            RUNTIME.handle(),
        );
    }

    /// Creates child `index` of `parent` again; returns at once.
    pub fn recreate(&self, parent: &str, uid: &str, index: i64) {
        let (rest, permits) = (self.rest.clone(), self.permits.clone());
        let child = objects::owned_child(parent, uid, index);
        let parent = parent.to_string();
        self.tasks.lock().spawn_on(
            async move {
                let _permit = permits.acquire().await.map_err(|e| e.to_string())?;
                rest.create(&configmaps_path(), &child)
                    .await
                    .map_err(|e| format!("{parent} child {index}: {e:#}"))?;
                Ok(Instant::now())
            },
            RUNTIME.handle(),
        );
    }

    /// Waits for every write sent so far; returns the last acknowledgement
    /// and the errors.
    pub async fn finish(&self) -> (Option<Instant>, Vec<String>) {
        let mut tasks = std::mem::take(&mut *self.tasks.lock());
        let mut last = None;
        let mut errors = Vec::new();
        while let Some(done) = tasks.join_next().await {
            match done {
                Ok(Ok(at)) => last = last.max(Some(at)),
                Ok(Err(e)) => errors.push(e),
                Err(e) => errors.push(format!("floor task: {e}")),
            }
        }
        (last, errors)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(concurrency: usize, per_sec: f64) -> Probe {
        Probe {
            concurrency,
            requests: 100,
            errors: 0,
            seconds: 100.0 / per_sec,
            per_sec,
        }
    }

    #[test]
    fn the_knee_is_the_fastest_probe() {
        let probes = [p(8, 900.0), p(16, 1500.0), p(32, 2100.0), p(64, 1800.0)];
        assert_eq!(knee(&probes), Some(32));
    }

    #[test]
    fn a_lower_concurrency_within_three_percent_of_the_fastest_wins() {
        let probes = [p(8, 900.0), p(16, 1990.0), p(32, 2000.0), p(64, 2010.0)];
        assert_eq!(knee(&probes), Some(16));
    }

    #[test]
    fn probes_with_errors_or_no_work_are_not_chosen() {
        let mut failed = p(64, 5000.0);
        failed.errors = 3;
        assert_eq!(knee(&[p(8, 100.0), failed]), Some(8));
        assert_eq!(knee(&[]), None);
        assert_eq!(knee(&[p(8, 0.0)]), None);
    }
}
