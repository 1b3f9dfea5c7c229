//! The cost curve's data: a controller's CPU seconds and peak RSS against
//! N, for `ours-tuned` and the kube-rs baseline, from this run's summaries
//! and from earlier reports (`controller-bench.json`), so that runs at
//! different N (a 100,000-parent run is one of its own) join one curve.
//!
//! The CPU is the contender's in W2 (creating the world; every run has it,
//! whichever workloads it left out); the peak RSS the highest VmHWM of its
//! processes over the run.

use serde::Serialize;
use serde_json::Value;

use super::report::Summary;

/// Contenders on the cost curve.
pub const CONTENDERS: &[&str] = &["ours-tuned", "kube-rs"];

/// One point of the cost curve.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct CostPoint {
    /// Contender name.
    pub contender: String,
    /// Parents (N).
    pub n: usize,
    /// CPU seconds of the contender in W2.
    pub cpu_seconds: f64,
    /// Peak RSS, MiB.
    pub peak_mib: f64,
}

/// The points of `summaries`.
pub fn of_summaries(summaries: &[Summary]) -> Vec<CostPoint> {
    summaries
        .iter()
        .filter(|s| CONTENDERS.contains(&s.contender.as_str()) && s.peak_mib > 0.0)
        .map(|s| CostPoint {
            contender: s.contender.clone(),
            n: s.n,
            cpu_seconds: s.w2_cpu_s.unwrap_or(0.0),
            peak_mib: s.peak_mib,
        })
        .collect()
}

/// The points of an earlier report's JSON (its `summaries`); reports from
/// before `w2_cpu_s` existed give it as `w2_cpu_s_per_1k_parents`.
pub fn of_report(report: &Value) -> Vec<CostPoint> {
    report["summaries"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|s| {
            let contender = s["contender"].as_str()?;
            if !CONTENDERS.contains(&contender) {
                return None;
            }
            let n = s["n"].as_u64()? as usize;
            let cpu_seconds = s["w2_cpu_s"].as_f64().or_else(|| {
                s["w2_cpu_s_per_1k_parents"]
                    .as_f64()
                    .map(|c| c * n as f64 / 1000.0)
            })?;
            let peak_mib = s["peak_mib"].as_f64().filter(|p| *p > 0.0)?;
            Some(CostPoint {
                contender: contender.to_string(),
                n,
                cpu_seconds,
                peak_mib,
            })
        })
        .collect()
}

/// `current` and `earlier` joined, one point per contender and N (this
/// run's wins), ordered by contender and N.
pub fn merge(current: Vec<CostPoint>, earlier: &[CostPoint]) -> Vec<CostPoint> {
    let mut out = current;
    for p in earlier {
        if !out.iter().any(|q| q.contender == p.contender && q.n == p.n) {
            out.push(p.clone());
        }
    }
    out.sort_by(|a, b| {
        let rank = |c: &str| CONTENDERS.iter().position(|x| *x == c).unwrap_or(99);
        rank(&a.contender)
            .cmp(&rank(&b.contender))
            .then(a.n.cmp(&b.n))
    });
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn summary(contender: &str, n: usize, cpu: Option<f64>, peak: f64) -> Summary {
        Summary {
            contender: contender.into(),
            n,
            w2_cpu_s: cpu,
            peak_mib: peak,
            ..Summary::default()
        }
    }

    #[test]
    fn only_ours_tuned_and_kube_rs_with_a_process_are_points() {
        let s = [
            summary("ours-tuned", 1000, Some(1.5), 60.0),
            summary("floor", 1000, None, 0.0),
            summary("kopf", 1000, Some(9.0), 90.0),
            summary("kube-rs", 1000, Some(0.9), 70.0),
        ];
        let p = of_summaries(&s);
        assert_eq!(p.len(), 2);
        assert_eq!(
            (p[0].contender.as_str(), p[0].cpu_seconds),
            ("ours-tuned", 1.5)
        );
        assert_eq!((p[1].contender.as_str(), p[1].peak_mib), ("kube-rs", 70.0));
    }

    #[test]
    fn earlier_reports_give_cpu_per_run_or_per_thousand_parents() {
        let report = json!({"summaries": [
            {"contender": "ours-tuned", "n": 10000, "w2_cpu_s": 13.0, "peak_mib": 225.0},
            {"contender": "kube-rs", "n": 10000, "w2_cpu_s_per_1k_parents": 0.86, "peak_mib": 445.0},
            {"contender": "floor", "n": 10000, "peak_mib": 0.0},
            {"contender": "kube-rs", "n": 100, "w2_cpu_s": 0.1, "peak_mib": 0.0}
        ]});
        let p = of_report(&report);
        assert_eq!(p.len(), 2);
        assert_eq!(p[0].cpu_seconds, 13.0);
        assert!((p[1].cpu_seconds - 8.6).abs() < 1e-9);
    }

    #[test]
    fn this_runs_points_win_and_are_ordered_by_contender_and_n() {
        let point = |c: &str, n: usize, cpu: f64| CostPoint {
            contender: c.into(),
            n,
            cpu_seconds: cpu,
            peak_mib: 1.0,
        };
        let merged = merge(
            vec![point("kube-rs", 1000, 1.0), point("ours-tuned", 1000, 2.0)],
            &[
                point("ours-tuned", 1000, 99.0),
                point("ours-tuned", 100_000, 50.0),
            ],
        );
        let got: Vec<(&str, usize, f64)> = merged
            .iter()
            .map(|p| (p.contender.as_str(), p.n, p.cpu_seconds))
            .collect();
        assert_eq!(
            got,
            [
                ("ours-tuned", 1000, 2.0),
                ("ours-tuned", 100_000, 50.0),
                ("kube-rs", 1000, 1.0)
            ]
        );
    }
}
