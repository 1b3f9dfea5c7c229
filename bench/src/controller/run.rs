//! One run: a fresh API server, one contender, every workload in order.
//!
//! 1. Start the server (embedded in this process, or a real control plane;
//!    see [`super::server`]), install the `Bench` CRD and the
//!    Metacontroller CRDs, create the namespaces, start the watches of the
//!    [`Observer`]; for `ours`, start the hook and create the
//!    CompositeController. Start the contender and wait until it watches
//!    parents and ConfigMaps and has gone quiet; its RSS then is the
//!    "empty" RSS.
//!    For the floor, the knee search ([`super::floor`]) picks how many
//!    requests its writes keep in flight.
//! 2. **W2** burst-create N parents (16 at a time; the floor's writes for
//!    each follow its creation); wait for each to converge, then for quiet
//!    (no request and no hook call for the quiet window), so late writes
//!    count too.
//! 3. **W3** `spec.replicas` 5 → 6 on every tenth parent.
//! 4. **W5** delete 1 % of the children; each must come back.
//! 5. **W4** idle for the idle window.
//! 6. **W1** restart the contender over the converged world: requests,
//!    writes and hook calls until quiet. Its RSS then is the steady RSS
//!    (W9, compared with the JSON size of the objects it should cache).
//! 7. **W9** (optional) create the unrelated ConfigMaps, restart again and
//!    wait until its CPU is quiet: RSS with them present.
//! 8. **W6** delete every parent. For `ours`, a finalize hook is added to
//!    the CompositeController first (the engine then puts its finalizer on
//!    every parent: the "prep" activity); the others rely on owner
//!    references alone.
//!
//! W3, W4, W5 and W6 can be left out ([`Options::skip`]), for a large N.
//!
//! What the contender did in a phase is the server's request counters over
//! the phase minus the harness's own requests (on a real cluster: the
//! requests its audit log shows for the contender's identity). The floor's
//! writes go through a client of their own, with the contender's identity,
//! and count as the contender's.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use futures::StreamExt;
use metacontroller_testbed::ClusterKind;
use parking_lot::Mutex;
use serde::Serialize;
use serde_json::json;

use super::api::{self, Counts, Rest, collection};
use super::floor::{self, FloorStats};
use super::hook::{Hook, HookKind, HookStats};
use super::objects;
use super::observe::{Observer, Outcome};
use super::process::{Contender, Proc, ProcTotals, Programs, TUNED_WORKERS};
use super::server::Server;
use super::{
    CHILDREN, GROUP, NAMESPACE, PLURAL, UNRELATED_NAMESPACE, VERSION, child_name, parent_name,
    parent_resource,
};
use crate::Percentiles;

/// What a run does.
#[derive(Clone, Debug)]
pub struct Options {
    /// The server to run on.
    pub cluster: ClusterKind,
    /// Parents (N).
    pub n: usize,
    /// Index of this repeat (0-based).
    pub repeat: usize,
    /// The hook of the `ours` contenders.
    pub hook: HookKind,
    /// W4 length.
    pub idle: Duration,
    /// No request and no hook call for this long means quiet.
    pub quiet: Duration,
    /// Unrelated ConfigMaps for W9 (0: skip).
    pub unrelated: usize,
    /// Where the contenders' output goes.
    pub log_dir: PathBuf,
    /// Keep the run's server files (a real cluster's component and audit
    /// logs, the kubeconfig) in a folder under `log_dir`.
    pub keep_server_files: bool,
    /// Workloads left out (W2 and W1 always run).
    pub skip: Vec<Phase>,
    /// Concurrencies the floor's knee search tries.
    pub floor_levels: Vec<usize>,
    /// Creates per probe of the knee search.
    pub floor_probe: usize,
}

/// A workload that can be left out (`--skip`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Phase {
    /// The spec change.
    W3,
    /// Idle.
    W4,
    /// Child repair.
    W5,
    /// Deletion of every parent.
    W6,
}

/// What the harness process itself (with the embedded server, when it
/// runs in it, and the observer's watches) cost during a run.
#[derive(Clone, Debug, Default, Serialize)]
pub struct HarnessCost {
    /// CPU seconds of the harness process over the run.
    pub cpu_seconds: f64,
    /// Of those, during W2.
    pub w2_cpu_seconds: f64,
    /// Its RSS once W2 converged.
    pub rss_after_w2_kib: u64,
    /// Its RSS at the end of the run, before the server stops.
    pub rss_end_kib: u64,
    /// Its peak RSS so far (VmHWM: every run of this process up to now).
    pub peak_rss_kib: u64,
    /// Watch events the observer processed.
    pub observer_events: u64,
    /// Seconds the observer spent decoding W2's watch events and updating
    /// its state.
    pub w2_observer_busy_seconds: f64,
}

/// What the contender did during a phase.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Activity {
    /// Requests by verb.
    pub requests: BTreeMap<String, u64>,
    /// Requests by `verb resource`.
    pub requests_by_resource: BTreeMap<String, u64>,
    /// Write requests (create, update, patch, delete, deletecollection).
    pub writes: u64,
    /// Of those, writes of Events (`events`, `events.events.k8s.io`).
    pub event_writes: u64,
    /// Hook calls and bytes.
    pub hook: HookStats,
    /// CPU seconds of the contender's process.
    pub cpu_seconds: f64,
}

impl Activity {
    /// Writes of anything but Events.
    pub fn object_writes(&self) -> u64 {
        self.writes - self.event_writes
    }

    /// All requests.
    pub fn total_requests(&self) -> u64 {
        self.requests.values().sum()
    }
}

/// A workload that waits for convergence.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Convergence {
    /// Parents (or children) waited for.
    pub count: usize,
    /// Of those, converged in time.
    pub converged: usize,
    /// From the first write of the harness to the last convergence.
    pub seconds: f64,
    /// `count / seconds`.
    pub per_sec: f64,
    /// From each write's acknowledgement to its convergence.
    pub latency_ms: Percentiles,
    /// Until quiet.
    pub activity: Activity,
    /// Every latency (W2 only; for the distribution plot).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub samples_ms: Vec<f64>,
}

/// W4.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Idle {
    /// Wall-clock seconds.
    pub seconds: f64,
    /// Requests, writes and hook calls counted meanwhile.
    pub activity: Activity,
}

/// W1.
#[derive(Clone, Debug, Default, Serialize)]
pub struct ColdStart {
    /// From the spawn to the last request or hook call before quiet.
    pub settle_seconds: f64,
    /// Requests, writes and hook calls counted meanwhile.
    pub activity: Activity,
}

/// W6.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Deletion {
    /// Adding the finalize hook until every parent carries the finalizer
    /// and all is quiet (`ours` only).
    pub prep_seconds: f64,
    /// Activity while the finalizer was added.
    pub prep: Activity,
    /// From the first delete to the last parent and child gone.
    pub seconds: f64,
    /// Parents deleted per second.
    pub per_sec: f64,
    /// Requests, writes and hook calls counted meanwhile.
    pub activity: Activity,
}

/// W9 and the process's memory.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Memory {
    /// RSS once started and synced over an empty namespace.
    pub rss_empty_kib: u64,
    /// RSS after W4 (the first process, which went through W2–W5).
    pub rss_after_idle_kib: u64,
    /// RSS after the W1 restart over the converged world.
    pub rss_steady_kib: u64,
    /// Highest VmHWM of the contender's processes.
    pub peak_kib: u64,
    /// Parents and children in the bench namespace (what it must cache).
    pub cached_objects: usize,
    /// Their JSON size as the server serves them.
    pub cached_json_bytes: u64,
    /// `(steady - empty) / cached_objects * 1000`.
    pub rss_per_1k_objects_kib: f64,
    /// `(steady - empty) / cached_json_bytes`.
    pub rss_over_json: f64,
    /// Unrelated ConfigMaps present for the last measurement (0: skipped).
    pub unrelated: usize,
    /// Their JSON size.
    pub unrelated_json_bytes: u64,
    /// RSS after a restart with the unrelated ConfigMaps present.
    pub rss_with_unrelated_kib: u64,
    /// From that spawn until its CPU went quiet.
    pub unrelated_startup_seconds: f64,
    /// `(with_unrelated - steady) / unrelated * 1000`.
    pub unrelated_rss_per_1k_kib: f64,
}

/// Everything one run measured.
#[derive(Clone, Debug, Default, Serialize)]
pub struct RunResult {
    /// Contender name (`ours`, `ours-tuned`, `kube-rs`, `kopf`, `floor`, ...).
    pub contender: String,
    /// The contender's settings in words (workers, client limits).
    pub settings: String,
    /// Hook implementation (`rust` or `python`).
    pub hook: String,
    /// `embedded` or `real`.
    pub cluster: String,
    /// Parents (N).
    pub n: usize,
    /// Children per parent (M).
    pub m: i64,
    /// Which repeat of this contender and N (0-based).
    pub repeat: usize,
    /// W2: create N parents.
    pub w2: Convergence,
    /// W3: change every parent's spec.
    pub w3: Convergence,
    /// W5: delete one child per parent.
    pub w5: Convergence,
    /// W4: idle.
    pub w4: Idle,
    /// W1: cold start over the converged world.
    pub w1: ColdStart,
    /// W6: delete every parent.
    pub w6: Deletion,
    /// W9 and the process's memory.
    pub memory: Memory,
    /// CPU seconds of every process of the contender over the run.
    pub cpu_seconds_total: f64,
    /// Every parent converged with exactly M children (M+1 after W3) and
    /// `status.ready` equal to it, and every deleted child came back.
    pub converged: bool,
    /// What went wrong (timeouts, unconverged parents, errors).
    pub problems: Vec<String>,
    /// Workloads left out.
    pub skipped: Vec<Phase>,
    /// The floor's knee search and timing (floor only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub floor: Option<FloorStats>,
    /// The harness process's own cost.
    pub harness: HarnessCost,
}

/// A child W5 deletes.
struct Victim {
    parent: String,
    child: String,
    /// The child's index under its parent.
    index: i64,
}

impl std::fmt::Display for Victim {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.child)
    }
}

/// Counters at one moment.
struct Snap {
    server: Counts,
    harness: Counts,
    hook: HookStats,
    cpu: f64,
}

/// One run's world.
struct World {
    // Dropped first: its watches end before the server stops.
    observer: Observer,
    server: Server,
    rest: Arc<Rest>,
    floor: Arc<Rest>,
    /// The floor's writes (floor only, after the knee search).
    writer: Option<floor::Writer>,
    kubeconfig: PathBuf,
    /// Removed at the end of the run unless kept.
    _dir: Option<tempfile::TempDir>,
    hook: Option<Hook>,
    proc: Option<Proc>,
    contender: Contender,
    programs: Option<Programs>,
    log: PathBuf,
    expected: HashMap<String, i64>,
    uids: Arc<Mutex<HashMap<String, String>>>,
    problems: Vec<String>,
    totals: Vec<ProcTotals>,
    floor_stats: Option<FloorStats>,
}

/// A workload's outcome (taking its waits when `true`) and its count of
/// pending waits.
type Waits = (fn(&Observer, bool) -> Outcome, fn(&Observer) -> usize);

const CONCURRENCY: usize = TUNED_WORKERS;
const POLL: Duration = Duration::from_millis(20);

fn parents_path() -> String {
    collection(GROUP, VERSION, NAMESPACE, PLURAL)
}

fn configmaps_path(ns: &str) -> String {
    collection("", "v1", ns, "configmaps")
}

fn is_event(resource: &str) -> bool {
    resource == "events" || resource == "events.events.k8s.io"
}

/// Percent-encodes everything but unreserved characters (RFC 3986).
fn query_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Runs `step` for every item, [`CONCURRENCY`] at a time; returns the
/// errors as problems of `what`.
async fn each<T, F, Fut>(what: &str, items: Vec<T>, step: F) -> Vec<String>
where
    T: std::fmt::Display,
    F: Fn(T) -> Fut,
    Fut: std::future::Future<Output = Result<()>>,
{
    let errors = Mutex::new(Vec::new());
    futures::stream::iter(items)
        .for_each_concurrent(CONCURRENCY, |item| {
            let label = item.to_string();
            let done = step(item);
            let errors = &errors;
            async move {
                if let Err(err) = done.await {
                    errors.lock().push(format!("{what} {label}: {err:#}"));
                }
            }
        })
        .await;
    errors.into_inner()
}

impl World {
    async fn start(
        contender: Contender,
        programs: Option<Programs>,
        opts: &Options,
    ) -> Result<Self> {
        let label = format!(
            "{}-{}-n{}-r{}",
            contender.name(),
            opts.hook.name(),
            opts.n,
            opts.repeat
        );
        std::fs::create_dir_all(&opts.log_dir)?;
        let temp = tempfile::Builder::new()
            .prefix(&format!("{label}-server-"))
            .tempdir_in(&opts.log_dir)?;
        let (dir, path) = if opts.keep_server_files {
            let path = temp.keep();
            eprintln!("    server files: {}", path.display());
            (None, path)
        } else {
            let path = temp.path().to_owned();
            (Some(temp), path)
        };
        let server =
            Server::start(opts.cluster, 200_000 + opts.unrelated, &path.join("server")).await?;
        let kubeconfig = path.join("kubeconfig");
        server.write_contender_kubeconfig(&kubeconfig)?;
        let rest = Arc::new(server.harness_client().await?);
        let crds = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions";
        rest.create(crds, &objects::bench_crd())
            .await
            .context("installing the Bench CRD")?;
        for crd in metacontroller_api::crds() {
            rest.create(crds, &serde_json::to_value(&crd)?)
                .await
                .context("installing the Metacontroller CRDs")?;
        }
        for ns in [NAMESPACE, UNRELATED_NAMESPACE] {
            rest.create("/api/v1/namespaces", &objects::namespace(ns))
                .await?;
        }
        // The CRD is served once it is established.
        let deadline = Instant::now() + Duration::from_secs(60);
        while rest
            .send(http::Method::GET, &parents_path(), None, "")
            .await?
            .0
            != 200
        {
            anyhow::ensure!(Instant::now() < deadline, "the Bench CRD is not served");
            tokio::time::sleep(POLL).await;
        }
        let observer = Observer::start(rest.clone()).await?;
        let floor = Arc::new(server.contender_client().await?);
        let log = opts.log_dir.join(format!("{label}.log"));
        let _ = std::fs::remove_file(&log);
        let mut world = World {
            observer,
            server,
            rest,
            floor,
            writer: None,
            kubeconfig,
            _dir: dir,
            hook: None,
            proc: None,
            contender,
            programs,
            log,
            expected: HashMap::new(),
            uids: Arc::new(Mutex::new(HashMap::new())),
            problems: Vec::new(),
            totals: Vec::new(),
            floor_stats: None,
        };
        if contender.is_ours() {
            let hook = Hook::start(opts.hook).await?;
            world
                .rest
                .create(
                    "/apis/metacontroller.k8s.io/v1alpha1/compositecontrollers",
                    &objects::composite_controller(hook.url(), false),
                )
                .await?;
            world.hook = Some(hook);
        }
        Ok(world)
    }

    async fn hook_stats(&self) -> HookStats {
        match &self.hook {
            Some(h) => h.stats().await.unwrap_or_default(),
            None => HookStats::default(),
        }
    }

    async fn snap(&self) -> Snap {
        Snap {
            server: self.server.counts(),
            harness: if self.server.counts_include_harness() {
                self.rest.counts()
            } else {
                Counts::new()
            },
            hook: self.hook_stats().await,
            cpu: self.proc.as_ref().map_or(0.0, Proc::cpu_seconds),
        }
    }

    fn activity(&self, before: &Snap, after: &Snap) -> Activity {
        let server = api::delta(&after.server, &before.server);
        let harness = api::delta(&after.harness, &before.harness);
        let own = api::delta(&server, &harness);
        let events: Counts = own
            .iter()
            .filter(|((_, res), _)| is_event(res))
            .map(|(k, v)| (k.clone(), *v))
            .collect();
        Activity {
            requests: api::by_verb(&own),
            requests_by_resource: own
                .iter()
                .map(|((verb, res), n)| (format!("{verb} {res}"), *n))
                .collect(),
            writes: api::writes(&own),
            event_writes: api::writes(&events),
            hook: after.hook.since(&before.hook),
            cpu_seconds: (after.cpu - before.cpu).max(0.0),
        }
    }

    /// A number that changes whenever anyone makes a request or the hook
    /// is called.
    async fn activity_signature(&self) -> u64 {
        let requests: u64 = self.server.counts().values().sum();
        requests + self.hook_stats().await.calls()
    }

    /// Waits until nothing happened for `window`; returns the moment of the
    /// last activity.
    async fn wait_quiet(&mut self, window: Duration, timeout: Duration, what: &str) -> Instant {
        let start = Instant::now();
        let mut last = self.activity_signature().await;
        let mut last_change = Instant::now();
        loop {
            tokio::time::sleep(Duration::from_millis(50)).await;
            let now = self.activity_signature().await;
            if now != last {
                last = now;
                last_change = Instant::now();
            } else if last_change.elapsed() >= window {
                return last_change;
            }
            if start.elapsed() > timeout {
                self.problems
                    .push(format!("{what}: still busy after {timeout:?}"));
                return last_change;
            }
        }
    }

    /// Waits until the contender used under 2 % of a CPU over the last
    /// `window`.
    async fn wait_cpu_quiet(&mut self, window: Duration, timeout: Duration, what: &str) {
        let Some(proc) = &self.proc else { return };
        let pid = proc.pid();
        let start = Instant::now();
        let mut samples: Vec<(Instant, f64)> =
            vec![(Instant::now(), super::process::cpu_seconds(pid))];
        loop {
            tokio::time::sleep(Duration::from_millis(250)).await;
            let now = Instant::now();
            samples.push((now, super::process::cpu_seconds(pid)));
            // The newest sample at least `window` old.
            if let Some((t, c)) = samples
                .iter()
                .rev()
                .find(|(t, _)| now.duration_since(*t) >= window)
            {
                let span = now.duration_since(*t).as_secs_f64();
                let used = samples.last().map_or(0.0, |s| s.1) - c;
                if used <= 0.02 * span {
                    return;
                }
            }
            if start.elapsed() > timeout {
                self.problems
                    .push(format!("{what}: CPU still busy after {timeout:?}"));
                return;
            }
        }
    }

    async fn spawn(&mut self) -> Result<()> {
        let programs = self.programs.as_ref().context("no programs")?;
        self.proc = Some(Proc::spawn(
            self.contender,
            programs,
            &self.kubeconfig,
            &self.log,
        )?);
        Ok(())
    }

    /// Waits until the contender has opened watches on parents and
    /// ConfigMaps (since `before`).
    async fn wait_watching(&mut self, before: &Snap, timeout: Duration) -> Result<()> {
        let start = Instant::now();
        loop {
            let now = self.snap().await;
            let act = api::delta(
                &api::delta(&now.server, &before.server),
                &api::delta(&now.harness, &before.harness),
            );
            let watching = |res: &str| act.contains_key(&("watch".to_string(), res.to_string()));
            if watching(&parent_resource()) && watching("configmaps") {
                return Ok(());
            }
            if let Some(proc) = self.proc.as_mut()
                && let Some(status) = proc.exited()
            {
                anyhow::bail!(
                    "{} exited ({status}) before watching; see {}",
                    self.contender.name(),
                    self.log.display()
                );
            }
            anyhow::ensure!(
                start.elapsed() < timeout,
                "{} did not start watching within {timeout:?}; see {}",
                self.contender.name(),
                self.log.display()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn stop_proc(&mut self) {
        if let Some(proc) = self.proc.take() {
            self.totals.push(proc.stop().await);
        }
    }

    /// Waits until `outcome` has nothing pending or `timeout` passes.
    async fn wait_outcome(
        &mut self,
        timeout: Duration,
        what: &str,
        outcome: impl Fn(&Observer) -> Outcome,
        pending: fn(&Observer) -> usize,
    ) -> Outcome {
        let start = Instant::now();
        loop {
            if pending(&self.observer) == 0 {
                return outcome(&self.observer);
            }
            if start.elapsed() > timeout {
                let out = outcome(&self.observer);
                let shown: Vec<_> = out.pending.iter().take(5).cloned().collect();
                self.problems.push(format!(
                    "{what}: {} not converged after {timeout:?} (e.g. {})",
                    out.pending.len(),
                    shown.join(", ")
                ));
                return out;
            }
            if let Some(proc) = self.proc.as_mut()
                && let Some(status) = proc.exited()
            {
                self.problems.push(format!(
                    "{what}: {} exited ({status}); see {}",
                    self.contender.name(),
                    self.log.display()
                ));
                return outcome(&self.observer);
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// How long a phase of about `requests` contender requests may take.
    fn budget(&self, requests: usize) -> Duration {
        let rate = match self.contender.engine_flags() {
            Some((_, qps, _)) if qps > 0.0 => qps.min(200.0),
            Some(_) => 200.0,
            None => 20.0,
        };
        Duration::from_secs_f64(60.0 + requests as f64 / rate * 2.0)
    }

    async fn w2(&mut self, n: usize, window: Duration) -> Convergence {
        let names: Vec<String> = (0..n).map(parent_name).collect();
        self.observer.expect(&names, CHILDREN);
        for name in &names {
            self.expected.insert(name.clone(), CHILDREN);
        }
        let before = self.snap().await;
        let t0 = Instant::now();
        let writer = self.writer.as_ref();
        let (rest, observer, uids) = (&self.rest, &self.observer, &self.uids);
        let errors = each("W2", names, |name| async move {
            let created = rest
                .create(&parents_path(), &objects::parent(&name, CHILDREN))
                .await?;
            observer.started(&name, Instant::now());
            let uid = created["metadata"]["uid"].as_str().unwrap_or_default();
            uids.lock().insert(name.clone(), uid.to_string());
            if let Some(writer) = writer {
                writer.converge(&name, uid, 0, CHILDREN);
            }
            Ok(())
        })
        .await;
        self.problems.extend(errors);
        let written = self.finish_floor().await;
        let budget = self.budget(n * (CHILDREN as usize + 2));
        let out = self
            .settle(
                n,
                "W2",
                budget,
                window,
                t0,
                &before,
                (Observer::parent_outcome, Observer::parents_pending),
                true,
            )
            .await;
        if let (Some(stats), Some(written)) = (self.floor_stats.as_mut(), written) {
            let written = written.saturating_duration_since(t0).as_secs_f64();
            stats.w2_writes_done_seconds = written;
            stats.w2_observer_lag_seconds = (out.seconds - written).max(0.0);
        }
        out
    }

    /// The floor's knee search: probes each concurrency of the options,
    /// keeps the fastest (16 when every probe failed) for the writer.
    async fn prepare_floor(&mut self, opts: &Options) {
        let probes =
            match floor::probe(self.floor.clone(), &opts.floor_levels, opts.floor_probe).await {
                Ok(p) => p,
                Err(err) => {
                    self.problems.push(format!("floor knee search: {err:#}"));
                    Vec::new()
                }
            };
        floor::clean_probe(&self.floor).await;
        let concurrency = floor::knee(&probes).unwrap_or(CONCURRENCY);
        self.writer = Some(floor::Writer::new(self.floor.clone(), concurrency));
        self.floor_stats = Some(FloorStats {
            concurrency,
            probes,
            ..FloorStats::default()
        });
    }

    /// Waits for the floor's writes; returns the last acknowledgement.
    async fn finish_floor(&mut self) -> Option<Instant> {
        let writer = self.writer.as_ref()?;
        let (last, errors) = writer.finish().await;
        self.problems.extend(errors);
        last
    }

    /// Waits for the phase's convergence (`outcome`), then for quiet, and
    /// sums it up.
    #[allow(clippy::too_many_arguments)]
    async fn settle(
        &mut self,
        count: usize,
        what: &str,
        budget: Duration,
        window: Duration,
        t0: Instant,
        before: &Snap,
        (outcome, pending): Waits,
        keep_samples: bool,
    ) -> Convergence {
        let out = self
            .wait_outcome(budget, what, |o| outcome(o, false), pending)
            .await;
        outcome(&self.observer, true);
        self.wait_quiet(window, budget, what).await;
        let after = self.snap().await;
        self.convergence(count, t0, out, before, &after, keep_samples)
    }

    fn convergence(
        &self,
        count: usize,
        t0: Instant,
        mut out: Outcome,
        before: &Snap,
        after: &Snap,
        keep_samples: bool,
    ) -> Convergence {
        let seconds = out
            .last_done
            .map_or(0.0, |d| d.saturating_duration_since(t0).as_secs_f64());
        let converged = out.latencies_ms.len();
        let latency_ms = Percentiles::of(&mut out.latencies_ms);
        Convergence {
            count,
            converged,
            seconds,
            per_sec: if seconds > 0.0 {
                count as f64 / seconds
            } else {
                0.0
            },
            latency_ms,
            activity: self.activity(before, after),
            samples_ms: if keep_samples {
                out.latencies_ms
            } else {
                Vec::new()
            },
        }
    }

    async fn w3(&mut self, n: usize, window: Duration) -> Convergence {
        let names: Vec<String> = (0..n).step_by(10).map(parent_name).collect();
        let replicas = CHILDREN + 1;
        self.observer.expect(&names, replicas);
        for name in &names {
            self.expected.insert(name.clone(), replicas);
        }
        let before = self.snap().await;
        let t0 = Instant::now();
        let writer = self.writer.as_ref();
        let (rest, observer, uids) = (&self.rest, &self.observer, &self.uids);
        let count = names.len();
        let errors = each("W3", names, |name| async move {
            let uid = uids.lock().get(&name).cloned().unwrap_or_default();
            rest.merge_patch(
                &format!("{}/{name}", parents_path()),
                &json!({"spec": {"replicas": replicas}}),
            )
            .await?;
            observer.started(&name, Instant::now());
            if let Some(writer) = writer {
                writer.converge(&name, &uid, CHILDREN, replicas);
            }
            Ok(())
        })
        .await;
        self.problems.extend(errors);
        self.finish_floor().await;
        let budget = self.budget(count * 4);
        self.settle(
            count,
            "W3",
            budget,
            window,
            t0,
            &before,
            (Observer::parent_outcome, Observer::parents_pending),
            false,
        )
        .await
    }

    async fn w5(&mut self, n: usize, window: Duration) -> Convergence {
        let total = n * CHILDREN as usize;
        let count = (total / 100).max(1);
        let step = (n / count).max(1);
        let victims: Vec<Victim> = (0..count)
            .map(|j| {
                let parent = parent_name((j * step) % n);
                let index = (j as i64) % CHILDREN;
                let child = child_name(&parent, index);
                Victim {
                    parent,
                    child,
                    index,
                }
            })
            .collect();
        for v in &victims {
            self.observer.expect_repair(&v.child);
        }
        let before = self.snap().await;
        let t0 = Instant::now();
        let writer = self.writer.as_ref();
        let (rest, observer, uids) = (&self.rest, &self.observer, &self.uids);
        let errors = each(
            "W5",
            victims,
            |Victim {
                 parent,
                 child,
                 index,
             }| async move {
                let uid = uids.lock().get(&parent).cloned().unwrap_or_default();
                rest.delete(&format!("{}/{child}", configmaps_path(NAMESPACE)))
                    .await?;
                observer.repair_started(&child, Instant::now());
                if let Some(writer) = writer {
                    writer.recreate(&parent, &uid, index);
                }
                Ok(())
            },
        )
        .await;
        self.problems.extend(errors);
        self.finish_floor().await;
        let budget = self.budget(count * 4);
        self.settle(
            count,
            "W5",
            budget,
            window,
            t0,
            &before,
            (Observer::repair_outcome, Observer::repairs_pending),
            false,
        )
        .await
    }

    async fn w6(&mut self, n: usize, window: Duration) -> Deletion {
        let mut result = Deletion::default();
        // ours: a GET and an update per finalizer, and its own child deletes.
        let budget = self.budget(n * (CHILDREN as usize + 4));
        if self.contender.is_ours()
            && let Some(hook) = &self.hook
        {
            let before = self.snap().await;
            let t0 = Instant::now();
            let url = format!("{}/finalize", hook.url());
            let patch = json!({"spec": {"hooks": {"finalize": {"webhook": {"url": url}}}}});
            if let Err(err) = self
                .rest
                .merge_patch(
                    "/apis/metacontroller.k8s.io/v1alpha1/compositecontrollers/bench",
                    &patch,
                )
                .await
            {
                self.problems.push(format!("W6 finalize hook: {err:#}"));
            }
            while self.observer.parents_with_finalizers() < n {
                if t0.elapsed() > budget {
                    self.problems.push(format!(
                        "W6: only {} of {n} parents got the finalizer",
                        self.observer.parents_with_finalizers()
                    ));
                    break;
                }
                tokio::time::sleep(POLL).await;
            }
            let last = self.wait_quiet(window, budget, "W6 prep").await;
            result.prep_seconds = last.saturating_duration_since(t0).as_secs_f64();
            let after = self.snap().await;
            result.prep = self.activity(&before, &after);
        }
        let names: Vec<String> = (0..n).map(parent_name).collect();
        let before = self.snap().await;
        let t0 = Instant::now();
        let rest = &self.rest;
        let errors = each("W6", names, |name| async move {
            rest.delete(&format!("{}/{name}", parents_path())).await?;
            Ok(())
        })
        .await;
        self.problems.extend(errors);
        let done = loop {
            if self.observer.counts() == (0, 0) {
                break Instant::now();
            }
            if t0.elapsed() > budget {
                let (p, c) = self.observer.counts();
                self.problems.push(format!(
                    "W6: {p} parents and {c} children left after {budget:?}"
                ));
                break Instant::now();
            }
            tokio::time::sleep(POLL).await;
        };
        self.expected.clear();
        result.seconds = done.duration_since(t0).as_secs_f64();
        result.per_sec = n as f64 / result.seconds.max(1e-9);
        self.wait_quiet(window, budget, "W6").await;
        let after = self.snap().await;
        result.activity = self.activity(&before, &after);
        result
    }

    /// Parents and children in the bench namespace, and their JSON size.
    async fn cached_world(&self) -> (usize, u64) {
        let mut count = 0;
        let mut bytes = 0;
        for path in [parents_path(), configmaps_path(NAMESPACE)] {
            // Pages, so that the harness never holds the whole list at once.
            let mut next = String::new();
            loop {
                let page = format!("{path}?limit=5000&continue={}", query_escape(&next));
                let Ok(list) = self.rest.list(&page).await else {
                    break;
                };
                for item in list["items"].as_array().into_iter().flatten() {
                    count += 1;
                    bytes += serde_json::to_vec(item).map_or(0, |v| v.len() as u64);
                }
                match list["metadata"]["continue"].as_str() {
                    Some(c) if !c.is_empty() => next = c.to_string(),
                    _ => break,
                }
            }
        }
        (count, bytes)
    }

    async fn create_unrelated(&mut self, count: usize) -> u64 {
        let bytes = Arc::new(Mutex::new(0u64));
        let errors = Arc::new(Mutex::new(0usize));
        futures::stream::iter(0..count)
            .for_each_concurrent(CONCURRENCY, |i| {
                let rest = self.rest.clone();
                let bytes = bytes.clone();
                let errors = errors.clone();
                async move {
                    match rest
                        .create(
                            &configmaps_path(UNRELATED_NAMESPACE),
                            &objects::unrelated(i),
                        )
                        .await
                    {
                        Ok(v) => {
                            *bytes.lock() += serde_json::to_vec(&v).map_or(0, |v| v.len() as u64);
                        }
                        Err(_) => *errors.lock() += 1,
                    }
                }
            })
            .await;
        let errors = *errors.lock();
        if errors > 0 {
            self.problems
                .push(format!("W9: {errors} unrelated ConfigMaps not created"));
        }
        *bytes.lock()
    }

    /// Checks the world against `expected`.
    fn check(&mut self, what: &str) -> bool {
        let bad = self.observer.unconverged(&self.expected);
        if bad.is_empty() {
            return true;
        }
        let shown: Vec<_> = bad.iter().take(5).cloned().collect();
        self.problems.push(format!(
            "{what}: {} problems: {}",
            bad.len(),
            shown.join("; ")
        ));
        false
    }
}

/// Runs every workload for `contender`.
pub async fn run(
    contender: Contender,
    programs: Option<&Programs>,
    opts: &Options,
) -> Result<RunResult> {
    let me = std::process::id();
    let cpu0 = super::process::cpu_seconds(me);
    let mut w = World::start(contender, programs.cloned(), opts).await?;
    let window = opts.quiet;
    // Listing the converged world takes longer the larger it is.
    let startup = Duration::from_secs(120.max(opts.n as u64 / 250));
    let skipped = |p: Phase| opts.skip.contains(&p);
    let mut r = RunResult {
        contender: contender.name().into(),
        settings: contender.settings(),
        hook: if contender.is_ours() {
            opts.hook.name().into()
        } else {
            "-".into()
        },
        cluster: opts.cluster.name().into(),
        n: opts.n,
        m: CHILDREN,
        repeat: opts.repeat,
        skipped: opts.skip.clone(),
        ..RunResult::default()
    };

    if contender == Contender::Floor {
        w.prepare_floor(opts).await;
        let stats = w.floor_stats.as_ref();
        r.settings = format!(
            "direct writes, {} requests in flight (the knee of {:?})",
            stats.map_or(CONCURRENCY, |s| s.concurrency),
            opts.floor_levels
        );
    }

    if contender.has_process() {
        let before = w.snap().await;
        w.spawn().await?;
        w.wait_watching(&before, startup).await?;
        w.wait_quiet(window, startup, "start").await;
        r.memory.rss_empty_kib = w.proc.as_ref().map_or(0, Proc::rss_kib);
    }

    let w2_cpu0 = super::process::cpu_seconds(me);
    let w2_busy0 = w.observer.busy_seconds();
    r.w2 = w.w2(opts.n, window).await;
    r.harness.w2_cpu_seconds = super::process::cpu_seconds(me) - w2_cpu0;
    r.harness.w2_observer_busy_seconds = w.observer.busy_seconds() - w2_busy0;
    r.harness.rss_after_w2_kib = super::process::status_kib(me, "VmRSS");
    let mut ok = r.w2.converged == r.w2.count && w.check("after W2");
    if !skipped(Phase::W3) {
        r.w3 = w.w3(opts.n, window).await;
        ok &= r.w3.converged == r.w3.count && w.check("after W3");
    }
    if !skipped(Phase::W5) {
        r.w5 = w.w5(opts.n, window).await;
        ok &= r.w5.converged == r.w5.count && w.check("after W5");
    }

    if !skipped(Phase::W4) {
        let before = w.snap().await;
        let t0 = Instant::now();
        tokio::time::sleep(opts.idle).await;
        let after = w.snap().await;
        r.w4 = Idle {
            seconds: t0.elapsed().as_secs_f64(),
            activity: w.activity(&before, &after),
        };
    }
    r.memory.rss_after_idle_kib = w.proc.as_ref().map_or(0, Proc::rss_kib);

    if contender.has_process() {
        w.stop_proc().await;
        let before = w.snap().await;
        w.spawn().await?;
        let spawned = w.proc.as_ref().map_or_else(Instant::now, |p| p.spawned);
        w.wait_watching(&before, startup).await?;
        let last = w.wait_quiet(window, startup, "W1").await;
        let after = w.snap().await;
        r.w1 = ColdStart {
            settle_seconds: last.saturating_duration_since(spawned).as_secs_f64(),
            activity: w.activity(&before, &after),
        };
        ok &= w.check("after W1");
        r.memory.rss_steady_kib = w.proc.as_ref().map_or(0, Proc::rss_kib);
        let (count, bytes) = w.cached_world().await;
        r.memory.cached_objects = count;
        r.memory.cached_json_bytes = bytes;
        let grown = r
            .memory
            .rss_steady_kib
            .saturating_sub(r.memory.rss_empty_kib) as f64;
        r.memory.rss_per_1k_objects_kib = grown / (count.max(1) as f64) * 1000.0;
        r.memory.rss_over_json = grown * 1024.0 / (bytes.max(1) as f64);

        if opts.unrelated > 0 {
            r.memory.unrelated = opts.unrelated;
            r.memory.unrelated_json_bytes = w.create_unrelated(opts.unrelated).await;
            let long = Duration::from_secs(600);
            w.wait_cpu_quiet(Duration::from_secs(2), long, "W9 create")
                .await;
            w.stop_proc().await;
            let before = w.snap().await;
            w.spawn().await?;
            let spawned = w.proc.as_ref().map_or_else(Instant::now, |p| p.spawned);
            w.wait_watching(&before, long).await?;
            w.wait_cpu_quiet(Duration::from_secs(2), long, "W9 restart")
                .await;
            r.memory.unrelated_startup_seconds = spawned.elapsed().as_secs_f64();
            r.memory.rss_with_unrelated_kib = w.proc.as_ref().map_or(0, Proc::rss_kib);
            let grown = r
                .memory
                .rss_with_unrelated_kib
                .saturating_sub(r.memory.rss_steady_kib) as f64;
            r.memory.unrelated_rss_per_1k_kib = grown / opts.unrelated as f64 * 1000.0;
            ok &= w.check("after W9");
        }
    }

    if !skipped(Phase::W6) {
        r.w6 = w.w6(opts.n, window).await;
    }
    r.harness.rss_end_kib = super::process::status_kib(me, "VmRSS");
    r.harness.peak_rss_kib = super::process::status_kib(me, "VmHWM");
    r.harness.observer_events = w.observer.events();
    if w.contender.has_process() {
        let hwm_now = w.proc.as_ref().map_or(0, Proc::hwm_kib);
        w.stop_proc().await;
        r.memory.peak_kib = w
            .totals
            .iter()
            .map(|t| t.hwm_kib)
            .max()
            .unwrap_or(0)
            .max(hwm_now);
        r.cpu_seconds_total = w.totals.iter().map(|t| t.cpu_seconds).sum();
    }
    r.converged = ok;
    r.problems = std::mem::take(&mut w.problems);
    r.floor = w.floor_stats.take();
    drop(w);
    r.harness.cpu_seconds = super::process::cpu_seconds(me) - cpu0;
    Ok(r)
}
