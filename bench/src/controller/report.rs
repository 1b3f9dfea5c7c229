//! Medians over repeats, the target checks and the Markdown report.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use super::floor::FloorStats;
use super::run::RunResult;

/// Median of `values` (mean of the middle two for an even count; 0 when
/// empty).
pub fn median(values: impl IntoIterator<Item = f64>) -> f64 {
    let mut v: Vec<f64> = values.into_iter().filter(|x| x.is_finite()).collect();
    if v.is_empty() {
        return 0.0;
    }
    v.sort_by(f64::total_cmp);
    let mid = v.len() / 2;
    if v.len() % 2 == 1 {
        v[mid]
    } else {
        (v[mid - 1] + v[mid]) / 2.0
    }
}

/// One contender at one N: medians over its repeats.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Summary {
    /// Contender name (`ours`, `ours-tuned`, `kube-rs`, `kopf`, `floor`, ...).
    pub contender: String,
    /// The contender's settings in words (workers, client limits).
    pub settings: String,
    /// Hook implementation (`rust` or `python`).
    pub hook: String,
    /// Parents (N).
    pub n: usize,
    /// Children per parent (M).
    pub m: i64,
    /// Repeats summarised.
    pub runs: usize,
    /// Runs in which every parent converged correctly.
    pub converged_runs: usize,
    /// W2 (create N parents): seconds until every parent converged.
    pub w2_seconds: f64,
    /// W2 throughput, parents per second.
    pub w2_parents_per_sec: f64,
    /// W2 median latency from a parent's creation to its convergence, ms.
    pub w2_p50_ms: f64,
    /// W2 99th percentile latency, ms.
    pub w2_p99_ms: f64,
    /// W2 largest latency, ms.
    pub w2_max_ms: f64,
    /// W2 object writes per parent.
    pub w2_writes_per_parent: f64,
    /// W2 API requests per parent.
    pub w2_requests_per_parent: f64,
    /// Requests per parent by verb (W2).
    pub w2_requests_by_verb_per_parent: BTreeMap<String, f64>,
    /// W2 hook calls per parent.
    pub w2_hook_calls_per_parent: f64,
    /// W2 hook request and response bytes per parent.
    pub w2_hook_bytes_per_parent: f64,
    /// CPU seconds of the contender per 1,000 parents (W2); not for the
    /// floor.
    pub w2_cpu_s_per_1k_parents: Option<f64>,
    /// CPU seconds per 1,000 hook calls (syncs), `ours` only.
    pub w2_cpu_s_per_1k_syncs: Option<f64>,
    /// W3 (change every parent's spec): seconds until all converged again.
    pub w3_seconds: f64,
    /// W3 median latency, ms.
    pub w3_p50_ms: f64,
    /// W3 99th percentile latency, ms.
    pub w3_p99_ms: f64,
    /// W3 largest latency, ms.
    pub w3_max_ms: f64,
    /// W3 object writes per parent.
    pub w3_writes_per_parent: f64,
    /// W3 hook calls per parent.
    pub w3_hook_calls_per_parent: f64,
    /// W5 (delete one child per parent): median latency until it is back, ms.
    pub w5_p50_ms: f64,
    /// W5 99th percentile latency, ms.
    pub w5_p99_ms: f64,
    /// W5 largest latency, ms.
    pub w5_max_ms: f64,
    /// W5 object writes per deleted child.
    pub w5_writes_per_child: f64,
    /// W4 (idle): seconds observed.
    pub w4_seconds: f64,
    /// Object writes (Events apart).
    pub w4_writes: f64,
    /// W4 Event writes.
    pub w4_event_writes: f64,
    /// W4 hook calls.
    pub w4_hook_calls: f64,
    /// W4 API requests.
    pub w4_requests: f64,
    /// W4 CPU seconds of the contender.
    pub w4_cpu_s: f64,
    /// Largest over the repeats (the targets are about every run).
    pub w4_writes_max: u64,
    /// W4 hook calls, largest over the repeats.
    pub w4_hook_calls_max: u64,
    /// W1 (cold start over the converged world): seconds until quiet.
    pub w1_settle_s: f64,
    /// Object writes (Events apart).
    pub w1_writes: f64,
    /// W1 Event writes.
    pub w1_event_writes: f64,
    /// W1 hook calls.
    pub w1_hook_calls: f64,
    /// W1 API requests.
    pub w1_requests: f64,
    /// W1 object writes, largest over the repeats.
    pub w1_writes_max: u64,
    /// W6 (delete every parent): seconds until every parent and child is gone.
    pub w6_seconds: f64,
    /// W6 parents deleted per second.
    pub w6_parents_per_sec: f64,
    /// W6 object writes per parent.
    pub w6_writes_per_parent: f64,
    /// W6 hook calls per parent.
    pub w6_hook_calls_per_parent: f64,
    /// Writes per parent while the finalizer was added before W6.
    pub w6_prep_writes_per_parent: f64,
    /// RSS over an empty namespace, MiB.
    pub rss_empty_mib: f64,
    /// RSS after W4, MiB.
    pub rss_after_idle_mib: f64,
    /// RSS after the W1 restart, MiB.
    pub rss_steady_mib: f64,
    /// Peak RSS of the contender's processes, MiB.
    pub peak_mib: f64,
    /// Parents and children the contender must cache.
    pub cached_objects: f64,
    /// Their JSON size as served, MiB.
    pub cached_json_mib: f64,
    /// RSS growth per 1,000 cached objects, KiB.
    pub rss_per_1k_objects_kib: f64,
    /// RSS growth over the cached objects' JSON size.
    pub rss_over_json: f64,
    /// Unrelated ConfigMaps present for the last measurement (0: skipped).
    pub unrelated: usize,
    /// RSS with the unrelated ConfigMaps present, MiB.
    pub rss_with_unrelated_mib: Option<f64>,
    /// RSS growth per 1,000 unrelated objects, KiB.
    pub unrelated_rss_per_1k_kib: Option<f64>,
    /// The unrelated objects' JSON size, MiB.
    pub unrelated_json_mib: Option<f64>,
    /// Start-up seconds with the unrelated objects present.
    pub unrelated_startup_s: Option<f64>,
    /// CPU seconds of every process of the contender over the run.
    pub cpu_seconds_total: f64,
    /// CPU seconds of the contender in W2 (not for the floor).
    pub w2_cpu_s: Option<f64>,
    /// W2 seconds over the floor's W2 seconds at the same N.
    pub w2_over_floor: Option<f64>,
    /// The floor's knee search and timing (first repeat; floor only).
    pub floor: Option<FloorStats>,
    /// The harness process's peak RSS (with the embedded server), MiB.
    pub harness_peak_mib: f64,
    /// The harness process's RSS once W2 converged, MiB.
    pub harness_rss_after_w2_mib: f64,
    /// The harness process's CPU seconds in W2.
    pub harness_w2_cpu_s: f64,
    /// Of those, the observer's decoding of watch events (wall seconds;
    /// absent from reports made before it was measured).
    pub observer_w2_busy_s: Option<f64>,
    /// Workloads left out.
    pub skipped: Vec<String>,
    /// Problems of every run.
    pub problems: Vec<String>,
}

const KIB: f64 = 1024.0;

/// Groups `runs` by N and contender (in a fixed contender order) and takes
/// medians.
pub fn summarize(runs: &[RunResult]) -> Vec<Summary> {
    // Contenders in a fixed order; `ours-tuned+<hook>` right after
    // `ours-tuned`.
    let order = |name: &str| {
        let (base, hook) = name.split_once('+').unwrap_or((name, ""));
        let base = ["ours-defaults", "ours-tuned", "kube-rs", "kopf", "floor"]
            .iter()
            .position(|c| *c == base)
            .unwrap_or(99);
        let hook = ["", "python", "rust-1ms", "rust-10ms"]
            .iter()
            .position(|h| *h == hook)
            .unwrap_or(9);
        base * 10 + hook
    };
    let mut groups: BTreeMap<(usize, usize, String), Vec<&RunResult>> = BTreeMap::new();
    for r in runs {
        groups
            .entry((r.n, order(&r.contender), r.contender.clone()))
            .or_default()
            .push(r);
    }
    let mut out: Vec<Summary> = groups
        .into_values()
        .map(|rs| summarize_group(&rs))
        .collect();
    let floors: BTreeMap<usize, f64> = out
        .iter()
        .filter(|x| x.contender == "floor" && x.w2_seconds > 0.0)
        .map(|x| (x.n, x.w2_seconds))
        .collect();
    for x in &mut out {
        x.w2_over_floor = floors.get(&x.n).map(|f| x.w2_seconds / f);
    }
    out
}

fn summarize_group(rs: &[&RunResult]) -> Summary {
    let first = rs[0];
    let n = first.n as f64;
    let med = |f: &dyn Fn(&RunResult) -> f64| median(rs.iter().map(|r| f(r)));
    let has_process = first.contender != "floor";
    let is_ours = first.contender.starts_with("ours");
    let all_verbs: BTreeSet<String> = rs
        .iter()
        .flat_map(|r| r.w2.activity.requests.keys().cloned())
        .collect();
    let verbs = all_verbs
        .into_iter()
        .map(|verb| {
            let v = med(&|r| r.w2.activity.requests.get(&verb).copied().unwrap_or(0) as f64 / n);
            (verb, v)
        })
        .collect();
    let unrelated: Vec<&&RunResult> = rs.iter().filter(|r| r.memory.unrelated > 0).collect();
    let umed = |f: &dyn Fn(&RunResult) -> f64| {
        (!unrelated.is_empty()).then(|| median(unrelated.iter().map(|r| f(r))))
    };
    let per = |count: usize| count.max(1) as f64;
    Summary {
        contender: first.contender.clone(),
        settings: first.settings.clone(),
        hook: first.hook.clone(),
        n: first.n,
        m: first.m,
        runs: rs.len(),
        converged_runs: rs.iter().filter(|r| r.converged).count(),
        w2_seconds: med(&|r| r.w2.seconds),
        w2_parents_per_sec: med(&|r| r.w2.per_sec),
        w2_p50_ms: med(&|r| r.w2.latency_ms.p50),
        w2_p99_ms: med(&|r| r.w2.latency_ms.p99),
        w2_max_ms: med(&|r| r.w2.latency_ms.max),
        w2_writes_per_parent: med(&|r| r.w2.activity.writes as f64 / n),
        w2_requests_per_parent: med(&|r| r.w2.activity.total_requests() as f64 / n),
        w2_requests_by_verb_per_parent: verbs,
        w2_hook_calls_per_parent: med(&|r| r.w2.activity.hook.calls() as f64 / n),
        w2_hook_bytes_per_parent: med(&|r| {
            (r.w2.activity.hook.bytes_in + r.w2.activity.hook.bytes_out) as f64 / n
        }),
        w2_cpu_s_per_1k_parents: has_process
            .then(|| med(&|r| r.w2.activity.cpu_seconds / n * 1000.0)),
        w2_cpu_s_per_1k_syncs: is_ours.then(|| {
            med(&|r| r.w2.activity.cpu_seconds / per(r.w2.activity.hook.calls() as usize) * 1000.0)
        }),
        w3_seconds: med(&|r| r.w3.seconds),
        w3_p50_ms: med(&|r| r.w3.latency_ms.p50),
        w3_p99_ms: med(&|r| r.w3.latency_ms.p99),
        w3_max_ms: med(&|r| r.w3.latency_ms.max),
        w3_writes_per_parent: med(&|r| r.w3.activity.writes as f64 / per(r.w3.count)),
        w3_hook_calls_per_parent: med(&|r| r.w3.activity.hook.calls() as f64 / per(r.w3.count)),
        w5_p50_ms: med(&|r| r.w5.latency_ms.p50),
        w5_p99_ms: med(&|r| r.w5.latency_ms.p99),
        w5_max_ms: med(&|r| r.w5.latency_ms.max),
        w5_writes_per_child: med(&|r| r.w5.activity.writes as f64 / per(r.w5.count)),
        w4_seconds: med(&|r| r.w4.seconds),
        w4_writes: med(&|r| r.w4.activity.object_writes() as f64),
        w4_event_writes: med(&|r| r.w4.activity.event_writes as f64),
        w4_hook_calls: med(&|r| r.w4.activity.hook.calls() as f64),
        w4_requests: med(&|r| r.w4.activity.total_requests() as f64),
        w4_cpu_s: med(&|r| r.w4.activity.cpu_seconds),
        w4_writes_max: rs
            .iter()
            .map(|r| r.w4.activity.object_writes())
            .max()
            .unwrap_or(0),
        w4_hook_calls_max: rs
            .iter()
            .map(|r| r.w4.activity.hook.calls())
            .max()
            .unwrap_or(0),
        w1_settle_s: med(&|r| r.w1.settle_seconds),
        w1_writes: med(&|r| r.w1.activity.object_writes() as f64),
        w1_event_writes: med(&|r| r.w1.activity.event_writes as f64),
        w1_hook_calls: med(&|r| r.w1.activity.hook.calls() as f64),
        w1_requests: med(&|r| r.w1.activity.total_requests() as f64),
        w1_writes_max: rs
            .iter()
            .map(|r| r.w1.activity.object_writes())
            .max()
            .unwrap_or(0),
        w6_seconds: med(&|r| r.w6.seconds),
        w6_parents_per_sec: med(&|r| r.w6.per_sec),
        w6_writes_per_parent: med(&|r| r.w6.activity.writes as f64 / n),
        w6_hook_calls_per_parent: med(&|r| r.w6.activity.hook.calls() as f64 / n),
        w6_prep_writes_per_parent: med(&|r| r.w6.prep.writes as f64 / n),
        rss_empty_mib: med(&|r| r.memory.rss_empty_kib as f64 / KIB),
        rss_after_idle_mib: med(&|r| r.memory.rss_after_idle_kib as f64 / KIB),
        rss_steady_mib: med(&|r| r.memory.rss_steady_kib as f64 / KIB),
        peak_mib: med(&|r| r.memory.peak_kib as f64 / KIB),
        cached_objects: med(&|r| r.memory.cached_objects as f64),
        cached_json_mib: med(&|r| r.memory.cached_json_bytes as f64 / KIB / KIB),
        rss_per_1k_objects_kib: med(&|r| r.memory.rss_per_1k_objects_kib),
        rss_over_json: med(&|r| r.memory.rss_over_json),
        unrelated: unrelated.first().map_or(0, |r| r.memory.unrelated),
        rss_with_unrelated_mib: umed(&|r| r.memory.rss_with_unrelated_kib as f64 / KIB),
        unrelated_rss_per_1k_kib: umed(&|r| r.memory.unrelated_rss_per_1k_kib),
        unrelated_json_mib: umed(&|r| r.memory.unrelated_json_bytes as f64 / KIB / KIB),
        unrelated_startup_s: umed(&|r| r.memory.unrelated_startup_seconds),
        cpu_seconds_total: med(&|r| r.cpu_seconds_total),
        w2_cpu_s: has_process.then(|| med(&|r| r.w2.activity.cpu_seconds)),
        w2_over_floor: None,
        floor: first.floor.clone(),
        harness_peak_mib: med(&|r| r.harness.peak_rss_kib as f64 / KIB),
        harness_rss_after_w2_mib: med(&|r| r.harness.rss_after_w2_kib as f64 / KIB),
        harness_w2_cpu_s: med(&|r| r.harness.w2_cpu_seconds),
        observer_w2_busy_s: Some(med(&|r| r.harness.w2_observer_busy_seconds)),
        skipped: first.skipped.iter().map(|p| format!("{p:?}")).collect(),
        problems: rs
            .iter()
            .flat_map(|r| {
                r.problems
                    .iter()
                    .map(move |p| format!("repeat {}: {p}", r.repeat + 1))
            })
            .collect(),
    }
}

/// One target and whether it was met.
#[derive(Clone, Debug, Serialize)]
pub struct Target {
    /// The target, in words.
    pub target: String,
    /// `met`, `missed` or `not measured`.
    pub status: String,
    /// What was measured against it.
    pub detail: String,
}

fn target(name: &str, met: Option<bool>, detail: String) -> Target {
    Target {
        target: name.to_string(),
        status: match met {
            Some(true) => "met",
            Some(false) => "missed",
            None => "not measured",
        }
        .to_string(),
        detail,
    }
}

fn find<'a>(s: &'a [Summary], contender: &str, n: usize) -> Option<&'a Summary> {
    s.iter().find(|x| x.contender == contender && x.n == n)
}

/// The N the throughput targets are judged at: 1,000 when measured, else
/// the largest N measured.
pub fn target_n(s: &[Summary]) -> usize {
    if s.iter().any(|x| x.n == 1000) {
        1000
    } else {
        s.iter().map(|x| x.n).max().unwrap_or(0)
    }
}

/// Checks the targets against the summaries ("ours" is `ours-tuned`).
pub fn targets(s: &[Summary]) -> Vec<Target> {
    let n = target_n(s);
    let ours = find(s, "ours-tuned", n);
    let mut out = Vec::new();

    let name = "≥ 10x kopf's throughput at ≤ 1/10 of its RSS";
    out.push(match (ours, find(s, "kopf", n)) {
        (Some(o), Some(k)) => {
            let speed = o.w2_parents_per_sec / k.w2_parents_per_sec.max(1e-9);
            let mem = o.peak_mib / k.peak_mib.max(1e-9);
            target(
                name,
                Some(speed >= 10.0 && mem <= 0.1),
                format!(
                    "W2 N={n}: {:.0} vs {:.0} parents/s ({speed:.1}x); peak RSS {:.1} vs {:.1} MiB ({mem:.2}x)",
                    o.w2_parents_per_sec, k.w2_parents_per_sec, o.peak_mib, k.peak_mib,
                ),
            )
        }
        _ => target(name, None, "ours-tuned or kopf not run".into()),
    });

    out.push(every_contender_at_least_the_floor(s));
    out.push(kube_rs_throughput(s, n));
    out.push(p99_within_twice_p50(s));

    let ours_all: Vec<&Summary> = s
        .iter()
        .filter(|x| x.contender.starts_with("ours"))
        .collect();
    let which = ours_all
        .iter()
        .map(|x| format!("{} N={}", x.contender, x.n))
        .collect::<Vec<_>>()
        .join(", ");
    let name = "W4: zero writes and zero hook calls";
    let idle: Vec<&&Summary> = ours_all
        .iter()
        .filter(|x| !x.skipped.iter().any(|p| p == "W4"))
        .collect();
    let idle_which = idle
        .iter()
        .map(|x| format!("{} N={}", x.contender, x.n))
        .collect::<Vec<_>>()
        .join(", ");
    out.push(if idle.is_empty() {
        target(name, None, "ours not run, or W4 left out".into())
    } else {
        let writes: u64 = idle.iter().map(|x| x.w4_writes_max).sum();
        let calls: u64 = idle.iter().map(|x| x.w4_hook_calls_max).sum();
        target(
            name,
            Some(writes == 0 && calls == 0),
            format!(
                "{writes} writes and {calls} hook calls in the idle windows of every run ({idle_which})"
            ),
        )
    });

    let name = "W1: zero writes on a cold start";
    out.push(if ours_all.is_empty() {
        target(name, None, "ours not run".into())
    } else {
        let writes: u64 = ours_all.iter().map(|x| x.w1_writes_max).sum();
        let events = ours_all
            .iter()
            .map(|x| x.w1_event_writes)
            .fold(0.0, f64::max);
        target(
            name,
            Some(writes == 0),
            format!(
                "{writes} object writes in every run ({which}); {events} Event writes per start (the controller's Starting/Started events)"
            ),
        )
    });

    let largest = find(s, "ours-tuned", 10_000).or_else(|| {
        s.iter()
            .filter(|x| x.contender == "ours-tuned" && x.n < 100_000)
            .max_by_key(|x| x.n)
    });
    let name = "RSS growth at most 1.5x the JSON size of the cached objects (W9, N=10000)";
    out.push(match largest {
        Some(o) => target(
            name,
            Some(o.rss_over_json <= 1.5),
            format!(
                "ours-tuned N={}: {:.0} objects, {:.2} MiB of JSON; RSS {:.1} MiB steady, {:.1} MiB when empty: growth {:.2}x the JSON ({:.0} KiB per 1,000 objects)",
                o.n,
                o.cached_objects,
                o.cached_json_mib,
                o.rss_steady_mib,
                o.rss_empty_mib,
                o.rss_over_json,
                o.rss_per_1k_objects_kib
            ),
        ),
        None => target(name, None, "ours-tuned not run".into()),
    });

    let with_unrelated = s
        .iter()
        .filter(|x| x.contender == "ours-tuned" && x.rss_with_unrelated_mib.is_some())
        .max_by_key(|x| x.n);
    let name = "objects no selector can match are not cached";
    out.push(match with_unrelated {
        Some(o) => {
            let per_1k = o.unrelated_rss_per_1k_kib.unwrap_or(0.0);
            let json_per_1k =
                o.unrelated_json_mib.unwrap_or(0.0) * KIB * KIB / KIB / per_unrelated(o) * 1000.0;
            target(
                name,
                Some(per_1k <= 0.1 * json_per_1k),
                format!(
                    "ours-tuned N={}: with {} unrelated ConfigMaps ({:.1} MiB of JSON) RSS grew {:.1} MiB ({per_1k:.0} KiB per 1,000; their JSON is {json_per_1k:.0} KiB per 1,000)",
                    o.n,
                    o.unrelated,
                    o.unrelated_json_mib.unwrap_or(0.0),
                    o.rss_with_unrelated_mib.unwrap_or(0.0) - o.rss_steady_mib,
                ),
            )
        }
        None => target(
            name,
            None,
            "W9 with unrelated objects not run (quick mode, or --unrelated 0)".into(),
        ),
    });
    out.extend(hundred_thousand(s));
    out
}

/// Every contender takes at least the floor's W2 time (else the floor is
/// no floor), at every N the floor ran.
fn every_contender_at_least_the_floor(s: &[Summary]) -> Target {
    let name = "every contender's W2 time ≥ the floor's";
    let rows: Vec<&Summary> = s
        .iter()
        .filter(|x| x.contender != "floor" && x.w2_over_floor.is_some())
        .collect();
    if rows.is_empty() {
        return target(name, None, "the floor and another contender not run".into());
    }
    let met = rows.iter().all(|x| x.w2_over_floor.unwrap_or(0.0) >= 1.0);
    let detail = rows
        .iter()
        .map(|x| {
            format!(
                "{} N={}: {:.2}x",
                x.contender,
                x.n,
                x.w2_over_floor.unwrap_or(0.0)
            )
        })
        .collect::<Vec<_>>()
        .join("; ");
    target(name, Some(met), detail)
}

/// ours-tuned's W2 throughput ≥ the kube-rs baseline's at N = 1,000 and
/// 10,000 (those measured; else at `fallback`).
fn kube_rs_throughput(s: &[Summary], fallback: usize) -> Target {
    let name = "≥ 1.0x the kube-rs baseline's throughput (N=1000 and 10000)";
    let mut ns: Vec<usize> = [1000, 10_000]
        .into_iter()
        .filter(|n| find(s, "ours-tuned", *n).is_some() && find(s, "kube-rs", *n).is_some())
        .collect();
    if ns.is_empty() {
        ns.push(fallback);
    }
    let mut met = Some(true);
    let mut parts = Vec::new();
    for n in ns {
        match (find(s, "ours-tuned", n), find(s, "kube-rs", n)) {
            (Some(o), Some(k)) => {
                let ratio = o.w2_parents_per_sec / k.w2_parents_per_sec.max(1e-9);
                if ratio < 1.0 {
                    met = Some(false);
                }
                parts.push(format!(
                    "W2 N={n}: {:.0} vs {:.0} parents/s ({ratio:.2}x)",
                    o.w2_parents_per_sec, k.w2_parents_per_sec
                ));
            }
            _ => return target(name, None, "ours-tuned or kube-rs not run".into()),
        }
    }
    target(name, met, parts.join("; "))
}

/// ours-tuned's W2 p99 at most twice its p50 (N = 10,000, else the largest
/// N under 100,000).
fn p99_within_twice_p50(s: &[Summary]) -> Target {
    let name = "W2 p99 ≤ 2x p50 (ours-tuned, N=10000)";
    let o = find(s, "ours-tuned", 10_000).or_else(|| {
        s.iter()
            .filter(|x| x.contender == "ours-tuned" && x.n < 100_000)
            .max_by_key(|x| x.n)
    });
    match o {
        Some(o) => {
            let ratio = o.w2_p99_ms / o.w2_p50_ms.max(1e-9);
            target(
                name,
                Some(ratio <= 2.0),
                format!(
                    "N={}: p50 {:.1} ms, p99 {:.1} ms ({ratio:.2}x)",
                    o.n, o.w2_p50_ms, o.w2_p99_ms
                ),
            )
        }
        None => target(name, None, "ours-tuned not run".into()),
    }
}

/// The 100,000-parent targets: peak RSS ≤ 1 GiB; cold start quiet within
/// 60 s, with no object write.
fn hundred_thousand(s: &[Summary]) -> Vec<Target> {
    let o = s
        .iter()
        .filter(|x| x.contender == "ours-tuned" && x.n >= 100_000)
        .max_by_key(|x| x.n);
    let rss = "N=100000: peak RSS ≤ 1 GiB";
    let cold = "N=100000: W1 cold start quiet within 60 s, 0 object writes";
    let Some(o) = o else {
        return vec![
            target(rss, None, "ours-tuned not run at N=100000".into()),
            target(cold, None, "ours-tuned not run at N=100000".into()),
        ];
    };
    vec![
        target(
            rss,
            Some(o.peak_mib <= 1024.0),
            format!(
                "ours-tuned N={}: peak {:.1} MiB, steady {:.1} MiB ({:.0} cached objects)",
                o.n, o.peak_mib, o.rss_steady_mib, o.cached_objects
            ),
        ),
        target(
            cold,
            Some(o.w1_settle_s <= 60.0 && o.w1_writes_max == 0),
            format!(
                "ours-tuned N={}: quiet after {:.1} s, {} object writes{}, {} hook calls, {} requests",
                o.n,
                o.w1_settle_s,
                o.w1_writes_max,
                events(o.w1_event_writes),
                o.w1_hook_calls,
                o.w1_requests
            ),
        ),
    ]
}

fn per_unrelated(s: &Summary) -> f64 {
    s.unrelated.max(1) as f64
}

/// " (+k events)" when Events were written.
fn events(k: f64) -> String {
    if k > 0.0 {
        format!(" (+{k} events)")
    } else {
        String::new()
    }
}

/// One Markdown table row of `cells` (anything that implements
/// `Display`).
macro_rules! row {
    ($($cell:expr),+ $(,)?) => {{
        let cells: &[String] = &[$($cell.to_string()),+];
        format!("| {} |\n", cells.join(" | "))
    }};
}

fn f(v: f64, digits: usize) -> String {
    if v.is_nan() {
        "–".into()
    } else {
        format!("{v:.digits$}")
    }
}

fn opt(v: Option<f64>, digits: usize) -> String {
    v.map_or("–".into(), |v| f(v, digits))
}

/// The report as Markdown: one table per N, then requests, other
/// workloads, memory, targets and problems.
pub fn markdown(s: &[Summary], targets: &[Target], repeats: usize) -> String {
    let mut out = String::new();
    let mut ns: Vec<usize> = s.iter().map(|x| x.n).collect();
    ns.dedup();
    out.push_str(&format!(
        "Medians over up to {repeats} repeat(s) (the last column says how many ran); M = {} children per parent. Latencies in ms, from the harness's write to convergence seen through its watch. Writes and requests are the contender's own, from the server's counters.\n\n",
        s.first().map_or(5, |x| x.m)
    ));
    for n in &ns {
        out.push_str(&format!("#### N = {n} parents\n\n"));
        out.push_str("| contender | W2 s | × floor | parents/s | W2 p50 | W2 p99 | W2 max | writes/parent | hook calls/parent | hook KiB/parent | CPU s/1k parents | W3 p99 | W5 p99 | W4 object writes / hook calls / requests | W1 object writes / hook calls / requests | W6 s | peak RSS MiB | steady RSS MiB | converged runs |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---|---:|---:|---:|---|\n");
        for x in s.iter().filter(|x| x.n == *n) {
            let floor = x.contender == "floor";
            let ours = x.contender.starts_with("ours");
            let dash = |v: String| if floor { "–".to_string() } else { v };
            out.push_str(&row!(
                x.contender,
                f(x.w2_seconds, 2),
                opt(x.w2_over_floor, 2),
                f(x.w2_parents_per_sec, 0),
                f(x.w2_p50_ms, 1),
                f(x.w2_p99_ms, 1),
                f(x.w2_max_ms, 1),
                f(x.w2_writes_per_parent, 2),
                if ours {
                    f(x.w2_hook_calls_per_parent, 2)
                } else {
                    "–".into()
                },
                if ours {
                    f(x.w2_hook_bytes_per_parent / 1024.0, 2)
                } else {
                    "–".into()
                },
                opt(x.w2_cpu_s_per_1k_parents, 2),
                f(x.w3_p99_ms, 1),
                f(x.w5_p99_ms, 1),
                dash(format!(
                    "{}{} / {} / {}",
                    x.w4_writes,
                    events(x.w4_event_writes),
                    x.w4_hook_calls,
                    x.w4_requests
                )),
                dash(format!(
                    "{}{} / {} / {}",
                    x.w1_writes,
                    events(x.w1_event_writes),
                    x.w1_hook_calls,
                    x.w1_requests
                )),
                f(x.w6_seconds, 2),
                dash(f(x.peak_mib, 1)),
                dash(f(x.rss_steady_mib, 1)),
                format!("{}/{}", x.converged_runs, x.runs),
            ));
        }
        out.push('\n');
    }

    out.push_str("#### W2 requests per parent, by verb\n\n| contender | N | create | update | patch | delete | get | list | watch | total |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
    for x in s {
        let v = |verb: &str| {
            f(
                x.w2_requests_by_verb_per_parent
                    .get(verb)
                    .copied()
                    .unwrap_or(0.0),
                2,
            )
        };
        out.push_str(&row!(
            x.contender,
            x.n,
            v("create"),
            v("update"),
            v("patch"),
            v("delete"),
            v("get"),
            v("list"),
            v("watch"),
            f(x.w2_requests_per_parent, 2)
        ));
    }

    out.push_str("\n#### Other workloads\n\n| contender | N | W1 settle s | W3 s | W3 p50 / p99 / max | W3 writes/parent | W5 p50 / p99 / max | W5 writes/child | W4 CPU s | W6 parents/s | W6 writes/parent | W6 hook calls/parent | W6 prep writes/parent | CPU s/1k syncs |\n|---|---:|---:|---:|---|---:|---|---:|---:|---:|---:|---:|---:|---:|\n");
    for x in s {
        let floor = x.contender == "floor";
        let spread =
            |p50: f64, p99: f64, max: f64| format!("{} / {} / {}", f(p50, 1), f(p99, 1), f(max, 1));
        out.push_str(&row!(
            x.contender,
            x.n,
            if floor {
                "–".into()
            } else {
                f(x.w1_settle_s, 2)
            },
            f(x.w3_seconds, 2),
            spread(x.w3_p50_ms, x.w3_p99_ms, x.w3_max_ms),
            f(x.w3_writes_per_parent, 2),
            spread(x.w5_p50_ms, x.w5_p99_ms, x.w5_max_ms),
            f(x.w5_writes_per_child, 2),
            if floor {
                "–".into()
            } else {
                f(x.w4_cpu_s, 2)
            },
            f(x.w6_parents_per_sec, 0),
            f(x.w6_writes_per_parent, 2),
            f(x.w6_hook_calls_per_parent, 2),
            f(x.w6_prep_writes_per_parent, 2),
            opt(x.w2_cpu_s_per_1k_syncs, 2),
        ));
    }

    out.push_str("\n#### Memory (W9)\n\n| contender | N | RSS empty MiB | RSS after W2–W5 MiB | RSS steady MiB | peak MiB | cached objects | their JSON MiB | RSS growth per 1k objects KiB | growth / JSON | with unrelated MiB | per 1k unrelated KiB | restart with unrelated s |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
    for x in s.iter().filter(|x| x.contender != "floor") {
        out.push_str(&row!(
            x.contender,
            x.n,
            f(x.rss_empty_mib, 1),
            f(x.rss_after_idle_mib, 1),
            f(x.rss_steady_mib, 1),
            f(x.peak_mib, 1),
            f(x.cached_objects, 0),
            f(x.cached_json_mib, 2),
            f(x.rss_per_1k_objects_kib, 0),
            f(x.rss_over_json, 2),
            opt(x.rss_with_unrelated_mib, 1),
            opt(x.unrelated_rss_per_1k_kib, 0),
            opt(x.unrelated_startup_s, 1),
        ));
    }

    out.push_str(&floor_section(s));
    out.push_str(&harness_section(s));
    out.push_str("\n#### Targets\n\n| target | status | measured |\n|---|---|---|\n");
    for t in targets {
        out.push_str(&row!(t.target, t.status, t.detail));
    }

    let problems: Vec<String> = s
        .iter()
        .flat_map(|x| {
            x.problems
                .iter()
                .map(move |p| format!("{} N={}: {p}", x.contender, x.n))
        })
        .collect();
    if !problems.is_empty() {
        out.push_str("\n#### Problems\n\n");
        for p in problems {
            out.push_str(&format!("- {p}\n"));
        }
    }
    out
}

/// The floor's knee search and how its W2 time splits into writing and
/// observing.
fn floor_section(s: &[Summary]) -> String {
    let floors: Vec<&Summary> = s.iter().filter(|x| x.floor.is_some()).collect();
    if floors.is_empty() {
        return String::new();
    }
    let mut out = String::from(
        "\n#### The floor\n\nThe floor writes each parent's children and status itself, with as many requests in flight as the server can use: a knee search creates throw-away ConfigMaps at each concurrency and keeps the fastest (a lower one within 3 % wins). Its W2 time splits into the writes (until the last was acknowledged) and what the harness's watch adds until it has seen every parent converged.\n\n| N | probes: in flight → creates/s | chosen | W2 s | writes done s | watch lag s |\n|---:|---|---:|---:|---:|---:|\n",
    );
    for x in floors {
        let Some(fl) = &x.floor else { continue };
        let probes = fl
            .probes
            .iter()
            .map(|p| {
                let errors = if p.errors > 0 {
                    format!(" ({} errors)", p.errors)
                } else {
                    String::new()
                };
                format!("{} → {:.0}{errors}", p.concurrency, p.per_sec)
            })
            .collect::<Vec<_>>()
            .join(", ");
        out.push_str(&row!(
            x.n,
            probes,
            fl.concurrency,
            f(x.w2_seconds, 2),
            f(fl.w2_writes_done_seconds, 2),
            f(fl.w2_observer_lag_seconds, 2),
        ));
    }
    out
}

/// What the harness process itself (the embedded server and the
/// observer's watches with it) cost.
fn harness_section(s: &[Summary]) -> String {
    let mut out = String::from(
        "\n#### The harness's own cost\n\nThe harness process holds the embedded API server and the watches that time convergence; its peak RSS covers every run of the process up to that one.\n\n| contender | N | harness CPU s in W2 | of which the watches' decoding s | contender CPU s in W2 | harness RSS after W2 MiB | harness peak RSS MiB |\n|---|---:|---:|---:|---:|---:|---:|\n",
    );
    for x in s {
        out.push_str(&row!(
            x.contender,
            x.n,
            f(x.harness_w2_cpu_s, 2),
            opt(x.observer_w2_busy_s, 2),
            opt(x.w2_cpu_s, 2),
            f(x.harness_rss_after_w2_mib, 1),
            f(x.harness_peak_mib, 1),
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn medians() {
        assert_eq!(median([3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median([4.0, 1.0, 2.0, 3.0]), 2.5);
        assert_eq!(median([]), 0.0);
    }

    #[test]
    fn targets_without_runs_are_not_measured() {
        let t = targets(&[]);
        assert!(t.iter().all(|t| t.status == "not measured"));
    }

    #[test]
    fn a_report_of_two_runs() {
        let mut a = RunResult {
            contender: "ours-tuned".into(),
            n: 10,
            ..RunResult::default()
        };
        a.w2.seconds = 1.0;
        a.w2.per_sec = 10.0;
        let mut b = a.clone();
        b.contender = "floor".into();
        b.w2.seconds = 0.5;
        let s = summarize(&[b.clone(), a.clone()]);
        assert_eq!(s[0].contender, "ours-tuned");
        let t = targets(&s);
        let floor_target = |t: &[Target]| {
            t.iter()
                .find(|t| t.target.starts_with("every contender"))
                .map(|t| t.status.clone())
        };
        assert_eq!(floor_target(&t).as_deref(), Some("met"));
        let md = markdown(&s, &t, 1);
        assert!(md.contains("| ours-tuned | 1.00 |"), "{md}");
        // A contender faster than the floor means the floor is not one.
        a.w2.seconds = 0.25;
        let faster = summarize(&[b, a]);
        assert_eq!(floor_target(&targets(&faster)).as_deref(), Some("missed"));
    }
}
